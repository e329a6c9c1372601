"""Upgrading an installed kiosk with scripts/install, and an upgrade cut off half-way.

The install used to pip the new program over the running one (/opt/kiosk/venv): pip removes
the old version's files before it writes the new ones, so a power cut, a dropped SSH session
or Ctrl-C in between left a program that could not start. The daemon ran on from memory and
the gate was dead at its next start (the night's reboot). These tests cut pip off the same
way: a ``sitecustomize`` on the install's PYTHONPATH removes the ``checkpoint`` package from
the venv pip is installing into (what pip's uninstall of the old version does first) and
kills pip with SIGKILL (what a power cut does: no clean-up, no rollback).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from support import need
from test_install import (
    OFFLINE_PIP,
    fresh_os_root,
    install_env,
    needs_root,
    run,
    snapshot_checkout,
)

ROOT = Path(__file__).resolve().parent.parent
slow = pytest.mark.slow


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    return snapshot_checkout(tmp_path_factory.mktemp("checkout"))


@pytest.fixture(scope="module")
def installed(checkout, tmp_path_factory) -> Path:
    """A Pi installed by this checkout (each test upgrades a copy of it)."""
    need(os.geteuid() == 0, "root for the real install")
    need(shutil.which("useradd") is not None, "useradd")
    need(shutil.which("systemctl") is not None, "systemctl")
    root = fresh_os_root(tmp_path_factory.mktemp("pi") / "root")
    proc = install(checkout, root)
    assert "FAIL" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return root


CUT_PIP = """\
import os, signal, shutil, sys, sysconfig
if os.environ.get("KIOSK_TEST_CUT_PIP") and sys.argv[:1] == ["-m"] and sys.argv[1:2] == ["install"]:
    shutil.rmtree(os.path.join(sysconfig.get_paths()["purelib"], "checkpoint"), ignore_errors=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def unit_program(root: Path, unit: str = "kiosk.service") -> Path:
    """The program the unit starts, inside root (what systemd runs at the next boot)."""
    text = (root / "etc/systemd/system" / unit).read_text()
    line = next(x for x in text.splitlines() if x.startswith("ExecStart="))
    return root / line.removeprefix("ExecStart=").split()[0].lstrip("/")


def starts(program: Path) -> subprocess.CompletedProcess[str]:
    # Through the venv's own python: a copied root's scripts name the original's in their #!.
    return subprocess.run(
        [str(program.parent / "python"), str(program), "--version"],
        capture_output=True,
        text=True,
        env=install_env(),
        cwd=program.parent,
    )


def newer(source: Path, dest: Path, mark: str) -> Path:
    """The checkout after a `git pull`: one change in the program."""
    shutil.copytree(source, dest, symlinks=True)
    init = dest / "checkpoint" / "__init__.py"
    init.write_text(init.read_text() + f'\nUPGRADE_MARK = "{mark}"\n')
    return dest


def mark_of(program: Path) -> str:
    proc = subprocess.run(
        [str(program.parent / "python"), "-c", "import checkpoint; print(checkpoint.UPGRADE_MARK)"],
        capture_output=True,
        text=True,
        env=install_env(),
        cwd=program.parent,
    )
    return proc.stdout.strip() if proc.returncode == 0 else ""


def install(source: Path, root: Path, env: dict[str, str] | None = None):
    return run(
        source / "scripts" / "install",
        "--root",
        str(root),
        "--pip-args",
        OFFLINE_PIP,
        env=env or install_env(),
    )


def copy_of(installed: Path, tmp_path: Path) -> Path:
    """A root of its own for one test, copied from the installed one (links kept)."""
    root = tmp_path / "root"
    shutil.copytree(installed, root, symlinks=True)
    return root


def cut_pip_env(tmp_path: Path) -> dict[str, str]:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(CUT_PIP)
    env = install_env()
    env["PYTHONPATH"] = f"{hook}:{env['PYTHONPATH']}"
    env["KIOSK_TEST_CUT_PIP"] = "1"
    return env


def _switched_to_new(tmp_path):
    """A root whose install has just switched the gate to releases/new, releases/old its
    previous: the root and its /opt/kiosk."""
    root = tmp_path / "root"
    kiosk = root / "opt/kiosk"
    (kiosk / "releases/old/venv").mkdir(parents=True)
    (kiosk / "releases/new/venv").mkdir(parents=True)
    (kiosk / "current").symlink_to("releases/new")
    (kiosk / "previous").symlink_to("releases/old")
    return root, kiosk


@slow
@needs_root
def test_an_upgrade_cut_off_in_pip_leaves_the_old_program_starting(installed, checkout, tmp_path):
    root = copy_of(installed, tmp_path)
    assert starts(unit_program(root)).returncode == 0
    pulled = newer(checkout, tmp_path / "pulled", "second")

    cut = install(pulled, root, env=cut_pip_env(tmp_path))
    out = cut.stdout + cut.stderr
    assert cut.returncode == 1 and "[venv] FAIL" in out, out

    # The next boot starts what the unit names: still the old program, whole.
    after = starts(unit_program(root))
    assert after.returncode == 0, f"the gate would not start after the cut:\n{after.stderr}"
    assert mark_of(unit_program(root)) == ""

    # Running the install again finishes the upgrade.
    again = install(pulled, root)
    out = again.stdout + again.stderr
    assert "FAIL" not in out, out
    assert starts(unit_program(root)).returncode == 0
    assert mark_of(unit_program(root)) == "second"


def releases_of(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "opt/kiosk/releases").iterdir())


@slow
@needs_root
def test_upgrades_keep_two_releases_and_going_back_is_one_command(installed, checkout, tmp_path):
    root = copy_of(installed, tmp_path)
    kiosk = root / "opt/kiosk"
    first = os.readlink(kiosk / "current")
    for mark in ("second", "third"):
        proc = install(newer(checkout, tmp_path / mark, mark), root)
        out = proc.stdout + proc.stderr
        assert "FAIL" not in out and f"[venv] did: point {'/opt/kiosk/current'}" in out, out
        assert mark_of(unit_program(root)) == mark
    second, third = os.readlink(kiosk / "previous"), os.readlink(kiosk / "current")
    assert len({first, second, third}) == 3
    assert releases_of(root) == sorted(p.removeprefix("releases/") for p in (second, third))
    assert os.readlink(kiosk / "venv") == "current/venv"  # the old path still runs the program
    assert starts(kiosk / "venv/bin/kiosk").returncode == 0

    # docs/install.md, "Going back": the command, without the restart (no systemd here).
    doc = (checkout / "docs/install.md").read_text()
    command = re.search(r"sudo sh -c '(cd /opt/kiosk && [^']*) && systemctl restart kiosk'", doc)
    assert command, "install.md names no rollback command"
    subprocess.run(
        ["sh", "-c", command.group(1).replace("cd /opt/kiosk", f"cd {kiosk}")], check=True
    )
    assert os.readlink(kiosk / "current") == second
    assert mark_of(unit_program(root)) == "second"


@slow
@needs_root
def test_an_install_from_before_releases_is_moved_to_them_once(installed, checkout, tmp_path):
    """An install made before releases: the program pip'ed into /opt/kiosk/venv in place and
    units that run it there. The next install builds a release beside it and moves over."""
    root = copy_of(installed, tmp_path)
    kiosk = root / "opt/kiosk"
    for name in ("current", "previous", "venv"):
        if (kiosk / name).is_symlink():
            (kiosk / name).unlink()
    shutil.rmtree(kiosk / "releases")
    env = install_env()
    subprocess.run(
        [env["KIOSK_PYTHON"], "-m", "venv", "--system-site-packages", str(kiosk / "venv")],
        check=True,
    )
    build = shutil.copytree(checkout, tmp_path / "build")
    subprocess.run(
        [
            str(kiosk / "venv/bin/python"),
            "-m",
            "pip",
            "install",
            "-q",
            *OFFLINE_PIP.split(),
            str(build),
        ],
        check=True,
        env=env,
    )
    for unit in ("kiosk.service", "kiosk-purge.service"):
        path = root / "etc/systemd/system" / unit
        path.write_text(path.read_text().replace("/opt/kiosk/current/venv/", "/opt/kiosk/venv/"))
    assert unit_program(root) == kiosk / "venv/bin/kiosk"

    proc = install(newer(checkout, tmp_path / "pulled", "second"), root)
    out = proc.stdout + proc.stderr
    assert "FAIL" not in out, out
    assert unit_program(root) == kiosk / "current/venv/bin/kiosk"
    assert mark_of(unit_program(root)) == "second"
    assert os.readlink(kiosk / "venv") == "current/venv"
    assert len(releases_of(root)) == 1 and not (kiosk / "previous").exists()
    again = install(newer(checkout, tmp_path / "again", "second"), root)
    assert [x for x in again.stdout.splitlines() if "] did: " in x] == [], again.stdout


#: The install's functions that keep, put back and remove the event log's copy across a switch.
DATA_COPY_FUNCTIONS = (
    "config_facts",
    "effective_config",
    "log_file",
    "switch_back",
    "restore_units",
    "put_units",
    "record_units",
    "pause_purge",
    "resume_purge",
    "log_copy_tool",
    "keep_log_copy",
    "log_copy_back",
    "drop_log_copy",
    "previous_release_refuses",
)


CUT_OFF_BY = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # what the install traps


def signals_as_at_a_terminal() -> None:
    """In the child, before bash starts: Ctrl-C (SIGINT), a stop and a dropped session reach
    the install as they do from an admin's shell (default, not blocked), whatever this test
    process had of them when it forked. Inherited, an ignored or blocked SIGINT is one bash
    cannot trap: the "cut off" tests then saw an install that never got its Ctrl-C, after
    whatever an earlier test in the same pytest worker left behind."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, CUT_OFF_BY)
    for sig in CUT_OFF_BY:
        signal.signal(sig, signal.SIG_DFL)


def bash(script: str, fake_bin: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``script`` run by bash (the install's functions and a few lines that call them), with
    ``fake_bin``'s programs (a fake systemctl, sync...) ahead of the system's on its PATH."""
    env = dict(os.environ, PATH=f"{fake_bin}:{os.environ['PATH']}") if fake_bin else None
    return subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=signals_as_at_a_terminal,
    )


@pytest.mark.parametrize("left", ["ignored", "blocked"])
def test_the_install_under_test_gets_its_ctrl_c_whatever_the_test_process_left(left):
    """An earlier test in the same pytest worker (or a library's ``system()`` in a thread) may
    leave SIGINT ignored or blocked in this process: bash inherited it, could not trap it, and
    the four "cut off" tests failed in slow runs (exit 0 or 1, never 130) while passing alone."""
    before = signal.getsignal(signal.SIGINT)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    try:
        if left == "ignored":
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        else:
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
        proc = bash("trap 'exit 130' INT\nkill -INT $$\nexit 0")
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        signal.signal(signal.SIGINT, before)
    assert proc.returncode == 130, proc.stdout + proc.stderr


def script_functions(*names: str) -> str:
    script = (ROOT / "scripts" / "install").read_text()
    out = []
    for name in names:
        start = script.index(f"\n{name}() {{") + 1
        out.append(script[start : script.index("\n}\n", start) + 3])
    return "".join(out)


@pytest.mark.parametrize("state", ["active", "activating", "failed"])
def test_a_new_release_that_does_not_stay_up_is_switched_back(tmp_path, state):
    """After the switch and the restart, kiosk.service must be active (and stay so); else
    `current` goes back to the release that ran before, which is restarted, and the install
    fails saying so. systemctl is a fake here: this needs the running Pi's systemd."""
    root, kiosk = _switched_to_new(tmp_path)
    fake_bin, calls = tmp_path / "bin", tmp_path / "calls"
    fake_bin.mkdir()
    (fake_bin / "systemctl").write_text(  # the previous release runs
        f'#!/bin/sh\necho "$*" >>{calls}\n[ "$1" = is-active ] || exit 0\n'
        f'[ "$(readlink {kiosk}/current)" = releases/new ] || {{ echo active; exit 0; }}\n'
        f"echo {state}\n[ {state} = active ]\n"
    )
    (fake_bin / "systemctl").chmod(0o755)
    body = script_functions("r", "say", "ok", "fail", "show_command", "act", "switch_to")
    body += script_functions("unit_up", "stays_up_or_roll_back", *DATA_COPY_FUNCTIONS)
    proc = bash(
        f"set -u\n{body}\nROOT={root} DRY_RUN=0 STEP=start FAILED=() HEALTH_SETTLE=0\n"
        f"PY={sys.executable} DATA=/var/lib/kiosk PREFIX=/opt/kiosk\n"
        f"CONFIG=/etc/kiosk/kiosk.toml CONFIG_SRC={ROOT}/systemd/kiosk.toml.example\n"
        "CURRENT=/opt/kiosk/current PREVIOUS=/opt/kiosk/previous\n"
        "SWITCHED_FROM=releases/old SWITCHED_TO=releases/new\n"
        'stays_up_or_roll_back; status=$?; printf "%s\\n" "${FAILED[@]}"; exit $status',
        fake_bin,
    )
    out = proc.stdout + proc.stderr
    if state == "active":
        assert proc.returncode == 0 and os.readlink(kiosk / "current") == "releases/new", out
        assert "restart" not in calls.read_text()
        return
    assert proc.returncode == 1, out
    assert os.readlink(kiosk / "current") == "releases/old"
    assert "restart kiosk.service" in calls.read_text()
    assert f"was {state} on the new release releases/new: switched back to releases/old" in out


@pytest.mark.parametrize("absolute", [False, True])
def test_pruning_keeps_the_current_and_previous_release_however_they_are_linked(tmp_path, absolute):
    """A link set by hand may name the release by its absolute path (ln -sfn
    /opt/kiosk/releases/ID /opt/kiosk/current): pruning counted only the relative form as
    kept and removed the release that runs."""
    root = tmp_path / "root"
    kiosk = root / "opt/kiosk"
    for name in ("a", "b", "c", "unfinished"):
        (kiosk / "releases" / name / "venv").mkdir(parents=True)
    prefix = "/opt/kiosk/releases/" if absolute else "releases/"
    (kiosk / "current").symlink_to(prefix + "b")
    (kiosk / "previous").symlink_to(prefix + "a")
    body = script_functions("r", "say", "ok", "fail", "show_command", "act")
    body += script_functions("link_name", "prune_releases")
    proc = bash(
        f"set -u\n{body}\nROOT={root} DRY_RUN=0 STEP=venv FAILED=() KEEP_RELEASES=2\n"
        "RELEASES=/opt/kiosk/releases CURRENT=/opt/kiosk/current PREVIOUS=/opt/kiosk/previous\n"
        "prune_releases",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in (kiosk / "releases").iterdir()) == ["a", "b"]


# What the fake systemctl does when kiosk.service starts on releases/new: the later version
# opens the log and migrates it (one migration the release it replaces does not have), then
# fails before it stays up (a driver, a setting of the new version).
MIGRATE_AS_NEWER = """\
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
with conn:
    conn.execute("ALTER TABLE list_revocations ADD COLUMN later_field TEXT NOT NULL DEFAULT ''")
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
        " VALUES ('kiosk.lists', 'm999_from_a_later_version', '2026-03-02')"
    )
    cols = [r[1] for r in conn.execute("PRAGMA table_info(events)")]
    rest = ", ".join(c for c in cols if c not in ("seq", "id"))
    for n in range(int(sys.argv[2])):  # events the new release recorded before it failed
        conn.execute(
            f"INSERT INTO events (seq, id, {rest}) SELECT seq + ?, id || ?, {rest}"
            " FROM events WHERE seq = 1", [n + 1, str(n)]
        )
conn.close()
"""


def switched_gate(tmp_path: Path, clock, *, records: int = 0):
    """A root whose install just switched releases/old -> releases/new, with an event log the
    old release wrote, and a systemctl whose kiosk.service migrates the log on releases/new
    (and records ``records`` events there), then fails."""
    from test_store import draft

    from kiosk import lists
    from kiosk.store import EventLog

    root, kiosk = _switched_to_new(tmp_path)
    data = root / "var/lib/kiosk"
    data.mkdir(parents=True)
    with EventLog(data / "kiosk.db", "gate-1", clock, migrations=[lists.MIGRATIONS]) as log:
        log.append(draft())
    (tmp_path / "migrate.py").write_text(MIGRATE_AS_NEWER)
    migrate = f"{sys.executable} {tmp_path}/migrate.py {data}/kiosk.db {records}"
    fake_bin, calls = tmp_path / "bin", tmp_path / "calls"
    fake_bin.mkdir()
    (fake_bin / "systemctl").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >>{calls}\n'
        f'new=$([ "$(readlink {kiosk}/current)" = releases/new ] && echo 1)\n'
        'case "$1" in\n'
        f'restart|start) [ -z "$new" ] || {migrate} ;;\n'
        'is-active) if [ -n "$new" ]; then echo failed; exit 3; fi; echo active ;;\n'
        "esac\nexit 0\n"
    )
    (fake_bin / "systemctl").chmod(0o755)
    return root, fake_bin, calls


def start_switched(
    root: Path, fake_bin: Path, py: str = sys.executable, *, as_install: bool = False
) -> subprocess.CompletedProcess[str]:
    """The install's start step after a switch (systemd running: restart, then stay up?);
    ``as_install``: run as the install runs its steps (``run_steps``, signals trapped)."""
    body = script_functions("r", "say", "ok", "skip", "fail", "show_command", "act", "switch_to")
    body += script_functions("keep_unit_files", "undo_switch", "abandon_switch", "interrupted")
    body += script_functions("unit_up", "start_services", "stays_up_or_roll_back", "run_steps")
    body += script_functions("switch_back", *DATA_COPY_FUNCTIONS)
    body += script_functions("previous_release_refuses")
    run = (
        'run_steps; printf "%s\\n" "${FAILED[@]}"; [ ${#FAILED[@]} -eq 0 ]'
        if as_install
        else 'start_services; status=$?; printf "%s\\n" "${FAILED[@]}"; exit $status'
    )
    return bash(
        f"set -u\n{body}\nsystemd_running() {{ true; }}\nstep_start() {{ start_services; }}\n"
        f"ROOT={root} DRY_RUN=0 STEP=start FAILED=() HEALTH_SETTLE=0 START=1 REBOOT=0\n"
        f"CHANGED_RUNTIME=1 RESTARTED=0 FAILED_AT_SWITCH=0 UNITS_KEPT='' STOPPED_FOR_COPY=0\n"
        "EARLIER_COPY=0\n"
        f"PY={py} DATA=/var/lib/kiosk STEPS=(start) PREFIX=/opt/kiosk\nexport MAIN=$$\n"
        f"CONFIG=/etc/kiosk/kiosk.toml CONFIG_SRC={ROOT}/systemd/kiosk.toml.example\n"
        "CURRENT=/opt/kiosk/current PREVIOUS=/opt/kiosk/previous\n"
        "SWITCHED_FROM=releases/old SWITCHED_TO=releases/new\n" + run,
        fake_bin,
    )


@pytest.mark.slow
def test_a_new_release_that_migrated_the_log_and_did_not_stay_up_leaves_it_as_it_was(
    tmp_path, clock
):
    """The switch back after a failed start put the previous program back, but the new one had
    already migrated kiosk.db at its first open: the previous release refused the log and the
    gate stayed locked with neither program. The install keeps a copy of the log before the
    new release first opens it and, switching back, puts it back (nothing was recorded
    since)."""
    from kiosk import lists
    from kiosk.store import EventLog

    root, fake_bin, calls = switched_gate(tmp_path, clock)
    proc = start_switched(root, fake_bin)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert os.readlink(root / "opt/kiosk/current") == "releases/old"
    assert "switched back to releases/old" in out
    data = root / "var/lib/kiosk"
    # Put back, not left to outlive a purge; the migrated file held nothing more.
    assert sorted(p.name for p in data.iterdir()) == ["kiosk.db"]
    with EventLog(data / "kiosk.db", "gate-1", clock, migrations=[lists.MIGRATIONS]) as log:
        assert [e["seq"] for e in log.events()] == [1]
        assert log.verify().ok
    assert calls.read_text().startswith("stop kiosk.service")  # copied at rest


@pytest.mark.slow
def test_a_new_release_that_recorded_events_before_it_failed_keeps_them(tmp_path, clock):
    """Putting the copy back would lose what the new release recorded (and reuse their seq,
    which the office has pulled): the log stays, the install says so and keeps the copy."""
    root, fake_bin, _ = switched_gate(tmp_path, clock, records=2)
    proc = start_switched(root, fake_bin)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert os.readlink(root / "opt/kiosk/current") == "releases/old"
    assert "recorded 2 events and 0 audit rows" in out
    data = root / "var/lib/kiosk"
    conn = sqlite3.connect(data / "kiosk.db")
    try:
        assert conn.execute("SELECT max(seq) FROM events").fetchone() == (3,)
    finally:
        conn.close()
    copy = sqlite3.connect(data / "kiosk.db.before-update")
    try:
        assert copy.execute("SELECT max(seq) FROM events").fetchone() == (1,)
    finally:
        copy.close()


@pytest.mark.slow
def test_a_new_release_that_stays_up_leaves_no_copy_of_the_log(tmp_path, clock):
    """The copy holds personal data no purge reaches: once the new release stayed up it goes."""
    root, fake_bin, calls = switched_gate(tmp_path, clock)
    systemctl = fake_bin / "systemctl"
    systemctl.write_text(
        systemctl.read_text().replace(
            "echo failed; exit 3; fi; echo active", "true; fi; echo active"
        )
    )
    proc = start_switched(root, fake_bin)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert os.readlink(root / "opt/kiosk/current") == "releases/new"
    assert not (root / "var/lib/kiosk/kiosk.db.before-update").exists()
    assert calls.read_text().splitlines()[:2] == [
        "stop kiosk.service kiosk-purge.service",
        "restart kiosk.service",
    ]


@pytest.mark.slow
def test_a_copy_of_the_log_cut_off_by_a_power_cut_is_begun_again(tmp_path, clock):
    """An update cut off while it copied the log leaves a partial ``.part`` file; the next
    run's copy is made whole all the same (not refused as 'not a database')."""
    root, fake_bin, _ = switched_gate(tmp_path, clock)
    data = root / "var/lib/kiosk"
    (data / "kiosk.db.before-update.part").write_bytes(b"SQLite format 3\0" + b"\x07" * 900)
    proc = start_switched(root, fake_bin)
    out = proc.stdout + proc.stderr
    assert "put the event log back as it was before the update" in out, out
    assert sorted(p.name for p in data.iterdir()) == ["kiosk.db"]


@pytest.mark.slow
def test_an_update_stops_the_old_releases_purge_before_the_new_release_opens_the_log(
    tmp_path, clock
):
    """The nightly purge (kiosk-purge.service, the old release's program) running while the
    update restarted the daemon went on writing into the log the new release had migrated:
    the purge is stopped with the daemon (it resumes at the next timer, on the new release)."""
    root, fake_bin, calls = switched_gate(tmp_path, clock)
    start_switched(root, fake_bin)
    before_start = calls.read_text().split("restart kiosk.service")[0]
    assert "kiosk-purge.service" in before_start.split("stop ", 1)[1], before_start


@pytest.mark.slow
def test_a_log_the_config_keeps_elsewhere_is_copied_and_put_back_too(tmp_path, clock):
    """``[store] path`` names the log (another file name, a folder on a USB disk): the update
    copied only /var/lib/kiosk/kiosk.db, so a site with its own path got no copy, and the
    switch back left the previous release facing the migrated log."""
    from kiosk import lists
    from kiosk.store import EventLog

    root, fake_bin, _ = switched_gate(tmp_path, clock)
    data = root / "var/lib/kiosk"
    (data / "kiosk.db").rename(data / "events.db")
    systemctl = fake_bin / "systemctl"
    systemctl.write_text(systemctl.read_text().replace(f"{data}/kiosk.db", f"{data}/events.db"))
    (root / "etc/kiosk").mkdir(parents=True)
    (root / "etc/kiosk/kiosk.toml").write_text('[store]\npath = "events.db"\n')
    proc = start_switched(root, fake_bin)
    out = proc.stdout + proc.stderr
    assert "put the event log back as it was before the update" in out, out
    assert sorted(p.name for p in data.iterdir()) == ["events.db"]
    with EventLog(data / "events.db", "gate-1", clock, migrations=[lists.MIGRATIONS]) as log:
        assert [e["seq"] for e in log.events()] == [1]


def on_old_with_new(tmp_path: Path) -> tuple[Path, Path]:
    """A root whose gate runs releases/old with releases/new built beside it; the root and
    its unit folder (not made yet)."""
    root = tmp_path / "root"
    kiosk = root / "opt/kiosk"
    (kiosk / "releases/old/venv").mkdir(parents=True)
    (kiosk / "releases/new/venv").mkdir(parents=True)
    (kiosk / "current").symlink_to("releases/old")
    return root, root / "etc/systemd/system"


def run_steps_with(tmp_path: Path, steps: str, *, failing: str) -> tuple[Path, str, str, int]:
    """The install's run of its steps on a gate running releases/old, with fake steps: venv
    switches to releases/new, and ``failing`` (a step after it) fails, or is cut off."""
    root, units = on_old_with_new(tmp_path)
    units.mkdir(parents=True)
    (units / "kiosk.service").write_text("[Service]\nExecStart=/opt/kiosk/current/venv/bin/kiosk\n")
    fake_bin, calls = tmp_path / "bin", tmp_path / "calls"
    fake_bin.mkdir()
    (fake_bin / "systemctl").write_text(
        f'#!/bin/sh\necho "$*" >>{calls}\n[ "$1" = is-active ] || exit 0\necho active\n'
    )
    (fake_bin / "systemctl").chmod(0o755)
    calls.write_text("")
    body = script_functions("r", "say", "ok", "skip", "fail", "show_command", "act", "switch_to")
    body += script_functions("link_name", "switch_release", "keep_unit_files", "undo_switch")
    body += script_functions("abandon_switch", "unit_up", "start_services", "run_steps")
    body += script_functions("interrupted")
    body += script_functions("stays_up_or_roll_back", "switch_back", *DATA_COPY_FUNCTIONS)
    fakes = {name: "true" for name in steps.split()}
    fakes |= {
        "venv": "switch_release releases/new",
        "units": "printf '[Service]\\nExecStart=/opt/kiosk/current/venv/bin/kiosk --new\\n'"
        f" >{units}/kiosk.service",
        "start": "start_services",
    }
    fakes[failing] += "; " + (
        "kill -INT $$" if failing == "cut" else f'fail "{failing} went wrong"'
    )
    body += "".join(f"step_{name}() {{ {cmd}; }}\n" for name, cmd in fakes.items())
    proc = bash(
        f"set -u\n{body}\nsystemd_running() {{ true; }}\n"
        f"ROOT={root} DRY_RUN=0 STEP=start FAILED=() PENDING=() HEALTH_SETTLE=0 START=1\n"
        f"REBOOT=0 CHANGED_RUNTIME=0 RESTARTED=0 FAILED_AT_SWITCH=0 UNITS_KEPT=''\n"
        "STOPPED_FOR_COPY=0 EARLIER_COPY=0 PURGE_PAUSED=0 SYSTEMCTL=(systemctl)\n"
        f"SWITCHED_FROM='' SWITCHED_TO='' PY={sys.executable} DATA=/var/lib/kiosk\n"
        f"CONFIG=/etc/kiosk/kiosk.toml CONFIG_SRC={ROOT}/systemd/kiosk.toml.example\n"
        "CURRENT=/opt/kiosk/current PREVIOUS=/opt/kiosk/previous UNIT_DIR=/etc/systemd/system\n"
        "UNITS=(kiosk.service kiosk-purge.timer)\n"
        "UART_DROPIN=/etc/systemd/system/kiosk.service.d/uart.conf\n"
        "PURGE_DROPIN=/etc/systemd/system/kiosk-purge.timer.d/zone.conf\n"
        f"STEPS=({steps})\n"
        'run_steps; printf "%s\\n" "${FAILED[@]}"; [ ${#FAILED[@]} -eq 0 ]',
        fake_bin,
    )
    return root, proc.stdout + proc.stderr, calls.read_text(), proc.returncode


@pytest.mark.parametrize(
    ("steps", "failing"),
    [
        ("venv files config units start", "config"),  # the loop stops at a bad config
        ("venv files units trust start", "trust"),  # the start step comes after it
        ("venv files units cut start", "cut"),  # Ctrl-C, a dropped SSH session
    ],
)
def test_an_install_that_fails_after_its_switch_and_before_the_restart_switches_back(
    tmp_path, steps, failing
):
    """A step failing (or the install cut off) after `current` named the new release and before
    kiosk.service was restarted on it left `current` there, with no copy of the log: the next
    boot started the new release, which migrated the log, and no switch back could follow. The
    install puts `current` and the units back, restarts nothing, and says so."""
    root, out, calls, status = run_steps_with(tmp_path, steps, failing=failing)
    kiosk = root / "opt/kiosk"
    assert status != 0, out
    assert os.readlink(kiosk / "current") == "releases/old", out
    assert "restart" not in calls and "stop kiosk.service" not in calls, calls
    unit = (root / "etc/systemd/system/kiosk.service").read_text()
    assert "--new" not in unit, unit
    assert "switched back to releases/old" in out, out
    assert "kiosk.service was not restarted" in out, out
    assert not (root / "var/lib/kiosk").exists()  # the log was never touched


@pytest.mark.slow
def test_an_update_cut_off_while_it_copies_the_log_starts_the_previous_release_again(
    tmp_path, clock
):
    """Ctrl-C (or a dropped SSH session) while the log was copied at rest: the daemon had been
    stopped for the copy, and the install went back to the previous release without starting
    it again: the gate stayed locked until someone rebooted it."""
    root, fake_bin, calls = switched_gate(tmp_path, clock)
    py = tmp_path / "py"
    py.write_text(
        f'#!/bin/sh\ncase "$*" in *" keep "*) kill -INT $PPID ;; esac\nexec {sys.executable} "$@"\n'
    )
    py.chmod(0o755)
    proc = start_switched(root, fake_bin, str(py), as_install=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 130, out
    assert os.readlink(root / "opt/kiosk/current") == "releases/old", out
    done = calls.read_text().splitlines()
    assert done[0] == "stop kiosk.service kiosk-purge.service", done
    assert done[-1] in ("start kiosk.service", "restart kiosk.service"), done
    assert "restart kiosk.service" not in done[:-1], done  # never started on releases/new
    assert sorted(p.name for p in (root / "var/lib/kiosk").iterdir()) == ["kiosk.db"], out


@pytest.mark.slow
def test_a_copy_of_the_log_the_card_has_no_room_for_is_not_left_filling_it(tmp_path, clock):
    """The card full while the log was copied: the install switched back (no copy, no start on
    the new release), but left the part it had copied, and the previous release started on a
    card with even less room than before."""
    root, fake_bin, calls = switched_gate(tmp_path, clock)
    data = root / "var/lib/kiosk"
    size = (data / "kiosk.db").stat().st_size
    if os.geteuid() == 0:
        os.chown(data / "kiosk.db", 4321, 4321)  # the daemon's user, not root
    py = tmp_path / "py"
    # RLIMIT_FSIZE (bash: KiB; over the -shm's 32 KiB, under the log's size): a write past it
    # fails (EFBIG; Python ignores SIGXFSZ) as on a full card, half-way through the copy.
    py.write_text(
        f'#!/bin/bash\ncase "$*" in *" keep "*) ulimit -f {size // 1024 // 2} ;; esac\n'
        f'exec {sys.executable} "$@"\n'
    )
    py.chmod(0o755)
    proc = start_switched(root, fake_bin, str(py), as_install=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "no copy of the event log could be kept" in out, out
    assert "(room on the card: df -h" in out and "Traceback" not in out, out
    assert os.readlink(root / "opt/kiosk/current") == "releases/old", out
    left = sorted(p.name for p in data.iterdir())
    assert [p for p in left if p not in ("kiosk.db-wal", "kiosk.db-shm")] == ["kiosk.db"], out
    for side in left:  # root opened the log for the copy: the daemon's user still owns them
        assert (data / side).stat().st_uid == (data / "kiosk.db").stat().st_uid
    acted = [c for c in calls.read_text().splitlines() if not c.startswith("is-active")]
    assert acted[-1] == "restart kiosk.service", acted
    assert out.count("did: point /opt/kiosk/current at releases/old") == 1, out


@pytest.mark.slow
def test_a_switch_back_to_a_release_that_refuses_the_config_does_not_say_the_gate_runs(
    tmp_path, clock
):
    """A key added to the config for the new release (before the update, as install.md says
    for allowed_hosts) is one the previous release refuses: the switch back restarted it, it
    stopped at once, and the install said "the gate runs the previous program" over a locked
    gate. It says the previous release does not run either, and why (its own check-config)."""
    root, fake_bin, calls = switched_gate(tmp_path, clock)
    systemctl = fake_bin / "systemctl"
    systemctl.write_text(  # the previous release too: failed at once
        systemctl.read_text()
        .replace('restart|start) [ -z "$new" ] ||', 'restart|start) [ -z "$new" ] && exit 1;')
        .replace("echo failed; exit 3; fi; echo active", "echo failed; exit 3; fi; echo failed")
    )
    old_kiosk = root / "opt/kiosk/releases/old/venv/bin/kiosk"
    old_kiosk.parent.mkdir(parents=True)
    old_kiosk.write_text(
        '#!/bin/sh\n[ "$1" = check-config ] || exit 1\n'
        "echo 'compound: unknown key (this version has no such setting)' >&2\nexit 2\n"
    )
    old_kiosk.chmod(0o755)
    proc = start_switched(root, fake_bin)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert os.readlink(root / "opt/kiosk/current") == "releases/old"
    assert "the gate runs the previous program" not in out, out
    assert "does not run on releases/old either" in out, out
    assert "kiosk.service was failed on the new release" in out, out
    assert "compound: unknown key" in out, out


def test_an_update_whose_build_fills_the_card_does_not_leave_it_full(tmp_path):
    """pip stopped by a full card (No space left on device) half-way through the new release:
    the install said the unfinished release 'is removed by the next run' and left it there,
    hundreds of MB, so the gate ran on with a full card and could not record a passage."""
    root = tmp_path / "root"
    (root / "opt/kiosk/releases/old/venv").mkdir(parents=True)
    checkout = tmp_path / "checkout"
    (checkout / "kiosk").mkdir(parents=True)
    (checkout / "kiosk/__init__.py").write_text("")
    py = tmp_path / "py"  # `python -m venv DIR`: a venv whose pip fills the card and fails
    py.write_text(
        '#!/bin/sh\n[ "$1 $2" = "-m venv" ] || exit 9\nvenv=$4\nmkdir -p "$venv/bin"\n'
        "cat >\"$venv/bin/python\" <<'PIP'\n#!/bin/sh\n"
        'mkdir -p "$(dirname "$0")/../lib/site-packages/cv2"\n'
        'head -c 65536 /dev/zero >"$(dirname "$0")/../lib/site-packages/cv2/cv2.so"\n'
        "echo 'ERROR: Could not install packages due to an OSError: [Errno 28] No space left"
        " on device' >&2\nexit 1\nPIP\n"
        'chmod +x "$venv/bin/python"\n'
    )
    py.chmod(0o755)
    body = script_functions("r", "say", "ok", "fail", "show_command", "act")
    body += script_functions("source_files", "build_release")
    proc = bash(
        f"set -u\n{body}\npip_extras() {{ :; }}\n"
        f"ROOT={root} DRY_RUN=0 STEP=venv FAILED=() PY={py} PIP_ARGS='' CHECKOUT={checkout}\n"
        "PREFIX=/opt/kiosk\n"
        "build_release /opt/kiosk/releases/new STAMP",
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "No space left on device" in out, out
    assert sorted(p.name for p in (root / "opt/kiosk/releases").iterdir()) == ["old"], out
    assert "removed by the next run" not in out, out


@pytest.mark.slow
def test_an_update_run_again_keeps_the_copy_from_before_the_first_one(tmp_path, clock):
    """The first run's new release recorded events and failed: the install kept the copy from
    before the update and said so (the way back to the previous release). Run again (going
    forward, as install.md says), it copied the migrated log over that copy: failing again,
    the log from before the update was gone, and with it the way back."""
    root, fake_bin, _ = switched_gate(tmp_path, clock, records=2)
    assert start_switched(root, fake_bin).returncode == 1
    kiosk = root / "opt/kiosk"
    (kiosk / "current").unlink()
    (kiosk / "current").symlink_to("releases/new")  # the second run's switch
    (kiosk / "previous").unlink()
    (kiosk / "previous").symlink_to("releases/old")
    proc = start_switched(root, fake_bin)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    copy = sqlite3.connect(root / "var/lib/kiosk/kiosk.db.before-update")
    try:
        assert copy.execute("SELECT max(seq) FROM events").fetchone() == (1,), out
    finally:
        copy.close()
    assert "kept from before an earlier update" in out, out


@pytest.mark.slow
def test_an_update_cut_off_while_it_waits_for_the_new_release_to_stay_up_goes_back(tmp_path, clock):
    """Ctrl-C in the 15 s the install waits for the new release to stay up (the one step that
    waits) left it running unproven, with the log's copy kept for good: a new release that
    then fell over was never switched back, and the gate stayed locked. Cut off there, the
    install goes back as for a release that did not stay up."""
    root, fake_bin, calls = switched_gate(tmp_path, clock)
    systemctl = fake_bin / "systemctl"
    systemctl.write_text(
        systemctl.read_text()
        .replace(
            "echo failed; exit 3; fi; echo active",
            "echo active; exit 0; fi; echo active",
        )
        .replace(  # Ctrl-C while the new release starts (the restart waits for READY=1)
            'restart|start) [ -z "$new" ] ||',
            'restart|start) [ -z "$new" ] || kill -INT $MAIN;',
        )
    )
    proc = start_switched(root, fake_bin, sys.executable, as_install=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 130, out
    assert os.readlink(root / "opt/kiosk/current") == "releases/old", out
    assert "cut off (SIGINT) before kiosk.service was seen to stay up" in out, out
    assert "put the event log back as it was before the update" in out, out
    assert sorted(p.name for p in (root / "var/lib/kiosk").iterdir()) == ["kiosk.db"], out
    assert "restart kiosk.service on releases/old" in out, out


def test_a_second_install_while_one_runs_on_the_same_system_changes_nothing(tmp_path):
    """An update started again while the first still ran (in a tmux the technician lost, from
    a second SSH session): the second removed the release the first was building as 'an
    unfinished build', both switched and copied the log, and one removed the copy the other
    would switch back with. The second stops at once, changing nothing, and says why."""
    import fcntl

    from test_install import run

    root = tmp_path / "root"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)  # the install running: its lock on the system's root
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = run(ROOT / "scripts" / "install", "--root", str(root))
    finally:
        os.close(fd)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "another scripts/install is running" in out, out
    assert "[preflight]" not in out, out
    assert list(root.iterdir()) == [], out


def test_an_empty_issuing_key_beside_its_public_half_is_not_replaced_by_the_install(tmp_path):
    """issuer.key found empty with issuer.pub beside it is no power cut of `keys new` (the key
    is synced before its public half is written): the passes it signed are trusted by that
    issuer.pub. The install removed both and made a new pair, and its trust step then put the
    new public half in trust/: every pass the gate had issued was refused (a forged-pass alarm
    each). It keeps both and says what to do."""
    root = tmp_path / "root"
    keys = root / "var/lib/kiosk/keys"
    keys.mkdir(parents=True)
    (keys / "issuer.key").write_bytes(b"")
    pub = b"-----BEGIN PUBLIC KEY-----\nthe key that signed the passes\n"
    (keys / "issuer.pub").write_bytes(pub)
    body = script_functions("r", "say", "ok", "skip", "todo", "fail", "show_command", "act")
    body += script_functions("step_issuer_key", "remove_left_tmpdirs", "root_only")
    proc = bash(
        f'set -u\n{body}\nkiosk_verb() {{ echo called kiosk_verb "$@"; }}\n'
        "owner_for() { echo 0:0; }\nissuer_pub() { :; }\n"
        "ensure_file_mode() { :; }\n"
        f"ROOT={root} DRY_RUN=0 STEP=issuer-key FAILED=() PENDING=() DATA=/var/lib/kiosk\n"
        "KIOSK_USER=kiosk VENV=/opt/kiosk/current/venv\n"
        'step_issuer_key; printf "%s\\n" "${FAILED[@]}"; [ ${#FAILED[@]} -eq 0 ]',
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert (keys / "issuer.pub").read_bytes() == pub, out
    assert (keys / "issuer.key").read_bytes() == b"", out
    assert "called kiosk_verb" not in out, out
    assert "issuer.key is empty" in out and "backup" in out, out


def test_an_update_with_no_start_says_the_gate_still_runs_the_previous_release(tmp_path, clock):
    """`--no-start` on a running gate after a switch said "start with: systemctl start kiosk
    ...": a start of a unit that runs does nothing, so the gate ran the previous program from
    memory until some restart brought up the new one, with no copy of the log and no switch
    back. It says what runs, and how to restart with both."""
    root, fake_bin, calls = switched_gate(tmp_path, clock)
    systemctl = fake_bin / "systemctl"  # the previous release runs on, from memory
    systemctl.write_text(
        systemctl.read_text().replace(
            "echo failed; exit 3; fi; echo active", "true; fi; echo active"
        )
    )
    body = script_functions("r", "say", "ok", "skip", "fail", "show_command", "act", "switch_to")
    body += script_functions("unit_up", "start_services", "abandon_switch")
    proc = bash(
        f"set -u\n{body}\nsystemd_running() {{ true; }}\n"
        f"ROOT={root} DRY_RUN=0 STEP=start FAILED=() START=0 REBOOT=0 RESTARTED=0\n"
        "FAILED_AT_SWITCH=0 SWITCHED_FROM=releases/old SWITCHED_TO=releases/new\n"
        "start_services",
        fake_bin,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "start with: systemctl start kiosk" not in out, out
    assert "kiosk.service still runs releases/old" in out, out
    assert "run the install again without --no-start" in out, out
    assert "restart" not in calls.read_text() and "stop" not in calls.read_text()


@pytest.mark.slow
def test_an_update_cut_off_keeps_the_copy_an_earlier_failed_update_left(tmp_path, clock):
    """The copy from before an earlier update that recorded events and failed is the way back
    (kept by every later run until a release stays up): a later run cut off while it went to
    copy the log removed it with its own."""
    root, fake_bin, _ = switched_gate(tmp_path, clock)
    data = root / "var/lib/kiosk"
    shutil.copy(data / "kiosk.db", data / "kiosk.db.before-update")
    earlier = (data / "kiosk.db.before-update").read_bytes()
    py = tmp_path / "py"
    py.write_text(
        f'#!/bin/sh\ncase "$*" in *" keep "*) kill -INT $PPID ;; esac\nexec {sys.executable} "$@"\n'
    )
    py.chmod(0o755)
    proc = start_switched(root, fake_bin, str(py), as_install=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 130, out
    assert os.readlink(root / "opt/kiosk/current") == "releases/old", out
    assert (data / "kiosk.db.before-update").read_bytes() == earlier, out


#: A systemctl that keeps enable links in the root's *.wants/ folders as systemd does (by the
#: unit's WantedBy=), and whose kiosk.service does not stay up on releases/new when DOWN is set.
#: kiosk-purge.timer runs until stopped; a daemon-reload while it runs fires the purge (a timer
#: whose OnCalendar moved, Persistent=true): written to the calls with the release it runs.
LINKING_SYSTEMCTL = """\
#!/bin/sh
echo "$*" >>{calls}
units={root}/etc/systemd/system
paused={root}/../purge-timer-stopped
for last; do :; done
case "$1" in
is-active)
    if [ "$last" = kiosk-purge.timer ]; then
        if [ -e "$paused" ]; then echo inactive; exit 3; fi
        echo active; exit 0
    fi
    if [ -n "{down}" ] && [ "$(readlink {root}/opt/kiosk/current)" = releases/new ]; then
        echo failed; exit 3
    fi
    echo active ;;
is-enabled) if ls "$units"/*.wants/"$last" >/dev/null 2>&1; then echo enabled; else exit 1; fi ;;
enable)
    want=$(sed -n 's/^WantedBy=//p' "$units/$last")
    mkdir -p "$units/$want.wants"
    ln -sfn "/etc/systemd/system/$last" "$units/$want.wants/$last" ;;
disable) rm -f "$units"/*.wants/"$last" ;;
stop) case " $* " in *" kiosk-purge.timer "*) touch "$paused" ;; esac ;;
start) case " $* " in *" kiosk-purge.timer "*) rm -f "$paused" ;; esac ;;
daemon-reload)
    [ -e "$paused" ] || echo "purge fired on $(readlink {root}/opt/kiosk/current)" >>{calls} ;;
esac
exit 0
"""


OLD_UNIT = "[Service]\nExecStart=/opt/kiosk/current/venv/bin/kiosk\n"
OLD_UNIT += "[Install]\nWantedBy=multi-user.target\n"


def update_with_units(
    tmp_path: Path, *, down: bool, failing: str = ""
) -> tuple[Path, str, str, int]:
    """The install's steps on a gate running releases/old (kiosk.service enabled, the purge timer
    running), with fake steps: venv switches to releases/new, units rewrites kiosk.service and
    writes a kiosk-sync.timer only the new release has (then a daemon-reload), enable enables
    both; ``failing`` fails (or, "cut", is cut off by SIGINT); ``down``: kiosk.service does not
    stay up on releases/new."""
    root, units = on_old_with_new(tmp_path)
    (units / "multi-user.target.wants").mkdir(parents=True)
    (units / "kiosk.service").write_text(OLD_UNIT)
    (units / "multi-user.target.wants/kiosk.service").symlink_to(
        "/etc/systemd/system/kiosk.service"
    )
    fake_bin, calls = tmp_path / "bin", tmp_path / "calls"
    fake_bin.mkdir()
    systemctl = LINKING_SYSTEMCTL.format(calls=calls, root=root, down="1" if down else "")
    (fake_bin / "systemctl").write_text(systemctl)
    (fake_bin / "systemctl").chmod(0o755)
    calls.write_text("")
    body = script_functions("r", "say", "ok", "skip", "fail", "show_command", "act", "switch_to")
    body += script_functions("link_name", "switch_release", "keep_unit_files", "undo_switch")
    body += script_functions("abandon_switch", "unit_up", "start_services", "run_steps")
    body += script_functions("interrupted", "stays_up_or_roll_back", *DATA_COPY_FUNCTIONS)
    new_unit = OLD_UNIT.replace("kiosk\n", "kiosk --new\n")
    sync_timer = "[Timer]\nOnCalendar=hourly\n[Install]\nWantedBy=timers.target\n"
    fakes = {
        "venv": "switch_release releases/new",
        "units": f"printf '{new_unit}' >{units}/kiosk.service;"
        f" printf '{sync_timer}' >{units}/kiosk-sync.timer; systemctl daemon-reload",
        "enable": "systemctl enable --quiet kiosk.service;"
        " systemctl enable --quiet kiosk-sync.timer; record_units releases/new",
        "trust": "true",
        "start": "start_services",
    }
    if failing:
        fakes[failing] += "; " + ("kill -INT $$" if failing == "enable" else 'fail "it went wrong"')
    body += "".join(f"step_{name}() {{ {cmd}; }}\n" for name, cmd in fakes.items())
    proc = bash(
        f"set -u\n{body}\nsystemd_running() {{ true; }}\n"
        f"ROOT={root} DRY_RUN=0 STEP=start FAILED=() PENDING=() HEALTH_SETTLE=0 START=1\n"
        "REBOOT=0 CHANGED_RUNTIME=0 RESTARTED=0 FAILED_AT_SWITCH=0 UNITS_KEPT=''\n"
        "STOPPED_FOR_COPY=0 EARLIER_COPY=0 PURGE_PAUSED=0 SYSTEMCTL=(systemctl)\n"
        f"SWITCHED_FROM='' SWITCHED_TO='' PY={sys.executable} DATA=/var/lib/kiosk\n"
        f"CONFIG=/etc/kiosk/kiosk.toml CONFIG_SRC={ROOT}/systemd/kiosk.toml.example\n"
        "CURRENT=/opt/kiosk/current PREVIOUS=/opt/kiosk/previous UNIT_DIR=/etc/systemd/system\n"
        "UNITS=(kiosk.service kiosk-sync.timer) PREFIX=/opt/kiosk\n"
        "UART_DROPIN=/etc/systemd/system/kiosk.service.d/uart.conf\n"
        "PURGE_DROPIN=/etc/systemd/system/kiosk-purge.timer.d/zone.conf\n"
        "STEPS=(venv units enable trust start)\n"
        'run_steps; printf "%s\\n" "${FAILED[@]}"; [ ${#FAILED[@]} -eq 0 ]',
        fake_bin,
    )
    return root, proc.stdout + proc.stderr, calls.read_text(), proc.returncode


@pytest.mark.slow
@pytest.mark.parametrize("how", ["a step failed before the restart", "it did not stay up"])
def test_a_switch_back_disables_and_removes_the_units_only_the_new_release_brought(tmp_path, how):
    """A new release that brought a unit of its own (kiosk-sync.timer) and was switched back left
    that unit's file and its enable link: every boot then started a unit that runs a program the
    gate no longer has. The switch back disables and removes it, and keeps what both have."""
    down = how == "it did not stay up"
    root, out, calls, status = update_with_units(
        tmp_path, down=down, failing="" if down else "trust"
    )
    units = root / "etc/systemd/system"
    assert status != 0 and "switched back to releases/old" in out, out
    assert os.readlink(root / "opt/kiosk/current") == "releases/old", out
    assert not (units / "kiosk-sync.timer").exists(), out
    assert not (units / "timers.target.wants/kiosk-sync.timer").is_symlink(), out
    assert (units / "kiosk.service").read_text() == OLD_UNIT, out  # both have it: as it was
    assert (units / "multi-user.target.wants/kiosk.service").is_symlink(), out
    if down:  # the units were back before the previous release was restarted
        done = calls.splitlines()
        last_restart = len(done) - 1 - done[::-1].index("restart kiosk.service")
        assert done.index("disable --now --quiet kiosk-sync.timer") < last_restart, done


@pytest.mark.slow
@pytest.mark.parametrize(
    ("down", "failing"),
    [(False, ""), (True, ""), (False, "trust"), (False, "enable")],
    ids=["stays up", "switched back", "a step failed", "cut off"],
)
def test_the_purge_timer_waits_for_the_switch_and_runs_again_after_it(tmp_path, down, failing):
    """A daemon-reload during an update (the new units, the units put back) could start the
    purge at once (its OnCalendar moved, Persistent=true): a purge of the new release racing the
    copy of the event log, or its putting back. The install stops kiosk-purge.timer for the
    switch and starts it again however the update ends."""
    root, out, calls, _ = update_with_units(tmp_path, down=down, failing=failing)
    done = calls.splitlines()
    assert not [c for c in done if c.startswith("purge fired")], done
    assert "daemon-reload" in done, done
    stop = done.index("stop kiosk-purge.timer")
    assert stop < done.index("daemon-reload"), done
    assert "start kiosk-purge.timer" in done[stop:], done
    assert not (tmp_path / "purge-timer-stopped").exists(), out


def test_a_config_cut_off_while_it_was_written_is_written_again_whole(tmp_path):
    """The first install's config was copied straight into /etc/kiosk/kiosk.toml: cut off there
    (Ctrl-C, a power cut before the install's sync) it left a part of the file, and every later
    run kept it as the site's own config (`exists (kept as it is)`). It is written beside, synced
    and renamed: cut off, there is no kiosk.toml, and the next run writes it whole."""
    root = fresh_os_root(tmp_path / "root")
    with open(root / "etc/passwd", "a") as passwd:
        passwd.write("kiosk:x:998:998::/var/lib/kiosk:/usr/sbin/nologin\n")
    with open(root / "etc/group", "a") as group:
        group.write("kiosk:x:998:\n")
    (root / "etc/kiosk").mkdir()
    source = ROOT / "systemd/kiosk.toml.example"
    cut_bin = tmp_path / "bin"
    cut_bin.mkdir()
    (cut_bin / "install").write_text(  # the copy cut off after its first line, as Ctrl-C
        "#!/bin/sh\nfor dst; do :; done\n"  # does: a signal to every process of the install
        f'head -n 1 {source} >"$dst"\nkill -INT 0\nexit 1\n'
    )
    (cut_bin / "install").chmod(0o755)
    body = script_functions("r", "say", "ok", "fail", "show_command", "act", "owner_for")
    body += script_functions("user_exists", "uid_of", "gid_of", "group_id", "ensure_file_mode")
    body += script_functions("installed_venv", "step_config")
    script = (
        f"set -u\n{body}\nROOT={root} DRY_RUN=0 STEP=config FAILED=() KIOSK_USER=kiosk\n"
        f"CONFIG=/etc/kiosk/kiosk.toml CONFIG_SRC={source} CHECKED_AT_PREFLIGHT=''\n"
        "VENV=/opt/kiosk/current/venv LEGACY_VENV=/opt/kiosk/venv\nstep_config\n"
    )
    cut = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        env=dict(os.environ, PATH=f"{cut_bin}:{os.environ['PATH']}"),
        start_new_session=True,  # its own process group, as the install in a terminal
        preexec_fn=signals_as_at_a_terminal,
    )
    assert cut.returncode != 0, cut.stdout + cut.stderr
    again = bash(script)
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    assert (root / "etc/kiosk/kiosk.toml").read_text() == source.read_text(), out
    assert "kept as it is" not in out, out


@pytest.mark.parametrize("cut_off", [False, True])
def test_a_file_the_install_rewrites_is_the_old_one_or_the_new_one_never_half(tmp_path, cut_off):
    """write_if_changed (udev rules, drop-ins, the screen's Chromium policy) wrote the file in
    place: cut off there (a power cut, Ctrl-C), the policy was left empty, and the screen's
    lockdown was off until the next run. It is written beside, synced, then renamed: cut off
    before the rename (a `sync` that fails stands for it), the old file is whole."""
    root = tmp_path / "root"
    policy = root / "etc/chromium/policies/managed/kiosk-screen.json"
    policy.parent.mkdir(parents=True)
    policy.write_text('{"old": true}\n')
    before = policy.stat().st_ino
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    if cut_off:
        (fake_bin / "sync").write_text("#!/bin/sh\nexit 1\n")
        (fake_bin / "sync").chmod(0o755)
    body = script_functions("r", "say", "ok", "fail", "show_command", "act", "write_if_changed")
    proc = bash(
        f"set -u\n{body}\nROOT={root} DRY_RUN=0 STEP=screen FAILED=()\n"
        "printf '%s\\n' '{\"new\": true}' |"
        " write_if_changed /etc/chromium/policies/managed/kiosk-screen.json policy",
        fake_bin,
    )
    out = proc.stdout + proc.stderr
    if cut_off:
        assert policy.read_text() == '{"old": true}\n', out
        assert policy.stat().st_ino == before
        return
    assert proc.returncode == 0, out
    assert policy.read_text() == '{"new": true}\n'
    assert policy.stat().st_ino != before  # renamed into place, not written over
    assert oct(policy.stat().st_mode & 0o777) == "0o644"
    assert not policy.with_name(policy.name + ".new").exists()


#: A release's program for `--back`: it passes the install's checks, and its verify-log refuses
#: the log (exit 2, as a release with the schema check does) when the file NEWER is there.
FAKE_RELEASE_KIOSK = """\
#!/bin/sh
case "$1" in
verify-log)
    if [ -e {newer} ]; then
        echo "kiosk verify-log: $3 was written by a newer version of the program" >&2
        exit 2
    fi ;;
--version) echo "kiosk {name}" ;;
esac
exit 0
"""


def go_back(
    tmp_path: Path, root: Path, *, down: bool = False, cut: bool = False
) -> tuple[str, str, int]:
    """`scripts/install --back`'s steps (back, start) on a gate left by update_with_units,
    with this checkout's units list (kiosk.service only: what else each release has is in its
    record). ``down``: kiosk.service does not stay up on releases/old; ``cut``: cut off by
    SIGINT when the log's copy stops the daemon (after the switch, before the restart)."""
    kiosk = root / "opt/kiosk"
    for name in ("old", "new"):
        for program in ("kiosk", "python"):
            path = kiosk / f"releases/{name}/venv/bin/{program}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(FAKE_RELEASE_KIOSK.format(newer=tmp_path / "newer", name=name))
            path.chmod(0o755)
    log = root / "var/lib/kiosk/kiosk.db"
    if not log.exists():
        log.parent.mkdir(parents=True)
        with sqlite3.connect(log) as conn:
            conn.executescript("CREATE TABLE events (seq); CREATE TABLE audit (seq);")
        conn.close()
    fake_bin, calls = tmp_path / "bin", tmp_path / "calls"
    systemctl = LINKING_SYSTEMCTL.format(calls=calls, root=root, down="1" if down else "")
    systemctl = systemctl.replace("= releases/new ]", "= releases/old ]")
    if cut:
        systemctl = systemctl.replace(
            'case "$1" in',
            'case "$*" in "stop kiosk.service kiosk-purge.service") kill -INT $PPID ;; esac\n'
            'case "$1" in',
            1,
        )
    (fake_bin / "systemctl").write_text(systemctl)
    calls.write_text("")
    body = script_functions("r", "say", "ok", "skip", "fail", "show_command", "act", "switch_to")
    body += script_functions("link_name", "switch_release", "keep_unit_files", "undo_switch")
    body += script_functions("abandon_switch", "unit_up", "start_services", "run_steps")
    body += script_functions("interrupted", "stays_up_or_roll_back", *DATA_COPY_FUNCTIONS)
    body += script_functions("refuse_back", "step_back", "back_units", "check_release")
    proc = bash(
        f"set -u\n{body}\nsystemd_running() {{ true; }}\n"
        f"ROOT={root} DRY_RUN=0 STEP=back FAILED=() PENDING=() HEALTH_SETTLE=0 START=1\n"
        "REBOOT=0 CHANGED_RUNTIME=0 RESTARTED=0 FAILED_AT_SWITCH=0 UNITS_KEPT=''\n"
        "STOPPED_FOR_COPY=0 EARLIER_COPY=0 PURGE_PAUSED=0 SYSTEMCTL=(systemctl)\n"
        f"SWITCHED_FROM='' SWITCHED_TO='' PY={sys.executable} DATA=/var/lib/kiosk\n"
        f"CONFIG=/etc/kiosk/kiosk.toml CONFIG_SRC={ROOT}/systemd/kiosk.toml.example\n"
        "CURRENT=/opt/kiosk/current PREVIOUS=/opt/kiosk/previous UNIT_DIR=/etc/systemd/system\n"
        "PREFIX=/opt/kiosk RELEASES=/opt/kiosk/releases UNITS=(kiosk.service) BACK_PLAN=''\n"
        "UART_DROPIN=/etc/systemd/system/kiosk.service.d/uart.conf\n"
        "PURGE_DROPIN=/etc/systemd/system/kiosk-purge.timer.d/zone.conf\n"
        "STEPS=(back start)\nstep_start() { start_services; }\n"
        'run_steps; printf "%s\\n" "${FAILED[@]}"; [ ${#FAILED[@]} -eq 0 ]',
        fake_bin,
    )
    return proc.stdout + proc.stderr, calls.read_text(), proc.returncode


@slow
def test_going_back_takes_the_units_back_too_and_a_second_run_goes_forward(tmp_path):
    """Going back by hand (the one-liner) flipped the links and restarted kiosk.service: a
    unit only the newer release brought (kiosk-sync.timer) stayed enabled and kept firing a
    program that was no longer current. `--back` puts the previous release's units back as it
    ran with them, disables and removes the ones it does not have, reloads, restarts and waits
    for it to stay up; run again, it goes forward the same way."""
    root, out, _, status = update_with_units(tmp_path, down=False)
    assert status == 0 and os.readlink(root / "opt/kiosk/current") == "releases/new", out
    units = root / "etc/systemd/system"
    new_unit = (units / "kiosk.service").read_text()
    out, calls, status = go_back(tmp_path, root)
    done = calls.splitlines()
    assert status == 0, out
    assert os.readlink(root / "opt/kiosk/current") == "releases/old", out
    assert os.readlink(root / "opt/kiosk/previous") == "releases/new", out
    assert not (units / "kiosk-sync.timer").exists(), out
    assert not (units / "timers.target.wants/kiosk-sync.timer").is_symlink(), out
    assert (units / "kiosk.service").read_text() == OLD_UNIT, out
    assert (units / "multi-user.target.wants/kiosk.service").is_symlink(), out
    assert "[back] did: disable and stop kiosk-sync.timer (releases/old does not have it)" in out
    assert "[back] did: remove /etc/systemd/system/kiosk-sync.timer" in out, out
    reload, restart = done.index("daemon-reload"), done.index("restart kiosk.service")
    assert done.index("disable --now --quiet kiosk-sync.timer") < reload < restart, done
    assert "releases/old: kiosk.service active 0 s after its restart" in out, out

    out, calls, status = go_back(tmp_path, root)  # again: forward to releases/new
    assert status == 0, out
    assert os.readlink(root / "opt/kiosk/current") == "releases/new", out
    assert (units / "kiosk.service").read_text() == new_unit, out
    assert (units / "timers.target.wants/kiosk-sync.timer").is_symlink(), out
    assert "restart kiosk.service" in calls.splitlines(), calls


@slow
@pytest.mark.parametrize("why", ["no previous release", "a log it cannot open", "no record"])
def test_going_back_is_refused_when_there_is_nothing_to_go_back_to(tmp_path, why):
    root, out, _, status = update_with_units(tmp_path, down=False)
    assert status == 0, out
    if why == "no previous release":
        (root / "opt/kiosk/previous").unlink()
    elif why == "no record":  # put in place by an install from before --back
        shutil.rmtree(root / "opt/kiosk/releases/old/units")
    else:
        (tmp_path / "newer").touch()
    out, calls, status = go_back(tmp_path, root)
    assert status == 2, out
    assert os.readlink(root / "opt/kiosk/current") == "releases/new", out
    assert calls == "", calls  # nothing stopped, reloaded or restarted
    assert (root / "etc/systemd/system/timers.target.wants/kiosk-sync.timer").is_symlink()
    if why == "no previous release":
        assert "install: --back: there is no previous release to go back to" in out, out
    elif why == "no record":
        assert "releases/old has no record of its units" in out and "by hand" in out, out
    else:
        assert "releases/old cannot open the event log /var/lib/kiosk/kiosk.db" in out, out
        assert "written by a newer version" in out and "nothing was changed" in out, out


@slow
@pytest.mark.parametrize("how", ["it did not stay up", "cut off"])
def test_going_back_that_fails_or_is_cut_off_leaves_the_release_it_ran(tmp_path, how):
    """The previous release not staying up, or `--back` cut off (Ctrl-C, a dropped SSH session)
    between the switch and the restart, puts `current` and the units back to the release that
    ran: the newer release's own timer enabled again."""
    root, out, _, status = update_with_units(tmp_path, down=False)
    assert status == 0, out
    new_unit = (root / "etc/systemd/system/kiosk.service").read_text()
    out, calls, status = go_back(tmp_path, root, down=how != "cut off", cut=how == "cut off")
    units = root / "etc/systemd/system"
    assert status == (130 if how == "cut off" else 1), out
    assert os.readlink(root / "opt/kiosk/current") == "releases/new", out
    assert (units / "kiosk.service").read_text() == new_unit, out
    assert (units / "kiosk-sync.timer").exists(), out
    assert (units / "timers.target.wants/kiosk-sync.timer").is_symlink(), out
    assert "enable --now --quiet kiosk-sync.timer" in calls.splitlines(), calls  # runs again
    assert "the previous release releases/old" in out and "switched back to releases/new" in out


#: A venv's python for check_release: the release's own imports stand in (they are the suite's
#: to test); anything else is this interpreter with ``site`` (Debian's dist-packages) and this
#: checkout on its path, as a venv made with --system-site-packages has them.
CHECKED_VENV_PYTHON = """#!/bin/sh
case "$2" in "import checkpoint.app, checkpoint.cli") exit 0 ;; esac
PYTHONDONTWRITEBYTECODE=1 PYTHONPATH={site}:{checkout} exec {python} "$@"
"""


def check_release_with(tmp_path: Path, config: str, site: Path) -> tuple[str, int]:
    """`check_release` on a release whose venv sees ``site`` for Debian's packages, with
    ``config`` the config in force."""
    root = tmp_path / "root"
    venv = root / "opt/kiosk/releases/new/venv"
    (venv / "bin").mkdir(parents=True)
    python = CHECKED_VENV_PYTHON.format(site=site, checkout=ROOT, python=sys.executable)
    (venv / "bin/python").write_text(python)
    (venv / "bin/kiosk").write_text('#!/bin/sh\necho "kiosk 1.0 ($1)"\n')
    for program in ("python", "kiosk"):
        (venv / "bin" / program).chmod(0o755)
    (root / "etc/kiosk").mkdir(parents=True)
    (root / "etc/kiosk/kiosk.toml").write_text(config)
    body = script_functions("r", "say", "ok", "fail", "config_facts", "effective_config")
    body += script_functions("config_has", "check_release")
    proc = bash(
        f"set -u\n{body}\nROOT={root} DRY_RUN=0 STEP=venv FAILED=() PY={sys.executable}\n"
        "CONFIG=/etc/kiosk/kiosk.toml CONFIG_SRC=/nowhere RELEASES=/opt/kiosk/releases\n"
        "check_release /opt/kiosk/releases/new",
    )
    return proc.stdout + proc.stderr, proc.returncode


def broken_picamera2(site: Path) -> Path:
    """Debian's picamera2 whose encoder's extension was built for numpy 1.x, under numpy 2."""
    (site / "picamera2").mkdir(parents=True)
    (site / "libcamera").mkdir()
    (site / "libcamera/__init__.py").write_text("")
    (site / "picamera2/__init__.py").write_text(
        "import libcamera\nraise ImportError('numpy.core.multiarray failed to import')\n"
    )
    return site


PICAMERA_CONFIG = '[[readers.sources]]\ntype = "picamera"\n'


@slow
def test_a_release_whose_picamera2_cannot_load_fails_the_install_saying_why(tmp_path):
    """The install checked that the release imports and accepts the config, never that the
    Pi camera's picamera2 loads in its venv: a broken camera stack (an apt extension built
    for numpy 1.x) showed only at run time, as a camera fault at the gate. It fails the
    install now, with picamera2's own error and the fix."""
    site = broken_picamera2(tmp_path / "dist-packages")
    out, status = check_release_with(tmp_path, PICAMERA_CONFIG, site)
    assert status == 1, out
    assert "numpy.core.multiarray failed to import" in out, out
    assert "run scripts/install again" in out, out
    assert "FAIL" in out and "the Pi camera cannot work with /opt/kiosk/releases/new" in out, out


@slow
@pytest.mark.parametrize("config", [PICAMERA_CONFIG, ""])
def test_picamera2_is_checked_only_for_a_pi_camera_and_a_working_one_passes(tmp_path, config):
    site = tmp_path / "dist-packages"
    (site / "picamera2").mkdir(parents=True)
    (site / "picamera2/__init__.py").write_text(
        "class Picamera2:\n    def wait(self, job, timeout=None):\n        pass\n"
        "    def cancel_all_and_flush(self):\n        pass\n"
    )
    out, status = check_release_with(tmp_path, config, site)
    assert status == 0, out
    assert ("picamera2 loads" in out) == bool(config), out
    broken_picamera2(tmp_path / "broken")
    out, status = check_release_with(tmp_path / "again", config, tmp_path / "broken")
    assert status == (1 if config else 0), out


def test_the_switch_back_says_the_line_the_new_release_refused_to_start_with(tmp_path):
    """The roll-back's message carries the daemon's refusal (`kiosk run: cannot start: ...`,
    from the journal of its last run), not only "see journalctl" (rvcfg2)."""
    root, kiosk = _switched_to_new(tmp_path)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    refusal = "kiosk run: cannot start: /var/lib/kiosk/trust/office.pub is not a PEM public key"
    (fake_bin / "systemctl").write_text(  # the new release fails, the previous one runs
        '#!/bin/sh\n[ "$1" = show ] && { echo 0123abcd; exit 0; }\n'
        '[ "$1" = is-active ] || exit 0\n'
        f'[ "$(readlink {kiosk}/current)" = releases/new ] || {{ echo active; exit 0; }}\n'
        "echo failed\nexit 3\n"
    )
    (fake_bin / "journalctl").write_text(  # that run's lines only
        '#!/bin/sh\ncase "$*" in *_SYSTEMD_INVOCATION_ID=0123abcd*) ;; *) exit 0 ;; esac\n'
        f'echo \'{{"level": "warning", "msg": "emulated devices"}}\'\necho "{refusal}"\n'
    )
    for program in ("systemctl", "journalctl"):
        (fake_bin / program).chmod(0o755)
    body = script_functions("r", "say", "ok", "fail", "show_command", "act", "switch_to")
    body += script_functions("unit_up", "stays_up_or_roll_back", "daemon_refusal")
    body += script_functions(*DATA_COPY_FUNCTIONS)
    proc = bash(
        f"set -uo pipefail\n{body}\nROOT={root} DRY_RUN=0 STEP=start FAILED=() HEALTH_SETTLE=0\n"
        f"PY={sys.executable} DATA=/var/lib/kiosk PREFIX=/opt/kiosk REFUSAL=''\n"
        f"CONFIG=/etc/kiosk/kiosk.toml CONFIG_SRC={ROOT}/systemd/kiosk.toml.example\n"
        "CURRENT=/opt/kiosk/current PREVIOUS=/opt/kiosk/previous\n"
        "SWITCHED_FROM=releases/old SWITCHED_TO=releases/new\n"
        'stays_up_or_roll_back; status=$?; printf "%s\\n" "${FAILED[@]}"; exit $status',
        fake_bin,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "switched back to releases/old" in out
    assert f"the new release said: {refusal}" in out, out
