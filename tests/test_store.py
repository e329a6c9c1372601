"""The event log: appends, paging, audit, submit, migrations, threads, lifecycle, purge."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import namedtuple
from datetime import UTC, datetime, timedelta

import pytest
import sqlite_utils
from sqlite_utils.migrations import Migrations

from kiosk import hashchain, store
from kiosk.clock import ClockReading, FakeClock
from kiosk.config.store import StoreSection
from kiosk.files import streamed_rows
from kiosk.store import EventDraft, EventLog, StoreFault, purge_personal


@pytest.fixture
def log(tmp_path, clock):
    event_log = EventLog(tmp_path / "kiosk.db", "gate-1", clock, boot_id="boot-a").open()
    yield event_log
    event_log.close()


def draft(**overrides) -> EventDraft:
    fields = {
        "direction": "in",
        "decision": "pass",
        "reasons": ("ok",),
        "pass_id": "P-0001",
        "household": "B3-1201",
        "holder": "Wang L.",
        "person": {"name": "Wang Lei", "phone": "13800000000"},
        "temp_c": 36.6,
        "temp_object_c": 34.1,
        "temp_ambient_c": 24.0,
        "latency_ms": 120.5,
    }
    fields.update(overrides)
    return EventDraft(**fields)


def test_append_assigns_seq_time_identity_and_chains_rows(log, clock):
    first = log.append(draft())
    clock.advance(2.5)
    second = log.append(draft(direction="out", decision="deny", reasons=("fever",)))

    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == hashchain.GENESIS
    assert second.prev_hash == first.hash
    assert first.ts == "2026-03-02T08:30:00.000000Z"
    assert second.ts == "2026-03-02T08:30:02.500000Z"
    assert second.mono_ns - first.mono_ns == 2_500_000_000
    assert first.kiosk_id == "gate-1" and first.boot_id == "boot-a"
    assert first.clock_synced is True
    assert first.id != second.id and len(first.id) == 36
    assert log.last_seq == 2


def test_unsynced_clock_is_recorded_on_the_event(log, clock):
    clock.is_synced = False
    assert log.append(draft()).clock_synced is False
    assert log.events()[0]["clock_synced"] is False


def test_wall_clock_stepping_back_does_not_disturb_seq_order(log, clock):
    log.append(draft())
    clock.set_wall(datetime(2020, 1, 1, tzinfo=UTC))  # an NTP step backwards
    later = log.append(draft())
    rows = log.events()
    assert [r["seq"] for r in rows] == [1, 2]
    assert rows[1]["ts"] < rows[0]["ts"]
    assert later.seq == 2
    assert log.verify().ok


def test_returned_event_equals_the_stored_row(log):
    event = log.append(draft(flags=("vip",), operator="guard-7", kind="manual"))
    assert log.events() == [event.to_dict()]


def test_integer_temperature_is_stored_and_hashed_as_a_float(log):
    event = log.append(draft(temp_c=37))
    assert event.temp_c == 37.0 and isinstance(event.temp_c, float)
    assert log.verify().ok


def test_events_pages_by_seq_with_limit(log):
    for _ in range(5):
        log.append(draft())
    assert [r["seq"] for r in log.events(after_seq=0, limit=2)] == [1, 2]
    assert [r["seq"] for r in log.events(after_seq=2, limit=2)] == [3, 4]
    assert [r["seq"] for r in log.events(after_seq=4, limit=10)] == [5]
    assert log.events(after_seq=5) == []


@pytest.mark.parametrize(
    ("after_seq", "limit"), [(-1, 10), (0, 0), (0, 10001), ("1", 10), (0, True)]
)
def test_events_rejects_bad_paging_arguments(log, after_seq, limit):
    with pytest.raises(ValueError):
        log.events(after_seq=after_seq, limit=limit)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"direction": "sideways"}, "direction"),
        ({"decision": "maybe"}, "decision"),
        ({"kind": "parcel"}, "kind"),
        ({"reasons": ()}, "reasons"),
        ({"reasons": "fever"}, "reasons"),
        ({"reasons": ("",)}, "reasons"),
        ({"temp_c": float("nan")}, "temp_c"),
        ({"temp_object_c": float("inf")}, "temp_object_c"),
        ({"temp_ambient_c": "24"}, "temp_ambient_c"),
        ({"latency_ms": -1.0}, "latency_ms"),
        ({"pass_id": ""}, "pass_id"),
        ({"person": {"age": float("nan")}}, "person"),
        ({"person": ["not", "a", "mapping"]}, "person"),
        ({"person": {"note": "x" * 70000}}, "person"),
        ({"person": {"name": "\ud800"}}, "person"),
        ({"holder": "\udfff"}, "holder"),
    ],
)
def test_draft_rejects_bad_fields_by_name(overrides, field):
    with pytest.raises(ValueError, match=field):
        draft(**overrides)


def test_draft_and_event_reprs_carry_no_personal_data(log):
    d = draft()
    event = log.append(d)
    for text in (repr(d), repr(event)):
        for secret in ("P-0001", "B3-1201", "Wang", "13800000000"):
            assert secret not in text


def test_seq_and_chain_continue_after_reopen(tmp_path, clock):
    path = tmp_path / "kiosk.db"
    with EventLog(path, "gate-1", clock) as first:
        a = first.append(draft())
    with EventLog(path, "gate-1", clock) as second:
        assert second.last_seq == 1
        b = second.append(draft())
        assert second.verify().ok
    assert (b.seq, b.prev_hash) == (2, a.hash)


def test_audit_rows_are_chained_decoded_and_counted(log):
    log.audit("guard-7", "list.revoke", {"pass_id": "P-0001"})
    log.audit("system", "config.reload", None)
    rows = log.audits()
    assert [r["seq"] for r in rows] == [1, 2]
    assert rows[0]["detail"] == {"pass_id": "P-0001"}
    assert rows[1]["detail"] is None
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    assert log.last_audit_seq == 2
    assert log.verify().audit_checked == 2


@pytest.mark.parametrize(
    ("actor", "action", "detail"),
    [("", "x", None), ("guard", "", None), ("guard", "x", ["list"]), ("g", "x", {1: "a"})],
)
def test_audit_rejects_bad_input_before_writing(log, actor, action, detail):
    with pytest.raises(ValueError):
        log.audit(actor, action, detail)
    assert log.audits() == []


def test_submit_returns_the_function_result(log):
    log.append(draft())
    assert log.submit(lambda db: db.execute("SELECT count(*) FROM events").fetchone()[0]) == 1


def test_submit_rolls_back_everything_when_the_function_raises(log):
    class Boom(Exception):
        pass

    def job(db: sqlite_utils.Database) -> None:
        db.execute("CREATE TABLE scratch (x INTEGER)")
        db["scratch"].insert({"x": 1})
        raise Boom("mid-transaction")

    with pytest.raises(Boom):
        log.submit(job)
    assert not log.reader()["scratch"].exists()
    assert log.health().state == "ok"  # a caller's bug is not a storage fault


def test_append_only_triggers_stop_deletes_and_rewrites(log):
    log.append(draft())
    log.audit("guard-7", "gate.override", None)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        log.submit(lambda db: db.execute("DELETE FROM events"))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        log.submit(lambda db: db.execute("UPDATE events SET decision = 'deny'"))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        log.submit(lambda db: db.execute("UPDATE audit SET action = 'x'"))
    assert log.events()[0]["decision"] == "pass"


def test_other_modules_migrations_apply_after_the_events_set_once(tmp_path, clock):
    lists = Migrations("kiosk.lists")
    calls = []

    @lists()
    def m001_revoked(db: sqlite_utils.Database) -> None:
        calls.append("m001")
        assert db["events"].exists()  # runs after kiosk.events
        db["revoked"].create({"pass_id": str}, pk="pass_id")

    path = tmp_path / "kiosk.db"
    with EventLog(path, "gate-1", clock, migrations=[lists]) as log:
        log.submit(lambda db: db["revoked"].insert({"pass_id": "P-9"}))
    with EventLog(path, "gate-1", clock, migrations=[lists]) as log:
        assert [r["pass_id"] for r in log.reader()["revoked"].rows] == ["P-9"]
        sets = [
            r["migration_set"]
            for r in log.reader().query("SELECT migration_set FROM _sqlite_migrations ORDER BY id")
        ]
    assert calls == ["m001"]
    assert sets == ["kiosk.events"] * sets.count("kiosk.events") + ["kiosk.lists"]


def test_wal_and_the_configured_synchronous_mode_are_used(tmp_path, clock):
    with EventLog(tmp_path / "full.db", "gate-1", clock) as full:
        assert full.submit(lambda db: db.execute("PRAGMA synchronous").fetchone()[0]) == 2
        assert full.reader().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with EventLog(tmp_path / "normal.db", "gate-1", clock, synchronous="NORMAL") as normal:
        assert normal.submit(lambda db: db.execute("PRAGMA synchronous").fetchone()[0]) == 1


def test_reader_cannot_write(log):
    log.append(draft())
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        log.reader().execute("UPDATE events SET holder = NULL")


def test_reader_is_one_connection_per_thread(log):
    mine = log.reader()
    assert log.reader() is mine
    other = []
    thread = threading.Thread(target=lambda: other.append(log.reader()))
    thread.start()
    thread.join()
    assert other[0] is not mine


def test_appends_from_many_threads_get_unique_gapless_seqs(log):
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            event = log.append(draft())
            with lock:
                results.append(event.seq)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(1, 101))
    assert log.verify().ok


def test_a_second_writer_on_the_same_file_extends_the_same_chain(log, tmp_path, clock):
    # e.g. `kiosk purge` or `kiosk calibrate` run by hand while the daemon is up
    with EventLog(tmp_path / "kiosk.db", "gate-1", clock) as other:
        seqs = []
        for i in range(6):
            writer = log if i % 2 else other
            seqs.append(writer.append(draft()).seq)
        other.audit("cli", "retention_purge", {"events_purged": 0})
        log.audit("guard-7", "note", None)
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert [a["seq"] for a in log.audits()] == [1, 2]
    assert log.verify().ok


def test_append_async_lets_the_loop_run_while_the_writer_is_busy(log):
    writer_busy = threading.Event()
    release = threading.Event()

    def hold_writer(db: sqlite_utils.Database) -> None:
        writer_busy.set()
        release.wait(5)

    async def scenario() -> tuple[list[str], int]:
        loop = asyncio.get_running_loop()
        holder = loop.run_in_executor(None, log.submit, hold_writer)
        await loop.run_in_executor(None, writer_busy.wait, 5)
        order: list[str] = []
        pending = asyncio.ensure_future(log.append_async(draft()))
        await asyncio.sleep(0)  # yield to the loop: the append must not have blocked it
        order.append("loop ran")
        release.set()
        event = await pending
        order.append("appended")
        await holder
        return order, event.seq

    order, seq = asyncio.run(scenario())
    assert order == ["loop ran", "appended"]
    assert seq == 1


def test_audit_async_commits(log):
    asyncio.run(log.audit_async("guard-7", "gate.override", {"why": "ambulance"}))
    assert log.submit(lambda db: db.execute("SELECT count(*) FROM audit").fetchone()[0]) == 1


def test_writing_from_inside_submit_fails_fast_instead_of_deadlocking(log):
    with pytest.raises(RuntimeError, match="deadlock"):
        log.submit(lambda db: log.append(draft()))


def test_closed_log_refuses_writes_with_store_fault(tmp_path, clock):
    event_log = EventLog(tmp_path / "kiosk.db", "gate-1", clock).open()
    event_log.close()
    with pytest.raises(StoreFault) as info:
        event_log.append(draft())
    assert info.value.reason == "store_fault"
    assert event_log.health().state == "fault"


def test_the_same_log_can_be_closed_and_opened_again(tmp_path, clock):
    event_log = EventLog(tmp_path / "kiosk.db", "gate-1", clock).open()
    event_log.append(draft())
    reader_before = event_log.reader()
    event_log.close()
    event_log.open()
    try:
        assert event_log.append(draft()).seq == 2
        assert event_log.reader() is not reader_before  # old connections were closed
        assert len(event_log.events()) == 2
    finally:
        event_log.close()


def test_close_finishes_writes_already_queued(tmp_path, clock):
    event_log = EventLog(tmp_path / "kiosk.db", "gate-1", clock).open()
    futures = [event_log._enqueue(lambda: event_log._append_in_writer(draft())) for _ in range(20)]
    event_log.close()
    assert [f.result().seq for f in futures] == list(range(1, 21))


@pytest.mark.parametrize("content", [b"this is not a database" * 100, None])
def test_opening_an_unusable_file_raises_store_fault(tmp_path, clock, content):
    path = tmp_path / "kiosk.db"
    if content is None:
        path.mkdir()  # a directory where the file should be
    else:
        path.write_bytes(content)
    with pytest.raises(StoreFault, match="cannot open"):
        EventLog(path, "gate-1", clock).open()


def test_a_log_whose_salt_was_removed_refuses_to_open(tmp_path, clock):
    path = tmp_path / "kiosk.db"
    EventLog(path, "gate-1", clock).open().close()
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM meta WHERE key = 'salt'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreFault, match="salt missing"):
        EventLog(path, "gate-1", clock).open()


def test_a_failing_migration_of_another_module_is_a_store_fault_at_open(tmp_path, clock):
    broken = Migrations("kiosk.broken")

    @broken()
    def m001_bad(db: sqlite_utils.Database) -> None:
        db.execute("CREATE TABLE half (x)")
        raise RuntimeError("bug in a migration")

    with pytest.raises(StoreFault, match="RuntimeError") as info:
        EventLog(tmp_path / "kiosk.db", "gate-1", clock, migrations=[broken]).open()
    assert isinstance(info.value.__cause__, RuntimeError)
    with EventLog(tmp_path / "kiosk.db", "gate-1", clock) as log:  # nothing half-applied
        assert not log.reader()["half"].exists()


def test_health_is_degraded_when_free_space_is_below_the_minimum(tmp_path, clock, monkeypatch):
    Usage = namedtuple("Usage", "total used free")
    with EventLog(tmp_path / "kiosk.db", "gate-1", clock, min_free_mb=50) as event_log:
        monkeypatch.setattr(store.shutil, "disk_usage", lambda p: Usage(1 << 30, 0, 10 << 20))
        health = event_log.health()
        assert health.state == "degraded" and "10 MB free" in health.detail
        monkeypatch.setattr(store.shutil, "disk_usage", lambda p: Usage(1 << 30, 0, 60 << 20))
        assert event_log.health().state == "ok"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"synchronous": "OFF"},
        {"busy_timeout_ms": 0},
        {"min_free_mb": -1},
        {"kiosk_id": ""},
    ],
)
def test_constructor_rejects_bad_settings(tmp_path, clock, kwargs):
    args = {"path": tmp_path / "k.db", "kiosk_id": "gate-1", "clock": clock, **kwargs}
    with pytest.raises(ValueError):
        EventLog(**args)


def test_boot_id_falls_back_to_a_stable_per_process_id(tmp_path):
    missing = tmp_path / "boot_id"
    assert store.read_boot_id(missing) == store.read_boot_id(missing)
    missing.write_text("3f0c5a2e-0000-4000-8000-000000000001\n")
    assert store.read_boot_id(missing) == "3f0c5a2e-0000-4000-8000-000000000001"


def test_this_boots_id_is_read_from_the_kernel_once_per_process(tmp_path, monkeypatch):
    kernel = tmp_path / "boot_id"
    kernel.write_text("3f0c5a2e-0000-4000-8000-000000000002\n")
    monkeypatch.setattr(store, "_BOOT_ID_FILE", kernel)
    store._this_boot_id.cache_clear()
    try:
        assert store.read_boot_id() == "3f0c5a2e-0000-4000-8000-000000000002"
        kernel.unlink()  # not read again: the boot is the same while the process runs
        assert store.read_boot_id() == "3f0c5a2e-0000-4000-8000-000000000002"
        assert store.read_boot_id(kernel) == store.read_boot_id(kernel) != store.read_boot_id()
    finally:
        store._this_boot_id.cache_clear()


def test_from_config_puts_a_relative_path_under_the_data_dir(data_dir, clock):
    section = StoreSection(path="events.db", synchronous="NORMAL", busy_timeout_ms=250)
    event_log = EventLog.from_config(section, data_dir, "gate-2", clock)
    assert event_log.path == data_dir / "events.db"
    assert (event_log.synchronous, event_log.busy_timeout_ms) == ("NORMAL", 250)


def test_purge_nulls_personal_fields_and_the_chain_still_verifies(log, clock):
    old = log.append(draft())
    log.audit("guard-7", "list.quarantine", {"household": "B3-1201"})
    clock.advance(40 * 86400)
    log.append(draft(pass_id="P-0002"))
    now = clock.now()

    count = log.submit(lambda db: purge_personal(db, now - timedelta(days=30), now))
    assert not log.verify().ok  # purged rows need the purge's audit row (retention writes it)
    cutoff = (now - timedelta(days=30)).isoformat()
    log.audit("retention", store.PURGE_ACTION, {"cutoff": cutoff})

    assert count == 1
    rows = log.events()
    assert [rows[0][k] for k in hashchain.EVENT_PERSONAL_FIELDS] == [None, "", None, None]
    assert rows[0]["purged_at"] == store.format_ts(now)
    assert rows[0]["hash"] == old.hash
    assert rows[1]["pass_id"] == "P-0002"
    assert log.audits()[0]["detail"] is None
    assert log.verify().ok


def test_purge_cuts_in_seq_order_so_unsynced_1970_stamps_are_not_purged_early(log, clock):
    clock.is_synced = False
    clock.set_wall(datetime(1970, 1, 1, tzinfo=UTC))  # Pi booted without network
    log.append(draft(pass_id="P-fresh"))
    clock.is_synced = True
    clock.set_wall(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    now = clock.now()

    assert log.submit(lambda db: purge_personal(db, now - timedelta(days=30), now)) == 0
    assert log.events()[0]["pass_id"] == "P-fresh"


def test_any_database_error_while_recording_is_a_store_fault_not_a_crash(log):
    log.append(draft())
    log.submit(
        lambda db: db.execute(
            "CREATE TRIGGER broken BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'boom'); END"
        )
    )
    with pytest.raises(StoreFault, match="SQLITE_CONSTRAINT"):
        log.append(draft())
    assert log.health().state == "fault"

    log.submit(lambda db: db.execute("DROP TRIGGER broken"))
    assert log.append(draft()).seq == 2
    assert log.health().state == "ok"


def test_store_fault_names_its_reason():
    fault = StoreFault("store_fault", "SQLITE_FULL")
    assert fault.reason == "store_fault"
    assert str(fault) == "store_fault: SQLITE_FULL"


def test_fake_clock_must_be_aware_for_timestamps():
    with pytest.raises(ValueError):
        store.format_ts(datetime(2026, 1, 1))
    assert FakeClock().now().tzinfo is not None


def test_store_bench_reports_the_contract_keys_and_both_modes(tmp_path, monkeypatch):
    from checkpoint.bench import store as store_bench

    monkeypatch.setenv("KIOSK_DATA", str(tmp_path))
    monkeypatch.delenv("KIOSK_CONFIG", raising=False)
    monkeypatch.setattr(store_bench, "QUICK_SIZES", (1, 3, 1))
    monkeypatch.setattr(store_bench, "WEAR_APPENDS", (5, 5))
    monkeypatch.setattr(store_bench, "_log_lines", lambda passes: 0.0)  # a replay: slow
    result = store_bench.run(quick=True)
    assert result["synchronous"] == "FULL"
    assert result["commit_ms"] == result["commit_ms_full"] > 0
    assert result["appends_per_s"] == result["appends_per_s_full"] > 0
    assert result["commit_ms_normal"] > 0 and result["full_over_normal"] > 0
    assert result["chains_verified"] is True
    assert result["commits_per_event"] == 1.0 and result["wal_frames_per_event"] > 0
    assert list(tmp_path.iterdir()) == []  # scratch files cleaned up


def test_a_draft_takes_its_time_only_from_a_clock_reading(log, clock):
    with pytest.raises(ValueError, match="decided"):
        draft(decided="2026-03-02T08:30:00Z")
    with pytest.raises(ValueError, match="timezone-aware"):
        ClockReading(datetime(2026, 3, 2, 8, 30), 1, True)
    taken = ClockReading.take(clock)
    clock.advance(90)
    event = log.append(draft(decided=taken))
    assert (event.ts, event.mono_ns, event.clock_synced) == (
        "2026-03-02T08:30:00.000000Z",
        taken.mono_ns,
        True,
    )
    assert log.append(draft()).ts == "2026-03-02T08:31:30.000000Z"  # no reading: the commit's
    assert log.verify().ok


def _a_write_then_a_wal_wipe(log) -> bool:
    """A passage after the read (frames in the WAL the reader's snapshot lacks), then a WAL
    wipe: it completes only if no statement of a reader still pins a snapshot."""
    log.append(draft())
    return log.wipe_wal()


def test_a_caller_raising_among_a_readers_rows_leaves_no_statement_open(log, monkeypatch):
    """Before: ``query()``'s rows came from a statement left open for as long as the caller
    held them: one that raised in its loop (the rows still its local, kept with its frame by
    the exception) pinned that reader's snapshot, and every WAL checkpoint, the retention's
    wipe of the names it nulls among them, gave up until the rows were let go. The rows are
    read in full before ``query`` returns; a read too large for that (``streamed_rows``)
    ends its statement with its block, whatever the block raised."""
    monkeypatch.setattr(store, "WIPE_WAIT_MS", 5)  # that it gives up, not how long
    # More rows than a fetch takes (``ROWS_PER_USE``): with fewer, the statement was done at
    # its first fetch, and a query() lazy again or a cursor left open passed as well.
    rows_n = store.ROWS_PER_USE + 1
    for _ in range(rows_n):
        log.append(draft())
    reader = log.reader()
    rows = reader.query("SELECT * FROM events ORDER BY seq")
    with pytest.raises(LookupError):
        for _row in rows:
            raise LookupError("the caller's own")
    assert _a_write_then_a_wal_wipe(log)
    assert len(list(reader.query("SELECT seq FROM events"))) == rows_n + 1  # the rows all there
    with (
        pytest.raises(LookupError),
        streamed_rows(reader, "SELECT * FROM events WHERE seq > ?", [1]) as streamed,
    ):
        for _row in streamed:
            raise LookupError("the caller's own")
    assert _a_write_then_a_wal_wipe(log)
    with streamed_rows(reader, "SELECT seq FROM events ORDER BY seq") as streamed:
        assert [r["seq"] for r in streamed][-1] == rows_n + 2
    assert not reader.conn.in_transaction
