"""scripts/install and scripts/uninstall, run against throwaway roots.

The dry runs are fast and need no privileges: every step is printed, and nothing is written.
The real run (``slow``, needs root) installs into a temp dir standing in for a fresh Raspberry
Pi OS: users and groups go into its etc/ (``useradd --prefix``), units are enabled there with
``systemctl --root``, the venv is built from a snapshot of this checkout. pip runs offline
(``--no-deps --no-index``); the venv finds the project's dependencies through PYTHONPATH set
to this test venv's site-packages, so no network is needed. apt, raspi-config and starting
services act on a running Pi only and are reported as skipped under --root.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support import need

#: Each test runs the shell installer (or uninstaller) against a throwaway root.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
STEPS = [
    "preflight",
    "apt",
    "i2c",
    "usb",
    "groups",
    "user",
    "screen-user",
    "dirs",
    "venv",
    "files",
    "config",
    "credentials",
    "issuer-key",
    "trust",
    "guard-admin",
    "units",
    "enable",
    "start",
]
KIOSK_GROUPS = ("i2c", "video", "dialout", "gpio", "input")
OFFLINE_PIP = "--no-deps --no-index --no-build-isolation"
HOST_UNITS = Path("/lib/systemd/system")

#: The real install needs root: ``as_root`` (a skip on a developer machine, a failure in CI).
needs_root = pytest.mark.usefixtures("as_root")


def snapshot_checkout(dest: Path) -> Path:
    """The files install uses, copied: other work in the tree cannot change them mid-test."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("scripts", "systemd", "docs", "kiosk", "drivers", "ui", "checkpoint", "office"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    for name in ("pyproject.toml", "constraints.txt", "README.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)
    return dest


def fresh_os_root(root: Path) -> Path:
    """The bits of a fresh Raspberry Pi OS Lite the installer reads or changes."""
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\ndialout:x:20:\nvideo:x:44:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\ndialout:*::\nvideo:*::\n")
    (etc / "shadow").chmod(0o640)
    (etc / "gshadow").chmod(0o640)
    boot = root / "boot" / "firmware"
    boot.mkdir(parents=True)
    (boot / "config.txt").write_text("[all]\ndtparam=audio=on\n")
    units = root / "lib" / "systemd" / "system"
    units.mkdir(parents=True)
    for name in (
        "graphical.target",
        "multi-user.target",
        "getty@.service",
        "getty.target",
        "timers.target",
        "basic.target",
    ):
        if (HOST_UNITS / name).exists():
            shutil.copy2(HOST_UNITS / name, units / name)
    if (units / "getty@.service").exists():  # Debian enables a login prompt on tty1
        wants = etc / "systemd" / "system" / "getty.target.wants"
        wants.mkdir(parents=True)
        (wants / "getty@tty1.service").symlink_to("/lib/systemd/system/getty@.service")
    if (units / "multi-user.target").exists():
        (etc / "systemd" / "system").mkdir(parents=True, exist_ok=True)
        (etc / "systemd" / "system" / "default.target").symlink_to(
            "/lib/systemd/system/multi-user.target"
        )
    return root


def run(script: Path, *args: str, env: dict[str, str] | None = None, stdin=subprocess.DEVNULL):
    # The installer checks the config with the checkout's kiosk.config first: the host Python
    # finds pydantic in this test venv (as install_env does), not in a throwaway venv from PyPI.
    env = dict(os.environ if env is None else env)
    purelib = sysconfig.get_paths()["purelib"]
    shells = os.environ.get("PYTHONPATH")
    if shells and env.get("PYTHONPATH") == shells and purelib not in shells.split(os.pathsep):
        # The shell's own PYTHONPATH, passed on: the venv's packages are still found (after
        # it). Without them every dry run built a throwaway venv from PyPI (~7 s of CPU).
        env["PYTHONPATH"] = os.pathsep.join([shells, purelib])
    env.setdefault("PYTHONPATH", purelib)
    return subprocess.run(
        ["bash", str(script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        stdin=stdin,
    )


def tree(root: Path) -> dict[str, tuple]:
    """Every path under root with type, mode, owner and content (or link target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                what = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                what = ("dir",)
            else:
                what = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
            out[str(p.relative_to(root))] = (*what, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return out


def lines_of(output: str, step: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"[{step}] ")]


def installer_functions(script: Path, *settings: str) -> str:
    """Every function of ``script`` (``scripts/install``) and the named ``NAME=`` settings,
    verbatim, as bash source without the script's own top-level code: a step run on its own on
    the live-system path (ROOT=/), its tools stubbed on PATH, where the whole installer would
    act on this machine. A test may define ``r`` again after them to keep the target's files
    in a temp dir."""
    text = script.read_text()
    found = [m.group(0) for m in re.finditer(r"^\w+\(\) \{(?:.*\}$|.*\n(?:.*\n)*?\}$)", text, re.M)]
    for name in settings:
        match = re.search(rf"^{re.escape(name)}=.*$", text, re.M)
        assert match, f"no {name}= in {script}"
        found.append(match.group(0))
    return "\n".join(found)


def run_installer_functions(
    script: Path, settings: tuple[str, ...], body: str, env: dict[str, str]
) -> subprocess.CompletedProcess:
    """``body`` run after the functions of ``script`` and the named settings, with the
    installer's globals as it starts (live system, not a dry run)."""
    prelude = "set -euo pipefail\nROOT=/ DRY_RUN=0 REBOOT=0 CHANGED_RUNTIME=0 APT_UPDATED=0\n"
    prelude += "PENDING=() FAILED=()\n"
    source = prelude + installer_functions(script, *settings) + "\n" + body
    return subprocess.run(
        ["bash", "-c", source], capture_output=True, text=True, timeout=60, env=env
    )


# --- usage ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    return snapshot_checkout(tmp_path_factory.mktemp("checkout"))


def test_help_names_every_step(checkout):
    proc = run(checkout / "scripts" / "install", "--help")
    assert proc.returncode == 0
    for step in STEPS:
        assert step in proc.stdout
    assert "--dry-run" in proc.stdout and "--root" in proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("--bogus",),
        ("--root",),
        ("--root", "/nonexistent/kiosk-root"),
        ("--config", "/nonexistent.toml"),
        ("--back", "--tls"),
        ("--back", "--config", "/etc/hostname"),
    ],
)
def test_bad_usage_exits_2_with_one_clear_line(checkout, args):
    proc = run(checkout / "scripts" / "install", "--dry-run", *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("install: ")
    assert "Traceback" not in proc.stderr


def test_going_back_with_no_previous_release_is_refused_and_changes_nothing(checkout, tmp_path):
    root = tmp_path / "root"
    (root / "opt/kiosk/releases/a/venv/bin").mkdir(parents=True)
    (root / "opt/kiosk/current").symlink_to("releases/a")
    proc = run(checkout / "scripts" / "install", "--back", "--root", str(root))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "install: --back: there is no previous release to go back to" in proc.stderr
    assert os.readlink(root / "opt/kiosk/current") == "releases/a"
    assert sorted(p.name for p in (root / "opt/kiosk").iterdir()) == ["current", "releases"]


# --- dry runs ------------------------------------------------------------------------------


def test_dry_run_prints_every_step_and_writes_nothing(plain):
    proc = plain.proc
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for step in STEPS:
        assert lines_of(proc.stdout, step), f"step {step} not reported:\n{proc.stdout}"
    assert "FAIL" not in proc.stdout + proc.stderr
    assert tree(plain.root) == plain.before
    assert "dry run: nothing was changed" in proc.stdout

    out = proc.stdout
    # The kiosk user with exactly the device groups; only the groups this OS lacks are made.
    assert re.search(r"useradd --system .*--groups i2c,video,dialout,gpio,input kiosk", out)
    assert re.search(r"groupadd --system --prefix \S+ i2c", out)
    # input: a keyboard-mode scanner's /dev/input/event* (readers type "hid").
    assert re.search(r"groupadd --system --prefix \S+ input", out)
    assert re.search(r"groupadd --system --prefix \S+ gpio", out)
    assert "[groups] ok: group video exists" in out
    assert "[groups] ok: group dialout exists" in out
    # No raspi-config here: I2C is switched on in config.txt instead.
    assert "[i2c] would: enable I2C in /boot/firmware/config.txt" in out
    assert "-m venv --system-site-packages" in out
    assert "kiosk keys new --dir /var/lib/kiosk/keys --name issuer" in out
    assert re.search(
        r"guard hash admin --role admin --password-stdin .*/opt/kiosk/current/venv/bin/kiosk"
        r" /etc/kiosk/credentials/guard_users",
        out,
    )
    for unit in (
        "kiosk.service",
        "kiosk-screen.service",
        "kiosk-purge.service",
        "kiosk-purge.timer",
    ):
        assert f"[units] would: install /etc/systemd/system/{unit}" in out
    for unit in ("kiosk.service", "kiosk-screen.service", "kiosk-purge.timer"):
        assert f"[enable] would: enable {unit}" in out
    # Host packages are never installed into another root.
    assert lines_of(out, "apt")[0].startswith("[apt] skip: ")
    apt_line = lines_of(out, "apt")[0]
    for package in ("libzbar0", "cage", "xwayland", "chromium", "fonts-noto-cjk", "python3-venv"):
        assert package in apt_line
    assert "python3-picamera2" not in out  # the default config uses a USB camera


def test_dry_run_never_prints_a_generated_secret(plain):
    proc = plain.proc
    cred_lines = [line for line in lines_of(proc.stdout, "credentials")]
    assert len(cred_lines) == 3  # token_pepper, session_key, an empty guard_users
    commands = proc.stdout.split("[credentials]")[1:3]
    for chunk in commands:
        # The command reads /dev/urandom itself: no secret value on the command line.
        assert "/dev/urandom" in chunk.splitlines()[1]
        assert not re.search(r"[A-Za-z0-9+/]{40,}", chunk)


def test_pi_camera_config_installs_python3_picamera2(checkout, tmp_path):
    cfg = tmp_path / "pi.toml"
    cfg.write_text('[[readers.sources]]\ntype = "picamera"\n')
    proc = run(
        checkout / "scripts" / "install",
        "--dry-run",
        "--root",
        str(fresh_os_root(tmp_path / "root")),
        "--config",
        str(cfg),
    )
    assert proc.returncode == 0, proc.stderr
    assert "python3-picamera2" in lines_of(proc.stdout, "apt")[0]


def test_an_existing_config_is_kept(checkout, tmp_path):
    root = fresh_os_root(tmp_path / "root")
    (root / "etc" / "kiosk").mkdir()
    (root / "etc" / "kiosk" / "kiosk.toml").write_text('[site]\nkiosk_id = "gate-7"\n')
    proc = run(checkout / "scripts" / "install", "--dry-run", "--root", str(root))
    assert "[config] ok: /etc/kiosk/kiosk.toml exists (kept as it is)" in proc.stdout
    assert "install /etc/kiosk/kiosk.toml from" not in proc.stdout


def _dry_run(checkout, root, *args, env=None):
    return run(checkout / "scripts" / "install", "--dry-run", "--root", str(root), *args, env=env)


@dataclass(frozen=True)
class DryRun:
    root: Path
    before: dict[str, tuple]  # ``tree(root)`` before the run
    proc: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def plain(checkout, tmp_path_factory) -> DryRun:
    """``install --dry-run`` with the default config on a fresh OS root, run once for every
    test that reads the default plan (each bash run is ~0.4 s; the output is only read)."""
    # "os-root": its path has no 40-character run of base64 letters, which would look like a
    # generated secret to test_dry_run_never_prints_a_generated_secret.
    root = fresh_os_root(tmp_path_factory.mktemp("plain") / "os-root")
    before = tree(root)
    return DryRun(root, before, _dry_run(checkout, root))


def test_a_32_bit_userland_is_refused_at_the_first_step(checkout, tmp_path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    dpkg = fake_bin / "dpkg"
    dpkg.write_text('#!/bin/sh\n[ "$1" = --print-architecture ] && echo armhf\n')
    dpkg.chmod(0o755)
    env = dict(os.environ, PATH=f"{fake_bin}:{os.environ['PATH']}")
    proc = _dry_run(checkout, fresh_os_root(tmp_path / "root"), env=env)
    assert proc.returncode == 1
    first = lines_of(proc.stderr, "preflight")
    assert first and "32-bit userland (armhf)" in first[0] and "64-bit" in first[0]
    # Nothing after the first step runs: no apt, no pip into a failing build.
    assert not lines_of(proc.stdout, "apt") and not lines_of(proc.stdout, "venv")


def test_usb_serial_drivers_load_at_boot_and_a_missing_proc_entry_is_reported(checkout, tmp_path):
    root = fresh_os_root(tmp_path / "root")
    (root / "proc").mkdir()
    # /proc/devices of a system where the relay was not plugged in at boot: no ttyUSB.
    (root / "proc" / "devices").write_text(
        "Character devices:\n  1 mem\n  4 ttyS\n 89 i2c\n166 ttyACM\n"
    )
    proc = _dry_run(checkout, root)
    usb = "\n".join(lines_of(proc.stdout, "usb"))
    assert "write /etc/modules-load.d/kiosk.conf" in usb
    # videodev: DeviceAllow=char-video4linux/char-media resolve at the daemon's start too, and
    # udev may load it only with a USB camera enumerated after the daemon started.
    for module in ("usbserial", "ch341", "cp210x", "ftdi_sio", "pl2303", "cdc_acm", "videodev"):
        assert f"\\n{module}" in proc.stdout
    assert "ttyUSB not in /proc/devices" in usb


def _step_i2c_on_a_pi(checkout, tmp_path, get_i2c: str) -> tuple[str, Path, Path]:
    """scripts/install's own i2c step on the live-system path of a booted Pi: raspi-config
    answers ``get_i2c`` (which only greps config.txt for dtparam=i2c_arm), the target's files
    in a temp root, modprobe recorded. Returns its output, the root and modprobe's record."""
    root = fresh_os_root(tmp_path / "root")
    (root / "proc").mkdir()
    (root / "proc" / "devices").write_text("Character devices:\n  1 mem\n  4 ttyS\n")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "raspi-config").write_text(
        '#!/bin/sh\n[ "$1 $2" = "nonint get_i2c" ] && { echo "$GET_I2C"; exit 0; }\nexit 0\n'
    )
    modprobe = tmp_path / "modprobe.log"
    (fake_bin / "modprobe").write_text(f'#!/bin/sh\necho "$*" >>{modprobe}\n')
    for tool in fake_bin.iterdir():
        tool.chmod(0o755)
    run_dir = tmp_path / "run-systemd-system"
    run_dir.mkdir()
    env = dict(
        os.environ,
        PATH=f"{fake_bin}:{os.environ['PATH']}",
        GET_I2C=get_i2c,
        FAKE_ROOT=str(root),
        KIOSK_SYSTEMD_RUN_DIR=str(run_dir),
    )
    body = (
        'STEP=i2c\nr() { echo "$FAKE_ROOT$1"; }\nstep_i2c\n'
        'echo "changed_runtime=$CHANGED_RUNTIME failed=${#FAILED[@]}"\n'
    )
    proc = run_installer_functions(checkout / "scripts" / "install", (), body, env)
    return proc.stdout + proc.stderr, root, modprobe


@pytest.mark.parametrize("get_i2c", ["0", "1"])
def test_i2c_dev_is_loaded_at_boot_however_i2c_was_turned_on(checkout, tmp_path, get_i2c):
    """An owner who had put dtparam=i2c_arm=on in config.txt by hand: raspi-config's get_i2c
    said "enabled" (it reads only that line), and the step returned before it looked at
    i2c-dev, which nothing else loads: no /dev/i2c-1 after the reboot, no thermometer. i2c-dev
    is now put in modules-load.d whichever way I2C was found or turned on, and loaded now."""
    out, root, modprobe = _step_i2c_on_a_pi(checkout, tmp_path, get_i2c)
    said = "[i2c] ok: I2C enabled (raspi-config)" if get_i2c == "0" else "[i2c] did: enable I2C"
    assert said in out, out
    assert "[i2c] did: load i2c-dev at boot" in out, out
    assert (root / "etc/modules-load.d/kiosk-i2c.conf").read_text().split() == ["i2c-dev"]
    # Not registered in /proc/devices: loaded now, the daemon restarted (DeviceAllow=char-i2c
    # resolves at its start).
    assert modprobe.read_text().split() == ["i2c-dev"]
    assert "changed_runtime=1 failed=0" in out, out


def test_without_systemd_running_the_live_kernel_and_udev_are_left_alone(checkout, tmp_path):
    """A chroot (an arm64 image under qemu-user, an image being built) is a live root without
    systemd as PID 1: modprobe and udevadm there would act on the host's kernel and daemons,
    and fail. A dry run on this machine's root, once as booted and once as a chroot."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for tool in ("udevadm", "modprobe"):
        (fake_bin / tool).write_text("#!/bin/sh\nexit 0\n")
        (fake_bin / tool).chmod(0o755)
    need(not Path("/etc/udev/rules.d/70-kiosk-serial.rules").exists(), "no kiosk installed here")
    devices = Path("/proc/devices").read_text()
    unregistered = not all(re.search(rf"\b{m}\b", devices) for m in ("ttyUSB", "ttyACM"))
    booted_dir = tmp_path / "run-systemd-system"
    booted_dir.mkdir()

    def usb_lines(run_dir: Path) -> str:
        env = dict(
            os.environ,
            PATH=f"{fake_bin}:{os.environ['PATH']}",
            KIOSK_SYSTEMD_RUN_DIR=str(run_dir),
        )
        proc = run(checkout / "scripts" / "install", "--dry-run", env=env)
        return "\n".join(lines_of(proc.stdout, "usb") + lines_of(proc.stdout, "start"))

    booted = usb_lines(booted_dir)
    assert "would: apply the udev rules now" in booted
    assert ("would: load the serial drivers now" in booted) == unregistered
    chroot = usb_lines(tmp_path / "absent")
    assert "udev rules now" not in chroot and "load the serial drivers now" not in chroot
    if unregistered:
        assert "systemd is not running here (a chroot?)" in chroot
        assert "/etc/modules-load.d/kiosk.conf loads the drivers at boot" in chroot
    assert "[start] skip: systemd is not running here" in chroot


def test_udev_rules_name_the_relay_and_scanner_by_usb_port(checkout, tmp_path):
    root = fresh_os_root(tmp_path / "root")
    (root / "etc" / "kiosk").mkdir()
    # Two CH340 boards without serial numbers: only their ports tell them apart.
    (root / "etc" / "kiosk" / "usb-ports").write_text(
        "# comment\n"
        "relay platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.3:1.0\n"
        "scanner platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.4:1.0\n"
        'bogus x", RUN+="/bin/sh\n'
    )
    proc = _dry_run(checkout, root)
    out = proc.stdout
    assert "usb-ports (where to name" not in out  # an existing file is kept
    port = "platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.{}:1.0"
    relay = f'ENV{{ID_PATH}}=="{port.format(3)}", SYMLINK+="kiosk-relay"'
    scanner = f'ENV{{ID_PATH}}=="{port.format(4)}", SYMLINK+="kiosk-scanner"'
    assert relay in out and scanner in out
    assert "RUN+=" not in out


def test_a_scanner_on_the_pi_uart_gets_device_allow_for_tty_s(checkout, tmp_path, plain):
    cfg = tmp_path / "uart.toml"
    cfg.write_text('[[readers.sources]]\ntype = "serial"\nport = "/dev/ttyS0"\n')
    proc = _dry_run(checkout, fresh_os_root(tmp_path / "root"), "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    units = proc.stdout.split("[units] would: write /etc/systemd/system/kiosk.service.d/uart.conf")
    assert len(units) == 2 and "DeviceAllow=char-ttyS rw" in units[1].splitlines()[1]
    assert "uart.conf" not in plain.proc.stdout  # no UART port configured: no ttyS access


def test_the_nightly_purge_runs_at_night_on_the_sites_clock_not_the_systems(
    checkout, tmp_path, plain
):
    """A Raspberry Pi OS image keeps the system zone UTC: the timer's 03:15 was 11:15 in
    Shanghai (and 04:15 or 05:15 in Berlin), a purge with its report freezing in the middle
    of a busy day. A drop-in puts the timer on the config's site.timezone."""
    dropin = "[units] would: write /etc/systemd/system/kiosk-purge.timer.d/zone.conf"
    default = plain.proc.stdout.split(dropin)
    assert len(default) == 2
    assert "OnCalendar=*-*-* 03:15:00 Asia/Shanghai" in default[1].splitlines()[1]
    cfg = tmp_path / "berlin.toml"
    cfg.write_text('[site]\ntimezone = "Europe/Berlin"\n')
    proc = _dry_run(checkout, fresh_os_root(tmp_path / "root"), "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    units = proc.stdout.split(dropin)
    assert len(units) == 2
    assert "OnCalendar=*-*-* 03:15:00 Europe/Berlin" in units[1].splitlines()[1]


def test_a_scanner_on_the_pi_uart_turns_off_the_serial_console_sharing_it(checkout, tmp_path):
    """Raspberry Pi OS boots with console=serial0,115200: the kernel and a login getty would
    share the scanner's UART (codes read as user names, boot messages sent to the scanner)."""
    cfg = tmp_path / "uart.toml"
    cfg.write_text('[[readers.sources]]\ntype = "serial"\nport = "/dev/serial0"\n')
    root = fresh_os_root(tmp_path / "root")
    cmdline = root / "boot/firmware/cmdline.txt"
    stock = "console=serial0,115200 console=tty1 root=PARTUUID=1234-02 rootfstype=ext4 rootwait\n"
    cmdline.write_text(stock)
    proc = _dry_run(checkout, root, "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    usb = proc.stdout.split(
        "[usb] would: turn off the serial console in /boot/firmware/cmdline.txt"
    )
    assert len(usb) == 2 and "/dev/serial0" in usb[1].splitlines()[0]
    assert cmdline.read_text() == stock  # a dry run changes nothing
    shown = usb[1].splitlines()[1].strip().removeprefix("$ ")
    subprocess.run(["bash", "-c", shown], check=True)  # the command as printed, run
    assert cmdline.read_text() == "console=tty1 root=PARTUUID=1234-02 rootfstype=ext4 rootwait\n"
    again = _dry_run(checkout, root, "--config", str(cfg))
    assert "[usb] ok: no serial console on the UART (/dev/serial0)" in again.stdout


def test_pi_camera_config_installs_simplejpeg_into_the_venv(checkout, tmp_path, plain):
    cfg = tmp_path / "pi.toml"
    cfg.write_text('[[readers.sources]]\ntype = "picamera"\n')
    proc = _dry_run(checkout, fresh_os_root(tmp_path / "root"), "--config", str(cfg))
    venv = "[venv]" + proc.stdout.split("[venv]", 1)[1].split("\n[files]")[0]  # its lines, commands
    pip = [x for x in venv.replace("\\", "").splitlines() if "pip install" in x]
    assert "with [picamera]" in venv and pip and pip[0].endswith("[picamera]")
    assert "[picamera]" not in plain.proc.stdout


def test_gpio_relay_config_installs_lgpio_from_pypi_and_opens_the_chip_to_group_gpio(
    checkout, tmp_path, plain
):
    """Debian has no python3-lgpio (apt would fail the install) and leaves /dev/gpiochip* to
    root: both found by tests/system/vm-walkthrough on a plain Debian with gpio-sim."""
    cfg = tmp_path / "gpio.toml"
    cfg.write_text('[gate.driver]\ntype = "gpio"\npin = 17\n')
    proc = _dry_run(checkout, fresh_os_root(tmp_path / "root"), "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    assert "python3-lgpio" not in proc.stdout
    venv = "[venv]" + proc.stdout.split("[venv]", 1)[1].split("\n[files]")[0]  # its lines, commands
    pip = [x for x in venv.replace("\\", "").splitlines() if "pip install" in x]
    assert "with [gpio]" in venv and pip and pip[0].endswith("[gpio]")
    rule = proc.stdout.split("write /etc/udev/rules.d/70-kiosk-gpio.rules")
    assert len(rule) == 2
    assert 'SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"' in rule[1]
    assert "[gpio]" not in plain.proc.stdout and "70-kiosk-gpio.rules" not in plain.proc.stdout


def test_uninstall_removes_the_gpio_rule(checkout, tmp_path):
    root = fresh_os_root(tmp_path / "root")
    rules = root / "etc" / "udev" / "rules.d"
    rules.mkdir(parents=True)
    (rules / "70-kiosk-gpio.rules").write_text("# written by scripts/install\n")
    proc = run(checkout / "scripts" / "uninstall", "--dry-run", "--root", str(root))
    assert proc.returncode == 0, proc.stderr
    assert "would: remove /etc/udev/rules.d/70-kiosk-gpio.rules" in proc.stdout


WATCHDOG_DROPIN = "/etc/systemd/system.conf.d/kiosk-watchdog.conf"


def test_the_pis_hardware_watchdog_resets_a_hung_kernel_within_15_s(plain):
    """A kernel that hangs during a pass's pulse (a frozen Pi: neither the daemon, its
    watchdog nor ExecStopPost can run) left the relay energised and the gate released for as
    long as nobody pulled the plug: nothing enabled the Pi's hardware watchdog. systemd (PID 1)
    feeds it once RuntimeWatchdogSec is set; bcm2835-wdt's longest timeout is about 15 s."""
    units = plain.proc.stdout.split(f"[units] would: write {WATCHDOG_DROPIN}")
    assert len(units) == 2, plain.proc.stdout
    written = units[1].splitlines()[1]
    assert "[Manager]" in written
    [value] = re.findall(r"RuntimeWatchdogSec=(\d+)s", written)
    assert 0 < int(value) <= 15
    # systemd reads system.conf.d only when it starts or re-executes: not on this --root run.
    assert "daemon-reexec" not in plain.proc.stdout


def test_uninstall_removes_the_watchdog_dropin(checkout, tmp_path):
    root = fresh_os_root(tmp_path / "root")
    dropin = root / WATCHDOG_DROPIN.lstrip("/")
    dropin.parent.mkdir(parents=True)
    dropin.write_text("# Written by scripts/install\n[Manager]\nRuntimeWatchdogSec=15s\n")
    proc = run(checkout / "scripts" / "uninstall", "--dry-run", "--root", str(root))
    assert proc.returncode == 0, proc.stderr
    assert f"would: remove {WATCHDOG_DROPIN}" in proc.stdout


def test_the_gpio_extra_is_lgpio():
    """pip only warns about an extra that does not exist: the installer's [gpio] must be one."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(re.match(r"lgpio\b", req) for req in project["optional-dependencies"]["gpio"])


def test_the_screen_gets_its_own_user_outside_the_kiosk_group(plain):
    line = [x for x in plain.proc.stdout.splitlines() if "useradd" in x and "kiosk-screen" in x]
    assert len(line) == 1 and "--home-dir /var/lib/kiosk-screen" in line[0]
    assert not re.search(r"--groups \S*kiosk[,\s]", line[0])


# --- the real install into a throwaway root --------------------------------------------------


def install_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]
    python = target_python(env)
    need(
        python is not None,
        f"Python {sys.version_info.major}.{sys.version_info.minor} with the `wheel` package"
        " for an offline build of the project (apt install python3-wheel)",
    )
    env["KIOSK_PYTHON"] = python
    return env


def target_python(env: dict[str, str]) -> str | None:
    """An interpreter for the target venv: the same X.Y as this test venv (the compiled
    dependencies found through PYTHONPATH must match its ABI), able to build a wheel offline
    (setuptools' bdist_wheel needs the `wheel` package)."""
    want = f"{sys.version_info.major}.{sys.version_info.minor}"
    probe = "import sys, setuptools, wheel; print('%d.%d' % sys.version_info[:2])"
    for candidate in ("/usr/bin/python3", getattr(sys, "_base_executable", sys.executable)):
        if not os.path.exists(candidate):
            continue
        proc = subprocess.run(
            [candidate, "-c", probe], capture_output=True, text=True, env=env, check=False
        )
        if proc.returncode == 0 and proc.stdout.strip() == want:
            return candidate
    return None


def verbs_ready(kiosk: Path, verb: str) -> bool:
    proc = subprocess.run(
        [str(kiosk), verb, "--help"], capture_output=True, text=True, env=install_env()
    )
    return "not available yet" not in (proc.stdout + proc.stderr).lower()


@pytest.fixture(scope="module")
def installed(checkout, tmp_path_factory):
    need(os.geteuid() == 0, "root for the real install")
    need(shutil.which("useradd") is not None, "useradd")
    need(shutil.which("systemctl") is not None, "systemctl")
    root = fresh_os_root(tmp_path_factory.mktemp("pi") / "root")
    first = run(
        checkout / "scripts" / "install",
        "--root",
        str(root),
        "--pip-args",
        OFFLINE_PIP,
        env=install_env(),
    )
    return root, first


def passwd_entry(root: Path, name: str) -> list[str] | None:
    for line in (root / "etc" / "passwd").read_text().splitlines():
        if line.split(":")[0] == name:
            return line.split(":")
    return None


def group_members(root: Path, group: str) -> list[str]:
    for line in (root / "etc" / "group").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == group:
            return [m for m in parts[3].split(",") if m]
    raise AssertionError(f"no group {group}")


@needs_root
def test_real_install_sets_up_the_pi(installed, checkout):
    root, proc = installed
    out = proc.stdout + proc.stderr
    assert "FAIL" not in out, out
    for step in STEPS:
        assert lines_of(proc.stdout, step), f"step {step} not reported:\n{out}"

    user = passwd_entry(root, "kiosk")
    assert user is not None and user[5] == "/var/lib/kiosk" and user[6] == "/usr/sbin/nologin"
    uid, gid = int(user[2]), int(user[3])
    for group in KIOSK_GROUPS:
        assert "kiosk" in group_members(root, group)

    def mode_owner(rel: str) -> tuple[int, int, int]:
        st = (root / rel).stat()
        return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid

    assert mode_owner("var/lib/kiosk") == (0o750, uid, gid)
    assert mode_owner("var/lib/kiosk/keys") == (0o700, uid, gid)
    assert mode_owner("etc/kiosk/credentials") == (0o700, 0, 0)
    for name in ("token_pepper", "session_key"):
        secret = root / "etc/kiosk/credentials" / name
        assert mode_owner(f"etc/kiosk/credentials/{name}") == (0o600, 0, 0)
        assert len(secret.read_text().strip()) >= 40
    pepper = (root / "etc/kiosk/credentials/token_pepper").read_text()
    assert pepper != (root / "etc/kiosk/credentials/session_key").read_text()
    assert pepper.strip() not in out  # secrets are never printed

    config = root / "etc/kiosk/kiosk.toml"
    assert config.read_bytes() == (checkout / "systemd/kiosk.toml.example").read_bytes()
    assert mode_owner("etc/kiosk/kiosk.toml") == (0o640, 0, gid)
    assert "[config] ok: valid" in out

    assert (root / "opt/kiosk/venv/bin/kiosk").exists()
    admin = root / "opt/kiosk/bin/kiosk-admin"
    assert mode_owner("opt/kiosk/bin/kiosk-admin")[0] == 0o755
    assert "/opt/kiosk/current/venv/bin/kiosk" in admin.read_text()
    assert os.readlink(root / "usr/local/sbin/kiosk-admin") == "/opt/kiosk/bin/kiosk-admin"
    if shutil.which("shellcheck"):
        lint = subprocess.run(["shellcheck", str(admin)], capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout
    assert (root / "opt/kiosk/docs").is_dir()
    assert os.readlink(root / "opt/kiosk/bin/chromium").startswith("/usr/bin/chromium")
    assert "dtparam=i2c_arm=on" in (root / "boot/firmware/config.txt").read_text()
    assert (root / "etc/modules-load.d/kiosk-i2c.conf").read_text().strip() == "i2c-dev"
    modules = (root / "etc/modules-load.d/kiosk.conf").read_text().split()
    assert {"usbserial", "ch341", "cp210x", "ftdi_sio", "pl2303", "cdc_acm"} <= set(modules)
    assert (root / "etc/udev/rules.d/70-kiosk-serial.rules").exists()
    assert "udevadm info" in (root / "etc/kiosk/usb-ports").read_text()
    screen = passwd_entry(root, "kiosk-screen")
    assert screen is not None and screen[5] == "/var/lib/kiosk-screen" and int(screen[3]) != gid
    # The screen's Chromium policy, where Debian's chromium and Pi OS's chromium-browser read it.
    policy = (checkout / "systemd/chromium-policy.json").read_bytes()
    for browser in ("chromium", "chromium-browser"):
        rel = f"etc/{browser}/policies/managed/kiosk-screen.json"
        assert (root / rel).read_bytes() == policy, rel
        assert mode_owner(rel) == (0o644, 0, 0)
    assert "kiosk-screen" not in group_members(root, "kiosk")

    units = root / "etc/systemd/system"
    for unit in (
        "kiosk.service",
        "kiosk-screen.service",
        "kiosk-purge.service",
        "kiosk-purge.timer",
    ):
        assert (units / unit).read_bytes() == (checkout / "systemd" / unit).read_bytes()
    assert (units / "multi-user.target.wants/kiosk.service").is_symlink()
    assert (units / "graphical.target.wants/kiosk-screen.service").is_symlink()
    assert (units / "timers.target.wants/kiosk-purge.timer").is_symlink()
    # What `--back` puts back when it goes back to this release: its units, and which are enabled.
    (release,) = (root / "opt/kiosk/releases").iterdir()
    record = {
        (release / "units" / f).read_text().strip(): f
        for f in os.listdir(release / "units")
        if f.endswith(".path")
    }
    unit = record["/etc/systemd/system/kiosk.service"].replace(".path", "")
    assert (release / "units" / f"{unit}.unit").read_bytes() == (
        units / "kiosk.service"
    ).read_bytes()
    assert (release / "units" / f"{unit}.enabled").read_text().strip() == "enabled"
    if (root / "lib/systemd/system/getty@.service").exists():
        assert not (units / "getty.target.wants/getty@tty1.service").exists()
    if (root / "lib/systemd/system/graphical.target").exists():
        assert os.readlink(units / "default.target").endswith("graphical.target")

    kiosk = root / "opt/kiosk/venv/bin/kiosk"
    if verbs_ready(kiosk, "keys"):
        assert mode_owner("var/lib/kiosk/keys/issuer.key") == (0o600, uid, gid)
        assert (root / "var/lib/kiosk/trust/issuer.pub").read_bytes() == (
            root / "var/lib/kiosk/keys/issuer.pub"
        ).read_bytes()
    else:
        assert "[issuer-key] todo: 'kiosk keys new' is not in this build yet" in out
    if verbs_ready(kiosk, "guard"):
        users = (root / "etc/kiosk/credentials/guard_users").read_text()
        assert re.search(r"^admin:admin:scrypt\$\S+$", users, re.MULTILINE)
        assert mode_owner("etc/kiosk/credentials/guard_users") == (0o600, 0, 0)
        password = re.search(r"user: admin\s+password: (\S+)", out).group(1)
        assert password not in users
    else:
        assert "[guard-admin] todo: 'kiosk guard hash' is not in this build yet" in out
        # The unit's LoadCredential= needs the file even before any account exists.
        assert (root / "etc/kiosk/credentials/guard_users").exists()
    # Exit 0 only when nothing is left to do.
    assert proc.returncode == (1 if "todo:" in out else 0), out


@needs_root
def test_second_install_run_changes_nothing(installed, checkout):
    root, first = installed
    before = tree(root)
    again = run(
        checkout / "scripts" / "install",
        "--root",
        str(root),
        "--pip-args",
        OFFLINE_PIP,
        env=install_env(),
    )
    assert again.returncode == first.returncode, again.stdout + again.stderr
    assert [line for line in again.stdout.splitlines() if "] did: " in line] == []
    assert "FAIL" not in again.stdout + again.stderr
    for step in STEPS:
        assert lines_of(again.stdout, step)
    assert tree(root) == before
    assert "password:" not in again.stdout  # the admin password is shown once, at creation


@needs_root
def test_uninstall_keeps_data_unless_purged(installed, checkout, tmp_path):
    src, _ = installed
    root = tmp_path / "root"
    shutil.copytree(src, root, symlinks=True)
    uninstall = checkout / "scripts" / "uninstall"

    dry = run(uninstall, "--dry-run", "--root", str(root))
    assert dry.returncode == 0 and "would: remove /opt/kiosk" in dry.stdout
    assert (root / "opt/kiosk").exists()

    proc = run(uninstall, "--root", str(root))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (root / "opt/kiosk").exists()
    assert not (root / "etc/systemd/system/kiosk.service").exists()
    assert not (root / "etc/systemd/system/multi-user.target.wants/kiosk.service").exists()
    assert not (root / "etc/chromium/policies/managed/kiosk-screen.json").exists()
    assert not (root / "etc/chromium-browser/policies/managed/kiosk-screen.json").exists()
    assert (root / "etc/kiosk/kiosk.toml").exists()
    assert (root / "etc/kiosk/credentials/token_pepper").exists()
    assert (root / "var/lib/kiosk").is_dir()
    assert passwd_entry(root, "kiosk") is not None
    if (root / "lib/systemd/system/getty@.service").exists():
        assert (root / "etc/systemd/system/getty.target.wants/getty@tty1.service").is_symlink()

    refused = run(uninstall, "--root", str(root), "--purge")  # no tty, no --yes
    assert refused.returncode == 1
    assert (root / "var/lib/kiosk").is_dir()

    purged = run(uninstall, "--root", str(root), "--purge", "--yes")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert not (root / "etc/kiosk").exists()
    assert not (root / "var/lib/kiosk").exists()
    assert passwd_entry(root, "kiosk") is None
    assert passwd_entry(root, "kiosk-screen") is None
    assert "kiosk" not in group_members(root, "video")
    assert not (root / "etc/modules-load.d/kiosk.conf").exists()
    assert not (root / WATCHDOG_DROPIN.lstrip("/")).exists()


# --- lint ------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", ["scripts/install", "scripts/uninstall"])
def test_shellcheck_passes(script):
    need(shutil.which("shellcheck") is not None, "shellcheck")
    proc = subprocess.run(
        ["shellcheck", "-x", str(ROOT / script)], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_root
def test_install_tls_pins_the_certificate_for_the_screen(checkout, tmp_path_factory):
    """With --tls and web.tls on the daemon serves HTTPS only; the screen (its own user, no
    access to the credential) is pointed at https with exactly that certificate's key pinned."""
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    need(shutil.which("useradd") is not None, "useradd")
    need(shutil.which("openssl") is not None, "openssl")
    base = tmp_path_factory.mktemp("tls")
    root = fresh_os_root(base / "root")
    config = _tls_config(checkout, base, tls=True)
    args = ("--root", str(root), "--pip-args", OFFLINE_PIP, "--tls", "--config", str(config))
    first = run(checkout / "scripts" / "install", *args, env=install_env())
    out = first.stdout + first.stderr
    assert "FAIL" not in out, out
    cert = x509.load_pem_x509_certificate((root / "etc/kiosk/credentials/tls_cert").read_bytes())
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    screen = (root / "etc/systemd/system/kiosk-screen.service.d/tls.conf").read_text()
    assert "Environment=KIOSK_SCREEN_ORIGIN=https://127.0.0.1:8000" in screen
    assert f"Environment=KIOSK_SCREEN_PIN={pin}" in screen
    assert (
        "LoadCredential=tls_cert:"
        in (root / "etc/systemd/system/kiosk.service.d/tls.conf").read_text()
    )
    # Ctrl+N / Ctrl+T open the kiosk page at the origin the screen uses: https here.
    for browser in ("chromium", "chromium-browser"):
        policy = json.loads(
            (root / f"etc/{browser}/policies/managed/kiosk-screen.json").read_text()
        )
        assert policy["NewTabPageLocation"] == "https://127.0.0.1:8000/kiosk", browser
        assert policy["URLAllowlist"] == ["127.0.0.1"]
    again = run(checkout / "scripts" / "install", *args, env=install_env())
    assert "point the screen at https" not in again.stdout  # nothing to redo
    assert "the screen's Chromium policy" not in again.stdout  # written once
    assert (root / "etc/systemd/system/kiosk-screen.service.d/tls.conf").read_text() == screen


@needs_root
def test_install_tls_refuses_to_date_a_certificate_from_a_clock_before_the_release(
    checkout, tmp_path_factory
):
    """A Pi has no RTC: booted without network (and without fake-hwclock) its clock says 1970.
    The certificate made then ran 1970-1980 and was refused as expired once NTP set the clock,
    so the office's pull stopped. A clock earlier than the release was made is refused, by
    name, and no certificate is made (the next run, with the clock set, makes it)."""
    need(shutil.which("useradd") is not None, "useradd")
    need(shutil.which("openssl") is not None, "openssl")
    future = snapshot_checkout(tmp_path_factory.mktemp("future-checkout"))
    made = datetime(2100, 1, 1, tzinfo=UTC).timestamp()
    os.utime(future / "pyproject.toml", (made, made))
    root = fresh_os_root(tmp_path_factory.mktemp("tls-clock") / "root")
    args = ("--root", str(root), "--pip-args", OFFLINE_PIP, "--tls")
    proc = run(future / "scripts" / "install", *args, env=install_env())
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "before this release was made (2100-01-01)" in out, out
    assert "set the clock" in out
    assert not (root / "etc/kiosk/credentials/tls_cert").exists()
    assert not (root / "etc/systemd/system/kiosk.service.d/tls.conf").exists()


@needs_root
def test_install_tls_names_the_address_the_office_and_guards_use(checkout, tmp_path_factory):
    """The certificate named the host, host.local, localhost and 127.0.0.1 only: an office
    pulling https://gate-01.lan:8000 (the fleet docs' form) or a guard at the gate's LAN
    address failed the name check even with the certificate trusted. --tls-name adds names
    and addresses; one the kept certificate lacks is a todo (exit 1) saying how to re-issue,
    never a silent new fingerprint; a name that is neither is a usage error."""
    from ipaddress import ip_address

    from cryptography import x509

    need(shutil.which("useradd") is not None, "useradd")
    need(shutil.which("openssl") is not None, "openssl")
    root = fresh_os_root(tmp_path_factory.mktemp("tls-names") / "root")
    args = ("--root", str(root), "--pip-args", OFFLINE_PIP, "--tls")
    names = ("--tls-name", "gate-01.lan", "--tls-name", "192.168.1.50")
    first = run(checkout / "scripts" / "install", *args, *names, env=install_env())
    assert "FAIL" not in first.stdout + first.stderr, first.stdout + first.stderr
    cert_path = root / "etc/kiosk/credentials/tls_cert"
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "gate-01.lan" in san.get_values_for_type(x509.DNSName)
    assert ip_address("192.168.1.50") in san.get_values_for_type(x509.IPAddress)
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    kept = cert_path.read_bytes()
    more = run(
        checkout / "scripts" / "install", *args, *names, "--tls-name", "gate-02.lan",
        env=install_env(),
    )  # fmt: skip
    assert more.returncode == 1
    assert "gate-02.lan" in more.stdout and "todo" in more.stdout, more.stdout
    assert cert_path.read_bytes() == kept  # the fingerprint guards compare is unchanged
    bad = run(checkout / "scripts" / "install", *args, "--tls-name", "a b;rm", env=install_env())
    assert bad.returncode == 2 and "--tls-name" in bad.stderr


@pytest.mark.parametrize(
    ("state", "up"),
    [("active", True), ("activating", True), ("reloading", True), ("inactive", False),
     ("failed", False), ("", False)],
)  # fmt: skip
def test_a_unit_systemd_is_bringing_up_is_not_started_again(checkout, tmp_path, state, up):
    """A screen between two restarts is "activating": a second install must not "start" it
    (the VM walkthrough's reinstall check failed on that while Chromium crashed on a GL-less
    display)."""
    script = (checkout / "scripts" / "install").read_text()
    start = script.index("unit_up() {")
    body = script[start : script.index("\n}\n", start) + 3]
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "systemctl").write_text(f"#!/bin/sh\necho '{state}'\n[ '{state}' = active ]\n")
    (fake_bin / "systemctl").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake_bin}:{os.environ['PATH']}")
    proc = subprocess.run(
        ["bash", "-c", f"{body}\nunit_up kiosk-screen.service"], env=env, check=False
    )
    assert (proc.returncode == 0) == up


@needs_root
@pytest.mark.parametrize("cut", ["public half missing", "empty key"])
def test_an_issuing_key_a_power_cut_left_half_made_is_mended_by_the_next_install(
    installed, checkout, tmp_path, cut
):
    """A power cut or a kill while `kiosk keys new` made the issuing key: the key without its
    public half, or (unsynced) a key file of 0 bytes. Before: the next install said
    '[issuer-key] ok' and '[trust] skip: no issuer.pub yet', exit 0: the kiosk denied every
    pass it issued itself (pass_unknown_key, a forged_pass alarm each), or could not issue."""
    src, _ = installed
    # This build makes the issuing key at install: a missing one is the defect itself.
    assert (src / "var/lib/kiosk/keys/issuer.key").exists()
    root = tmp_path / "root"
    shutil.copytree(src, root, symlinks=True)
    keys, trust = root / "var/lib/kiosk/keys", root / "var/lib/kiosk/trust"
    (keys / "issuer.pub").unlink()
    (trust / "issuer.pub").unlink()
    if cut == "empty key":
        (keys / "issuer.key").write_bytes(b"")
    key_before = (keys / "issuer.key").read_bytes()
    proc = run(
        checkout / "scripts" / "install",
        "--root",
        str(root),
        "--pip-args",
        OFFLINE_PIP,
        env=install_env(),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "FAIL" not in out, out
    key = keys / "issuer.key"
    if cut == "empty key":
        assert key.read_bytes() != b"" and "[issuer-key] did:" in out
    else:
        assert key.read_bytes() == key_before  # an issuing key in use is never replaced
    derived = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout"], capture_output=True, check=True
    ).stdout
    assert (keys / "issuer.pub").read_bytes() == derived
    assert (trust / "issuer.pub").read_bytes() == derived
    uid = int(passwd_entry(root, "kiosk")[2])
    assert key.stat().st_uid == uid and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (keys / "issuer.pub").stat().st_uid == uid


@needs_root
def test_the_admin_password_is_shown_as_soon_as_it_is_made(installed):
    """The password was printed only at the very end, after the units were installed and the
    services restarted (the screen's restart waits up to ~2.5 minutes for the daemon): an
    install interrupted there (Ctrl-C on what looks like a hang, a dropped SSH session) had
    stored the account and never shown its password, and the next run said 'admin exists'."""
    root, proc = installed
    # This build makes the admin account at its first install (and says so).
    assert "[guard-admin] did" in proc.stdout, proc.stdout[-2000:]
    password = re.search(r"user: admin\s+password: (\S+)", proc.stdout).group(1)
    assert proc.stdout.index(password) < proc.stdout.index("[units] ")


@needs_root
def test_the_install_puts_what_it_wrote_on_the_card_before_it_says_done(
    installed, checkout, tmp_path
):
    """Keys, credentials, the admin's line, units and the program were left in the page
    cache when the install said 'done' (or 'reboot now'): a Pi unplugged within the next
    ~30 s (the technician moving it, a site without a clean shutdown) came up with empty
    token_pepper or guard_users files, or a cut-off program, and the daemon could not start
    until the install ran again. The install ends with sync(1), after its last write."""
    src, _ = installed
    root = tmp_path / "root"
    shutil.copytree(src, root, symlinks=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "sync-calls"
    fake = bin_dir / "sync"
    fake.write_text(f'#!/bin/sh\necho "sync $*" >>{calls}\nexec /bin/sync "$@"\n')
    fake.chmod(0o755)
    env = install_env()
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    proc = run(
        checkout / "scripts" / "install", "--root", str(root), "--pip-args", OFFLINE_PIP, env=env
    )
    out = proc.stdout + proc.stderr
    assert "FAIL" not in out, out
    assert calls.exists(), f"no sync after the install's writes:\n{out}"
    dry = run(checkout / "scripts" / "install", "--dry-run", "--root", str(root), env=env)
    assert (
        dry.returncode in (0, 1) and calls.read_text().count("sync") == 1
    )  # a dry run writes nothing


def kiosk_admin_argv(tmp_path, here, *argv: str) -> list[str]:
    """What the installed ``kiosk-admin`` hands systemd-run, run in ``here`` with ``argv``."""
    text = (ROOT / "scripts/install").read_text()
    script = text.split("kiosk_admin_script() {\n    cat <<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    admin = tmp_path / "kiosk-admin"
    admin.write_text(script + "\n")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "id").write_text("#!/bin/sh\necho 0\n")
    (stubs / "systemd-run").write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    done = subprocess.run(
        ["sh", str(admin), *argv],
        cwd=here,
        env={"PATH": f"{stubs}:/usr/bin:/bin", "PWD": str(here)},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def test_kiosk_admin_tells_the_verb_the_folder_it_was_run_in(tmp_path):
    # kiosk-admin runs the verb in /var/lib/kiosk (WorkingDirectory), so `sudo kiosk-admin
    # lists import ./x.csv` looked for /var/lib/kiosk/x.csv: it passes the folder it was run
    # in as $KIOSK_ADMIN_CWD, which the verbs take relative paths under (parsers.path_arg).
    here = tmp_path / "the operator's folder"
    here.mkdir()
    argv = kiosk_admin_argv(tmp_path, here, "lists", "import", "./x.csv")
    assert f"--setenv=KIOSK_ADMIN_CWD={here}" in argv
    assert argv[-4:] == ["/opt/kiosk/current/venv/bin/kiosk", "lists", "import", "./x.csv"]
    assert "WorkingDirectory=/var/lib/kiosk" in argv


def test_kiosk_admin_names_no_argument_in_the_units_description(tmp_path):
    # systemd-run without --description describes the transient unit by its command line, and
    # the journal's "Started run-u....service - ... kiosk person forget --name 'Li Wei'" kept
    # a resident's name beyond retention and any forget: the description is fixed.
    verb = ["person", "forget", "--name", "Li Wei", "--yes"]
    argv = kiosk_admin_argv(tmp_path, tmp_path, *verb)
    (description,) = [a for a in argv if a.startswith("--description=")]
    assert "Li Wei" not in description and "forget" not in description
    assert argv[-len(verb) :] == verb


@needs_root
def test_files_a_power_cut_left_empty_during_an_install_are_written_again(
    checkout, tmp_path_factory
):
    """A power cut before the install's closing sync can leave a file it had just created
    empty (ext4 writes a new file's data later than its name). The next run kept an empty
    kiosk.service.d/tls.conf (the daemon then had no certificate: web.tls failed at start)
    and an empty modules-load.d/kiosk-i2c.conf (no /dev/i2c-1 at boot: no thermometer),
    because it asked only whether the file existed."""
    need(shutil.which("useradd") is not None, "useradd")
    need(shutil.which("openssl") is not None, "openssl")
    root = fresh_os_root(tmp_path_factory.mktemp("cut") / "root")
    args = ("--root", str(root), "--pip-args", OFFLINE_PIP, "--tls")
    first = run(checkout / "scripts" / "install", *args, env=install_env())
    assert "FAIL" not in first.stdout + first.stderr, first.stdout + first.stderr
    dropin = root / "etc/systemd/system/kiosk.service.d/tls.conf"
    modules = root / "etc/modules-load.d/kiosk-i2c.conf"
    whole = dropin.read_text(), modules.read_text()
    for path in (dropin, modules):
        path.write_bytes(b"")
    again = run(checkout / "scripts" / "install", *args, env=install_env())
    assert "FAIL" not in again.stdout + again.stderr, again.stdout + again.stderr
    assert (dropin.read_text(), modules.read_text()) == whole


@needs_root
def test_uninstall_removes_a_unit_only_a_newer_release_brought(checkout, tmp_path):
    """Gone back to an older checkout (by hand: install.md, Going back), its uninstall removed
    only the units its own list names: a unit a newer release installed (kiosk-sync.timer, and
    its service) stayed in /etc/systemd/system, enabled, starting at every boot a program that
    was gone with /opt/kiosk. Every unit the install wrote goes, and its enable links; a unit of
    the system's own stays."""
    need(shutil.which("systemctl") is not None, "systemctl")
    root = fresh_os_root(tmp_path / "root")
    units = root / "etc/systemd/system"
    units.mkdir(parents=True, exist_ok=True)
    run_kiosk = "ExecStart=/opt/kiosk/current/venv/bin/kiosk sync\n"
    (units / "kiosk-sync.service").write_text(f"[Service]\nType=oneshot\n{run_kiosk}")
    (units / "kiosk-sync.timer").write_text(
        "[Timer]\nOnCalendar=hourly\n[Install]\nWantedBy=timers.target\n"
    )
    (units / "kiosk.service").write_text(
        f"[Service]\n{run_kiosk}[Install]\nWantedBy=multi-user.target\n"
    )
    (units / "backup.service").write_text(  # the site's own, not the kiosk's
        "[Service]\nExecStart=/usr/bin/true\n[Install]\nWantedBy=multi-user.target\n"
    )
    for unit in ("kiosk.service", "kiosk-sync.timer", "backup.service"):
        subprocess.run(["systemctl", f"--root={root}", "enable", unit], check=True)
    assert (units / "timers.target.wants/kiosk-sync.timer").is_symlink()
    (root / "var/lib/kiosk").mkdir(parents=True)
    (root / "var/lib/kiosk/kiosk.db").write_text("the log")

    proc = run(checkout / "scripts" / "uninstall", "--root", str(root))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for unit in ("kiosk.service", "kiosk-sync.timer", "kiosk-sync.service"):
        assert not (units / unit).exists(), out
    assert not (units / "timers.target.wants/kiosk-sync.timer").is_symlink(), out
    assert not (units / "multi-user.target.wants/kiosk.service").is_symlink(), out
    assert (units / "backup.service").exists()
    assert (units / "multi-user.target.wants/backup.service").is_symlink()
    assert (root / "var/lib/kiosk/kiosk.db").read_text() == "the log"  # kept unless --purge


@needs_root
def test_an_install_on_a_card_without_room_refuses_before_changing_anything(checkout, tmp_path):
    """A card with too little room for the program: the install created users, folders, udev
    rules and the config, then pip failed half-way with `No space left on device`. It refuses at
    preflight, saying how much it needs and has, and changes nothing."""
    root = fresh_os_root(tmp_path / "root")
    before = tree(root)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "df").write_text(  # 200 MB free wherever the install asks
        "#!/bin/sh\necho 'Filesystem 1024-blocks Used Available Capacity Mounted on'\n"
        "echo '/dev/mmcblk0p2 30000000 29800000 200000 99% /'\n"
    )
    (fake_bin / "df").chmod(0o755)
    env = install_env()
    env["PATH"] = f"{fake_bin}:{env['PATH']}"
    proc = run(checkout / "scripts" / "install", "--root", str(root), env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "[preflight] FAIL: not enough room" in out and "195 MB free" in out, out
    assert "[apt]" not in out and "[dirs]" not in out, out
    assert tree(root) == before


@needs_root
def test_uninstall_purge_deletes_an_event_log_the_config_keeps_elsewhere(checkout, tmp_path):
    """`--purge` said the event log was gone for good, but deleted only /var/lib/kiosk: a log the
    config keeps elsewhere (store.path on a USB SSD), its WAL and the copy an update left beside it
    stayed, with every passage's personal data. Without --purge they stay; with it they go, and
    nothing else in that folder does."""
    root = fresh_os_root(tmp_path / "root")
    (root / "etc/kiosk").mkdir()
    (root / "etc/kiosk/kiosk.toml").write_text('[store]\npath = "/srv/gate/events.db"\n')
    ssd = root / "srv/gate"
    ssd.mkdir(parents=True)
    logs = ("events.db", "events.db-wal", "events.db-shm", "events.db.before-update")
    for name in (*logs, "photos.tar"):
        (ssd / name).write_text(name)
    uninstall = checkout / "scripts" / "uninstall"
    kept = run(uninstall, "--root", str(root))
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert sorted(p.name for p in ssd.iterdir()) == sorted((*logs, "photos.tar"))
    assert "kept: /srv/gate/events.db" in kept.stdout, kept.stdout
    purged = run(uninstall, "--root", str(root), "--purge", "--yes")
    out = purged.stdout + purged.stderr
    assert purged.returncode == 0, out
    assert sorted(p.name for p in ssd.iterdir()) == ["photos.tar"], out
    assert not (root / "etc/kiosk").exists()


def _watchdog_run(tmp_path: Path, live: str, files: dict[str, str]) -> str:
    """``watchdog_dropin`` on a booted root (``tmp_path/root``) holding ``files``, systemd's
    live ``RuntimeWatchdogUSec`` being ``live``: what it did."""
    root = tmp_path / "root"
    for name, text in files.items():
        (root / name.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / name.lstrip("/")).write_text(text)
    script = (ROOT / "scripts" / "install").read_text()
    bodies = []
    for name in ("write_if_changed", "admin_watchdog", "watchdog_dropin"):
        start = script.index(f"\n{name}() {{") + 1
        bodies.append(script[start : script.index("\n}\n", start) + 3])
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    (fake_bin / "systemctl").write_text(
        f'#!/bin/sh\n[ "$1" = show ] && echo "{live}" && exit 0\necho "systemctl $*"\n'
    )
    (fake_bin / "systemctl").chmod(0o755)
    stubs = (
        f"ROOT={root}\nWATCHDOG_DROPIN={WATCHDOG_DROPIN}\nWATCHDOG_SEC=15s\n"
        'r() { echo "$ROOT$1"; }\nsystemd_running() { true; }\n'
        'act() { echo "did: $1"; shift; "$@"; }\nok() { echo "ok: $1"; }\n'
        'skip() { echo "skip: $1"; }\n'
    )
    env = dict(os.environ, PATH=f"{fake_bin}:{os.environ['PATH']}")
    proc = subprocess.run(
        ["bash", "-c", stubs + "".join(bodies) + "watchdog_dropin\n"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


OURS = (
    "# Written by scripts/install: a hung Pi is reset by its hardware watchdog (docs/wiring.md).\n"
    "[Manager]\nRuntimeWatchdogSec=15s\n"
)


@pytest.mark.parametrize(("live", "reexec"), [("15s", False), ("0", True), ("infinity", True)])
def test_a_reexec_that_failed_once_is_tried_again_by_the_next_install(tmp_path, live, reexec):
    """The drop-in written, ``daemon-reexec`` failed: the next install found the file up to
    date and never re-executed systemd, the hardware watchdog off until a reboot. It is
    re-executed while systemd's live value differs, and only then."""
    out = _watchdog_run(tmp_path, live, {WATCHDOG_DROPIN: OURS})
    assert f"ok: {WATCHDOG_DROPIN} up to date" in out
    assert ("re-execute systemd" in out) == reexec, out


def test_a_new_dropin_reexecutes_systemd(tmp_path):
    out = _watchdog_run(
        tmp_path, "0", {"/etc/systemd/system.conf": "[Manager]\n#RuntimeWatchdogSec=off\n"}
    )
    assert f"did: write {WATCHDOG_DROPIN}" in out and "re-execute systemd" in out
    assert (tmp_path / "root" / WATCHDOG_DROPIN.lstrip("/")).read_text() == OURS


@pytest.mark.parametrize(
    "where", ["/etc/systemd/system.conf", "/etc/systemd/system.conf.d/50-site.conf"]
)
def test_an_admins_own_runtime_watchdog_is_kept_and_said(tmp_path, where):
    """An admin who set RuntimeWatchdogSec (system.conf, or a drop-in of their own) keeps it:
    the install neither writes its drop-in over it nor re-executes systemd, and says so; a
    drop-in of an earlier install is removed (it would win over theirs)."""
    files = {where: "[Manager]\nRuntimeWatchdogSec=10s\n", WATCHDOG_DROPIN: OURS}
    out = _watchdog_run(tmp_path, "10s", files)
    assert "RuntimeWatchdogSec=10s" in out and where in out and "kept" in out, out
    assert "re-execute systemd" not in out and "did: write" not in out
    assert not (tmp_path / "root" / WATCHDOG_DROPIN.lstrip("/")).exists()


# --- a gate that serves HTTPS, replaced --------------------------------------------------------


def _web_tls_on(config: Path) -> None:
    text = config.read_text()
    assert "\ntls = false" in text
    config.write_text(text.replace("\ntls = false", "\ntls = true", 1))


def _self_signed(cred_dir: Path) -> bytes:
    """A certificate and key as `kiosk restore` puts them back (root's, 0600); its SPKI pin."""
    cert, key = cred_dir / "tls_cert", cred_dir / "tls_key"
    cred_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "30", "-subj", "/CN=gate-north", "-keyout", str(key),
         "-out", str(cert)],
        capture_output=True, check=True,
    )  # fmt: skip
    for path in (cert, key):
        path.chmod(0o600)
    return cert.read_bytes()


def _pin(cert_pem: bytes) -> str:
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@needs_root
def test_a_gate_restored_with_web_tls_gets_its_certificate_from_the_install_run_again(
    installed, checkout, tmp_path
):
    """operations.md's replacement (flash, scripts/install, kiosk restore) of a gate that
    served HTTPS: the restored kiosk.toml has web.tls = true and the archive's tls_cert and
    tls_key, but the install wrote the TLS drop-ins only with --tls. kiosk.service had no
    LoadCredential ('web.tls is on but the tls_cert/tls_key credentials are missing', exit 1,
    restarted every 3 s for ever) and the screen pointed at http. Run again after the restore,
    without --tls, the install hands the restored certificate over and pins it for the screen,
    and reloads and restarts the units (it is not made again: its fingerprint is trusted)."""
    need(shutil.which("openssl") is not None, "openssl")
    src, _ = installed
    root = tmp_path / "root"
    shutil.copytree(src, root, symlinks=True)
    _web_tls_on(root / "etc/kiosk/kiosk.toml")
    cert = _self_signed(root / "etc/kiosk/credentials")
    proc = run(
        checkout / "scripts" / "install", "--root", str(root), "--pip-args", OFFLINE_PIP,
        env=install_env(),
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "FAIL" not in out, out
    assert (root / "etc/kiosk/credentials/tls_cert").read_bytes() == cert
    units = root / "etc/systemd/system"
    assert (units / "kiosk.service.d/tls.conf").read_text().splitlines() == [
        "[Service]",
        "LoadCredential=tls_cert:/etc/kiosk/credentials/tls_cert",
        "LoadCredential=tls_key:/etc/kiosk/credentials/tls_key",
    ]
    screen = (units / "kiosk-screen.service.d/tls.conf").read_text()
    assert "Environment=KIOSK_SCREEN_ORIGIN=https://127.0.0.1:8000" in screen
    assert f"Environment=KIOSK_SCREEN_PIN={_pin(cert)}" in screen
    policy = json.loads((root / "etc/chromium/policies/managed/kiosk-screen.json").read_text())
    assert policy["NewTabPageLocation"] == "https://127.0.0.1:8000/kiosk"
    # A running gate reloads systemd and restarts both (kiosk.service loops on its old unit).
    assert "[units] did: write /etc/systemd/system/kiosk.service.d/tls.conf" in proc.stdout
    assert "made a new one" not in out


@needs_root
def test_a_first_install_with_a_web_tls_config_makes_its_certificate(checkout, tmp_path):
    """A fleet's prepared config with web.tls = true, installed without --tls: the config step
    (kiosk check-config --root, which refuses web.tls without the credentials) ran before the
    credentials step could make them, so the install failed there, --tls or not."""
    need(shutil.which("openssl") is not None, "openssl")
    config = tmp_path / "kiosk.toml"
    shutil.copy(checkout / "systemd" / "kiosk.toml.example", config)
    _web_tls_on(config)
    root = fresh_os_root(tmp_path / "root")
    args = ("--root", str(root), "--pip-args", OFFLINE_PIP, "--config", str(config))
    proc = run(checkout / "scripts" / "install", *args, env=install_env())
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "FAIL" not in out, out
    assert "[config] ok: valid" in proc.stdout
    cert = (root / "etc/kiosk/credentials/tls_cert").read_bytes()
    screen = (root / "etc/systemd/system/kiosk-screen.service.d/tls.conf").read_text()
    assert f"Environment=KIOSK_SCREEN_PIN={_pin(cert)}" in screen
    assert (
        "LoadCredential=tls_key:"
        in (root / "etc/systemd/system/kiosk.service.d/tls.conf").read_text()
    )
    assert "made a new one" in proc.stdout  # its fingerprint is new: said


def test_a_config_with_web_tls_and_no_certificate_gets_one_as_with_tls(checkout, tmp_path):
    """A config that says web.tls = true (an archive made without root, so without the key;
    a fleet's prepared --config) and no tls_cert/tls_key: the daemon cannot start. The install
    makes the pair as --tls does and says the fingerprint is new."""
    config = tmp_path / "kiosk.toml"
    shutil.copy(checkout / "systemd" / "kiosk.toml.example", config)
    _web_tls_on(config)
    proc = _dry_run(checkout, fresh_os_root(tmp_path / "root"), "--config", str(config))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "FAIL" not in out, out
    assert "[credentials] would: make a self-signed TLS certificate" in proc.stdout, out
    assert "[units] would: write /etc/systemd/system/kiosk.service.d/tls.conf" in proc.stdout


def _tls_config(checkout: Path, tmp_path: Path, *, tls: bool, port: int = 8000) -> Path:
    config = tmp_path / "kiosk.toml"
    shutil.copy(checkout / "systemd" / "kiosk.toml.example", config)
    if tls:
        _web_tls_on(config)
    text = config.read_text()
    config.write_text(text.replace("\nport = 8000", f"\nport = {port}", 1))
    return config


SCREEN_TLS = "/etc/systemd/system/kiosk-screen.service.d/tls.conf"
KIOSK_TLS = "/etc/systemd/system/kiosk.service.d/tls.conf"
POLICY = "/etc/chromium/policies/managed/kiosk-screen.json"


def _stale_dropins(root: Path) -> None:
    """The drop-ins an earlier run with a certificate and web.tls on left."""
    for path, line in (
        (KIOSK_TLS, "LoadCredential=tls_cert:/etc/kiosk/credentials/tls_cert"),
        (SCREEN_TLS, "Environment=KIOSK_SCREEN_ORIGIN=https://127.0.0.1:8000"),
    ):
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_text(f"[Service]\n{line}\n")


def test_a_certificate_without_web_tls_leaves_the_screen_on_http(checkout, tmp_path):
    """A gate once installed with --tls that kept web.tls = false: the daemon serves http, but
    every re-run pointed the screen at https (the certificate was there), its start check
    waited on https, failed, and restarted for ever: a dark screen. The screen's https drop-in
    follows web.tls: not written, an old one removed, the Chromium policy on http."""
    need(shutil.which("openssl") is not None, "openssl")
    root = fresh_os_root(tmp_path / "root")
    _self_signed(root / "etc/kiosk/credentials")
    _stale_dropins(root)
    config = _tls_config(checkout, tmp_path, tls=False)
    proc = _dry_run(checkout, root, "--config", str(config))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "FAIL" not in out, out
    assert f"would: write {SCREEN_TLS}" not in out and "https://" not in out, out
    assert f"[units] would: remove {SCREEN_TLS} (web.tls is off" in out, out
    assert (
        f"would: write {POLICY} (the screen's Chromium policy, new tabs on http://127.0.0.1:8000/"
        in out
    )
    assert "set web.tls = true" in out and "the screen stay on http" in out


def test_web_tls_points_the_screen_at_https_on_the_configs_port(checkout, tmp_path):
    """With web.tls on the screen's https origin was fixed at port 8000: a config with another
    web.port left the screen (and its drop-in, which sorts after an admin's override) on a port
    nothing serves. The origin takes web.port."""
    need(shutil.which("openssl") is not None, "openssl")
    root = fresh_os_root(tmp_path / "root")
    cert = _self_signed(root / "etc/kiosk/credentials")
    config = _tls_config(checkout, tmp_path, tls=True, port=8443)
    proc = _dry_run(checkout, root, "--config", str(config))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "FAIL" not in out, out
    assert f"[units] would: write {SCREEN_TLS}" in out, out
    assert "Environment=KIOSK_SCREEN_ORIGIN=https://127.0.0.1:8443" in out, out
    assert f"Environment=KIOSK_SCREEN_PIN={_pin(cert)}" in out
    assert "127.0.0.1:8000" not in out
    assert "new tabs on https://127.0.0.1:8443/kiosk" in out


def test_no_certificate_removes_the_tls_dropins_an_earlier_run_left(checkout, tmp_path):
    """The certificate removed (web.tls off): kiosk.service's old tls.conf still loaded the
    missing tls_cert/tls_key with LoadCredential=, which fails the daemon's start, and the
    screen's pointed at https. Both are removed, and said."""
    root = fresh_os_root(tmp_path / "root")
    _stale_dropins(root)
    proc = _dry_run(checkout, root, "--config", str(_tls_config(checkout, tmp_path, tls=False)))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "FAIL" not in out, out
    for path in (KIOSK_TLS, SCREEN_TLS):
        assert f"[units] would: remove {path} (no TLS certificate" in out, out
    assert "new tabs on http://127.0.0.1:8000/kiosk" in out


# --- a gate's Pi replaced: operations.md's procedure, step by step ---------------------------

GATE_UNITS = ("kiosk.service", "kiosk-screen.service", "kiosk-purge.timer")


def replacement_steps() -> list[str]:
    """operations.md's commands for replacing a gate's Pi (a dead card), in order, without
    their comments."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    start = text.index("```sh\n", text.index("**Replacing a gate's Pi**")) + len("```sh\n")
    block = text[start : text.index("```", start)]
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def unit_states(root: Path) -> dict[str, str]:
    states = {}
    for unit in GATE_UNITS:
        proc = subprocess.run(
            ["systemctl", f"--root={root}", "is-enabled", unit], capture_output=True, text=True
        )
        states[unit] = proc.stdout.strip()
    return states


@needs_root
def test_the_replaced_pis_procedure_keeps_the_gate_off_until_its_log_is_checked(
    installed, checkout, tmp_path
):
    """operations.md says the kiosk stays disabled from the restore until the log is checked,
    but its step `sudo ./scripts/install --no-start` (before the check) enabled kiosk and
    kiosk-screen again: a reboot, or the one the install itself asks for when the restored
    config needs the serial console off, started the gate on an unchecked log. And the
    nightly purge (kiosk-purge.timer) stayed on through it all, free to write the restored
    log before the forgets and the check. The documented commands, run as written on an
    installed Pi's tree: nothing of the gate enabled at the check, the office's copy deleted
    after it, everything enabled again at the end."""
    src, _ = installed
    root = tmp_path / "root"
    shutil.copytree(src, root, symlinks=True)
    assert set(unit_states(root).values()) == {"enabled"}
    checked = removed = False
    for step in replacement_steps():
        words = step.removeprefix("sudo ").split()
        if words[0] == "systemctl" and words[1] in ("enable", "disable"):
            # --now: nothing runs in a tree; the units' links are what a reboot starts.
            argv = [w for w in words[1:] if w != "--now"]
            subprocess.run(["systemctl", f"--root={root}", *argv], check=True, capture_output=True)
        elif words[0] == "systemctl":
            assert checked, f"{step}: before the log is checked"
        elif words[0] == "./scripts/install":
            proc = run(
                checkout / "scripts" / "install", "--root", str(root), "--pip-args", OFFLINE_PIP,
                *words[1:], env=install_env(),
            )  # fmt: skip
            assert proc.returncode == 0, proc.stdout + proc.stderr
        elif words[:2] == ["kiosk-admin", "verify-log"] and "--against" in words:
            assert unit_states(root) == dict.fromkeys(GATE_UNITS, "disabled"), step
            checked = True
        elif words[0] == "rm" and any(w.endswith("/office-copy.db") for w in words):
            assert checked, f"{step}: before the check"
            removed = True
    assert checked and removed
    assert set(unit_states(root).values()) == {"enabled"}


# --- the screen: kept off where the admin turned it off, --no-screen, memory ---------------------


def _installed_units(checkout: Path, root: Path, *enabled: str) -> Path:
    """The units as an earlier install left them, with only ``enabled`` enabled."""
    need(shutil.which("systemctl") is not None, "systemctl")
    units = root / "etc/systemd/system"
    units.mkdir(parents=True, exist_ok=True)
    for name in ("kiosk.service", "kiosk-screen.service", "kiosk-purge.service",
                 "kiosk-purge.timer"):  # fmt: skip
        shutil.copy(checkout / "systemd" / name, units / name)
    if enabled:
        subprocess.run(["systemctl", f"--root={root}", "enable", *enabled], check=True,
                       capture_output=True)  # fmt: skip
    return root


def test_a_re_run_keeps_a_screen_the_admin_disabled_off(checkout, tmp_path):
    """docs/memory.md: a 512 MB Zero 2 W does not run the daemon and the screen's Chromium
    both. Its admin disabled the screen; every re-install or upgrade enabled it again (and
    started it), so the next boot ran both. The admin's choice is kept, and said."""
    root = _installed_units(
        checkout, fresh_os_root(tmp_path / "root"), "kiosk.service", "kiosk-purge.timer"
    )
    proc = _dry_run(checkout, root)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "FAIL" not in out, out
    assert "[enable] ok: kiosk.service enabled" in proc.stdout, out
    assert "enable kiosk-screen.service" not in proc.stdout, out
    assert "[enable] ok: kiosk-screen.service kept disabled (the admin's choice" in proc.stdout
    assert "disable the login prompt on tty1" not in proc.stdout


def test_a_first_install_enables_the_screen(checkout, tmp_path):
    """Only an install that enabled the units before (kiosk.service enabled) reads a disabled
    screen as the admin's: a first install, or one cut off before it enabled anything,
    enables it."""
    root = _installed_units(checkout, fresh_os_root(tmp_path / "root"))
    proc = _dry_run(checkout, root)
    assert "[enable] would: enable kiosk-screen.service" in proc.stdout, proc.stdout


@pytest.mark.parametrize("enabled", [(), ("kiosk.service", "kiosk-screen.service")])
def test_no_screen_installs_without_the_screen_and_turns_one_off(checkout, tmp_path, enabled):
    """--no-screen: the screen is not enabled (one enabled before is disabled), tty1 keeps its
    login prompt, and the daemon and the purge are enabled as always."""
    root = _installed_units(checkout, fresh_os_root(tmp_path / "root"), *enabled)
    proc = _dry_run(checkout, root, "--no-screen")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "FAIL" not in out, out
    assert "enable kiosk-screen.service" not in proc.stdout.replace("disable kiosk-screen", "")
    if enabled:
        assert "[enable] would: disable kiosk-screen.service (--no-screen)" in proc.stdout, out
    else:
        assert "[enable] ok: kiosk-screen.service not enabled (--no-screen)" in proc.stdout, out
    assert "disable the login prompt on tty1" not in proc.stdout
    assert "[enable] would: enable kiosk-purge.timer" in proc.stdout


@pytest.mark.parametrize(("mem_kb", "said"), [(444_000, True), (3_900_000, False)])
def test_preflight_recommends_no_screen_on_a_pi_with_too_little_memory(
    checkout, tmp_path, mem_kb, said
):
    """A Zero 2 W (512 MB; MemTotal ~430 MB) was given the screen like a 4 GB Pi: preflight
    now says it does not run both and recommends --no-screen (not with it given)."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemTotal:       {mem_kb} kB\nMemFree:          1000 kB\n")
    env = dict(os.environ, KIOSK_MEMINFO=str(meminfo))
    root = fresh_os_root(tmp_path / "root")
    proc = _dry_run(checkout, root, env=env)
    notes = [x for x in lines_of(proc.stdout, "preflight") if "--no-screen" in x]
    assert len(notes) == (1 if said else 0), proc.stdout
    if said:
        assert "433 MB" in notes[0] and "memory.md" in notes[0]
        quiet = _dry_run(checkout, root, "--no-screen", env=env)
        assert not [x for x in lines_of(quiet.stdout, "preflight") if "--no-screen" in x]


def _step_dirs(checkout: Path, root: Path) -> str:
    body = (
        'STEP=dirs\nr() { echo "$FAKE_ROOT$1"; }\n'
        "ETC=/etc/kiosk CRED_DIR=/etc/kiosk/credentials PREFIX=/opt/kiosk DATA=/var/lib/kiosk\n"
        "KIOSK_USER=root\nstep_dirs\n"
    )
    env = dict(os.environ, FAKE_ROOT=str(root))
    proc = run_installer_functions(checkout / "scripts" / "install", (), body, env)
    return proc.stdout + proc.stderr


@needs_root
def test_install_makes_sqlites_temp_folder_and_follows_no_link_there(checkout, tmp_path):
    """The units point SQLite at /var/lib/kiosk/sqlite-tmp and the ``kiosk`` command uses it
    only when it is there (it makes none): the installer makes it, the service account's,
    0700; a symlink planted there (the data folder is the service user's) is refused, its
    target left as it was."""
    out = _step_dirs(checkout, tmp_path)
    made = (tmp_path / "var/lib/kiosk/sqlite-tmp").lstat()
    assert stat.S_ISDIR(made.st_mode) and stat.S_IMODE(made.st_mode) == 0o700, out
    linked = _service_root(tmp_path / "linked")
    target = linked / "target"
    (linked / "var/lib/kiosk/sqlite-tmp").symlink_to(target)
    out = _installer_body(linked, "STEP=dirs\nstep_dirs || true")
    assert "[dirs] FAIL" in out and "sqlite-tmp is a symbolic link" in out, out
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert (linked / "var/lib/kiosk/sqlite-tmp").is_symlink()


# --- the service user's folder: no link planted there is followed by root ---------------------

#: The service user's uid in the roots below: the data folder is its, as on a Pi.
SERVICE_UID = 4321


def _service_root(root: Path) -> Path:
    """A target root whose /var/lib/kiosk belongs to the service user (uid SERVICE_UID), and a
    folder of root's own outside it (``target``) that a planted link points at."""
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(f"kiosk:x:{SERVICE_UID}:{SERVICE_UID}::/:/bin/false\n")
    data = root / "var/lib/kiosk"
    data.mkdir(parents=True)
    os.chown(data, SERVICE_UID, SERVICE_UID)
    data.chmod(0o750)
    target = root / "target"
    target.mkdir()
    target.chmod(0o755)
    (target / "issuer.key").write_text("root's own\n")
    (target / "issuer.key").chmod(0o600)
    return root


def _installer_body(root: Path, body: str, env: dict[str, str] | None = None) -> str:
    """``body`` run after the installer's functions on ``root`` as the target root."""
    prelude = (
        'r() { echo "$FAKE_ROOT$1"; }\n'
        "ETC=/etc/kiosk CRED_DIR=/etc/kiosk/credentials PREFIX=/opt/kiosk DATA=/var/lib/kiosk\n"
        "KIOSK_USER=kiosk\n"
    )
    env = dict(env or os.environ, FAKE_ROOT=str(root))
    tail = '\nprintf "FAILED: %s\\n" "${FAILED[@]}"\n'
    proc = run_installer_functions(ROOT / "scripts" / "install", (), prelude + body + tail, env)
    return proc.stdout + proc.stderr


def _owner_mode(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


@needs_root
@pytest.mark.parametrize("name", ["keys", "trust", "sqlite-tmp"])
def test_a_link_planted_in_the_data_folder_leaves_its_target_as_it_was(tmp_path, name):
    """The installer runs as root; /var/lib/kiosk is the service user's. Its folders were
    checked with `[ -d ]` and fixed with chmod and chown, which follow a link: a service user
    that planted keys -> /etc had the next install give /etc to it (0700, kiosk). The link is
    refused, named, and its target keeps its mode and owner."""
    root = _service_root(tmp_path)
    target = root / "target"
    (root / "var/lib/kiosk" / name).symlink_to(target)
    before = _owner_mode(target)
    out = _installer_body(root, "STEP=dirs\nstep_dirs || true")
    assert _owner_mode(target) == before, out
    assert f"[dirs] FAIL: {root}/var/lib/kiosk/{name} is a symbolic link" in out, out
    assert (root / "var/lib/kiosk" / name).is_symlink()


@needs_root
@pytest.mark.parametrize("planted", ["keys", "keys/issuer.key"])
def test_the_issuing_keys_mode_is_set_through_no_link(tmp_path, planted):
    """`ensure_file_mode` stat'ed, chmod'ed and chown'ed /var/lib/kiosk/keys/issuer.key through
    a link at either name (the keys folder, the key): a root-only file it pointed at became the
    service user's. Refused now, the file left root's, 0600."""
    root = _service_root(tmp_path)
    keys = root / "var/lib/kiosk/keys"
    if planted == "keys":
        keys.symlink_to(root / "target")
    else:
        keys.mkdir()
        os.chown(keys, SERVICE_UID, SERVICE_UID)
        (keys / "issuer.key").symlink_to(root / "target/issuer.key")
    victim = root / "target/issuer.key"
    before = _owner_mode(victim)
    out = _installer_body(
        root, 'STEP=issuer-key\nensure_file_mode "$DATA/keys/issuer.key" 0600 kiosk || true'
    )
    assert _owner_mode(victim) == before == (0, 0, 0o600), out
    assert "[issuer-key] FAIL: " in out and "symbolic link" in out, out


@needs_root
def test_trusting_the_issuer_copies_no_file_a_link_points_at(tmp_path):
    """The trust step copied keys/issuer.pub into trust/ as the service user's with `install`,
    which reads through a link: keys/issuer.pub -> a root-only file put that file's content in
    the service user's hands. Refused now; nothing is written into trust/."""
    root = _service_root(tmp_path)
    keys, trust = root / "var/lib/kiosk/keys", root / "var/lib/kiosk/trust"
    for folder in (keys, trust):
        folder.mkdir()
        os.chown(folder, SERVICE_UID, SERVICE_UID)
    (keys / "issuer.pub").symlink_to(root / "target/issuer.key")
    out = _installer_body(root, "STEP=trust\nstep_trust || true")
    assert list(trust.iterdir()) == [], out
    assert "[trust] FAIL: " in out and "symbolic link" in out, out


@needs_root
def test_the_issuers_public_half_is_written_through_no_link(tmp_path):
    """A key without its public half had it made again as root into keys/issuer.pub.new with a
    shell redirection, then chmod'ed and chown'ed: a link planted under that name had root write
    the file it pointed at and give it to the service user. Now the public half is written
    beside it under a name opened with O_EXCL and O_NOFOLLOW, and renamed into place."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    root = _service_root(tmp_path)
    keys = root / "var/lib/kiosk/keys"
    keys.mkdir()
    os.chown(keys, SERVICE_UID, SERVICE_UID)
    private = Ed25519PrivateKey.generate()
    key = keys / "issuer.key"
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chown(key, SERVICE_UID, SERVICE_UID)
    victim = root / "target/issuer.key"
    for name in ("issuer.pub.new", ".issuer.pub.install-new"):
        (keys / name).symlink_to(victim)
    venv = tmp_path / "venv/bin"
    venv.mkdir(parents=True)
    (venv / "python").symlink_to(sys.executable)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    body = (
        f'installed_venv() {{ echo "{venv.parent}"; }}\n'
        'STEP=issuer-key\nissuer_pub "$(r "$DATA/keys")"'
    )
    out = _installer_body(root, body, env)
    assert victim.read_text() == "root's own\n" and _owner_mode(victim) == (0, 0, 0o600), out
    pub = keys / "issuer.pub"
    assert not pub.is_symlink() and _owner_mode(pub) == (SERVICE_UID, SERVICE_UID, 0o644), out
    assert pub.read_bytes() == private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@needs_root
def test_the_event_logs_copy_gives_no_linked_file_to_the_service_user(tmp_path):
    """Before an update the event log is copied as root, and its -wal and -shm given back to
    the log's owner with chown, which follows a link: kiosk.db-wal -> a root-only file made it
    the service user's. Refused now, before SQLite opens anything; the file is left as it was."""
    import sqlite3

    root = _service_root(tmp_path)
    log = root / "var/lib/kiosk/kiosk.db"
    with sqlite3.connect(log) as conn:
        conn.execute("CREATE TABLE events (seq INTEGER)")
        conn.execute("CREATE TABLE audit (seq INTEGER)")
    conn.close()
    os.chown(log, SERVICE_UID, SERVICE_UID)
    victim = root / "target/issuer.key"
    (root / "var/lib/kiosk/kiosk.db-wal").symlink_to(victim)
    body = f'PY={sys.executable}\nSTEP=start\nlog_copy_tool keep "{log}" "{log}.before-update"'
    out = _installer_body(root, body)
    assert _owner_mode(victim) == (0, 0, 0o600), out
    assert "symbolic link" in out and not (log.parent / "kiosk.db.before-update").exists(), out


def _data_on_another_disk(root: Path) -> Path:
    """/var/lib/kiosk made by root a link to the service user's folder on "another disk"
    (/mnt/ssd/kiosk), as an admin puts the data on a USB SSD. The folder it leads to."""
    data = root / "var/lib/kiosk"
    disk = root / "mnt/ssd/kiosk"
    disk.parent.mkdir(parents=True)
    data.rename(disk)
    data.symlink_to(disk)
    return disk


@needs_root
def test_a_data_folder_root_linked_to_another_disk_is_followed(tmp_path):
    """A link whose folder only root can change could only be root's: /var/lib/kiosk ->
    /mnt/ssd/kiosk (the data on a USB SSD) was refused as a planted link, and the install
    failed. It is followed: the folders are made there, the service user's, the link kept."""
    root = _service_root(tmp_path)
    disk = _data_on_another_disk(root)
    out = _installer_body(root, "STEP=dirs\nstep_dirs || true")
    assert "] FAIL" not in out and out.rstrip().endswith("FAILED:"), out
    assert (root / "var/lib/kiosk").is_symlink()
    assert _owner_mode(disk) == (SERVICE_UID, SERVICE_UID, 0o750), out
    for name, mode in (("keys", 0o700), ("trust", 0o750), ("sqlite-tmp", 0o700)):
        assert _owner_mode(disk / name) == (SERVICE_UID, SERVICE_UID, mode), out


@needs_root
def test_a_link_planted_in_a_data_folder_on_another_disk_is_still_refused(tmp_path):
    """Root's link to the data folder is followed; one the service user planted inside the
    folder it leads to (keys -> a root folder) is not: refused, its target left as it was."""
    root = _service_root(tmp_path)
    disk = _data_on_another_disk(root)
    (disk / "keys").symlink_to(root / "target")
    before = _owner_mode(root / "target")
    out = _installer_body(root, "STEP=dirs\nstep_dirs || true")
    assert _owner_mode(root / "target") == before, out
    assert f"[dirs] FAIL: {root}/var/lib/kiosk/keys is a symbolic link" in out, out


@needs_root
def test_a_root_link_to_a_disk_not_mounted_makes_nothing_there(tmp_path):
    """/var/lib/kiosk -> /mnt/ssd/kiosk with the disk not mounted: the data folder is not made
    again on the SD card under the mount point; the install says why and fails."""
    root = _service_root(tmp_path)
    disk = _data_on_another_disk(root)
    disk.rmdir()
    out = _installer_body(root, "STEP=dirs\nstep_dirs || true")
    assert not disk.exists(), out
    assert "/var/lib/kiosk is a symbolic link to" in out and "which is not there" in out, out
