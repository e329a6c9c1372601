"""A resident's right to see and to be forgotten: ``kiosk person show`` and ``forget``.

The named resident of tests/test_personal_data_sweep.py's walk (a pass issued at the console,
a fever, an override note, a registration with a phone number, a car, a revocation, a
quarantine entry, a returnee with a reading, a service request, the office's pull) is shown
whole, then forgotten ahead of retention; then the name, phone and plate are in no table, no
byte of the data dir's files and no log record, the pass ids only in the revocations that keep
the cards shut, and another resident of the same household is untouched. All on a FakeClock.
"""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import sys
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from guard_support import add_event, make_app
from test_personal_data_sweep import (
    HOUSEHOLD,
    NAME,
    NEEDLES,
    PHONE,
    PLATE,
    START,
    files_naming,
    logged,
    rows_naming,
    see_the_resident,
)

from checkpoint.cli import main
from checkpoint.cli.person_cmd import MAX_KEYS_FILE
from kiosk.clock import FakeClock
from kiosk.people import RULES, Person, PersonError
from kiosk.retention import STORES

NEIGHBOUR = "Ottoline Baptiste"
NEIGHBOUR_PASS = "0a0b0c0d0e0f"
LATER_DAYS = 46  # past the default retention (30 days)
KEYS = ["--name", NAME, "--household", HOUSEHOLD, "--phone", PHONE, "--plate", PLATE]


def test_every_store_holding_personal_data_has_a_person_rule():
    """A store added to the retention registry with personal data and no rule here would
    keep a forgotten resident's data: each needs one."""
    assert set(RULES) == {table for table, (personal, _) in STORES.items() if personal}


@pytest.fixture
def cli(data_dir, clock, monkeypatch):
    """``kiosk person ...`` beside the running daemon, on the walk's clock."""
    from drivers import clocksync

    monkeypatch.setattr(clocksync, "system_clock", lambda *a, **kw: FakeClock(start=clock.now()))

    def run(*argv: str) -> int:
        return main([*argv, "--db", str(data_dir / "kiosk.db")])

    return run


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START)  # the walk's


@pytest.fixture
def walked(guard_core, clock, caplog):
    """The walk, and a neighbour of the same household passing with her own pass."""
    caplog.set_level(logging.DEBUG)
    app = make_app(guard_core)
    see_the_resident(guard_core, app, clock)
    add_event(guard_core, holder=NEIGHBOUR, household=HOUSEHOLD, pass_id=NEIGHBOUR_PASS)
    clock.advance(60)
    return guard_core, app


def _audit_rows(db: Path) -> list[tuple[str, str | None]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("select action, detail from audit order by seq").fetchall()
    finally:
        conn.close()


@pytest.mark.slow
def test_show_prints_every_row_of_the_resident_and_audits_only_counts(walked, cli, capsys):
    core, _ = walked
    assert cli("person", "show", *KEYS) == 0
    shown = json.loads(capsys.readouterr().out)
    stores = shown["stores"]
    assert [e["seq"] for e in stores["events"]] == [1, 2, 3, 4]  # not the neighbour's 5
    assert {a["action"] for a in stores["audit"]} == {"pass_issued", "lists.revoke"}
    assert stores["obs_people"][0]["phone"] == PHONE and len(stores["obs_checks"]) == 1
    assert stores["list_quarantine"][0]["holder"] == NAME
    assert NAME in stores["service_requests"][0]["note"]
    assert stores["events"][3]["person"]["plate"] == PLATE
    assert NEIGHBOUR not in json.dumps(shown, ensure_ascii=False)
    assert "feedfacecafe" in shown["passes"] and NEIGHBOUR_PASS not in shown["passes"]
    action, detail = _audit_rows(core.data_dir / "kiosk.db")[-1]
    assert action == "person_shown"
    assert json.loads(detail)["keys"] == ["household", "name", "phone", "plate"]
    assert json.loads(detail)["rows"]["events"] == 4
    assert not [n for n in NEEDLES if n in detail]


@pytest.mark.slow
def test_show_has_a_readable_text_form(walked, cli, capsys):
    assert cli("person", "show", "--phone", PHONE, "--text") == 0
    text = capsys.readouterr().out
    assert "obs_people (1 rows):" in text and f'phone: "{PHONE}"' in text


@pytest.mark.slow
def test_forget_leaves_no_copy_of_the_resident_and_the_neighbour_untouched(
    walked, cli, capsys, caplog, data_dir
):
    core, _ = walked
    db = data_dir / "kiosk.db"
    before = rows_naming(db)
    assert cli("person", "forget", *KEYS) == 0  # a dry run: says what, changes nothing
    would = json.loads(capsys.readouterr().out)
    assert would["dry_run"] and would["rows"]["events"] == 4 and would["passes"] == 2
    assert rows_naming(db) == before
    assert cli("person", "forget", *KEYS, "--yes") == 0
    done = json.loads(capsys.readouterr().out)
    # Both cards: one voided anew, the one a guard had voided marked the forget's (counted
    # since session 32: it said 1, and "1 pass ... voided" of the two it did void).
    assert done["rows"]["events"] == 4 and done["passes_revoked"] == 2 and done["wal_wiped"]
    passes = NEEDLES[5:]  # the card the walk passed with, and the one issued at the console
    gone = [NAME, "Qiuxiang", PHONE, PLATE]
    left = {t: [n for n in hits if n in gone] for t, hits in rows_naming(db).items()}
    assert {t: hits for t, hits in left.items() if hits} == {}
    assert {t for t, hits in rows_naming(db).items() if set(hits) & set(passes)} == {
        "list_revocations"
    }
    in_files = {f: [n for n in hits if n in gone] for f, hits in files_naming(data_dir).items()}
    assert {f: hits for f, hits in in_files.items() if hits} == {}
    assert logged(caplog) == []
    conn = sqlite3.connect(db)
    try:
        neighbour = conn.execute("select holder, household, pass_id from events where seq = 5")
        assert neighbour.fetchone() == (NEIGHBOUR, HOUSEHOLD, NEIGHBOUR_PASS)
        kept = conn.execute("select decision, temp_c, purged_at from events where seq = 1")
        assert kept.fetchone() == ("deny", 38.6, done["purged_at"])
        revoked = dict(conn.execute("select pass_id, reason from list_revocations"))
    finally:
        conn.close()
    assert revoked == {p: "" for p in passes}
    action, detail = _audit_rows(db)[-1]
    assert action == "person_forgotten" and not [n for n in NEEDLES if n in detail]
    assert cli("verify-log") == 0
    core.lists.reload_if_changed()
    assert set(passes) <= set(core.lists.current.revocations)


@pytest.mark.slow
def test_verify_log_tells_a_row_emptied_under_a_forgets_stamp_that_it_did_not_count(
    walked, cli, capsys, data_dir
):
    assert cli("person", "forget", "--pass-id", "feedfacecafe", "--yes") == 0
    stamp = json.loads(capsys.readouterr().out)["purged_at"]
    conn = sqlite3.connect(data_dir / "kiosk.db")
    with conn:
        emptied = "holder = null, household = null, pass_id = null, person = null"
        conn.execute(f"update events set {emptied}, purged_at = ? where seq = 5", [stamp])
    conn.close()
    assert cli("verify-log") == 1
    said = capsys.readouterr()
    assert "which emptied 2 rows of events, not 3" in said.err


def test_a_quarantine_in_force_is_refused_unless_forced(guard_core, cli, capsys, clock):
    today = clock.now().date()
    guard_core.lists.add_quarantine(
        HOUSEHOLD, NAME, today, today + timedelta(days=14), "alice", note="positive"
    )
    audits = len(_audit_rows(guard_core.data_dir / "kiosk.db"))
    assert cli("person", "forget", "--name", NAME, "--yes") == 1
    assert "list_quarantine" in capsys.readouterr().err
    assert len(_audit_rows(guard_core.data_dir / "kiosk.db")) == audits
    assert cli("person", "forget", "--name", NAME, "--yes", "--force") == 0
    guard_core.lists.reload_if_changed()
    assert guard_core.lists.current.quarantine == ()


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        ((), "give at least one of"),
        (("--pass-id", "not-a-pass"), "12 hex digits"),
        (("--phone", "12ab"), "5 to 20 digits"),
        (("--name", "Nobody Here"), "no store of this gate holds anyone"),
    ],
)
def test_bad_keys_are_refused_and_change_nothing(guard_core, cli, capsys, argv, said):
    add_event(guard_core, holder=NEIGHBOUR, household=HOUSEHOLD)
    db = guard_core.data_dir / "kiosk.db"
    audits = _audit_rows(db)
    for verb in (("show",), ("forget", "--yes")):
        assert cli("person", *verb, *argv) == 2
        assert said in capsys.readouterr().err
    assert _audit_rows(db) == audits


def _stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_keys_from_stdin_or_a_file_name_the_person_as_the_options_do(
    guard_core, cli, capsys, monkeypatch, tmp_path
):
    """Before: the keys were arguments only (``sudo kiosk-admin person forget --name ...``),
    so sudo's journal line (COMMAND=), the unit's description and the shell's history kept
    the name of the resident being forgotten, beyond retention and any forget. The keys come
    from ``--keys-file`` (``-``: stdin) now; the options still work, and say where they stay."""
    add_event(guard_core, holder=NEIGHBOUR, household=HOUSEHOLD, pass_id=NEIGHBOUR_PASS)
    assert cli("person", "show", "--name", NEIGHBOUR, "--household", HOUSEHOLD) == 0
    said = capsys.readouterr()
    by_options = json.loads(said.out)["counts"]
    assert by_options["events"] == 1 and "journal" in said.err and "--keys-file" in said.err
    _stdin(
        monkeypatch, f"# the office's request\nname = {NEIGHBOUR}\nhousehold={HOUSEHOLD}\n".encode()
    )
    assert cli("person", "show", "--keys-file", "-") == 0
    said = capsys.readouterr()
    assert json.loads(said.out)["counts"] == by_options and "journal" not in said.err
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps({"name": NEIGHBOUR, "household": HOUSEHOLD, "pass-id": [NEIGHBOUR_PASS]})
    )
    assert cli("person", "forget", "--keys-file", str(keys), "--yes") == 0
    assert json.loads(capsys.readouterr().out)["rows"]["events"] == 1
    assert NEIGHBOUR not in json.dumps(guard_core.store.events())


def test_a_key_given_as_dash_is_read_from_stdin_as_the_pass_verbs_do(
    guard_core, cli, capsys, monkeypatch
):
    """``--name -`` (as ``pass issue --holder -``): the value a line of stdin, never on the
    command line, so no warning; with ``--keys-file -`` (stdin already) refused."""
    add_event(guard_core, holder=NEIGHBOUR, household=HOUSEHOLD, pass_id=NEIGHBOUR_PASS)
    _stdin(monkeypatch, f"{HOUSEHOLD}\n{NEIGHBOUR}\n".encode())  # in the options' order
    assert cli("person", "show", "--name", "-", "--household", "-") == 0
    said = capsys.readouterr()
    assert json.loads(said.out)["counts"]["events"] == 1 and "journal" not in said.err
    _stdin(monkeypatch, f"name={NEIGHBOUR}\n".encode())
    assert cli("person", "show", "--keys-file", "-", "--household", "-") == 2
    assert "stdin" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("--name", "-", "--household", HOUSEHOLD), "--name -: no value on stdin"),
        (("--keys-file", "-"), "--keys-file: no key in it"),
    ],
)
def test_no_stdin_at_all_is_refused_as_an_empty_one(
    guard_core, cli, capsys, monkeypatch, argv, said
):
    """Run with stdin closed (cron, nohup, ``<&-``): Python's ``sys.stdin`` is None, and the
    person verbs crashed in a traceback. Now no terminal and no line: exit 2, said."""
    monkeypatch.setattr(sys, "stdin", None)
    for verb in (("show",), ("forget", "--yes")):
        assert cli("person", *verb, *argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.splitlines()[-1] == f"kiosk person: {said}" + (
            " (type it, then Enter)" if "--name" in said else ""
        )


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"Ottoline Baptiste\n", "line 1: not key=value"),
        (b"\n# a comment\nnickname=Ottoline Baptiste\n", "line 3: not a key; known: pass_id"),
        (b"name=Ottoline\nname=Ottoline Baptiste\n", "line 2: name is given twice"),
        (b"name=\n", "line 1: name needs text"),
        (b"returnee=Ottoline Baptiste\n", "line 1: returnee needs a record's number"),
        (b'{"name": "Ottoline Baptiste",', "not JSON at line 1"),
        (b'{"Ottoline Baptiste": 3}', "key 1: not a key"),
        (b'{"name": {"first": "Ottoline Baptiste"}}', "key 1: name needs text"),
        (b"\xff\xfe Ottoline Baptiste", "not UTF-8 text"),
        (b"# nothing\n", "no key in it"),
        (b"name=Ottoline Baptiste" + b" " * MAX_KEYS_FILE, f"larger than {MAX_KEYS_FILE} bytes"),
        (b"phone=Ottoline Baptiste 12\n", "--phone: 5 to 20 digits"),
        (b'{"name": "Ottoline", "name": "Ottoline Baptiste"}', "key 2: name is given twice"),
        (b'{"phone": "13900139000", "phone": "Ottoline"}', "key 2: phone is given twice"),
        (b"returnee=" + b"7" * 5000 + b"\n", "line 1: returnee needs a record's number"),
        (b'{"returnee": ' + b"7" * 30 + b"}", "--returnee: a returnee record's number"),
    ],
)
def test_a_bad_keys_file_is_refused_by_its_line_never_its_values(
    guard_core, cli, capsys, monkeypatch, data, said
):
    add_event(guard_core, holder=NEIGHBOUR, household=HOUSEHOLD)
    db = guard_core.data_dir / "kiosk.db"
    audits = _audit_rows(db)
    _stdin(monkeypatch, data)
    assert cli("person", "forget", "--keys-file", "-", "--yes") == 2
    err = capsys.readouterr().err
    assert said in err and "Ottoline" not in err and "Baptiste" not in err
    assert _audit_rows(db) == audits and guard_core.store.events()[0]["holder"] == NEIGHBOUR


def test_forgetting_a_returnee_removes_what_a_correction_kept_of_the_record(
    guard_core, cli, capsys, monkeypatch, clock
):
    """A manager's correction keeps what the record said before (``obs_corrections``): the
    name and household typed wrong. A forget of that returnee must leave none of it."""
    ledger = guard_core.ledgers.observation
    today = clock.now().date()
    wrong = ledger.register(
        name="Ottoline Baptist", household="9-909", phone="13700137000", origin="X",
        date_back=today, actor="alice", note="",
    )  # fmt: skip
    ledger.correct(
        wrong.id, name=NEIGHBOUR, household=HOUSEHOLD, date_back=today,
        until=wrong.observation_until, actor="manager",
    )  # fmt: skip
    other = ledger.register(
        name="Zhao Min", household="1-101", phone="13600136000", origin="X",
        date_back=today, actor="alice", note="",
    )  # fmt: skip
    ledger.correct(
        other.id, name="Zhao Ming", household="1-101", date_back=today,
        until=other.observation_until, actor="manager",
    )  # fmt: skip
    guard_core.store.close()
    _stdin(monkeypatch, f"returnee={wrong.id}\n".encode())
    assert cli("person", "forget", "--keys-file", "-", "--yes", "--force") == 0
    assert json.loads(capsys.readouterr().out)["rows"]["obs_corrections"] == 1
    db = sqlite3.connect(guard_core.data_dir / "kiosk.db")
    kept = db.execute("select person_id, name, household from obs_corrections").fetchall()
    assert kept == [(other.id, "Zhao Min", "1-101")]  # another returnee's stays


def test_a_keys_file_that_cannot_be_read_or_repeats_an_option_is_refused(
    guard_core, cli, capsys, monkeypatch, tmp_path
):
    missing = tmp_path / "nowhere.txt"
    assert cli("person", "show", "--keys-file", str(missing)) == 2
    assert f"--keys-file {missing}: cannot read" in capsys.readouterr().err
    _stdin(monkeypatch, f"name={NEIGHBOUR}\n".encode())
    assert cli("person", "show", "--keys-file", "-", "--name", NEIGHBOUR) == 2
    assert "name is given on the command line too" in capsys.readouterr().err


def test_a_household_alone_is_everyone_of_it():
    assert Person.of(household="7-1404").whole_household
    assert not Person.of(household="7-1404", name="A B").whole_household
    with pytest.raises(PersonError):
        Person.of(returnees=[0])


@pytest.mark.slow
def test_no_page_of_the_console_names_a_forgotten_resident(walked, cli, capsys, caplog):
    """The daemon's alarm card of the fever named the person; it is emptied as after a purge
    (``AlarmDesk._forget_purged``: the rows carry ``purged_at``)."""
    from guard_support import ADMIN_PW, signed_in
    from test_personal_data_sweep import PAGES

    _, app = walked
    assert cli("person", "forget", *KEYS, "--yes") == 0
    gone = [NAME, "Qiuxiang", PHONE, PLATE, *NEEDLES[5:]]
    with signed_in(app) as guard, signed_in(app, "root", ADMIN_PW) as admin:
        for who, client in (("guard", guard), ("admin", admin)):
            pages = {p: client.get(p).text for p in PAGES}
            shown = {p: [n for n in gone if n in text] for p, text in pages.items()}
            # the revoked cards, by their ids alone: what keeps them shut
            assert {p: hits for p, hits in shown.items() if hits} == {
                "/guard/lists": NEEDLES[5:]
            }, who


def test_a_household_moving_out_is_forgotten_whole_and_the_next_door_one_kept(
    guard_core, cli, capsys, clock
):
    from checkpoint.app import Daemon

    guard_core.lists.set_household(HOUSEHOLD, "admin", residents=2, note="moving 1 May")
    guard_core.lists.set_household("7-1405", "admin", residents=3)
    add_event(guard_core, holder=NAME, household=HOUSEHOLD, pass_id="aaaaaaaaaaaa")
    add_event(guard_core, holder=NEIGHBOUR, household=HOUSEHOLD, pass_id=NEIGHBOUR_PASS)
    add_event(guard_core, holder="Next Door", household="7-1405", pass_id="bbbbbbbbbbbb")
    clock.advance(86400)
    assert cli("person", "forget", "--household", HOUSEHOLD, "--yes") == 0
    done = json.loads(capsys.readouterr().out)
    assert done["rows"]["events"] == 2 and done["rows"]["list_households"] == 1
    assert done["passes_revoked"] == 2
    guard_core.lists.reload_if_changed()
    assert set(guard_core.lists.current.households) == {"7-1405"}
    assert {"aaaaaaaaaaaa", NEIGHBOUR_PASS} <= set(guard_core.lists.current.revocations)
    assert "bbbbbbbbbbbb" not in guard_core.lists.current.revocations
    reader = guard_core.store.reader()
    assert reader.execute("select holder from events where purged_at is null").fetchall() == [
        ("Next Door",)
    ]
    # retention later purges around what was forgotten; the chain still verifies
    clock.advance(LATER_DAYS * 86400)
    Daemon(guard_core).purge_once()
    assert cli("verify-log") == 0
    forgotten = reader.execute("select detail from audit where action = 'person_forgotten'")
    assert json.loads(forgotten.fetchone()[0])["rows"]["events"] == 2  # kept for ever
    # and holds no one: the days before today lost their digest salts all the same
    salted = reader.execute("select period from digest_salts where salt is not null")
    assert [p for (p,) in salted] == [clock.now().date().isoformat()]


def test_a_short_household_code_inside_anothers_note_is_not_taken_for_it(guard_core, cli, capsys):
    desk = guard_core.ledgers.services
    request = desk.open("11-101", "food", "alice", confined=True, note="leave it at 11-101's door")
    desk.done(request.id, "alice")
    add_event(guard_core, holder=NAME, household="1-10", pass_id="aaaaaaaaaaaa")
    assert cli("person", "forget", "--household", "1-10", "--yes") == 0
    assert "service_requests" not in json.loads(capsys.readouterr().out)["rows"]
    note = guard_core.store.reader().execute("select household, note from service_requests")
    assert note.fetchone() == ("11-101", "leave it at 11-101's door")


def test_a_past_days_report_is_the_same_after_a_forget(guard_core, cli, capsys, clock):
    """Forgetting nulls the households of past passages; the report of their day counted
    households going out from them, so the day is frozen first, as retention freezes it."""
    add_event(guard_core, holder=NAME, household=HOUSEHOLD, direction="out", pass_id="a" * 12)
    add_event(guard_core, holder=NEIGHBOUR, household="7-1405", direction="out")
    day = clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    clock.advance(86400)
    assert cli("report", "--day", day) == 0
    before = json.loads(capsys.readouterr().out)
    assert cli("person", "forget", "--pass-id", "a" * 12, "--yes") == 0
    capsys.readouterr()
    assert cli("report", "--day", day) == 0
    assert json.loads(capsys.readouterr().out) == before


def test_a_clock_not_synchronised_freezes_no_day(guard_core, clock, data_dir, monkeypatch):
    """One ahead would freeze today's half day as complete: retention's rule."""
    from drivers import clocksync

    add_event(guard_core, holder=NAME, household=HOUSEHOLD, pass_id="a" * 12)
    clock.advance(86400)
    unsynced = FakeClock(start=clock.now(), is_synced=False)
    monkeypatch.setattr(clocksync, "system_clock", lambda *a, **kw: unsynced)
    db = str(data_dir / "kiosk.db")
    assert main(["person", "forget", "--pass-id", "a" * 12, "--yes", "--db", db]) == 0
    frozen = guard_core.store.reader().execute("select count(*) from daily_aggregates")
    assert frozen.fetchone() == (0,)


def test_a_note_naming_the_resident_on_anothers_passage_does_not_revoke_that_pass(
    guard_core, cli, capsys
):
    """The note goes (the row's personal fields go together, as a purge nulls them: the
    digest covers them all); the card of the one who passed stays valid."""
    add_event(guard_core, holder=NAME, household=HOUSEHOLD, pass_id="a" * 12)
    add_event(guard_core, holder=NEIGHBOUR, pass_id=NEIGHBOUR_PASS, person={"note": f"with {NAME}"})
    assert cli("person", "forget", "--name", NAME, "--yes") == 0
    done = json.loads(capsys.readouterr().out)
    assert done["rows"]["events"] == 2 and done["passes_revoked"] == 1
    guard_core.lists.reload_if_changed()
    assert set(guard_core.lists.current.revocations) == {"a" * 12}
    assert cli("verify-log") == 0


def test_a_pass_no_row_here_holds_is_revoked_by_its_forget(guard_core, cli, capsys, monkeypatch):
    """A resident first seen after the archive this card was restored from, forgotten at the
    old gate: the forget made again by hand from the office's list (pass_id, name, household)
    was "no store of this gate holds anyone by these keys", exit 2, and the card they keep,
    never revoked here, opened the restored gate. Their keys as the office gives them are still
    refused (a misspelt name must never read as done), the line saying to give the pass id
    alone; a forget of the pass id alone revokes it though no row holds it, and says so;
    nothing else is touched (show finds nobody: nothing to show)."""
    add_event(guard_core, holder=NEIGHBOUR, household=HOUSEHOLD, pass_id=NEIGHBOUR_PASS)
    keys = b"name=Late Comer\nhousehold=D4-0404\npass_id=DDDDDDDDDD01\n"
    before = guard_core.store.events()
    _stdin(monkeypatch, keys)
    assert cli("person", "show", "--keys-file", "-") == 2
    assert "no store of this gate holds anyone" in capsys.readouterr().err
    _stdin(monkeypatch, keys)
    assert cli("person", "forget", "--keys-file", "-", "--yes") == 2
    assert "forget their pass_id alone" in capsys.readouterr().err
    alone = b"pass_id=DDDDDDDDDD01\n"
    _stdin(monkeypatch, alone)
    assert cli("person", "forget", "--keys-file", "-") == 0
    assert json.loads(capsys.readouterr().out) | {"active": {}} == {
        "dry_run": True, "rows": {}, "passes": 1, "mentioned": {}, "active": {},
        "pass_only": True, "unheld": [], "passes_may_remain": False,
    }  # fmt: skip

    _stdin(monkeypatch, alone)
    assert cli("person", "forget", "--keys-file", "-", "--yes") == 0

    said = capsys.readouterr()
    done = json.loads(said.out)
    assert done["passes_revoked"] == 1 and not any(done["rows"].values()), done
    assert "no rows here; pass revoked" in said.err, said.err
    guard_core.lists.reload_if_changed()
    assert set(guard_core.lists.current.revocations) == {"dddddddddd01"}
    assert guard_core.store.events() == before
    assert cli("verify-log") == 0


def test_a_misspelt_name_with_a_pass_id_is_refused_and_forgets_nothing(
    guard_core, cli, capsys, monkeypatch
):
    """The office's list spells her Marie Claire Dubois and gives the pass she holds now; this
    gate recorded Marie-Claire Dubois with an older pass. It was exit 0, "no rows here; pass
    revoked ...: a card they keep opens this gate no more", her rows kept: a privacy request
    reported done that was not. Refused now (exit 2, check the spelling), nothing revoked."""
    add_event(guard_core, holder="Marie-Claire Dubois", household="B2-0202", pass_id="0102030405a6")
    _stdin(monkeypatch, b"name=Marie Claire Dubois\npass_id=aabbccddee01\n")
    assert cli("person", "forget", "--keys-file", "-", "--yes") == 2
    said = capsys.readouterr()
    assert "check the spelling" in said.err and "pass revoked" not in said.err, said.err
    assert said.out == ""
    guard_core.lists.reload_if_changed()
    assert not guard_core.lists.current.revocations
    _stdin(monkeypatch, b"name=Marie-Claire Dubois\n")
    assert cli("person", "show", "--keys-file", "-") == 0  # her rows are still here


def test_a_pass_id_alone_that_no_row_holds_says_a_typo_is_not_told(
    guard_core, cli, capsys, monkeypatch
):
    """A pass id alone no row here holds is revoked (nothing tells a mistyped one from a card
    never seen here): the line no longer says "a card they keep opens this gate no more"
    (their real card, the id mistyped, still opens it), but that a card with this pass id
    does, and to check the id against the request."""
    _stdin(monkeypatch, b"pass_id=dddddddddd02\n")
    assert cli("person", "forget", "--keys-file", "-", "--yes") == 0
    err = capsys.readouterr().err
    assert "a card they keep" not in err, err
    assert "a card with this pass id opens this gate no more" in err, err
    assert "check it against the request" in err, err
