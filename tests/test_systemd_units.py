"""The systemd units under systemd/: systemd's own checker accepts them, and they carry what
issue #9 asks for (notify + watchdog, restart, hardening with the devices the drivers need,
credentials, the Chromium kiosk on tty1, the daily purge).

``systemd-analyze verify`` refuses a unit whose ExecStart binary is missing, and the binaries
(/opt/kiosk/current/venv/bin/kiosk, cage) exist only on an installed Pi. So it runs on copies whose
missing executables are replaced by a stub in a temp dir; everything else is verbatim. Unknown
keys are only warnings for systemd, so any diagnostic line about our units fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from support import need

from kiosk.config import load_config

ROOT = Path(__file__).resolve().parent.parent
UNIT_DIR = ROOT / "systemd"
UNITS = ("kiosk.service", "kiosk-screen.service", "kiosk-purge.service", "kiosk-purge.timer")
EXEC_KEYS = ("ExecStart", "ExecStartPre", "ExecStartPost", "ExecStop", "ExecStopPost")


@pytest.fixture
def systemd_analyze() -> None:
    need(shutil.which("systemd-analyze") is not None, "systemd-analyze (systemd)")


needs_systemd = pytest.mark.usefixtures("systemd_analyze")


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections to (key, value) lists; keys repeat in systemd units, so no dict of keys."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"assignment outside a section: {line}"
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def one(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> str:
    found = values(unit, section, key)
    assert len(found) == 1, f"[{section}] {key}= expected once, found {found}"
    return found[0]


def load(name: str) -> dict[str, list[tuple[str, str]]]:
    return parse_unit((UNIT_DIR / name).read_text(encoding="utf-8"))


def stubbed_copies(dest: Path, overrides: dict[str, str] | None = None) -> list[str]:
    """Copy the units to dest with missing Exec binaries pointed at a stub; returns the
    executables replaced. ``overrides`` replaces a unit's text (to prove errors are caught)."""
    stub = dest / "stub-bin"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    replaced = []
    for name in UNITS:
        text = (overrides or {}).get(name) or (UNIT_DIR / name).read_text(encoding="utf-8")
        lines = []
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() in EXEC_KEYS:
                # Exec prefixes (-, @, :, +, !) come before the path.
                prefix = re.match(r"[-@:+!]*", value.strip()).group(0)
                exe, _, args = value.strip()[len(prefix) :].partition(" ")
                if not os.path.exists(exe):
                    replaced.append(exe)
                    line = f"{key}={prefix}{stub} {args}".rstrip()
            lines.append(line)
        (dest / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return replaced


def verify(dest: Path) -> tuple[int, str]:
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(dest / n) for n in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER=""),
    )
    return proc.returncode, proc.stdout + proc.stderr


def diagnostics_about_our_units(output: str) -> list[str]:
    return [line for line in output.splitlines() if any(n in line for n in UNITS)]


@needs_systemd
def test_systemd_analyze_verify_accepts_all_units(tmp_path):
    replaced = stubbed_copies(tmp_path)
    # Only the installed-Pi binaries are stubbed, never a system one we rely on being there.
    assert set(replaced) <= {"/opt/kiosk/current/venv/bin/kiosk", "/usr/bin/cage", "/usr/bin/curl"}
    code, output = verify(tmp_path)
    assert code == 0, output
    assert diagnostics_about_our_units(output) == [], output


@needs_systemd
@pytest.mark.parametrize(
    ("unit", "old", "new"),
    [
        ("kiosk.service", "Type=notify", "Type=notfy"),
        ("kiosk.service", "WatchdogSec=30", "WatchdogSek=30"),
        ("kiosk-purge.timer", "OnCalendar=*-*-* 03:15:00", "OnCalendar=nightly at three"),
        ("kiosk.service", "DevicePolicy=closed", "DevicePolicy=shut"),
        ("kiosk-screen.service", "TTYPath=/dev/tty1", "TTYPath=tty one"),
    ],
)
def test_verify_as_run_here_catches_a_broken_unit(tmp_path, unit, old, new):
    text = (UNIT_DIR / unit).read_text(encoding="utf-8")
    assert old in text
    stubbed_copies(tmp_path, {unit: text.replace(old, new)})
    code, output = verify(tmp_path)
    assert code != 0 or diagnostics_about_our_units(output), output


def test_daemon_is_notify_with_watchdog_and_restart():
    unit = load("kiosk.service")
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    assert int(one(unit, "Service", "WatchdogSec")) >= 10
    assert one(unit, "Service", "Restart") == "on-failure"
    assert one(unit, "Unit", "StartLimitIntervalSec") == "0"
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_daemon_runs_as_kiosk_with_installed_paths():
    unit = load("kiosk.service")
    assert one(unit, "Service", "User") == "kiosk"
    exec_start = one(unit, "Service", "ExecStart").split()
    assert exec_start[:2] == ["/opt/kiosk/current/venv/bin/kiosk", "run"]
    assert exec_start[exec_start.index("--config") + 1] == "/etc/kiosk/kiosk.toml"
    assert exec_start[exec_start.index("--data") + 1] == "/var/lib/kiosk"
    env = values(unit, "Service", "Environment")
    assert "KIOSK_DATA=/var/lib/kiosk" in env
    assert "PYTHONFAULTHANDLER=1" in env  # a watchdog abort dumps where the loop hung


def test_daemon_hardening_keeps_the_devices_visible():
    unit = load("kiosk.service")
    assert one(unit, "Service", "ProtectSystem") == "strict"
    assert one(unit, "Service", "ReadWritePaths") == "/var/lib/kiosk"
    assert one(unit, "Service", "NoNewPrivileges") == "yes"
    assert one(unit, "Service", "DevicePolicy") == "closed"
    # PrivateDevices= would hide /dev/i2c-1, /dev/ttyUSB0 and /dev/video0 from the daemon.
    assert values(unit, "Service", "PrivateDevices") == []
    allowed = {v.split()[0] for v in values(unit, "Service", "DeviceAllow")}
    for needed in ("char-i2c", "char-ttyUSB", "char-ttyACM", "char-video4linux", "char-gpiochip"):
        assert needed in allowed
    # A keyboard-mode scanner's /dev/input/event* (major 13, "input"): read and grabbed, never
    # written (a write would type into the device: its LEDs).
    assert "char-input r" in values(unit, "Service", "DeviceAllow")
    assert one(unit, "Service", "CapabilityBoundingSet") == ""


def test_secrets_come_through_load_credential():
    unit = load("kiosk.service")
    creds = dict(v.split(":", 1) for v in values(unit, "Service", "LoadCredential"))
    assert creds == {
        name: f"/etc/kiosk/credentials/{name}"
        for name in ("token_pepper", "session_key", "guard_users")
    }
    assert not any(
        "KIOSK_TOKEN_PEPPER" in v or "KIOSK_SESSION_KEY" in v
        for v in values(unit, "Service", "Environment")
    )


def test_screen_is_chromium_kiosk_under_cage_on_tty1():
    unit = load("kiosk-screen.service")
    assert one(unit, "Service", "PAMName") == "login"
    assert one(unit, "Service", "TTYPath") == "/dev/tty1"
    assert one(unit, "Unit", "Conflicts") == "getty@tty1.service"
    assert one(unit, "Service", "Restart") == "always"
    argv = one(unit, "Service", "ExecStart").split()
    assert argv[0] == "/usr/bin/cage"
    browser = argv[argv.index("--") + 1 :]
    assert browser[0] == "/opt/kiosk/bin/chromium"
    for flag in (
        "--kiosk",
        "--noerrdialogs",
        # Fingers only tap: no pinch zoom, no swipe back (the page's touch-action too).
        "--disable-pinch",
        "--overscroll-history-navigation=0",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--check-for-update-interval=31536000",
        "--app=${KIOSK_SCREEN_ORIGIN}/kiosk",
        "--ignore-certificate-errors-spki-list=${KIOSK_SCREEN_PIN}",
    ):
        assert flag in browser
    # The daemon's own address over plain HTTP unless install --tls pins a certificate.
    environment = values(unit, "Service", "Environment")
    assert "KIOSK_SCREEN_ORIGIN=http://127.0.0.1:8000" in environment
    assert "KIOSK_SCREEN_PIN=" in environment
    assert "kiosk.service" in one(unit, "Unit", "Wants").split()


def screen_browser_flags() -> list[str]:
    """The switches the screen unit gives Chromium (after cage's ``--``)."""
    argv = one(load("kiosk-screen.service"), "Service", "ExecStart").split()
    return argv[argv.index("--") + 2 :]


def test_the_screen_sounds_after_a_boot_without_anyone_tapping():
    # Chromium keeps audio off until a first touch, so after every boot, power cut or restart
    # of the screen a pass chimed, a deny buzzed and the result was spoken to nobody until a
    # resident happened to tap "sound on" (the docs said to add the switch; the unit had not).
    assert "--autoplay-policy=no-user-gesture-required" in screen_browser_flags()


def test_the_screen_after_a_power_cut_shows_no_restore_bubble():
    # A power cut is an unclean exit for Chromium: it came back with "Restore pages?
    # Chromium didn't shut down correctly" over the kiosk, until someone closed it.
    assert "--hide-crash-restore-bubble" in screen_browser_flags()


#: Where Debian and Raspberry Pi OS keep the Chromium binary (/usr/bin/chromium is a script).
CHROMIUM_BINARIES = (
    Path("/usr/lib/chromium/chromium"),
    Path("/usr/lib/chromium-browser/chromium-browser"),
)


@pytest.mark.slow
def test_every_switch_the_screen_gives_chromium_is_one_chromium_knows():
    # Chromium ignores a switch it does not know, without a word: --disable-translate was
    # removed years ago, so the Chinese screen on a Pi set to English was offered a
    # translation bubble over the result. A switch's name is in the binary as a C string.
    binary = next((b for b in CHROMIUM_BINARIES if b.is_file()), None)
    need(binary is not None, "Chromium")
    assert binary is not None
    import mmap

    names = {flag[2:].split("=", 1)[0] for flag in screen_browser_flags()}
    with binary.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as image:
        unknown = sorted(n for n in names if image.find(b"\0" + n.encode() + b"\0") < 0)
    assert unknown == [], f"{binary} does not know: {unknown}"
    assert "--disable-features=Translate" in screen_browser_flags()


def test_purge_timer_runs_the_purge_daily_and_catches_up():
    timer = load("kiosk-purge.timer")
    assert one(timer, "Timer", "Unit") == "kiosk-purge.service"
    assert one(timer, "Timer", "Persistent") == "true"
    assert re.fullmatch(r"\*-\*-\* \d\d:\d\d:\d\d", one(timer, "Timer", "OnCalendar"))
    assert one(timer, "Install", "WantedBy") == "timers.target"
    service = load("kiosk-purge.service")
    assert one(service, "Service", "Type") == "oneshot"
    assert one(service, "Service", "User") == "kiosk"
    argv = one(service, "Service", "ExecStart").split()
    assert argv[:2] == ["/opt/kiosk/current/venv/bin/kiosk", "purge"]
    assert one(service, "Service", "ProtectSystem") == "strict"


def test_production_config_example_is_valid_and_production_shaped():
    cfg = load_config(UNIT_DIR / "kiosk.toml.example")
    assert cfg.thermometer.driver.type == "mlx90614"
    assert cfg.thermometer.driver.bus == 1
    assert [s.type for s in cfg.readers.sources] == ["camera"]
    assert cfg.gate.driver.type == "serial_relay"
    assert cfg.web.docs_enabled is False
    assert cfg.web.host == "0.0.0.0"
    assert cfg.web.port == 8000  # the screen unit's URL


def test_daemon_and_lgpio_get_writable_working_directories():
    """gpiozero's lgpio factory makes its notification pipes in $LG_WD or the working
    directory; with none, / is read-only under ProtectSystem=strict (BadPinFactory)."""
    unit = load("kiosk.service")
    writable = set(values(unit, "Service", "ReadWritePaths"))
    writable |= {f"/var/lib/{d}" for d in values(unit, "Service", "StateDirectory")}
    writable |= {f"/run/{d}" for d in values(unit, "Service", "RuntimeDirectory")}
    workdir = one(unit, "Service", "WorkingDirectory")
    lg_wd = [
        v.split("=", 1)[1] for v in values(unit, "Service", "Environment") if v.startswith("LG_WD=")
    ]
    assert workdir in writable
    assert len(lg_wd) == 1 and lg_wd[0] in writable


def test_daemon_starts_after_the_usb_serial_modules_are_loaded():
    unit = load("kiosk.service")
    after = " ".join(values(unit, "Unit", "After")).split()
    assert "systemd-modules-load.service" in after


def test_screen_browser_runs_as_its_own_user_without_the_daemons_data():
    """Chromium as the daemon's user could read the event log and keys/issuer.key."""
    screen, daemon = load("kiosk-screen.service"), load("kiosk.service")
    assert one(screen, "Service", "User") == "kiosk-screen" != one(daemon, "Service", "User")
    hidden = " ".join(values(screen, "Service", "InaccessiblePaths")).replace("-", "").split()
    assert "/var/lib/kiosk" in hidden and "/etc/kiosk" in hidden


def test_the_screens_browser_profile_lives_in_ram_not_on_the_sd_card():
    # Chromium's profile (cookies, cache, preferences, its "exited cleanly" mark) was on the
    # SD card: a power cut mid-write left it corrupt ("profile could not be opened", restore
    # bubbles, a zoom kept for the site) on an unattended screen, for good. It is now in the
    # unit's runtime directory, a tmpfs under /run, made fresh at every start of the screen
    # and gone at its stop; nothing of the browser's is written to the card.
    unit = load("kiosk-screen.service")
    runtime = "/run/" + one(unit, "Service", "RuntimeDirectory")
    assert one(unit, "Service", "RuntimeDirectoryMode") == "0700"
    assert values(unit, "Service", "RuntimeDirectoryPreserve") in ([], ["no"])
    assert values(unit, "Service", "StateDirectory") == []
    flags = dict(f[2:].split("=", 1) for f in screen_browser_flags() if "=" in f)
    assert flags["user-data-dir"].startswith(runtime + "/")
    environment = dict(v.split("=", 1) for v in values(unit, "Service", "Environment"))
    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        assert environment[name] == runtime or environment[name].startswith(runtime + "/")
    # RAM is small on a Pi (/run is a fifth of it): the cache is bounded.
    assert 0 < int(flags["disk-cache-size"]) <= 32 * 1024 * 1024


def test_a_config_error_stops_the_daemon_and_a_crash_restarts_it(tmp_path):
    """An invalid config made systemd restart the daemon every 3 s forever (Restart=on-failure
    with StartLimitIntervalSec=0): journal and CPU churn on the card, the one line saying what
    is wrong scrolled away. ``kiosk run`` exits 2 for a config error (docs/cli.md); the unit
    names that status in RestartPreventExitStatus=, so the unit stops as failed with the error
    in ``systemctl status``, while a crash or a start failure (exit 1) still restarts."""
    from checkpoint.cli import main

    unit = load("kiosk.service")
    prevented = " ".join(values(unit, "Service", "RestartPreventExitStatus")).split()
    bad = tmp_path / "kiosk.toml"
    bad.write_text('[site]\nkiosk_id = "gate-1"\nbogus = 1\n', encoding="utf-8")
    code = main(["run", "--config", str(bad), "--data", str(tmp_path / "data")])
    assert code == 2
    assert str(code) in prevented
    assert not (tmp_path / "data").exists()  # refused before anything was made
    # A crash (an uncaught exception: 1), a part that cannot start (1), the watchdog's
    # SIGABRT and an out-of-memory kill (signals) still restart: only 2 is named.
    assert prevented == ["2"]
    assert one(unit, "Service", "Restart") == "on-failure"


def _exposure(unit: Path) -> float:
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_COLORS="0"),
    )
    found = re.search(rf"Overall exposure level for {re.escape(unit.name)}: ([0-9.]+)", proc.stdout)
    assert found, proc.stdout + proc.stderr
    return float(found.group(1))


@needs_systemd
def test_the_screen_is_sandboxed_as_far_as_chromium_lets_it(tmp_path):
    """kiosk-screen.service scored 9.2 UNSAFE in `systemd-analyze security` (kiosk.service
    1.9): a page that got out of Chromium's own sandbox had the file system to write, the
    network, the kernel's tunables and modules. It is now held but for what Chromium's sandbox
    (user namespaces), V8 (executable memory), cage (devices, the session's /run/user) and
    the screen's sound need."""
    shutil.copy(UNIT_DIR / "kiosk-screen.service", tmp_path / "kiosk-screen.service")
    assert _exposure(tmp_path / "kiosk-screen.service") <= 5.0
    unit = load("kiosk-screen.service")
    assert one(unit, "Service", "ProtectSystem") == "strict"
    assert "/run/user" in one(unit, "Service", "ReadWritePaths")  # cage's Wayland socket
    for key in ("RestrictNamespaces", "PrivateUsers", "MemoryDenyWriteExecute", "ProtectHome",
                "PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock",
                "RestrictRealtime", "SystemCallFilter"):  # fmt: skip
        assert values(unit, "Service", key) == [], key
    assert values(unit, "Service", "IPAddressAllow") == ["localhost"]
