"""``kiosk.files.read_bounded``: a file the kiosk did not write is never read whole."""

from __future__ import annotations

import os

import pytest

from kiosk import calibration, secrets
from kiosk.calibration import Calibration, CalibrationError
from kiosk.files import UnreadableFile, read_bounded


def test_a_file_at_the_limit_is_read_and_one_byte_more_is_refused(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    assert read_bounded(path, 10) == b"x" * 10
    with pytest.raises(UnreadableFile, match="larger than 9 bytes") as caught:
        read_bounded(path, 9)
    assert caught.value.why == "too_large"


def test_an_endless_file_is_read_no_further_than_the_limit():
    with pytest.raises(UnreadableFile, match="larger than 4096 bytes"):
        read_bounded("/dev/zero", 4096)


def test_missing_and_unreadable_files_say_which(tmp_path):
    with pytest.raises(UnreadableFile, match="cannot read") as missing:
        read_bounded(tmp_path / "nowhere", 10)
    assert missing.value.why == "missing"
    with pytest.raises(UnreadableFile, match="cannot read") as folder:
        read_bounded(tmp_path, 10)
    assert folder.value.why == "unreadable"
    assert str(tmp_path) not in str(folder.value)  # the caller's error names the file


def test_a_calibration_file_pointing_at_an_endless_device_is_refused_not_read(tmp_path):
    path = tmp_path / "calibration.json"
    os.symlink("/dev/zero", path)
    with pytest.raises(CalibrationError, match="larger than"):
        Calibration.load(path)
    assert Calibration.load(tmp_path / "absent.json") == Calibration()  # missing: the default
    assert calibration.MAX_CALIBRATION_BYTES >= 200 * calibration.MAX_POINTS


def test_a_credential_larger_than_any_is_one_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setattr(secrets, "MAX_SECRET_BYTES", 64)
    (tmp_path / "session_key").write_text("k" * 65)
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    with pytest.raises(secrets.SecretError, match="session_key.*larger than 64 bytes"):
        secrets.get_secret("session_key", env)
    (tmp_path / "session_key").write_text("k" * 64 + "\n")
    with pytest.raises(secrets.SecretError):  # the newline counts: 65 bytes
        secrets.get_secret("session_key", env)
    (tmp_path / "session_key").write_text("k" * 63 + "\n")
    assert secrets.get_secret("session_key", env) == "k" * 63


def test_a_temp_file_a_power_cut_left_beside_a_file_is_removed_by_its_next_write(tmp_path):
    """A power cut between write_atomic's temp file and its rename leaves ``.NAME.xxxxxxxx``
    (a pass card's payload, a cut-off calibration): it stayed beside the file for ever."""
    from kiosk.files import write_atomic

    target = tmp_path / "card.png"
    target.write_bytes(b"old")
    left = tmp_path / ".card.png.k2j_4h5g"
    left.write_bytes(b"half a ca")
    others = [tmp_path / n for n in (".card.png.bak", ".card.png.toolong12", ".other.png.k2j_4h5g")]
    for other in others:
        other.write_bytes(b"not ours")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert not left.exists()
    assert all(other.read_bytes() == b"not ours" for other in others)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["card.png", *(o.name for o in others)]
    )
