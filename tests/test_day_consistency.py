"""One day's numbers agree everywhere: a realistic day at the gate (``day_support.build_day``:
a shift of a few hundred passages of every outcome, outages of the thermometer and of the
store, passages either side of local midnight in Asia/Shanghai) counted by every face that
reports it, each against what the program published as it decided: the daily report, the
guard's statistics page and its exports, ``kiosk report``, the API's pages and statistics,
the office's PostgreSQL and its district report, the frozen report, and ``verify-log``."""

from __future__ import annotations

import collections
import csv
import io
import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from day_support import CONFIG, DAY, KIOSK_ID, TZ, ZONE, Day, build_day
from guard_support import make_app, make_core, signed_in
from pgfixture import Network
from support import kiosk_api
from test_fleet_pg import pull_pg

from checkpoint.cli import main
from kiosk.clock import FakeClock
from kiosk.config import parse_config
from kiosk.config.policy import QuotaConfig
from kiosk.retention import purge
from kiosk.stats import compute_report, daily_report, freeze_days
from office.district import district_report

pytest_plugins = ("pgfixture",)
#: The tests on the built day are slow (a few hundred passages in virtual time, ~15 s once
#: for the module); each defect they found has a fast test of its own here too.
day_test = pytest.mark.slow

QUOTA = QuotaConfig.model_validate(CONFIG["policy"]["quota"])
#: The morning after: the day is complete (and can be frozen).
AFTER = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def day(tmp_path_factory) -> tuple[Day, Path]:
    data = tmp_path_factory.mktemp("day") / "data"
    data.mkdir()
    return build_day(data), data / "kiosk.db"


def _copy(day: tuple[Day, Path], tmp_path: Path, face: str) -> Path:
    """The day's data dir copied, so each face reads its own (some write: freezes, audits)."""
    data = tmp_path / face / "data"
    shutil.copytree(day[1].parent, data)
    return data


@pytest.fixture
def console(day, tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        core = make_core(
            _copy(day, tmp_path, "console"), FakeClock(start=AFTER), mp, parse_config(CONFIG)
        )
        try:
            with signed_in(make_app(core)) as client:
                yield client
        finally:
            core.close()


@pytest.fixture
def api(day, tmp_path):
    gate = kiosk_api(
        _copy(day, tmp_path, "api") / "kiosk.db", KIOSK_ID, FakeClock(start=AFTER),
        scopes=("logs:read", "stats:read"),
    )  # fmt: skip
    yield gate
    gate.store.close()


def _report(db: Path) -> dict:
    import sqlite_utils

    return compute_report(sqlite_utils.Database(db), DAY, TZ, QUOTA)


@day_test
def test_the_day_is_the_day_it_was_meant_to_be(day):
    """The rig's own check: every outcome the day was built to hold is in it."""
    decisions = day[0].of_day()
    reasons = collections.Counter(r for d in decisions for r in d["reasons"])
    for reason in ("ok", "fever", "no_temperature", "sensor_fault", "store_fault", "quarantined",
                   "quota_exceeded", "passback", "pass_expired", "pass_revoked",
                   "pass_unknown_key", "pass_malformed", "guard_override"):  # fmt: skip
        assert reasons[reason], reason
    kinds = collections.Counter(d["kind"] for d in decisions)
    assert kinds["registration"] and kinds["vehicle"] and kinds["manual"]
    assert sum("subject" in d for d in decisions) >= 10  # the guard decided about passages
    # One resident measured again and passed (one passage); a fever tried again is not.
    assert sum(any(f.startswith("retries:") for f in d["flags"]) for d in decisions) == 1
    assert 250 <= len(decisions) <= 400


@day_test
def test_every_face_counts_the_same_events_on_the_local_day(day, api, tmp_path, capsys):
    """The report, the API's pages and statistics, the frozen report and ``kiosk report``
    hold the day's events as the kiosk decided them: the passage after local midnight (UTC's
    day before) in, the one after the next midnight (UTC's same day) out, the night's
    passages stamped by a clock eight hours behind dated by their boot's clock, the
    decisions held while the store failed written with their own time."""
    truth = day[0].of_day()
    by_decision = dict(sorted(collections.Counter(d["decision"] for d in truth).items()))
    report = _report(day[1])
    assert report["events"] == len(truth)
    assert report["by_decision"] == by_decision
    assert sum(report["by_hour"]) == len(truth) and report["by_hour"][0] == 1
    headers = {"Authorization": f"Bearer {api.token}"}
    rows, after = [], 0
    while page := api.test_client.get(f"/api/v1/events?after={after}&limit=100",
                                      headers=headers).json()["events"]:  # fmt: skip
        rows, after = rows + page, page[-1]["seq"]
    # Every decision once (the held ones too), stamped as decided: the night's on the clock
    # that was behind (the office dates them as the gate does: the district test).
    assert sorted(r["seq"] for r in rows) == list(range(1, len(day[0].decisions) + 1))
    stats = api.test_client.get("/api/v1/stats?day=2026-03-02", headers=headers).json()
    assert stats["events"] == len(truth) and stats["by_decision"] == by_decision
    assert freeze_days(api.store, TZ, QUOTA, AFTER) == [DAY.replace(day=1), DAY]
    frozen = daily_report(api.store.reader(), DAY, TZ, QUOTA)
    # Added as of now (``daily_report``'s, not the day's figures; ``before_log`` since 5330f7a4).
    live = {"lists_freshness": None, "staffing": None, "downtime": None, "before_log": False}
    assert frozen | live == report | live
    # The purge nulls every household of the day: the day reports what it reported before.
    assert purge(api.store, 0, AFTER, tz=TZ, quota_cfg=QUOTA).events_purged == len(rows)
    assert main(["report", "--day", "2026-03-02", "--db", str(api.store.path)]) == 0
    cli = json.loads(capsys.readouterr().out)
    # The command says when it was taken and that the day has ended (a report of today may
    # be read as the whole day's otherwise); its figures are the API's.
    assert cli.pop("day_ended") is True and cli.pop("as_of")
    assert cli | live == report | live
    assert main(["verify-log", "--db", str(api.store.path)]) == 0


def _cards(page: str) -> dict[str, int]:
    """The statistics page's figures by label."""
    kpis = re.findall(r'<div class="v">(\d+)</div><div class="l">(?:[✔✖] )?([^<]+)</div>', page)
    return {label: int(n) for n, label in kpis}


@day_test
def test_the_consoles_statistics_count_each_passage_once(day, console):
    """合计 / 通过 / 拒绝 on /guard/stats (and the export's first sheet) are passages by how
    they ended: a passage the kiosk denied and the guard then let through is one passage,
    passed; a fever the guard confirmed is one passage, denied."""
    truth = day[0].passages()
    page = console.get("/guard/stats?day=2026-03-02").text
    cards = _cards(page)
    assert (cards["合计"], cards["通过"], cards["拒绝"]) == (
        truth["total"], truth["passed"], truth["denied"],
    )  # fmt: skip
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(console.get("/guard/export.xlsx?day=2026-03-02").content))
    summary = {row[0]: row[1] for row in book.worksheets[0].iter_rows(values_only=True)}
    assert len(cards) >= 8 and {k: summary.get(k) for k in cards} == cards
    assert len(list(book.worksheets[1].iter_rows())) - 1 == len(day[0].of_day())


def _per_hour(page: str) -> list[int]:
    """The statistics page's flow per hour (the chart's first drawing)."""
    chart = page.split("<title>每小时通行人次</title>")[1]
    return [int(n) for n in re.findall(r"<title>\d\d: (\d+)</title>", chart)[:24]]


@day_test
def test_the_consoles_flow_per_hour_adds_up_to_its_total(day, console):
    """每小时通行人次 counted events: the day's hours added up to more than its 合计 (a
    passage the guard decided was in its hour twice)."""
    page = console.get("/guard/stats?day=2026-03-02").text
    hours = _per_hour(page)
    assert sum(hours) == _cards(page)["合计"] == day[0].passages()["total"]
    assert hours[0] == 1 and hours[23] == 1  # 00:05 and 23:58 local


@day_test
def test_the_guards_export_holds_the_days_events(day, console):
    truth = day[0].of_day()
    text = console.get("/guard/export.csv?day=2026-03-02").text.removeprefix("\ufeff")
    table = list(csv.reader(io.StringIO(text)))
    assert len(table) - 1 == len(truth)
    assert table[1][0] == "2026-03-02 00:05:01" and table[-1][0].startswith("2026-03-02 23:58")


@day_test
def test_the_district_report_counts_the_gates_passages_as_the_gate_does(
    day, api, pg_dsn, monkeypatch
):
    """The office's PostgreSQL, filled by one round of the collector (the events pulled, the
    gate's ledger figures fetched), and the district report read from it."""
    from office.collector import Collector, CollectorConfig

    truth = day[0]
    monkeypatch.setenv("GATE_TOKEN", api.token)
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": f"http://{KIOSK_ID}", "token_env": "GATE_TOKEN"}]}
    )
    office = Collector(config, pg_dsn, clock=FakeClock(start=AFTER), client=Network(api).client())
    try:
        assert [s.state for s in office.run_once()] == ["ok"]
    finally:
        office.stop()
    report = district_report(pg_dsn, DAY, TZ, QUOTA)
    gate = _report(day[1])
    for key in ("events", "by_decision", "passages", "by_reason", "by_hour", "fever_alarms"):
        assert report[key] == gate[key], key
    assert report["community"] == gate["community"] and report["ledgers"]["missing"] == []
    assert main(["verify-log", "--db", str(api.store.path), "--against", pg_dsn]) == 0
    (by_gate,) = report["by_gate"]
    passages = truth.passages()
    assert (by_gate["passed"], by_gate["denied"]) == (passages["passed"], passages["denied"])


def test_a_passage_the_guard_decided_is_one_passage_on_the_statistics_cards(reporting_store):
    """The cards counted events: a deny the guard let through was a pass and a deny, and two
    in 合计; a fever the guard confirmed two denies. Each passage now counts once, as it
    ended; a person the guard let in without a pass is a passage of its own."""
    from kiosk.store import EventDraft
    from ui.guard.display import report_summary, stats_cards

    log = reporting_store

    def add(**kw):
        return log.append(EventDraft(**{"direction": "in", "decision": "pass"} | kw))

    def guard(subject, decision):
        add(decision=decision, reasons=("guard_override",), operator="alice", kind="manual",
            flags=(f"overrides:{subject.seq}",) if subject else ())  # fmt: skip

    add(reasons=("ok",))
    guard(add(decision="deny", reasons=("quota_exceeded",)), "manual_pass")  # let out
    guard(add(decision="deny", reasons=("fever",), temp_c=38.6), "manual_deny")  # confirmed
    add(decision="deny", reasons=("pass_expired",))
    guard(None, "manual_pass")  # nobody's passage: a person without a pass
    report = daily_report(log.reader(), DAY, "UTC")
    assert report["events"] == 7 and report["passages"]["total"] == 5
    assert (report["passages"]["passed"], report["passages"]["denied"]) == (3, 2)
    cards = stats_cards(report)
    assert (cards["total"], cards["passes"], cards["denies"], cards["manual"]) == (5, 3, 2, 3)
    assert dict(report_summary(report, "en"))["Total"] == 5


def test_a_passage_the_guard_decided_is_in_the_flow_per_hour_once(guard_core, guard_client):
    """A deny at 09:59 the guard let through at 10:01 is one passage, in the hour it came to
    the gate (the chart had it in both hours)."""
    from guard_support import add_event, login

    clock = guard_core.clock
    clock.set_wall(datetime(2026, 3, 2, 9, 59, tzinfo=ZONE))  # the site's local time
    denied = add_event(guard_core, decision="deny", reasons=("passback",))
    clock.advance(120)
    add_event(guard_core, decision="manual_pass", reasons=("guard_override",), operator="alice",
              flags=(f"overrides:{denied.seq}",))  # fmt: skip
    add_event(guard_core)  # 10:01, a passage of its own
    login(guard_client)
    hours = _per_hour(guard_client.get("/guard/stats?day=2026-03-02").text)
    assert (hours[9], hours[10], sum(hours)) == (1, 1, 2)


@day_test
def test_no_report_of_the_day_names_a_household_a_plate_or_a_pass(
    day, api, console, pg_dsn, capsys
):
    """The reports the office files are counts: the day's households, plates and pass ids
    appear in none of them (the gate's report, its CSV, the statistics page and the export's
    summary sheet, the district report)."""
    import sqlite_utils

    db = sqlite_utils.Database(day[1])
    rows = list(db.query("select household, pass_id, person from events"))
    secrets = {r["household"] for r in rows if r["household"]}
    secrets |= {r["pass_id"] for r in rows if r["pass_id"]} | {"京A12345"}
    assert len(secrets) > 50
    pull_pg(f"http://{KIOSK_ID}", api.token, pg_dsn, Network(api))
    assert main(["report", "--day", "2026-03-02", "--db", str(api.store.path), "--csv",
                 str(api.store.path.parent / "day.csv")]) == 0  # fmt: skip
    faces = {
        "report": json.dumps(_report(day[1]), ensure_ascii=False),
        "csv": (api.store.path.parent / "day.csv").read_text("utf-8"),
        "stats page": console.get("/guard/stats?day=2026-03-02").text,
        "district": json.dumps(district_report(pg_dsn, DAY, TZ, QUOTA), ensure_ascii=False),
    }
    for face, text in faces.items():
        assert not [s for s in secrets if re.search(rf"\b{re.escape(s)}\b", text)], face


def test_the_offices_report_files_carry_the_passages_the_console_shows(reporting_store):
    """The report the office files (``kiosk report --csv/--xlsx``, the community page and its
    exports, ``kiosk fleet report``) had only the events by decision: 拒绝 2 where the
    guard's statistics of the same day said 拒绝 1 (a deny the guard let through is one
    passage, passed). It now has the passages too, beside the decisions."""
    from kiosk.categories import report_rows
    from kiosk.stats import report_file
    from kiosk.store import EventDraft

    log = reporting_store
    denied = log.append(EventDraft(direction="in", decision="deny", reasons=("passback",)))
    log.append(EventDraft(direction="in", decision="manual_pass", reasons=("guard_override",),
                          operator="alice", flags=(f"overrides:{denied.seq}",)))  # fmt: skip
    log.append(EventDraft(direction="out", decision="deny", reasons=("quota_exceeded",)))
    report = daily_report(log.reader(), DAY, "UTC")
    rows = {(c, i): v for c, i, v in report_rows(report)[1:]}
    assert rows[("decisions", "deny")] == 2 and rows[("decisions", "manual_pass")] == 1
    assert (rows[("passages", "total")], rows[("passages", "passed")],
            rows[("passages", "denied")]) == (2, 1, 1)  # fmt: skip
    assert "passages,denied,1" in report_file(report, "csv").decode("utf-8-sig").splitlines()


def _people(page: str) -> dict[str, str]:
    """The statistics page's 进出人次 table."""
    table = page.split("进出人次")[1].split("</table>")[0]
    return dict(re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">(\d+)</td></tr>", table))


def test_a_person_the_guard_stopped_after_the_kiosk_passed_them_is_not_a_person_in(
    guard_core, guard_client
):
    """The kiosk passes a resident at 36.5; the guard measures 38.3 by hand and records a deny
    about that passage (the console takes it: a fever found by hand). The statistics said 通过
    0, 拒绝 1 and, beside them, one person in (进出人次 counted the kiosk's pass). The person
    the guard stopped is nobody through: people are counted by how their passage ended."""
    from guard_support import add_event, decided, login, post

    add_event(guard_core, direction="in", household="3-201", holder="Li Wei",
              pass_id="c0ffee000003", temp_c=36.5, temp_object_c=34.0)  # fmt: skip
    add_event(guard_core, direction="in", household="3-202", temp_c=36.6)  # another, through
    csrf = login(guard_client)
    form = {"subject": "1", "reason": "38.3 by hand", "temp_c": "38.3", "direction": "in",
            "decision": "deny"}  # fmt: skip
    with decided(guard_client, guard_core) as seen:
        post(guard_client, "/guard/manual", csrf, **form)
    assert seen[0]["decision"] == "manual_deny"
    page = guard_client.get("/guard/stats?day=2026-03-02").text
    cards = _cards(page)
    assert (cards["合计"], cards["通过"], cards["拒绝"], cards["发热"]) == (2, 1, 1, 1)
    assert _people(page) == {"进入": "1", "外出": "0"}
