"""``kiosk restore`` and the ``[store] path`` the configs name: the restored log goes only to
a plain file name directly in the data dir that the kiosk uses for nothing else; any other
(a folder part, a reserved name, a folder) is refused, exit 2, with nothing changed."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile

import pytest
from test_backup import (  # no_installed_kiosk: autouse here too
    make_gate,
    members,
    no_installed_kiosk,  # noqa: F401
    run_backup,
    run_restore,
)
from test_restore_store_path import daemons_log, events_gate, last_seq

from kiosk import backup


def forge_config(archive, extra: str) -> None:
    """A hostile (or slipped) archive: its etc/kiosk.toml with ``extra`` added, its
    manifest made to agree."""
    files = members(archive)
    config = files["etc/kiosk.toml"] + extra.encode()
    manifest = json.loads(files["MANIFEST.json"])
    for entry in manifest["files"]:
        if entry["name"] == "etc/kiosk.toml":
            entry["sha256"], entry["size"] = hashlib.sha256(config).hexdigest(), len(config)
    files |= {"etc/kiosk.toml": config, "MANIFEST.json": json.dumps(manifest).encode()}
    with tarfile.open(archive, "w") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(body), 0o600
            tar.addfile(info, io.BytesIO(body))


def changed(before: dict[str, bytes | None], folder) -> set[str]:
    """The paths under ``folder`` made, removed or changed since ``before`` (``tree``)."""
    after = tree(folder)
    return {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}


def tree(folder) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes, but the lock file (a restore takes it, as
    the daemon does)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
        for p in sorted(folder.rglob("*"))
        if p.name != "kiosk.lock"
    }


def _forged_for_a_new_pi(tmp_path, clock, config_text: str):
    """Gate north backed up to ``north.kbak`` with ``config_text`` added to the archive's
    config, and a new Pi's gate-1 (2 events) to restore it on: both gates' data and etc."""
    data, etc, log = make_gate(tmp_path / "north", clock)
    log.close()
    assert run_backup(data, etc, tmp_path / "north.kbak") == 0
    forge_config(tmp_path / "north.kbak", config_text)
    new_data, new_etc, new_log = make_gate(tmp_path / "new", clock, "gate-1", events=2)
    new_log.close()
    return data, etc, new_data, new_etc


@pytest.mark.parametrize(
    "store",
    [
        "logs/events.db",  # a folder part: a link swapped in for logs/ moved files from outside
        "trust/events.db",  # in a folder the archive brings: the swap failed half done
        "../events.db",
        "./events.db",
        "restore-in-progress.json",  # the marker: the restored log deleted as it went
        "kiosk.lock",  # truncated by the daemon's lock
        "trust",  # a folder the archive brings
        "calibration.json",
        ".restore-events.db",
        "before-restore-events.db",
        "events.db-wal",
        "events.db-journal",
        "sqlite-tmp",  # SQLite's temp folder the kiosk command sets
        "held-events-20260302T083000Z.ndjson",
    ],
)
def test_an_archive_naming_no_plain_log_file_is_refused_with_nothing_changed(
    tmp_path, clock, capsys, store
):
    data, etc, new_data, new_etc = _forged_for_a_new_pi(
        tmp_path, clock, f'\n[store]\npath = "{store}"\n'
    )
    before = tree(new_data), tree(new_etc)
    capsys.readouterr()

    assert run_restore(new_data, new_etc, tmp_path / "north.kbak", "--as-this-gate") == 2

    err = capsys.readouterr().err
    assert f"the archive's config etc/kiosk.toml sets store.path = {store!r}" in err
    assert "restore such a gate by hand" in err and "nothing was changed" in err
    assert changed(before[0], new_data) == set() and changed(before[1], new_etc) == set()


def test_an_archive_naming_a_folder_of_this_pis_data_dir_is_refused(tmp_path, clock, capsys):
    data, etc, new_data, new_etc = _forged_for_a_new_pi(
        tmp_path, clock, '\n[store]\npath = "pi-sysfs"\n'
    )
    (new_data / "pi-sysfs").mkdir()
    before = tree(new_data)

    assert run_restore(new_data, new_etc, tmp_path / "north.kbak", "--as-this-gate") == 2

    assert f"is a folder in the data dir {new_data}" in capsys.readouterr().err
    assert changed(before, new_data) == set()


def test_this_pis_log_in_a_folder_the_archive_brings_is_refused_not_cut_off(
    tmp_path, clock, capsys
):
    """This Pi's config names trust/events.db: the swap moved trust/ aside with the log in
    it, then failed (ENOTEMPTY) and left a marker no --undo cleared."""
    data, etc, log = events_gate(tmp_path / "north", clock, store="trust/events.db")
    assert run_backup(data, etc, tmp_path / "north.kbak") == 0
    log.close()
    before = tree(data)
    capsys.readouterr()

    assert run_restore(data, etc, tmp_path / "north.kbak") == 2

    err = capsys.readouterr().err
    assert f"this Pi's config {etc / 'kiosk.toml'} sets store.path = 'trust/events.db'" in err
    assert "has a folder part" in err and "nothing was changed" in err
    assert changed(before, data) == set()


def test_put_aside_moves_nothing_through_a_link_in_a_names_folders(tmp_path):
    """The data dir's user swaps ``logs`` for a link between the check and the swap: root's
    put_aside never moves a file from where the link points."""
    data, outside = tmp_path / "data", tmp_path / "outside"
    data.mkdir()
    outside.mkdir()
    (outside / "events.db").write_text("another service's file\n")
    (data / "logs").symlink_to(outside)

    with pytest.raises(backup.NotOurFolder):
        backup.put_aside(data, ["logs/events.db"], "20260302T083000Z")

    assert (outside / "events.db").read_text() == "another service's file\n"


def test_a_broken_config_in_place_says_the_way_on_which_then_restores(tmp_path, clock, capsys):
    data, etc, log = make_gate(tmp_path / "north", clock)
    log.close()
    assert run_backup(data, etc, tmp_path / "north.kbak") == 0
    config = etc / "kiosk.toml"
    good = config.read_bytes()
    config.write_text("[site\nkiosk_id = 'gate-north'\n")  # an edit gone wrong
    capsys.readouterr()

    assert run_restore(data, etc, tmp_path / "north.kbak") == 2

    err = capsys.readouterr().err
    way = f"move it aside (sudo mv {config} {config}.broken) and run the restore again"
    assert way in err and f"{data / 'kiosk.db'} (the default)" in err
    os.rename(config, f"{config}.broken")  # as it says
    assert run_restore(data, etc, tmp_path / "north.kbak") == 0
    assert config.read_bytes() == good
    assert last_seq(daemons_log(data, etc, clock).path) == 3


def test_an_archive_config_that_does_not_load_is_named_as_the_archive_names_it(
    tmp_path, clock, capsys
):
    data, etc, new_data, new_etc = _forged_for_a_new_pi(
        tmp_path, clock, "\n[store]\nnewer_setting = 1\n"
    )

    assert run_restore(new_data, new_etc, tmp_path / "north.kbak", "--as-this-gate") == 2

    err = capsys.readouterr().err
    assert "the archive's config etc/kiosk.toml cannot be read (etc/kiosk.toml: store." in err
    assert backup.RESTORE_STAGE_PREFIX not in err
