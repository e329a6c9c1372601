"""A guard's removal of personal data ahead of retention (a quarantine lifted early, a household
taken off the ledger or its note rewritten, a revocation lifted, a plate dropped by the next
vehicle list) leaves no copy of it on the card: ``secure_delete`` zeroes the freed space of the
pages, and the WAL, which still holds the pages as they were, is checkpointed and truncated
right after the commit (``kiosk.wipe``; before, the old frames stayed in ``kiosk.db-wal`` until
the next retention purge that removed something, or for ever on an idle gate)."""

from __future__ import annotations

import pytest

from kiosk import lists as lists_mod
from kiosk import retention, vehicles
from kiosk.lists import ListStore
from kiosk.store import EventLog
from kiosk.vehicles import VehicleList
from kiosk.wipe import WIPE_OWED_KEY, wipe_removed

NAME = "Qiuxiang Marlowe"
NOTE = f"{NAME} tested positive, tel 13912345678"
PLATE = "京Q7Z9K8"


@pytest.fixture
def log(tmp_path, clock):
    sets = [lists_mod.MIGRATIONS, vehicles.MIGRATIONS]
    store = EventLog(tmp_path / "kiosk.db", "gate-1", clock, "NORMAL", migrations=sets)
    store.open()
    yield store
    store.close()


@pytest.fixture
def lists(log, clock):
    store = ListStore(log, clock)
    store.load()
    return store


def files_holding(log: EventLog, *needles: str) -> dict[str, list[str]]:
    """Each of the database's files (the db, its WAL and shared memory) with the needles its
    bytes hold."""
    out = {}
    for suffix in ("", "-wal", "-shm"):
        path = log.path.with_name(log.path.name + suffix)
        data = path.read_bytes() if path.exists() else b""
        hits = [n for n in needles if n.encode() in data]
        if hits:
            out[suffix or "db"] = hits
    return out


def owed(log: EventLog) -> bool:
    row = log.reader().execute("SELECT 1 FROM meta WHERE key = ?", [WIPE_OWED_KEY]).fetchone()
    return row is not None


def test_a_quarantine_lifted_early_leaves_no_name_in_any_file(lists, log):
    lists.add_quarantine("7-1404", NAME, "2026-03-01", "2026-03-14", "guard Li", note=NOTE)
    assert files_holding(log, NAME, "13912345678")  # written, in the WAL at least
    [entry] = log.reader().execute("SELECT id FROM list_quarantine").fetchall()
    lists.remove_quarantine(entry[0], "guard Li")
    assert files_holding(log, NAME, "13912345678") == {}
    assert not owed(log)


def test_a_second_entry_lifted_with_the_first_goes_too(lists, log, clock):
    lists.add_quarantine("7-1404", NAME, "2026-03-01", "2026-03-14", "guard Li", note=NOTE)
    other = ListStore(log, clock)  # a second tablet, its page drawn before
    other.add_quarantine("7-1404", NAME, "2026-03-01", "2026-03-20", "guard Wu", note="again")
    first = min(r[0] for r in log.reader().execute("SELECT id FROM list_quarantine"))
    lists.remove_quarantine(first, "guard Li")
    assert log.reader().execute("SELECT count(*) FROM list_quarantine").fetchone()[0] == 0
    assert files_holding(log, NAME) == {}


def test_a_household_taken_off_the_ledger_or_its_note_rewritten_leaves_no_note(lists, log):
    lists.set_household("7-1404", "guard Li", residents=3, note=NOTE)
    lists.set_household("7-1404", "guard Li", residents=3, note="")  # the note struck out
    assert files_holding(log, NAME) == {}
    lists.set_household("7-1405", "guard Li", residents=2, note=f"{NAME}'s sister")
    lists.remove_household("7-1405", "guard Li")
    assert files_holding(log, NAME) == {}


def test_an_entry_added_or_written_again_as_it_was_owes_no_wipe(lists, log, monkeypatch):
    """Adding a household (none there to replace) owed a WAL wipe as if it removed one: a
    checkpoint of the whole WAL on the writer at every new entry. Only a change that removes
    or rewrites personal data owes one; an added revocation, quarantine or household does not,
    nor an entry written again with its personal values as they were (only its count) or
    given one it lacked."""
    wipes: list[int] = []
    real = log.wipe_wal
    monkeypatch.setattr(log, "wipe_wal", lambda: wipes.append(1) or real())
    lists.set_household("7-1404", "guard Li", residents=3, note=NOTE)
    lists.set_household("7-1404", "guard Wu", residents=4, note=NOTE)
    lists.set_household("7-1404", "guard Li", 4, observation_until="2026-03-20", note=NOTE)
    lists.revoke("c0ffee000001", NOTE, "guard Li")
    lists.add_quarantine("7-1404", NAME, "2026-03-01", "2026-03-14", "guard Li", note=NOTE)
    assert (wipes, owed(log)) == ([], False)
    lists.set_household("7-1404", "guard Li", 4, observation_until="2026-03-27", note=NOTE)
    assert (wipes, owed(log)) == ([1], False)  # its observation date as it was: rewritten


def test_a_lifted_revocation_leaves_no_reason(lists, log):
    lists.revoke("c0ffee000001", NOTE, "guard Li")
    assert files_holding(log, NAME)
    lists.unrevoke("c0ffee000001", "guard Li")
    assert files_holding(log, NAME, "13912345678") == {}


def test_a_plate_the_next_vehicle_list_drops_is_gone_from_the_files(log, clock):
    cars = VehicleList(log, clock)
    cars.apply(cars.plan_import(f"plate,household\n{PLATE},7-1404\n".encode(), "v.csv"), "root")
    assert files_holding(log, PLATE)
    cars.apply(cars.plan_import("plate,household\n京A00001,1-101\n".encode(), "v.csv"), "root")
    assert files_holding(log, PLATE) == {}


def test_an_import_that_removes_or_rewrites_no_row_owes_no_wipe(tmp_path, clock, monkeypatch):
    """Every vehicle list or compound map imported owed a WAL wipe, one that only added rows
    or wrote them again as they were too: a checkpoint and truncation of the whole WAL on
    the writer for nothing. Only an import that drops a row or rewrites one of its values
    (its new ``updated_at`` stamp aside) owes one."""
    from kiosk import compound
    from kiosk.compound import CompoundMap

    sets = [vehicles.MIGRATIONS, compound.MIGRATIONS]
    log = EventLog(tmp_path / "kiosk.db", "gate-1", clock, "NORMAL", migrations=sets)
    log.open()
    wipes: list[int] = []
    real = log.wipe_wal
    monkeypatch.setattr(log, "wipe_wal", lambda: wipes.append(1) or real())
    cars, homes = VehicleList(log, clock), CompoundMap(log, clock)

    def cars_are(text: str) -> None:
        cars.apply(cars.plan_import(f"plate,household,note\n{text}".encode(), "v.csv"), "root")

    def homes_are(text: str) -> None:
        sheet = f"building,unit,floor,household,residents\n{text}".encode()
        homes.apply(homes.plan_import(sheet, "c.csv"), "root")

    cars_are(f"{PLATE},7-1404,\n")
    clock.advance(60)
    cars_are(f"{PLATE},7-1404,\n京A00001,1-101,\n")  # one added, one as it was
    homes_are("7,1,14,7-1404,3\n")
    clock.advance(60)
    homes_are("7,1,14,7-1404,3\n1,1,1,1-101,2\n")
    assert (wipes, owed(log)) == ([], False)
    cars_are(f"{PLATE},7-1404,{NAME}'s car\n京A00001,1-101,\n")  # its note rewritten
    assert (wipes, owed(log)) == ([1], False)
    homes_are("7,1,14,7-1404,3\n")  # 1-101 dropped
    assert (wipes, owed(log)) == ([1, 1], False)
    log.close()


def test_a_wipe_a_reader_holds_up_is_owed_to_the_next_purge(lists, log, monkeypatch):
    monkeypatch.setattr(log, "wipe_wal", lambda: False)  # a long export's snapshot open
    lists.set_household("7-1404", "guard Li", residents=3, note=NOTE)
    lists.remove_household("7-1404", "guard Li")
    assert owed(log) and files_holding(log, NAME)  # the removal stands; the wipe waits
    monkeypatch.undo()
    retention.purge(log, 30, log.clock.now())  # nothing of its own to purge: wipes what is owed
    assert not owed(log) and files_holding(log, NAME) == {}


def test_a_store_without_a_wal_to_wipe_owes_nothing():
    assert wipe_removed(object()) is False


def test_a_quarantine_the_offices_next_bundle_lifts_leaves_no_name(lists, log, clock, tmp_path):
    from kiosk.lists import sign_bundle
    from kiosk.passes import TrustList, load_private_key, new_key_pair

    key_path, _ = new_key_pair(tmp_path / "office", "office")
    key, trust = load_private_key(key_path), TrustList.from_dir(tmp_path / "office")

    def bundle(version: int, quarantine: list[dict]) -> str:
        return sign_bundle(key, {
            "format": "kiosk-lists/1", "version": version, "issued_at": clock.now().isoformat(),
            "quarantine": quarantine,
        })  # fmt: skip

    entry = {"household": "7-1404", "holder": NAME, "from": "2026-03-01", "until": "2026-03-14"}
    lists.import_bundle(bundle(1, [entry, {**entry, "holder": "Li Wei"}]), trust, "fleet")
    assert files_holding(log, NAME)
    lists.import_bundle(bundle(2, [{**entry, "holder": "Li Wei"}]), trust, "fleet")  # lifted
    assert files_holding(log, NAME) == {} and files_holding(log, "Li Wei")
    assert not owed(log)
    # The same lists again (a new version, nothing dropped): no wipe owed, none made.
    wal_before = log.path.with_name("kiosk.db-wal").stat().st_size
    lists.import_bundle(bundle(3, [{**entry, "holder": "Li Wei"}]), trust, "fleet")
    assert log.path.with_name("kiosk.db-wal").stat().st_size > wal_before


def test_a_quarantine_lifted_at_a_peer_gate_leaves_no_name_at_this_one(tmp_path, monkeypatch):
    from test_compound_gates import NOW, paired
    from test_peer_revocations import told_and_fetched

    from kiosk.clock import FakeClock
    from kiosk.peers import forget_removed

    clock = FakeClock(start=NOW)
    with paired(tmp_path, clock, monkeypatch) as (north, south):
        north.core.lists.add_quarantine("7-1404", NAME, "2026-03-01", "2026-03-14", "guard Li")
        told_and_fetched(north, south)
        assert files_holding(south.core.store, NAME)  # held here: the peer's entry
        [entry] = north.core.lists.current.quarantine
        north.core.lists.remove_quarantine(entry.id, "guard Li")
        told_and_fetched(north, south)
        assert files_holding(south.core.store, NAME) == {}
        assert files_holding(north.core.store, NAME) == {}
        # North taken out of south's compound.peers (what south's next start forgets of it).
        north.core.lists.add_quarantine("7-1404", NAME, "2026-03-01", "2026-03-14", "guard Li")
        told_and_fetched(north, south)
        assert files_holding(south.core.store, NAME)
        assert forget_removed(south.core.store, []) and files_holding(south.core.store, NAME) == {}


def test_a_note_the_next_household_sheet_rewrites_is_gone_from_the_files(lists, log):
    lists.import_csv("households", f'household,residents,note\n7-1404,3,"{NOTE}"\n', "root")
    assert files_holding(log, NAME)
    lists.import_csv("households", "household,residents,note\n7-1404,3,moved out\n", "root")
    assert files_holding(log, NAME, "13912345678") == {}
    assert not owed(log)


@pytest.mark.parametrize("wiper", ["removal", "purge"])
def test_a_removal_committed_while_another_wipe_runs_keeps_its_own_debt(
    lists, log, clock, monkeypatch, wiper
):
    """A wipe settled its debt by deleting the ``meta`` row whatever it held: a guard's removal
    committed on another thread between that wipe's checkpoint and its settling (the peer sync
    wiping after a trim while a guard lifts a quarantine) lost its own debt, and when its own
    wipe was then held up by a reader, nothing wiped it: the name stayed in the WAL for weeks.
    A wipe settles only the debt it found."""
    from kiosk.wipe import owe_wipe

    lists.set_household("7-1404", "guard Li", residents=3, note="first")
    lists.remove_household("7-1404", "guard Li")  # wiped and settled: nothing owed
    real = log.wipe_wal

    def wipe_then_a_removal_lands() -> bool:
        done = real()
        clock.advance(1)
        log.submit(lambda db: owe_wipe(log, db))  # the guard's removal, its wipe held up
        return done

    log.submit(lambda db: owe_wipe(log, db))  # this wipe's own debt
    monkeypatch.setattr(log, "wipe_wal", wipe_then_a_removal_lands)
    if wiper == "removal":
        assert wipe_removed(log)
    else:
        retention.purge(log, 30, clock.now())
    assert owed(log)  # the later removal's debt stands for the next purge


def test_a_wipe_owed_keeps_the_date_it_was_first_owed_until_one_completes(log, clock):
    """Each debt replaced the one before with its own date, so a wipe held up every hour
    was always owed since the last hour. The first date (by a synchronised clock) stays
    while a wipe is owed; an unsynchronised removal leaves it to the next purge's clock; a
    debt made while a wipe ran is owed from its own date once that wipe settles the one it
    found."""
    from datetime import timedelta

    from kiosk.store import format_ts
    from kiosk.wipe import owe_wipe, owe_wipe_at, owed_for, owed_since, settle_wipe

    clock.is_synced = False
    log.submit(lambda db: owe_wipe(log, db))
    assert owed(log) and owed_for(log.reader(), clock.now()) is None  # undated: not known
    clock.is_synced = True
    first = clock.now()
    log.submit(lambda db: owe_wipe_at(db, first))  # the purge's clock dates it
    clock.advance(3600)
    log.submit(lambda db: owe_wipe(log, db))
    later = owed_since(log.reader())
    assert later == format_ts(clock.now())
    clock.advance(3600)
    assert owed_for(log.reader(), clock.now()) == 7200.0
    assert owed_for(log.reader(), first - timedelta(hours=1)) == 0.0  # a clock set back
    log.submit(lambda db: owe_wipe(log, db))  # during a wipe that found ``later``
    log.submit(lambda db: settle_wipe(db, later))
    assert owed_for(log.reader(), clock.now()) == 0.0
    log.submit(lambda db: settle_wipe(db, owed_since(db)))
    assert not owed(log) and owed_for(log.reader(), clock.now()) is None
