"""Loading a core's snapshots asks sqlite_master once per load, not once per table looked at
(sqlite_utils' ``db[name]`` and ``.exists()`` each query it: ~30 statements per core)."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def _statements(db):
    seen: list[str] = []
    db.conn.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        db.conn.set_trace_callback(None)


def _schema_reads(seen: list[str]) -> int:
    return sum("sqlite_master" in s for s in seen)


def test_a_lists_load_reads_the_schema_once_and_still_reads_every_list(core):
    before = core.lists.current
    with _statements(core.store.reader()) as seen:
        loaded = core.lists.load()
    assert _schema_reads(seen) == 1
    assert loaded == before
    assert any("FROM list_meta" in s for s in seen)
    assert any("FROM list_quarantine ORDER BY id" in s for s in seen)


def test_forgetting_removed_peers_at_start_takes_two_statements_not_two_per_table(core):
    from kiosk import peers

    with _statements(core.store.reader()) as seen:
        assert peers.forget_removed(core.store, []) == {}
    assert _schema_reads(seen) == 1
    assert len(seen) == 2
