"""Checkpoint kiosk core: policy, thermometry, passes, engine and event log.

Nothing in this package touches hardware or the web framework; drivers live in ``drivers``
and the screens and HTTP API in ``ui``, each built from core objects handed in.

sqlite-utils, under the event log and the other stores, imports numpy whenever it can, only
to map numpy values to column types; the core never hands it any. So that one import is
refused (``_NoNumpyForSqliteUtils``): a gate whose devices need no numpy (a serial scanner)
does not load it (~10 MB, docs/memory.md), and a camera's drivers import numpy as usual.
"""

from __future__ import annotations

import sys as _sys
from collections.abc import Sequence as _Sequence
from typing import Any as _Any

__version__ = "0.1.0"


class _NoNumpyForSqliteUtils:
    """A meta path finder that fails ``import numpy`` while ``sqlite_utils.db`` is being
    imported (before it has defined ``Database``) and finds nothing otherwise. Once numpy is
    loaded (by a camera's drivers) imports take it from ``sys.modules`` and never ask."""

    @staticmethod
    def find_spec(name: str, path: _Sequence[str] | None = None, target: _Any = None) -> None:
        if name == "numpy":
            db = _sys.modules.get("sqlite_utils.db")
            if db is not None and not hasattr(db, "Database"):
                raise ModuleNotFoundError("not for sqlite_utils (kiosk/__init__.py)", name=name)


if not any(getattr(f, "__name__", "") == _NoNumpyForSqliteUtils.__name__ for f in _sys.meta_path):
    _sys.meta_path.insert(0, _NoNumpyForSqliteUtils)  # once, even if this module is reloaded
