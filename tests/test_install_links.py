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
    log = root / "var/lib/kiosk/kiosk.db"
    with sqlite3.connect(log) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE events (seq INTEGER)")
        conn.execute("CREATE TABLE audit (seq INTEGER)")
        conn.execute("INSERT INTO events VALUES (7)")
    conn.close()
    log.chmod(0o640)
    os.chown(log, SERVICE_UID, SERVICE_UID)
    return log


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
