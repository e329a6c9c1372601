"""A data dir in RAM (Raspberry Pi OS's "Overlay File System", a tmpfs or ramfs) loses the
event log at every reboot, silently. The daemon reads the data dir's file system at start
(``checkpoint.volume``, from /proc/self/mountinfo) and says so: the log line, ``/api/v1/health``
(``data_volume``) and the guard's devices page, in both languages."""

from __future__ import annotations

import html
import logging
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from guard_support import console_fixtures
from support import tiny_tmpfs

from checkpoint.volume import data_volume, parse_mountinfo, warn_if_volatile
from kiosk.volume import DataVolume
from ui import i18n

clock, core, app, alice, admin = console_fixtures(datetime(2026, 2, 12, 1, 0, tzinfo=UTC))

#: A Pi with raspi-config's Overlay File System (overlayroot): / is an overlay whose writes go
#: to a tmpfs; the card's root is mounted read-only below it.
OVERLAYROOT = (
    (
        "22 1 0:21 / / rw,relatime shared:1 - overlay overlayroot rw,lowerdir=/media/root-ro,"
        "upperdir=/media/root-rw/overlay,workdir=/media/root-rw/overlay-workdir/_\n"
    )
    + """\
23 22 179:2 / /media/root-ro ro,relatime shared:2 - ext4 /dev/mmcblk0p2 ro
24 22 0:20 / /media/root-rw rw,relatime shared:3 - tmpfs tmpfs-root rw,size=1944320k
25 22 179:1 / /boot/firmware rw,relatime shared:4 - vfat /dev/mmcblk0p1 rw
"""
)
#: A Pi as installed: / on the card, /run and /tmp in RAM.
CARD = """\
21 1 179:2 / / rw,noatime shared:1 - ext4 /dev/mmcblk0p2 rw
26 21 0:25 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,size=388888k,mode=755
27 21 0:26 / /tmp rw,nosuid,nodev shared:6 - tmpfs tmpfs rw
28 21 0:27 / /var/lib/kiosk\\040data rw,relatime shared:7 - ramfs ramfs rw
29 21 0:28 / /var/lib/kiosk2 rw,relatime shared:8 - tmpfs tmpfs rw
"""


def volume(tmp_path, text: str, data: str, upper_dirs=()) -> DataVolume | None:
    table = tmp_path / "mountinfo"
    table.write_text(text)
    return data_volume(Path(data), table)


@pytest.mark.parametrize(
    ("data", "fs_type", "point", "volatile"),
    [
        ("/var/lib/kiosk", "ext4", "/", False),  # not /var/lib/kiosk2 nor "kiosk data"
        ("/var/lib/kiosk data/sub", "ramfs", "/var/lib/kiosk data", True),  # \040 is a space
        ("/var/lib/kiosk2", "tmpfs", "/var/lib/kiosk2", True),
        ("/tmp/kiosk", "tmpfs", "/tmp", True),
        ("/run", "tmpfs", "/run", True),
    ],
)
def test_the_data_dirs_file_system_is_the_deepest_mount_above_it(
    tmp_path, data, fs_type, point, volatile
):
    assert volume(tmp_path, CARD, data) == DataVolume(fs_type, point, volatile)


def test_raspi_configs_overlay_file_system_is_ram(tmp_path, monkeypatch):
    monkeypatch.setattr("os.path.isdir", lambda p: p == "/media/root-rw/overlay")
    found = volume(tmp_path, OVERLAYROOT, "/var/lib/kiosk")
    assert found == DataVolume("overlay", "/", True, upper_type="tmpfs")
    persistent = OVERLAYROOT.replace("- tmpfs tmpfs-root", "- ext4 /dev/sda1")
    assert volume(tmp_path, persistent, "/var/lib/kiosk") == DataVolume(
        "overlay", "/", False, upper_type="ext4"
    )


def test_an_overlay_whose_upper_layer_is_not_found_counts_as_lost(tmp_path):
    """A container's overlay (its upper layer on the host, gone with the container)."""
    docker = (
        "500 400 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/A,"
        "upperdir=/var/lib/docker/overlay2/abc/diff,workdir=/var/lib/docker/overlay2/abc/work\n"
    )
    assert volume(tmp_path, docker, "/var/lib/kiosk") == DataVolume("overlay", "/", True)


def test_an_unreadable_or_odd_mount_table_is_no_answer_and_no_crash(tmp_path):
    assert data_volume(Path("/var/lib/kiosk"), tmp_path / "missing") is None
    assert volume(tmp_path, "garbage\n1 2 3\n\n", "/var/lib/kiosk") is None
    assert parse_mountinfo("x - y\n") == []


def test_a_real_tmpfs_is_found_through_the_kernels_mount_table(tmp_path):
    with tiny_tmpfs(tmp_path / "ram") as ram:
        (ram / "data").mkdir()
        found = data_volume(ram / "data")
    assert found is not None and found.fs_type == "tmpfs" and found.volatile
    assert found.mount_point == str(ram.resolve())


def test_a_data_dir_in_ram_is_one_warning_line_naming_no_one(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    warn_if_volatile(DataVolume("ext4", "/", False), tmp_path)
    assert caplog.records == []
    warn_if_volatile(DataVolume("overlay", "/", True, upper_type="tmpfs"), tmp_path)
    [record] = caplog.records
    assert "in RAM (overlay on tmpfs)" in record.getMessage()
    assert "lost at every reboot" in record.getMessage()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_health_and_the_guards_devices_page_say_the_data_dir_is_in_ram(core, app, admin, lang):
    core.data_volume = DataVolume("overlay", "/", True, upper_type="tmpfs")
    assert core.health()["data_volume"] == {
        "fs_type": "overlay",
        "mount_point": "/",
        "volatile": True,
        "upper_type": "tmpfs",
    }
    rows = admin.get(f"/guard/api/health?lang={lang}").json()["rows"]
    [row] = [r for r in rows if r["device"] == i18n.t(lang, "device.data_volume")]
    assert row["state"] == "degraded"
    assert row["detail"] == i18n.t(lang, "health.volatile", fs="overlay (tmpfs)")
    page = admin.get(f"/guard/health?lang={lang}").text
    assert i18n.t(lang, "health.volatile", fs="overlay (tmpfs)") in html.unescape(page)
    core.data_volume = DataVolume("ext4", "/", False)
    rows = admin.get(f"/guard/api/health?lang={lang}").json()["rows"]
    [row] = [r for r in rows if r["device"] == i18n.t(lang, "device.data_volume")]
    assert (row["state"], row["detail"]) == ("ok", "ext4")


@pytest.mark.slow
def test_kiosk_run_on_a_data_dir_in_ram_says_so_in_its_log_and_health(tmp_path):
    """The daemon itself, started on a real tmpfs: the log line, and ``data_volume`` in
    ``/api/v1/health`` (the URL from its READY status)."""
    import os
    import signal
    import socket
    import sys

    import httpx
    from test_app import trust_a_key

    with tiny_tmpfs(tmp_path / "ram") as ram:
        data = ram / "d"
        trust_a_key(data)
        cfg = tmp_path / "kiosk.toml"
        cfg.write_text("[web]\nport = 0\n")
        sock_path = tmp_path / "notify.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(str(sock_path))
        listener.settimeout(30)
        env = dict(os.environ, NOTIFY_SOCKET=str(sock_path))
        proc = subprocess.Popen(
            [sys.executable, "-m", "checkpoint", "run", "--config", str(cfg), "--data", str(data)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            ready = ""
            while "READY=1" not in ready:
                ready = listener.recv(4096).decode()
            url = re.search(r"(https?://[^\s]+)", ready).group(1).rstrip("/")
            health = httpx.get(f"{url}/api/v1/health", timeout=5).json()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
            listener.close()
        err = proc.stderr.read()
    assert health["data_volume"]["fs_type"] == "tmpfs" and health["data_volume"]["volatile"]
    assert "the data dir is in RAM (tmpfs)" in err
