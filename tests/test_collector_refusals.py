"""What the collector shows of a gate whose pull is refused: the whole of the fix a refusal
names, and what the office's database holds of the gate, whatever the pull answered."""

from __future__ import annotations

import httpx
import pytest
from test_bounded_collector import _never, _Target

from kiosk.config.fleet import CollectorConfig
from office.collector import ERROR_CHARS, Collector, clipped
from office.pull import PinError, pin_refusal

NORTH, SOUTH = "http://192.168.10.21:8443", "http://192.168.10.22:8443"


class _Pinned(_Target):
    """The office's database: ``SOUTH`` pinned to ``held`` (holding its events to ``seq``)
    and refused as ``answers``, an id pinned to ``NORTH``; no request reaches a gate."""

    def __init__(self, held: str | None, seq: int, answers: str) -> None:
        self.held, self.seq, self.answers = held, seq, answers

    def source_kiosk(self, url: str) -> str | None:
        return self.held if url == SOUTH else None

    def tail(self, kiosk_id: str) -> tuple[int, str]:
        return (self.seq, "ab" * 32) if kiosk_id == self.held else (0, "00" * 32)

    def pin_conflict(self, url: str, kiosk_id: str) -> PinError | None:
        return pin_refusal(url, self.answers, self.held, NORTH)


@pytest.fixture
def collector(monkeypatch, clock):
    monkeypatch.setenv("GATE_TOKEN", "t" * 32)
    config = CollectorConfig.model_validate({"kiosks": [{"url": SOUTH, "token_env": "GATE_TOKEN"}]})

    def made(target: _Pinned) -> Collector:
        return Collector(
            config,
            "postgresql://office/unused",
            clock=clock,
            client=httpx.Client(transport=httpx.MockTransport(_never)),
            target_factory=lambda dsn: target,
            monotonic=lambda: clock.monotonic_ns() / 1e9,
        )

    return made


def test_a_refusal_keeps_the_repin_it_names(collector, caplog):
    """Before: the error was cut at 300 characters, and the duplicate-id refusal of two LAN
    addresses (329) lost its end, ``--repin gate-north``: the fix, on the status page, in
    /status.json and in the journal's warning. Now a long error loses its middle."""
    made = collector(_Pinned("gate-north", 0, "gate-north"))
    refused = made.pull_once(made.config.kiosks[0])
    shown = made.status_json()["kiosks"][0]["last_error"]
    assert refused.state == "error" and refused.last_error == shown
    assert shown.startswith(f"{SOUTH} answers as kiosk gate-north, which is pinned to {NORTH}")
    assert shown.endswith(f"kiosk pull {SOUTH} --into TARGET --repin gate-north")
    assert len(shown) <= 400
    told = [str(vars(r)) for r in caplog.records if r.name == "office.collector"]
    assert any("--repin gate-north" in line for line in told)
    assert "--repin gate-north" in made.status_html()


def test_a_long_error_loses_its_middle_not_its_fix():
    far = "https://gate-south.compound-7.district-3.example.lan:8443"
    said = str(pin_refusal(far, "gate-north", None, "https://gate-north.compound-7.example.lan"))
    kept = clipped(said)
    assert len(said) > ERROR_CHARS == len(kept) and " … " in kept
    assert kept.startswith(f"{far} answers as kiosk gate-north")
    assert kept.endswith(f"kiosk pull {far} --into TARGET --repin gate-north")
    assert clipped("short") == "short"


def test_a_refused_gate_shows_what_the_office_holds_of_it(collector):
    """Before: a gate refused at its first pull since the collector started (its log wiped
    and begun again under a new id, or any refusal) showed ``kiosk_id`` null and ``last_seq``
    0, /metrics ``kiosk_collect_last_seq`` 0, though the database held its rows to seq 25.
    Now the status says what the database holds of it, whatever the pull answered."""
    made = collector(_Pinned("gate-south", 25, "gate-new"))
    refused = made.pull_once(made.config.kiosks[0])
    assert "answers as kiosk gate-new, but it is pinned to kiosk gate-south" in (
        refused.last_error or ""
    )
    assert (refused.state, refused.kiosk_id, refused.last_seq) == ("error", "gate-south", 25)
    shown = made.status_json()["kiosks"][0]
    assert (shown["kiosk_id"], shown["last_seq"]) == ("gate-south", 25)
    assert 'kiosk_collect_last_seq{kiosk="gate-south"} 25' in made.metrics_text()
