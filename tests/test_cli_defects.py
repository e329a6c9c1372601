"""The ``kiosk`` command's second defect hunt: credentials, the calibration file, verify-log's
database, scenario and bundle files, and the pulled copy's file mode. Each failure is one line
on stderr with an exit code of docs/cli.md, never a traceback, never a change to data."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from checkpoint.cli import main


def _one_line_error(capsys, verb: str) -> str:
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert err.count("\n") == 1 and err.startswith(f"kiosk {verb}: "), err
    return err


def _run_with_credential(tmp_path, capsys, monkeypatch, name: str, value: bytes) -> str:
    """``kiosk run`` with one credential file; returns its one-line error (exit 1)."""
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / name).write_bytes(value)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.delenv("KIOSK_" + name.upper(), raising=False)
    data = tmp_path / "data"
    assert main(["keys", "new", "--dir", str(data / "trust")]) == 0
    (data / "trust" / "issuer.key").unlink()
    config = tmp_path / "kiosk.toml"
    config.write_text("[web]\nport = 0\n", encoding="utf-8")

    async def started(self) -> None:  # a daemon that starts is stopped at once, exit 0
        return None

    monkeypatch.setattr("checkpoint.app.Daemon.run_until_signal", started)
    capsys.readouterr()
    code = main(["run", "--config", str(config), "--data", str(data), "--log-level", "error"])
    assert code == 1, capsys.readouterr()
    return _one_line_error(capsys, "run")


# -- 1. a credential that is not text ---------------------------------------------------------


def test_run_with_a_session_key_that_is_not_utf8_names_the_credential(
    tmp_path, capsys, monkeypatch
):
    """32 random bytes as session_key: a UnicodeDecodeError traceback at start."""
    err = _run_with_credential(
        tmp_path, capsys, monkeypatch, "session_key", b"\xff\xfe\x80" + bytes(range(29))
    )
    assert "session_key" in err and "UTF-8" in err


def test_a_maintenance_verb_with_a_token_pepper_not_utf8_is_one_line(tmp_path, capsys, monkeypatch):
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "token_pepper").write_bytes(b"\xff\xfe\x80 not text")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    data = tmp_path / "data"
    data.mkdir()
    code = main(["token", "new", "--scope", "logs:read", "--data", str(data)])
    err = _one_line_error(capsys, "token")
    assert code == 1 and "token_pepper" in err and "UTF-8" in err


# -- 6. a session key too short to be a secret ------------------------------------------------


def test_run_with_a_one_character_session_key_is_refused(tmp_path, capsys, monkeypatch):
    """A one-character session_key signed guard cookies anyone could forge offline."""
    err = _run_with_credential(tmp_path, capsys, monkeypatch, "session_key", b"x\n")
    assert "session_key" in err and "32" in err


def test_the_installers_session_key_and_a_hex_128_bit_key_are_accepted():
    """scripts/install writes `head -c 32 /dev/urandom | base64` (44 characters);
    `openssl rand -hex 16` (32 characters) is the shortest key accepted."""
    from ui.auth import session_key

    assert len(session_key({"KIOSK_SESSION_KEY": "A" * 43 + "="})) == 32
    assert len(session_key({"KIOSK_SESSION_KEY": "0123456789abcdef" * 2})) == 32
    from kiosk.secrets import SecretError

    with pytest.raises(SecretError, match="session_key"):
        session_key({"KIOSK_SESSION_KEY": "0123456789abcdef0123456789abcde"})  # 31


# -- 2. a calibration file nested too deeply --------------------------------------------------


def _deep_calibration(data: Path) -> Path:
    data.mkdir(exist_ok=True)
    path = data / "calibration.json"
    path.write_text("[" * 100_000, encoding="utf-8")
    return path


def test_calibrate_show_of_a_calibration_nested_too_deep_is_one_line(tmp_path, capsys):
    """A RecursionError traceback from json."""
    _deep_calibration(tmp_path / "data")
    assert main(["calibrate", "--data", str(tmp_path / "data"), "show"]) == 1
    err = _one_line_error(capsys, "calibrate")
    assert "corrupt" in err and "nested too deeply" in err


def test_the_daemon_treats_a_deep_calibration_like_a_corrupt_one(tmp_path):
    """A corrupt calibration.json leaves the daemon on the last good model (the default at
    start), with ``problem`` saying why; a deep one crashed ``kiosk run``."""
    from kiosk.calibration import Calibration, CalibrationStore

    corrupt = tmp_path / "corrupt" / "calibration.json"
    corrupt.parent.mkdir()
    corrupt.write_text("{not json", encoding="utf-8")
    deep = _deep_calibration(tmp_path / "deep")
    for path in (corrupt, deep):
        store = CalibrationStore(path)
        assert store.get() == Calibration()
        assert store.problem is not None and "is corrupt" in store.problem


# -- 3. verify-log finds the daemon's database like the other verbs ---------------------------


def _kiosk_db(path: Path) -> Path:
    from kiosk.clock import SystemClock
    from kiosk.store import EventDraft, EventLog

    path.parent.mkdir(parents=True, exist_ok=True)
    log = EventLog(path, "gate-1", SystemClock()).open()
    try:
        log.append(EventDraft(direction="in", decision="pass", reasons=("ok",)))
    finally:
        log.close()
    return path


def test_verify_log_reads_store_path_of_kiosk_config(tmp_path, capsys, monkeypatch):
    """`sudo kiosk-admin verify-log` (KIOSK_DATA and KIOSK_CONFIG set) with a store.path other
    than kiosk.db checked data/kiosk.db, not the daemon's log: 'no such file'."""
    data = tmp_path / "data"
    _kiosk_db(data / "gate.db")
    config = tmp_path / "kiosk.toml"
    config.write_text('[store]\npath = "gate.db"\n', encoding="utf-8")
    monkeypatch.setenv("KIOSK_DATA", str(data))
    monkeypatch.setenv("KIOSK_CONFIG", str(config))
    assert main(["verify-log"]) == 0, capsys.readouterr().err
    assert str(data / "gate.db") in capsys.readouterr().out
    monkeypatch.delenv("KIOSK_CONFIG")
    assert main(["verify-log", "--config", str(config), "--data", str(data)]) == 0
    assert str(data / "gate.db") in capsys.readouterr().out


def test_verify_log_default_is_kiosk_db_in_kiosk_data(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    _kiosk_db(data / "kiosk.db")
    monkeypatch.setenv("KIOSK_DATA", str(data))
    monkeypatch.delenv("KIOSK_CONFIG", raising=False)
    assert main(["verify-log"]) == 0
    assert str(data / "kiosk.db") in capsys.readouterr().out


# -- 4. a scenario file is read no further than a config --------------------------------------


def test_a_scenario_larger_than_a_config_is_refused_before_it_is_read(
    tmp_path, capsys, monkeypatch
):
    """load_scenario read the whole file whatever its size."""
    from kiosk import config as kiosk_config

    monkeypatch.setattr(kiosk_config, "MAX_CONFIG_BYTES", 200)
    scenario = tmp_path / "big.toml"
    scenario.write_text('name = "big"\n' + "# padding\n" * 50, encoding="utf-8")
    assert main(["replay", str(scenario)]) == 2
    assert "larger than 200 bytes" in _one_line_error(capsys, "replay")


# -- 5. fleet publish never replaces what is not a bundle -------------------------------------


@pytest.fixture
def office_key(tmp_path) -> Path:
    from kiosk.passes import new_key_pair

    key_path, _pub = new_key_pair(tmp_path / "office", "office")
    return key_path


def _publish(key: Path, lists: Path, out: Path) -> int:
    return main(["fleet", "publish", "--key", str(key), "--lists", str(lists), "--out", str(out)])


def test_publish_refuses_to_replace_a_file_that_is_not_a_bundle(tmp_path, office_key, capsys):
    lists = tmp_path / "lists.json"
    lists.write_text(json.dumps({"revocations": []}), encoding="utf-8")
    other = tmp_path / "households.xlsx"
    other.write_bytes(b"PK\x03\x04 the office's spreadsheet")
    assert _publish(office_key, lists, other) == 2
    assert "not a list bundle" in _one_line_error(capsys, "fleet")
    assert other.read_bytes() == b"PK\x03\x04 the office's spreadsheet"
    # A bundle is replaced by the next version, and a new file is written.
    bundle = tmp_path / "bundle.json"
    assert _publish(office_key, lists, bundle) == 0
    assert _publish(office_key, lists, bundle) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["version"] == 2


def test_publish_refuses_out_equal_to_lists(tmp_path, office_key, capsys):
    lists = tmp_path / "lists.json"
    text = json.dumps({"revocations": [], "quarantine": [], "households": []})
    lists.write_text(text, encoding="utf-8")
    assert _publish(office_key, lists, tmp_path / "." / "lists.json") == 2
    assert "--lists" in _one_line_error(capsys, "fleet")
    assert lists.read_text(encoding="utf-8") == text


# -- 7. the pulled copy (personal fields) is private ------------------------------------------


def test_a_pulled_copy_and_its_wal_and_shm_are_created_0600(tmp_path):
    """The copy was created with the umask's mode (0644): readable by every local user."""
    from office.pull import open_target

    path = tmp_path / "central.db"
    old = os.umask(0o022)
    try:
        conn = open_target(path)
    finally:
        os.umask(old)
    try:
        conn.execute("INSERT INTO pull_sources VALUES ('http://gate-1', 'gate-1', 'now')")
        names = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in names}
    finally:
        conn.close()
    assert modes == {p.name: 0o600 for p in names}


def test_a_secret_from_the_environment_that_is_not_utf8_names_it():
    """os.environ hands undecodable bytes over as lone surrogates: signing with such a
    KIOSK_SESSION_KEY was a UnicodeEncodeError traceback at start."""
    from kiosk.secrets import SecretError
    from ui.auth import session_key

    with pytest.raises(SecretError, match="KIOSK_SESSION_KEY"):
        session_key({"KIOSK_SESSION_KEY": "\udcff" * 40})
