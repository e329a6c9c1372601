"""The district report counts no outing on a pass the gate did not open for.

A pass whose relay failed (or whose commit landed after its deadline) is followed in the log by
a ``deny`` flagged ``not_opened:<seq>``: nobody went through. The gate's own report counts no
outing on it (``kiosk.stats``), but the office's district report counted each compound's
outings from the pass rows alone (``office.compounds``): the household counted out, its exits
one too many (real PostgreSQL, as in test_fleet_quota.py)."""

from __future__ import annotations

import json
from datetime import timedelta

from test_fleet_quota import DAY, START, _out, _to_the_office, gates  # noqa: F401 - a fixture

from checkpoint.cli import main
from kiosk.store import EventDraft

pytest_plugins = ("pgfixture",)


def _not_opened(core) -> None:
    """The gate's relay failed on its last pass: the row after it says so."""
    [(seq, household)] = core.store.reader().execute(
        "SELECT seq, household FROM events ORDER BY seq DESC LIMIT 1"
    )
    core.store.append(
        EventDraft(
            direction="out",
            decision="deny",
            reasons=("gate_fault",),
            household=household,
            holder="Li Lei",
            flags=(f"not_opened:{seq}",),
        )
    )


def test_the_district_counts_no_outing_on_a_pass_the_gate_did_not_open_for(
    gates,  # noqa: F811 - the fixture imported
    pg_dsn,
    monkeypatch,
    capsys,
):
    north = gates("gate-north", peers=["gate-south"])
    south = gates("gate-south", peers=["gate-north"])
    _out(north, "3-201", 0)
    _not_opened(north)  # the relay did not open: the resident went out at the south gate
    _out(south, "3-201", 0.5)
    _out(south, "5-101", 7)
    for core in (north, south):
        core.clock.set_wall(START + timedelta(days=1))
    _to_the_office(pg_dsn, north, south)
    monkeypatch.setenv("KIOSK_FLEET_DSN", pg_dsn)
    assert main(["fleet", "report", "--day", DAY.isoformat()]) == 0
    exits = json.loads(capsys.readouterr().out)["exits_per_household"]
    (compound,) = exits["compounds"]
    assert (compound["households"], compound["exits"]) == (2, 2)
    assert compound["histogram"] == {"1": 2}
    assert compound["over_quota_households"] == 0
    assert (exits["households"], exits["exits"], exits["over_quota_households"]) == (2, 2, 0)
