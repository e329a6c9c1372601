"""checkpoint.cli.parsers.stdin: the verbs' stdin, when the process has none."""

from __future__ import annotations

import sys

from checkpoint.cli.parsers import stdin


def test_no_stdin_reads_empty_however_it_is_read(monkeypatch):
    """Started with fd 0 closed (cron, nohup, ``<&-``) Python's ``sys.stdin`` is None; the
    empty stand-in must read empty by every way a verb reads it, its byte buffer included:
    one made per call and dropped as ``stdin().buffer.read()`` ran closed the buffer under
    the read ('I/O operation on closed file', the passphrase's traceback)."""
    monkeypatch.setattr(sys, "stdin", None)
    # Read outside the asserts: pytest's rewritten assert would keep the stand-in alive.
    raw = stdin().buffer.read(10)
    line = stdin().readline(10)
    assert raw == b"" and line == ""
    assert not stdin().isatty()
