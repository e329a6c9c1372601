"""One realistic day at a gate, built on the fakes in virtual time, for the tests that check
that every face gives the same figures for it (tests/test_day_consistency.py).

``build_day(data_dir)`` runs the program the daemon runs (``checkpoint.replay``'s composition
root on a ``FakeClock``, ``VirtualKiosk`` stepping the real engine, thermometer emulator and
event log) through one local day in Asia/Shanghai: a shift from 08:30 to 17:30 of a few
hundred passages of every outcome (passes both ways, fevers re-measured, denials of each
reason, a quarantined household, the outing quota, passback, the guard's manual passes and
denies, overrides of the kiosk's denies), an outage of the thermometer and one of the store,
and passages just before and after local midnight at both ends of the day (which UTC puts on
other dates). The kiosk starts the night before with its clock eight hours behind and not
synchronised (no RTC, the router still down after a power cut); NTP steps it at 08:29, so
the night's passages are stamped on the wrong day and dated by their boot's clock
(``kiosk.dating``). Between visitors the clock is advanced, never slept on. At 17:00 a
resident told to measure again tries again (``_Gate.again``).

It returns what the bus published (``Day.decisions``): an independent count of the day that
the reports are checked against.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from checkpoint.replay import (
    DeviceTarget,
    ScenarioDriver,
    ScenarioKeys,
    StoreSwitch,
    build_replay_core,
    emulator_of,
    parse_scenario,
)
from checkpoint.virtual import VirtualKiosk

TZ = "Asia/Shanghai"
ZONE = ZoneInfo(TZ)
DAY = date(2026, 3, 2)
KIOSK_ID = "gate-east"
CONFIG: dict[str, Any] = {
    "site": {"timezone": TZ, "kiosk_id": KIOSK_ID, "direction": "both"},
    "policy": {
        "quota": {"enabled": True, "exits": 2, "period_days": 1},
        "passback": {"enabled": True, "mode": "hard", "window_min": 2},
    },
}
QUARANTINED = "Q-404"


def local(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=ZONE)


@dataclass
class Day:
    """What happened: every decision the bus published, as the program published it."""

    decisions: list[dict[str, Any]] = field(default_factory=list)
    kiosk_id: str = KIOSK_ID

    def of_day(self, day: date = DAY) -> list[dict[str, Any]]:
        """The decisions of local ``day`` (by the wall time the kiosk stamped)."""
        return [d for d in self.decisions if d["local"].date() == day]

    def passages(self, day: date = DAY) -> dict[str, int]:
        """The day's passages by how they ended: a guard's decision about a passage (chosen
        on the console) is that passage's outcome, not another passage, and so is a
        resident's next try after a measure-again deny (``again``)."""
        final: dict[object, str] = {}
        for n, d in enumerate(self.of_day(day)):  # a decision held while the store failed
            final[d.get("subject") or d["seq"] or f"held {n}"] = d["decision"]  # has no seq
        passed = sum(v in ("pass", "manual_pass") for v in final.values())
        return {"total": len(final), "passed": passed, "denied": len(final) - passed}


class _Gate:
    """Drives the day: each visitor at its wall time, settled before the next."""

    def __init__(self, data_dir: Path, start: datetime, behind: timedelta) -> None:
        #: How far the kiosk's clock is behind the true time (until NTP steps it).
        self.behind = behind
        scenario = parse_scenario(
            {
                "name": "day",
                "start": start - behind,
                "clock_synced": not behind,
                "present": "scanner",
                "config": CONFIG,
                "steps": [{"at_s": 0}],
            }
        )
        self.keys = ScenarioKeys()
        self.core = build_replay_core(scenario, data_dir, self.keys)
        self.store = StoreSwitch(self.core.store)
        self.kiosk = VirtualKiosk(self.core, store=self.store)
        self.target = DeviceTarget(
            self.core.clock,
            emulator=emulator_of(self.core),
            gate_dev=self.core.devices.gate,
            store_switch=self.store,
            list_store=self.core.lists,
            timezone=TZ,
            code_sink=self.kiosk.submit_code,
            on_direction=self.kiosk.select_direction,
            on_manual=self.kiosk.manual,
        )
        self.driver = ScenarioDriver(scenario, self.core.clock, self.target, self.keys)
        self.day = Day()
        self.kiosk.watch(self._message, name="day")
        self.n = 0

    def _message(self, msg: dict[str, Any]) -> None:
        if msg.get("type") != "decision":
            return
        when = self.true_now()
        self.day.decisions.append(
            {
                "decision": msg["decision"],
                "reasons": list(msg.get("reasons") or ()),
                "direction": msg.get("direction"),
                "kind": msg.get("kind"),
                "committed": msg.get("committed", True),
                "seq": msg.get("seq"),
                "flags": list(msg.get("flags") or ()),
                "local": when.astimezone(ZONE),
            }
        )
        self.target.visitor_done(msg)

    def true_now(self) -> datetime:
        return self.core.clock.now() + self.behind

    def at(self, when: datetime) -> None:
        """Advance the clock (wall and monotonic) to the true time ``when``."""
        gap = (when - self.true_now()).total_seconds()
        if gap > 0:
            self.core.clock.advance(gap)

    def ntp_sync(self) -> None:
        """NTP synchronises the clock: a step to the true time (monotonic time unaffected)."""
        self.core.clock.set_wall(self.true_now())
        self.core.clock.is_synced = True
        self.behind = timedelta(0)

    def step(self, settle_s: float = 12.0, **step: Any) -> None:
        """One scenario step now, then the kiosk run until it has settled."""
        from checkpoint.replay import Step

        parsed = Step.model_validate({"at_s": 0, **step})
        self.driver.apply(self.n, parsed)
        self.n += 1
        self.kiosk.deliver()
        self.kiosk.run(self.kiosk.elapsed_s + settle_s)

    def visitor(
        self, household: str, direction: str, body_c: float | None = 36.6, **kw: Any
    ) -> None:
        pass_ = kw.pop("pass_", None) or {"household": household, "holder": "Resident"}
        step: dict[str, Any] = {"pass": pass_, "direction": direction, **kw}
        if body_c is not None:
            step["body_c"] = body_c
        self.step(**step)

    def override(self, decision: str) -> None:
        """The guard decides about the last passage, chosen on the console (its ``seq``), as
        ``ui.guard.live.subject_of`` hands it to the engine."""
        from kiosk import queries
        from kiosk.engine import ManualSubject

        last = self.day.decisions[-1]
        event = queries.event_by_seq(self.core.store, int(last["seq"]))
        assert event is not None and event["decision"] == "deny"
        subject = ManualSubject.of_event(event)
        self.kiosk.manual(
            decision=decision, operator="alice", reason="seen by the guard",
            direction=event["direction"], subject=subject,
        )  # fmt: skip
        self.kiosk.run(self.kiosk.elapsed_s + 4.0)
        assert self.day.decisions[-1]["decision"] == decision
        self.day.decisions[-1]["subject"] = last.get("subject") or int(event["seq"])

    def again(
        self,
        household: str,
        direction: str,
        first_c: float | None,
        again_c: float,
        *,
        after_s: float,
        same_passage: bool,
    ) -> None:
        """A resident measured at ``first_c`` (None: no wrist held up in time) shows the same
        pass the same way ``after_s`` after the result and is measured at ``again_c``.
        ``same_passage``: the script's word that this is one passage (a measure-again deny
        tried again in time, ``kiosk.links``), ended as the second attempt."""
        name = f"again{self.n}"
        spec = {"id": name, "household": household, "holder": "Again"}
        self.visitor(household, direction, first_c, pass_=spec, settle_s=20.0)
        first = self.day.decisions[-1]
        self.at(self.true_now() + timedelta(seconds=after_s))
        self.visitor(household, direction, again_c, pass_=name)
        if same_passage:
            self.day.decisions[-1]["subject"] = first.get("subject") or first["seq"]

    def manual(self, decision: str, direction: str, kind: str = "manual", **kw: Any) -> None:
        spec = {"decision": decision, "operator": "alice", "reason": "guard", "kind": kind, **kw}
        self.step(settle_s=4.0, manual=spec, direction=direction)


def _shift(g: _Gate, rng: random.Random) -> None:
    """08:30 to 17:30: a few hundred passages of every outcome."""
    households = [f"{b}-{r}" for b in "ABCDEF" for r in range(101, 121)]
    g.at(local(DAY, 8, 29))
    g.ntp_sync()  # the router is up: the clock steps to the true time
    g.at(local(DAY, 8, 30))
    g.step(settle_s=1.0, quarantine={"household": QUARANTINED, "days": 14})
    g.step(settle_s=1.0, pass_={"id": "lost", "household": "L-1", "holder": "Lost"})
    g.step(settle_s=1.0, revoke="lost")
    t = local(DAY, 8, 31)
    for i in range(240):
        t += timedelta(seconds=rng.randint(60, 150))
        g.at(t)
        _one_of_the_shift(g, rng, i, households)
    # The thermometer fails for a while: every passage denied for the guard.
    g.at(local(DAY, 16, 0))
    g.step(settle_s=1.0, thermometer={"name": "nack"})
    for i in range(4):
        g.at(local(DAY, 16, 1 + 2 * i))
        g.visitor(households[i], "in")
        g.override("manual_pass")  # measured by hand, let in
    g.step(settle_s=1.0, thermometer={"name": "clear"})
    g.at(local(DAY, 16, 20))
    g.visitor(households[5], "in")
    # The store fails: the kiosk denies, holds the decisions, writes them once it is back.
    g.at(local(DAY, 16, 30))
    g.step(settle_s=1.0, store="fail")
    for i in range(3):
        g.at(local(DAY, 16, 31 + 2 * i))
        g.visitor(households[10 + i], "out")
    g.at(local(DAY, 16, 45))
    g.step(settle_s=30.0, store="recover")
    g.at(local(DAY, 16, 50))
    g.visitor(households[14], "in")
    # Told to measure again: no wrist held up in time, then measured (one passage); a fever
    # and a normal reading right after it (two: a fever is never measured away).
    g.at(local(DAY, 17, 0))
    g.again(households[15], "in", None, 36.5, after_s=30, same_passage=True)
    g.at(local(DAY, 17, 5))
    g.again(households[16], "out", 38.7, 36.6, after_s=30, same_passage=False)


def _one_of_the_shift(g: _Gate, rng: random.Random, i: int, households: list[str]) -> None:
    hh = rng.choice(households)
    way = rng.choice(("in", "out"))
    roll = rng.random()
    if roll < 0.55:
        g.visitor(hh, way, round(rng.uniform(36.1, 37.0), 1))
    elif roll < 0.60:  # a fever, re-measured by the kiosk; the guard then decides
        g.visitor(hh, way, 38.6)
        g.override(rng.choice(("manual_deny", "manual_pass")))
    elif roll < 0.63:  # a fever alone (the person goes home)
        g.visitor(hh, way, 38.4)
    elif roll < 0.66:
        g.visitor(hh, way, pass_={"household": hh, "holder": "R", "key": "expired"})
    elif roll < 0.68:
        g.visitor(hh, way, pass_={"household": hh, "holder": "R", "key": "forged"})
    elif roll < 0.70:
        g.visitor(hh, way, pass_={"household": hh, "holder": "R", "key": "unknown"})
    elif roll < 0.72:
        g.visitor(hh, way, pass_={"household": hh, "holder": "R", "key": "not_yet_valid"})
    elif roll < 0.74:
        g.step(code="https://shop.example/item/1", direction=way, body_c=36.5)
    elif roll < 0.76:
        g.visitor("L-1", way, pass_="lost")
    elif roll < 0.79:
        g.visitor(QUARANTINED, way)
    elif roll < 0.82:  # a household's third outing in a day: over the quota
        for _ in range(3):
            g.visitor(hh, "out")
            g.at(g.true_now() + timedelta(seconds=200))
        if g.day.decisions[-1]["decision"] == "deny" and rng.random() < 0.5:
            g.override("manual_pass")  # a doctor's appointment: the guard lets them out
    elif roll < 0.85:  # passback: the same card the same way within two minutes
        g.visitor(hh, way, pass_={"id": f"pb{i}", "household": hh, "holder": "P"})
        g.visitor(hh, way, pass_=f"pb{i}")
        if rng.random() < 0.5:
            g.override("manual_pass")  # the gate did not open the first time
    elif roll < 0.88:  # no temperature: the visitor never holds a wrist up
        g.visitor(hh, way, body_c=None, settle_s=20.0)
    elif roll < 0.92:  # a registration at the gate (no phone, no health code)
        g.manual("manual_pass", way, kind="registration", person={"name": "Visitor"})
    elif roll < 0.94:
        g.manual("manual_pass", way, kind="vehicle", person={"plate": "京A12345", "occupants": 2})
    elif roll < 0.97:  # the guard turns a person without a pass away
        g.manual("manual_deny", way)
    else:  # a person without a pass let in on the guard's word
        g.manual("manual_pass", way)


def build_day(data_dir: Path, seed: int = 20260302) -> Day:
    """The day in ``data_dir`` (its event log ``kiosk.db``); returns what the bus published."""
    rng = random.Random(seed)
    # The kiosk (no RTC) started after a power cut before the router was back: its clock
    # reads eight hours behind, unsynchronised, until NTP steps it in the morning.
    g = _Gate(data_dir, local(DAY - timedelta(days=1), 23, 50), behind=timedelta(hours=8))
    try:
        g.at(local(DAY - timedelta(days=1), 23, 55))
        g.visitor("A-101", "out")  # the evening before: not this day
        g.at(local(DAY, 0, 5))
        g.visitor("A-101", "in")  # after midnight local: this day, though UTC's day before
        g.at(local(DAY, 6, 40))
        g.visitor("A-102", "out")  # an early shift worker, stamped the evening before
        _shift(g, rng)
        g.at(local(DAY, 23, 58))
        g.visitor("B-102", "in")  # the last minutes of this day
        g.at(local(DAY + timedelta(days=1), 0, 2))
        g.visitor("B-103", "in")  # the next day, though UTC's same day as the shift
    finally:
        g.kiosk.close()
        g.core.close()
    return g.day
