"""A credential ``kiosk run`` cannot use (a bad ``guard_users`` line, an empty or short
``token_pepper``, a short ``session_key``, one that is not text) stops the start at once with
exit 2, before anything is opened, so that kiosk.service (``RestartPreventExitStatus=2``)
stays stopped with the line in ``systemctl status``. It was exit 1, found once the event log
had opened (and migrated), and systemd started the daemon again every 3 s for ever, the gate
locked."""

from __future__ import annotations

import json

import pytest
from test_cli_regressions import _one_line_error, _run_with_credentials

from checkpoint.cli import main

KEY = "k" * 44  # as long as the installer's


@pytest.mark.parametrize(
    ("credentials", "said"),
    [
        ({"guard_users": b"admin:admin\n"}, "guard_users line 1: expected name:role:hash"),
        ({"token_pepper": b"\n"}, "credential token_pepper is empty"),
        ({"session_key": b"short\n"}, "credential session_key is too short"),
        ({"screen_key": b"\xff\xfe not text"}, "credential screen_key"),
    ],
)
def test_a_credential_it_cannot_use_stops_the_start_before_the_log_opens(
    tmp_path, capsys, monkeypatch, credentials, said
):
    opened: list[object] = []
    monkeypatch.setattr("checkpoint.cli.daemon_cmd.DataDirLock.take", opened.append)
    err = _run_with_credentials(tmp_path, capsys, monkeypatch, credentials)
    assert f"cannot start: {said}" in err
    assert "/etc/kiosk/credentials/" in err and "systemctl restart kiosk" in err
    assert opened == [] and not (tmp_path / "data" / "kiosk.db").exists()


def test_a_short_token_pepper_in_use_is_taken_with_a_warning(tmp_path, capsys, monkeypatch):
    """A gate whose token_pepper is 24 characters (the daemon took it until 2026-12-07) was
    refused at the update, and the only fix offered (a new pepper) voids every API token
    issued (the office's pull token, the peers'), said nowhere. Tokens carry 256 random bits,
    so a short pepper gives nothing away: the daemon starts on it, warning (the credential
    named, never its value) what a new one costs and which tokens to issue again."""
    err = _run_with_credentials(
        tmp_path,
        capsys,
        monkeypatch,
        {"token_pepper": b"Yesterday-pepper-24chars\n"},
        exit_code=0,
        log_level="warning",
    )
    said = [json.loads(line)["msg"] for line in err.splitlines()]
    warned = [msg for msg in said if "token_pepper" in msg]
    assert len(warned) == 1, err
    assert "credential token_pepper is short (24 characters" in warned[0]
    assert "voids every API token issued" in warned[0] and "kiosk-admin token new" in warned[0]
    assert "Yesterday" not in err


def test_the_token_verbs_take_a_short_pepper_the_daemon_takes(tmp_path, capsys, monkeypatch):
    """One pepper for both: a token the verbs make with it is one the daemon takes."""
    from kiosk.credentials import credential_problems, credential_warnings

    short = {"KIOSK_TOKEN_PEPPER": "Yesterday-pepper-24chars"}
    assert credential_problems(short) == []
    assert [w[:40] for w in credential_warnings(short)] == [
        "credential token_pepper is short (24 cha"
    ]
    assert credential_warnings({"KIOSK_TOKEN_PEPPER": KEY}) == []
    monkeypatch.setenv("KIOSK_TOKEN_PEPPER", short["KIOSK_TOKEN_PEPPER"])
    data = tmp_path / "data"
    data.mkdir()
    assert main(["token", "new", "--scope", "logs:read", "--data", str(data)]) == 0


def test_a_credential_handed_encrypted_is_refused_not_taken(tmp_path, capsys, monkeypatch):
    """kiosk.service loads each credential with LoadCredential=, which hands a systemd-creds
    encrypted one as it is: the daemon took the sealed text as a session_key (or a token
    pepper) while check-config said it is handed decrypted. It is refused, saying why."""
    from test_check_config_credentials import SEALED

    sealed = SEALED.replace("\n", "").encode()
    err = _run_with_credentials(tmp_path, capsys, monkeypatch, {"session_key": sealed})
    assert "cannot start: credential session_key (" in err
    assert "is encrypted (systemd-creds) and was handed as it is" in err
    assert "LoadCredential=, which does not decrypt" in err and "Whxq" not in err


def test_a_credential_refused_after_the_check_is_exit_2_as_well(tmp_path):
    # One read as the core is built or the server starts (what the first check did not see):
    # the same refusal, exit 2, never a start to try again; a busy data dir stays exit 1.
    from argparse import Namespace

    from checkpoint.cli.daemon_cmd import _start_failure
    from kiosk.accounts import AccountError
    from kiosk.secrets import SecretError
    from kiosk.store import StoreFault

    args = Namespace(config="kiosk.toml")
    for exc in (AccountError("guard_users line 1: bad name"), SecretError("credential x: y")):
        said = _start_failure(exc, args, tmp_path)
        assert said is not None and said.exit_code == 2
        assert str(said).startswith(f"cannot start: {exc}; ") and "restart kiosk" in str(said)
    busy = _start_failure(StoreFault("store_fault", "database is locked"), args, tmp_path)
    assert busy is not None and busy.exit_code == 1


def test_an_empty_token_pepper_is_refused_by_the_token_verbs_as_by_the_daemon(
    tmp_path, capsys, monkeypatch
):
    """`kiosk token new` took the database's own pepper for an empty token_pepper credential
    (a file cut short), and made a token the daemon, refusing that credential, never took."""
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "token_pepper").write_text("\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    data = tmp_path / "data"
    data.mkdir()
    assert main(["token", "new", "--scope", "logs:read", "--data", str(data)]) == 1
    assert "credential token_pepper is empty" in _one_line_error(capsys, "token")


def test_the_check_names_every_credential_it_refuses_and_no_value(tmp_path):
    from kiosk.credentials import credential_problems

    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "session_key").write_text("hunter2\n")
    (creds / "guard_users").write_text("# accounts\nadmin:boss:x\n")
    problems = credential_problems({"CREDENTIALS_DIRECTORY": str(creds)})
    assert len(problems) == 2
    assert "session_key is too short" in problems[0] and "hunter2" not in problems[0]
    assert problems[1] == "guard_users line 2: role must be guard or admin"
    assert credential_problems({"KIOSK_SESSION_KEY": KEY}) == []


def test_a_short_screen_key_is_ignored_and_said_at_each_start(tmp_path, capsys, monkeypatch):
    """A screen_key under 16 characters was dropped without a word: the screen on another
    machine got 403 at /kiosk/pair and nobody said why. It stays ignored (a key one could guess
    would show the preview's pass codes to the LAN; the gate needs no screen_key to run): the
    daemon starts and says so in the journal, naming the credential, never its value."""
    err = _run_with_credentials(
        tmp_path,
        capsys,
        monkeypatch,
        {"screen_key": b"Gate-1-screen\n"},
        exit_code=0,
        log_level="warning",
    )
    said = [json.loads(line)["msg"] for line in err.splitlines()]
    warned = [msg for msg in said if "screen_key" in msg]
    assert len(warned) == 1, err
    assert "credential screen_key is too short (13 characters, at least 16): ignored" in warned[0]
    assert "Gate-1-screen" not in err


def test_an_empty_session_key_is_said_at_start_and_the_kept_key_signs(
    tmp_path, capsys, monkeypatch
):
    """An empty session_key credential (a file cut short) stopped the daemon (exit 2), the
    gate shut for a credential the daemon can do without: it keeps a key of its own in its data
    dir. It starts, signs with that key, and says so in the journal at each start."""
    err = _run_with_credentials(
        tmp_path, capsys, monkeypatch, {"session_key": b"\n"}, exit_code=0, log_level="warning"
    )
    said = [json.loads(line)["msg"] for line in err.splitlines()]
    warned = [msg for msg in said if "credential session_key" in msg]
    assert len(warned) == 1, err
    assert "is empty (cut short?): not taken, the key kept in the data dir signs" in warned[0]


def test_an_empty_session_key_signs_with_the_kept_key(tmp_path):
    from kiosk.credentials import credential_problems
    from ui.auth import session_key

    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "session_key").write_text("\n")
    environ = {"CREDENTIALS_DIRECTORY": str(creds)}
    assert credential_problems(environ) == []
    assert session_key(environ, kept_in=tmp_path) == session_key({}, kept_in=tmp_path)


def test_the_screen_key_the_screen_ignores_is_the_one_warned_of():
    from kiosk.credentials import credential_problems, credential_warnings
    from ui.kiosk_screen import ScreenAccess

    short, taken = {"KIOSK_SCREEN_KEY": "s" * 15}, {"KIOSK_SCREEN_KEY": "s" * 16}
    assert credential_problems(short) == [] and credential_problems(taken) == []
    assert [w[:43] for w in credential_warnings(short)] == [
        "credential screen_key is too short (15 char"
    ]
    assert credential_warnings(taken) == []
    assert ScreenAccess((), "s" * 15).key is None
    assert ScreenAccess((), "s" * 16).key == "s" * 16
