"""A kiosk run without a ``session_key`` credential (a hand-made unit, ``kiosk run`` by hand)
signed its cookies with a key of its process: every guard at the console was signed out at
each restart (an update, a crash, a power cut at the gate). The daemon now keeps a key of its
own in its data dir, made once (0600), so sessions outlive a restart as with the credential;
an empty credential (a file cut short) is refused as a short one is (test_credentials_start)."""

from __future__ import annotations

import logging
import stat

import pytest
from guard_support import BASE, close_core, login, make_app, make_core
from starlette.testclient import TestClient


def _console(core, monkeypatch, cookies=None) -> TestClient:
    monkeypatch.delenv("KIOSK_SESSION_KEY", raising=False)  # make_core hands one: none here
    client = TestClient(make_app(core), base_url=BASE)
    if cookies is not None:
        client.cookies = cookies
    return client


def test_without_the_credential_a_guard_stays_signed_in_across_a_restart(
    data_dir, clock, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    core = make_core(data_dir, clock, monkeypatch)
    try:
        with _console(core, monkeypatch) as browser:
            login(browser)
            cookies = browser.cookies
        # The daemon started again: its console built anew, its key read from the data dir.
        with _console(core, monkeypatch, cookies) as browser:
            page = browser.get("/guard", follow_redirects=False)
        assert page.status_code == 200, page.headers.get("location")
    finally:
        close_core(core)
    kept = data_dir / "session_key"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    key = kept.read_text().strip()
    assert len(key) == 44 and key not in caplog.text


def test_a_kept_key_cut_short_is_made_again_and_one_that_cannot_be_kept_is_said(tmp_path, caplog):
    from kiosk.secrets import kept_key

    (tmp_path / "session_key").write_text("cut-sh")
    made = kept_key(tmp_path, "session_key")
    assert made is not None and len(made) == 44
    assert kept_key(tmp_path, "session_key") == made
    not_a_folder = tmp_path / "session_key"  # a file where the data dir should be
    with caplog.at_level(logging.WARNING, logger="kiosk.secrets"):
        assert kept_key(not_a_folder, "session_key") is None
    assert "guards sign in again after each restart" in caplog.text
    assert made not in caplog.text


def _planted(folder, how: str):
    """A ``session_key`` in ``folder`` the daemon did not make alone: its text, or None."""
    import os

    planted = "A" * 44  # a key someone else chose
    path = folder / "session_key"
    if how == "fifo":
        os.mkfifo(path, 0o600)  # a read of it would wait for ever
        return None
    if how == "symlink":
        (folder / "elsewhere").write_text(planted + "\n")
        os.chmod(folder / "elsewhere", 0o600)
        path.symlink_to(folder / "elsewhere")
        return planted
    path.write_text(planted + "\n")
    os.chmod(path, 0o666 if how == "open to all" else 0o600)
    if how == "another user's":
        os.chown(path, 65534, 65534)
    return planted


@pytest.mark.parametrize("how", ["open to all", "another user's", "symlink", "fifo"])
def test_a_kept_key_someone_else_could_have_set_is_not_signed_with(tmp_path, caplog, how):
    """The kept key was taken whatever its owner and mode, through a symlink, from a FIFO
    (the start hung): whoever could write it could forge any guard's cookie. It is now made
    anew, said in the journal (never the key)."""
    import os

    from kiosk.secrets import kept_key

    if how == "another user's" and os.geteuid() != 0:
        pytest.skip("only root can give a file to another user")
    planted = _planted(tmp_path, how)
    with caplog.at_level(logging.WARNING, logger="kiosk.secrets"):
        made = kept_key(tmp_path, "session_key")
    assert made is not None and made != planted and len(made) == 44
    assert "session_key" in caplog.text and "making a new one" in caplog.text
    assert (planted is None or planted not in caplog.text) and made not in caplog.text
    kept = tmp_path / "session_key"
    assert not kept.is_symlink() and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert kept_key(tmp_path, "session_key") == made  # its own, taken from now on
    if how == "symlink":  # the new key is not written where the link pointed
        assert (tmp_path / "elsewhere").read_text().strip() == planted


def test_a_kept_key_file_too_large_to_be_a_key_is_not_taken(tmp_path, caplog):
    """A kept key file over the secrets' bound (a cut-off blob, a wrong file moved there) was
    read to the bound and taken, cut, as the key: it is said and made again."""
    import os

    from kiosk.secrets import MAX_SECRET_BYTES, kept_key

    path = tmp_path / "session_key"
    path.write_bytes(b"k" * (MAX_SECRET_BYTES + 10))
    os.chmod(path, 0o600)
    with caplog.at_level(logging.WARNING, logger="kiosk.secrets"):
        made = kept_key(tmp_path, "session_key")
    assert made is not None and len(made) == 44
    assert "too large" in caplog.text
