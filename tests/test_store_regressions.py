"""Event log regressions, as a gate would meet them: retention, files on disk,
the clock, verification. Each test names what went wrong before its fix."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support import reporting_log, tiny_tmpfs

from checkpoint.cli import main
from kiosk import store
from kiosk.clock import ClockReading, FakeClock, SystemClock
from kiosk.config import ConfigError, parse_config
from kiosk.retention import ClockNotTrusted, purge
from kiosk.store import EventDraft

#: Personal values that appear only in the rows a purge removes.
SECRETS = (b"Ouyangnana", b"13912345678", b"HH-QZX-0907", b"PASS-QZX-")


def resident(i: int) -> EventDraft:
    return EventDraft(
        direction="out",
        decision="pass",
        pass_id=f"PASS-QZX-{i}",
        household="HH-QZX-0907",
        holder="Ouyangnana Q.",
        person={"name": "Ouyangnana Qiu", "phone": "13912345678", "note": "visits " * 20},
    )


def closed_log(path: Path, clock, residents: int) -> None:
    """A log of ``residents`` events, closed and checkpointed: the whole log in one file."""
    log = reporting_log(path, clock)
    for i in range(residents):
        log.append(resident(i))
    log.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def leftovers(directory: Path) -> dict[str, list[bytes]]:
    """Which of ``SECRETS`` are still in the bytes of any file of the database."""
    found = {}
    for path in sorted(directory.iterdir()):
        data = path.read_bytes()
        hits = [s for s in SECRETS if s in data]
        if hits:
            found[path.name] = hits
    return found


def test_purged_personal_data_is_gone_from_every_file_of_the_database(tmp_path, clock):
    """Before: the purge nulled the columns, but the WAL still held the rows as they were
    written (a daemon's WAL is never truncated), so names and phone numbers past retention
    stayed readable in ``kiosk.db-wal`` with ``strings``."""
    (tmp_path / "db").mkdir()
    log = reporting_log(tmp_path / "db" / "kiosk.db", clock)
    try:
        for i in range(5):
            log.append(resident(i))
            clock.advance(60)
        log.audit("guard", "lists.quarantine_add", {"household": "HH-QZX-0907"})
        assert leftovers(tmp_path / "db")  # the test can see them before the purge
        clock.advance(40 * 86400)
        log.append(EventDraft(direction="in", decision="deny", reasons=("fever",)))
        result = purge(log, 30, clock.now())
        assert result.events_purged == 5
        assert leftovers(tmp_path / "db") == {}  # while the daemon still runs
        assert log.verify().ok
    finally:
        log.close()
    assert leftovers(tmp_path / "db") == {}


def test_purge_overwrites_freed_space_even_where_sqlite_does_not_by_default(
    tmp_path, clock, monkeypatch
):
    """Before: on an SQLite built without SECURE_DELETE (python.org and pyenv builds; Debian
    turns it on), the nulled values stayed in the database pages' free space."""
    real_open = store._open_connection

    def default_build(path, timeout_s):
        conn = real_open(path, timeout_s)
        conn.execute("PRAGMA secure_delete = OFF")  # what most builds start with
        return conn

    monkeypatch.setattr(store, "_open_connection", default_build)
    (tmp_path / "db").mkdir()
    path = tmp_path / "db" / "kiosk.db"
    log = reporting_log(path, clock)
    for i in range(30):
        log.append(resident(i))
    log.close()
    with sqlite3.connect(path) as conn:  # the rows are old: long since in the main file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA secure_delete = OFF")
    clock.advance(40 * 86400)
    log = reporting_log(path, clock)
    try:
        purge(log, 30, clock.now())
    finally:
        log.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert leftovers(tmp_path / "db") == {}


#: How long a WAL wipe waits for a reader in the tests where one holds it up (the program's
#: ``WIPE_WAIT_MS``: 200 ms): that it gives up, not how long it waited, is what they look at.
QUICK_WIPE_MS = 5


@pytest.fixture
def quick_wipe(monkeypatch) -> None:
    monkeypatch.setattr(store, "WIPE_WAIT_MS", QUICK_WIPE_MS)


def test_wiping_the_wal_gives_up_quickly_while_a_reader_holds_a_snapshot(
    tmp_path, clock, quick_wipe
):
    """The wipe runs on the writer thread: it must not hold passages up for the whole busy
    timeout behind a long export; the next purge tries again."""
    import time

    log = reporting_log(tmp_path / "kiosk.db", clock)
    try:
        log.append(resident(1))
        reader = sqlite3.connect(f"file:{tmp_path / 'kiosk.db'}?mode=ro", uri=True)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM events").fetchone()
        began = time.monotonic()
        assert log.wipe_wal() is False
        # Its own wait, not the log's busy timeout (5 s) that the appends behind it would wait.
        assert time.monotonic() - began < log.busy_timeout_ms / 1000 / 2
        reader.rollback()
        reader.close()
        assert log.wipe_wal() is True
        assert (tmp_path / "kiosk.db-wal").stat().st_size == 0
        assert log.append(resident(2)).seq == 2
    finally:
        log.close()


def test_a_retention_shorter_than_the_quota_period_is_refused():
    """Before: accepted. The daemon rebuilds the quota's exits from the log at start, and the
    purge had already nulled the household of an exit 30 h old, so with retention_days = 1
    and a 2-day quota a household went out twice after a restart."""
    quota = {"quota": {"enabled": True, "period_days": 2}}
    with pytest.raises(ConfigError, match="retention_days"):
        parse_config({"store": {"retention_days": 1}, "policy": quota})
    assert parse_config({"store": {"retention_days": 2}, "policy": quota})
    assert parse_config({"store": {"retention_days": 1}})  # no quota: nothing to keep


def verify_while_the_gate_appends(log, conn, appends: int = 1):
    """``verify_database(conn)`` with ``appends`` events committed by the log's writer while
    the walk is under way (from SQLite's progress handler: deterministic, no threads racing)."""
    done = []

    def append_midway() -> int:
        if len(done) < appends:
            done.append(log.append(EventDraft(direction="in", decision="pass")))
        return 0

    conn.set_progress_handler(append_midway, 50)
    try:
        return store.verify_database(conn)
    finally:
        conn.set_progress_handler(None, 0)
        assert done, "nothing was appended during the walk"


def test_verifying_a_live_log_is_not_fooled_by_a_passage_during_the_walk(tmp_path, clock):
    """Before: the chain was walked in one snapshot and the high-water mark read in a later
    one, so a passage committed during ``kiosk verify-log`` on a running kiosk was reported
    as 'rows after seq N are missing (log truncated)': a false tamper alarm."""
    log = reporting_log(tmp_path / "kiosk.db", clock)
    try:
        for i in range(20):
            log.append(resident(i))
        conn = sqlite3.connect(f"file:{tmp_path / 'kiosk.db'}?mode=ro", uri=True)
        result = verify_while_the_gate_appends(log, conn, appends=200)
        conn.close()
        assert result.problems == ()
        assert result.ok
        assert result.events_checked >= 20
    finally:
        log.close()


def _transactions(statements: list[str]) -> list[list[str]]:
    """The writer's traced statements cut at each COMMIT."""
    cut: list[list[str]] = [[]]
    for statement in statements:
        cut[-1].append(statement)
        if statement == "COMMIT":
            cut.append([])
    return cut


def test_the_daily_purge_does_not_walk_every_empty_day_since_1970_in_the_writer(tmp_path):
    """Before: a Pi that recorded one passage before NTP synced (stamped 1970) made every
    hourly purge check query each of the ~20,000 empty days since then inside the writer's
    transaction (0.5 s here, several seconds on a Pi: passages waiting behind it hit the
    store deadline and were denied with store_fault)."""
    clock = FakeClock(start=datetime(1970, 1, 1, 0, 5, tzinfo=UTC), is_synced=False)
    log = reporting_log(tmp_path / "kiosk.db", clock)
    try:
        log.append(EventDraft(direction="in", decision="pass", household="H1"))
        clock.is_synced = True
        clock.set_wall(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
        for _ in range(3):
            log.append(EventDraft(direction="out", decision="pass", household="H1"))
            clock.advance(86400)
        statements: list[str] = []
        log.submit(lambda db: db.conn.set_trace_callback(statements.append))
        result = purge(log, 30, clock.now(), tz="Asia/Shanghai")
        log.submit(lambda db: db.conn.set_trace_callback(None))
        assert [d.isoformat() for d in result.days_frozen] == [
            "1970-01-01",
            "2026-03-02",
            "2026-03-03",
            "2026-03-04",
        ]
        # A walk is ~20,000 statements; a purge's own work, frozen days, dating and salts
        # included, is about 200 whatever the log's age, and each write transaction is short
        # (the freeze goes a few days a transaction: kiosk.retention).
        assert len(statements) < 400
        assert max(map(len, _transactions(statements))) < 200
        again: list[str] = []
        log.submit(lambda db: db.conn.set_trace_callback(again.append))
        assert purge(log, 30, clock.now(), tz="Asia/Shanghai").days_frozen == ()
        assert len(again) < 400
        assert max(map(len, _transactions(again))) < 200
    finally:
        log.close()


@contextlib.contextmanager
def read_only_directory(path: Path):
    """A directory that ``make_read_only`` can make unwritable for this process: a tmpfs
    remounted read-only as root (root ignores modes), mode 0555 otherwise."""
    if os.geteuid() == 0:
        with tiny_tmpfs(path, "4m") as mounted:
            yield mounted
        return
    path.mkdir()
    try:
        yield path
    finally:
        path.chmod(0o755)  # so pytest can clean it up


def make_read_only(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
    else:
        path.chmod(0o555)


def test_verify_log_reads_a_copy_on_a_read_only_medium(tmp_path, clock, capsys):
    """Before: a kiosk.db copied off a stopped kiosk (no -wal, as the backup procedure leaves
    it) onto a read-only USB stick, or into a folder the office user cannot write, gave
    'unreadable database: unable to open database file' and exit 2: SQLite wants to create
    the WAL index beside a WAL-mode file even to read it."""
    closed_log(tmp_path / "kiosk.db", clock, 3)
    with read_only_directory(tmp_path / "stick") as stick:
        shutil.copy(tmp_path / "kiosk.db", stick / "kiosk.db")
        office = stick / "pulled.db"  # the office's pulled copy, carried on the same stick
        with sqlite3.connect(office) as conn, sqlite3.connect(tmp_path / "kiosk.db") as kiosk:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("CREATE TABLE pulled_events (kiosk_id TEXT, seq INTEGER, hash TEXT)")
            rows = kiosk.execute("SELECT kiosk_id, seq, hash FROM events").fetchall()
            conn.executemany("INSERT INTO pulled_events VALUES (?, ?, ?)", rows)
        conn.close()
        kiosk.close()
        make_read_only(stick)
        code = main(["verify-log", "--db", str(stick / "kiosk.db")])
        out = capsys.readouterr()
        assert code == 0, out.err
        assert "3 events" in out.out
        pulled = main(["verify-log", "--db", str(tmp_path / "kiosk.db"), "--against", str(office)])
        out = capsys.readouterr()
        assert pulled == 0, out.err
        assert "matches" in out.out


def test_verify_log_says_what_to_do_with_a_wal_on_a_read_only_medium(tmp_path, clock, capsys):
    """A -wal beside the file cannot be read without creating its -shm: say so and what to
    do, instead of 'unable to open database file'."""
    log = reporting_log(tmp_path / "kiosk.db", clock)
    try:
        log.append(resident(1))
        with read_only_directory(tmp_path / "stick") as stick:
            for name in ("kiosk.db", "kiosk.db-wal"):
                shutil.copy(tmp_path / name, stick / name)
            make_read_only(stick)
            assert main(["verify-log", "--db", str(stick / "kiosk.db")]) == 2
    finally:
        log.close()
    err = capsys.readouterr().err
    assert "copy kiosk.db and kiosk.db-wal to a writable folder" in err


def test_a_purge_cut_short_before_its_audit_row_purges_nothing(tmp_path, clock, monkeypatch):
    """Before: the purge committed, then its audit row was written in a second transaction;
    a power cut between the two left purged rows no audited purge covers, and
    ``verify-log`` reported them as 'personal fields removed outside retention' (a false
    tamper alarm, until someone re-ran the same purge by hand)."""
    log = reporting_log(tmp_path / "kiosk.db", clock)
    try:
        for i in range(3):
            log.append(resident(i))
        clock.advance(40 * 86400)
        real_insert = store.EventLog._insert_audit

        def power_cut(self, conn, actor, action, detail):
            if action == store.PURGE_ACTION:
                raise KeyboardInterrupt("power cut")  # not an error anything handles
            return real_insert(self, conn, actor, action, detail)

        monkeypatch.setattr(store.EventLog, "_insert_audit", power_cut)
        with pytest.raises(KeyboardInterrupt):
            purge(log, 30, clock.now())
        assert log.verify().problems == ()
        assert [e["purged_at"] for e in log.events()] == [None, None, None]
        monkeypatch.undo()
        assert purge(log, 30, clock.now()).events_purged == 3
        assert log.verify().ok
    finally:
        log.close()


def test_verify_log_calls_a_truncated_log_corrupt_exit_1(tmp_path, clock, capsys):
    """Before: a log cut short (a card that failed mid-copy, a file truncated on purpose)
    exited 2, 'cannot be used as an event log', the code for a wrong path; docs/cli.md says
    a corrupt file is exit 1, like any other damage to the log."""
    closed_log(tmp_path / "kiosk.db", clock, 40)
    data = (tmp_path / "kiosk.db").read_bytes()
    (tmp_path / "kiosk.db").write_bytes(data[: len(data) // 3])
    assert main(["verify-log", "--db", str(tmp_path / "kiosk.db")]) == 1
    err = capsys.readouterr().err
    assert "corrupt" in err and "Traceback" not in err


def test_the_nightly_purge_unit_runs_and_uses_the_configured_retention(
    tmp_path, capsys, monkeypatch
):
    """Before: kiosk-purge.service ran ``kiosk purge --config ... --data ...`` while the verb
    required ``--older-than``: every night the unit failed with a usage error (and 'systemctl
    start kiosk-purge.service', as operations.md advises after lowering retention_days, did
    nothing). Without ``--older-than`` the purge now uses ``store.retention_days``."""
    unit = (Path(__file__).parent.parent / "systemd" / "kiosk-purge.service").read_text()
    (exec_start,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    data = tmp_path / "data"
    data.mkdir()
    config = tmp_path / "kiosk.toml"
    config.write_text('[site]\nkiosk_id = "gate-1"\n\n[store]\nretention_days = 7\n')
    argv = exec_start.split()[1:]
    argv = [
        {"/etc/kiosk/kiosk.toml": str(config), "/var/lib/kiosk": str(data)}.get(a, a) for a in argv
    ]
    clock = FakeClock(start=datetime(2020, 1, 1, tzinfo=UTC))
    log = reporting_log(data / "kiosk.db", clock)
    log.append(resident(1))
    log.close()
    monkeypatch.setattr(SystemClock, "synced", lambda self: True)  # NTP has answered
    assert main(argv) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["events_purged"] == 1
    log = reporting_log(data / "kiosk.db", clock)
    try:
        (audit,) = [a for a in log.audits() if a["action"] == store.PURGE_ACTION]
        assert audit["detail"]["older_than_days"] == 7
    finally:
        log.close()


def test_a_phone_number_written_with_spaces_or_inside_an_extra_never_reaches_a_log_line():
    """Before: the log's second line of defence masked only unbroken digit runs, so a phone
    typed as '138 0013 8000' or '１３８００１３８０００' in a message, or any number inside a
    dict or list passed as ``extra=``, went to the journal as it was."""
    import logging

    from kiosk.logs import JsonFormatter

    record = logging.LogRecord(
        "kiosk.test", logging.WARNING, __file__, 1, "visitor %s", ("138 0013 8000",), None
    )
    record.note = "tel １３８００１３８０００, ID 110105 19491231 003X"
    record.person = {"phone": "13812345678", "others": ["139-0013-9000"]}
    record.seq = 13900139000  # a number stays a number (and the line stays JSON)
    line = json.loads(JsonFormatter().format(record))
    text = json.dumps(line, ensure_ascii=False)
    for number in ("0013 8000", "００１３８０００", "19491231", "12345678", "0013-9000"):
        assert number not in text
    assert line["seq"] == 13900139000


def naive_coverage(conn, table: str) -> int:
    """What ``purge_coverage`` answers, one query per audited purge (the rule as written:
    the rows older than its ``reach``, or its cutoff when it has none)."""
    through = 0
    for audit_seq, detail in conn.execute(
        "SELECT seq, detail FROM audit WHERE action = ? AND detail IS NOT NULL",
        [store.PURGE_ACTION],
    ).fetchall():
        found = json.loads(detail)  # a day's row covers to its reach (its later runs)
        cutoff = store.format_ts(datetime.fromisoformat(found.get("reach") or found["cutoff"]))
        row = conn.execute(
            f"SELECT max(seq) FROM {table} WHERE clock_synced = 1 AND ts < ? AND seq < ?",
            [cutoff, audit_seq if table == "audit" else 2**62],
        ).fetchone()
        through = max(through, row[0] or 0)
    return through


@pytest.mark.slow
def test_verify_reads_the_purge_coverage_once_not_once_per_purge(tmp_path, clock):
    """Before: verification ran a query over every row older than each audited purge's
    cutoff, once per purge. The daemon audits a purge every hour: a year's log (8,760
    purges, ~700k events) took hours instead of the minute event-log.md promises."""
    log = reporting_log(tmp_path / "kiosk.db", clock)
    try:
        for hour in range(60):
            log.append(resident(hour))
            log.audit("guard", "lists.quarantine_add", {"household": f"H{hour}"})
            clock.advance(3600)
            purge(log, 1, clock.now())
            if hour == 30:  # a manual purge reaching further than the nightly ones after it
                purge(log, 0, clock.now())
        conn = sqlite3.connect(f"file:{tmp_path / 'kiosk.db'}?mode=ro", uri=True)
        expected = {t: naive_coverage(conn, t) for t in ("events", "audit")}
        assert expected["events"] > 30 and expected["audit"] > 30
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        assert {t: store.purge_coverage(conn, t) for t in ("events", "audit")} == expected
        assert store.verify_database(conn).ok
        conn.close()
        scans = [s for s in statements if "SELECT max(seq)" in s and "clock_synced" in s]
        assert len(scans) <= 6
    finally:
        log.close()


def test_ended_quarantine_entries_are_purged_with_the_other_personal_data(tmp_path, clock):
    """Before: retention nulled events, audit details and the ledgers, but a quarantine
    entry (household, holder's name, note: health data) stayed in list_quarantine for
    ever after the quarantine ended. Entries that ended before the cutoff's local day
    now go with the purge (their days' reports are frozen first)."""
    from datetime import date

    from kiosk.lists import ListStore

    log = reporting_log(tmp_path / "kiosk.db", clock, ledgers=True)
    try:
        clock.set_wall(datetime(2026, 1, 1, 9, 0, tzinfo=UTC))  # entered when it began
        lists = ListStore(log, clock)
        lists.load()
        lists.add_quarantine("HH-QZX-0907", "Ouyangnana Q.", "2026-01-01", "2026-01-14", "guard")
        lists.add_quarantine("HH-B2-0301", None, "2026-02-25", "2026-03-20", "guard")
        clock.set_wall(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
        result = purge(log, 30, clock.now(), tz="Asia/Shanghai")
        assert result.quarantine_entries_purged == 1
        rows = list(log.reader().query("SELECT holder, until_date FROM list_quarantine"))
        assert rows == [{"holder": None, "until_date": "2026-03-20"}]
        assert lists.load().quarantine_for("HH-B2-0301", None, date(2026, 3, 2))
        (audit,) = [a for a in log.audits() if a["action"] == store.PURGE_ACTION]
        assert audit["detail"]["quarantine_entries_purged"] == 1
    finally:
        log.close()
    assert leftovers(tmp_path) == {}  # gone from the file too, the WAL included


def test_an_ended_household_observation_is_purged_like_an_ended_quarantine(tmp_path, clock):
    """Before: the purge deleted ended quarantine entries (a health status), but the household
    ledger's ``observation_until`` (a returnee in the household under health observation)
    stayed for ever after the observation ended, with nothing needing it. An observation that
    ended before the cutoff's local day is now emptied by the purge; the household stays."""
    from kiosk.lists import ListStore

    log = reporting_log(tmp_path / "kiosk.db", clock, ledgers=True)
    try:
        clock.set_wall(datetime(2026, 1, 1, 9, 0, tzinfo=UTC))
        lists = ListStore(log, clock)
        lists.load()
        lists.set_household("HH-QZX-0907", "guard", 3, "2026-01-14", "3 residents")
        lists.set_household("HH-B2-0301", "guard", 2, "2026-03-20")
        clock.set_wall(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
        result = purge(log, 30, clock.now(), tz="Asia/Shanghai")
        rows = log.reader().query(
            "SELECT household, residents, observation_until, note FROM list_households"
            " ORDER BY household"
        )
        assert list(rows) == [
            {"household": "HH-B2-0301", "residents": 2, "observation_until": "2026-03-20",
             "note": ""},
            {"household": "HH-QZX-0907", "residents": 3, "observation_until": None,
             "note": "3 residents"},
        ]  # fmt: skip
        assert result.household_observations_purged == 1
        (audit,) = [a for a in log.audits() if a["action"] == store.PURGE_ACTION]
        assert audit["detail"]["household_observations_purged"] == 1
        assert purge(log, 30, clock.now(), tz="Asia/Shanghai").household_observations_purged == 0
    finally:
        log.close()


def test_a_purge_says_how_many_rows_wait_for_a_synchronised_clock(tmp_path):
    """Before: at a site whose clock never synchronised (no NTP reachable), no row is
    clock-synced, so the seq-order rule purged nothing, night after night, and the purge
    said only events_purged: 0: personal data piled up past retention unseen. (Now such a
    clock dates no purge at all, unless the operator vouches for it: then the count shows.)"""
    clock = FakeClock(start=datetime(2026, 1, 1, tzinfo=UTC), is_synced=False)
    log = reporting_log(tmp_path / "kiosk.db", clock)
    try:
        for i in range(3):
            log.append(resident(i))
        log.append(EventDraft(direction="in", decision="deny", reasons=("fever",)))  # no one
        clock.advance(40 * 86400)
        log.append(resident(9))  # recent: not past retention
        with pytest.raises(ClockNotTrusted):  # its clock cannot date a purge at all ...
            purge(log, 30, clock.now())
        result = purge(log, 30, clock.now(), trust_unsynced_clock=True)  # ... unless vouched for
        assert result.events_purged == 0
        assert result.events_waiting_for_clock == 3
        assert result.as_dict()["events_waiting_for_clock"] == 3
        clock.is_synced = True
        log.append(EventDraft(direction="in", decision="pass"))
        clock.advance(31 * 86400)
        later = purge(log, 30, clock.now())
        assert (later.events_purged, later.events_waiting_for_clock) == (6, 0)
    finally:
        log.close()


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE meta SET value = '1O' WHERE key = 'events.seq'",
        "DELETE FROM meta WHERE key = 'events.seq'",
    ],
)
def test_a_damaged_high_water_mark_is_reported_and_does_not_stop_the_kiosk(
    tmp_path, clock, capsys, damage
):
    """Before: with meta's events.seq damaged (a flipped byte: '1O') the daemon would not
    start ('cannot open kiosk.db (ValueError)') while verify-log said 'chains intact': the
    guard had no gate and the office no clue. Now verify-log names the damage, and the
    kiosk keeps logging from its last row."""
    closed_log(tmp_path / "kiosk.db", clock, 3)
    with contextlib.closing(sqlite3.connect(tmp_path / "kiosk.db")) as conn:
        conn.execute(damage)
        conn.commit()
    assert main(["verify-log", "--db", str(tmp_path / "kiosk.db")]) == 1
    assert "meta: the high-water mark events.seq is" in capsys.readouterr().err
    log = reporting_log(tmp_path / "kiosk.db", clock)
    try:
        assert log.append(resident(4)).seq == 4
        assert log.verify().ok  # the append wrote the mark again
    finally:
        log.close()


def test_a_decision_committed_late_with_its_own_earlier_time_purges_no_newer_row_early(tmp_path):
    """A decision held in the engine's backlog while the disk was full is committed after a
    newer passage, stamped with the time it was decided: there ts no longer rises with seq.
    The seq-order cut (everything up to the last synchronised row older than the cutoff)
    reached the held row and took the newer passage before it too, days before its time."""
    clock = FakeClock(start=datetime(2026, 3, 2, 8, 30, tzinfo=UTC))
    log = reporting_log(tmp_path / "kiosk.db", clock)
    try:
        held = ClockReading.take(clock)  # decided now; the store is full
        clock.advance(2 * 86400)  # two days before anyone frees the disk
        log.append(resident(1))  # the first passage after that: seq 1
        late = log.append(dataclasses.replace(resident(2), decided=held))  # seq 2
        assert late.ts == store.format_ts(held.wall) and late.mono_ns == held.mono_ns
        clock.advance(29 * 86400)  # the held one is past 30 days' retention, seq 1 is not
        result = purge(log, 30, clock.now())
        assert result.events_purged == 1
        assert [e["household"] for e in log.events()] == ["HH-QZX-0907", ""]  # "": emptied
        assert log.verify().ok
        clock.advance(2 * 86400)
        assert purge(log, 30, clock.now()).events_purged == 1  # its turn comes: by its own ts
        assert [e["household"] for e in log.events()] == ["", ""]
        assert log.verify().ok
    finally:
        log.close()


def test_a_wal_wipe_held_up_by_a_reader_is_done_by_the_next_purge(tmp_path, clock, quick_wipe):
    """Before: a purge whose WAL wipe a reader held up (an office pull's long export) left
    the nulled names and phone numbers in ``kiosk.db-wal``, and the next purge, finding
    nothing new to null, never wiped: they stayed there for as long as no later purge
    removed anything (a quiet gate, a night), against what event-log.md promised."""
    (tmp_path / "db").mkdir()
    path = tmp_path / "db" / "kiosk.db"
    log = reporting_log(path, clock)
    try:
        for i in range(5):
            log.append(resident(i))
        clock.advance(40 * 86400)
        log.append(EventDraft(direction="in", decision="deny", reasons=("fever",)))
        reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM events").fetchone()
        assert purge(log, 30, clock.now()).events_purged == 5
        assert leftovers(tmp_path / "db")  # the wipe was held up: still in the WAL
        reader.rollback()
        reader.close()
        clock.advance(3600)  # the daemon's next purge, within the hour
        assert purge(log, 30, clock.now()).events_purged == 0
        assert leftovers(tmp_path / "db") == {}
        assert log.verify().ok
    finally:
        log.close()
