"""The office collector over weeks: a gate switched off (or its token gone) for a week was
a "pull failed" warning at every pull, its backoff's five minutes apart, 2,000 lines a week
a gate in the office's journal. Its failures are logged as a flapping device's are: once per
change of its error, its recovery once, at most ``FLAP_LINES`` an hour with the count of the
rest; the status page still counts every failed pull."""

from __future__ import annotations

import logging

import httpx
import pytest

from kiosk.config.fleet import CollectorConfig
from kiosk.logs import FLAP_LINES
from office.collector import Collector


class _Target:
    """The office's database, as much of it as a pull that fails before its first page uses."""

    def record_gates(self, gates: list[dict]) -> None:
        self.gates = gates

    runs: list[str]
    expects: list[float | None]

    def record_run(
        self,
        run_id: str,
        expect_s: float | None = None,
        *,
        first: bool = False,
        age_s: float = 0.0,
    ) -> None:
        self.runs = [*getattr(self, "runs", []), run_id]
        self.expects = [*getattr(self, "expects", []), expect_s]

    def source_kiosk(self, url: str) -> str | None:
        return None  # no gate pulled yet: what a failed pull's status reads (``Collector._held``)

    def close(self) -> None:
        pass


def _never(request: httpx.Request) -> httpx.Response:
    raise AssertionError("no request is made without a token")


@pytest.fixture
def collector(monkeypatch, clock):
    monkeypatch.delenv("GATE_TOKEN", raising=False)
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://gate-1.lan:8000", "token_env": "GATE_TOKEN"}]}
    )
    made = Collector(
        config,
        "postgresql://office/unused",
        clock=clock,
        client=httpx.Client(transport=httpx.MockTransport(_never)),
        target_factory=lambda dsn: _Target(),
        monotonic=lambda: clock.monotonic_ns() / 1e9,
    )
    yield made
    made.client.close()


def _lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "office.collector" and r.levelno >= logging.INFO]


def test_a_gate_failing_the_same_way_for_a_week_is_one_line(collector, clock, caplog):
    source = collector.config.kiosks[0]
    for _ in range(7 * 24 * 12):  # every 5 minutes for a week
        status = collector.pull_once(source)
        clock.advance(300)
    assert status.errors == 7 * 24 * 12 and status.state == "error"
    (line,) = _lines(caplog)
    assert line.levelno == logging.WARNING
    assert "GATE_TOKEN" in line.getMessage() or "GATE_TOKEN" in str(vars(line))


def test_a_gate_whose_error_changes_at_every_pull_is_a_few_lines_an_hour(
    collector, clock, caplog, monkeypatch
):
    source = collector.config.kiosks[0]
    for n in range(24 * 60):  # every minute for a day: no token, a token no header takes
        if n % 2:
            monkeypatch.setenv("GATE_TOKEN", "bad token\x01")
        else:
            monkeypatch.delenv("GATE_TOKEN", raising=False)
        collector.pull_once(source)
        clock.advance(60)
    assert len(_lines(caplog)) <= 24 * (FLAP_LINES + 1)
    assert any("not logged" in r.getMessage() for r in _lines(caplog))  # counted, not lost


def test_every_failure_is_still_logged_at_debug(collector, clock, caplog):
    caplog.set_level(logging.DEBUG, logger="office.collector")
    source = collector.config.kiosks[0]
    for _ in range(10):
        collector.pull_once(source)
        clock.advance(300)
    assert len([r for r in caplog.records if r.name == "office.collector"]) >= 10


def test_a_gates_report_failing_for_a_week_is_one_line(collector, clock, caplog, monkeypatch):
    from office import collector as module
    from office.pull import PullError

    def refused(*args, **kwargs):
        raise PullError("http://gate-1.lan:8000: the ledger report answered 503")

    monkeypatch.setattr(module, "collect_gate_reports", refused)
    source = collector.config.kiosks[0]
    for _ in range(7 * 24 * 12):  # due at every pull, 5 minutes apart, for a week
        collector._reports(source, "token", source.url, "gate-1")
        clock.advance(300)
    assert collector.statuses()[0].report_error is not None
    (line,) = _lines(caplog)
    assert "gate report failed" in line.getMessage() and "503" in line.getMessage()


def test_a_gate_of_an_undeclared_compound_for_a_week_is_one_line(
    collector, clock, caplog, monkeypatch
):
    from datetime import date

    from office import collector as module
    from office.gatereports import Collected

    monkeypatch.setattr(module, "collect_gate_reports", lambda *a, **k: Collected(date(2026, 3, 2)))
    undeclared = "undeclared compound eats from gate gate-1"
    monkeypatch.setattr(collector, "_undeclared", lambda kiosk_id, day: undeclared)
    source = collector.config.kiosks[0]
    for _ in range(7 * 24 * 12):
        collector._reports(source, "token", source.url, "gate-1")
        clock.advance(300)
    assert collector.statuses()[0].compound_error == undeclared
    (line,) = _lines(caplog)
    assert undeclared in line.getMessage()


def test_the_collector_keeps_that_it_is_pulling_once_a_minute_whatever_the_gate_said(
    collector, clock
):
    """``collector.runs``: the district report tells the office deaf (its collector down) from
    every gate down by it; one write a minute, not one a pull, and one run all along."""
    source = collector.config.kiosks[0]
    for _ in range(60):  # every 10 s for 10 minutes: each pull fails (no token)
        collector.pull_once(source)
        clock.advance(10)
    runs = collector._target().runs
    assert len(runs) == 10 and len(set(runs)) == 1
