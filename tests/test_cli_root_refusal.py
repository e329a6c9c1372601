"""``sudo kiosk keys new`` and ``sudo kiosk calibrate ...`` by hand on the service's data dir left
root-owned files there (a key the daemon could not read, a calibration.json the guard console's
Calibration page could not rewrite): refused before anything is written, as ``kiosk run`` and
every verb that opens the database are (``errors.refuse_root_over``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from checkpoint.cli import errors, main


def _refused(capsys, folder, verb):
    err = capsys.readouterr().err
    assert f"as root on {folder} (owner uid " in err, err
    assert f"sudo kiosk-admin {verb} ..." in err, err


def test_sudo_kiosk_keys_new_in_the_services_keys_folder_is_refused(kiosk_owned, capsys):
    keys = kiosk_owned / "keys"
    keys.mkdir()
    if os.geteuid() == 0:
        os.chown(keys, 4321, 4321)
    assert main(["keys", "new", "--dir", str(keys), "--name", "gate-2027"]) == 1
    _refused(capsys, keys, "keys new")
    assert list(keys.iterdir()) == []


def test_sudo_kiosk_keys_new_of_a_new_folder_in_the_data_dir_is_refused(kiosk_owned, capsys):
    """The folder is made by the verb: the data dir it would be made in is judged."""
    assert main(["keys", "new", "--dir", str(kiosk_owned / "keys" / "2027")]) == 1
    _refused(capsys, kiosk_owned, "keys new")
    assert list(kiosk_owned.iterdir()) == []


#: ``kiosk calibrate``'s actions that write calibration.json.
CALIBRATE_WRITES = [
    ["add", "--clinical", "36.8", "--object", "33.7", "--ambient", "23.5"],
    ["fit"],
    ["remove", "1"],
    ["reset", "--yes"],
]


@pytest.mark.parametrize("action", CALIBRATE_WRITES, ids=lambda a: a[0])
def test_sudo_kiosk_calibrate_that_writes_on_the_services_data_dir_is_refused(
    kiosk_owned, capsys, action
):
    assert main(["calibrate", "--data", str(kiosk_owned), *action]) == 1
    _refused(capsys, kiosk_owned, "calibrate")
    assert list(kiosk_owned.iterdir()) == []


def test_sudo_kiosk_calibrate_show_only_reads_and_is_not_refused(kiosk_owned, capsys):
    assert main(["calibrate", "--data", str(kiosk_owned), "show", "--json"]) == 0
    assert "as root on" not in capsys.readouterr().err
    assert list(kiosk_owned.iterdir()) == []


def test_root_in_its_own_folder_makes_its_keys(tmp_path, monkeypatch, capsys):
    """An office PC's admin (or a container) as root in a folder root owns: nothing is left
    another's, nothing refused."""
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(errors, "_owner", lambda _path: 0)
    assert main(["keys", "new", "--dir", str(tmp_path / "keys")]) == 0
    assert (tmp_path / "keys" / "issuer.pub").is_file()


def test_the_installer_making_the_issuing_key_as_root_says_it_gives_it_to_the_service(
    kiosk_owned, monkeypatch, capsys
):
    """scripts/install runs `kiosk keys new` as root into the kiosk user's keys folder and
    chowns the key just after: refused like a hand run, the first install of every gate had no
    issuing key. The installer says it chowns after (KIOSK_CHOWNS_AFTER=1), and is let."""
    keys = kiosk_owned / "keys"
    keys.mkdir()
    if os.geteuid() == 0:
        os.chown(keys, 4321, 4321)
    monkeypatch.setenv(errors.CHOWNS_AFTER, "1")
    assert main(["keys", "new", "--dir", str(keys), "--name", "issuer"]) == 0
    assert (keys / "issuer.key").is_file() and "as root on" not in capsys.readouterr().err
    install = (Path(__file__).parents[1] / "scripts" / "install").read_text()
    assert "KIOSK_CHOWNS_AFTER=1 kiosk_verb keys new" in install
