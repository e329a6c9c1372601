"""The API's export helper process: ``/api/v1/events`` pages built off the gate's CPU.

``HelperProcessPages`` is the ``kiosk.export.PageSource`` the daemon hands to the API when
``web.api_worker_process`` is on.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from checkpoint.cpu import background_cpus, enter_background
from kiosk.export import InProcessPages, export_page_at
from kiosk.store import EventLog

log = logging.getLogger(__name__)


def export_worker_init(parent_pid: int, background: tuple[int, ...] | None = None) -> None:
    """Initializer of the API's export worker process: off the gate's CPU and at a lower
    priority (``checkpoint.cpu.enter_background``; ``background`` is the parent's
    ``checkpoint.cpu.background_cpus()``), and exit as soon as the parent is gone.

    A daemon killed hard (watchdog, OOM, SIGKILL) cannot shut its pool down; without the
    watch the helper would linger, holding the database open."""
    enter_background(background)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="kiosk-export-parent-watch", daemon=True).start()



class HelperProcessPages:
    """Builds ``/api/v1/events`` pages, by default in one helper process.

    Why a process: reading, masking and encoding 5,000 events allocates ~100,000 objects and
    holds the GIL for tens of milliseconds in total; in the daemon's process that shows up as
    scheduling lag on the asyncio loop that runs the gate (measured by ``kiosk bench``, pull
    section). The helper reads the same SQLite file through its own read-only connection (WAL
    lets it) and hands back bytes. If the helper cannot be used the page is built in this
    thread instead, so an export never fails for it."""

    _pool: ProcessPoolExecutor | None = None
    _pool_lock = threading.Lock()

    @classmethod
    def _executor(cls) -> ProcessPoolExecutor:
        with cls._pool_lock:
            if cls._pool is None:
                # spawn, not fork: this process has threads (the log writer, the loop).
                cls._pool = ProcessPoolExecutor(
                    1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=export_worker_init,
                    initargs=(os.getpid(), background_cpus()),
                )
            return cls._pool

    @classmethod
    def shutdown(cls) -> None:
        """Stop the helper process (the daemon calls this on stop; it also exits by itself
        when this process dies)."""
        with cls._pool_lock:
            pool, cls._pool = cls._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def build(
        self, store: EventLog, after: int, limit: int, allowed: frozenset[str], ndjson: bool
    ) -> tuple[bytes, int, int, int]:
        try:
            future = self._executor().submit(
                export_page_at, str(store.path), after, limit, tuple(sorted(allowed)), ndjson
            )
            return future.result(timeout=60)
        except (BrokenProcessPool, OSError, RuntimeError, TimeoutError) as exc:
            log.warning("export worker unavailable (%s); building in-process", type(exc).__name__)
            self.shutdown()
        return InProcessPages().build(store, after, limit, allowed, ndjson)
