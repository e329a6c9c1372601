"""glibc's allocator, set for a long-running daemon on a small board (``docs/memory.md``).

Out of the box glibc keeps memory a daemon like this has freed: each thread may get its own
arena (up to 8 per core), and the thresholds for giving memory back move up after every large
block (a camera frame, an API page) is freed, to 32 MB and more. On the demo that left the
daemon at ~190 MB PSS after a pull where ~105 MB were in use. Fixed thresholds hand freed
frames and pages back at once; two arenas keep the heap from fragmenting across threads.

``tune()`` applies this with ``mallopt`` as the first thing the daemon (and its export helper)
does, so it holds however the daemon is started; ``systemd/kiosk.service`` sets the same
through ``MALLOC_ARENA_MAX`` for the interpreter's own start-up. Elsewhere (musl, macOS) it
does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# mallopt parameters (glibc malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: glibc's own starting values, kept fixed instead of growing with each large free.
MMAP_THRESHOLD_BYTES = 128 * 1024
TRIM_THRESHOLD_BYTES = 128 * 1024
ARENA_MAX = 2

_applied = False


def tune() -> bool:
    """Apply the settings once per process; True if glibc took them."""
    global _applied
    if _applied:
        return True
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    settings = (
        (_M_ARENA_MAX, ARENA_MAX),
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
        (_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
    )
    _applied = all(mallopt(param, value) == 1 for param, value in settings)
    if not _applied:
        log.info("allocator settings not taken (not glibc?)")
    return _applied
