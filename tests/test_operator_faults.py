"""What the Pi operator meets: a full or read-only SD card and power cuts, on real file
systems where the tests run as root (a tiny tmpfs, a loop-mounted ext4); elsewhere those
tests skip and say why (in CI, where they must run, they fail: ``support.need``)."""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support import mounted, need, tiny_tmpfs
from test_store_full import draft

from checkpoint.cli import main
from kiosk.store import EventLog


@pytest.fixture
def keys(tmp_path):
    assert main(["keys", "new", "--dir", str(tmp_path / "keys"), "--name", "office"]) == 0
    return tmp_path / "keys"


def fill(mnt):
    """Take every free byte of the file system ``mnt``; delete the returned file to free it."""
    filler = mnt / "filler"
    with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 4096)
    return filler


def issue(keys, out, household="12-3-0502"):
    return main(
        [
            "pass",
            "issue",
            "--tz=Asia/Shanghai",
            "--key",
            str(keys / "office.key"),
            "--household",
            household,
            "--holder",
            "Wang",
            "--out",
            str(out),
        ]
    )


def test_a_file_rewritten_on_a_full_card_keeps_the_one_that_was_there(keys, tmp_path, capsys):
    """Before: the file at --out was truncated first, then the card ran out of space: what
    was there was gone and a cut-off PNG stood in its place, under the name asked for."""
    with tiny_tmpfs(tmp_path / "mnt", "512k") as mnt:
        card = mnt / "card.png"
        card.write_bytes(b"the card printed yesterday")
        fill(mnt)
        assert issue(keys, card) == 1
        err = capsys.readouterr().err
        assert " is full (" in err and "nothing was changed" in err
        assert card.read_bytes() == b"the card printed yesterday"
        assert sorted(p.name for p in mnt.iterdir()) == ["card.png", "filler"]  # no temp file


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_a_batch_that_runs_out_of_space_leaves_no_card_behind(keys, tmp_path, capsys):
    """Before: the cards written before the card filled up stayed in the folder without a
    passes.csv: valid passes the office had no record of, and a re-run into the same folder
    was refused ('not empty')."""
    rows = tmp_path / "households.csv"
    with rows.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["household", "holder"])
        writer.writerows([f"1-{n:03d}", f"Holder {n}"] for n in range(40))
    with tiny_tmpfs(tmp_path / "mnt", "256k") as mnt:
        out = mnt / "cards"
        code = main(
            [
                "pass",
                "batch",
                "--tz=Asia/Shanghai",
                "--key",
                str(keys / "office.key"),
                "--csv",
                str(rows),
            ]
            + ["--out", str(out), "--format", "png"]
        )
        err = capsys.readouterr().err
        assert code == 1
        assert " is full (" in err and "nothing was changed" in err
        assert list(out.iterdir()) == []


def test_keys_new_on_a_full_card_leaves_no_half_key_and_can_run_again(tmp_path, capsys):
    """Before: the private key file was made, then the card had no room for it: an empty
    office.key stayed, and every later `keys new` refused to overwrite it."""
    with tiny_tmpfs(tmp_path / "mnt", "256k") as mnt:
        filler = fill(mnt)
        argv = ["keys", "new", "--dir", str(mnt / "keys"), "--name", "office"]
        assert main(argv) == 1  # the card's fault, not bad input (test_card_words)
        assert " is full (" in capsys.readouterr().err
        assert list((mnt / "keys").iterdir()) == []
        filler.unlink()
        assert main(argv) == 0
        assert len((mnt / "keys" / "office.key").read_bytes()) > 100


def remount(mnt: Path, how: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{how}", str(mnt)], check=True, capture_output=True)


def test_a_log_on_a_card_mounted_read_only_is_a_fault_before_the_first_passage(tmp_path, clock):
    """Before: a card that came up read-only (fsck, a failing card) opened without a word
    (SQLite reads it), health said ok and the kiosk 'deciding' until the first person was
    denied with store_fault. Now health is a fault from the start: the screen sends people
    to the guard, the console raises the alarm; and it clears when the card is writable."""
    with tiny_tmpfs(tmp_path / "mnt", "4m") as mnt:
        with EventLog(tmp_path / "kiosk.db", "gate-1", clock) as log:
            log.append(draft())
            for name in ("kiosk.db", "kiosk.db-wal", "kiosk.db-shm"):  # as a power cut leaves it
                shutil.copy(tmp_path / name, mnt / name)
        remount(mnt, "ro")
        with EventLog(mnt / "kiosk.db", "gate-1", clock) as log:
            health = log.health()
            assert health.state == "fault" and "read-only" in health.detail, health
            remount(mnt, "rw")
            assert log.health().state != "fault"
            assert log.append(draft()).seq == 2
            assert log.verify().ok


@contextlib.contextmanager
def ext4_card(path: Path):
    """A small ext4 file system on a loop device, mounted errors=remount-ro as a Pi's root."""
    need(os.geteuid() == 0, "root for a loop-mounted ext4")
    need(shutil.which("mkfs.ext4") is not None, "mkfs.ext4 (e2fsprogs)")
    image = path / "card.img"
    with open(image, "wb") as f:
        f.truncate(32 * 2**20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    with mounted(path / "card", "-o", "loop,errors=remount-ro", str(image)) as mnt:
        yield mnt


def test_a_card_that_fails_to_read_only_while_idle_is_a_fault_before_the_next_passage(
    tmp_path, clock
):
    """ext4 remounts itself read-only on an error (a failing SD card) while the daemon has
    the log open; statvfs still says read-write on current kernels. Before: health stayed ok
    until the next passage was denied."""
    with ext4_card(tmp_path) as mnt, EventLog(mnt / "kiosk.db", "gate-1", clock) as log:
        log.append(draft())
        device = Path(os.path.realpath(_source_of(mnt))).name
        trigger = Path("/sys/fs/ext4") / device / "trigger_fs_error"
        if not trigger.exists():
            pytest.skip(f"no {trigger} to make ext4 fail")
        assert log.health().state != "fault"
        trigger.write_text("1\n")
        health = log.health()
        assert health.state == "fault" and "read-only" in health.detail, health


def _source_of(mnt: Path) -> str:
    for line in Path("/proc/mounts").read_text().splitlines():
        source, target, *_ = line.split()
        if target == str(mnt):
            return source
    raise AssertionError(f"{mnt} is not mounted")


def test_the_full_card_runbook_does_not_send_the_operator_to_a_pull_the_kiosk_refuses(
    tmp_path, clock
):
    """operations.md's store-fault row said 'pull the log, then call the technician'; on a
    full card the pull got 503 (every export wrote its audit row first). A masked pull now
    goes ahead, its row held in memory (checked here on a log that cannot grow), an unmasked
    one is still refused, and the row says so."""
    from test_api import bearer, client_for, make_core
    from test_api import draft as api_draft

    with tiny_tmpfs(tmp_path / "mnt", "2m") as mnt:
        core = make_core(mnt, clock)
        core.store.append(api_draft(1))
        headers = bearer(core, "logs:read")
        personal = bearer(core, "logs:read", "logs:personal")
        fill(mnt)
        client = client_for(core)
        answer = client.get("/api/v1/events?after=0", headers=headers)
        unmasked = client.get("/api/v1/events?after=0&fields=holder", headers=personal)
        core.store.close()
    assert answer.status_code == 200 and len(answer.json()["events"]) == 1
    assert unmasked.status_code == 503
    docs = Path(__file__).resolve().parent.parent / "docs" / "operations.md"
    row = next(r for r in docs.read_text().splitlines() if r.startswith("| **store fault"))
    assert "pull the log, then" not in row
    assert "can still pull the log while the card is full or read-only, masked" in row
    assert "kiosk.db-wal" in row  # the copy a read-only card still allows


@pytest.mark.parametrize("unit", ["kiosk.service", "kiosk-purge.service"])
def test_a_watchdog_abort_leaves_no_core_dump_in_the_data_dir(tmp_path, unit):
    """kiosk.service answers a hung loop with SIGABRT (WatchdogSignal) and runs in
    /var/lib/kiosk; systemd gives services RLIMIT_CORE=infinity and Raspberry Pi OS has no
    systemd-coredump (core_pattern 'core'). Before: each abort wrote the whole process image
    (~150 MB here: names, phone numbers, the token pepper, the issuing key) as 'core' into the
    data dir, past every retention purge and into every backup of the folder. The units set
    LimitCORE=0; checked with the kernel, a process started with the unit's limit."""
    import resource
    import signal
    import sys

    from test_systemd_units import load, values

    limits = values(load(unit), "Service", "LimitCORE") or ["infinity"]  # PID 1's default
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if not pattern.startswith("|") and "/" not in pattern:  # else the kernel writes it elsewhere
        core = 0 if limits[-1] == "0" else resource.RLIM_INFINITY
        child = subprocess.run(
            [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGABRT)"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONFAULTHANDLER": "1"},
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (core, core)),
            capture_output=True,
            check=False,
        )
        assert child.returncode == -signal.SIGABRT
        assert "Fatal Python error: Aborted" in child.stderr.decode()  # the journal's traceback
        assert [p.name for p in tmp_path.iterdir()] == [], f"{unit}: LimitCORE={limits[-1]}"
    assert limits == ["0"], f"{unit}: LimitCORE={limits[-1]} leaves core dumps on the card"


def test_a_file_replaced_whole_keeps_its_mode_and_a_link_keeps_pointing_at_it(tmp_path):
    """write_atomic replaces the file a symbolic link names (as writing in place did), keeps
    an existing file's mode and makes a new one owner-only."""
    from kiosk.files import write_atomic

    target = tmp_path / "reports" / "today.csv"
    target.parent.mkdir()
    target.write_bytes(b"old")
    target.chmod(0o640)
    link = tmp_path / "latest.csv"
    link.symlink_to(target)
    write_atomic(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o640
    write_atomic(tmp_path / "fresh.csv", b"x")
    assert (tmp_path / "fresh.csv").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.csv", "latest.csv", "reports"]
