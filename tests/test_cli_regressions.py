"""The ``kiosk`` command as an operator meets it: what the systemd units run, and bad
arguments and files, each one clear line on stderr and an exit code of docs/cli.md, never a
traceback, never a change to data. Also credentials, the calibration file, verify-log's
database, scenario and bundle files, and the pulled copy's file mode."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import batch_args

from checkpoint.cli import main
from drivers.clocksync import system_clock
from kiosk.clock import SystemClock

ROOT = Path(__file__).resolve().parent.parent


def _exec_start(unit: str) -> list[str]:
    for line in (ROOT / "systemd" / unit).read_text(encoding="utf-8").splitlines():
        if line.startswith("ExecStart="):
            return shlex.split(line.partition("=")[2])
    raise AssertionError(f"{unit} has no ExecStart")


def test_the_purge_timers_command_runs_and_purges_by_the_configs_retention(
    tmp_path, capsys, monkeypatch
):
    """kiosk-purge.service ran `kiosk purge --config ... --data ...` without --older-than,
    which was required: every nightly purge ended in a usage error (exit 2). (Before the
    daemon's first start there is no log to purge: test_cli_log_identity.)"""
    from kiosk.store import EventLog

    config = tmp_path / "kiosk.toml"
    config.write_text("[store]\nretention_days = 7\n", encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    EventLog(data / "kiosk.db", "gate-1", system_clock(), "NORMAL").open().close()  # the daemon's
    argv = _exec_start("kiosk-purge.service")
    assert argv[:2] == ["/opt/kiosk/current/venv/bin/kiosk", "purge"]
    paths = {"/etc/kiosk/kiosk.toml": str(config), "/var/lib/kiosk": str(data)}
    monkeypatch.setattr(SystemClock, "synced", lambda self: True)  # NTP has answered
    before = datetime.now(UTC)
    code = main([paths.get(arg, arg) for arg in argv[1:]])
    out, err = capsys.readouterr()
    assert code == 0, err
    cutoff = datetime.fromisoformat(json.loads(out)["cutoff"])
    assert before - timedelta(days=7) <= cutoff <= datetime.now(UTC) - timedelta(days=7)


def test_purge_without_days_or_config_is_a_usage_error(tmp_path, capsys):
    assert main(["purge", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--older-than" in err and "--config" in err
    assert not (tmp_path / "kiosk.db").exists()  # nothing opened, nothing purged


def _one_line_error(capsys, verb: str) -> str:
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert err.count("\n") == 1 and err.startswith(f"kiosk {verb}: "), err
    return err


def test_a_time_zone_that_names_a_folder_of_zones_is_a_config_error(tmp_path, capsys):
    """The zone "Asia" (a folder of the zone database) escaped as IsADirectoryError: a
    traceback from check-config, and from run and purge too."""
    config = tmp_path / "kiosk.toml"
    config.write_text('[site]\ntimezone = "Asia"\n', encoding="utf-8")
    assert main(["check-config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "site.timezone: " in err and "'Asia'" in err
    assert main(["purge", "--older-than", "30", "--config", str(config), "--data", str(tmp_path)])
    assert "site.timezone" in _one_line_error(capsys, "purge")
    assert not (tmp_path / "kiosk.db").exists()


def test_a_tz_argument_that_names_a_folder_of_zones_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KIOSK_FLEET_DSN", "postgresql://nowhere.invalid/x")
    issue = [
        "pass",
        "issue",
        "--tz=Asia/Shanghai",
        "--key",
        str(tmp_path / "k.key"),
        "--household",
        "1-1",
    ]
    assert main([*issue, "--holder", "A", "--tz", "Asia"]) == 2
    assert "'Asia'" in _one_line_error(capsys, "pass")
    assert main(["fleet", "report", "--day", "2026-03-02", "--tz", "America"]) == 2
    assert "'America'" in _one_line_error(capsys, "fleet")


@pytest.mark.slow
def test_replay_never_writes_into_an_existing_file(tmp_path, capsys):
    """`replay --db` appended the scenario's simulated passages (kiosk gate-1, a fever deny)
    to whatever file it named, a kiosk's real event log too, with a valid hash chain; a
    folder or a non-database file was a StoreFault traceback."""
    log = tmp_path / "kiosk.db"
    assert main(["replay", "fever", "--db", str(log)]) == 0
    capsys.readouterr()
    before = log.read_bytes()
    assert main(["replay", "fever", "--db", str(log)]) == 2
    assert str(log) in _one_line_error(capsys, "replay")
    assert log.read_bytes() == before
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x9b not a database " * 50)
    for target in (garbage, tmp_path):
        assert main(["replay", "fever", "--db", str(target)]) == 2
        _one_line_error(capsys, "replay")
    assert garbage.read_bytes() == b"\x9b not a database " * 50


def test_replay_into_a_place_no_database_can_be_made_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["replay", "fever", "--db", str(tmp_path / "file" / "x.db")]) == 1
    _one_line_error(capsys, "replay")


def test_an_unknown_log_level_is_a_usage_error(tmp_path, capsys):
    """`--log-level bogus` got as far as logging.setLevel: a ValueError traceback."""
    import pytest

    from checkpoint.cli import build_parser

    config = tmp_path / "kiosk.toml"
    config.write_text("", encoding="utf-8")
    for argv in (["demo", "--port", "0"], ["run", "--config", str(config)]):
        with pytest.raises(SystemExit) as stopped:
            main([*argv, "--data", str(tmp_path), "--log-level", "bogus"])
        assert stopped.value.code == 2
        assert "--log-level: invalid choice: 'bogus'" in capsys.readouterr().err
        assert build_parser().parse_args([*argv, "--log-level", "DEBUG"]).log_level == "debug"


def _issuer_key(tmp_path: Path) -> Path:
    assert main(["keys", "new", "--dir", str(tmp_path / "keys")]) == 0
    return tmp_path / "keys" / "issuer.key"


def _pass_batch_refuses(tmp_path: Path, capsys, csv_text: str) -> str:
    """``kiosk pass batch`` of ``csv_text``: a usage error (exit 2) that made no card; its
    one line."""
    key = _issuer_key(tmp_path)
    rows = tmp_path / "households.csv"
    rows.write_text(csv_text, encoding="utf-8")
    capsys.readouterr()
    out = tmp_path / "cards"
    assert main(batch_args(key, rows, out)) == 2
    err = _one_line_error(capsys, "pass")
    assert not out.exists()
    return err


def test_pass_batch_into_a_file_is_a_usage_error_and_the_file_is_kept(tmp_path, capsys):
    """`--out` naming an existing file: NotADirectoryError traceback from iterdir()."""
    key = _issuer_key(tmp_path)
    rows = tmp_path / "households.csv"
    rows.write_text("household,holder\n12-3-0502,W\n", encoding="utf-8")
    capsys.readouterr()
    assert main(batch_args(key, rows, rows)) == 2
    assert "not a folder" in _one_line_error(capsys, "pass")
    assert rows.read_text(encoding="utf-8") == "household,holder\n12-3-0502,W\n"


def test_pass_batch_with_a_field_too_large_for_csv_is_a_usage_error(tmp_path, capsys):
    """A CSV field over the csv module's limit (131072 characters: not a households CSV)
    was a _csv.Error traceback."""
    assert "line 2" in _pass_batch_refuses(
        tmp_path, capsys, "household,holder\n12-3-0502," + "W" * 200_000 + "\n"
    )


def test_pass_batch_refuses_a_column_named_twice(tmp_path, capsys):
    """A header naming a column twice (two `holder` columns: given name, family name) was
    read as its last column: passes issued silently for the wrong holder or household."""
    assert "holder" in _pass_batch_refuses(
        tmp_path, capsys, "household,holder,holder\n12-3-0502,Wang,Li\n"
    )


def test_fleet_publish_with_lists_nested_too_deep_is_a_usage_error(tmp_path, capsys):
    """A --lists file of 100000 nested arrays: a RecursionError traceback from json."""
    key = _issuer_key(tmp_path)
    lists = tmp_path / "lists.json"
    lists.write_text("[" * 100_000, encoding="utf-8")
    capsys.readouterr()
    out = tmp_path / "bundle.json"
    assert main(["fleet", "publish", "--key", str(key), "--lists", str(lists), "--out", str(out)])
    assert "not JSON" in _one_line_error(capsys, "fleet")
    assert not out.exists()


def test_fleet_publish_refuses_lists_larger_than_a_kiosk_takes_before_reading_them(
    tmp_path, capsys, monkeypatch
):
    """The --lists file was read whole, whatever its size; kiosks refuse a bundle over
    MAX_BUNDLE_BYTES anyway."""
    from office import listsync

    monkeypatch.setattr(listsync, "MAX_BUNDLE_BYTES", 1000)
    key = _issuer_key(tmp_path)
    lists = tmp_path / "lists.json"
    lists.write_text('{"revocations": [' + ", ".join(['"0123456789ab"'] * 100) + "]}")
    capsys.readouterr()
    out = tmp_path / "bundle.json"
    assert main(["fleet", "publish", "--key", str(key), "--lists", str(lists), "--out", str(out)])
    assert "larger than" in _one_line_error(capsys, "fleet")
    assert not out.exists()


def test_fleet_publish_out_a_folder_is_a_usage_error(tmp_path, capsys):
    """--out naming a folder: IsADirectoryError traceback reading the 'published' bundle."""
    key = _issuer_key(tmp_path)
    lists = tmp_path / "lists.json"
    lists.write_text("{}", encoding="utf-8")
    out = tmp_path / "served"
    out.mkdir()
    capsys.readouterr()
    assert main(["fleet", "publish", "--key", str(key), "--lists", str(lists), "--out", str(out)])
    assert "not a file" in _one_line_error(capsys, "fleet")
    assert list(out.iterdir()) == []


def test_run_with_a_data_dir_that_is_a_file_names_it(tmp_path, capsys):
    """`kiosk run --data FILE` said only "cannot start: File exists": not which file."""
    config = tmp_path / "kiosk.toml"
    config.write_text("[web]\nport = 0\n", encoding="utf-8")
    data = tmp_path / "data"
    data.write_text("not a folder", encoding="utf-8")
    assert main(["run", "--config", str(config), "--data", str(data), "--log-level", "error"]) == 1
    assert str(data) in _one_line_error(capsys, "run")
    assert data.read_text(encoding="utf-8") == "not a folder"


def test_maintenance_verbs_take_the_kiosks_config_from_kiosk_config(tmp_path, capsys, monkeypatch):
    """`sudo kiosk-admin token new ...` (operations.md) passes no --config: the token went
    into DATA/kiosk.db even when store.path names another file, so the daemon never knew
    it, and the audit row said kiosk gate-1 on any kiosk. kiosk-admin now sets
    KIOSK_CONFIG to the daemon's config, which the verbs read when --config is not given."""
    import sqlite3

    config = tmp_path / "kiosk.toml"
    config.write_text('[site]\nkiosk_id = "gate-7"\n[store]\npath = "events.db"\n')
    monkeypatch.setenv("KIOSK_CONFIG", str(config))
    assert main(["token", "new", "--scope", "logs:read", "--data", str(tmp_path)]) == 0
    capsys.readouterr()
    assert not (tmp_path / "kiosk.db").exists()
    with sqlite3.connect(tmp_path / "events.db") as db:
        assert db.execute("SELECT kiosk_id, action FROM audit").fetchall() == [
            ("gate-7", "token_created")
        ]
    script = (ROOT / "scripts" / "install").read_text(encoding="utf-8")
    admin = script[script.index("kiosk_admin_script() {") :]
    admin = admin[: admin.index("\nEOF\n")]
    assert "-p Environment=KIOSK_CONFIG=/etc/kiosk/kiosk.toml" in admin
    assert "--config /etc/kiosk/kiosk.toml" in " ".join(_exec_start("kiosk.service"))


def test_check_config_names_a_missing_thermometer_trace(tmp_path, capsys):
    """check-config said `ok` for a fake thermometer's trace file that does not exist, and
    `kiosk run` then stopped at start on it."""
    config = tmp_path / "kiosk.toml"
    missing = tmp_path / "no-such-trace.csv"
    config.write_text(f'[thermometer.driver]\ntype = "fake"\ntrace = "{missing}"\n')
    assert main(["check-config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert err == f"{config}: thermometer.driver.trace: {missing} is not a file\n" and out == ""
    assert main(["run", "--config", str(config), "--data", str(tmp_path / "data")]) == 2
    assert "thermometer.driver.trace" in _one_line_error(capsys, "run")
    assert not (tmp_path / "data").exists()  # refused before anything was made


def test_run_with_a_trace_that_is_not_a_trace_is_a_config_error(tmp_path, capsys):
    """A fake thermometer's trace file with a wrong header: a ValueError traceback."""
    trace = tmp_path / "trace.csv"
    trace.write_text("time,temp\n0,36.5\n", encoding="utf-8")
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[web]\nport = 0\n[thermometer.driver]\ntype = "fake"\ntrace = "{trace}"\n')
    code = main(["run", "--config", str(config), "--data", str(tmp_path), "--log-level", "error"])
    assert code == 2
    assert "thermometer.driver.trace: " in _one_line_error(capsys, "run")


def test_a_guard_password_over_the_limit_is_a_usage_error(tmp_path, capsys, monkeypatch):
    """A password longer than the 1024 characters an account takes: an AccountError
    traceback from `guard hash` and `guard add` (the password is never echoed)."""
    import io

    password = "p" * 2000
    for argv in (["guard", "hash", "bob"], ["guard", "add", "bob", "--data", str(tmp_path)]):
        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        assert main([*argv, "--password-stdin"]) == 2
        err = _one_line_error(capsys, "guard")
        assert "1024" in err and password not in err
    assert not (tmp_path / "kiosk.db").exists()


def test_pass_verify_reads_no_more_of_stdin_than_a_qr_code_holds(tmp_path, capsys, monkeypatch):
    """`pass verify -` read its whole first line, however long (a piped file of 50 MB)."""
    import io

    from kiosk.passes import QR_CAPACITY_CHARS

    assert main(["keys", "new", "--dir", str(tmp_path)]) == 0
    (tmp_path / "issuer.key").unlink()
    stdin = io.StringIO("KP1:" + "A" * 5_000_000 + "\n")
    monkeypatch.setattr("sys.stdin", stdin)
    capsys.readouterr()
    assert main(["pass", "verify", "-", "--trust", str(tmp_path)]) == 2
    assert json.loads(capsys.readouterr().out)["detail"] == "too long"
    assert stdin.tell() <= QR_CAPACITY_CHARS + 16


def test_pass_batch_refuses_a_csv_over_its_limit_before_reading_it(tmp_path, capsys, monkeypatch):
    """The households CSV was read whole whatever its size (the imports cap theirs at 5 MB)."""
    from checkpoint.cli import pass_cmd

    monkeypatch.setattr(pass_cmd, "MAX_CSV_BYTES", 100)
    assert "larger than" in _pass_batch_refuses(
        tmp_path, capsys, "household,holder\n" + "12-3-0502,W\n" * 20
    )


def _trusting_data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    assert main(["keys", "new", "--dir", str(data / "trust")]) == 0
    (data / "trust" / "issuer.key").unlink()
    return data


def _run_with_credentials(
    tmp_path,
    capsys,
    monkeypatch,
    credentials: dict[str, bytes],
    web: str = "port = 0\n",
    exit_code: int = 2,
    log_level: str = "error",
) -> str:
    """``kiosk run`` with these credential files (and ``[web]`` settings); returns its
    one-line error, exit 2: what check-config calls a problem (a credential it cannot use too:
    exit 1 until 2026-12-07, and kiosk.service started the daemon again every 3 s for ever)."""
    creds = tmp_path / "credentials"
    creds.mkdir()
    for name, value in credentials.items():
        (creds / name).write_bytes(value)
        monkeypatch.delenv("KIOSK_" + name.upper(), raising=False)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    data = _trusting_data_dir(tmp_path)
    config = tmp_path / "kiosk.toml"
    config.write_text("[web]\n" + web, encoding="utf-8")

    async def started(self) -> None:  # a daemon that starts is stopped at once, exit 0
        return None

    monkeypatch.setattr("checkpoint.app.Daemon.run_until_signal", started)
    capsys.readouterr()
    code = main(["run", "--config", str(config), "--data", str(data), "--log-level", log_level])
    assert code == exit_code, capsys.readouterr()
    return _one_line_error(capsys, "run") if code else capsys.readouterr().err


def test_run_with_a_broken_guard_users_line_is_one_line(tmp_path, capsys, monkeypatch):
    """A hand-edited guard_users credential with a bad line: an AccountError traceback at
    start (and again every 3 s as systemd restarts the daemon)."""
    err = _run_with_credentials(tmp_path, capsys, monkeypatch, {"guard_users": b"admin:admin\n"})
    assert "guard_users line 1" in err


def test_run_with_tls_credentials_not_a_certificate_says_which(tmp_path, capsys, monkeypatch):
    """web.tls on with garbage in tls_cert/tls_key said only "cannot start: [SSL] PEM lib
    (_ssl.c:3905)": not which setting or file."""
    garbage = {name: b"\x9b not PEM" for name in ("tls_cert", "tls_key")}
    err = _run_with_credentials(tmp_path, capsys, monkeypatch, garbage, "port = 0\ntls = true\n")
    assert "web.tls" in err and "tls_cert" in err


def test_run_with_an_encrypted_tls_key_says_so(tmp_path, capsys, monkeypatch):
    """An encrypted key: OpenSSL's passphrase prompt (no terminal: "[Errno 22] Invalid
    argument"), not a word of what to do."""
    from test_restore_tls import _encrypted

    folder = tmp_path / "made"
    folder.mkdir()
    _encrypted(folder)
    pair = {name: (folder / name).read_bytes() for name in ("tls_cert", "tls_key")}
    err = _run_with_credentials(tmp_path, capsys, monkeypatch, pair, "port = 0\ntls = true\n")
    assert "web.tls" in err and "the key is encrypted with a passphrase" in err


def test_run_with_an_empty_token_pepper_is_one_line(tmp_path, capsys, monkeypatch):
    """An empty token_pepper credential (a truncated file): a TokenError traceback."""
    err = _run_with_credentials(tmp_path, capsys, monkeypatch, {"token_pepper": b"\n"})
    assert "pepper" in err


def test_a_collector_config_nested_too_deep_or_too_big_is_one_line(tmp_path, capsys, monkeypatch):
    """The collector's config was read whole whatever its size, and TOML nested 100000
    levels deep was a RecursionError traceback (the kiosk's own config refuses both)."""
    from kiosk import config as kiosk_config

    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 100_000, encoding="utf-8")
    assert main(["collect", "--config", str(deep)]) == 2
    assert "nested too deeply" in _one_line_error(capsys, "collect")
    monkeypatch.setattr(kiosk_config, "MAX_CONFIG_BYTES", 100)
    big = tmp_path / "big.toml"
    big.write_text("# padding\n" * 20, encoding="utf-8")
    assert main(["collect", "--config", str(big)]) == 2
    assert "larger than 100 bytes" in _one_line_error(capsys, "collect")


def test_a_report_day_at_the_ends_of_the_calendar_is_a_usage_error(tmp_path, capsys, monkeypatch):
    """`report --day 9999-12-31` (or 0001-01-01) got to the day's bounds in UTC: an
    OverflowError traceback."""
    monkeypatch.setenv("KIOSK_FLEET_DSN", "postgresql://nowhere.invalid/x")
    for day in ("0001-01-01", "9999-12-31"):
        assert main(["report", "--day", day, "--data", str(tmp_path)]) == 2
        assert day in _one_line_error(capsys, "report")
        assert main(["fleet", "report", "--day", day]) == 2
        assert day in _one_line_error(capsys, "fleet")
    assert not (tmp_path / "kiosk.db").exists()


def test_demo_refuses_a_data_dir_that_holds_other_data(tmp_path, capsys):
    """`kiosk demo --data /var/lib/kiosk` wrote the demo's simulated passages into that
    kiosk's event log, its demo.pub into the trust folder, and left accounts guard and admin
    and an API token (printed on the terminal) in the kiosk's database."""
    from checkpoint.cli.daemon_cmd import demo_data_dir

    data = tmp_path / "kiosk"
    (data / "trust").mkdir(parents=True)
    (data / "kiosk.db").write_bytes(b"a kiosk's event log")
    before = sorted(p.name for p in data.rglob("*"))
    assert main(["demo", "--port", "0", "--data", str(data)]) == 2
    assert str(data) in _one_line_error(capsys, "demo")
    assert sorted(p.name for p in data.rglob("*")) == before
    assert (data / "kiosk.db").read_bytes() == b"a kiosk's event log"
    # A new folder, and an earlier demo's, are the demo's to use.
    fresh = demo_data_dir(tmp_path / "demo")
    assert fresh == tmp_path / "demo" and demo_data_dir(fresh) == fresh


def test_replay_of_a_scenario_nested_too_deep_is_a_usage_error(tmp_path, capsys):
    """A scenario file of 100000 nested arrays: a RecursionError traceback from tomllib."""
    scenario = tmp_path / "deep.toml"
    scenario.write_text("a = " + "[" * 100_000, encoding="utf-8")
    assert main(["replay", str(scenario)]) == 2
    assert "nested too deeply" in _one_line_error(capsys, "replay")


def test_a_kiosk_that_checks_passes_with_no_code_reader_is_a_config_error(tmp_path, capsys):
    """`readers.sources = []` with policy.mode full (or pass_only) was valid: the daemon
    reported healthy and deciding, and denied everyone for want of a pass it could not read."""
    config = tmp_path / "kiosk.toml"
    for mode in ("full", "pass_only"):
        config.write_text(f'[policy]\nmode = "{mode}"\n[readers]\nsources = []\n')
        assert main(["check-config", str(config)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "readers.sources" in err and mode in err
    config.write_text('[policy]\nmode = "temperature_only"\n[readers]\nsources = []\n')
    assert main(["check-config", str(config)]) == 0


def test_run_on_emulated_devices_says_so(tmp_path, capsys):
    """A config without [thermometer.driver], [gate.driver] or [[readers.sources]] runs the
    daemon on the emulators (the demo's defaults) and the health page said all was well:
    simulated temperatures at a real gate, and not a word about it."""
    config = tmp_path / "kiosk.toml"
    config.write_text('[site]\nkiosk_id = "gate-7"\n[web]\nport = 0\n', encoding="utf-8")
    data = tmp_path / "data"
    data.write_text("a file: the start fails right after the warning", encoding="utf-8")
    code = main(["run", "--config", str(config), "--data", str(data)])  # log level info
    assert code == 1
    err = capsys.readouterr().err
    warning = [json.loads(line) for line in err.splitlines() if "emulated devices" in line]
    assert len(warning) == 1 and warning[0]["level"] == "warning"
    warning = json.dumps(warning[0])
    for part in ("thermometer.driver", "gate.driver", "readers.sources[0]"):
        assert part in warning
    from checkpoint.cli.daemon_cmd import emulated_devices
    from kiosk.config import load_config

    assert emulated_devices(load_config(ROOT / "systemd" / "kiosk.toml.example")) == []


# --- credentials, calibration, verify-log, scenarios, bundles, pulled copies ----------------


# -- 1. a credential that is not text ---------------------------------------------------------


def test_run_with_a_session_key_that_is_not_utf8_names_the_credential(
    tmp_path, capsys, monkeypatch
):
    """32 random bytes as session_key: a UnicodeDecodeError traceback at start."""
    not_text = {"session_key": b"\xff\xfe\x80" + bytes(range(29))}
    err = _run_with_credentials(tmp_path, capsys, monkeypatch, not_text)
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
    err = _run_with_credentials(tmp_path, capsys, monkeypatch, {"session_key": b"x\n"})
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
    from drivers.clocksync import system_clock
    from kiosk.store import EventDraft, EventLog

    path.parent.mkdir(parents=True, exist_ok=True)
    log = EventLog(path, "gate-1", system_clock()).open()
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
    from office.pull import SqliteTarget

    path = tmp_path / "central.db"
    old = os.umask(0o022)
    try:
        conn = SqliteTarget(path).conn
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


@pytest.mark.parametrize("verb", [["token", "new", "--scope", "logs:read"], ["guard", "list"]])
def test_a_database_verb_away_from_the_data_dir_says_where_to_point_it(
    verb, tmp_path, capsys, monkeypatch
):
    """Before: `kiosk token new` run from the wrong folder said only `no such directory for
    the database: data`, not how to name the kiosk's database."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KIOSK_DATA", raising=False)
    monkeypatch.delenv("KIOSK_CONFIG", raising=False)
    assert main(verb) == 2
    err = _one_line_error(capsys, verb[0])
    assert "--data" in err and "--db" in err and "kiosk-admin" in err


@contextlib.contextmanager
def _sigterm_while_building(monkeypatch, module):
    """systemd stops the kiosk while ``module.build_core`` builds it; SIGTERM's default
    action (death) is stood in for by an AssertionError, so pytest survives to tell. Yields
    whether a handler was in place at each build."""
    import signal

    before = signal.getsignal(signal.SIGTERM)

    def default_action(signum, frame):
        raise AssertionError("SIGTERM reached the default action")

    real_build = module.build_core
    handled: list[bool] = []

    def build_core(*args, **kwargs):
        handled.append(signal.getsignal(signal.SIGTERM) is not default_action)
        if not handled[-1]:
            raise RuntimeError("a SIGTERM now would kill the starting kiosk")
        os.kill(os.getpid(), signal.SIGTERM)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(module, "build_core", build_core)
    signal.signal(signal.SIGTERM, default_action)
    try:
        yield handled
    finally:
        signal.signal(signal.SIGTERM, before)


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_a_sigterm_while_kiosk_run_starts_stops_it_cleanly(tmp_path, capsys, monkeypatch):
    """Before: the SIGTERM/SIGINT handlers were installed only once the daemon had started
    (web server up, health answering): systemd stopping or restarting a kiosk still starting
    killed it by the default action, with no clean stop and the gate not commanded locked
    (seen as exit -15 in the slow SIGTERM test under load). Now they are in place before
    anything is built, and a stop asked for while starting is a clean stop once started."""
    import checkpoint.app as app

    data = _trusting_data_dir(tmp_path)
    config = tmp_path / "kiosk.toml"
    config.write_text("[web]\nport = 0\n", encoding="utf-8")
    with _sigterm_while_building(monkeypatch, app) as handled:
        code = main(["run", "--config", str(config), "--data", str(data), "--log-level", "info"])
    assert handled == [True]
    assert code == 0
    err = capsys.readouterr().err
    assert "kiosk started" in err and "kiosk stopped" in err


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_a_sigterm_while_kiosk_demo_starts_stops_it_cleanly(tmp_path, capsys, monkeypatch):
    """`kiosk demo` installed its handlers only once started (in run_until_signal): a
    SIGTERM (or ^C) while it built its kiosk killed it by the default action, half started.
    It now takes `kiosk run`'s way: handlers first, the stop kept for once it has started."""
    import checkpoint.demo as demo

    with _sigterm_while_building(monkeypatch, demo) as handled:
        code = main(["demo", "--port", "0", "--data", str(tmp_path / "demo"), "--log-level",
                     "info"])  # fmt: skip
    assert handled == [True]
    assert code == 0
    err = capsys.readouterr().err
    assert "kiosk started" in err and "kiosk stopped" in err


def test_replay_db_in_a_folder_that_is_not_there_is_refused(tmp_path, capsys, monkeypatch):
    """`kiosk replay fever --db /var/lib/kiosk-tset/x.db` (a typo) made the folder tree and
    kept the log there, exit 0, where the other verbs say `no such directory`. (`--db ''`,
    once SQLITE_CANTOPEN on the current folder, is refused by the parser as every empty path
    is: test_cli_operator.py.)"""
    monkeypatch.chdir(tmp_path)
    assert main(["replay", "fever", "--db", "missing/x.db"]) == 2
    err = _one_line_error(capsys, "replay")
    assert "--db" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("host", ["", "h" * 256])
def test_a_demo_host_the_config_would_refuse_is_a_usage_error(host, tmp_path, capsys):
    """`kiosk demo --host ''` (an empty $HOST in a script) was a pydantic ValidationError
    traceback from the demo's config, after the port check."""
    assert main(["demo", "--host", host, "--port", "0", "--data", str(tmp_path / "d")]) == 2
    assert "--host" in _one_line_error(capsys, "demo")
    assert not (tmp_path / "d").exists()


def test_the_collectors_warnings_name_the_gate_and_the_error(tmp_path, monkeypatch, capsys):
    """`kiosk collect` set up no log handler: its "pull failed" warnings reached the journal
    as those two words (Python's last-resort handler), without the gate's URL or the error
    the collector attached, so the office could not tell from its log which gate failed."""
    import logging

    from office import collector, pg

    class FakeCollector:
        def __init__(self, config, dsn):
            self.config = config

        def run_once(self, every_s=3600.0):
            url = self.config.kiosks[0].url
            logging.getLogger("office.collector").warning(
                "pull failed", extra={"url": url, "error": "connection refused"}
            )
            return [collector.KioskStatus(url=url, name=None, state="error")]

        def stop(self):
            pass

    monkeypatch.setattr(collector, "Collector", FakeCollector)
    monkeypatch.setattr(pg, "PgTarget", lambda *a, **kw: type("T", (), {"close": lambda s: 0})())
    monkeypatch.setenv("KIOSK_FLEET_DSN", "postgresql://office@db.lan/fleet")
    monkeypatch.setenv("GATE_TOKEN", "kt_00000000_x")
    config = tmp_path / "collect.toml"
    config.write_text('[[kiosks]]\nurl = "http://gate-9.lan:8000"\ntoken_env = "GATE_TOKEN"\n')
    assert main(["collect", "--config", str(config), "--once"]) == 1
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line[:1] == "{"]
    assert [(r["msg"], r["url"], r["error"]) for r in logged] == [
        ("pull failed", "http://gate-9.lan:8000", "connection refused")
    ]
