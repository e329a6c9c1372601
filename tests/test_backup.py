"""``kiosk backup`` of a running kiosk and ``kiosk restore`` onto a stopped or a new Pi."""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import sqlite3
import stat
import tarfile

import pytest
from support import need, tiny_tmpfs

from checkpoint.cli import main
from checkpoint.cli.daemon_cmd import hold_data_dir
from kiosk import backup
from kiosk.store import EventDraft, EventLog


def passage(i: int = 0) -> EventDraft:
    return EventDraft(
        direction="in",
        decision="pass",
        pass_id=f"P-{i}",
        household="B3-1201",
        holder="Wang L.",
        person={"name": "Wang Lei", "phone": "13800000000"},
    )


@pytest.fixture(autouse=True)
def no_installed_kiosk(monkeypatch, tmp_path):
    """The tests name their own folders; the machine's /etc/kiosk is never read."""
    monkeypatch.setattr("checkpoint.cli.backup_cmd.INSTALLED_DATA", str(tmp_path / "none"))
    monkeypatch.setattr("checkpoint.cli.backup_cmd.INSTALLED_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("KIOSK_CONFIG", raising=False)
    monkeypatch.delenv("KIOSK_DATA", raising=False)


def make_gate(root, clock, kiosk_id="gate-north", events=3):
    """A gate's folders: data (log, trust, keys, calibration) and etc (config, credentials);
    its log left open, as the running daemon holds it."""
    data, etc = root / "data", root / "etc"
    for folder in (data / "trust", data / "keys", etc / "credentials"):
        folder.mkdir(parents=True)
    (data / "trust" / "issuer.pub").write_text("public key\n")
    (data / "keys" / "issuer.key").write_text("private key\n")
    (data / "keys" / "issuer.key").chmod(0o600)
    (data / "calibration.json").write_text("{}\n")
    (etc / "kiosk.toml").write_text(f'[site]\nkiosk_id = "{kiosk_id}"\n')
    (etc / "credentials" / "token_pepper").write_text("pepper\n")
    (etc / "credentials" / "token_pepper").chmod(0o600)
    log = EventLog(data / "kiosk.db", kiosk_id, clock, boot_id="boot-a").open()
    for i in range(events):
        log.append(passage(i))
    log.audit("cli:ali", "guard.add", {"name": "ali"})
    return data, etc, log


def run_backup(data, etc, into, *extra: str) -> int:
    """A plain archive, which these tests open as a tar (test_backup_encrypted: sealed)."""
    args = ["backup", "--into", str(into), "--data", str(data)]
    return main([*args, "--config", str(etc / "kiosk.toml"), "--plain", *extra])


def moved(source, target, src_dir_fd=None, dst_dir_fd=None) -> tuple[str, str]:
    """``os.replace``'s two paths whole (``kiosk.backup`` moves some relative to a folder's
    descriptor: never through a link put in that folder's place)."""

    def whole(path, fd):
        return str(path) if fd is None else os.path.join(os.readlink(f"/proc/self/fd/{fd}"), path)

    return whole(source, src_dir_fd), whole(target, dst_dir_fd)


def run_restore(data, etc, archive, *extra: str) -> int:
    args = ["restore", str(archive), "--data", str(data), "--config", str(etc / "kiosk.toml")]
    return main([*args, *extra])


@pytest.fixture
def gate(tmp_path, clock):
    data, etc, log = make_gate(tmp_path / "north", clock)
    yield data, etc, log
    log.close()


@pytest.fixture
def usb(tmp_path):
    stick = tmp_path / "usb"
    stick.mkdir()
    return stick


def members(archive) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]


def test_a_running_kiosk_is_backed_up_whole_with_its_manifest(gate, usb, capsys):
    data, etc, log = gate
    archive = usb / "north.kbak"

    assert run_backup(data, etc, archive) == 0

    out, err = capsys.readouterr()
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert "personal data" in err
    files = members(archive)
    assert set(files) == {
        "data/kiosk.db",
        "data/trust/issuer.pub",
        "data/keys/issuer.key",
        "data/calibration.json",
        "etc/kiosk.toml",
        "etc/credentials/token_pepper",
        "MANIFEST.json",
    }
    manifest = json.loads(files["MANIFEST.json"])
    newest = log.events()[-1]
    assert manifest["kiosk_id"] == "gate-north"
    assert manifest["origin"] == log.events()[0]["id"]
    assert manifest["seq"] == {"first": 1, "last": 3}
    assert manifest["chain_head"] == newest["hash"]
    assert manifest["created_at"].endswith("Z")
    assert "kiosk.events" in manifest["schema"]
    assert "personal data" in manifest["warning"]
    assert json.loads(out)["chain_head"] == newest["hash"]
    assert log.append(passage()).seq == 4  # the daemon wrote on meanwhile, unhindered


def test_the_copy_is_of_one_moment_while_the_daemon_writes_between_its_steps(gate, tmp_path):
    data, _, log = gate
    for _ in range(60):  # a log of several pages
        log.append(passage())
    steps = []

    def daemon_writes(status, remaining, total):
        """The gate commits between every two steps (a busy morning, the peers' polls)."""
        steps.append(remaining)
        if len(steps) > 200:  # a copy that starts over at each commit never ends
            raise RuntimeError("the copy started over at every commit")
        log.append(passage())

    copy = tmp_path / "copy.db"
    backup.snapshot_database(data / "kiosk.db", copy, pages=2, pause_s=0, progress=daemon_writes)

    facts = backup.describe_log(copy)
    assert facts.verified and facts.last_seq == 63  # the log as the copy began
    assert steps == sorted(steps, reverse=True)  # never started over
    assert log.last_seq == 63 + len(steps)  # the gate wrote at every step


def test_an_archive_in_the_data_dir_is_refused(gate, capsys):
    data, etc, _ = gate
    assert run_backup(data, etc, data / "north.kbak") == 2
    assert "data dir" in capsys.readouterr().err
    assert not (data / "north.kbak").exists()


def test_a_full_target_disk_is_said_and_leaves_no_half_file(gate, usb, capsys, monkeypatch):
    data, etc, _ = gate
    archive = usb / "north.kbak"
    archive.write_bytes(b"yesterday's archive")
    real = tarfile.TarFile.addfile
    calls = []

    def fills_up(self, info, fileobj=None):
        calls.append(info.name)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, info, fileobj)

    monkeypatch.setattr(tarfile.TarFile, "addfile", fills_up)

    assert run_backup(data, etc, archive) == 1

    err = capsys.readouterr().err
    assert " is full (" in err and "nothing was changed" in err  # test_card_words
    assert archive.read_bytes() == b"yesterday's archive"
    assert [p.name for p in usb.iterdir()] == ["north.kbak"]


def test_restore_is_refused_while_the_daemon_runs(gate, usb, capsys):
    data, etc, _ = gate
    run_backup(data, etc, usb / "north.kbak")
    before = (data / "kiosk.db").read_bytes()
    lock = hold_data_dir(data)  # the daemon's lock
    try:
        assert run_restore(data, etc, usb / "north.kbak") == 1
    finally:
        lock.close()
    assert f"pid {os.getpid()}" in capsys.readouterr().err
    assert (data / "kiosk.db").read_bytes() == before


def test_a_new_pi_gets_the_gate_back_as_it_was(gate, usb, tmp_path, clock, capsys):
    data, etc, log = gate
    run_backup(data, etc, usb / "north.kbak")
    log.close()
    new_data, new_etc, new_log = make_gate(tmp_path / "new", clock, "gate-1", events=0)
    new_log.close()  # a fresh install: its own kiosk id, an empty log, stopped
    (new_etc / "credentials" / "tls_key").write_text("this Pi's TLS key\n")  # not in the archive

    assert run_restore(new_data, new_etc, usb / "north.kbak") == 2
    assert "gate-north" in capsys.readouterr().err  # another gate: only when told
    assert run_restore(new_data, new_etc, usb / "north.kbak", "--as-this-gate") == 0

    for name in ("trust/issuer.pub", "keys/issuer.key", "calibration.json"):
        assert (new_data / name).read_bytes() == (data / name).read_bytes()
    assert stat.S_IMODE((new_data / "keys" / "issuer.key").stat().st_mode) == 0o600
    assert (new_etc / "kiosk.toml").read_bytes() == (etc / "kiosk.toml").read_bytes()
    assert (new_etc / "credentials" / "token_pepper").read_text() == "pepper\n"
    assert (new_etc / "credentials" / "tls_key").read_text() == "this Pi's TLS key\n"
    kept = list(new_data.glob("before-restore-*"))
    assert len(kept) == 1 and (kept[0] / "kiosk.db").exists()
    restored = EventLog(new_data / "kiosk.db", "gate-north", clock).open()
    try:
        assert restored.verify().ok
        assert restored.append(passage()).seq == 4  # the gate's seq goes on
        assert [a["action"] for a in restored.audits()][:1] == ["guard.add"]
    finally:
        restored.close()


def test_an_archive_older_than_this_pis_own_log_is_never_restored(gate, usb, capsys):
    data, etc, log = gate
    run_backup(data, etc, usb / "north.kbak")
    log.append(passage())  # the gate decided on after its backup
    log.close()
    before = (data / "kiosk.db").read_bytes()

    assert run_restore(data, etc, usb / "north.kbak", "--as-this-gate") == 2

    err = capsys.readouterr().err
    assert "seq 3" in err and "seq 4" in err and "backwards" in err
    assert (data / "kiosk.db").read_bytes() == before
    assert not list(data.glob("before-restore-*")) and not list(data.glob(".restore-*"))


def test_an_archive_whose_audit_ends_before_this_pis_is_never_restored(gate, usb, capsys):
    """The same events, but audit rows written since the archive (a daemon's start, the
    office's exports of personal data): restoring it would drop them, and the next audit rows
    would take their seqs with other content."""
    data, etc, log = gate
    run_backup(data, etc, usb / "north.kbak")
    log.audit("office:pull", "export_events", {"count": 3})
    log.audit("daemon", "daemon.start", {})
    log.close()
    before = (data / "kiosk.db").read_bytes()

    assert run_restore(data, etc, usb / "north.kbak") == 2
    assert run_restore(data, etc, usb / "north.kbak", "--as-this-gate") == 2

    err = capsys.readouterr().err
    assert "audit seq 1," in err and "audit seq 3:" in err and "2 audit rows" in err
    assert "nothing was changed" in err
    assert (data / "kiosk.db").read_bytes() == before
    assert not list(data.glob("before-restore-*")) and not list(data.glob(".restore-*"))


def test_audit_rows_of_another_log_a_restore_replaces_are_said_kept_aside(
    gate, usb, tmp_path, clock, capsys
):
    data, etc, log = gate
    run_backup(data, etc, usb / "north.kbak")
    log.close()
    new_data, new_etc, new_log = make_gate(tmp_path / "new", clock, "gate-1", events=0)
    new_log.audit("daemon", "daemon.start", {})  # the fresh install's own audit rows
    new_log.close()

    assert run_restore(new_data, new_etc, usb / "north.kbak", "--as-this-gate") == 0

    (aside,) = new_data.glob("before-restore-*")
    err = capsys.readouterr().err
    assert "2 audit rows (seq up to 2) of this Pi's log are not in the restored one" in err
    assert f"kept in {aside}/kiosk.db" in err
    with sqlite3.connect(aside / "kiosk.db") as conn:
        assert conn.execute("SELECT max(seq) FROM audit").fetchone() == (2,)


def test_this_pis_files_are_kept_aside_with_the_wal(gate, usb, capsys):
    data, etc, log = gate
    run_backup(data, etc, usb / "north.kbak")
    wal = (data / "kiosk.db-wal").read_bytes()
    lock = hold_data_dir(data)  # a daemon that died: its lock is let go
    lock.close()
    log.close()
    (data / "kiosk.db-wal").write_bytes(wal)  # left beside it, as after a power cut

    assert run_restore(data, etc, usb / "north.kbak") == 0

    (aside,) = data.glob("before-restore-*")
    assert {p.name for p in aside.iterdir()} >= {"kiosk.db", "kiosk.db-wal", "trust", "keys"}
    assert not (data / "kiosk.db-wal").exists()
    assert list(etc.glob("before-restore-*"))
    with sqlite3.connect(data / "kiosk.db") as conn:
        assert conn.execute("SELECT max(seq) FROM events").fetchone() == (3,)


def test_an_altered_archive_is_refused_and_nothing_changes(gate, usb, tmp_path, capsys):
    data, etc, log = gate
    run_backup(data, etc, usb / "north.kbak")
    log.close()
    files = members(usb / "north.kbak")
    files["data/keys/issuer.key"] = b"another key\n"
    forged = tmp_path / "forged.kbak"
    with tarfile.open(forged, "w") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    before = (data / "keys" / "issuer.key").read_bytes()

    assert run_restore(data, etc, forged) == 2

    assert "issuer.key is not the file backed up" in capsys.readouterr().err
    assert (data / "keys" / "issuer.key").read_bytes() == before
    assert not list(data.glob("before-restore-*")) and not list(data.glob(".restore-*"))


def test_a_file_that_is_no_backup_is_refused(gate, usb, capsys):
    data, etc, log = gate
    log.close()
    (usb / "notes.txt").write_text("not an archive")
    assert run_restore(data, etc, usb / "notes.txt") == 2
    assert "not a kiosk backup" in capsys.readouterr().err


def test_a_member_named_outside_the_archives_places_is_refused(gate, usb, tmp_path, capsys):
    data, etc, log = gate
    log.close()
    evil = tmp_path / "evil.kbak"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("data/../../etc/passwd")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    assert run_restore(data, etc, evil) == 2
    assert "is not a file a kiosk backup holds" in capsys.readouterr().err


def test_the_lock_taken_for_the_restore_is_let_go(gate, usb):
    data, etc, log = gate
    run_backup(data, etc, usb / "north.kbak")
    log.close()
    assert run_restore(data, etc, usb / "north.kbak") == 0
    fd = os.open(data / "kiosk.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the daemon can start
    finally:
        os.close(fd)


def test_credentials_kiosk_admin_hands_the_verb_are_backed_up(gate, usb, tmp_path, monkeypatch):
    """Under ``sudo kiosk-admin`` the credentials folder is root's; systemd hands the verb
    its files (``$CREDENTIALS_DIRECTORY``): those go in the archive in their place."""
    data, etc, _ = gate
    (etc / "credentials" / "token_pepper").unlink()
    (etc / "credentials").rmdir()  # not there for this user
    handed = tmp_path / "handed"
    handed.mkdir()
    (handed / "token_pepper").write_text("pepper\n")
    (handed / "guard_users").write_text("ali:guard:hash\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(handed))

    assert run_backup(data, etc, usb / "north.kbak") == 0

    files = members(usb / "north.kbak")
    assert files["etc/credentials/token_pepper"] == b"pepper\n"
    assert files["etc/credentials/guard_users"] == b"ali:guard:hash\n"


def test_a_drill_restores_into_spare_folders_on_another_machine(gate, usb, tmp_path, capsys):
    data, etc, _ = gate
    run_backup(data, etc, usb / "north.kbak")
    drill = tmp_path / "drill"

    capsys.readouterr()
    assert run_restore(drill, drill / "etc", usb / "north.kbak") == 0

    assert (drill / "etc" / "kiosk.toml").read_bytes() == (etc / "kiosk.toml").read_bytes()
    # It ended "sudo kiosk-admin verify-log ..., then start it (sudo systemctl start kiosk)":
    # the installed kiosk's log and service, not the drill's. Its own check, and no start.
    last = capsys.readouterr().err.splitlines()[-1]
    assert f"kiosk verify-log --db {drill / 'kiosk.db'}" in last, last
    assert "systemctl" not in last and "kiosk-admin" not in last
    assert main(["verify-log", "--db", str(drill / "kiosk.db")]) == 0


def test_a_restore_into_the_installed_kiosks_folders_says_to_check_then_start_it(
    gate, usb, tmp_path, capsys, monkeypatch
):
    """It said to run scripts/install --no-start, then check, then start: that install run
    enables the services again (a reboot, or the one it asks for, starts the gate on the
    unchecked log). The check comes first, then the install run (which enables and starts
    them), as operations.md's procedure has it."""
    data, etc, log = gate
    run_backup(data, etc, usb / "north.kbak")
    log.close()
    monkeypatch.setattr("checkpoint.cli.backup_cmd.INSTALLED_DATA", str(data))
    monkeypatch.setattr("checkpoint.cli.backup_cmd.INSTALLED_CONFIG", str(etc / "kiosk.toml"))
    capsys.readouterr()

    assert main(["restore", str(usb / "north.kbak")]) == 0

    last = capsys.readouterr().err.splitlines()[-1]
    check = last.index("(sudo kiosk-admin verify-log --against ...; one the office never")
    assert "never pulled this gate into: verify-log alone)" in last  # not a new log (operations.md)
    assert check < last.index("run scripts/install again") < last.index("reboot if it says so")
    assert "--no-start" not in last
    assert last.endswith("start it (sudo systemctl start kiosk kiosk-screen kiosk-purge.timer)")


def test_a_real_full_stick_leaves_nothing_behind(gate, tmp_path, capsys):
    data, etc, log = gate
    for i in range(200):  # a database larger than the stick
        log.append(passage(i))
    log.wipe_wal()
    with tiny_tmpfs(tmp_path / "stick", size="64k") as stick:
        assert run_backup(data, etc, stick / "north.kbak") == 1
        err = capsys.readouterr().err
        assert "the disk is full (" in err and f"MB free at {stick})" in err  # not the card
        assert "nothing was changed" in err
        assert list(stick.iterdir()) == []


def newer_schema(scratch):
    """A change for ``_rewritten``: the archive's log as a newer version migrated it (a
    migration this one does not know), its manifest made to agree; ``scratch``: a folder."""
    import hashlib

    def newer(files, manifest):
        db = scratch / "newer.db"
        db.write_bytes(files["data/kiosk.db"])
        with sqlite3.connect(db) as conn:
            conn.execute(
                "INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
                " VALUES ('kiosk.events', 'm099_from_the_future', '2027-01-01')"
            )
        conn.close()
        files["data/kiosk.db"] = body = db.read_bytes()
        entry = next(e for e in manifest["files"] if e["name"] == "data/kiosk.db")
        entry.update(size=len(body), sha256=hashlib.sha256(body).hexdigest())

    return newer


def _rewritten(archive, into, change):
    files = members(archive)
    manifest = json.loads(files["MANIFEST.json"])
    change(files, manifest)
    files["MANIFEST.json"] = json.dumps(manifest).encode()
    with tarfile.open(into, "w") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return into


@pytest.mark.parametrize(
    "change",
    [
        lambda files, manifest: manifest.update(seq="12"),
        lambda files, manifest: manifest["files"].append("data/kiosk.db"),
        lambda files, manifest: manifest.update(files=[]),
        lambda files, manifest: manifest.update(chain_head="0" * 64),
        lambda files, manifest: manifest.update(audit_last_seq=manifest["audit_last_seq"] + 5),
    ],
    ids=[
        "seq-not-an-object",
        "a-file-not-an-object",
        "no-files-listed",
        "another-head",
        "another-audit-seq",
    ],
)
def test_a_manifest_that_is_not_the_archives_is_refused(gate, usb, tmp_path, capsys, change):
    data, etc, log = gate
    run_backup(data, etc, usb / "north.kbak")
    log.close()
    forged = _rewritten(usb / "north.kbak", tmp_path / "forged.kbak", change)
    before = (data / "kiosk.db").read_bytes()

    assert run_restore(data, etc, forged) == 2

    assert "nothing was changed" in capsys.readouterr().err
    assert (data / "kiosk.db").read_bytes() == before


def test_a_restore_failing_part_way_puts_this_pis_files_back(gate, usb, capsys, monkeypatch):
    """Before: a move that failed between setting this Pi's files aside and moving the
    archive's in left a data dir without kiosk.db, where the daemon began a new empty log."""
    data, etc, log = gate
    run_backup(data, etc, usb / "north.kbak")
    log.close()
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    real = os.replace

    def fails_on_the_log(source, target, **at):
        source, target = moved(source, target, **at)
        if target == str(data / "kiosk.db") and ".restore-" in source:
            raise OSError(errno.EIO, "Input/output error")
        return real(source, target)

    monkeypatch.setattr(os, "replace", fails_on_the_log)

    assert run_restore(data, etc, usb / "north.kbak") == 1

    assert "failed a read or write at " in capsys.readouterr().err  # test_card_words
    after = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    after.pop(data / "kiosk.lock", None)  # the restore takes it, as the daemon does
    assert after == before
    assert not list(data.glob("before-restore-*")) and not list(data.glob(".restore-*"))


def test_a_card_failing_under_the_restore_and_its_undo_is_not_said_unchanged(
    gate, usb, capsys, monkeypatch
):
    """The card's I/O error moving the log in, and again putting this Pi's back: the
    files half changed places, and it said "nothing was changed"."""
    data, etc, log = gate
    run_backup(data, etc, usb / "north.kbak")
    log.close()
    real, failing = os.replace, []

    def the_card_dies_at_the_log(source, target, **at):
        source, target = moved(source, target, **at)
        if failing or (target == str(data / "kiosk.db") and ".restore-" in source):
            failing.append(target)
            raise OSError(errno.EIO, "Input/output error")
        return real(source, target)

    monkeypatch.setattr(os, "replace", the_card_dies_at_the_log)

    assert run_restore(data, etc, usb / "north.kbak") == 1

    err = capsys.readouterr().err
    assert "failed a read or write at " in err and "nothing was changed" not in err
    assert "cut off part way" in err and "restore --undo" in err
    assert (data / backup.RESTORE_MARKER).exists()


def test_ctrl_c_is_held_off_while_the_files_change_places(gate, usb, monkeypatch):
    import signal

    from kiosk import backup as core

    data, etc, log = gate
    run_backup(data, etc, usb / "north.kbak")
    log.close()
    masks = []
    real = core.swap_in

    def swap_in(*args):
        masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))
        return real(*args)

    monkeypatch.setattr(core, "swap_in", swap_in)
    assert run_restore(data, etc, usb / "north.kbak") == 0
    assert len(masks) == 2 and all({signal.SIGINT, signal.SIGTERM} <= m for m in masks)
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_an_archive_of_a_newer_version_is_refused_before_anything_moves(
    gate, usb, tmp_path, capsys
):
    """A new card flashed with an older release: restored, the daemon refused the log at
    start (the gate dark) with this Pi's own files already set aside."""
    data, etc, log = gate
    run_backup(data, etc, usb / "north.kbak")
    log.close()
    archive = _rewritten(usb / "north.kbak", tmp_path / "newer.kbak", newer_schema(tmp_path))
    before = (data / "kiosk.db").read_bytes()

    assert run_restore(data, etc, archive) == 2

    err = capsys.readouterr().err
    assert "newer version" in err and "m099_from_the_future" in err
    assert (data / "kiosk.db").read_bytes() == before
    assert not list(data.glob("before-restore-*"))


def test_the_config_comes_back_with_the_group_the_service_reads_it_by(gate, usb, tmp_path):
    """Before: as root, the restored kiosk.toml (root:kiosk 0640 on the gate) took the config
    folder's group (root:root 0640), and the service could no longer read its config."""
    import grp

    need(os.geteuid() == 0, "root to give a file a group")
    data, etc, log = gate
    service = grp.getgrnam("nogroup")
    os.chown(etc / "kiosk.toml", 0, service.gr_gid)
    (etc / "kiosk.toml").chmod(0o640)
    run_backup(data, etc, usb / "north.kbak")
    log.close()
    new_data, new_etc = tmp_path / "new", tmp_path / "new-etc"
    new_etc.mkdir()
    os.chown(new_etc, 0, 0)

    assert run_restore(new_data, new_etc, usb / "north.kbak") == 0

    st = (new_etc / "kiosk.toml").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, service.gr_gid, 0o640)
    manifest = json.loads(members(usb / "north.kbak")["MANIFEST.json"])
    entry = next(e for e in manifest["files"] if e["name"] == "etc/kiosk.toml")
    assert (entry["owner"], entry["group"]) == ("root", "nogroup")
