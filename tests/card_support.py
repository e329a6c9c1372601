"""A card going bad under the event log: a sector of ``kiosk.db`` that no longer reads back."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any


def damage_leaf(core: Any, pick: int | None = None) -> None:
    """Junk over the ``pick``-th leaf page of the events table (the middle one when None), as
    a sector the card no longer reads back (SQLite says SQLITE_CORRUPT on reaching it)."""
    # The pages in the file itself, nothing of them left in the WAL: no reader may hold that
    # up, not even one that met a page damaged before.
    assert core.store.wipe_wal(), "a reader holds the WAL: the wipe gave up"
    with closing(sqlite3.connect(core.store.path)) as conn:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        leaves = [
            row[0]
            for row in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'events' AND pagetype = 'leaf'"
                " ORDER BY pageno"
            )
        ]
    if pick is None:
        assert len(leaves) >= 3
        pick = len(leaves) // 2
    with open(core.store.path, "r+b") as db:
        db.seek((leaves[pick] - 1) * size)
        db.write(b"\xde\xad\xbe\xef" * (size // 4))
