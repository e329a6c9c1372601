"""`kiosk backup` of a real running daemon, and the gate back on a new Pi from the archive.

Each daemon runs as systemd runs it (``Type=notify``): it is taken as started once it says
``READY=1``, within the unit's ``TimeoutStartSec`` (``test_notify.daemon_running``), on the port
it was given by the system (``port = 0``, read from its status); not within a guessed bound
(30 s: a start on a loaded two-core machine took longer), nor on a port picked free earlier
that another process may have taken since."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_notify import daemon_running, systemd  # noqa: F401 - the fixture

from checkpoint.cli import main
from tests.test_app import KIOSK, trust_a_key


@contextlib.contextmanager
def _running(config: Path, data: Path, systemd, log: Path) -> Iterator[dict]:  # noqa: F811
    """``kiosk run`` on ``config`` and ``data`` under ``systemd`` (``daemon_running``)."""
    args = [*KIOSK, "run", "--config", str(config), "--data", str(data)]
    with daemon_running(args, systemd, log) as health:
        yield health


@pytest.mark.slow  # integration: real daemon processes and sockets (CI runs it)
def test_a_gate_backed_up_running_comes_back_whole_on_a_new_pi(tmp_path, capsys, systemd):  # noqa: F811
    north, north_etc = tmp_path / "north", tmp_path / "north-etc"
    north_etc.mkdir()
    config = north_etc / "kiosk.toml"
    config.write_text('[site]\nkiosk_id = "gate-north"\n[web]\nport = 0\n')
    trust_a_key(north)
    with _running(config, north, systemd, tmp_path / "north.log") as running:
        archive = tmp_path / "usb" / "north.kbak"
        archive.parent.mkdir()
        secret = tmp_path / "passphrase"
        secret.write_text("gate north, kept in the office safe\n")
        sealed = ["--passphrase-file", str(secret)]  # the production scrypt, end to end
        backup = ["backup", "--into", str(archive), "--data", str(north), "--config", str(config)]
        assert main([*backup, *sealed]) == 0  # the daemon runs on
        restore = ["restore", str(archive), "--data", str(north), "--config", str(config)]
        assert main([*restore, *sealed]) == 1
        assert "stop it first" in capsys.readouterr().err

    new, new_etc = tmp_path / "new", tmp_path / "new-etc"
    new_etc.mkdir()
    (new_etc / "kiosk.toml").write_text('[site]\nkiosk_id = "gate-1"\n[web]\nport = 0\n')
    restore = ["restore", str(archive), "--data", str(new), "--config", str(new_etc / "kiosk.toml")]
    assert main([*restore, "--as-this-gate", *sealed]) == 0

    with _running(new_etc / "kiosk.toml", new, systemd, tmp_path / "new.log") as back:
        pass
    assert back["kiosk_id"] == "gate-north"
    assert back["last_seq"] >= running["last_seq"]
    assert back["devices"]["store"]["state"] == "ok"
    assert main(["verify-log", "--db", str(new / "kiosk.db")]) == 0
