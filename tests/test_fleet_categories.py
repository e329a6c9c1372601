"""``kiosk fleet report``: the office's categories rolled up across two gates (real
PostgreSQL, as in test_fleet_pg.py)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from pgfixture import Network, make_kiosk
from test_fleet_pg import pull_pg

from checkpoint.cli import main
from kiosk.clock import FakeClock
from kiosk.store import EventDraft
from office.district import district_report

pytest_plugins = ("pgfixture",)

DAY = date(2026, 3, 2)


def _day_at_a_gate(core, passes_in, passes_out, fevers, registrations, cars):
    log = core.store
    for i in range(passes_in + passes_out):
        log.append(
            EventDraft(
                direction="in" if i < passes_in else "out",
                decision="pass",
                household="3-201",
                holder="Li Lei",
                temp_c=36.5,
            )
        )
    for _ in range(fevers):
        log.append(EventDraft(direction="in", decision="deny", reasons=("fever",), temp_c=38.5))
    for _ in range(registrations):
        log.append(
            EventDraft(
                direction="in",
                decision="manual_pass",
                kind="registration",
                operator="Zhao",
                person={"name": "Old Li", "phone": "-"},
            )
        )
    for occupants in cars:
        log.append(
            EventDraft(
                direction="in",
                decision="manual_pass",
                kind="vehicle",
                operator="Zhao",
                person={"plate": "京A12345", "occupants": occupants},
            )
        )
        core.clock.advance(60)


def test_fleet_report_rolls_the_office_categories_up_across_two_gates(
    tmp_path, pg_dsn, monkeypatch, capsys
):
    start = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 Shanghai
    east = make_kiosk(tmp_path / "e.db", "gate-east", FakeClock(start=start))
    west = make_kiosk(tmp_path / "w.db", "gate-west", FakeClock(start=start))
    try:
        _day_at_a_gate(east, 5, 3, 1, 2, [2, 3])
        _day_at_a_gate(west, 4, 6, 2, 1, [1])
        for core in (east, west):
            pull_pg(f"http://{core.config.site.kiosk_id}", core.token, pg_dsn, Network(core))
        report = district_report(pg_dsn, DAY, "Asia/Shanghai")
        community = report["community"]
        # People in: the passes and the people registered by hand (3) who came in.
        assert community["people"] == {"in": 12, "out": 9}
        assert community["fevers"] == {"gate": 3, "returnee_checks": None}
        assert community["registrations"] == 3
        assert community["vehicles"] == {"registrations": 3, "occupants": 6, "unknown_plates": None}
        # The ledgers stay at the gates: unknown centrally, never a made-up zero.
        assert community["returnees"] is None and community["service_requests"] is None
        per_gate = {g["kiosk_id"]: g["community"] for g in report["by_gate"]}
        assert per_gate["gate-east"]["people"] == {"in": 7, "out": 3}
        assert per_gate["gate-west"]["vehicles"]["occupants"] == 1
        assert per_gate["gate-east"]["registrations"] + per_gate["gate-west"]["registrations"] == 3

        monkeypatch.setenv("KIOSK_FLEET_DSN", pg_dsn)
        assert main(["fleet", "report", "--day", "2026-03-02", "--tz", "Asia/Shanghai"]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["community"] == community
    finally:
        east.store.close()
        west.store.close()
