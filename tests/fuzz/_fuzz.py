"""What every harness here shares: how atheris is started, and which modules it instruments.

Run a harness through ``scripts/fuzz`` (it bounds the time); see docs/system-tests.md.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import atheris

#: The project's own packages: coverage is collected for them only (instrumenting pydantic,
#: cryptography or openpyxl too would slow every run for paths that are not ours).
OURS = ["kiosk", "drivers", "office", "checkpoint", "ui"]


def instrumented() -> AbstractContextManager[Any]:
    """Import the targets inside this block so their branches feed the fuzzer."""
    return atheris.instrument_imports(include=OURS)


def scratch() -> Path:
    """A folder for a harness's files. ``scripts/fuzz`` names one in memory (a tmpfs) in
    ``KIOSK_FUZZ_SCRATCH`` and removes it after the run: libFuzzer ends the process without
    Python's ``atexit``, which is only a fallback here."""
    path = Path(tempfile.mkdtemp(prefix="kiosk-fuzz-", dir=os.environ.get("KIOSK_FUZZ_SCRATCH")))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def run(one_input: Callable[[bytes], None]) -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
