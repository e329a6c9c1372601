"""A peer's passage this gate drops (its gate said it did not open for it, or it aged past the
look-back) leaves no copy of its pass id on the card: the drop owes a WAL wipe in its own
transaction and runs it after the commit (``kiosk.wipe``), as a guard's removal does. Before,
the rows' page images stayed in ``kiosk.db-wal`` until the next retention purge."""

from __future__ import annotations

import pytest
import test_compound_gates
from test_compound_gates import NOW, Gate, resident
from test_gate_truth_peers import _not_opened
from test_removal_wipes_wal import files_holding, owed

from kiosk.clock import FakeClock

#: The north and south gates of the compound tests, on this module's clock.
north, south = test_compound_gates.north, test_compound_gates.south


@pytest.fixture
def clock():
    return FakeClock(start=NOW)


@pytest.fixture
def gates(north, south):
    """North, and south asking it (``test_compound_gates``' gates, on this module's clock)."""
    return north, south


def _pass_id(gate: Gate) -> str:
    [(pass_id,)] = gate.core.store.reader().execute(
        "SELECT pass_id FROM events WHERE decision = 'pass'"
    )
    return str(pass_id)


def _held_at_south(gates, monkeypatch):
    """A resident's pass at north, fetched and held at south: north, south, south's sync of
    north, the pass id."""
    north, south = gates
    sync = south.peer_of(north, monkeypatch)
    north.passage(resident(holder="Wang L"))
    pass_id = _pass_id(north)
    sync.poll()
    return north, south, sync, pass_id


def test_a_pass_its_gate_did_not_open_for_leaves_no_pass_id_at_the_peer(gates, clock, monkeypatch):
    north, south, sync, pass_id = _held_at_south(gates, monkeypatch)
    assert files_holding(south.core.store, pass_id)  # held here, in the WAL at least
    _not_opened(north)
    clock.advance(30)
    sync.poll()
    assert sync.ledger.held() == {}
    assert files_holding(south.core.store, pass_id) == {}
    assert not owed(south.core.store)


def test_a_peer_row_past_the_look_back_leaves_no_pass_id(gates, clock, monkeypatch):
    north, south, sync, pass_id = _held_at_south(gates, monkeypatch)
    assert files_holding(south.core.store, pass_id)
    clock.advance(sync.ledger.horizon.total_seconds() + 3600)  # kiosk.peers.LEDGER_HORIZON
    sync.poll()
    assert sync.ledger.held() == {}
    assert files_holding(south.core.store, pass_id) == {}
    assert not owed(south.core.store)


def test_a_poll_that_drops_nothing_wipes_nothing(gates, clock, monkeypatch):
    north, south = gates
    sync = south.peer_of(north, monkeypatch)
    north.passage(resident(holder="Wang L"))
    sync.poll()
    wipes: list[int] = []
    real = south.core.store.wipe_wal
    monkeypatch.setattr(south.core.store, "wipe_wal", lambda: wipes.append(1) or real())
    north.passage(resident("2-202"))
    clock.advance(30)
    sync.poll()  # a new row kept, nothing trimmed
    sync.poll()  # idle
    assert sync.ledger.held() == {"gate-north": 2}
    assert wipes == []


@pytest.mark.parametrize("drop", ["restart", "rolled_back"])
def test_a_peers_rows_dropped_for_a_new_or_restored_log_leave_no_pass_id(
    gates, clock, monkeypatch, drop
):
    north, south, sync, pass_id = _held_at_south(gates, monkeypatch)
    assert files_holding(south.core.store, pass_id)
    if drop == "restart":  # a new database at the peer: its seqs start again
        sync.ledger.restart("gate-north", clock.now())
    else:  # the peer's log restored from a copy ending before the row
        sync.ledger.rolled_back("gate-north", 0)
    assert sync.ledger.held() == {}
    assert files_holding(south.core.store, pass_id) == {}
    assert not owed(south.core.store)


def test_a_busy_peer_trimmed_at_every_poll_wipes_at_most_every_few_minutes(
    gates, clock, monkeypatch
):
    # At its max_rows (or with rows ageing past the look-back all day) a busy peer's every poll
    # with new rows trims one: a checkpoint and fsync of the card every few seconds. The
    # trims' wipe is owed at once and done at most every TRIM_WIPE_EVERY_S.
    from kiosk.peers import TRIM_WIPE_EVERY_S

    north, south = gates
    sync = south.peer_of(north, monkeypatch)
    sync.ledger.max_rows = 1
    wipes: list[int] = []
    real = south.core.store.wipe_wal
    monkeypatch.setattr(south.core.store, "wipe_wal", lambda: wipes.append(1) or real())

    def one_more(household: str) -> None:
        north.passage(resident(household))
        clock.advance(10)
        sync.poll()

    one_more("1-101")
    one_more("2-202")  # 1-101 trimmed: wiped
    assert wipes == [1] and not owed(south.core.store)
    one_more("3-303")  # 2-202 trimmed 10 s later: owed, not yet wiped
    assert wipes == [1] and owed(south.core.store)
    clock.advance(TRIM_WIPE_EVERY_S)
    one_more("4-404")
    assert wipes == [1, 1] and not owed(south.core.store)
    assert sync.ledger.held() == {"gate-north": 1}
