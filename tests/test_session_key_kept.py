"""A kiosk run without a ``session_key`` credential (a hand-made unit, ``kiosk run`` by hand)
signed its cookies with a key of its process: every guard at the console was signed out at
each restart (an update, a crash, a power cut at the gate). The daemon now keeps a key of its
own in its data dir, made once (0600), so sessions outlive a restart as with the credential;
an empty credential (a file cut short) is refused as a short one is (test_credentials_start)."""

from __future__ import annotations

import logging
import stat

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
