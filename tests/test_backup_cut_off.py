"""A restore cut off part way (a power cut, a kill) between setting this Pi's files aside and
moving the archive's in: the kiosk refuses to start on the half-changed data dir (it began a
new, empty log there under the restored kiosk id), and the next ``kiosk restore`` (or
``--undo``) puts this Pi's files back first. Stages a killed restore left (the archive's log
and keys in clear) are removed by the next restore and by the retention purge."""

from __future__ import annotations

import os
import pwd
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import test_backup
from test_backup import make_gate, run_backup, run_restore

from checkpoint.cli import main
from kiosk import backup

#: The same stick and no installed kiosk as the plain archive's tests.
usb, no_installed_kiosk = test_backup.usb, test_backup.no_installed_kiosk

#: What a run changes beside the files (the lock; SQLite's files of a read of the log).
_BESIDE = ("kiosk.lock", "kiosk.db-wal", "kiosk.db-shm")


class Killed(BaseException):
    """The process ends here: nothing after it runs (no rollback, no ``finally`` cleanup)."""


@pytest.fixture
def two_pis(tmp_path, clock, usb):
    """Gate north's archive on the stick, and a new Pi's fresh install (its own id, an empty
    log, stopped) to make gate north: the repro's ``--as-this-gate``."""
    data, etc, log = make_gate(tmp_path / "north", clock)
    run_backup(data, etc, usb / "north.kbak")
    log.close()
    new_data, new_etc, new_log = make_gate(tmp_path / "new", clock, "gate-1", events=0)
    new_log.close()
    return new_data, new_etc, usb / "north.kbak"


def files_of(*folders: Path) -> dict[Path, bytes]:
    return {
        p: p.read_bytes()
        for folder in folders
        for p in folder.rglob("*")
        if p.is_file() and p.name not in _BESIDE
    }


def kiosk_run(data: Path, etc: Path) -> int:
    return main(["run", "--config", str(etc / "kiosk.toml"), "--data", str(data)])


def assert_refused_until_undone(data: Path, etc: Path, capsys) -> None:
    had_log = (data / "kiosk.db").exists()
    assert kiosk_run(data, etc) == 2  # kiosk.service: RestartPreventExitStatus=2
    err = capsys.readouterr().err
    assert "cut off part way" in err and "restore --undo" in err and len(err.splitlines()) == 1
    assert (data / "kiosk.db").exists() == had_log  # no new, empty log begun
    assert main(["guard", "list", "--data", str(data)]) == 2  # nor does a verb open it
    assert "cut off part way" in capsys.readouterr().err


def cut_at(monkeypatch, moved: str) -> None:
    """The process dies right after the move whose target's path ends with ``moved``: the
    rollback in ``swap_all`` never runs (as with os._exit)."""
    real = os.replace

    def replace(source, target, **at):
        real(source, target, **at)
        if test_backup.moved(source, target, **at)[1].endswith(moved):
            raise Killed

    def undo(*_args):
        raise Killed

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(backup, "_undo", undo)


@pytest.mark.parametrize(
    "moved",
    [
        "etc/kiosk.toml",  # the config folder swapped, the data dir not yet touched
        "/kiosk.db",  # this Pi's log set aside: the data dir without kiosk.db (the repro)
        "data/kiosk.db",  # the archive's log in, its keys and trust list not yet
    ],
)
@pytest.mark.parametrize("then", ["undo", "again"])
def test_a_restore_cut_off_part_way_is_refused_by_the_kiosk_then_undone(
    two_pis, monkeypatch, capsys, moved, then
):
    data, etc, archive = two_pis
    before = files_of(data, etc)
    with monkeypatch.context() as m:
        cut_at(m, moved)
        with pytest.raises(Killed):
            run_restore(data, etc, archive, "--as-this-gate")
    assert (data / backup.RESTORE_MARKER).exists()
    assert list(data.glob(".restore-*"))  # its way back, never removed under the marker
    capsys.readouterr()

    assert_refused_until_undone(data, etc, capsys)

    if then == "undo":
        assert (
            main(["restore", "--undo", "--data", str(data), "--config", str(etc / "kiosk.toml")])
            == 0
        )
        assert "cut off part way is undone" in capsys.readouterr().err
        assert files_of(data, etc) == before
        assert not list(data.glob("before-restore-*")) and not list(etc.glob("before-restore-*"))
    else:
        assert run_restore(data, etc, archive, "--as-this-gate") == 0
        assert "cut off part way is undone" in capsys.readouterr().err
        (aside,) = data.glob("before-restore-*")
        assert (aside / "kiosk.db").read_bytes() == before[data / "kiosk.db"]
        assert (data / "keys" / "issuer.key").read_text() == "private key\n"
        assert (etc / "kiosk.toml").read_text() == '[site]\nkiosk_id = "gate-north"\n'
    assert not (data / backup.RESTORE_MARKER).exists()
    assert not list(data.glob(".restore-*")) and not list(etc.glob(".restore-*"))


_KILLED_AFTER_THE_LOG_IS_ASIDE = """
import os, sys
from test_backup import moved
from checkpoint.cli import main
real = os.replace
def replace(source, target, **at):
    real(source, target, **at)
    target = moved(source, target, **at)[1]
    if "before-restore-" in target and target.endswith("/kiosk.db"):
        os._exit(137)
os.replace = replace
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow  # a process of its own
def test_a_restore_killed_after_the_log_is_set_aside_leaves_no_way_to_a_new_log(two_pis, capsys):
    """The review's repro, a real kill: the data dir was left with no kiosk.db and the next
    ``kiosk run`` began a new, empty log under the restored id (the office's pull then hit a
    ChainError); the stage, the archive's whole log and keys in clear, stayed for ever."""
    data, etc, archive = two_pis
    before = files_of(data, etc)
    args = ["restore", str(archive), "--data", str(data), "--config", str(etc / "kiosk.toml")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cut = subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_THE_LOG_IS_ASIDE, *args, "--as-this-gate"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert cut.returncode == 137
    assert not (data / "kiosk.db").exists() and list(data.glob("before-restore-*/kiosk.db"))

    assert_refused_until_undone(data, etc, capsys)
    assert (
        main(["restore", "--undo", "--data", str(data), "--config", str(etc / "kiosk.toml")]) == 0
    )

    assert files_of(data, etc) == before
    assert not list(data.glob(".restore-*")) and not list(etc.glob(".restore-*"))
    assert not (data / backup.RESTORE_MARKER).exists()


def test_undo_with_nothing_cut_off_changes_nothing(two_pis, capsys):
    data, etc, _ = two_pis
    before = files_of(data, etc)
    assert (
        main(["restore", "--undo", "--data", str(data), "--config", str(etc / "kiosk.toml")]) == 0
    )
    assert "nothing to undo" in capsys.readouterr().out
    assert files_of(data, etc) == before
    assert main(["restore", "--data", str(data)]) == 2  # neither an archive nor --undo
    assert "--undo" in capsys.readouterr().err


@pytest.mark.parametrize(
    "swap",
    [
        {"folder": "OTHER", "names": ["kiosk.db"], "files": ["kiosk.db"]},
        {"folder": "DATA", "names": ["../other/kiosk.db"], "files": ["kiosk.db"]},
        {"folder": "DATA", "names": ["kiosk.db"], "files": ["/etc/passwd"]},
    ],
)
def test_a_marker_naming_other_files_moves_nothing(two_pis, tmp_path, capsys, swap):
    """The data dir is the service's user's: a marker it wrote must not have root's undo
    move files outside the data dir and the config folder."""
    data, etc, _ = two_pis
    other = tmp_path / "other"
    other.mkdir()
    (other / "kiosk.db").write_text("not the kiosk's\n")
    folder = {"OTHER": other, "DATA": data}[swap["folder"]]
    entry = swap | {"folder": str(folder), "stage": ".restore-x", "stamp": "20260101T000000Z"}
    (data / backup.RESTORE_MARKER).write_text(backup.json.dumps({"swaps": [entry]}))
    before = files_of(data, etc, other)

    assert (
        main(["restore", "--undo", "--data", str(data), "--config", str(etc / "kiosk.toml")]) == 1
    )

    assert "cannot be undone" in capsys.readouterr().err
    assert files_of(data, etc, other) == before


def _stage(folder: Path, age_s: float) -> Path:
    stage = folder / f"{backup.RESTORE_STAGE_PREFIX}abc{int(age_s)}"
    (stage / "keys").mkdir(parents=True)
    (stage / "kiosk.db").write_bytes(b"the archive's log: Wang Lei 13800000000")
    (stage / "keys" / "issuer.key").write_text("private key\n")
    then = time.time() - age_s
    os.utime(stage, (then, then))
    return stage


def test_a_stage_a_restore_killed_while_extracting_left_goes_with_the_next_restore(two_pis, capsys):
    """Killed while extracting (minutes on a big log): nothing moved, no marker, but the
    stage held the archive's log and keys in clear, which no purge reached."""
    data, etc, archive = two_pis
    left = [_stage(data, 60), _stage(etc, 60)]

    assert run_restore(data, etc, archive, "--as-this-gate") == 0

    assert not any(stage.exists() for stage in left)
    assert "removed 2 stage folder(s)" in capsys.readouterr().err


def test_the_retention_purge_removes_a_killed_restores_stage_once_an_hour_old(tmp_path):
    fresh, old = _stage(tmp_path, 60), _stage(tmp_path, backup.STAGE_LEFT_S + 60)
    named = _stage(tmp_path, backup.STAGE_LEFT_S + 120)  # a cut restore's way back: kept
    swap = backup.Swap(tmp_path, named, ("kiosk.db",), "20260101T000000Z")
    (tmp_path / backup.RESTORE_MARKER).write_text(backup.json.dumps({"swaps": [swap.as_dict()]}))
    now = datetime.now(UTC)

    removed = backup.purge_set_aside(tmp_path, now, now)

    assert removed == [old.name]
    assert fresh.exists() and named.exists() and not old.exists()


def test_the_nightly_purge_never_removes_a_running_restores_stages(two_pis, monkeypatch):
    """``kiosk purge`` (the nightly timer) does not wait for the data dir's lock: an hour into
    a restore's checks of a big log, it removed the stages being put in place."""
    data, etc, archive = two_pis
    real, removed = backup.describe_log, []

    def checked_for_an_hour(path, **how):
        facts = real(path, **how)
        now = datetime.now(UTC)
        for folder in (data, etc):
            for stage in folder.glob(f"{backup.RESTORE_STAGE_PREFIX}*"):
                os.utime(stage, (now.timestamp() - backup.STAGE_LEFT_S - 60,) * 2)
        removed.extend(backup.purge_set_aside(data, now, now))
        removed.extend(backup.remove_stages(etc, backup.RESTORE_STAGE_PREFIX, 0, time.time()))
        return facts

    monkeypatch.setattr(backup, "describe_log", checked_for_an_hour)

    assert run_restore(data, etc, archive, "--as-this-gate") == 0

    assert removed == []
    assert b"gate-north" in (data / "kiosk.db").read_bytes()


def test_a_fifo_put_as_the_marker_holds_no_stage_removal_up(tmp_path):
    """The marker was read by its path: a FIFO in its place (the data dir is the kiosk's
    user's) held ``kiosk backup`` and the retention purge at its open for ever."""
    fifo = tmp_path / backup.RESTORE_MARKER
    os.mkfifo(fifo)
    old = _stage(tmp_path, backup.STAGE_LEFT_S + 60)
    removed: list[list[str]] = []
    run = threading.Thread(
        target=lambda: removed.append(
            backup.remove_stages(tmp_path, backup.RESTORE_STAGE_PREFIX, 0, time.time())
        ),
        daemon=True,
    )
    run.start()
    run.join(timeout=30)  # at once when the FIFO is not opened
    held = run.is_alive()
    if held:  # a writer's open and close let the read end
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        run.join()
    assert not held
    assert removed == [[old.name]]


# -- the data dir is the service's user's: nothing it puts there leads the restore elsewhere ---

_STAMP = datetime(2026, 12, 7, 1, 30, tzinfo=UTC)  # the restore's second, guessed in advance


def _the_service_users(data: Path) -> tuple[int, int]:
    """The data dir given to another user than the restore's (root's): the kiosk's."""
    nobody = pwd.getpwnam("nobody")
    os.chown(data, nobody.pw_uid, nobody.pw_gid)
    return nobody.pw_uid, nobody.pw_gid


def _root_only(tmp_path: Path, name: str) -> Path:
    """A folder only root may write in, standing for /etc or /root."""
    victim = tmp_path / name
    victim.mkdir(mode=0o700)
    return victim


@pytest.mark.usefixtures("as_root")
def test_a_link_planted_as_the_restores_aside_folder_is_refused(
    two_pis, tmp_path, monkeypatch, capsys
):
    """The review's repro: the kiosk's user links ``before-restore-<stamp>`` (to the second:
    guessable) to /etc; the restore moved this Pi's log and keys into it and gave it (chown)
    to the kiosk's user."""
    data, etc, archive = two_pis
    victim = _root_only(tmp_path, "root_only")
    uid, gid = _the_service_users(data)
    link = data / f"before-restore-{_STAMP:%Y%m%dT%H%M%SZ}"
    os.symlink(victim, link)
    os.chown(link, uid, gid, follow_symlinks=False)
    monkeypatch.setattr("checkpoint.cli.backup_cmd._now", lambda: _STAMP)
    before = files_of(data, etc)

    assert run_restore(data, etc, archive, "--as-this-gate") == 1

    assert "is there already: a restore makes its own folders" in capsys.readouterr().err
    assert os.listdir(victim) == [] and victim.stat().st_uid == 0
    assert files_of(data, etc) == before and os.readlink(link) == str(victim)
    assert not (data / backup.RESTORE_MARKER).exists()
    assert not list(data.glob(".restore-*")) and not list(etc.glob(".restore-*"))


@pytest.mark.usefixtures("as_root")
def test_a_restore_as_root_into_the_service_users_data_dir_goes_on(two_pis, tmp_path, capsys):
    """What the refusals must not stop: root's restore of the kiosk's user's data dir; the
    folders the move-in makes (``keys/``, 0700) were root's: the kiosk lost its issuing key."""
    data, etc, archive = two_pis
    uid, _ = _the_service_users(data)
    log = (data / "kiosk.db").read_bytes()

    assert run_restore(data, etc, archive, "--as-this-gate") == 0

    (aside,) = data.glob("before-restore-*")
    assert (aside / "kiosk.db").read_bytes() == log and aside.stat().st_uid == uid
    assert (data / "kiosk.db").stat().st_uid == uid
    assert all((data / d).stat().st_uid == uid for d in ("keys", "trust", "keys/issuer.key"))
    assert not (data / backup.RESTORE_MARKER).exists() and not list(data.glob(".restore-*"))


def _cut_off(data: Path, etc: Path, archive: Path, monkeypatch) -> None:
    """A genuine restore (root's marker) cut off after the archive's log moved in."""
    with monkeypatch.context() as m:
        cut_at(m, "data/kiosk.db")
        with pytest.raises(Killed):
            run_restore(data, etc, archive, "--as-this-gate")


def _swapped_for(path: Path, stand_in: Path | None, uid: int, gid: int) -> None:
    """What the kiosk's user does in its data dir: ``path`` moved away, a link to
    ``stand_in`` (or, None, a folder of its own with ``keys`` linking to it) in its place."""
    os.rename(path, path.with_name(f"{path.name}.moved"))
    if stand_in is not None:
        os.symlink(stand_in, path)
    else:
        path.mkdir()
        os.symlink(path.parent.parent / "victim", path / "keys")
    os.chown(path, uid, gid, follow_symlinks=False)


@pytest.mark.usefixtures("as_root")
@pytest.mark.parametrize(
    "planted", ["marker_of_another", "stage_link", "aside_link", "stage_of_another"]
)
def test_an_undo_moves_nothing_through_what_the_kiosks_user_put_in_place(
    two_pis, tmp_path, monkeypatch, capsys, planted
):
    """The review's repro: with root's own marker, the undo followed a link put in place of
    the stage (root wrote the kiosk's user's file into a root-only folder) or of the folder
    set aside (a root-only file pulled into the data dir), then failed for ever on rmtree."""
    data, etc, archive = two_pis
    uid, gid = _the_service_users(data)
    victim = _root_only(data.parent, "victim")
    (victim / "kiosk.db").write_text("ROOT-ONLY")
    _cut_off(data, etc, archive, monkeypatch)
    (stage,) = data.glob(".restore-*")
    (aside,) = data.glob("before-restore-*")
    if planted == "marker_of_another":
        os.chown(data / backup.RESTORE_MARKER, uid, gid)
    else:
        path = {"stage": stage, "aside": aside}[planted.split("_")[0]]
        _swapped_for(path, victim if planted.endswith("link") else None, uid, gid)
    before = files_of(data, etc, victim)
    capsys.readouterr()

    undo = ["restore", "--undo", "--data", str(data), "--config", str(etc / "kiosk.toml")]
    assert main(undo) == 1

    err = capsys.readouterr().err
    assert "cannot be undone" in err
    assert ("not written by this user" if planted == "marker_of_another" else "this user's") in err
    assert files_of(data, etc, victim) == before
    assert os.listdir(victim) == ["kiosk.db"] and victim.stat().st_uid == 0
    assert (data / backup.RESTORE_MARKER).exists()  # the kiosk still refuses to start


@pytest.mark.usefixtures("as_root")
def test_a_stage_swapped_for_a_link_while_owned_gives_nothing_away(
    two_pis, tmp_path, monkeypatch, capsys
):
    """The stage is in the kiosk's user's data dir: swapped for a link to /etc right after
    it was looked at, the restore's chown of each staged file went through it."""
    data, etc, archive = two_pis
    uid, gid = _the_service_users(data)
    victim = _root_only(tmp_path, "victim")
    (victim / "kiosk.db").write_text("ROOT-ONLY")
    real = backup.our_folder

    def then_swapped(path):
        real(path)
        if path.parent == data and path.name.startswith(backup.RESTORE_STAGE_PREFIX):
            _swapped_for(path, victim, uid, gid)

    monkeypatch.setattr(backup, "our_folder", then_swapped)

    assert run_restore(data, etc, archive, "--as-this-gate") == 1

    assert "is not a folder of this user's" in capsys.readouterr().err
    assert (victim / "kiosk.db").stat().st_uid == 0 and victim.stat().st_uid == 0
    assert os.listdir(victim) == ["kiosk.db"] and (victim / "kiosk.db").read_text() == "ROOT-ONLY"
    assert not (data / backup.RESTORE_MARKER).exists()


@pytest.mark.usefixtures("as_root")
def test_a_folder_the_move_in_made_swapped_for_a_link_takes_no_file_elsewhere(
    two_pis, tmp_path, monkeypatch, capsys
):
    """The move-in made ``keys/`` in the kiosk's user's data dir, looked at it, then moved
    the archive's key in by its path: a link swapped in between took root's move to /root."""
    data, etc, archive = two_pis
    uid, gid = _the_service_users(data)
    victim = _root_only(tmp_path, "victim")
    (victim / "kiosk.db").write_text("ROOT-ONLY")
    real = os.replace

    log = (data / "kiosk.db").read_bytes()

    def swapped_first(source, target, **at):
        key = test_backup.moved(source, target, **at)[1] == str(data / "keys" / "issuer.key")
        if key and not (data / "keys").is_symlink():
            _swapped_for(data / "keys", victim, uid, gid)
        return real(source, target, **at)

    with monkeypatch.context() as m:
        m.setattr(os, "replace", swapped_first)
        assert run_restore(data, etc, archive, "--as-this-gate") == 1

    err = capsys.readouterr().err
    assert "keys is not a folder of this user's" in err and "restore --undo" in err
    assert os.listdir(victim) == ["kiosk.db"] and (victim / "kiosk.db").stat().st_uid == 0
    (data / "keys").unlink()  # what the refusal asks: remove what the restore did not make
    undo = ["restore", "--undo", "--data", str(data), "--config", str(etc / "kiosk.toml")]
    assert main(undo) == 0
    assert (data / "kiosk.db").read_bytes() == log and os.listdir(victim) == ["kiosk.db"]


@pytest.mark.usefixtures("as_root")
def test_a_stage_swapped_for_a_link_while_extracting_makes_no_file_elsewhere(
    two_pis, tmp_path, monkeypatch, capsys
):
    """The stage is in the kiosk's user's data dir: swapped for a link to /root while the
    archive's files were written into it by their paths, root made the archive's files (its
    keys, by their names) in the folder the link named."""
    data, etc, archive = two_pis
    uid, gid = _the_service_users(data)
    victim = _root_only(tmp_path, "victim")
    real = backup.tarfile.TarFile.extractfile

    def swapped_first(tar, member):
        first = not list(data.glob(".restore-*.moved"))
        if getattr(member, "name", "").startswith("data/") and first:
            (stage,) = data.glob(".restore-*")
            _swapped_for(stage, victim, uid, gid)
        return real(tar, member)

    monkeypatch.setattr(backup.tarfile.TarFile, "extractfile", swapped_first)

    assert run_restore(data, etc, archive, "--as-this-gate") == 1

    assert "is not a folder of this user's" in capsys.readouterr().err
    assert os.listdir(victim) == [] and victim.stat().st_uid == 0
    assert not (data / backup.RESTORE_MARKER).exists()


def test_an_undo_removes_the_empty_folders_the_archive_brought_and_no_other(
    two_pis, monkeypatch, capsys
):
    """This Pi had no ``keys/`` and an empty ``credentials/``: the restore cut off after
    moving the archive's key in, undone, left an empty ``keys/`` this Pi never had."""
    data, etc, archive = two_pis
    for key in (data / "keys").iterdir():
        key.unlink()
    (data / "keys").rmdir()
    (etc / "credentials" / "token_pepper").unlink()
    before = files_of(data, etc)
    _cut_off(data, etc, archive, monkeypatch)
    assert (data / "keys" / "issuer.key").exists()

    undo = ["restore", "--undo", "--data", str(data), "--config", str(etc / "kiosk.toml")]
    assert main(undo) == 0

    assert files_of(data, etc) == before
    assert not (data / "keys").exists()  # the archive's, made by the restore
    assert (etc / "credentials").is_dir()  # this Pi's, empty before the restore too
    assert not list(data.glob(".restore-*")) and not list(etc.glob(".restore-*"))


def test_the_folders_above_a_deeper_file_are_made_through_no_link(tmp_path):
    """``_make_parents`` made ``a/b`` by its path from the data dir: a link the kiosk's user put
    at ``a`` had root make ``b`` where it pointed (safe only while every path the archive holds
    was one folder deep). Each folder is made in the one above by its descriptor."""
    here, victim = tmp_path / "here", _root_only(tmp_path, "victim")
    here.mkdir()
    os.symlink(victim, here / "a")
    fd = os.open(here, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(backup.NotOurFolder, match="a is not a folder of this user's"):
            backup._make_parents("a/b/issuer.key", fd)
        backup._make_parents("x/y/z/issuer.key", fd, 0o750)
    finally:
        os.close(fd)
    assert os.listdir(victim) == []
    assert (here / "x" / "y" / "z").is_dir() and not (
        here / "x" / "y" / "z" / "issuer.key"
    ).exists()


def test_a_connection_to_a_staged_file_holds_only_the_stages_files(tmp_path):
    """What opens a staged file by its path (SQLite) is checked to hold that very file: a
    link swapped in and back around the opening would leave the stage's path as it was.
    SQLite is given the held descriptor's path: the folder held, wherever its name went."""
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    with backup.held_stage(tmp_path, backup.RESTORE_STAGE_PREFIX) as staged:
        sqlite3.connect(staged.path / "kiosk.db").close()
        with pytest.raises(backup.NotOurFolder, match="kiosk.db is not the file staged there"):
            staged.connect("kiosk.db", lambda: sqlite3.connect(other))
        path = staged.sqlite_path("kiosk.db")
        moved = tmp_path / "moved"
        staged.path.rename(moved)
        staged.path.symlink_to(tmp_path)
        conn = staged.connect("kiosk.db", lambda: sqlite3.connect(path))
        conn.execute("CREATE TABLE t (x)")
        conn.close()
        assert not (tmp_path / "kiosk.db").exists()
        assert sqlite3.connect(moved / "kiosk.db").execute("SELECT * FROM t").fetchall() == []
        staged.path.unlink()
        moved.rename(staged.path)
        os.symlink(tmp_path, staged.path / "link")
        with pytest.raises(backup.NotOurFolder, match="link is not a file of this user's"):
            staged.file("link")
