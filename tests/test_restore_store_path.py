"""``kiosk restore`` onto a gate whose config names its log (``[store] path``): the restored
log goes to the file the daemon opens, and every check of the restore reads that file."""

from __future__ import annotations

import json
import sqlite3

import pytest
from test_backup import (  # no_installed_kiosk: autouse here too
    make_gate,
    no_installed_kiosk,  # noqa: F401
    passage,
    run_backup,
    run_restore,
)
from test_person_restore import (  # cli_clock: the forget's clock, the test's
    HOUSEHOLD,
    NAME,
    PHONE,
    _damaged,
    _gate,
    _naming,
    cli_clock,  # noqa: F401
)

from checkpoint.cli import main
from kiosk.config import load_config
from kiosk.store import EventLog

STORE_PATH = '\n[store]\npath = "events.db"\n'


def events_gate(root, clock, kiosk_id="gate-north", events=3, store="events.db"):
    """A gate whose config sets ``store.path`` (``events.db``): its log there, no kiosk.db."""
    data, etc, log = make_gate(root, clock, kiosk_id, events)
    log.close()
    (data / store).parent.mkdir(exist_ok=True)
    (data / "kiosk.db").rename(data / store)
    with (etc / "kiosk.toml").open("a") as config:
        config.write(STORE_PATH.replace("events.db", store))
    return data, etc, EventLog(data / store, kiosk_id, clock).open()


def daemons_log(data, etc, clock) -> EventLog:
    """The log ``kiosk run`` opens with this config and data dir."""
    config = load_config(str(etc / "kiosk.toml"))
    return EventLog.from_config(config.store, data, config.site.kiosk_id, clock)


def data_files(data) -> dict[str, bytes]:
    """The data dir's files but the lock file (a restore takes it, as the daemon does)."""
    return {p.name: p.read_bytes() for p in data.iterdir() if p.is_file() and p.suffix != ".lock"}


def last_seq(path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT max(seq) FROM events").fetchone()[0])


def test_a_new_pi_restores_the_log_into_the_file_its_config_names(tmp_path, clock, capsys):
    """(A store.path with a folder part is refused: test_restore_log_name.)"""
    store = "events.db"
    data, etc, log = events_gate(tmp_path / "north", clock, store=store)
    assert run_backup(data, etc, tmp_path / "north.kbak") == 0
    log.close()
    new_data, new_etc = tmp_path / "new" / "data", tmp_path / "new" / "etc"
    new_etc.mkdir(parents=True)
    (new_etc / "kiosk.toml").write_bytes((etc / "kiosk.toml").read_bytes())

    assert run_restore(new_data, new_etc, tmp_path / "north.kbak") == 0

    err = capsys.readouterr().err
    assert f"verify-log --db {new_data / store}" in err  # the drill's check names it
    assert not (new_data / "kiosk.db").exists()
    restored = daemons_log(new_data, new_etc, clock).open()
    try:
        assert restored.verify().ok
        assert restored.append(passage(9)).seq == 4  # the gate's seq goes on, in its log
        assert [a["action"] for a in restored.audits()][:1] == ["guard.add"]
    finally:
        restored.close()


def test_the_archive_s_config_names_the_file_over_a_fresh_install_s(tmp_path, clock, capsys):
    """A fresh install's config (its log DATA/kiosk.db) is replaced by the archive's, which
    names events.db: the log goes there, and the fresh install's is kept aside."""
    data, etc, log = events_gate(tmp_path / "north", clock)
    assert run_backup(data, etc, tmp_path / "north.kbak") == 0
    log.close()
    new_data, new_etc, new_log = make_gate(tmp_path / "new", clock, "gate-1", events=0)
    new_log.close()

    assert run_restore(new_data, new_etc, tmp_path / "north.kbak", "--as-this-gate") == 0

    assert last_seq(new_data / "events.db") == 3
    assert not (new_data / "kiosk.db").exists()
    (aside,) = new_data.glob("before-restore-*")
    assert (aside / "kiosk.db").is_file()
    assert daemons_log(new_data, new_etc, clock).path == new_data / "events.db"


def test_this_pis_own_log_in_the_configured_file_is_never_taken_back(tmp_path, clock, capsys):
    data, etc, log = events_gate(tmp_path / "north", clock)
    assert run_backup(data, etc, tmp_path / "north.kbak") == 0
    log.append(passage(7))  # the gate decided on after its backup
    log.close()
    before = (data / "events.db").read_bytes()

    assert run_restore(data, etc, tmp_path / "north.kbak", "--as-this-gate") == 2

    err = capsys.readouterr().err
    assert "seq 3" in err and "seq 4" in err and "backwards" in err
    assert (data / "events.db").read_bytes() == before
    assert not (data / "kiosk.db").exists()
    assert not list(data.glob("before-restore-*")) and not list(data.glob(".restore-*"))


@pytest.mark.usefixtures("cli_clock")
def test_the_forgets_of_the_configured_log_are_made_again(tmp_path, clock, capsys):
    data, etc, log = _gate(tmp_path, clock)
    log.close()
    (data / "kiosk.db").rename(data / "events.db")
    with (etc / "kiosk.toml").open("a") as config:
        config.write(STORE_PATH)
    db = data / "events.db"
    assert run_backup(data, etc, tmp_path / "north.kbak") == 0
    forget = ["person", "forget", "--name", NAME, "--household", HOUSEHOLD, "--yes"]
    assert main([*forget, "--db", str(db)]) == 0
    _damaged(db)  # its events unreadable (judged as no log), its forgets' records read
    capsys.readouterr()

    assert run_restore(data, etc, tmp_path / "north.kbak") == 0

    out, err = capsys.readouterr()
    assert json.loads(out)["forgets_reapplied"]["forgets"] == 1
    assert _naming(db, NAME, PHONE) == []
    (aside,) = data.glob("before-restore-*")
    assert (aside / "events.db").is_file()  # the way back, as it was


def test_a_config_in_place_that_does_not_load_refuses_the_restore(tmp_path, clock, capsys):
    data, etc, log = events_gate(tmp_path / "north", clock)
    assert run_backup(data, etc, tmp_path / "north.kbak") == 0
    log.close()
    (etc / "kiosk.toml").write_text("[store\npath = 'events.db'\n")  # a broken edit
    before = data_files(data)

    assert run_restore(data, etc, tmp_path / "north.kbak") == 2

    err = capsys.readouterr().err
    assert "cannot be read" in err and "store.path" in err and "nothing was changed" in err
    assert data_files(data) == before
    assert not list(data.glob("before-restore-*")) and not list(etc.glob("before-restore-*"))


def test_a_log_outside_the_data_dir_is_refused_with_nothing_changed(tmp_path, clock, capsys):
    """A gate whose log is on a USB disk (an absolute store.path outside the data dir): a
    restore moves files within the data dir and the config folder only; it says so."""
    data, etc, log = events_gate(tmp_path / "north", clock)
    log.close()
    ssd = tmp_path / "ssd"
    ssd.mkdir()
    (data / "events.db").rename(ssd / "events.db")
    config = (etc / "kiosk.toml").read_text().replace('"events.db"', f'"{ssd}/events.db"')
    (etc / "kiosk.toml").write_text(config)
    assert run_backup(data, etc, tmp_path / "north.kbak") == 0
    for file in list(ssd.iterdir()):  # the new Pi's disk, empty
        file.unlink()
    new_data, new_etc = tmp_path / "new" / "data", tmp_path / "new" / "etc"
    new_etc.mkdir(parents=True)

    assert run_restore(new_data, new_etc, tmp_path / "north.kbak") == 2

    err = capsys.readouterr().err
    assert f"{ssd}/events.db, outside the data dir" in err and "nothing was changed" in err
    assert not list(ssd.iterdir()) and not list(new_etc.iterdir())
    assert not new_data.exists()  # not made, nor its lock file: the refused restore made none
