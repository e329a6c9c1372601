"""The outing quota's look-back reaching into what retention already purged: the daily report's
``over_quota_households`` and the gate's history rebuilt at start (docs/privacy.md,
docs/policy.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from kiosk.config import KioskConfig
from kiosk.config.policy import QuotaConfig
from kiosk.retention import purge
from kiosk.stats import daily_report
from kiosk.store import EventDraft

TZ = "Asia/Shanghai"
QUOTA = QuotaConfig(enabled=True, exits=1, period_days=2)
DAY = date(2026, 3, 2)
DAY_START = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)  # DAY's local midnight


@pytest.fixture
def store(reporting_store):
    return reporting_store


def out(store, clock, when: datetime, household: str | None) -> None:
    clock.set_wall(when)
    store.append(
        EventDraft(
            direction="out", decision="pass", reasons=("ok",), temp_c=36.6, household=household
        )
    )


def test_the_config_lets_retention_purge_inside_the_reports_look_back():
    """``store.retention_days`` equal to ``policy.quota.period_days`` is accepted: the hourly
    purge then nulls the households of the day before a day's look-back while that day is not
    complete (not frozen) yet."""
    config = KioskConfig.model_validate(
        {"store": {"retention_days": 2}, "policy": {"quota": {"enabled": True, "period_days": 2}}}
    )
    assert config.store.retention_days == config.policy.quota.period_days


def test_an_outing_purged_in_the_look_back_makes_over_the_quota_unknown_not_zero(store, clock):
    """F6 out at 23:00 on 28 February and again at 01:00 on 2 March (26 h later: over the
    quota). The daemon's hourly purge of 23:30 on 2 March (retention 2 days) nulled the first
    outing's household before the day was complete; the report of 2 March (and its copy frozen
    at the next purge) then said 0 households over the quota: the purged outing read as no
    outing. It is unknown (``null``), as a day whose own outings were purged says them."""
    out(store, clock, DAY_START - timedelta(hours=25), "F6")
    out(store, clock, DAY_START + timedelta(hours=1), "F6")
    out(store, clock, DAY_START + timedelta(hours=3), "G7")
    purge(store, 2, DAY_START + timedelta(hours=23, minutes=30), tz=TZ, quota_cfg=QUOTA)
    live = daily_report(store.reader(), DAY, TZ, QUOTA)["exits_per_household"]
    assert live["over_quota_households"] is None
    assert (live["households"], live["exits"], live["max"]) == (2, 2, 1)  # the day's own: known
    purge(store, 2, DAY_START + timedelta(hours=24, minutes=30), tz=TZ, quota_cfg=QUOTA)
    frozen = daily_report(store.reader(), DAY, TZ, QUOTA)["exits_per_household"]
    assert frozen == live


def test_nothing_purged_in_the_look_back_keeps_over_the_quota_counted(store, clock):
    out(store, clock, DAY_START - timedelta(hours=25), "F6")
    out(store, clock, DAY_START + timedelta(hours=1), "F6")
    purge(store, 3, DAY_START + timedelta(hours=23, minutes=30), tz=TZ, quota_cfg=QUOTA)
    exits = daily_report(store.reader(), DAY, TZ, QUOTA)["exits_per_household"]
    assert exits["over_quota_households"] == 1


def test_a_purged_outing_before_the_look_back_leaves_over_the_quota_counted(store, clock):
    out(store, clock, DAY_START - timedelta(hours=60), "F6")  # before the two days' period
    out(store, clock, DAY_START + timedelta(hours=1), "F6")
    purge(store, 2, DAY_START + timedelta(hours=1, minutes=30), tz=TZ, quota_cfg=QUOTA)
    exits = daily_report(store.reader(), DAY, TZ, QUOTA)["exits_per_household"]
    assert exits["over_quota_households"] == 0


def test_a_known_over_household_is_counted_whatever_was_purged_before(store, clock):
    """The purged outing could only add to a household already over by what is known."""
    out(store, clock, DAY_START - timedelta(hours=25), "X1")
    out(store, clock, DAY_START + timedelta(hours=1), "F6")
    out(store, clock, DAY_START + timedelta(hours=5), "F6")  # over: F6 out at 01:00 already
    purge(store, 2, DAY_START + timedelta(hours=23, minutes=30), tz=TZ, quota_cfg=QUOTA)
    exits = daily_report(store.reader(), DAY, TZ, QUOTA)["exits_per_household"]
    assert exits["over_quota_households"] == 1


# --- the gate's look-back: retention never purges inside it ------------------------------------

BERLIN = "Europe/Berlin"
AUTUMN_NOW = datetime(2026, 10, 26, 11, 0, tzinfo=UTC)  # 12:00 CET, the day after the change


def _household_of(store, when: datetime) -> str | None:
    row = store.reader().execute(
        "select household from events where ts like ?", [when.strftime("%Y-%m-%dT%H:%M:%S") + "%"]
    )
    return row.fetchone()[0]


def test_the_hourly_purge_across_the_autumn_change_keeps_the_gates_look_back(store, clock):
    """Retention of 2 days and a quota of one outing every two days (the config allows it):
    two days on the site's clock across the autumn change are 49 hours, the purge's 2 days 48.
    An outing 48 h 30 min before was nulled though the gate's look-back holds it: restarted
    within that hour, the gate counted it as no outing and let the household out again."""
    outing = AUTUMN_NOW - timedelta(hours=48, minutes=30)
    out(store, clock, outing, "F6")
    clock.set_wall(AUTUMN_NOW)
    result = purge(store, 2, AUTUMN_NOW, tz=BERLIN, quota_cfg=QUOTA)
    assert _household_of(store, outing) == "F6"
    assert result.cutoff == AUTUMN_NOW - timedelta(hours=48)  # the rest by the cutoff asked
    assert result.households_held_from == datetime(2026, 10, 24, 10, 0, tzinfo=UTC)  # 12:00, 49 h


def test_a_purge_by_hand_shorter_than_the_quotas_period_keeps_the_look_back(store, clock):
    """``kiosk purge --older-than 0`` (the CLI takes 0 to 36,500 days): the households of the
    quota's period are what the gate counts after a restart; they stay, the rest goes."""
    recent = DAY_START + timedelta(hours=2)
    old = DAY_START - timedelta(days=3)
    out(store, clock, old, "E5")
    out(store, clock, recent, "F6")
    now = DAY_START + timedelta(hours=10)
    clock.set_wall(now)
    purge(store, 0, now, tz=TZ, quota_cfg=QUOTA)
    assert (_household_of(store, old), _household_of(store, recent)) == ("", "F6")


def _row(store, when: datetime) -> dict:
    cols = ("pass_id", "household", "holder", "person", "purged_at")
    row = store.reader().execute(
        f"select {', '.join(cols)} from events where ts like ?",
        [when.strftime("%Y-%m-%dT%H:%M") + "%"],
    )
    return dict(zip(cols, row.fetchone(), strict=True))


def test_the_look_back_holds_only_the_households_of_its_outings(store, clock):
    """``kiosk purge --older-than 0`` with the quota on moved the whole cutoff back to the
    quota's look-back: names, pass ids, a person's details, audit details of the last two days
    were all kept. Only an outing's household is (its direction, decision and flags never go);
    the rest goes by the cutoff asked, the verification still passes, and the next purge past
    the look-back empties the household."""
    recent = DAY_START + timedelta(hours=2)
    clock.set_wall(recent)
    store.append(
        EventDraft(
            direction="out", decision="pass", reasons=("ok",), household="F6",
            pass_id="p" * 12, holder="Li Lei", person={"name": "Li Lei", "phone": "13800138000"},
        )
    )  # fmt: skip
    coming_home = recent + timedelta(minutes=5)
    clock.set_wall(coming_home)
    store.append(
        EventDraft(direction="in", decision="pass", reasons=("ok",), household="G7", holder="Wu")
    )
    store.audit("guard", "list_change", {"holder": "Li Lei", "household": "F6"})
    now = DAY_START + timedelta(hours=10)
    clock.set_wall(now)
    result = purge(store, 0, now, tz=TZ, quota_cfg=QUOTA)
    assert result.cutoff == now and result.households_held_from == now - timedelta(days=2)
    assert result.as_dict()["households_held_from"] == (now - timedelta(days=2)).isoformat()
    outing = _row(store, recent)
    assert outing["household"] == "F6" and outing["purged_at"] is not None
    assert (outing["pass_id"], outing["holder"], outing["person"]) == (None, None, None)
    assert _row(store, coming_home)["household"] == ""  # no outing: nothing the quota needs
    details = [a["detail"] for a in store.audits(limit=100) if a["action"] == "list_change"]
    assert details == [None]
    assert store.verify().ok
    later = now + timedelta(days=2)
    clock.set_wall(later)
    purge(store, 0, later, tz=TZ, quota_cfg=QUOTA)
    assert _row(store, recent)["household"] == ""
    assert store.verify().ok


def test_without_the_quota_a_purge_keeps_only_its_days(store, clock):
    recent = DAY_START + timedelta(hours=2)
    out(store, clock, recent, "F6")
    now = DAY_START + timedelta(hours=10)
    clock.set_wall(now)
    purge(store, 0, now, tz=TZ, quota_cfg=QuotaConfig(enabled=False))
    assert _household_of(store, recent) == ""  # emptied: PURGED_HOUSEHOLD


@pytest.fixture
def quota_client(data_dir, clock, monkeypatch):
    """The console on a core with the quota on and retention its least (``period_days``)."""
    from fastapi.testclient import TestClient
    from guard_support import BASE, close_core, make_app, make_core

    from kiosk.config import parse_config

    config = parse_config(
        {"store": {"retention_days": 2}, "policy": {"quota": {"enabled": True, "period_days": 2}}}
    )
    core = make_core(data_dir, clock, monkeypatch, config)
    try:
        with TestClient(make_app(core), base_url=BASE) as client:
            yield client, core
    finally:
        close_core(core)


def test_the_console_says_over_the_quota_unknown_not_none(quota_client, clock):
    from guard_support import login

    guard_client, guard_core = quota_client

    day_start = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
    for when in (day_start - timedelta(hours=25), day_start + timedelta(hours=1)):
        clock.set_wall(when)
        guard_core.store.append(
            EventDraft(direction="out", decision="pass", reasons=("ok",), household="F6")
        )
    now = day_start + timedelta(hours=23, minutes=30)
    clock.set_wall(now)
    purge(guard_core.store, 2, now, tz=TZ, quota_cfg=QUOTA)
    login(guard_client)
    page = guard_client.get("/guard/stats?day=2026-03-02").text
    summary = page.split('id="exits-summary">')[1].split("</p>")[0]
    assert summary.startswith("外出住户 1 户，超出配额户数不明")


def test_a_purged_exit_that_named_no_household_leaves_over_the_quota_known(store, clock):
    """A visitor's exit (no household) in the look-back, purged: nothing a household did
    went; before, it made over_quota_households unknown."""
    out(store, clock, DAY_START - timedelta(hours=25), None)
    out(store, clock, DAY_START + timedelta(hours=1), "F6")
    purge(store, 2, DAY_START + timedelta(hours=23, minutes=30), tz=TZ, quota_cfg=QUOTA)
    exits = daily_report(store.reader(), DAY, TZ, QUOTA)["exits_per_household"]
    assert exits["over_quota_households"] == 0


def test_purged_outings_too_few_to_tip_a_household_leave_over_the_quota_known(store, clock):
    """Two outings every two days: one outing purged in the look-back, F6 out once on the day
    with nothing before it. Were the purged one F6's, F6 had one before, not two: nobody is
    over, known (before: unknown as soon as any purged outing lay in F6's period)."""
    two = QuotaConfig(enabled=True, exits=2, period_days=2)
    out(store, clock, DAY_START - timedelta(hours=25), "X1")
    out(store, clock, DAY_START + timedelta(hours=1), "F6")
    purge(store, 2, DAY_START + timedelta(hours=23, minutes=30), tz=TZ, quota_cfg=two)
    assert (
        daily_report(store.reader(), DAY, TZ, two)["exits_per_household"]["over_quota_households"]
        == 0
    )


def test_purged_outings_that_could_tip_a_household_leave_over_the_quota_unknown(store, clock):
    """Two outings every two days: two purged in the look-back (or one and F6's own before):
    they may have been F6's, and F6 over: unknown."""
    two = QuotaConfig(enabled=True, exits=2, period_days=2)
    out(store, clock, DAY_START - timedelta(hours=25), "X1")
    out(store, clock, DAY_START - timedelta(hours=24), "F6")
    out(store, clock, DAY_START + timedelta(hours=1), "F6")
    purge(store, 2, DAY_START + timedelta(hours=23, minutes=30), tz=TZ, quota_cfg=two)
    assert (
        daily_report(store.reader(), DAY, TZ, two)["exits_per_household"]["over_quota_households"]
        is None
    )


def test_a_forget_empties_a_household_the_look_back_held(store, clock):
    from kiosk.people import Person, forget

    recent = DAY_START + timedelta(hours=2)
    out(store, clock, recent, "F6")
    now = DAY_START + timedelta(hours=10)
    clock.set_wall(now)
    purge(store, 0, now, tz=TZ, quota_cfg=QUOTA)
    assert _row(store, recent)["household"] == "F6"
    forget(store, Person.of(household="F6"), now, actor="t")
    assert _row(store, recent)["household"] == ""
    assert store.verify().ok


def test_rows_purged_before_the_marker_that_may_be_outings_stay_unknown(tmp_path, clock):
    """A log purged by an older release nulled every household: its passing exits are marked
    as having had one on upgrade (whose unknown, as before), never read as no outing; a
    guard's pass for nobody (``unchecked``) and a row coming home are not."""
    import sqlite3

    from support import reporting_log

    path = tmp_path / "old.db"
    log = reporting_log(path, clock)
    out(log, clock, DAY_START + timedelta(hours=1), "F6")
    log.append(
        EventDraft(direction="out", decision="manual_pass", reasons=("ok",), flags=("unchecked",))
    )
    log.append(EventDraft(direction="in", decision="pass", reasons=("ok",), household="G7"))
    clock.set_wall(DAY_START + timedelta(days=5))
    purge(log, 1, clock.now(), tz=TZ)
    log.close()
    conn = sqlite3.connect(path)  # as an older release left it: no marker, the step not run
    conn.execute("UPDATE events SET household = NULL")
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm010_purged_households'")
    conn.commit()
    conn.close()
    log = reporting_log(path, clock)
    try:
        rows = log.reader().execute("select household from events order by seq").fetchall()
    finally:
        log.close()
    assert [r[0] for r in rows] == ["", None, None]


def test_purge_0_keeps_the_other_gates_outings_of_the_look_back(tmp_path, clock):
    """``kiosk purge --older-than 0`` with the quota on deleted every passage of the other
    gates held here, those of the quota's look-back too: F6, out at the east gate 8 hours
    before, went out again here after a restart. Their outings in the look-back keep their
    household (the pass id goes, as the gate's own rows keep only that), the rest goes by the
    cutoff asked, and a later purge deletes them once the look-back has passed them."""
    from kiosk import peers, stats, tokens
    from kiosk.history import PassageHistory
    from kiosk.store import EventLog, format_ts

    migrations = [tokens.MIGRATIONS, stats.MIGRATIONS, peers.MIGRATIONS]
    log = EventLog(tmp_path / "k.db", "gate-1", clock, "NORMAL", migrations=migrations).open()
    rows = [  # seq, pass id, household, direction, hours after DAY_START
        (1, "p-old", "F6", "out", -60),  # before the look-back
        (2, "p-1", "F6", "out", 2),
        (3, "p-2", "G7", "in", 3),  # no outing
    ]

    def put(db):
        for seq, pass_id, household, direction, hours in rows:
            at = format_ts(DAY_START + timedelta(hours=hours))
            db.execute(
                "INSERT INTO peer_passages (kiosk_id, seq, pass_id, household, direction,"
                " decision, ts, flags, fetched_at) VALUES ('east', ?, ?, ?, ?, 'pass', ?, '[]', ?)",
                [seq, pass_id, household, direction, at, at],
            )

    try:
        log.submit(put)
        now = DAY_START + timedelta(hours=10)
        purge(log, 0, now, tz=TZ, quota_cfg=QUOTA)
        left = log.reader().execute("SELECT seq, pass_id, household FROM peer_passages")
        assert left.fetchall() == [(2, None, "F6")]
        history = PassageHistory()
        peers.load_peer_rows(log.reader(), history, now - timedelta(days=3))
        assert history.exits_in_period("F6", now, 2) == 1
        purge(log, 0, now + timedelta(days=3), tz=TZ, quota_cfg=QUOTA)
        assert log.reader().execute("SELECT count(*) FROM peer_passages").fetchone()[0] == 0
    finally:
        log.close()


def _edit_households(log, household: str) -> None:
    """Whoever holds the file writes ``household`` into every row, outside the log."""
    import sqlite3

    log.close()
    conn = sqlite3.connect(log.path)
    conn.execute("UPDATE events SET household = ?", [household])
    conn.commit()
    conn.close()


def _salt_kept(log) -> bool:
    """Whether the digest salt of DAY_START's period (its UTC day) is kept."""
    sql = "SELECT salt IS NOT NULL FROM digest_salts WHERE period = ?"
    return bool(log.reader().execute(sql, [f"{DAY_START:%Y-%m-%d}"]).fetchone()[0])


def test_verify_sees_a_purged_rows_household_edited(tmp_path, clock):
    """Before: ``verify`` passed over every purged row whatever its household (a42a86c4 let
    a purged row hold one for the quota's look-back): households written into purged rows
    were outings to the gate's history after a restart, and nothing said so. A purged row
    holds its marker (``""`` or null) and nothing else, as before."""
    from support import reporting_log

    log = reporting_log(tmp_path / "k.db", clock)
    clock.set_wall(DAY_START)
    log.append(EventDraft(direction="out", decision="pass", household="F6", holder="Li Lei"))
    log.append(EventDraft(direction="in", decision="pass", household="G7", holder="Wu"))
    log.append(EventDraft(direction="out", decision="pass"))  # a visitor: no household
    clock.set_wall(DAY_START + timedelta(days=30))
    purge(log, 7, clock.now(), tz=TZ, quota_cfg=QUOTA)
    assert log.verify().ok and not _salt_kept(log)
    _edit_households(log, "B-2-202")
    log = reporting_log(tmp_path / "k.db", clock)
    try:
        result = log.verify()
        assert not result.ok and "events seq 1: purged, but holds a household" in result.problem
    finally:
        log.close()


def test_verify_sees_a_household_held_for_the_look_back_edited(tmp_path, clock):
    """Before: ``kiosk purge --older-than 0`` kept F6's household for the quota's look-back
    and shredded its period's salt; an edit of it was never seen. The purge digests a held
    household with its row's key and keeps the period's salt while one is held; the release
    drops the digest, and the salt goes at the purge after."""
    from support import reporting_log

    log = reporting_log(tmp_path / "k.db", clock)
    clock.set_wall(DAY_START + timedelta(hours=2))
    log.append(EventDraft(direction="out", decision="pass", household="F6", holder="Li Lei"))
    clock.set_wall(DAY_START + timedelta(days=1))  # the purge's own row: another period
    purge(log, 0, clock.now(), tz=TZ, quota_cfg=QUOTA)
    assert log.verify().ok and _salt_kept(log)
    _edit_households(log, "B-2-202")
    log = reporting_log(tmp_path / "k.db", clock)
    try:
        result = log.verify()
        assert not result.ok and "kept for the quota does not match" in result.problem
        log.submit(lambda db: db.execute("UPDATE events SET household = 'F6'"))  # put back
        assert log.verify().ok
        clock.set_wall(DAY_START + timedelta(days=4))
        purge(log, 0, clock.now(), tz=TZ, quota_cfg=QUOTA)  # released
        assert log.verify().ok and not _salt_kept(log)
        held = log.reader().execute("SELECT count(*) FROM digest_attested WHERE tbl <> 'audit'")
        assert held.fetchone()[0] == 0
    finally:
        log.close()


def test_a_day_purged_by_hand_mid_day_is_frozen_as_it_was(store, clock):
    """``kiosk purge --older-than 0`` at 10:00 with the quota on kept the day's outings'
    households for the look-back; the nightly purges after never froze the day (it had
    purged rows) and, once the look-back had passed them, emptied them: 2 March's report
    said its households, histogram and over-quota count unknown. The day is frozen from its
    households still held before they are emptied, and its report stays as it was."""
    for household, hours in (("F6", 1), ("F6", 3), ("G7", 4)):
        out(store, clock, DAY_START + timedelta(hours=hours), household)
    before = daily_report(store.reader(), DAY, TZ, QUOTA)["exits_per_household"]
    assert (before["households"], before["over_quota_households"]) == (2, 1)
    clock.set_wall(DAY_START + timedelta(hours=10))
    purge(store, 0, clock.now(), tz=TZ, quota_cfg=QUOTA)  # by hand, mid-day
    frozen = []
    for days in (1, 2, 3, 4):  # the nightly purges after (retention 2 days)
        clock.set_wall(DAY_START + timedelta(days=days, hours=1))
        frozen += purge(store, 2, clock.now(), tz=TZ, quota_cfg=QUOTA).days_frozen
    assert frozen == [DAY]
    left = store.reader().execute("SELECT count(*) FROM events WHERE household <> ''")
    assert left.fetchone()[0] == 0  # released
    assert daily_report(store.reader(), DAY, TZ, QUOTA)["exits_per_household"] == before


@pytest.mark.parametrize(
    "flags",
    [("role:delivery", "quota_exempt"), ("quota_exempt",), ("role:visitor",)],
    ids=["a-courier", "exempt-before-role-flags", "a-visitor-on-a-household-code"],
)
def test_an_exit_the_quota_does_not_count_emptied_leaves_the_day_frozen(store, clock, flags):
    """A courier out on G7's code (or an exit exempt before the roles were flagged, a visitor
    on a household's code: none is an outing, the quota counting residents), forgotten the
    same day: its household emptied, the day was taken for one whose outings lost theirs and
    never frozen, and once the nightly purges had emptied the residents' households 2 March
    said its households, histogram, max and over-quota count unknown. Only an outing the
    day's quota counts makes a day lost (``kiosk.history.counted_outing``): it is frozen."""
    from kiosk.people import Person, forget

    for household, hours in (("F6", 1), ("F6", 3), ("G7", 4)):
        out(store, clock, DAY_START + timedelta(hours=hours), household)
    clock.set_wall(DAY_START + timedelta(hours=5))
    store.append(
        EventDraft(
            direction="out", decision="pass", reasons=("ok",), household="G7",
            holder="Courier Wang", flags=flags,
        )
    )  # fmt: skip
    before = daily_report(store.reader(), DAY, TZ, QUOTA)["exits_per_household"]
    assert (before["households"], before["exits"], before["over_quota_households"]) == (2, 3, 1)
    clock.set_wall(DAY_START + timedelta(hours=10))
    forget(store, Person.of(name="Courier Wang"), clock.now(), actor="t", tz=TZ, quota_cfg=QUOTA)
    assert _row(store, DAY_START + timedelta(hours=5))["household"] == ""  # emptied
    frozen = []
    for days in (1, 2, 3, 4):  # the nightly purges after (retention 2 days)
        clock.set_wall(DAY_START + timedelta(days=days, hours=1))
        frozen += purge(store, 2, clock.now(), tz=TZ, quota_cfg=QUOTA).days_frozen
    assert frozen == [DAY]
    assert daily_report(store.reader(), DAY, TZ, QUOTA)["exits_per_household"] == before


MORNING = DAY_START + timedelta(hours=9)  # 09:00 on DAY in Shanghai


def _outing_before_ntp(tmp_path, boot: datetime):
    """A gate booted on a clock not set (``boot``), a resident of 1-101 out, then NTP sets
    the clock to ``MORNING`` + 10 min and the gate records on: (config, clock, core)."""
    from checkpoint.app import build_core
    from kiosk.clock import FakeClock
    from kiosk.config import parse_config

    quota = QUOTA.model_dump(mode="json")
    config = parse_config({"site": {"timezone": TZ}, "policy": {"quota": quota}})
    clock = FakeClock(start=boot, is_synced=False)
    core = build_core(config, tmp_path, clock)
    core.store.append(
        EventDraft(direction="out", decision="pass", household="1-101", flags=("role:resident",))
    )
    clock.advance(600)
    clock.set_wall(MORNING + timedelta(minutes=10))  # NTP
    clock.is_synced = True
    core.store.append(EventDraft(direction="in", decision="pass", household="2-202"))
    return config, clock, core


@pytest.mark.parametrize(
    "boot", [MORNING - timedelta(days=3), datetime(1970, 1, 1, tzinfo=UTC)], ids=["behind", "1970"]
)
def test_purge_0_keeps_the_household_of_an_outing_stamped_before_ntp(tmp_path, boot):
    """An outing this morning stamped before NTP set the clock (fake-hwclock's days behind,
    1970; the history dates it by its boot) lost its household to ``kiosk purge --older-than
    0``, which held only the exits stamped inside the look-back: after a restart 1-101 had no
    outing in the quota's period and went out again. Every exit stamped on a clock not set is
    held; the next purges after the look-back empty it."""
    from checkpoint.app import build_core

    config, clock, core = _outing_before_ntp(tmp_path, boot)
    try:
        clock.advance(3600)
        purge(core.store, 0, clock.now(), tz=TZ, quota_cfg=config.policy.quota)
    finally:
        core.close()
    restarted = build_core(config, tmp_path, clock)
    try:
        restarted.runner._load_history()
        assert restarted.runner.history.exits_in_period("1-101", clock.now(), 2) == 1
        clock.set_wall(MORNING + timedelta(days=3))
        purge(restarted.store, 0, clock.now(), tz=TZ, quota_cfg=config.policy.quota)
        held = restarted.store.reader().execute("select household from events where seq = 1")
        assert held.fetchone()[0] == ""  # the look-back passed: emptied
    finally:
        restarted.close()


def test_a_household_held_by_its_stamp_a_year_ahead_goes_after_the_look_back(tmp_path):
    """A Pi booted on a clock a year ahead (a bad fake-hwclock save), a resident out before
    NTP set it back: ``kiosk purge --older-than 0`` held the household, and the purges after
    let it go only once its stamp, a year ahead, had left the look-back: kept a year past
    retention. An outing comes before its purge: the look-back past the purge, it goes."""
    config, clock, core = _outing_before_ntp(tmp_path, MORNING + timedelta(days=365))
    quota = config.policy.quota
    try:
        clock.advance(3600)
        purge(core.store, 0, clock.now(), tz=TZ, quota_cfg=quota)
        first = "select household from events where seq = 1"
        assert core.store.reader().execute(first).fetchone()[0] == "1-101"  # held
        clock.set_wall(MORNING + timedelta(days=3))
        core.store.append(EventDraft(direction="in", decision="pass"))  # the gate in use
        purge(core.store, 30, clock.now(), tz=TZ, quota_cfg=quota)  # the nightly purge
        assert core.store.reader().execute(first).fetchone()[0] == ""
    finally:
        core.close()
