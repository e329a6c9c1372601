"""A failure in the collector's beat (``collector.runs``) other than the database's own ended
the pull it rode on: a ``collector.runs`` row nested too deep for the JSON parser (``'[' *
100000``: RecursionError) stopped every pull after its first page, ``status`` ``error``. The
beat never fails a pull (``collector run not kept`` in the log, the pull goes on), a row
that does not read is read as none kept, and the district report reads it so too."""

from __future__ import annotations

import json

import httpx
import psycopg
import pytest
from pgfixture import Network, make_kiosk
from test_bounded_collector import _never, _Target
from test_district_collector_cadence import _Copy, _first_pull
from test_district_silent_day import DAY

from kiosk.config.fleet import CollectorConfig
from office.collector import RUN_BEAT_S, Collector
from office.district import district_report
from office.pg import RUNS_KEY, STARTS_KEY, PgTarget, collector_runs, held_starts

pytest_plugins = ("pgfixture",)

DEEP = "[" * 100000


class _Buggy(_Copy):
    """A database whose beat fails otherwise than ``PgError`` (a bug, a row it cannot read)."""

    closed = 0

    def record_run(self, *args: object, **kwargs: object) -> None:
        super().record_run(*args, **kwargs)
        raise RecursionError("maximum recursion depth exceeded while decoding a JSON array")

    def close(self) -> None:
        self.closed += 1
        super().close()


@pytest.mark.slow
def test_a_beat_failing_otherwise_than_the_database_leaves_the_pull_alone(
    tmp_path, monkeypatch, clock, caplog
):
    copy = _first_pull(tmp_path, monkeypatch, clock, RUN_BEAT_S + 1, _Buggy)
    assert [pages for pages, _, _ in copy.beats] == list(range(1, 13))
    kept = [r for r in caplog.records if r.message == "collector run not kept"]
    assert len(kept) == 12 and "RecursionError" in kept[0].error  # the pull "ok": all 12 pages
    assert copy.closed == 1  # by the test: the connection is the database's to lose, not a bug's


class _BuggyBeat(_Target):
    closed = 0
    tries = 0

    def record_run(self, *args: object, **kwargs: object) -> None:
        self.tries += 1
        raise RecursionError("maximum recursion depth exceeded while decoding a JSON array")

    def close(self) -> None:
        self.closed += 1


def test_a_beat_failing_as_a_pull_ends_is_tried_at_the_next_on_the_same_connection(
    monkeypatch, clock, caplog
):
    """Every pull failing at once (no token): the beat after each fails with a bug, the pull's
    status says the pull's own failure, the beat is tried again at the next pull, and the
    database connection is kept (only the database's own failure drops it)."""
    monkeypatch.delenv("GATE_TOKEN", raising=False)
    target = _BuggyBeat()
    cfg = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://gate-1.lan:8000", "token_env": "GATE_TOKEN"}]}
    )
    collector = Collector(
        cfg,
        "postgresql://office/unused",
        clock=clock,
        client=httpx.Client(transport=httpx.MockTransport(_never)),
        target_factory=lambda dsn: target,
        monotonic=lambda: clock.monotonic_ns() / 1e9,
    )
    try:
        statuses = [collector.pull_once(cfg.kiosks[0]) for _ in range(2)]
    finally:
        collector.client.close()
    assert [s.last_error[:6] for s in statuses] == ["token:", "token:"]
    assert (target.tries, target.closed) == (2, 0)
    assert sum(r.message == "collector run not kept" for r in caplog.records) == 2


def test_a_row_nested_too_deep_reads_as_none_kept():
    assert collector_runs((DEEP,)) == [] and held_starts((DEEP,)) == []


# ------------------------------------------------------------------ on the real PostgreSQL


def _pull(tmp_path, monkeypatch, clock, pg_dsn, kind) -> tuple:
    """A collector's first pull of a gate of 60 events, 5 a page, a page a minute and a
    second, into PostgreSQL through a ``kind``: its status and the events held."""
    gate = make_kiosk(tmp_path / "gate.db", "gate-0", clock, 60)
    monkeypatch.setenv("GATE_TOKEN", gate.token)
    cfg = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://gate-0", "token_env": "GATE_TOKEN"}], "page_size": 5}
    )
    collector = Collector(
        cfg,
        pg_dsn,
        clock=clock,
        client=Network(gate).client(),
        target_factory=lambda dsn: kind(dsn, clock),
        monotonic=lambda: clock.monotonic_ns() / 1e9,
        request_deadline_s=1e9,  # the clock moves on as pages are written, not as they come
    )
    try:
        status = collector.pull_once(cfg.kiosks[0])
    finally:
        collector.stop()
        collector.client.close()
        gate.store.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        held = conn.execute("SELECT count(*) FROM fleet_events").fetchone()[0]
    return status, held


class _SlowPg(PgTarget):
    def __init__(self, dsn: str, clock) -> None:
        super().__init__(dsn, application_name="slow-pages")
        self.clock = clock

    def write_page(self, url: str, kiosk_id: str, rows: list[dict]) -> int:
        self.clock.advance(RUN_BEAT_S + 1)
        return super().write_page(url, kiosk_id, rows)


class _BeatFailsInPg(_SlowPg):
    def record_run(self, *args: object, **kwargs: object) -> None:
        with self._errors(), self.conn.transaction():
            self.conn.execute("SELECT 1/0")


@pytest.mark.slow
def test_real_pg_a_failing_beat_rolls_back_no_page(tmp_path, monkeypatch, clock, pg_dsn):
    """The beat fails in its own transaction on the pull's connection: every page kept."""
    status, held = _pull(tmp_path, monkeypatch, clock, pg_dsn, _BeatFailsInPg)
    assert (status.state, held) == ("ok", 60)


@pytest.mark.slow
@pytest.mark.parametrize("key", [RUNS_KEY, STARTS_KEY])
def test_real_pg_a_row_nested_too_deep_breaks_no_pull_nor_the_report(
    tmp_path, monkeypatch, clock, pg_dsn, key
):
    with PgTarget(pg_dsn) as target:
        target.conn.execute("INSERT INTO fleet_meta (key, value) VALUES (%s, %s)", [key, DEEP])
    assert district_report(pg_dsn, DAY, "Asia/Shanghai")["gates"] == 0
    status, held = _pull(tmp_path, monkeypatch, clock, pg_dsn, _SlowPg)
    assert (status.state, held) == ("ok", 60)
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute("SELECT value FROM fleet_meta WHERE key = %s", [key]).fetchone()
    assert json.loads(row[0]) != []  # begun again
    report = district_report(pg_dsn, DAY, "Asia/Shanghai")
    assert report["collector_down"] is not None


class _DroppedAtThirdBeat(_SlowPg):
    """The database drops the pull's connection as the third beat is kept (a restart of the
    server's process, a firewall's idle cut): that beat fails; the beats kept are counted."""

    beats = 0
    kept = 0

    def record_run(self, *args: object, **kwargs: object) -> None:
        type(self).beats += 1
        if type(self).beats == 3:
            with psycopg.connect(self.dsn, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [self.conn.info.backend_pid])
        super().record_run(*args, **kwargs)
        type(self).kept += 1


@pytest.mark.slow
def test_real_pg_a_beat_whose_connection_dropped_reconnects_and_the_pull_goes_on(
    tmp_path, monkeypatch, clock, pg_dsn, caplog
):
    """A beat (a page a minute and a second: one a page) meets the connection dropped: it
    is logged, and the next page and the next beat reconnect: the pull goes on to its end,
    every page kept, every beat after the lost one kept too."""
    _DroppedAtThirdBeat.beats = _DroppedAtThirdBeat.kept = 0
    status, held = _pull(tmp_path, monkeypatch, clock, pg_dsn, _DroppedAtThirdBeat)
    assert (status.state, held) == ("ok", 60)
    assert sum(r.message == "collector run not kept" for r in caplog.records) == 1
    assert (_DroppedAtThirdBeat.beats, _DroppedAtThirdBeat.kept) == (12, 11)  # one a page
    with PgTarget(pg_dsn) as target:
        row = target.conn.execute("SELECT value FROM fleet_meta WHERE key = %s", [RUNS_KEY])
        assert len(collector_runs(row.fetchone())) == 1  # one spell: the run was heard on
