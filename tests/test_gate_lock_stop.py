"""The gate locked in the seconds after a crash: ``kiosk run --lock-gate`` in kiosk.service's
``ExecStopPost=``.

A daemon killed during a pass's pulse (SIGKILL, the OOM killer, the watchdog's SIGABRT) left a
USB relay board energised, or a persisted GPIO line high, for systemd's ``RestartSec`` and the
restarted daemon's start-up: a few seconds of a gate released with nobody deciding (and for as
long as it stays stopped, a ``systemctl stop`` after a hang included). systemd runs
``ExecStopPost=`` once the main process is gone, after a crash too; there, ``kiosk run
--lock-gate`` commands the configured relay locked and does nothing else: no event log, no web
server, no data dir, bounded by the device deadline, and its failure never fails the unit (``-``).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from checkpoint import app
from checkpoint.cli import build_parser, main
from drivers import gate as gate_drivers
from drivers.clocksync import system_clock

ROOT = Path(__file__).resolve().parent.parent


def _service_lines(key: str) -> list[str]:
    text = (ROOT / "systemd" / "kiosk.service").read_text(encoding="utf-8")
    return [line.partition("=")[2] for line in text.splitlines() if line.startswith(f"{key}=")]


@pytest.fixture
def relay(monkeypatch):
    """What reached the relay (``("gate", open_)``) and whether the log or a server was
    touched (``("log",)``, ``("server",)``), in order."""
    seen: list[tuple[object, ...]] = []
    command = gate_drivers.FakeGate.set_open

    def set_open(self, open_):
        seen.append(("gate", open_))
        command(self, open_)

    def open_event_log(config, data_dir, clock):
        seen.append(("log",))
        raise AssertionError("the event log opened")

    def build_server(*args, **kwargs):
        seen.append(("server",))
        raise AssertionError("a web server built")

    monkeypatch.setattr(gate_drivers.FakeGate, "set_open", set_open)
    monkeypatch.setattr(app, "_open_event_log", open_event_log)
    monkeypatch.setattr("checkpoint.server.build_server", build_server)
    return seen


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(f'[site]\nkiosk_id = "gate-1"\n[web]\nport = 0\n{extra}', encoding="utf-8")
    return path


def test_the_unit_commands_the_relay_locked_after_its_main_process_is_gone_and_never_fails():
    """kiosk.service had no ExecStopPost: after a crash nothing commanded the relay until the
    restarted daemon did. Its line is ``-`` (a failure never fails the unit) and the same
    program and config as ExecStart, with --lock-gate."""
    [start] = _service_lines("ExecStart")
    [stop_post] = _service_lines("ExecStopPost")
    assert stop_post.startswith("-/")
    argv = shlex.split(stop_post[1:])
    start_argv = shlex.split(start)
    assert argv[0] == start_argv[0]  # the same release's kiosk
    args = build_parser().parse_args(argv[1:])
    assert args.verb == "run" and args.lock_gate is True
    assert args.config == build_parser().parse_args(start_argv[1:]).config


def test_lock_gate_commands_the_relay_locked_and_nothing_else(tmp_path, relay, capsys):
    """No data dir (none is there: nothing is made), no log, no server: one command, locked,
    and the journal says so."""
    data = tmp_path / "absent"
    code = main(["run", "--config", str(_config(tmp_path)), "--data", str(data), "--lock-gate"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert relay == [("gate", False)]
    assert not data.exists()
    assert "fake_gate commanded locked" in err


def test_lock_gate_as_root_on_the_services_data_dir_is_not_refused(
    tmp_path, relay, monkeypatch, capsys
):
    """It writes nothing, so a root's run (or an ExecStopPost a drop-in runs as root) on a
    data dir the kiosk user owns is no reason to refuse it."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("checkpoint.cli.errors._owner", lambda folder: 1000)
    monkeypatch.setenv("KIOSK_DATA", str(data))
    assert main(["run", "--config", str(_config(tmp_path)), "--lock-gate"]) == 0
    assert relay == [("gate", False)]
    assert list(data.iterdir()) == []


def test_a_relay_that_refuses_the_lock_is_exit_1_naming_the_gate(tmp_path, monkeypatch, capsys):

    def refuse(self, open_):
        raise gate_drivers.GateFault("fake gate unplugged")

    monkeypatch.setattr(gate_drivers.FakeGate, "set_open", refuse)
    assert main(["run", "--config", str(_config(tmp_path)), "--lock-gate"]) == 1
    err = capsys.readouterr().err
    assert "could not be commanded locked" in err and "check the gate" in err


def test_a_relay_that_hangs_is_given_up_after_the_device_deadline(tmp_path, monkeypatch, capsys):
    """A wedged USB write: the command ends at engine.device_deadline_ms, so systemd's next
    start is not held up (the unit's stop timeout would end it later still)."""
    stalled = gate_drivers.FakeGate(system_clock())
    stalled.stall()
    monkeypatch.setattr(gate_drivers, "build_gate", lambda cfg, clock: stalled)
    config = _config(tmp_path, "[engine]\ndevice_deadline_ms = 10\n")
    try:
        assert main(["run", "--config", str(config), "--lock-gate"]) == 1
    finally:
        stalled.release()
    assert stalled.stalled_call.is_set()
    assert "could not be commanded locked" in capsys.readouterr().err


def test_an_invalid_config_is_exit_2_and_commands_nothing(tmp_path, relay, capsys):
    config = _config(tmp_path, "[gate]\npulse_ms = 'x'\n")
    assert main(["run", "--config", str(config), "--lock-gate"]) == 2
    assert relay == []
