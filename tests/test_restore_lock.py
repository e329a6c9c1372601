"""A maintenance verb that writes the event log (``person forget``, ``purge``, ...) holds the
data dir's lock shared while it writes, and ``kiosk restore`` holds it exclusive for its whole
run: a forget during a restore said done (exit 0) and the restore, which had read this Pi's
forgets before it, put back the archive's log naming the resident again. The verb is refused
while a restore runs (exit 1, nothing written), a restore while a verb writes; beside the
running daemon (which holds ``kiosk.lock``, not the folder) and beside another verb both
still go on."""

from __future__ import annotations

import hashlib
import os
import sqlite3

import pytest
from test_backup import (  # no_installed_kiosk: autouse here too
    make_gate,
    no_installed_kiosk,  # noqa: F401
    run_backup,
    run_restore,
)
from test_cli_root_refusal import CALIBRATE_WRITES
from test_person_restore import (  # cli_clock: the verbs' clock, the test's
    HOUSEHOLD,
    NAME,
    cli_clock,  # noqa: F401
    resident_passes,
)

from checkpoint.cli import backup_cmd, main
from checkpoint.cli.daemon_cmd import hold_data_dir, lock_folder
from checkpoint.cli.person_cmd import _sets
from kiosk import backup
from kiosk.store import EventLog

UNDER_WAY = "a restore is under way in"


def _gate(tmp_path, clock):
    """A gate whose log names the resident 5 times, every migration set in, closed."""
    data, etc, log = make_gate(tmp_path / "north", clock, events=0)
    resident_passes(log, 5)
    log.close()
    EventLog(data / "kiosk.db", "gate-north", clock, migrations=_sets()).open().close()
    return data, etc


def _forget(db) -> int:
    return main(
        ["person", "forget", "--name", NAME, "--household", HOUSEHOLD, "--yes", "--db", str(db)]
    )


def _purge(db) -> int:
    return main(["purge", "--older-than", "0", "--trust-clock", "--db", str(db)])


def _naming(db) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM events WHERE holder = ?", [NAME]).fetchone()[0]
    finally:
        conn.close()


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.usefixtures("cli_clock")
def test_a_forget_during_a_restore_is_refused_instead_of_said_done_and_undone(
    tmp_path, clock, capsys, monkeypatch
):
    """The forget comes after the restore read this Pi's forgets (as it judges the archive):
    it said done, and the log put back named the resident 5 times. Now it is refused, says
    why, and the restore goes through; the forget made after it holds."""
    data, etc = _gate(tmp_path, clock)
    archive = tmp_path / "north.kbak"
    assert run_backup(data, etc, archive) == 0
    db = data / "kiosk.db"
    real = backup.judge_restore
    ran = []

    def judge(*args, **kwargs):
        ran.append(_forget(db))
        ran.append(capsys.readouterr().err)
        return real(*args, **kwargs)

    monkeypatch.setattr(backup, "judge_restore", judge)
    capsys.readouterr()
    assert run_restore(data, etc, archive) == 0
    code, err = ran
    assert code == 1, err
    said = [line for line in err.splitlines() if UNDER_WAY in line]
    assert said == [
        f"kiosk person: {UNDER_WAY} {data}: try again when it has finished; nothing was changed"
    ], err
    assert _naming(db) == 5
    monkeypatch.setattr(backup, "judge_restore", real)
    assert _forget(db) == 0  # the restore over: the lock let go
    assert _naming(db) == 0


@pytest.mark.usefixtures("cli_clock")
@pytest.mark.parametrize("verb", [_forget, _purge], ids=["person forget", "purge"])
def test_a_verb_that_writes_is_refused_while_a_restore_holds_the_data_dir(
    tmp_path, clock, capsys, verb
):
    """kiosk-purge.timer fires at boot (Persistent=true), when a technician restores."""
    data, etc = _gate(tmp_path, clock)
    db = data / "kiosk.db"
    before = _sha(db)
    with backup_cmd._stopped(data):
        capsys.readouterr()
        assert verb(db) == 1
        err = capsys.readouterr().err
    assert UNDER_WAY in err and "nothing was changed" in err, err
    assert _sha(db) == before
    assert _naming(db) == 5


@pytest.mark.usefixtures("cli_clock")
def test_verbs_that_write_go_on_beside_the_running_daemon_and_one_another(tmp_path, clock, capsys):
    """The daemon holds kiosk.lock exclusive for its life: `person forget` and `purge` run
    beside it (docs/cli.md), and beside another verb holding the data dir shared; each lets
    go when it ends, so that a restore can then take the data dir."""
    data, etc = _gate(tmp_path, clock)
    db = data / "kiosk.db"
    daemon = hold_data_dir(data)
    other = lock_folder(data, exclusive=False)  # another verb, writing
    try:
        assert _forget(db) == 0, capsys.readouterr().err
        assert _purge(db) == 0, capsys.readouterr().err
    finally:
        if other is not None:
            os.close(other)
        daemon.close()
    assert _naming(db) == 0
    restore = lock_folder(data, exclusive=True)
    assert restore is not None
    os.close(restore)


def test_a_restore_is_refused_while_a_verb_writes_the_log(tmp_path, clock, capsys):
    data, etc = _gate(tmp_path, clock)
    archive = tmp_path / "north.kbak"
    assert run_backup(data, etc, archive) == 0
    names = sorted(p.name for p in data.iterdir() if p.name != "kiosk.lock")
    before = _sha(data / "kiosk.db")
    verb = lock_folder(data, exclusive=False)
    assert verb is not None
    try:
        capsys.readouterr()
        assert run_restore(data, etc, archive) == 1
        err = capsys.readouterr().err
    finally:
        os.close(verb)
    assert f"is writing in {data}: try again when it has finished" in err, err
    assert sorted(p.name for p in data.iterdir() if p.name != "kiosk.lock") == names
    assert _sha(data / "kiosk.db") == before


@pytest.mark.usefixtures("cli_clock")
@pytest.mark.parametrize("action", CALIBRATE_WRITES, ids=lambda a: a[0])
def test_calibrate_writing_is_refused_while_a_restore_holds_the_data_dir(
    tmp_path, clock, capsys, action
):
    """``kiosk calibrate add`` under a restore said done (exit 0), and the restore then put
    the archive's calibration.json back: the pair gone without a word (review of d5fa75f1).
    Each action that writes the file holds the data dir's lock as the log's writers do."""
    data, _etc = _gate(tmp_path, clock)
    assert main(["calibrate", "--data", str(data), "reset", "--yes"]) == 0  # the default model
    for aside in data.glob("calibration.json.corrupt-*"):
        aside.unlink()
    for clinical, kiosk in ((36.6, 33.5), (37.0, 33.9), (36.4, 33.2)):
        pair = ["add", "--clinical", str(clinical), "--object", str(kiosk), "--ambient", "23.0"]
        assert main(["calibrate", "--data", str(data), *pair]) == 0  # beside no restore
    before = _sha(data / "calibration.json")
    with backup_cmd._stopped(data):
        capsys.readouterr()
        assert main(["calibrate", "--data", str(data), *action]) == 1
        err = capsys.readouterr().err
    assert f"kiosk calibrate: {UNDER_WAY} {data}" in err and "nothing was changed" in err, err
    assert _sha(data / "calibration.json") == before
    assert main(["calibrate", "--data", str(data), *action]) == 0  # the restore over: it goes on
