"""The maintenance verbs on a kiosk's event log, as a Pi operator runs them by hand: whose
name they stamp into the log, and what they do when no log is where they look.

A verb run without ``--config`` (and without ``$KIOSK_CONFIG``, which ``kiosk-admin`` sets)
used to fall back to the default site settings and stamp its audit rows ``gate-1`` in another
kiosk's log; a verb pointed at a folder without a log used to create an empty one and report
success. Now the log's own kiosk_id is the identity, a config naming another kiosk is
refused, and a missing log is one line and a non-zero exit, creating nothing."""

from __future__ import annotations

import io
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from checkpoint.cli import main
from drivers.clocksync import system_clock
from kiosk.clock import SystemClock
from kiosk.store import EventDraft, EventLog

WRITING_VERBS = {
    "token-new": ["token", "new", "--scope", "logs:read", "--name", "office"],
    "guard-add": ["guard", "add", "night", "--password-stdin"],
    "lists-import": ["lists", "import", "{sheet}", "--apply"],
    "purge": ["purge", "--older-than", "0"],
}


def _gate7_log(path: Path) -> Path:
    """gate-7's log: one passage, as its daemon wrote it."""
    with EventLog(path, "gate-7", system_clock(), "NORMAL") as log:
        log.append(EventDraft(direction="in", decision="pass", household="1-101", temp_c=36.5))
    return path


def _audit_ids(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT kiosk_id, action FROM audit ORDER BY seq").fetchall()


def _argv(verb: list[str], tmp_path: Path) -> list[str]:
    sheet = tmp_path / "revoked.csv"
    sheet.write_text("pass_id,reason\n0123456789ab,lost\n", encoding="utf-8")
    return [a.replace("{sheet}", str(sheet)) for a in verb]


def _one_line_error(capsys, verb: str) -> str:
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert err.count("\n") == 1 and err.startswith(f"kiosk {verb}: "), err
    return err


@pytest.fixture
def no_config(monkeypatch):
    """A verb run by hand over SSH: no kiosk-admin, so no $KIOSK_CONFIG."""
    monkeypatch.delenv("KIOSK_CONFIG", raising=False)
    monkeypatch.delenv("KIOSK_DATA", raising=False)
    monkeypatch.setattr(SystemClock, "synced", lambda self: True)  # NTP has answered
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))


@pytest.mark.parametrize("verb", WRITING_VERBS.values(), ids=WRITING_VERBS.keys())
def test_a_verb_without_a_config_stamps_the_logs_own_kiosk_id(verb, tmp_path, capsys, no_config):
    db = _gate7_log(tmp_path / "kiosk.db")
    assert main([*_argv(verb, tmp_path), "--db", str(db)]) == 0, capsys.readouterr().err
    stamped = _audit_ids(db)
    assert stamped, "the verb audited nothing"
    assert {kiosk for kiosk, _ in stamped} == {"gate-7"}, stamped


@pytest.mark.parametrize("verb", WRITING_VERBS.values(), ids=WRITING_VERBS.keys())
def test_a_config_naming_another_kiosk_is_refused_and_writes_nothing(
    verb, tmp_path, capsys, no_config
):
    db = _gate7_log(tmp_path / "kiosk.db")
    config = tmp_path / "north.toml"
    config.write_text('[site]\nkiosk_id = "north-gate"\n', encoding="utf-8")
    argv = [*_argv(verb, tmp_path), "--db", str(db), "--config", str(config)]
    assert main(argv) == 2
    err = _one_line_error(capsys, verb[0])
    assert "'gate-7'" in err and "'north-gate'" in err and "--config" in err
    assert _audit_ids(db) == []


READING_VERBS = {
    "report": ["report", "--day", "2026-03-02"],
    "token-list": ["token", "list"],
    "token-revoke": ["token", "revoke", "abcd1234"],
    "guard-list": ["guard", "list"],
    "guard-remove": ["guard", "remove", "night"],
    "lists-import-plan": ["lists", "import", "{sheet}"],
    "purge-by-hand": ["purge", "--older-than", "30"],
    "verify-log": ["verify-log"],
}


@pytest.mark.parametrize("where", ["--db", "--data"])
@pytest.mark.parametrize("verb", READING_VERBS.values(), ids=READING_VERBS.keys())
def test_a_verb_pointed_where_there_is_no_log_says_so_and_creates_nothing(
    verb, where, tmp_path, capsys, no_config
):
    """`kiosk token list --data /var/lib/kiosk-old` (a wrong folder) made an empty kiosk.db
    there and listed no tokens, exit 0; `kiosk purge` reported 0 rows purged."""
    argv = _argv(verb, tmp_path)
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    target = str(empty / "kiosk.db") if where == "--db" else str(empty)
    assert main([*argv, where, target]) == 2
    err = _one_line_error(capsys, verb[0])
    assert str(empty / "kiosk.db") in err
    assert list(empty.iterdir()) == []


def test_the_purge_timer_before_the_daemon_ever_wrote_has_nothing_to_purge(
    tmp_path, capsys, no_config
):
    """kiosk-purge.timer may run before the daemon first started (a kiosk installed in the
    evening): the config's log is not there yet. Nothing to purge, exit 0, and no empty log
    made in the daemon's place."""
    config = tmp_path / "kiosk.toml"
    config.write_text('[site]\nkiosk_id = "gate-7"\n', encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    assert main(["purge", "--config", str(config), "--data", str(data)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "nothing to purge" in err and str(data / "kiosk.db") in err
    assert list(data.iterdir()) == []


@pytest.mark.parametrize("db", ["/", "folder", "/dev/null"])
@pytest.mark.parametrize(
    "verb", [["token", "new", "--scope", "logs:read"], ["token", "list"], ["guard", "list"]]
)
def test_a_db_that_is_not_a_file_is_named_in_one_line(db, verb, tmp_path, capsys, no_config):
    """`--db /` (a slip for a folder) was a ValueError traceback ("PosixPath('/') has an
    empty name"); a folder or a device was SQLITE_CANTOPEN / SQLITE_IOERR_FSYNC, exit 1."""
    (tmp_path / "folder").mkdir()
    path = db if db.startswith("/") else str(tmp_path / db)
    assert main([*verb, "--db", path]) == 2
    err = _one_line_error(capsys, verb[0])
    assert f"{path}: not a file" in err
    assert list((tmp_path / "folder").iterdir()) == []


@pytest.mark.parametrize("actor", ["", "a" * 65, "night\x1b[2J", "\udcff"])
def test_an_import_with_an_unusable_actor_changes_nothing(actor, tmp_path, capsys, no_config):
    """`kiosk lists import FILE --apply --actor ''` put the revocations in force, then failed
    on the audit row: exit 2 (the operator reads "not imported"), the change in force and
    unaudited. The actor is now checked first."""
    db = _gate7_log(tmp_path / "kiosk.db")
    argv = [*_argv(WRITING_VERBS["lists-import"], tmp_path), "--actor", actor, "--db", str(db)]
    assert main(argv) == 2
    assert "actor" in _one_line_error(capsys, "lists")
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "list_revocations" in tables:
            assert conn.execute("SELECT count(*) FROM list_revocations").fetchone() == (0,)
    assert _audit_ids(db) == []


def test_an_argument_that_is_not_utf8_is_one_line_not_a_traceback(tmp_path, capsys, no_config):
    """Bytes in argv that are not UTF-8 (a GBK terminal, a Latin-1 script) reach Python as
    lone surrogates: `token revoke`, `guard remove`, `verify-log --kiosk-id`, `pull URL` and
    `pass issue --site-name` ended in a UnicodeEncodeError traceback."""
    db = str(_gate7_log(tmp_path / "kiosk.db"))
    assert main(["keys", "new", "--dir", str(tmp_path / "keys")]) == 0
    key = str(tmp_path / "keys" / "issuer.key")
    bad = "\udcc4\udce3"  # 你 in GBK, read as UTF-8
    for argv in (
        ["token", "revoke", bad, "--db", db],
        ["guard", "remove", bad, "--db", db],
        ["verify-log", "--db", db, "--against", db, "--kiosk-id", bad],
        ["pull", f"http://{bad}", "--token", "t", "--into", str(tmp_path / "p.db")],
        ["pass", "issue", "--tz=Asia/Shanghai", "--key", key, "--household", "1-1",
         "--holder", "W", "--site-name", bad, "--out", str(tmp_path / "card.svg")],
    ):  # fmt: skip
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = _one_line_error(capsys, argv[0])
        # A token id is 8 hex digits: anything else is refused as that before its bytes matter.
        assert ("not a token id" if argv[0] == "token" else "not UTF-8") in err, err
    assert _audit_ids(Path(db)) == []


def test_a_pull_into_a_kiosks_own_event_log_is_refused(tmp_path, capsys, no_config):
    """`sudo kiosk-admin pull http://127.0.0.1:8000 --into /var/lib/kiosk/kiosk.db` (a slip
    for backup.db) added the pull's tables to the kiosk's live log and copied its events,
    personal data included, into a table no retention purge ever touches."""
    db = _gate7_log(tmp_path / "kiosk.db")
    with sqlite3.connect(db) as conn:
        before = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master"))
    argv = ["pull", "http://127.0.0.1:9", "--token", "t", "--retries", "1", "--into", str(db)]
    assert main(argv) == 2
    err = _one_line_error(capsys, "pull")
    assert str(db) in err and "event log" in err
    with sqlite3.connect(db) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master")) == before


def test_a_config_is_checked_against_the_logs_events_as_the_daemon_checks_it(
    tmp_path, capsys, no_config
):
    """A log with no passages yet, only a token made by hand without a config (stamped with
    the default id): the daemon starts on it under its config's id, so the verbs run with
    that config must not refuse it either; its events decide whose log it is."""
    db = tmp_path / "kiosk.db"
    assert main(["token", "new", "--scope", "logs:read", "--db", str(db)]) == 0
    config = tmp_path / "north.toml"
    config.write_text('[site]\nkiosk_id = "north-gate"\n', encoding="utf-8")
    argv = ["guard", "add", "night", "--password-stdin", "--db", str(db), "--config", str(config)]
    assert main(argv) == 0, capsys.readouterr().err
    assert _audit_ids(db)[-1] == ("north-gate", "guard_account_set")


def test_a_report_without_a_config_counts_the_sites_own_local_day(tmp_path, capsys, no_config):
    # A Berlin kiosk's daemon wrote a passage at 20:00 local time on 2 March (19:00 UTC, 03:00
    # on 3 March in Shanghai, the default site timezone). The office's report for 2 March,
    # run by hand without the config, used to cut the days at Shanghai's midnight: the passage
    # fell on 3 March. The daemon records the settings its log's days depend on, and a verb
    # without a config reads them from the log.
    db = _berlin_log(tmp_path)
    counts = {}
    for day in ("2026-03-02", "2026-03-03"):
        assert main(["report", "--db", str(db), "--day", day]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["timezone"] == "Europe/Berlin"
        assert report["exits_per_household"]["quota_enabled"] is True
        assert report["exits_per_household"]["period_days"] == 3
        counts[day] = report["by_decision"]
    assert counts == {"2026-03-02": {"pass": 1}, "2026-03-03": {}}, counts


def _berlin_log(tmp_path: Path) -> Path:
    """A Berlin kiosk's log (an outing quota of one exit in 3 days) as its daemon opened and
    wrote it: one passage at 20:00 local time on 2 March."""
    from checkpoint.app import _open_event_log
    from kiosk.clock import FakeClock
    from kiosk.config import load_config

    toml = tmp_path / "berlin.toml"
    toml.write_text(
        '[site]\nkiosk_id = "gate-7"\ntimezone = "Europe/Berlin"\n'
        "[policy.quota]\nenabled = true\nperiod_days = 3\n",
        encoding="utf-8",
    )
    clock = FakeClock(start=datetime(2026, 3, 2, 19, 0, tzinfo=UTC))
    log = _open_event_log(load_config(toml), tmp_path, clock)
    try:
        log.append(EventDraft(direction="in", decision="pass", household="1-101", temp_c=36.5))
    finally:
        log.close()
    return tmp_path / "kiosk.db"


def test_a_purge_without_a_config_freezes_the_sites_own_local_days(tmp_path, capsys, no_config):
    # The purge freezes the daily report of each day it purges: cut at Shanghai's midnight
    # (the default), the Berlin passage's day would be frozen as 3 March, for good.
    db = _berlin_log(tmp_path)
    assert main(["purge", "--db", str(db), "--older-than", "0"]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["days_frozen"] == ["2026-03-02"]


def test_a_damaged_site_record_is_one_line_not_the_defaults(tmp_path, capsys, no_config):
    db = _berlin_log(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'site'", ['{"timezone": "Mars/Base"}'])
    assert main(["report", "--db", str(db), "--day", "2026-03-02"]) == 1
    err = _one_line_error(capsys, "report")
    assert "site settings" in err and "--config" in err
