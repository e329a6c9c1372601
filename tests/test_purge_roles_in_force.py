"""A purge inside the quota's look-back keeps the household of every passing exit there,
whatever its role (rvcfg2, rv30b): the roles the quota counts may change within the period
(a restart with new ``quota.roles``), and the history rebuilt then judges each exit by the
roles in force (``kiosk.history.counted_outing``). Judged by the roles of the purge's day, a
carer's exit emptied while staff were not counted was no outing once they were: the household
went out again."""

from datetime import UTC, datetime, timedelta

from kiosk.config.policy import QuotaConfig
from kiosk.retention import purge
from kiosk.store import EventDraft

DAY_START = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
TZ = "Asia/Shanghai"
RESIDENTS = QuotaConfig(enabled=True, exits=1, period_days=2)
WIDE = RESIDENTS.model_copy(update={"roles": ("resident", "staff")})


def _exit(store, clock, flags, hours=2):
    clock.set_wall(DAY_START + timedelta(hours=hours))
    store.append(
        EventDraft(direction="out", decision="pass", reasons=("ok",), household="F6", flags=flags)
    )


def _households(store):
    rows = store.reader().execute("SELECT household FROM events WHERE direction = 'out'")
    return [r[0] for r in rows]


def _purged_households(store, clock, quota, hours=10):
    now = DAY_START + timedelta(hours=hours)
    clock.set_wall(now)
    result = purge(store, 0, now, tz=TZ, quota_cfg=quota)
    assert result.households_held_from is not None  # the cutoff lies inside the look-back
    return _households(store)


def test_a_carers_exit_is_kept_once_the_roles_count_staff(reporting_store, clock):
    # made while the quota counted residents only: flagged quota_exempt, with its role
    _exit(reporting_store, clock, ("role:staff", "quota_exempt"))
    assert _purged_households(reporting_store, clock, WIDE) == ["F6"]


def test_a_couriers_exit_is_kept_in_the_look_back_though_not_counted(reporting_store, clock):
    _exit(reporting_store, clock, ("role:delivery",))  # the quota off: nothing exempt
    assert _purged_households(reporting_store, clock, RESIDENTS) == ["F6"]


def test_a_row_without_a_role_is_kept_as_any_other(reporting_store, clock):
    _exit(reporting_store, clock, ("quota_exempt",), hours=1)
    _exit(reporting_store, clock, (), hours=2)
    assert _purged_households(reporting_store, clock, RESIDENTS) == ["F6", "F6"]


def test_a_couriers_household_goes_once_the_look_back_has_passed_it(reporting_store, clock):
    """Kept no longer than a resident's: the first purge after the look-back empties it."""
    _exit(reporting_store, clock, ("role:delivery", "quota_exempt"))
    assert _purged_households(reporting_store, clock, RESIDENTS) == ["F6"]
    assert _purged_households(reporting_store, clock, RESIDENTS, hours=2 + 49) == [""]


def _reached(store, clock):
    """Whether F6's resident is held by the quota counting staff, by the history a restart
    rebuilds from the log."""
    from kiosk.history import PassageHistory
    from kiosk.policy import quota_reached
    from kiosk.store import decode_event_row

    history = PassageHistory(timedelta(days=3), roles=WIDE.roles)
    cols = ("seq", "pass_id", "household", "direction", "decision", "ts", "flags")
    rows = store.reader().execute(f"select {', '.join(cols)} from events")
    history.load(decode_event_row(dict(zip(cols, r, strict=True))) for r in rows.fetchall())
    return quota_reached(WIDE, history, "F6", "resident", clock.now(), tz=TZ)


def test_a_carers_exit_purged_then_the_roles_widened_still_holds_the_household(
    reporting_store, clock
):
    """09:00 a carer out on F6's code, the quota counting residents (flagged quota_exempt);
    10:00 ``kiosk purge --older-than 0`` emptied its household (staff not counted); 11:00 the
    admin widened ``quota.roles`` to count staff and restarted: the rebuilt history had lost
    the carer's outing, and F6's resident was let out again (held without the purge)."""
    _exit(reporting_store, clock, ("role:staff", "quota_exempt"), hours=9)
    clock.set_wall(DAY_START + timedelta(hours=9, minutes=30))
    assert _reached(reporting_store, clock)  # without a purge
    assert _purged_households(reporting_store, clock, RESIDENTS) == ["F6"]
    clock.set_wall(DAY_START + timedelta(hours=11))  # the restart, staff counted
    assert _reached(reporting_store, clock)


def test_the_other_gates_couriers_exits_are_kept_in_the_look_back(tmp_path, clock):
    """The peers' rows the look-back holds keep the household of every passing exit, as the
    gate's own (a peer's rows deleted are gone for good: its cursor has passed them)."""
    from kiosk import peers, stats, tokens
    from kiosk.store import EventLog, format_ts

    migrations = [tokens.MIGRATIONS, stats.MIGRATIONS, peers.MIGRATIONS]
    log = EventLog(tmp_path / "k.db", "gate-1", clock, "NORMAL", migrations=migrations).open()
    rows = [  # seq, household, direction, flags
        (1, "F6", "out", '["role:staff", "quota_exempt"]'),
        (2, "G7", "out", '["role:delivery"]'),
        (3, "H8", "in", '["role:staff"]'),  # no exit
    ]
    at = format_ts(DAY_START + timedelta(hours=2))

    def put(db):
        for seq, household, direction, flags in rows:
            db.execute(
                "INSERT INTO peer_passages (kiosk_id, seq, pass_id, household, direction,"
                " decision, ts, flags, fetched_at) VALUES ('east', ?, 'p', ?, ?, 'pass', ?, ?, ?)",
                [seq, household, direction, at, flags, at],
            )

    try:
        log.submit(put)
        purge(log, 0, DAY_START + timedelta(hours=10), tz=TZ, quota_cfg=RESIDENTS)
        left = log.reader().execute("SELECT seq, household FROM peer_passages ORDER BY seq")
        assert left.fetchall() == [(1, "F6"), (2, "G7")]
    finally:
        log.close()


def test_the_nightly_purge_empties_a_held_household_once_the_look_back_passed_it(
    reporting_store, clock
):
    """rv30e: a courier out for F6, held the same day by ``kiosk purge --older-than 0`` for the
    look-back (2 days); the nightly purge (``retention_days`` 30: its cutoff outside the
    look-back, so it holds nothing) kept the household till the 30th day."""
    _exit(reporting_store, clock, ("role:delivery",))
    assert _purged_households(reporting_store, clock, RESIDENTS) == ["F6"]
    now = DAY_START + timedelta(days=3, minutes=30)
    clock.set_wall(now)
    assert purge(reporting_store, 30, now, tz=TZ, quota_cfg=RESIDENTS).households_held_from is None
    assert _households(reporting_store) == [""]


def test_a_held_household_goes_at_the_next_purge_once_the_quota_is_off(reporting_store, clock):
    _exit(reporting_store, clock, ("role:delivery",))
    assert _purged_households(reporting_store, clock, RESIDENTS) == ["F6"]
    now = DAY_START + timedelta(hours=12)
    clock.set_wall(now)
    purge(reporting_store, 30, now, tz=TZ, quota_cfg=QuotaConfig(enabled=False))
    assert _households(reporting_store) == [""]


def test_the_other_gates_held_exits_go_under_the_nightly_purge(tmp_path, clock):
    """A peer's courier exit held by ``kiosk purge --older-than 0`` (its pass id nulled) is
    deleted by the nightly purge once the look-back has passed it, not at 30 days."""
    from kiosk import peers, stats, tokens
    from kiosk.store import EventLog, format_ts

    migrations = [tokens.MIGRATIONS, stats.MIGRATIONS, peers.MIGRATIONS]
    log = EventLog(tmp_path / "k.db", "gate-1", clock, "NORMAL", migrations=migrations).open()
    at = format_ts(DAY_START + timedelta(hours=2))

    def put(db):
        db.execute(
            "INSERT INTO peer_passages (kiosk_id, seq, pass_id, household, direction,"
            " decision, ts, flags, fetched_at) VALUES ('east', 1, 'aabbccddeeff', 'F6', 'out',"
            " 'pass', ?, '[\"role:delivery\"]', ?)",
            [at, at],
        )

    def held():
        return log.reader().execute("SELECT household, pass_id FROM peer_passages").fetchall()

    try:
        log.submit(put)
        now = DAY_START + timedelta(hours=10)
        clock.set_wall(now)
        purge(log, 0, now, tz=TZ, quota_cfg=RESIDENTS)
        assert held() == [("F6", None)]
        now = DAY_START + timedelta(days=3, minutes=30)
        clock.set_wall(now)
        purge(log, 30, now, tz=TZ, quota_cfg=RESIDENTS)
        assert held() == []
    finally:
        log.close()


def test_the_other_gates_exits_without_a_pass_id_are_kept_their_retention(tmp_path, clock):
    """rv30h: a guard's manual pass typed with a household at another gate (no pass id) was
    deleted by the hourly purge an hour later with the quota off (by the next purge once the
    look-back passed it with the quota on), taken for a row an earlier purge had held: only
    rows a purge held go with the look-back, the rest keep ``retention_days``."""
    from kiosk import peers, stats, tokens
    from kiosk.store import EventLog, format_ts

    migrations = [tokens.MIGRATIONS, stats.MIGRATIONS, peers.MIGRATIONS]
    log = EventLog(tmp_path / "k.db", "gate-1", clock, "NORMAL", migrations=migrations).open()
    at = format_ts(DAY_START + timedelta(hours=2))

    def put(db):
        for seq, pass_id in ((1, None), (2, "aabbccddeeff")):
            db.execute(
                "INSERT INTO peer_passages (kiosk_id, seq, pass_id, household, direction,"
                " decision, ts, flags, fetched_at) VALUES ('east', ?, ?, 'F6', 'out',"
                " 'manual_pass', ?, '[\"role:resident\"]', ?)",
                [seq, pass_id, at, at],
            )

    def left():
        return log.reader().execute("SELECT seq FROM peer_passages ORDER BY seq").fetchall()

    try:
        log.submit(put)
        for hours, quota in ((3, QuotaConfig(enabled=False)), (3, None), (24 * 4, RESIDENTS)):
            now = DAY_START + timedelta(hours=hours)
            clock.set_wall(now)
            purge(log, 30, now, tz=TZ, quota_cfg=quota)
            assert left() == [(1,), (2,)]
        now = DAY_START + timedelta(days=31)
        clock.set_wall(now)
        purge(log, 30, now, tz=TZ, quota_cfg=RESIDENTS)
        assert left() == []
    finally:
        log.close()
