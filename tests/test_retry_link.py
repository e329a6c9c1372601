"""A resident told to measure again who tries again is one passage, not two.

A kiosk passage denied for its measurement only (``no_temperature``, ``temp_implausible``: the
screen says measure again) followed by the same pass, the same way, within
``engine.retry_window_s``, is recorded with the flag ``retries:<seq>`` (the attempt it tries
again, ``kiosk.links``), and every face counts the attempts as one passage that ended as the
last one did. Nothing else is linked: another person, another way, after the window, after
a fever or a guard's decision, a temperature-first attempt that showed no pass."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils
from day_support import CONFIG, KIOSK_ID, TZ, Day, _Gate, local
from guard_support import make_app, make_core, signed_in
from pgfixture import Network
from support import kiosk_api
from test_engine import Rig
from test_fleet_pg import pull_pg

from kiosk.clock import FakeClock
from kiosk.config import parse_config
from kiosk.config.policy import QuotaConfig
from kiosk.engine import ManualSubject
from kiosk.links import measure_again, passage_key
from kiosk.stats import compute_report
from office.district import district_report

pytest_plugins = ("pgfixture",)

DAY = date(2026, 3, 2)


@pytest.fixture
def make_rig(clock, tmp_path):
    made: list[Rig] = []

    def make(**overrides) -> Rig:
        where = tmp_path / f"r{len(made)}"
        where.mkdir()
        made.append(Rig(clock, where, **overrides))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _report(rig: Rig, quota: QuotaConfig | None = None) -> dict:
    return compute_report(sqlite_utils.Database(rig.log.path), DAY, "UTC", quota)


def _passages(report: dict) -> tuple[int, int, int]:
    p = report["passages"]
    return p["total"], p["passed"], p["denied"]


def _attempt(rig: Rig, text: str, body_c: float | None, direction: str = "out") -> None:
    """``text`` shown ``direction``; measured at ``body_c`` (None: no wrist held up), until
    the result is over and the person has gone."""
    rig.show(text, direction)
    if body_c is not None:
        rig.emulator.person_arrives(body_c)
    rig.run(9)
    rig.emulator.person_leaves()
    rig.run(5)


def _links(event: dict) -> list[str]:
    """An event's flags but the pass's role (``role:<role>``, on every pass's decision)."""
    return [f for f in event["flags"] if not f.startswith("role:")]


def _flags(rig: Rig) -> list[list[str]]:
    return [_links(e) for e in rig.events()]


def test_a_resident_measured_again_after_no_temperature_is_one_passage(make_rig):
    rig = make_rig()
    text = rig.pass_text()
    _attempt(rig, text, None)  # no wrist held up in time: "measure again"
    rig.run(20)
    _attempt(rig, text, 36.6)
    first, again = rig.events()
    assert (first["decision"], first["reasons"]) == ("deny", ["no_temperature"])
    assert (again["decision"], _links(again)) == ("pass", [f"retries:{first['seq']}"])
    report = _report(rig)
    assert report["events"] == 2 and report["by_decision"] == {"deny": 1, "pass": 1}
    assert _passages(report) == (1, 1, 0)
    assert sum(report["passages"]["by_hour"]) == 1
    # One reading for the one passage, the attempt's that was measured.
    assert report["no_temperature"] == 0
    assert sum(b["count"] for b in report["temperature_histogram"]) == 1
    assert report["community"]["people"] == {"in": 0, "out": 1}


def test_an_implausible_reading_then_a_good_one_is_one_passage(make_rig):
    rig = make_rig()
    text = rig.pass_text()
    _attempt(rig, text, 29.0)  # a cold wrist, re-measured once by the engine, then denied
    _attempt(rig, text, 36.6)
    first, again = rig.events()
    assert first["reasons"] == ["temp_implausible"] and first["temp_c"] < 35
    assert _links(again) == [f"retries:{first['seq']}"]
    report = _report(rig)
    assert _passages(report) == (1, 1, 0)
    assert [b["count"] for b in report["temperature_histogram"] if b["count"]] == [1]
    assert report["temperature_histogram"][0]["count"] == 0  # the 29 °C is not the passage's


def test_attempts_in_a_row_are_one_passage_that_ends_as_the_last(make_rig):
    rig = make_rig()
    text = rig.pass_text()
    _attempt(rig, text, None)
    _attempt(rig, text, None)
    _attempt(rig, text, None)
    seqs = [e["seq"] for e in rig.events()]
    assert _flags(rig) == [[], [f"retries:{seqs[0]}"], [f"retries:{seqs[1]}"]]
    report = _report(rig)
    assert _passages(report) == (1, 0, 1) and report["no_temperature"] == 1
    _attempt(rig, text, 36.5)
    assert _passages(_report(rig)) == (1, 1, 0)


def test_two_different_people_are_never_linked(make_rig):
    rig = make_rig()
    _attempt(rig, rig.pass_text(household="A-101", holder="Li Wei"), None)
    _attempt(rig, rig.pass_text(household="A-101", holder="Wang Fang"), 36.6)  # her wife
    _attempt(rig, rig.pass_text(household="A-101", holder="Li Wei"), 36.6)  # his new card
    assert _flags(rig) == [[], [], []]
    assert _passages(_report(rig)) == (3, 2, 1)


def test_an_attempt_after_the_window_is_a_passage_of_its_own(make_rig):
    rig = make_rig(engine={"retry_window_s": 60})
    text = rig.pass_text()
    _attempt(rig, text, None)
    rig.run(60)
    _attempt(rig, text, 36.6)
    first, second = rig.events()
    assert 60 < (second["mono_ns"] - first["mono_ns"]) / 1e9 - 3 < 75  # shown, then measured
    assert _flags(rig) == [[], []]
    assert _passages(_report(rig)) == (2, 1, 1)


def test_an_attempt_just_inside_the_window_is_linked(make_rig):
    rig = make_rig(engine={"retry_window_s": 60})
    text = rig.pass_text()
    _attempt(rig, text, None)
    rig.run(40)  # shown again ~54 s after the deny
    _attempt(rig, text, 36.6)
    assert _flags(rig)[1] == [f"retries:{rig.events()[0]['seq']}"]


@pytest.mark.parametrize(("past_ns", "linked"), [(0, True), (1, False)])
def test_a_try_started_exactly_at_the_windows_end_is_linked_a_nanosecond_later_not(
    make_rig, past_ns, linked
):
    # "within retry_window_s" of the deny (docs/engine.md) includes its last instant: the
    # pass shown again exactly 60 s after the deny was recorded is the same passage, shown
    # one nanosecond later another.
    rig = make_rig(engine={"retry_window_s": 60})
    text = rig.pass_text()
    _attempt(rig, text, None)
    [first] = rig.events()
    rig.clock.advance((first["mono_ns"] + 60_000_000_000 - rig.clock.monotonic_ns()) / 1e9)
    rig.clock.advance(past_ns / 1e9)
    assert rig.clock.monotonic_ns() - first["mono_ns"] == 60_000_000_000 + past_ns
    _attempt(rig, text, 36.6)
    assert _flags(rig) == [[], [f"retries:{first['seq']}"] if linked else []]


def test_a_window_of_zero_links_nothing(make_rig):
    rig = make_rig(engine={"retry_window_s": 0})
    text = rig.pass_text()
    _attempt(rig, text, None)
    _attempt(rig, text, 36.6)
    assert _flags(rig) == [[], []]


def test_the_other_way_is_another_passage(make_rig):
    rig = make_rig(site={"direction": "both"})
    text = rig.pass_text()
    _attempt(rig, text, None, "in")
    _attempt(rig, text, 36.6, "out")
    assert _flags(rig) == [[], []]
    assert _passages(_report(rig)) == (2, 1, 1)


def test_a_fever_then_a_normal_try_stays_a_denied_passage(make_rig):
    """The engine measures a fever once more within its passage (one event, ``fever``); a
    person who then tries again and reads normal is a second passage: the fever stays a
    denied passage, an alarm and a fever in every count."""
    rig = make_rig()
    text = rig.pass_text()
    _attempt(rig, text, 38.6)
    prompts = [m["prompt"] for m in rig.messages if m["type"] == "state"]
    assert prompts.count("measure_again") == 1  # the engine's own re-measure, as before
    _attempt(rig, text, 36.6)
    fever, normal = rig.events()
    assert (fever["decision"], fever["reasons"]) == ("deny", ["fever"])
    assert (normal["decision"], _links(normal)) == ("pass", [])
    report = _report(rig)
    assert _passages(report) == (2, 1, 1)
    assert report["fever_alarms"]["count"] == 1 and report["community"]["fevers"]["gate"] == 1


def test_a_reading_too_hot_to_be_a_body_is_not_measured_away(make_rig):
    """``temp_implausible`` above the fever threshold (a hot object, or a fever the view
    could not confirm) is no measure-again deny to fold into the next attempt."""
    rig = make_rig()
    text = rig.pass_text()
    _attempt(rig, text, 46.0)
    first = rig.events()[0]
    assert first["reasons"] == ["temp_implausible"] and first["temp_c"] >= 37.3
    _attempt(rig, text, 36.6)
    assert _flags(rig) == [[], []]
    assert _passages(_report(rig)) == (2, 1, 1)


def test_a_deny_for_the_pass_too_is_not_a_measure_again_deny():
    assert measure_again("deny", ["no_temperature"], None, 37.3)
    assert measure_again("deny", ["temp_implausible", "no_temperature"], 34.0, 37.3)
    assert not measure_again("deny", ["pass_expired", "no_temperature"], None, 37.3)
    assert not measure_again("deny", ["fever"], 38.5, 37.3)
    assert not measure_again("deny", ["temp_implausible"], 37.3, 37.3)
    assert not measure_again("deny", [], None, 37.3)
    assert not measure_again("manual_deny", ["no_temperature"], None, 37.3)


def test_a_guards_decision_ends_the_passage_the_next_try_is_another(make_rig):
    rig = make_rig()
    text = rig.pass_text()
    _attempt(rig, text, None)
    denied = rig.events()[0]
    rig.engine.manual(
        "manual_deny", "alice", "sent home", "out", subject=ManualSubject.of_event(denied)
    )
    rig.run(5)
    _attempt(rig, text, 36.6)
    assert [e["decision"] for e in rig.events()] == ["deny", "manual_deny", "pass"]
    assert _flags(rig) == [[], [f"overrides:{denied['seq']}"], []]
    assert _passages(_report(rig)) == (2, 1, 1)


def test_a_guards_decision_about_a_retry_ends_the_one_passage(make_rig):
    rig = make_rig()
    text = rig.pass_text()
    _attempt(rig, text, None)
    _attempt(rig, text, None)
    again = rig.events()[1]
    rig.engine.manual(
        "manual_pass", "alice", "36.4 by hand", "out", temp_c=36.4,
        subject=ManualSubject.of_event(again),
    )  # fmt: skip
    rig.run(5)
    report = _report(rig)
    assert _passages(report) == (1, 1, 0)
    assert report["no_temperature"] == 0  # the guard's hand reading is the passage's


def test_temperature_first_without_a_pass_links_nothing(make_rig):
    """A temperature-first kiosk measures before it asks for the pass: an attempt whose
    person never showed one has no pass to link by, so it stays a passage of its own."""
    rig = make_rig(engine={"order": "temperature_first"})
    rig.emulator.person_arrives(29.0)  # implausible twice, then walks off without a code
    rig.run(8)
    rig.emulator.person_leaves()
    rig.run(15)
    rig.emulator.person_arrives(36.6)
    rig.run(3)
    rig.show(rig.pass_text())
    rig.run(6)
    first, second = rig.events()
    assert first["pass_id"] is None and first["decision"] == "deny"
    assert (second["decision"], _links(second)) == ("pass", [])
    assert _passages(_report(rig)) == (2, 1, 1)


def test_temperature_first_a_pass_shown_both_times_is_linked(make_rig):
    rig = make_rig(engine={"order": "temperature_first"})
    text = rig.pass_text()
    rig.emulator.person_arrives(29.0)
    rig.run(5)
    rig.show(text)  # shown after the measure failed: the deny has the pass
    rig.run(3)
    rig.emulator.person_leaves()
    rig.run(10)
    rig.emulator.person_arrives(36.6)
    rig.run(3)
    rig.show(text)
    rig.run(6)
    first, again = rig.events()
    assert first["reasons"] == ["temp_implausible"] and first["pass_id"] == again["pass_id"]
    assert _links(again) == [f"retries:{first['seq']}"]


def test_a_retry_is_not_a_second_outing_nor_passback(make_rig):
    """The quota and anti-passback count only passing decisions (``kiosk.history``): a
    measure-again deny then a pass is one outing, the pass no passback; the next outing of
    the day is the one over a quota of one."""
    rig = make_rig(policy={"quota": {"enabled": True, "exits": 1, "period_days": 1}})
    text = rig.pass_text()
    _attempt(rig, text, None)
    _attempt(rig, text, 36.6)
    assert [e["decision"] for e in rig.events()] == ["deny", "pass"]
    rig.run(200)  # past the passback window: the quota alone decides
    _attempt(rig, text, 36.6)
    assert rig.events()[-1]["reasons"] == ["quota_exceeded"]
    outings = _report(rig, QuotaConfig(enabled=True, exits=1, period_days=1))
    assert outings["exits_per_household"]["exits"] == 1


def test_passage_key_follows_a_chain_of_attempts_and_decisions():
    """A row names the row before it (``retries:``, ``overrides:``): its passage is that
    row's passage, however long the chain; a row named from another day, or another gate's
    same seq, is no link."""
    seen: dict = {}
    rows = [
        {"kiosk_id": "k", "seq": 1, "flags": "[]"},
        {"kiosk_id": "k", "seq": 2, "flags": '["retries:1"]'},
        {"kiosk_id": "k", "seq": 3, "flags": '["overrides:2"]'},
        {"kiosk_id": "k", "seq": 4, "flags": '["retries:99"]'},  # of another day
        {"kiosk_id": "j", "seq": 5, "flags": '["retries:1"]'},  # another gate's seq 1
    ]
    assert [passage_key(r, seen) for r in rows] == [
        ("k", 1), ("k", 1), ("k", 1), ("k", 4), ("j", 5),
    ]  # fmt: skip


# -- every face counts the same ---------------------------------------------------------------

QUOTA = QuotaConfig.model_validate(CONFIG["policy"]["quota"])
AFTER = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)


def _retries_day(data: Path) -> Day:
    """A morning of attempts at the gate: each kind the rule links, or must not link."""
    g = _Gate(data, local(DAY, 7, 50), behind=timedelta(0))
    try:
        g.at(local(DAY, 8, 0))
        g.again("A-101", "out", None, 36.5, after_s=30, same_passage=True)
        g.at(local(DAY, 8, 10))
        g.again("A-102", "out", 29.0, 36.6, after_s=20, same_passage=True)
        g.at(local(DAY, 8, 20))
        g.again("A-103", "in", 38.7, 36.6, after_s=20, same_passage=False)  # a fever
        g.at(local(DAY, 8, 30))
        g.again("A-104", "in", None, 36.6, after_s=200, same_passage=False)  # too late
        g.at(local(DAY, 8, 40))
        g.visitor("A-105", "out", None, settle_s=20.0)
        g.visitor("A-106", "out", 36.4)  # someone else right after
    finally:
        g.kiosk.close()
        g.core.close()
    return g.day


def _cards(page: str) -> dict[str, int]:
    kpis = re.findall(r'<div class="v">(\d+)</div><div class="l">(?:[✔✖] )?([^<]+)</div>', page)
    return {label: int(n) for n, label in kpis}


@pytest.mark.slow  # a morning in virtual time, the console, PostgreSQL: ~1.5 s of CPU
def test_the_console_the_daily_report_and_the_district_count_attempts_alike(
    tmp_path, pg_dsn, monkeypatch
):
    data = tmp_path / "day" / "data"
    data.mkdir(parents=True)
    day = _retries_day(data)
    truth = day.passages()
    assert (truth["total"], truth["passed"], truth["denied"]) == (8, 5, 3)
    assert sum(any(f.startswith("retries:") for f in d["flags"]) for d in day.of_day()) == 2

    report = compute_report(sqlite_utils.Database(data / "kiosk.db"), DAY, TZ, QUOTA)
    assert report["events"] == 10
    assert {k: report["passages"][k] for k in truth} == truth
    assert sum(report["passages"]["by_hour"]) == truth["total"]

    console_data = tmp_path / "console" / "data"
    shutil.copytree(data, console_data)
    core = make_core(console_data, FakeClock(start=AFTER), monkeypatch, parse_config(CONFIG))
    try:
        with signed_in(make_app(core)) as client:
            page = client.get("/guard/stats?day=2026-03-02").text
    finally:
        core.close()
    cards = _cards(page)
    assert (cards["合计"], cards["通过"], cards["拒绝"]) == tuple(truth.values())

    api = kiosk_api(data / "kiosk.db", KIOSK_ID, FakeClock(start=AFTER),
                    scopes=("logs:read", "stats:read"))  # fmt: skip
    try:
        headers = {"Authorization": f"Bearer {api.token}"}
        stats = api.test_client.get("/api/v1/stats?day=2026-03-02", headers=headers).json()
        pull_pg(f"http://{KIOSK_ID}", api.token, pg_dsn, Network(api))
    finally:
        api.store.close()
    assert stats["passages"] == report["passages"]
    district = district_report(pg_dsn, DAY, TZ, QUOTA)
    assert district["passages"] == report["passages"]
    assert district["community"]["people"] == report["community"]["people"]
    (gate,) = district["by_gate"]
    assert (gate["passed"], gate["denied"]) == (truth["passed"], truth["denied"])
