"""The data dir's lock with ``kiosk.lock`` a link into /run/kiosk, kiosk.service's
``RuntimeDirectory``: systemd removes that folder each time the unit stops (a failed start,
an automatic restart, ``systemctl stop``) and a power cut empties /run. A unit stop is
simulated here by removing the folder, a start by making it again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_backup import (  # no_installed_kiosk: autouse here too
    no_installed_kiosk,  # noqa: F401
    run_backup,
    run_restore,
)
from test_backup_cut_off import Killed, cut_at
from test_restore_lock import _gate

from checkpoint.cli import backup_cmd, main
from checkpoint.cli.daemon_cmd import LOCK_FILE, hold_data_dir
from checkpoint.cli.errors import CliError
from kiosk.backup import RESTORE_MARKER


def _linked_to_run(data: Path, run: Path) -> Path:
    """``DATA/kiosk.lock`` a link to ``run/kiosk.lock``, made as a started unit has it."""
    run.mkdir(parents=True)
    target = run / LOCK_FILE
    target.write_text("")
    (data / LOCK_FILE).unlink(missing_ok=True)
    (data / LOCK_FILE).symlink_to(target)
    return target


def test_a_cut_off_restore_is_undone_with_the_run_folder_gone(tmp_path, clock, capsys, monkeypatch):
    """A restore cut off by a power cut: after the reboot the daemon exits 2 on its marker
    before it makes its lock file, and systemd removes /run/kiosk again. `kiosk restore
    --undo`, the way out the daemon names, was refused on the link to no file, its advice
    (touch the file, start the daemon once) unable to work: the gate dark for good. It undoes
    the restore, holding the data dir itself, and makes nothing through the link."""
    data, etc = _gate(tmp_path, clock)
    archive = tmp_path / "north.kbak"
    assert run_backup(data, etc, archive) == 0
    run = tmp_path / "run" / "kiosk"
    target = _linked_to_run(data, run)
    with monkeypatch.context() as m:
        cut_at(m, "data/kiosk.db")
        with pytest.raises(Killed):
            run_restore(data, etc, archive, "--as-this-gate")
    # The power cut empties /run; the daemon, started, exits 2 on the marker before it makes
    # its lock file (test_backup_cut_off), and systemd removes its RuntimeDirectory again.
    shutil.rmtree(run)
    capsys.readouterr()
    undo = ["restore", "--undo", "--data", str(data), "--config", str(etc / "kiosk.toml")]
    assert main(undo) == 0, capsys.readouterr().err
    assert not (data / RESTORE_MARKER).exists()
    assert (data / LOCK_FILE).is_symlink() and not run.exists()
    run.mkdir()  # the next start: the daemon takes its lock
    hold_data_dir(data).close()
    assert target.read_text().strip().isdigit()


def test_a_daemon_restarted_under_a_restore_is_refused(tmp_path, clock, capsys, monkeypatch):
    """kiosk.service started while a restore runs: its daemon is refused, systemd stops the
    unit (removing /run/kiosk and with it the file the restore holds locked) and starts it
    again with a new, empty /run/kiosk. The daemon made a new lock file, took it, and started
    on the files half put back. It is refused each time: the restore holds the data dir."""
    data, etc = _gate(tmp_path, clock)
    archive = tmp_path / "north.kbak"
    assert run_backup(data, etc, archive) == 0
    run = tmp_path / "run" / "kiosk"
    _linked_to_run(data, run)
    real, said = backup_cmd._room_for, []

    def unit_started_twice_meanwhile(*args):
        for _ in range(2):
            with pytest.raises(CliError) as refused:
                hold_data_dir(data).close()
            said.append(str(refused.value))
            shutil.rmtree(run)  # the unit stops: RuntimeDirectory removed
            run.mkdir()  # RestartSec later, started again
        return real(*args)

    monkeypatch.setattr(backup_cmd, "_room_for", unit_started_twice_meanwhile)
    assert run_restore(data, etc, archive) == 0, capsys.readouterr().err
    assert len(said) == 2
    assert all(f"a restore is under way in the data dir {data}" in s for s in said), said
    hold_data_dir(data).close()  # the restore over: the daemon starts


def test_a_restore_is_refused_while_the_daemon_holds_a_removed_lock_file(tmp_path, clock, capsys):
    """The daemon running, its linked lock file removed under it (/run/kiosk removed by
    hand): a restore found no daemon's lock and went on under it. It is refused (the data
    dir's own lock, which the daemon holds), saying the daemon may hold it, and changes
    nothing."""
    data, etc = _gate(tmp_path, clock)
    archive = tmp_path / "north.kbak"
    assert run_backup(data, etc, archive) == 0
    run = tmp_path / "run" / "kiosk"
    _linked_to_run(data, run)
    daemon = hold_data_dir(data)
    try:
        shutil.rmtree(run)
        capsys.readouterr()
        assert run_restore(data, etc, archive) == 1
        err = capsys.readouterr().err
    finally:
        daemon.close()
    assert "or the kiosk daemon (its lock file gone" in err and "nothing was changed" in err, err
    assert not (data / RESTORE_MARKER).exists() and not run.exists()
