"""Checkpoint kiosk core: policy, thermometry, passes, engine and event log.

Nothing in this package touches hardware or the web framework; drivers live in ``drivers``
and the screens and HTTP API in ``ui``, each built from core objects handed in.

sqlite-utils, under the event log and the other stores, imports numpy whenever it can, only
to map numpy values to column types; the core never hands it any. So it is imported here
with numpy hidden: a gate whose devices need no numpy (a serial scanner) does not load it
(~10 MB, docs/memory.md), and a camera's drivers still import numpy as usual afterwards.
"""

import sys as _sys

__version__ = "0.1.0"


def _import_sqlite_utils_without_numpy() -> None:
    if "sqlite_utils" in _sys.modules or "numpy" in _sys.modules:
        return  # too late, or loaded anyway: nothing to save
    _sys.modules["numpy"] = None  # type: ignore[assignment]  # import numpy -> ImportError
    try:
        import sqlite_utils  # noqa: F401
    finally:
        if _sys.modules.get("numpy", False) is None:
            del _sys.modules["numpy"]


_import_sqlite_utils_without_numpy()
