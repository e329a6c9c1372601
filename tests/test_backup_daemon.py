"""`kiosk backup` of a real running daemon, and the gate back on a new Pi from the archive."""

from __future__ import annotations

import signal
import socket
import subprocess

import pytest

from checkpoint.cli import main
from tests.test_app import KIOSK, _get, _wait_for, trust_a_key


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _daemon(config, data):
    return subprocess.Popen(
        [*KIOSK, "run", "--config", str(config), "--data", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _health(port: int) -> dict:
    url = f"http://127.0.0.1:{port}/api/v1/health"
    response = _wait_for(
        lambda: (r := _get(url)) and r.status_code == 200 and r, 30, "the daemon to answer"
    )
    return response.json()


def _stop(proc) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=10) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow  # integration: real daemon processes and sockets (CI runs it)
def test_a_gate_backed_up_running_comes_back_whole_on_a_new_pi(tmp_path, capsys):
    port = _free_port()
    north, north_etc = tmp_path / "north", tmp_path / "north-etc"
    north_etc.mkdir()
    config = north_etc / "kiosk.toml"
    config.write_text(f'[site]\nkiosk_id = "gate-north"\n[web]\nport = {port}\n')
    trust_a_key(north)
    proc = _daemon(config, north)
    try:
        running = _health(port)
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
    finally:
        _stop(proc)

    new, new_etc = tmp_path / "new", tmp_path / "new-etc"
    new_etc.mkdir()
    (new_etc / "kiosk.toml").write_text(f'[site]\nkiosk_id = "gate-1"\n[web]\nport = {port}\n')
    restore = ["restore", str(archive), "--data", str(new), "--config", str(new_etc / "kiosk.toml")]
    assert main([*restore, "--as-this-gate", *sealed]) == 0

    proc = _daemon(new_etc / "kiosk.toml", new)
    try:
        back = _health(port)
    finally:
        _stop(proc)
    assert back["kiosk_id"] == "gate-north"
    assert back["last_seq"] >= running["last_seq"]
    assert back["devices"]["store"]["state"] == "ok"
    assert main(["verify-log", "--db", str(new / "kiosk.db")]) == 0
