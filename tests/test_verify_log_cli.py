"""``kiosk verify-log``: exit 0 intact, 1 tampered (naming the first bad row), 2 unusable."""

from __future__ import annotations

import json
import sqlite3

import pytest

from checkpoint.cli import main
from kiosk.store import EventDraft, EventLog


@pytest.fixture
def db_file(data_dir, clock):
    path = data_dir / "kiosk.db"
    with EventLog(path, "gate-1", clock) as log:
        for i in range(4):
            log.append(EventDraft(direction="in", decision="pass", pass_id=f"P-{i}"))
        log.audit("guard-7", "gate.override", {"why": "ambulance"})
    return path


def edit(path, sql: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER events_append_only_update")
    conn.execute("DROP TRIGGER events_append_only_delete")
    conn.execute(sql)
    conn.commit()
    conn.close()


def test_intact_log_exits_0_and_says_how_much_it_checked(db_file, capsys):
    assert main(["verify-log", "--db", str(db_file)]) == 0
    out = capsys.readouterr().out
    assert "4 events and 1 audit rows" in out


def test_edited_row_exits_1_and_names_the_first_bad_seq(db_file, capsys):
    edit(
        db_file,
        "UPDATE events SET decision = 'pass', reasons = '[\"ok\"]', temp_c = 36.0 WHERE seq = 2",
    )
    assert main(["verify-log", "--db", str(db_file)]) == 1
    err = capsys.readouterr().err
    assert "FAIL events seq 2: hash mismatch" in err


def test_deleted_row_exits_1(db_file, capsys):
    edit(db_file, "DELETE FROM events WHERE seq = 3")
    assert main(["verify-log", "--db", str(db_file)]) == 1
    assert "events seq 4: seq 3 missing" in capsys.readouterr().err


def test_json_output_carries_the_verdict(db_file, capsys):
    edit(db_file, "DELETE FROM events WHERE seq = 4")
    assert main(["verify-log", "--db", str(db_file), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False
    assert (result["table"], result["first_bad_seq"]) == ("events", 4)
    assert result["integrity"] == ["ok"]


def test_verify_does_not_modify_the_file(db_file):
    before = db_file.read_bytes()
    assert main(["verify-log", "--db", str(db_file)]) == 0
    assert db_file.read_bytes() == before


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "not a file"),
        (lambda p: p.write_text("hello"), "not an SQLite database"),
        (
            lambda p: sqlite3.connect(p).execute("CREATE TABLE other (x)").connection.commit(),
            "not a kiosk event log",
        ),
    ],
)
@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_unusable_file_exits_2_with_one_line(tmp_path, capsys, setup, message):
    path = tmp_path / "x.db"
    setup(path)
    assert main(["verify-log", "--db", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_corrupted_events_page_exits_1_not_a_traceback(db_file, capsys):
    conn = sqlite3.connect(db_file)
    root, page_size = conn.execute(
        "SELECT rootpage, (SELECT page_size FROM pragma_page_size) FROM sqlite_master"
        " WHERE name = 'events'"
    ).fetchone()
    conn.close()
    data = bytearray(db_file.read_bytes())
    data[(root - 1) * page_size] = 0x77  # not a valid b-tree page type
    db_file.write_bytes(bytes(data))

    assert main(["verify-log", "--db", str(db_file)]) == 1
    err = capsys.readouterr().err
    assert "corrupt" in err or "FAIL integrity_check" in err
    assert "Traceback" not in err


def test_default_db_is_used_without_db_flag(db_file, monkeypatch, capsys):
    monkeypatch.setenv("KIOSK_DATA", str(db_file.parent))
    assert main(["verify-log"]) == 0
    assert str(db_file) in capsys.readouterr().out


def test_help_names_the_default_and_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as info:
        main(["verify-log", "--help"])
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "KIOSK_DATA" in out and "./data/kiosk.db" in out
    assert "Exit 0" in out and "2 if the file cannot be used" in out
