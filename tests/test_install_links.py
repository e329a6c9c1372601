"""scripts/install as root in the service user's folder: what is left of following its links.

The empty issuing key's removal, the issuing key's temporary folder, and the event log's copy
before an update, each run on a throwaway root whose /var/lib/kiosk belongs to a service user
(uid ``SERVICE_UID``), as on a Pi.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_install import SERVICE_UID, _installer_body, _owner_mode, _service_root, needs_root

#: Each test runs the installer's functions in bash against a throwaway root.
pytestmark = pytest.mark.slow


def _keys(root: Path) -> Path:
    keys = root / "var/lib/kiosk/keys"
    keys.mkdir()
    os.chown(keys, SERVICE_UID, SERVICE_UID)
    return keys


#: `keys new` as the installer runs it (kiosk_verb keys new --dir DIR --name issuer), standing
#: in for the program: it notes the folder it is given (path, mode, owner) and makes the pair.
FAKE_KEYS_NEW = (
    "kiosk_verb() {\n"
    '    stat -c "%n %a %u" "$4" >"$NOTES"\n'
    '    printf "the key" >"$4/issuer.key"; printf "its public half" >"$4/issuer.pub"\n'
    "}\n"
)


def _notes(path: Path) -> tuple[str, str, str]:
    name, mode, uid = path.read_text().split()
    return name, mode, uid


@needs_root
@pytest.mark.parametrize("planted", ["keys", "keys/issuer.key"])
def test_an_empty_issuing_key_is_removed_through_no_link(tmp_path, planted):
    """An empty issuer.key (a power cut while `keys new` made it) was removed with
    `rm -f keys/issuer.key keys/issuer.pub` by path, as root: with keys -> a folder of root's
    holding an empty issuer.key, root removed that file. A link at keys, or at the key, is now
    refused and left as it is, with what it points at."""
    root = _service_root(tmp_path)
    victim = root / "target/issuer.key"
    victim.write_bytes(b"")
    if planted == "keys":
        (root / "var/lib/kiosk/keys").symlink_to(root / "target")
    else:
        (_keys(root) / "issuer.key").symlink_to(victim)
    notes = tmp_path / "notes"
    env = dict(os.environ, NOTES=str(notes))
    out = _installer_body(root, FAKE_KEYS_NEW + "STEP=issuer-key\nstep_issuer_key || true", env)
    assert victim.exists() and _owner_mode(victim) == (0, 0, 0o600), out
    assert (root / "var/lib/kiosk" / planted).is_symlink(), out
    assert "[issuer-key] FAIL: " in out and "symbolic link" in out, out
    assert not notes.exists(), out  # no new pair made


@needs_root
def test_the_issuing_key_is_made_in_a_folder_of_roots_own_on_the_target(tmp_path):
    """The new issuing key was made in `mktemp -d`, in $TMPDIR: perhaps a world-readable folder,
    perhaps the tmpfs of the user whose sudo this is. It is made in a folder only root can
    enter (0700) in the target's /var/lib, removed once the key is in keys/; an empty key
    before it is removed (its folder is a real one)."""
    root = _service_root(tmp_path)
    keys = _keys(root)
    (keys / "issuer.key").write_bytes(b"")
    os.chown(keys / "issuer.key", SERVICE_UID, SERVICE_UID)
    tmpdir, notes = tmp_path / "tmpdir", tmp_path / "notes"
    tmpdir.mkdir()
    env = dict(os.environ, NOTES=str(notes), TMPDIR=str(tmpdir))
    out = _installer_body(root, FAKE_KEYS_NEW + "STEP=issuer-key\nstep_issuer_key", env)
    made, mode, uid = _notes(notes)
    assert Path(made).parent == root / "var/lib" and (mode, uid) == ("700", "0"), out
    assert not Path(made).exists() and list(tmpdir.iterdir()) == [], out
    assert (keys / "issuer.key").read_text() == "the key", out
    assert _owner_mode(keys / "issuer.key") == (SERVICE_UID, SERVICE_UID, 0o600), out
    assert "did: created the issuing key" in out, out


@needs_root
def test_the_issuing_keys_folder_is_removed_when_the_install_is_cut_off(tmp_path):
    """Cut off while the key was made (Ctrl-C, a dropped SSH session: the install's traps exit
    130), the folder holding the new key was left behind, with the key in it."""
    root = _service_root(tmp_path)
    _keys(root)
    tmpdir, notes = tmp_path / "tmpdir", tmp_path / "notes"
    tmpdir.mkdir()
    env = dict(os.environ, NOTES=str(notes), TMPDIR=str(tmpdir))
    cut_off = FAKE_KEYS_NEW.replace("\n}\n", '\n    kill -TERM "$$"\n}\n')
    body = cut_off + "trap 'exit 130' TERM\nSTEP=issuer-key\nstep_issuer_key"
    out = _installer_body(root, body, env)
    made, _, _ = _notes(notes)
    assert not Path(made).exists() and list(tmpdir.iterdir()) == [], out
    assert list((root / "var/lib/kiosk/keys").iterdir()) == [], out


@needs_root
def test_the_issuing_keys_folder_a_power_cut_left_is_removed_by_the_next_run(tmp_path):
    """A power cut (or a SIGKILL) while the key was made runs no EXIT trap: the folder of root's
    in /var/lib, with a copy of the live issuing key, stayed there for good (in $TMPDIR it had
    gone at the next boot). The next run removes it, and only such a folder: root's, 0700."""
    root = _service_root(tmp_path)
    keys = _keys(root)
    for name, text in (("issuer.key", "the key"), ("issuer.pub", "its public half")):
        (keys / name).write_text(text)
        os.chown(keys / name, SERVICE_UID, SERVICE_UID)
    (keys / "issuer.key").chmod(0o600)
    var_lib = root / "var/lib"
    left = var_lib / "kiosk-install.Ab12Cd"
    left.mkdir(mode=0o700)
    (left / "issuer.key").write_text("the key")
    other = var_lib / "kiosk-install.Zz99Yy"  # not such a folder: 0755
    other.mkdir(mode=0o755)
    link = var_lib / "kiosk-install.Ln0000"
    link.symlink_to(root / "target")
    out = _installer_body(root, "STEP=issuer-key\nstep_issuer_key")
    assert not left.exists() and f"did: remove {left}" in out, out
    assert other.is_dir() and link.is_symlink(), out
    assert (root / "target/issuer.key").exists(), out
    assert (keys / "issuer.key").read_text() == "the key", out


# --- the event log's copy before an update -----------------------------------------------------


@pytest.fixture
def open_base() -> Iterator[Path]:
    """A folder every user can pass through (pytest's own are root's, 0700): the service user's
    part of the copy must reach its folder, as it does through /var/lib on a Pi."""
    base = Path(tempfile.mkdtemp(prefix="install-links-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


def _service_log(root: Path) -> Path:
    return _log_in(root / "var/lib/kiosk")


#: The service user's move between the installer's link check and SQLite's open: a
#: sitecustomize in the installer's Python plants a link at the copy's part just before SQLite
#: opens it (as the service user could have, at that moment).
SWAP_AT_OPEN = """
import os, sqlite3
_connect = sqlite3.connect
def connect(path, *args, **kwargs):
    if str(path).endswith(".part"):
        os.symlink(os.environ["VICTIM"], path)
    return _connect(path, *args, **kwargs)
sqlite3.connect = connect
"""


@needs_root
def test_a_link_swapped_in_after_the_check_leads_the_log_copy_nowhere(open_base):
    """The log's copy checked each name for a link, then SQLite opened them by name as root:
    a link put in between (kiosk.db.before-update.part -> a database of root's) had root write
    the event log over that file and give it the log's mode. The copy is now made as the user
    who owns the log's folder: the link leads where that user cannot write; nothing of root's
    changes, and the copy is refused."""
    root = _service_root(open_base / "root")
    log = _service_log(root)
    victim = root / "target/root.db"
    with sqlite3.connect(victim) as conn:
        conn.execute("CREATE TABLE secret (x)")
    conn.close()
    victim.chmod(0o600)
    before = victim.read_bytes()
    hook = open_base / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SWAP_AT_OPEN)
    env = dict(os.environ, PYTHONPATH=str(hook), VICTIM=str(victim))
    body = f'PY={sys.executable}\nSTEP=start\nlog_copy_tool keep "{log}" "{log}.before-update"'
    out = _installer_body(root, body, env)
    assert victim.read_bytes() == before and _owner_mode(victim) == (0, 0, 0o600), out
    assert "cannot copy" in out and not Path(f"{log}.before-update").exists(), out


@needs_root
def test_the_log_copy_in_the_service_users_folder_is_the_logs_own(open_base):
    """Made as the service user, the copy holds the log (its -wal too), and is the log's owner's
    with the log's mode; the -wal and -shm beside the log stay the daemon's. Put back the same
    way, it is the log again, the daemon's."""
    root = _service_root(open_base / "root")
    log = _service_log(root)
    body = f'PY={sys.executable}\nSTEP=start\nlog_copy_tool keep "{log}" "{log}.before-update"'
    out = _installer_body(root, body)
    copy = Path(f"{log}.before-update")
    assert _owner_mode(copy) == (SERVICE_UID, SERVICE_UID, 0o640), out
    for path in log.parent.iterdir():
        assert path.lstat().st_uid == SERVICE_UID, (path, out)
    assert not stat.S_ISLNK(copy.lstat().st_mode)
    with sqlite3.connect(f"file:{copy}?immutable=1", uri=True) as conn:
        assert conn.execute("SELECT seq FROM events").fetchall() == [(7,)], out
    conn.close()
    out = _installer_body(root, body.replace("log_copy_tool keep", "log_copy_tool back"))
    assert "put the event log back as it was before the update (7 events, 0 audit rows" in out, out
    assert not copy.exists() and _owner_mode(log) == (SERVICE_UID, SERVICE_UID, 0o640), out


# --- whom the log's copy is made as ---------------------------------------------------------------

#: A third user: the Pi's login user, whose disk the log may be kept on.
THIRD_UID = 4322


def _folder(path: Path, uid: int, gid: int, mode: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, gid)
    path.chmod(mode)
    return path


def _log_in(folder: Path) -> Path:
    """The event log (WAL, the service user's, 0640) in ``folder``."""
    log = folder / "kiosk.db"
    with sqlite3.connect(log) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE events (seq INTEGER)")
        conn.execute("CREATE TABLE audit (seq INTEGER)")
        conn.execute("INSERT INTO events VALUES (7)")
    conn.close()
    log.chmod(0o640)
    os.chown(log, SERVICE_UID, SERVICE_UID)
    return log


def _copy_tool(root: Path, action: str, log: Path) -> str:
    body = f'PY={sys.executable}\nSTEP=start\nlog_copy_tool {action} "{log}" "{log}.before-update"'
    return _installer_body(root, body)


def _daemon_writes(log: Path) -> bool:
    """The daemon's write into its log, as the service user (its own group only), in a child
    of this process (the test's Python may be in a folder that user cannot enter)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.setgroups([])
            os.setresgid(SERVICE_UID, SERVICE_UID, SERVICE_UID)
            os.setresuid(SERVICE_UID, SERVICE_UID, SERVICE_UID)
            conn = sqlite3.connect(log)
            with conn:
                conn.execute("INSERT INTO events VALUES (8)")
            conn.close()
            code = 0
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


#: Where a site keeps its log (``store.path``) beside the default: the folders above it.
PLACES = {
    # A disk of the Pi user's, the kiosk group given write: the copy ran as that user and
    # left the log's -wal and -shm its own, 0640: the daemon could not write its log after.
    "a third user's folder, the service group writing": [(THIRD_UID, SERVICE_UID, 0o770)],
    # Refused as a folder of root's others can change: no copy, no update.
    "root's folder, the service group writing": [(0, SERVICE_UID, 0o770)],
    # The copy ran as the disk's owner, who cannot enter the service user's folder below.
    "the service user's folder on a third user's disk": [
        (THIRD_UID, THIRD_UID, 0o755),
        (SERVICE_UID, SERVICE_UID, 0o750),
    ],
}


@needs_root
@pytest.mark.parametrize("place", PLACES)
def test_the_log_copy_is_made_and_put_back_as_the_logs_owner(open_base, place):
    """The log's copy was made as the owner of the first folder on its way others than root
    can change: a third user's folder had the -wal and -shm left that user's (the daemon, after
    a switch back: "attempt to write a readonly database", no pass until someone chowned), and
    updates that had worked were refused for good, with a word about room on the card. It is
    made, and put back, as the log's owner: everything beside the log stays the daemon's, and
    the daemon writes its log after."""
    root = _service_root(open_base / "root")
    folder = root / "mnt"
    for i, (uid, gid, mode) in enumerate(PLACES[place]):
        folder = _folder(folder / f"d{i}", uid, gid, mode)
    log = _log_in(folder)
    out = _copy_tool(root, "keep", log)
    copy = Path(f"{log}.before-update")
    assert _owner_mode(copy) == (SERVICE_UID, SERVICE_UID, 0o640), out
    for path in folder.iterdir():
        assert path.lstat().st_uid == SERVICE_UID, (path, out)
    out = _copy_tool(root, "back", log)
    assert "put the event log back as it was before the update (7 events" in out, out
    assert not copy.exists() and _owner_mode(log) == (SERVICE_UID, SERVICE_UID, 0o640), out
    for path in folder.iterdir():
        assert path.lstat().st_uid == SERVICE_UID, (path, out)
    assert _daemon_writes(log), out


@needs_root
def test_the_log_copy_runs_with_the_service_users_own_group(open_base):
    """The copy ran with the group of the log's folder: a folder of the service user's whose
    group is root's had it run with group 0 (and leave the copy root's group). It runs with
    the service user's own primary group, from the target's passwd."""
    root = _service_root(open_base / "root")
    folder = _folder(root / "srv/kiosk", SERVICE_UID, 0, 0o750)
    log = _log_in(folder)
    out = _copy_tool(root, "keep", log)
    assert _owner_mode(Path(f"{log}.before-update")) == (SERVICE_UID, SERVICE_UID, 0o640), out


@needs_root
def test_a_log_folder_the_owner_cannot_write_in_is_named_with_its_way_out(open_base):
    """A log directly in a third user's folder (0755): the copy ran as that user, could not
    open the log, and said to look at the room on the card. It now says as whom it copied,
    which folder it could not use and what to do, and says nothing of room."""
    root = _service_root(open_base / "root")
    folder = _folder(root / "mnt/ssd", THIRD_UID, THIRD_UID, 0o755)
    log = _log_in(folder)
    out = _copy_tool(root, "keep", log)
    assert f"as kiosk: kiosk cannot write in {folder}" in out, out
    assert f"chown kiosk:kiosk {folder}" in out and "room on the card" not in out, out
    assert sorted(p.name for p in folder.iterdir()) == ["kiosk.db"], out


@needs_root
def test_a_folder_anyone_can_change_is_still_refused_and_said_so(open_base):
    """A world-writable folder without the sticky bit on the log's way: anyone could plant a
    link there; refused, named, with no word of room on the card."""
    root = _service_root(open_base / "root")
    shared = _folder(root / "srv/shared", 0, 0, 0o777)
    log = _log_in(_folder(shared / "kiosk", SERVICE_UID, SERVICE_UID, 0o750))
    out = _copy_tool(root, "keep", log)
    assert f"anyone can change {shared} (mode 777, no sticky bit)" in out, out
    assert "room on the card" not in out, out
    assert not Path(f"{log}.before-update").exists(), out


@needs_root
def test_a_file_beside_the_log_that_is_not_the_owners_fails_the_copy_loudly(open_base):
    """A -wal or -shm beside the log that is not the log owner's (root's sqlite3 shell, cut
    off) leaves the daemon unable to write its log: the copy says so, naming the file and the
    way out, instead of leaving it so in silence."""
    root = _service_root(open_base / "root")
    folder = _folder(root / "srv/kiosk", SERVICE_UID, SERVICE_UID, 0o750)
    log = _log_in(folder)
    shm = Path(f"{log}-shm")
    shm.write_bytes(b"")
    shm.chmod(0o644)
    out = _copy_tool(root, "keep", log)
    assert f"{shm} is uid 0's, not the log owner's (uid {SERVICE_UID})" in out, out
    assert f"chown --reference={log} {shm}" in out, out


@needs_root
def test_a_log_of_roots_in_a_folder_others_can_change_is_not_copied_as_root(open_base):
    """Root's own log where the service user can change the folder: not opened as root (a
    link put in could lead root's SQLite anywhere), nor as a third user; refused, with the way
    out, and nothing of room on the card."""
    root = _service_root(open_base / "root")
    folder = _folder(root / "srv/kiosk", SERVICE_UID, SERVICE_UID, 0o750)
    log = _log_in(folder)
    os.chown(log, 0, 0)
    out = _copy_tool(root, "keep", log)
    assert f"as root: the log is root's, and others can change {folder}" in out, out
    assert f"chown kiosk: {log}*" in out and "room on the card" not in out, out
    assert sorted(p.name for p in folder.iterdir()) == ["kiosk.db"], out
