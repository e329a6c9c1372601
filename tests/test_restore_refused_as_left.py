"""A refused ``kiosk restore`` leaves this Pi's data dir and config folder as they were: no
file made, none changed, none touched (its bytes, mode and mtime).

Before: the restore read this Pi's event log (the forgets it keeps, its facts) before its
later checks (the archive's config, its gate, its seqs, its schema), and SQLite made the
log's ``kiosk.db-wal`` and ``kiosk.db-shm`` beside it to read it, read-only as it was; a
restore refused after that left both in the data dir, files that were not there before."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from test_backup import (  # no_installed_kiosk: autouse here too
    _rewritten,
    make_gate,
    newer_schema,
    no_installed_kiosk,  # noqa: F401
    passage,
    run_backup,
    run_restore,
)
from test_restore_log_name import forge_config

from checkpoint.cli.daemon_cmd import hold_data_dir


def as_left(folder: Path) -> dict[str, tuple[int, int, bytes | None]]:
    """Every path under ``folder``: its mode, its mtime and, for a file, its bytes."""
    found = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        body = path.read_bytes() if path.is_file() else None
        found[str(path.relative_to(folder))] = (st.st_mode, st.st_mtime_ns, body)
    return found


def changed(before: dict[str, tuple[int, int, bytes | None]], folder: Path) -> set[str]:
    """The paths under ``folder`` made, removed or touched since ``before`` (``as_left``)."""
    after = as_left(folder)
    return {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}


def stopped_gate(root: Path, clock, kiosk_id: str = "gate-north", events: int = 3):
    """A gate's folders as its daemon leaves them once stopped: the log closed (no -wal, no
    -shm), the lock file it took left there."""
    data, etc, log = make_gate(root, clock, kiosk_id, events)
    hold_data_dir(data).close()
    return data, etc, log


def _another_gate(north, new, archive) -> list[str]:
    return []  # a new Pi's own gate-1, no --as-this-gate


def _backwards(north, new, archive) -> list[str]:
    north.log.append(passage(9))  # the gate decided on after its backup
    return []


def _archives_config(north, new, archive) -> list[str]:
    forge_config(archive, '\n[store]\npath = "logs/events.db"\n')
    return ["--as-this-gate"]


def _newer_schema(north, new, archive) -> list[str]:
    _rewritten(archive, archive, newer_schema(archive.parent))
    return ["--as-this-gate"]


def _altered(north, new, archive) -> list[str]:
    def another_key(files, manifest):
        files["data/keys/issuer.key"] = b"another key\n"

    _rewritten(archive, archive, another_key)
    return ["--as-this-gate"]


def _no_backup(north, new, archive) -> list[str]:
    archive.write_text("not an archive")
    return []


def _unreadable_log(north, new, archive) -> list[str]:
    """This Pi's log damaged past its header (a failing card): its forgets cannot be read,
    and without --without-forgets the restore stops."""
    db = new.data / "kiosk.db"
    body = bytearray(db.read_bytes())
    body[100:4096] = b"\xff" * (4096 - 100)
    mtime = db.stat().st_mtime_ns
    db.write_bytes(bytes(body))
    os.utime(db, ns=(mtime, mtime))
    return ["--as-this-gate"]


class Gate:
    def __init__(self, data: Path, etc: Path, log) -> None:
        self.data, self.etc, self.log = data, etc, log


Refusal = Callable[[Gate, Gate, Path], list[str]]


@pytest.mark.parametrize(
    ("refusal", "code", "said"),
    [
        (_another_gate, 2, "gate-north"),
        (_backwards, 2, "backwards"),
        (_archives_config, 2, "store.path = 'logs/events.db'"),
        (_newer_schema, 2, "newer version"),
        (_altered, 2, "is not the file backed up"),
        (_no_backup, 2, "not a kiosk backup"),
        (_unreadable_log, 1, "forgets this Pi's log keeps cannot be read"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_a_refused_restore_leaves_this_pis_folders_as_they_were(
    tmp_path, clock, capsys, refusal: Refusal, code: int, said: str
):
    north = Gate(*stopped_gate(tmp_path / "north", clock))
    archive = tmp_path / "north.kbak"
    assert run_backup(north.data, north.etc, archive) == 0
    new = north if refusal is _backwards else Gate(*stopped_gate(tmp_path / "new", clock, "gate-1"))
    extra = refusal(north, new, archive)
    north.log.close()
    new.log.close()
    before = as_left(new.data), as_left(new.etc)
    assert "kiosk.lock" in before[0] and "kiosk.db-wal" not in before[0]
    capsys.readouterr()

    assert run_restore(new.data, new.etc, archive, *extra) == code

    err = capsys.readouterr().err
    assert said in err and "nothing was changed" in err, err
    assert changed(before[0], new.data) == set() and changed(before[1], new.etc) == set()
