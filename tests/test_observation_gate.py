"""The observation ledger reaches the gate: ``build_core`` hands it to the engine, so the
daemon and replay (``VirtualKiosk`` on the same core) both apply ``policy.observation_blocks``."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from checkpoint.replay import parse_scenario, replay
from kiosk import lists
from kiosk.clock import FakeClock
from kiosk.ledgers import MIGRATIONS, Ledgers
from kiosk.store import EventLog

TZ = ZoneInfo("Asia/Shanghai")
WANG = {"household": "3-2-701", "holder": "Wang Fang"}
LI = {"household": "3-2-702", "holder": "Li Lei"}


def _register_wang(db, clock):
    log = EventLog(db, "kiosk-1", clock, "NORMAL", migrations=[lists.MIGRATIONS, *MIGRATIONS])
    with log.open():
        Ledgers.build(log, clock, TZ, 37.3).observation.register(
            name="Wang Fang", household="3-2-701", phone="13812345678", origin="Wuhan",
            date_back=date(2026, 2, 10), actor="manager",
        )  # fmt: skip


def _step(at_s, who, direction, decision, reasons):
    return {
        "at_s": at_s, "pass": who, "body_c": 36.6, "direction": direction,
        "expect": {"decision": decision, "reasons": reasons},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("blocks", "out_expect", "in_expect"),
    [
        # Coming home is never blocked by "out"; but said by the screen's button (this
        # two-way kiosk has no lane readers), it could be the returnee walking out: the guard
        # looks, as for home quarantine (a lane's "in" passes: test_policy_regressions).
        ("out", ("deny", ["under_observation"]), ("deny", ["under_observation"])),
        ("none", ("pass", ["ok"]), ("pass", ["ok"])),
    ],
)
@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_an_observing_persons_pass_going_out_is_denied_when_the_config_says_so(
    tmp_path, blocks, out_expect, in_expect
):
    db = tmp_path / "kiosk.db"
    clock = FakeClock(start=datetime(2026, 2, 12, 8, 0, tzinfo=TZ))
    _register_wang(db, clock)
    steps = [
        _step(1.0, WANG, "out", *out_expect),
        _step(20.0, WANG, "in", *in_expect),
        _step(40.0, LI, "out", "pass", ["ok"]),  # nobody else is observed
    ]
    scenario = parse_scenario(
        {
            "name": "observed",
            "start": datetime(2026, 2, 12, 9, 0, tzinfo=TZ),
            "config": {"policy": {"observation_blocks": blocks}},
            "steps": steps,
        },
        "observed.toml",
    )
    result = replay(scenario, db_path=db)
    assert result.failures == []
    assert [d["decision"] for d in result.decisions] == [out_expect[0], in_expect[0], "pass"]
