"""An overdue retention purge is said on the console, not only in the journal: a Pi whose
clock NTP never set refuses every purge (it cannot date what is old), and the personal data
past retention stayed, said only by a warning line an hour in the journal and by health's
``retention.last_run`` nobody reads (docs/operations.md, *How the clock is kept*)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from guard_support import ADMIN_PW, add_event, console_fixtures, signed_in

import kiosk.store
from checkpoint.app import Daemon
from checkpoint.notify import Notifier
from kiosk import retention
from kiosk.alarms import RETENTION_ALARM
from kiosk.retention import OVERDUE_AFTER, overdue
from kiosk.store import StoreFault

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
NAME = "Wang Lei"
clock, core, app, alice, admin = console_fixtures(START)


def retention_card(app) -> dict | None:
    """The card an admin signed in now sees (a session does not last the two days)."""
    with signed_in(app, "root", ADMIN_PW) as admin:
        alarms = admin.get("/guard/api/feed", params={"lang": "en"}).json()["alarms"]
    return next((a for a in alarms if a["key"] == RETENTION_ALARM), None)


def test_purges_refused_for_two_days_raise_a_card_that_goes_after_the_next_purge(core, clock, app):
    """Before: without NTP the daemon's purges were refused hour after hour, and the console
    said nothing; now a standing card, once they have been refused for two days by the
    monotonic clock (an unset wall clock tells no time), until a purge succeeds."""
    clock.is_synced = False
    daemon = Daemon(core, notifier=Notifier(None))
    daemon.purge_once()
    clock.advance(OVERDUE_AFTER.total_seconds() - 60)
    daemon.purge_once()
    assert core.health()["retention"]["overdue"] is None and retention_card(app) is None
    clock.advance(60)
    daemon.purge_once()
    late = core.health()["retention"]["overdue"]
    assert late == {"last_run": None, "waiting": 0, "cause": "unsynchronised", "days": 2}
    card = retention_card(app)
    # A refusal tells no row's age (a fresh install holds nothing that old): what it is said.
    assert card["title"] == "Personal data purges refused"
    assert card["detail"].startswith("Purges refused for 2 days: the clock has had no network")
    assert "past its retention, if any," in card["detail"] and "last purge: never" in card["detail"]
    assert "Tell the admin" in card["todo"]
    clock.is_synced = True
    daemon.purge_once()
    assert core.health()["retention"]["overdue"] is None and retention_card(app) is None


def test_a_last_purge_two_days_old_is_overdue_after_a_restart(core, clock, app):
    """A restarted daemon has not seen its purges refused yet: the last run's time says it."""
    Daemon(core, notifier=Notifier(None)).purge_once()
    ran = clock.now().astimezone(UTC).isoformat()
    clock.advance(OVERDUE_AFTER.total_seconds())
    late = core.health()["retention"]["overdue"]
    assert late == {"last_run": ran, "waiting": 0, "cause": "not_run", "days": 2}
    assert "no purge has completed for over two days" in retention_card(app)["detail"]


def test_events_kept_for_the_clock_for_two_days_are_overdue():
    now = START + timedelta(days=40)
    since = (now - OVERDUE_AFTER).isoformat()
    last = {"at": now.isoformat(), "waiting_for_clock": 7, "waiting_since": since}
    assert overdue(last, now) == {"last_run": now.isoformat(), "waiting": 7,
                                  "cause": "waiting_for_clock", "days": 2}  # fmt: skip
    assert overdue(last | {"waiting_since": now.isoformat()}, now) is None
    assert overdue({"at": now.isoformat()}, now) is None
    assert overdue(None, now) is None
    assert overdue(None, now, OVERDUE_AFTER.total_seconds(), "set_back")["cause"] == "set_back"


def test_purges_refused_for_less_than_the_limit_are_not_overdue():
    now = START + timedelta(days=40)
    recent = {"at": now.isoformat()}
    assert overdue(recent, now, None) is None
    # Nothing waits for the clock any more: when it last did says nothing.
    old = (now - 2 * OVERDUE_AFTER).isoformat()
    assert overdue(recent | {"waiting_for_clock": 0, "waiting_since": old}, now) is None
    assert overdue(recent, now, OVERDUE_AFTER.total_seconds() - 1, "set_back") is None
    assert overdue(recent, now, OVERDUE_AFTER.total_seconds(), "set_back")["cause"] == "set_back"


@pytest.mark.parametrize(
    "held",
    [{"mono_ns": "5", "last_mono_ns": 9, "before_s": 1.0},
     {"mono_ns": 5, "last_mono_ns": None, "before_s": 1.0},
     {"mono_ns": 5, "last_mono_ns": 9, "before_s": "1"},
     {"mono_ns": True, "last_mono_ns": 9, "before_s": 1.0}],
)  # fmt: skip
def test_a_refusal_record_not_of_its_shape_counts_no_time(held):
    assert retention.refused_seconds(held | {"boot": "b"}, "b", 10) is None
    good = {"mono_ns": 5, "last_mono_ns": 9, "before_s": 1.0, "boot": "b"}
    assert retention.refused_seconds(good, "b", 5_000_000_005) == 6.0


def _restart(core, clock, *, reboot: bool = False) -> Daemon:
    """A new daemon on the same log: what the old one held in memory is gone; after a reboot
    the monotonic clock starts again and the boot is another."""
    core.purge_refused = core.purge_step_failed = None
    if reboot:
        core.store.boot_id = "the-next-boot"
        clock.mono_ns = 1_000_000_000
    return Daemon(core, notifier=Notifier(None))


@pytest.mark.parametrize("reboot", [False, True])
def test_purges_refused_across_restarts_are_counted_together(core, clock, app, reboot):
    """Before: the time purges had been refused was held in the daemon's memory, so a Pi
    whose clock never synchronised, restarted (or rebooted) within two days, never had the
    card. It is kept in the log (``kiosk.retention.note_refused``): a restart goes on
    counting from the first refusal; a reboot carries the time they were seen refused."""
    assert core.health()["retention"]["overdue"] is None
    clock.is_synced = False
    first = Daemon(core, notifier=Notifier(None))
    first.purge_once()
    clock.advance(OVERDUE_AFTER.total_seconds() / 2)
    first.purge_once()  # its last hourly try: how long the Pi was off is not counted
    daemon = _restart(core, clock, reboot=reboot)
    daemon.purge_once()
    clock.advance(OVERDUE_AFTER.total_seconds() / 2 - 60)
    daemon.purge_once()
    assert core.health()["retention"]["overdue"] is None
    clock.advance(60)
    _restart(core, clock).purge_once()
    assert core.health()["retention"]["overdue"]["cause"] == "unsynchronised"
    clock.is_synced = True
    daemon.purge_once()  # a purge that runs ends the count
    assert core.health()["retention"]["overdue"] is None
    clock.is_synced = False
    clock.advance(OVERDUE_AFTER.total_seconds() - 60)
    _restart(core, clock).purge_once()
    assert core.health()["retention"]["overdue"] is None


def test_purges_the_card_refuses_for_two_days_raise_the_card(core, clock, app, monkeypatch):
    """A full or failing card refuses the purge's writes, and the note of the refusal too:
    the daemon counts it in memory and the card says the purges failed."""

    def refuse(*_a, **_kw):
        raise StoreFault("disk I/O error")

    monkeypatch.setattr(retention, "purge", refuse)
    monkeypatch.setattr(core.store, "submit", refuse)
    daemon = Daemon(core, notifier=Notifier(None))
    daemon.purge_once()
    clock.advance(OVERDUE_AFTER.total_seconds())
    daemon.purge_once()
    assert core.health()["retention"]["overdue"]["cause"] == "store"
    assert retention_card(app)["detail"].startswith("Purges failed for 2 days: the SD card")


def test_events_kept_for_the_clock_through_two_days_of_purges_raise_the_card(core, clock, app):
    """Driven through the daemon's purges: the runs keep the events stamped before NTP
    answered (no synchronised row after them is past retention yet), and each run must not
    start the two days again."""
    clock.is_synced = False
    for household in ("1-101", "2-202"):
        add_event(core, holder="Zhao Min", household=household)
    clock.is_synced = True
    clock.advance(31 * 86400)
    daemon = Daemon(core, notifier=Notifier(None))
    for step in (86400, 86400 - 60):
        daemon.purge_once()
        clock.advance(step)
    daemon.purge_once()
    assert core.health()["retention"]["overdue"] is None
    clock.advance(60)
    daemon.purge_once()
    late = core.health()["retention"]["overdue"]
    assert (late["cause"], late["waiting"], late["days"]) == ("waiting_for_clock", 2, 2)
    card = retention_card(app)
    assert card["title"] == "Personal data not deleted on time"
    assert card["detail"].startswith("2 events past retention are kept")


def held_read_failing(*_a, **_kw):
    cause = sqlite3.OperationalError("disk I/O error")
    cause.sqlite_errorname = "SQLITE_IOERR_READ"
    raise cause


def wal_locked(*_a, **_kw):
    cause = sqlite3.OperationalError("database is locked")
    cause.sqlite_errorname = "SQLITE_BUSY"
    raise StoreFault("store_fault", "SQLITE_BUSY") from cause


@pytest.mark.parametrize(
    ("where", "failing"),
    [("wipe", wal_locked), ("held", held_read_failing)],
    ids=["wipe-locked", "held-read-IOERR"],
)
def test_a_purge_failing_after_its_commit_clears_the_refusals_card(
    core, clock, app, monkeypatch, caplog, where, failing
):
    """Purges refused two days (the card), then one that commits and fails after (its WAL's
    wipe, a held decisions' file read): the refusal was never cleared (a stale 'purges
    refused for 2 days' beside its 'last purge'), or (not a StoreFault) the daemon did not
    even see the purge ran. Now the card goes; the journal says the purge was done and which
    step failed, its error's name only; the lists' snapshot is still refreshed."""
    from kiosk import privacy_held
    from kiosk.store import EventLog

    clock.is_synced = False
    daemon = Daemon(core, notifier=Notifier(None))
    daemon.purge_once()
    clock.advance(OVERDUE_AFTER.total_seconds())
    daemon.purge_once()
    assert retention_card(app) is not None
    clock.is_synced = True
    if where == "wipe":
        monkeypatch.setattr(EventLog, "wipe_wal", failing)
    else:
        monkeypatch.setattr(privacy_held, "_seen", failing)
    reloads = []
    monkeypatch.setattr(daemon, "lists_once", lambda: reloads.append(1))
    caplog.clear()

    daemon.purge_once()

    assert core.health()["retention"]["overdue"] is None and retention_card(app) is None
    assert reloads == [1]
    (line,) = [r.getMessage() for r in caplog.records if "retention" in r.getMessage()]
    step = retention.WIPE_STEP if where == "wipe" else retention.HELD_STEP
    name = "SQLITE_BUSY" if where == "wipe" else "SQLITE_IOERR_READ"
    assert line == (
        f"retention purge done; only {step} after it failed ({name}), tried again within the hour"
    )


def test_a_wal_wipe_failing_every_hour_for_two_days_raises_its_own_card(
    core, clock, app, monkeypatch
):
    """Each hour's purge committed (deleting the refusals' record), then its WAL's wipe
    failed and was noted as a refusal from zero again: 72 hours with the WAL holding a name,
    never a card. The step's failures are their own row, a card after the same two days,
    gone once a purge's steps all succeed (and after a restart too)."""
    from kiosk.store import EventLog

    days = core.config.store.retention_days
    add_event(core, pass_id="aaaaaaaaaa01", household="B3-1201", person={"name": "Wang Lei"})
    clock.advance((days + 1) * 86400)
    daemon = Daemon(core, notifier=Notifier(None))
    with monkeypatch.context() as failing:
        failing.setattr(EventLog, "wipe_wal", wal_locked)
        for _hour in range(47):
            daemon.purge_once()
            clock.advance(3600)
        assert core.health()["retention"]["overdue"] is None
        daemon.purge_once()
        clock.advance(3600)
        daemon.purge_once()
    late = core.health()["retention"]["overdue"]
    assert late["cause"] == "wipe_failed" and late["days"] == 2, late
    card = retention_card(app)
    assert card["title"] == "Personal data not deleted on time"
    assert card["detail"].startswith(
        "Purges run, but the wipe of the log's WAL after them has failed for 2 days"
    )
    Daemon(core, notifier=Notifier(None)).purge_once()  # a restarted daemon: all done
    assert core.health()["retention"]["overdue"] is None and retention_card(app) is None
    daemon.purge_once()
    assert core.health()["retention"]["overdue"] is None


def test_a_wal_wipe_a_reader_holds_up_every_hour_for_two_days_raises_its_card(
    core, clock, app, caplog, monkeypatch
):
    """A reader holding the WAL every hour (a long export, a tool left open): `wipe_wal()`
    returned False, not raised, so each purge's steps counted as all done and the step's
    record was deleted; and each purge wrote the debt's date anew, so nothing knew how long
    the wipe had been owed. 72 hours with a forgotten name in kiosk.db-wal, never a card.
    Now the debt keeps the date it was first owed: owed two days, it is the `wipe_failed`
    card; each held-up wipe is one journal line naming the reader, no personal data; gone
    once a wipe completes."""
    # that each wipe gives up, not how long it waited (49 waits of 200 ms were 10 s)
    monkeypatch.setattr(kiosk.store, "WIPE_WAIT_MS", 5)
    days = core.config.store.retention_days
    daemon = Daemon(core, notifier=Notifier(None))
    held = sqlite3.connect(f"file:{core.store.path}?mode=ro", uri=True)
    caplog.clear()
    try:
        for hour in range(49):
            add_event(
                core, pass_id=f"aaaaaaaa{hour:04d}", household="B3-1201", person={"name": NAME}
            )
            if hour == 0:
                clock.advance((days + 1) * 86400)
            held.execute("BEGIN")
            held.execute("SELECT count(*) FROM events").fetchone()
            daemon.purge_once()
            held.execute("COMMIT")
            if hour == 47:
                assert core.health()["retention"]["overdue"] is None
            clock.advance(3600)
    finally:
        held.close()
    late = core.health()["retention"]["overdue"]
    assert late is not None and late["cause"] == "wipe_failed" and late["days"] == 2, late
    card = retention_card(app)
    assert card["detail"].startswith("Purges run, but the wipe of the log's WAL")
    # what the step is, what holds it, when it clears; not the refusals' NTP advice
    assert "NTP" not in card["todo"] and "a long export" in card["todo"], card["todo"]
    assert card["todo"].endswith("after the next purge whose steps all succeed")
    lines = [r.getMessage() for r in caplog.records if "held up by a reader" in r.getMessage()]
    assert len(lines) == 49 and NAME not in " ".join(lines), lines[:1]
    assert lines[0] == (
        f"retention purge done; only {retention.WIPE_STEP} after it was held up by a reader"
        " (a long export, a tool left open), tried again within the hour"
    )
    daemon.purge_once()  # no reader now: the wipe completes
    assert core.health()["retention"]["overdue"] is None and retention_card(app) is None


@pytest.mark.parametrize("cause", ["wipe_failed", "held_failed", "set_aside_failed"])
@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_a_steps_card_says_what_holds_the_step_not_to_reach_ntp(cause, lang):
    """The card of a step after the purges failing told the admin to let the kiosk reach an
    NTP server, which has nothing to do with it: it says the step, what holds it, and that
    it clears after a purge whose steps all succeed."""
    from zoneinfo import ZoneInfo

    from kiosk.alarms import Alarm
    from ui.guard.display import retention_alarm_view

    alarm = Alarm(key=RETENTION_ALARM, kind="device", ts="", cause=cause, detail="2")
    todo = retention_alarm_view(alarm, lang, ZoneInfo("UTC"))["todo"]
    assert "NTP" not in todo and "网络时间" not in todo, todo
    what = {  # the step, and what holds it
        "en": {
            "wipe_failed": ("kiosk.db-wal", "a long export"),
            "held_failed": ("held-events-", "root"),
            "set_aside_failed": ("before-restore-", "root"),
        },
        "zh-CN": {
            "wipe_failed": ("预写文件", "导出"),
            "held_failed": ("暂存通行决定文件", "超级用户"),
            "set_aside_failed": ("恢复备份", "超级用户"),
        },
    }
    step, holder = what[lang][cause]
    assert step in todo and holder in todo, todo
    assert (
        "after the next purge whose steps all succeed" if lang == "en" else "各步骤全部成功后"
    ) in todo


@pytest.mark.parametrize("reboot", [False, True])
def test_a_steps_card_stands_from_the_start_after_a_restart(core, clock, app, monkeypatch, reboot):
    """The held decisions' files not purged for two days: the card. A restart (or a reboot)
    forgot it in memory: it came back only once a purge's step failed again, an hour later,
    or hours on a Pi whose clock NTP had not set yet (the purges refused meanwhile). It is
    read back from what the purges recorded (``retention.step_failed``), from the start."""
    from kiosk import privacy_held

    daemon = Daemon(core, notifier=Notifier(None))
    with monkeypatch.context() as failing:
        failing.setattr(privacy_held, "_seen", held_read_failing)
        daemon.purge_once()
        clock.advance(OVERDUE_AFTER.total_seconds())
        daemon.purge_once()
    assert core.health()["retention"]["overdue"]["cause"] == "held_failed"
    daemon = _restart(core, clock, reboot=reboot)
    late = core.health()["retention"]["overdue"]
    assert late is not None and (late["cause"], late["days"]) == ("held_failed", 2), late
    clock.is_synced = False  # the first purge refused: NTP has not set the clock yet
    daemon.purge_once()
    assert core.health()["retention"]["overdue"]["cause"] == "held_failed"
    assert retention_card(app)["title"] == "Personal data not deleted on time"
    clock.is_synced = True
    daemon.purge_once()  # its steps all succeed: the card goes
    assert core.health()["retention"]["overdue"] is None and retention_card(app) is None


@pytest.mark.parametrize("key", [retention.STEP_FAILED_KEY, retention.REFUSED_KEY])
@pytest.mark.parametrize("value", ['"damaged"', "[1]", "5"])
def test_a_damaged_purge_record_leaves_the_health_report_and_the_console_standing(
    core, app, key, value
):
    """A purge record of the log damaged (a card's bad sector, a hand edit: a JSON string, a
    list, a number where a dict was written) read by a daemon that holds none in memory (after
    a restart) raised in core.health(): the console showed the event store in fault."""
    core.store.submit(
        lambda db: db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value]
        )
    )
    core.purge_refused = core.purge_step_failed = None
    assert core.health()["retention"]["overdue"] is None
    with signed_in(app, "root", ADMIN_PW) as tablet:
        feed = tablet.get("/guard/api/feed", params={"lang": "en"})
    assert feed.status_code == 200
    assert "event store" not in feed.text


@pytest.mark.parametrize("waiting", ['"x"', "[1]", "Infinity", "-Infinity", "NaN", "true"])
def test_a_damaged_count_in_the_last_runs_record_leaves_the_health_report_standing(
    core, app, waiting
):
    """The last run's record with its ``waiting_for_clock`` damaged (text, a list, Infinity:
    a card's bad sector, a hand edit) raised in core.health(): the console showed the event
    store in fault on a gate that recorded. It counts as no event waiting now; the health
    report stays JSON (no Infinity in it)."""
    value = (
        f'{{"at": "2026-03-02T00:30:00+00:00", "changed": false, "waiting_for_clock": {waiting}}}'
    )
    core.store.submit(
        lambda db: db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [retention.LAST_RUN_KEY, value],
        )
    )
    health = core.health()["retention"]
    assert health["overdue"] is None
    assert health["last_run"]["at"] == "2026-03-02T00:30:00+00:00"
    assert retention.overdue(health["last_run"], START + OVERDUE_AFTER)["waiting"] == 0
    with signed_in(app, "root", ADMIN_PW) as tablet:
        feed = tablet.get("/guard/api/feed", params={"lang": "en"})
    assert feed.status_code == 200
    assert "event store" not in feed.text


def test_a_refusal_record_without_its_boot_is_carried_on_not_raised(core, clock):
    """A refusals' record damaged into one without its ``boot`` raised KeyError out of
    note_refused, which the daemon did not catch: the refusal was never noted (the purge
    loop failed every hour, the overdue card could not come). It starts again on this boot,
    carrying the seconds it says were seen before."""
    damaged = '{"mono_ns": 1, "last_mono_ns": 2, "before_s": 7, "cause": "x"}'
    core.store.submit(
        lambda db: db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [retention.REFUSED_KEY, damaged],
        )
    )
    clock.is_synced = False
    Daemon(core, notifier=Notifier(None)).purge_once()
    assert core.purge_refused is not None
    assert core.purge_refused["cause"] == "unsynchronised"
    noted = retention.recorded(core.store.reader(), retention.REFUSED_KEY)
    assert noted["boot"] == core.store.boot_id
    assert noted["before_s"] == pytest.approx(7, abs=0.001)  # its mono_ns 1 to 2: 1 ns more


@pytest.mark.parametrize("key", [retention.STEP_FAILED_KEY, retention.REFUSED_KEY])
@pytest.mark.parametrize("before", ["Infinity", "-Infinity", "NaN", "1e999"])
def test_a_purge_record_counting_infinite_seconds_leaves_the_health_report_standing(
    core, app, key, before
):
    """A purge record whose ``before_s`` reads Infinity (a card's bad sector, a hand edit:
    json reads it as inf) raised OverflowError in core.health() (the overdue days as
    ``int(inf // 86400)``): the console showed the event store in fault. No finite count of
    seconds: no time counted, as for any record not of its shape."""
    value = (
        f'{{"boot": "old", "mono_ns": 0, "last_mono_ns": 0, "before_s": {before},'
        ' "cause": "unsynchronised"}'
    )
    core.store.submit(
        lambda db: db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value]
        )
    )
    core.purge_refused = core.purge_step_failed = None
    assert core.health()["retention"]["overdue"] is None
    finite = {"mono_ns": 0, "last_mono_ns": 0, "before_s": 1e308}  # finite: counted, days too
    assert retention.overdue(None, START, retention.refused_seconds(finite, "b", 0))["days"] > 0
    with signed_in(app, "root", ADMIN_PW) as tablet:
        feed = tablet.get("/guard/api/feed", params={"lang": "en"})
    assert feed.status_code == 200
    assert "event store" not in feed.text
