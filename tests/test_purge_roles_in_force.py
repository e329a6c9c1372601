"""A purge inside the quota's look-back keeps the household of an exit the quota counts by the
roles in force (``kiosk.history.counted_outing``), not by the ``quota_exempt`` flag the exit
was given when it was made (rvcfg2)."""

from datetime import UTC, datetime, timedelta

from kiosk.config.policy import QuotaConfig
from kiosk.retention import purge
from kiosk.store import EventDraft

DAY_START = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
TZ = "Asia/Shanghai"


def _exit(store, clock, flags, hours=2):
    clock.set_wall(DAY_START + timedelta(hours=hours))
    store.append(
        EventDraft(direction="out", decision="pass", reasons=("ok",), household="F6", flags=flags)
    )


def _purged_households(store, clock, quota):
    now = DAY_START + timedelta(hours=10)
    clock.set_wall(now)
    result = purge(store, 0, now, tz=TZ, quota_cfg=quota)
    assert result.households_held_from is not None  # the cutoff lies inside the look-back
    rows = store.reader().execute("SELECT household FROM events WHERE direction = 'out'")
    return [r[0] for r in rows]


def test_a_carers_exit_is_kept_once_the_roles_count_staff(reporting_store, clock):
    # made while the quota counted residents only: flagged quota_exempt, with its role
    _exit(reporting_store, clock, ("role:staff", "quota_exempt"))
    widened = QuotaConfig(enabled=True, exits=1, period_days=2, roles=("resident", "staff"))
    assert _purged_households(reporting_store, clock, widened) == ["F6"]


def test_a_couriers_exit_is_emptied_though_made_with_the_quota_off(reporting_store, clock):
    _exit(reporting_store, clock, ("role:delivery",))  # the quota off: nothing exempt
    on = QuotaConfig(enabled=True, exits=1, period_days=2)  # residents
    assert _purged_households(reporting_store, clock, on) == [""]


def test_a_row_without_a_role_is_judged_as_then(reporting_store, clock):
    _exit(reporting_store, clock, ("quota_exempt",), hours=1)
    _exit(reporting_store, clock, (), hours=2)
    on = QuotaConfig(enabled=True, exits=1, period_days=2, roles=("resident", "staff"))
    assert _purged_households(reporting_store, clock, on) == ["", "F6"]
