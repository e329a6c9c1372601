"""No log record names anyone: every logger captured at DEBUG while the traffic of a gate and
its office goes through the parts ``tests/test_personal_data_sweep.py`` does not drive — the
office's list bundle and its sync at the gate, the compound's peers, a guard's removals, the
office's pull and purge, the collector, a backup and its restore — and, in virtual time, the
demo's whole day. No name, phone number, pass code or household of the traffic may be in a
record's message, its arguments, its ``extra=`` fields or its traceback (docs/privacy.md: log
lines never carry personal data; ``kiosk.logs`` masking numbers is only a second line)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest

pytest_plugins = ("pgfixture",)  # pg_dsn: the collector's real PostgreSQL

NAME = "Marlowe Qiuxiang"
PHONE = "13912345678"
HOUSEHOLD = "7-1404"
PASS_ID = "feedfacecafe"
NOTE = f"{NAME} tested positive, tel {PHONE}"
#: What names someone in the traffic below.
NEEDLES = [NAME, "Qiuxiang", PHONE, HOUSEHOLD, PASS_ID]


def found_in(text: str, needles: list[str] = NEEDLES) -> list[str]:
    return [n for n in needles if n in text]


def logged(caplog: pytest.LogCaptureFixture, needles: list[str] = NEEDLES) -> list[str]:
    """The records (as text: message, fields, traceback) that hold a needle."""
    lines = []
    for record in caplog.records:
        text = record.getMessage() + json.dumps(vars(record), default=str, ensure_ascii=False)
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        if found_in(text, needles):
            lines.append(f"{record.name}: {text[:400]}")
    return lines


@pytest.fixture(autouse=True)
def everything_at_debug(caplog):
    caplog.set_level(logging.DEBUG)


# --------------------------------------------------------------------------- the list bundle


def _lists() -> dict:
    return {
        "revocations": [{"pass_id": PASS_ID, "reason": NOTE}],
        "quarantine": [
            {"household": HOUSEHOLD, "holder": NAME, "from": "2026-03-01", "until": "2026-03-14",
             "note": NOTE},
        ],
        "households": [{"household": HOUSEHOLD, "residents": 3, "note": NOTE}],
    }  # fmt: skip


def test_the_office_bundle_and_its_sync_at_the_gate_log_no_one(tmp_path, clock, caplog):
    from kiosk import lists as lists_mod
    from kiosk.lists import ListStore
    from kiosk.passes import TrustList, load_private_key, new_key_pair
    from kiosk.store import EventLog
    from office.listsync import ListSync, publish_bundle

    key_path, _ = new_key_pair(tmp_path / "office", "office")
    key = load_private_key(key_path)
    out = tmp_path / "www" / "bundle.json"
    publish_bundle(key, _lists(), out, now=clock.now())
    body = {"now": out.read_bytes()}

    def office(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body["now"])

    store = EventLog(tmp_path / "gate.db", "gate-1", clock, "NORMAL", [lists_mod.MIGRATIONS])
    store.open()
    try:
        gate = ListStore(store, clock)
        gate.load()
        client = httpx.Client(transport=httpx.MockTransport(office))
        trust = TrustList.from_dir(tmp_path / "office")
        sync = ListSync(gate, trust, "http://office/lists/bundle", clock, client=client)
        assert sync.check().outcome == "applied"
        assert sync.check().outcome == "current"
        # Tampered on the way (a name changed): refused, and said, without the lists.
        body["now"] = body["now"].replace(b"Qiuxiang", b"Qiuxiang Jr")
        assert sync.check().outcome == "rejected"
        body["now"] = b"<html>sign in</html>"  # a captive portal's page
        assert sync.check().outcome in ("rejected", "error")
        body["now"] = out.read_bytes()
        # A gate of another compound than the office declares: warned, entries applied.
        tagged = publish_bundle(
            key, {**_lists(), "compounds": ["east"]}, out, now=clock.now() + timedelta(hours=1)
        )
        body["now"] = (out.with_name("bundle.compounds.json")).read_bytes()
        sync.compound = "west"
        assert sync.check().version == tagged.version
    finally:
        store.close()
    assert logged(caplog) == []


# --------------------------------------------------------------------------- a guard's removals


def test_a_guards_list_edits_and_removals_log_no_one(tmp_path, clock, caplog):
    from kiosk import lists as lists_mod
    from kiosk import vehicles
    from kiosk.lists import ListError, ListStore
    from kiosk.store import EventLog
    from kiosk.vehicles import VehicleList

    sets = [lists_mod.MIGRATIONS, vehicles.MIGRATIONS]
    store = EventLog(tmp_path / "kiosk.db", "gate-1", clock, "NORMAL", migrations=sets)
    store.open()
    try:
        lists = ListStore(store, clock)
        lists.load()
        lists.revoke(PASS_ID, NOTE, "guard Li")
        with pytest.raises(ListError):
            lists.revoke(PASS_ID, NOTE, "guard Wu")  # revoked already: refused, not logged
        lists.unrevoke(PASS_ID, "guard Li")
        lists.add_quarantine(HOUSEHOLD, NAME, "2026-03-01", "2026-03-14", "guard Li", note=NOTE)
        with pytest.raises(ListError):
            lists.add_quarantine(HOUSEHOLD, NAME, "2026-03-02", "2026-03-10", "guard Wu")
        [(entry,)] = store.reader().execute("SELECT id FROM list_quarantine").fetchall()
        lists.remove_quarantine(entry, "guard Li")
        lists.set_household(HOUSEHOLD, "guard Li", residents=3, note=NOTE)
        lists.remove_household(HOUSEHOLD, "guard Li")
        with pytest.raises(ListError):
            lists.remove_household(HOUSEHOLD, "guard Li")
        lists.import_csv("quarantine", f"household,holder,from,until\n{HOUSEHOLD},{NAME},"
                         "2026-03-01,2026-03-14\n", "guard Li")  # fmt: skip
        cars = VehicleList(store, clock)
        sheet = f'plate,household,note\n京Q7Z9K8,{HOUSEHOLD},"{NOTE}"\n'.encode()
        cars.apply(cars.plan_import(sheet, "v.csv"), "root")
        cars.apply(cars.plan_import("plate,household\n京A00001,1-101\n".encode(), "v.csv"), "root")
    finally:
        store.close()
    assert logged(caplog) == []


def test_a_guards_edits_and_removals_at_the_console_log_no_one(guard_client, guard_core, caplog):
    from guard_support import hidden_fields, login, refused_with, send

    login(guard_client)
    typed = {
        "quarantine": {"household": HOUSEHOLD, "holder": NAME, "until": "2026-03-14",
                       "note": NOTE},
        "revocations": {"pass_id": PASS_ID, "note": NOTE},
        "households": {"household": HOUSEHOLD, "residents": "3", "note": NOTE},
    }  # fmt: skip
    for which, fields in typed.items():
        form = hidden_fields(guard_client.get("/guard/lists").text, f"{which}-form")
        path = f"/guard/lists/{which}/add"
        sent = send(guard_client, path, form | fields)
        if "confirm-form" in sent.text:
            sent = send(guard_client, path, hidden_fields(sent.text, "confirm-form"))
        assert refused_with(guard_client, sent) is None, which
        again = send(guard_client, path, form | fields)  # the same form sent twice: refused
        assert again.status_code < 500
    current = guard_core.lists.current
    removals = (
        ("quarantine", {"id": str(current.quarantine[0].id)}),
        ("revocations", {"pass_id": PASS_ID}),
        ("households", {"household": HOUSEHOLD}),
    )
    for which, key in removals:
        form = hidden_fields(guard_client.get("/guard/lists").text, f"{which}-form")
        path = f"/guard/lists/{which}/remove"
        asked = send(guard_client, path, {"csrf": form["csrf"], **key})
        sent = send(guard_client, path, hidden_fields(asked.text, "confirm-form"))
        assert refused_with(guard_client, sent) is None, which
    assert guard_core.lists.current.counts() == dict.fromkeys(current.counts(), 0)
    assert logged(caplog) == []


# --------------------------------------------------------------------------- the compound's peers


def test_the_compounds_gates_exchanging_passages_and_lists_log_no_one(
    tmp_path, monkeypatch, caplog
):
    from test_compound_gates import KEY, NOW, paired
    from test_peer_revocations import told_and_fetched

    from kiosk.clock import FakeClock
    from kiosk.passes import issue_pass

    clock = FakeClock(start=NOW)
    with paired(tmp_path, clock, monkeypatch) as (north, south):
        code, pass_ = issue_pass(KEY, HOUSEHOLD, NAME, "resident", 30, now=NOW - timedelta(days=1))
        assert north.passage(code, "out")["decision"] == "pass"
        north.core.lists.revoke(pass_.pass_id, NOTE, actor="guard Li")
        north.core.lists.add_quarantine(
            HOUSEHOLD, NAME, "2026-03-01", "2026-03-14", "guard Li", note=NOTE
        )
        told_and_fetched(north, south)
        assert south.passage(code, "in")["decision"] == "deny"
        clock.advance(60)
        north.core.lists.unrevoke(pass_.pass_id, actor="guard Li")
        told_and_fetched(north, south)
        south.sync.poll()
    assert logged(caplog, [*NEEDLES, pass_.pass_id]) == []


# --------------------------------------------------------------------------- backup and restore


def test_a_backup_and_its_restore_log_no_one(tmp_path, clock, caplog, monkeypatch):
    from test_backup import make_gate, run_restore
    from test_backup_encrypted import backup_with

    from kiosk import backup
    from kiosk.store import EventDraft

    monkeypatch.setattr(backup, "KDF", backup.Kdf(log_n=4, r=1, p=1))
    for name in ("INSTALLED_DATA", "INSTALLED_CONFIG"):
        monkeypatch.setattr(f"checkpoint.cli.backup_cmd.{name}", str(tmp_path / "none"))
    monkeypatch.delenv("KIOSK_CONFIG", raising=False)
    monkeypatch.delenv("KIOSK_DATA", raising=False)
    data, etc, log = make_gate(tmp_path / "north", clock)
    log.append(EventDraft(direction="out", decision="pass", pass_id=PASS_ID,
                          household=HOUSEHOLD, holder=NAME, person={"phone": PHONE}))  # fmt: skip
    usb = tmp_path / "usb"
    usb.mkdir()
    secret = tmp_path / "passphrase"
    secret.write_text("correct horse battery staple\n")
    try:
        archive = usb / "north.kbak"
        assert backup_with(data, etc, archive, "--passphrase-file", str(secret)) == 0
    finally:
        log.close()
    new = tmp_path / "new"
    assert run_restore(new / "data", new / "etc", archive, "--passphrase-file", str(secret)) == 0
    assert logged(caplog) == []


# --------------------------------------------------------------------------- the office's copy


def _gate_with_traffic(tmp_path, clock):
    from support import kiosk_api

    from kiosk.store import EventDraft

    gate = kiosk_api(tmp_path / "gate.db", "gate-1", clock, scopes=("logs:read", "logs:personal"))
    for _ in range(3):
        gate.store.append(EventDraft(
            direction="out", decision="pass", pass_id=PASS_ID, household=HOUSEHOLD,
            holder=NAME, person={"phone": PHONE, "note": NOTE},
        ))  # fmt: skip
        clock.advance(60)
    return gate


def test_the_offices_pull_and_purge_log_no_one(tmp_path, clock, caplog):
    from office.pull import Puller
    from office.retention import SqliteCopy, purge_copy

    gate = _gate_with_traffic(tmp_path, clock)
    fields = ("holder", "household", "pass_id", "person")
    try:
        puller = Puller(tmp_path / "office.db", client=gate.test_client, fields=fields)
        try:
            puller.pull("http://gate-1", gate.token)
            puller.pull("http://gate-1", gate.token)  # nothing new
            puller.pull("http://gate-1", "not-the-token")  # refused
        except Exception:  # noqa: BLE001 - refused, as it should be; what it logged is asked
            pass
        finally:
            puller.close()
    finally:
        gate.store.close()
    copy = SqliteCopy(tmp_path / "office.db")
    try:
        later = datetime.now(UTC) + timedelta(days=40)  # the copy is stamped by the wall clock
        assert purge_copy(copy, 30, later, clock_synced=True, between_batches=lambda: None)
    finally:
        copy.close()
    assert logged(caplog) == []


@pytest.mark.slow
def test_the_collector_logs_no_one(tmp_path, clock, caplog, monkeypatch, pg_dsn):
    from pgfixture import Network

    from kiosk.config.fleet import CollectorConfig
    from office.collector import Collector

    gate = _gate_with_traffic(tmp_path, clock)
    try:
        monkeypatch.setenv("TOKEN_0", gate.token)
        config = CollectorConfig.model_validate({
            "kiosks": [{"url": "http://gate-1", "token_env": "TOKEN_0"}],
            "personal_fields": ["household", "holder", "pass_id", "person"],
        })  # fmt: skip
        net = Network(gate)
        # The retries' pauses are not what is looked at: recorded, not waited (1.5 s).
        pauses: list[float] = []
        collector = Collector(config, pg_dsn, client=net.client(), backoff_wait=pauses.append)
        collector.run_once()
        collector.run_once()
        # The gate's answers failing: its pull, then its daily report (the ledgers' figures).
        net.faults = lambda request: "500"
        collector.run_once()
        net.faults = lambda request: "500" if "stats" in request.url.path else None
        gate.clock.advance(3600)
        collector.run_once()
    finally:
        gate.store.close()
    assert pauses  # the failing answers were tried again, each retry's lines logged too
    assert logged(caplog) == []


# --------------------------------------------------------------------------- the demo's day


@pytest.mark.slow  # the whole demo day in virtual time: ~6 s of CPU
def test_the_demo_day_logs_none_of_its_visitors(tmp_path, caplog):
    import sqlite3

    from checkpoint.replay import PassSpec, load_scenario, replay

    scenario = load_scenario("demo")
    visitors = set()
    for step in scenario.steps:
        if isinstance(step.pass_, PassSpec):
            visitors |= {step.pass_.holder, step.pass_.household}
        if step.quarantine is not None:
            visitors.add(step.quarantine.household)
    result = replay(scenario, db_path=tmp_path / "demo.db")
    conn = sqlite3.connect(tmp_path / "demo.db")
    try:
        passes = {p for (p,) in conn.execute("SELECT pass_id FROM events") if p}
    finally:
        conn.close()
    assert len(result.decisions) > 20 and len(passes) > 5 and "李伟" in visitors
    assert logged(caplog, sorted(visitors | passes)) == []
