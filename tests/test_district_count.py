"""The district report checked against an independent count of the gates' own logs: two gates,
a random day around both local midnights, pulled into PostgreSQL, counted in Python from the
gates' rows (not with the report's SQL or ``compute_report``)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pgfixture import Network, make_kiosk
from test_fleet_pg import pull_pg

from kiosk.clock import FakeClock
from kiosk.config.policy import QuotaConfig
from kiosk.store import EventDraft
from office.district import district_report

pytest_plugins = ("pgfixture",)

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 3, 2)


def _random_day(core, rng: random.Random) -> None:
    when = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)  # 22:00 the evening before, local
    while when < datetime(2026, 3, 2, 18, 0, tzinfo=UTC):  # 02:00 the morning after
        core.clock.set_wall(when)
        kind = rng.choice(["passage"] * 8 + ["registration", "vehicle"])
        direction = rng.choice(["in", "out"])
        if kind == "passage":
            reasons = rng.choice([("ok",), ("ok",), ("fever",), ("quota_exceeded",)])
            draft = EventDraft(
                direction=direction,
                decision="pass" if reasons == ("ok",) else "deny",
                reasons=reasons,
                household=rng.choice(["1-101", "1-102", "2-201"]),
                holder="H",
                temp_c=rng.choice([36.5, 38.2, None]),
            )
        else:
            person = {"plate": "京A12345", "occupants": 2} if kind == "vehicle" else {"name": "Li"}
            decision = rng.choice(["manual_pass", "manual_deny"])
            draft = EventDraft(
                direction=direction, decision=decision, kind=kind, operator="Zhao", person=person
            )
        core.store.append(draft)
        when += timedelta(minutes=rng.randint(3, 60))


@pytest.mark.slow
def test_the_district_report_matches_an_independent_count_of_the_gates_logs(tmp_path, pg_dsn):
    rng = random.Random(2026)
    gates = [
        make_kiosk(tmp_path / f"{name}.db", name, FakeClock(start=datetime(2026, 3, 1, tzinfo=UTC)))
        for name in ("gate-east", "gate-west")
    ]
    try:
        for core in gates:
            _random_day(core, rng)
            pull_pg(f"http://{core.config.site.kiosk_id}", core.token, pg_dsn, Network(core))
        quota = QuotaConfig(enabled=True, exits=1, period_days=2)
        report = district_report(pg_dsn, DAY, TZ, quota)
        rows = [
            (datetime.fromisoformat(e["ts"]).astimezone(TZ), e)
            for core in gates
            for e in core.store.events(limit=10_000)
        ]
        today = [(t, e) for t, e in rows if t.date() == DAY]
        assert report["events"] == len(today) > 40
        decisions = Counter(e["decision"] for _, e in today)
        assert report["by_decision"] == dict(sorted(decisions.items()))
        assert report["by_reason"] == dict(
            sorted(Counter(r for _, e in today for r in e["reasons"]).items())
        )
        assert report["by_direction"] == dict(
            sorted(Counter(e["direction"] for _, e in today).items())
        )
        assert report["by_hour"] == [sum(t.hour == h for t, _ in today) for h in range(24)]
        fevers = sum("fever" in e["reasons"] for _, e in today)
        assert report["fever_alarms"]["count"] == fevers
        passed = [e for _, e in today if e["decision"] in ("pass", "manual_pass")]
        people = Counter(e["direction"] for e in passed if e["kind"] != "vehicle")
        community = report["community"]
        assert community["people"] == {"in": people["in"], "out": people["out"]}
        assert community["fevers"]["gate"] == fevers
        assert community["registrations"] == sum(e["kind"] == "registration" for _, e in today)
        vehicles = sum(e["kind"] == "vehicle" for _, e in today)
        assert community["vehicles"]["registrations"] == vehicles
        by_gate = {g["kiosk_id"]: g for g in report["by_gate"]}
        for core in gates:
            mine = [e for _, e in today if e["kiosk_id"] == core.config.site.kiosk_id]
            gate = by_gate[core.config.site.kiosk_id]
            assert gate["events"] == len(mine)
            assert gate["passed"] == sum(e["decision"] in ("pass", "manual_pass") for e in mine)
            assert gate["denied"] == sum(e["decision"] in ("deny", "manual_deny") for e in mine)
            assert gate["fever_alarms"] == sum("fever" in e["reasons"] for e in mine)
        # Households arrive masked with a logs:read token: none may be counted (merged); the
        # outings are, as the gate counts its purged ones.
        exits = report["exits_per_household"]
        outs = Counter(e["household"] for e in passed if e["direction"] == "out" and e["household"])
        assert exits["exits"] == sum(outs.values())
        if report["household_rows"] == 0:
            assert exits["households"] is None  # unknown, not 0
        else:
            assert exits["households"] == len(outs)
    finally:
        for core in gates:
            core.store.close()
