"""The latest read wins: one snapshot in force, reloaded from several threads.

A ledger (the lists, the returnee ledger) keeps an immutable snapshot that ``decide`` reads
without locks, and rebuilds it from the database after every change. Changes come from
several threads (the list sync, the guard console's web threads), so two reloads can
overlap: each takes a ticket before it reads, and only a snapshot read after the one in
force replaces it. A reload that began earlier but finished later keeps the newer snapshot
in force, and gets that one back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestRead(Generic[T]):
    """The snapshot in force and the tickets that order the reads replacing it.

    ``adopt`` runs under the lock on a snapshot a load is about to put in force and gives
    what is put in force instead; ``on_load`` is called under the lock with each snapshot a
    load has put in force (not with ``amend``'s).
    """

    def __init__(
        self,
        initial: T,
        *,
        adopt: Callable[[T], T] | None = None,
        on_load: Callable[[T], None] | None = None,
    ) -> None:
        self._adopt = adopt
        self._on_load = on_load
        self._lock = threading.Lock()
        self._tickets = 0
        self._in_force = 0
        self._current = initial

    @property
    def current(self) -> T:
        return self._current

    def load(self, read: Callable[[], T]) -> T:
        """Take a ticket, ``read`` a snapshot (outside the lock) and put it in force unless
        a read that began later already is; return the snapshot in force."""
        with self._lock:
            self._tickets += 1
            ticket = self._tickets
        snapshot = read()
        with self._lock:
            if ticket > self._in_force:
                self._in_force = ticket
                self._current = snapshot if self._adopt is None else self._adopt(snapshot)
                if self._on_load is not None:
                    self._on_load(self._current)
            return self._current

    def amend(self, change: Callable[[T], T]) -> T:
        """Replace the snapshot in force by ``change(snapshot)`` under the lock (no read, so
        the order of reads is untouched); return the one now in force."""
        with self._lock:
            self._current = change(self._current)
            return self._current
