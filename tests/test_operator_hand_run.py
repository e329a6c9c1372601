"""What the Pi's owner meets after running the daemon or a verb by hand as root
(``sudo kiosk run``): files in the data dir the service's user cannot open.

The suite runs as root, so the file system's refusal is made up where the daemon meets it
(``os.open`` of the lock file), as the other permission tests do."""

from __future__ import annotations

import errno
import os

import pytest
from support import need

import checkpoint.app
from checkpoint import standby as standing
from checkpoint.cli import daemon_cmd, main
from kiosk.standby import card_failure


@pytest.fixture
def root_owned_lock(monkeypatch):
    """``kiosk.lock`` left owned by root: opening it fails with EACCES while ``state["root"]``
    (a ``chown`` sets it False)."""
    state = {"root": True}
    real_open = daemon_cmd.os.open

    def open_(path, flags, *mode):
        if state["root"] and os.path.basename(path) == daemon_cmd.LOCK_FILE:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *mode)

    monkeypatch.setattr(daemon_cmd.os, "open", open_)
    return state


def test_a_root_owned_lock_file_stands_by_naming_the_file_and_the_chown(
    tmp_path, monkeypatch, capsys, root_owned_lock
):
    """After a ``sudo kiosk run`` by hand, ``kiosk.lock`` was root's: the service exited 1 at
    ``cannot start: .../kiosk.lock: Permission denied`` and systemd started it again every 3 s
    for ever, the screens dark. It stands by as for a root-owned ``kiosk.db``: the status
    names the file, its owner and the ``chown``; once given back it takes the lock and starts
    by itself."""
    data = tmp_path / "data"
    data.mkdir()
    (data / daemon_cmd.LOCK_FILE).write_text("4242\n")
    config = tmp_path / "kiosk.toml"
    config.write_text("[site]\nkiosk_id = 'gate-1'\n[web]\nport = 0\n")
    seen: dict[str, object] = {}

    def pause_until(_stopping):
        async def pause(server, _delay):
            seen["status"] = server.status()
            seen["kind"] = server.standby.kind
            root_owned_lock["root"] = False  # sudo chown -R kiosk:kiosk /var/lib/kiosk

        return pause

    def build_core(*_args, **_kw):  # got past the lock: end the start there
        seen["lock"] = (data / daemon_cmd.LOCK_FILE).read_text()
        raise OSError(errno.ENODEV, "No such device", str(data))

    monkeypatch.setattr(standing, "_pause_until", pause_until)
    monkeypatch.setattr(checkpoint.app, "build_core", build_core)
    assert main(["run", "--config", str(config), "--data", str(data)]) == 1
    assert seen["kind"] == "unwritable"
    status = str(seen["status"])
    assert f"{data / daemon_cmd.LOCK_FILE} is not writable by this user" in status
    assert "sudo chown -R " in status and str(data) in status
    assert seen["lock"] == f"{os.getpid()}\n"  # taken once the file was given back
    assert "Traceback" not in capsys.readouterr().err


def test_the_lock_files_refusal_is_a_card_failure_the_standby_knows(tmp_path, root_owned_lock):
    with pytest.raises(Exception) as caught:
        daemon_cmd.DataDirLock(tmp_path).take()
    assert card_failure(caught.value) == "unwritable"


def test_sudo_kiosk_run_on_the_services_data_dir_is_refused_before_it_writes(
    tmp_path, kiosk_owned, capsys, monkeypatch
):
    """``sudo kiosk run`` by hand left kiosk.lock, kiosk.db-wal/-shm and backups root's, which
    the service (user kiosk) could not open afterwards. It is refused before anything is
    written, saying how to run it by hand as the service's user."""
    started = []
    monkeypatch.setattr(checkpoint.app, "build_core", lambda *_a, **_kw: started.append(True))
    config = tmp_path / "kiosk.toml"
    config.write_text("[site]\nkiosk_id = 'gate-1'\n")
    assert main(["run", "--config", str(config), "--data", str(kiosk_owned)]) == 1
    err = capsys.readouterr().err
    assert f"as root on {kiosk_owned} (owner uid " in err
    assert "sudo kiosk-admin run --config" in err
    assert started == [] and list(kiosk_owned.iterdir()) == []


def test_sudo_kiosk_guard_add_on_the_services_data_dir_is_refused_before_it_writes(
    kiosk_owned, capsys, monkeypatch
):
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("a long enough password\n"))
    code = main(
        ["guard", "add", "ali", "--role", "guard", "--password-stdin", "--data", str(kiosk_owned)]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert f"as root on {kiosk_owned} (owner uid " in err
    assert "sudo kiosk-admin guard" in err
    assert list(kiosk_owned.iterdir()) == []


def test_root_in_its_own_data_dir_is_not_refused(tmp_path, monkeypatch):
    """A bench or a test box where root owns the data dir: nothing is left another's."""
    from checkpoint.cli import errors

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(errors, "_owner", lambda _path: 0)
    errors.refuse_root_over(tmp_path, "run")


def _restored(data, kiosk_id, clock, migrations=()):
    """A backup put back into ``data``: a log whose one passage ``kiosk_id`` wrote."""
    from test_store import draft

    from kiosk.store import EventLog

    data.mkdir(exist_ok=True)
    with EventLog(data / "kiosk.db", kiosk_id, clock, migrations=list(migrations)) as log:
        log.append(draft())


@pytest.mark.parametrize("which", ["another gate", "a newer release"])
def test_a_restored_log_no_restart_can_open_stops_the_unit_instead_of_a_loop(
    tmp_path, clock, capsys, which
):
    """A backup restored from another gate (another kiosk_id), or one a newer release
    migrated: ``kiosk run`` exited 1 and kiosk.service started it again every 3 s for ever,
    the same line into the journal each time, though only the operator can mend it. It exits
    2 (``RestartPreventExitStatus=2``: the unit stops as failed, the line in ``systemctl
    status``), saying what to do and that a restart follows the fix."""
    from test_operations_week import _newer_lists

    data = tmp_path / "data"
    if which == "another gate":
        _restored(data, "gate-7", clock)
    else:
        _restored(data, "gate-1", clock, [_newer_lists()])
    config = tmp_path / "kiosk.toml"
    config.write_text("[site]\nkiosk_id = 'gate-1'\n[web]\nport = 0\n")
    assert main(["run", "--config", str(config), "--data", str(data)]) == 2
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("kiosk run:")]
    assert ("event log of kiosk 'gate-7'" if which == "another gate" else "newer version") in line
    assert "systemctl restart kiosk" in line and "store_fault" not in line
    if which == "a newer release":
        assert "docs/install.md, Going back" in line


def test_a_config_saved_in_a_windows_encoding_names_the_line_and_the_fix(tmp_path, capsys):
    """kiosk.toml edited on a Chinese Windows laptop (Notepad's ANSI: GBK) with a comment in
    Chinese, or saved as Notepad's "Unicode" (UTF-16): check-config and kiosk run said only
    '(file): not UTF-8 text', nothing of where or what to do."""
    gbk = tmp_path / "gbk.toml"
    gbk.write_bytes('[site]\nkiosk_id = "gate-1"\n# 北门 入口\n'.encode("gbk"))
    utf16 = tmp_path / "utf16.toml"
    utf16.write_bytes('[site]\r\nkiosk_id = "gate-1"\r\n'.encode("utf-16"))
    assert main(["check-config", str(gbk)]) == 2
    err = capsys.readouterr().err
    assert "not UTF-8 text at line 3, column 3" in err and "save it as UTF-8" in err
    assert main(["check-config", str(utf16)]) == 2
    err = capsys.readouterr().err
    assert "UTF-16" in err and "save it as UTF-8" in err


@pytest.mark.parametrize(
    "verb",
    [
        ["run"],
        ["demo"],
        ["check-config"],
        ["verify-log"],
        ["guard"],
        ["guard", "add"],
        ["guard", "list"],
        ["guard", "remove"],
        ["guard", "hash"],
    ],
)
def test_the_operators_verbs_help_gives_an_example(verb, capsys):
    """``kiosk run --help`` (and check-config, verify-log, guard ...) said what the verb does
    and listed its options, but never how the Pi's owner types it (as the service runs it:
    ``sudo kiosk-admin ...``): an example, kept as written (no folding of its lines)."""
    with pytest.raises(SystemExit):
        main([*verb, "--help"])
    out = capsys.readouterr().out
    _, _, examples = out.partition("\nexample")
    lines = [line.strip() for line in examples.splitlines()[1:] if line.strip()]
    assert lines and all(line.startswith(("kiosk ", "sudo ", "#")) for line in lines), out
    assert any(f"kiosk {' '.join(verb)}" in line or " ".join(verb) in line for line in lines)


def test_a_root_owned_file_the_daemon_reads_at_start_names_the_chown_not_a_restart_loop(
    tmp_path, monkeypatch, capsys
):
    """The office's key copied in with plain sudo (``sudo cp /media/usb/office.pub
    /var/lib/kiosk/trust/``, 0600 on the stick): the service said 'cannot start: trust key
    ...: cannot read: Permission denied', exit 1, and systemd started it again every 3 s for
    ever. It names the files another user owns and the chown, exit 2 (the unit stops with
    the line in ``systemctl status`` until it is restarted)."""
    from kiosk import passes

    data = tmp_path / "data"
    trust = data / "trust"
    trust.mkdir(parents=True)
    assert main(["keys", "new", "--dir", str(trust), "--name", "office"]) == 0
    (trust / "office.key").unlink()
    key = trust / "office.pub"
    need(os.geteuid() == 0, "root to give a file another owner")
    os.chown(key, 4321, 4321)  # this process is the service here; the key another user's
    real = passes.read_bounded

    def read_bounded(path, limit):
        if os.path.basename(path) == key.name:
            raise passes.UnreadableFile("cannot read: Permission denied", "unreadable")
        return real(path, limit)

    monkeypatch.setattr(passes, "read_bounded", read_bounded)
    monkeypatch.setattr("checkpoint.app.settle_trust_wait", lambda _s: None)  # read again: refused
    config = tmp_path / "kiosk.toml"
    config.write_text("[site]\nkiosk_id = 'gate-1'\n[web]\nport = 0\n")
    assert main(["run", "--config", str(config), "--data", str(data)]) == 2
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("kiosk run:")]
    assert "office.pub" in line and "Permission denied" in line
    assert "trust/office.pub (owner uid " in line
    assert "sudo chown -R " in line and str(data) in line
    assert "systemctl restart kiosk" in line
