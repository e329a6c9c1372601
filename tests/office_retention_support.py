"""Shared by the office retention tests (SQLite copy and PostgreSQL): a gate whose log holds
old and recent passages with clear personal fields, as a ``logs:personal`` pull copies them.
(PYTEST_DONT_REWRITE: it asserts nothing itself.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pgfixture import add_events, make_kiosk

from kiosk.clock import FakeClock
from kiosk.store import EventDraft

#: The clear values a ``logs:personal`` pull holds (``pgfixture.add_events``'s and the car's).
NAME, PHONE, PLATE, DRIVER = "Li Lei", "13800138000", "京A12345", "Wang Fang"


def gate_clock() -> FakeClock:
    """A synchronised gate clock 40 days less an hour before the real now: after
    ``gate_with_history`` it is an hour past the real now, so a purge dated by it is after the
    copy's pulls (stamped by the real clock: ``pulled_at``), as the office's clock is."""
    return FakeClock(start=datetime.now(UTC) - timedelta(days=40, hours=-1))


def gate_with_history(tmp_path, clock, old: int = 6, recent: int = 4):
    """A gate with ``old`` passages and a car (with occupants and a feverish count) on 2 March,
    and ``recent`` passages 35 days later; the clock then 5 more days on (40 after the old)."""
    gate = make_kiosk(tmp_path / "gate-1.db", "gate-1", clock, old)
    gate.store.append(
        EventDraft(
            direction="in",
            decision="deny",
            reasons=("fever",),
            kind="vehicle",
            person={"plate": PLATE, "driver": DRIVER, "occupants": 2, "feverish": 2},
        )
    )
    clock.advance(35 * 86400)
    add_events(gate, recent)
    clock.advance(5 * 86400)
    return gate


def snapshot(rows):
    """What a purge must never change: ``{seq: (hash, prev_hash, personal_digest)}``."""
    return {r["seq"]: (r["hash"], r["prev_hash"], r["personal_digest"]) for r in rows}
