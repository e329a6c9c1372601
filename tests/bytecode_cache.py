"""Compiled modules, and pytest's assertion-rewritten ones, cached in the user's cache
directory, not in the tree and not nowhere: a pytest plugin that pyproject's ``addopts``
loads first (``-p bytecode_cache``), before the plugins pytest finds installed.

A shell with ``PYTHONDONTWRITEBYTECODE`` (set to keep ``__pycache__`` out of the tree)
otherwise has every pytest process parse and rewrite all the test modules again at each run
(~3 s of a 2-core run's collection), and the installed plugins pytest rewrites (xdist's,
hypothesis's, anyio's whole package: 39 modules, ~0.17 s of CPU in each of the three
processes of ``-n 2``) whenever they load before this runs, as they did when the conftest
set it up. The tree stays clean; a prefix the user chose is kept; without
``PYTHONDONTWRITEBYTECODE`` nothing changes. (PYTEST_DONT_REWRITE: it asserts nothing.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def keep_bytecode_out_of_the_tree() -> None:
    if not sys.dont_write_bytecode or sys.pycache_prefix is not None:
        return  # bytecode is cached as usual, or where the user chose
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    prefix = base / "kiosk-tests" / "pycache"
    try:
        prefix.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return  # no writable cache: compile as before
    sys.pycache_prefix = str(prefix)
    sys.dont_write_bytecode = False


keep_bytecode_out_of_the_tree()
