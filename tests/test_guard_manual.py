"""A manual decision names its subject before it is made (issue 17 item 1): the last passage
or a person without a pass, chosen explicitly; the typed reason and a hand-measured
temperature go on the event and into the feed."""

from __future__ import annotations

import re

import pytest
from guard_support import (
    add_event,
    decided,
    login,
    post,
)
from test_engine import Rig

from kiosk.engine import ManualSubject


@pytest.fixture
def rig(clock, tmp_path):
    r = Rig(clock, tmp_path)
    yield r
    r.close()


def _deny_shown(rig: Rig) -> None:
    rig.show(rig.pass_text(household="C-303", holder="Wang Fang"))
    rig.emulator.person_arrives(38.6)
    rig.run(4)
    assert rig.decisions()[-1]["decision"] == "deny"


def test_a_person_without_a_pass_chosen_explicitly_is_not_the_deny_on_screen(rig):
    _deny_shown(rig)
    rig.engine.manual("manual_pass", "guard-zhou", "neighbour, no phone", "in", subject="none")
    event = rig.events()[-1]
    assert event["decision"] == "manual_pass"
    assert (event["household"], event["holder"], event["pass_id"]) == (None, None, None)
    assert event["flags"] == ["unchecked"]  # no household named: nothing could be checked


def test_a_chosen_passage_is_copied_and_a_hand_reading_replaces_the_kiosks(rig):
    subject = ManualSubject(seq=7, pass_id="ab12", household="3-201", holder="Li Wei", temp_c=37.9)
    rig.engine.manual("manual_deny", "guard-zhou", "rechecked", "in", temp_c=37.0, subject=subject)
    event = rig.events()[-1]
    assert (event["household"], event["holder"], event["pass_id"]) == ("3-201", "Li Wei", "ab12")
    assert event["flags"] == ["overrides:7"]
    assert event["temp_c"] == 37.0 and event["temp_object_c"] is None
    assert event["person"]["note"] == "rechecked"


def test_a_subject_that_is_neither_is_refused(rig):
    with pytest.raises(ValueError, match="subject"):
        rig.engine.manual("manual_pass", "guard-zhou", "x", "in", subject="whoever")
    assert rig.events() == []


def test_the_live_page_names_the_last_passage_and_the_decision_records_it(guard_client, guard_core):
    add_event(
        guard_core,
        decision="deny",
        reasons=("pass_revoked",),
        holder="Li Wei",
        household="3-201",
        pass_id="c0ffee000001",
        temp_c=36.4,
    )
    csrf = login(guard_client)
    page = guard_client.get("/guard?lang=en").text
    label = re.search(r'id="subject-last-text">([^<]*)<', page).group(1)
    assert label.startswith("The last passage: Li Wei · 3-201 · 36.4 °C")
    assert "03-02" in label  # the date, not only the time
    assert 'value="none" id="subject-none" required' in page  # nothing chosen for the guard
    with decided(guard_client, guard_core):
        response = post(
            guard_client,
            "/guard/manual",
            csrf,
            decision="pass",
            subject="1",
            reason="card lost, known to guard",
            temp_c="36,8",
        )
    assert response.status_code == 303 and "err=" not in response.headers["location"]
    event = guard_core.store.events()[-1]
    assert (event["holder"], event["household"], event["flags"]) == (
        "Li Wei",
        "3-201",
        ["overrides:1"],
    )
    assert event["temp_c"] == 36.8 and event["person"]["note"] == "card lost, known to guard"
    row = guard_client.get("/guard/api/feed?lang=en").json()["rows"][0]
    assert row["note"] == "card lost, known to guard" and row["by_hand"] and row["about_seq"] == 1
    feed = guard_client.get("/guard?lang=en").text
    assert "card lost, known to guard" in feed and "by hand" in feed and "about #1" in feed


@pytest.mark.parametrize(
    ("subject", "problem"),
    [
        (None, "err.subject"),
        ("abc", "err.subject"),
        ("²", "err.subject"),  # a digit to str.isdigit, no number to int: was a 500
        ("①", "err.subject"),
        ("2", "err.subject_gone"),
        ("99", "err.subject_gone"),
    ],
)
def test_a_manual_decision_without_a_valid_subject_records_nothing(
    guard_client, guard_core, subject, problem
):
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.2)
    add_event(
        guard_core,
        decision="manual_pass",
        reasons=("guard_override",),
        kind="manual",
        operator="bob",
    )
    csrf = login(guard_client)
    form = {"decision": "pass", "reason": "x"} | ({"subject": subject} if subject else {})
    response = post(guard_client, "/guard/manual", csrf, **form)
    assert "err=" in response.headers["location"]
    assert guard_core.store.last_seq == 2
    assert guard_core.store.audits()[-1]["detail"]["problem"] == problem


def test_a_passage_older_than_the_shift_cannot_be_chosen(guard_client, guard_core, clock):
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.2)
    clock.advance(13 * 3600)
    csrf = login(guard_client)
    response = post(guard_client, "/guard/manual", csrf, decision="pass", reason="x", subject="1")
    assert "err=" in response.headers["location"]
    assert guard_core.store.last_seq == 1


def _denied_passage(rig: Rig) -> ManualSubject:
    _deny_shown(rig)
    return ManualSubject.of_event(rig.events()[-1])


def _manuals(rig: Rig) -> list[tuple[str, str]]:
    return [(e["decision"], e["operator"]) for e in rig.events() if e["kind"] == "manual"]


def test_a_second_decision_about_a_passage_the_first_holds_is_refused_as_already_decided(rig):
    """Two guards (two consoles, or a double tap) deciding one passage back to back: the
    engine has taken the first, and the log may not hold it yet; the second is refused,
    naming who decided it, and only the first is recorded."""
    from kiosk.overrides import SubjectRefused

    subject = _denied_passage(rig)
    rig.engine.manual("manual_pass", "guard-zhou", "home to isolate", "in", subject=subject)
    with pytest.raises(SubjectRefused) as refused:
        rig.engine.manual("manual_deny", "guard-li", "rechecked", "in", subject=subject)
    assert (refused.value.why, refused.value.who) == ("decided", "guard-zhou")
    assert (refused.value.decision, refused.value.seq) == ("manual_pass", subject.seq)
    assert _manuals(rig) == [("manual_pass", "guard-zhou")]


def test_a_console_decision_racing_a_scenarios_guard_step_leaves_one_decision(rig):
    """A scenario's guard step checks the log (no decision yet), and a console decides the
    same passage before the step reaches the engine: the step is refused as the console's
    second decision would be (the same mechanism), never a second override recorded."""
    from checkpoint.replay import DeviceTarget, ManualSpec

    subject = _denied_passage(rig)

    def console_first(**step: object) -> None:
        rig.engine.manual("manual_deny", "guard-li", "rechecked", "in", subject=subject)
        rig.engine.manual(**step)

    target = DeviceTarget(clock=rig.clock, on_manual=console_first, event_log=rig.log)
    spec = ManualSpec(decision="manual_pass", operator="guard-zhou", reason="escorted home")
    with pytest.raises(ValueError, match="guard-li has already decided passage"):
        target.manual(spec, "in", target.subject(subject.seq, spec.decision))
    assert _manuals(rig) == [("manual_deny", "guard-li")]


def test_a_hold_is_let_go_when_nothing_was_decided_and_stands_a_while_after_its_commit():
    """A hold released with None (nothing decided: its record lost) lets the passage go at
    once; one whose record is committed stands ``CLAIM_S`` more (a check that read the log
    before the commit may still be on its way), then the log answers for it."""
    from kiosk.overrides import CLAIM_S, Overrides, SubjectRefused

    held = Overrides()
    held.take(7, "guard-zhou", "manual_pass", 0)(None)  # nothing decided
    committed = held.take(7, "guard-li", "manual_deny", 0)
    with pytest.raises(SubjectRefused, match="guard-li"):
        held.take(7, "guard-zhou", "manual_pass", 10**15)  # its commit not over: held
    committed(1_000)
    with pytest.raises(SubjectRefused, match="guard-li"):
        held.take(7, "guard-zhou", "manual_pass", 1_000 + CLAIM_S * 10**9 - 1)
    held.take(7, "guard-zhou", "manual_pass", 1_000 + CLAIM_S * 10**9)
    committed(2_000)  # a release of a lapsed hold leaves the new one alone
    with pytest.raises(SubjectRefused, match="guard-zhou"):
        held.take(7, "guard-li", "manual_deny", 10**16)


def test_invalid_input_about_a_passage_leaves_it_free_for_a_valid_decision(rig):
    """A decision refused as bad input (a person's phone that is no text, an audit row that
    is no row) decided nothing: another guard's valid decision about the passage is taken,
    not refused as already decided until a restart."""
    subject = _denied_passage(rig)
    with pytest.raises(ValueError, match=r"person\.phone"):
        rig.engine.manual(
            "manual_deny", "guard-li", "x", "in", subject=subject, person={"phone": True}
        )
    with pytest.raises(ValueError):
        rig.engine.manual("manual_deny", "guard-li", "x", "in", subject=subject, audit=("a",))
    rig.engine.manual("manual_pass", "guard-zhou", "home to isolate", "in", subject=subject)
    assert _manuals(rig) == [("manual_pass", "guard-zhou")]


def test_a_decision_the_log_cannot_take_holds_its_passage_until_the_log_does(rig):
    """The store fails as a guard decides a passage: the record waits in the backlog past
    ``CLAIM_S``, the log still lacks it, and a second guard's decision is refused all the
    same; once the store recovers the one decision is written, and it stands ``CLAIM_S``
    more before the log answers for it."""
    from kiosk.clock import ClockReading
    from kiosk.overrides import CLAIM_S, SubjectRefused
    from kiosk.subjects import subject_in_log

    subject = _denied_passage(rig)
    rig.store.fail()
    rig.engine.manual("manual_deny", "guard-li", "rechecked", "in", subject=subject)
    rig.run(CLAIM_S + 1)
    assert rig.engine.backlog  # not in the log: only the engine knows it was decided
    subject_in_log(rig.log, subject.seq, "manual_pass", ClockReading.take(rig.clock), "t")
    with pytest.raises(SubjectRefused, match="guard-li"):
        rig.engine.manual("manual_pass", "guard-zhou", "escorted", "in", subject=subject)
    rig.store.recover()
    rig.run(2)  # the record written at the next retry (idle_probe_s): held a while after it
    assert _manuals(rig) == [("manual_deny", "guard-li")]
    with pytest.raises(SubjectRefused, match="guard-li"):
        rig.engine.manual("manual_pass", "guard-zhou", "escorted", "in", subject=subject)
    rig.run(CLAIM_S)
    with pytest.raises(SubjectRefused, match="guard-li"):  # the log answers now
        subject_in_log(rig.log, subject.seq, "manual_pass", ClockReading.take(rig.clock), "t")


def test_a_decision_whose_record_is_lost_from_a_full_backlog_lets_its_passage_go(clock, tmp_path):
    """The backlog full, a guard's record waiting there is dropped for a newer one: nothing
    about the passage will reach the log, so another guard may decide it."""
    rig = Rig(clock, tmp_path, engine={"backlog_max": 1})
    try:
        subject = _denied_passage(rig)
        rig.store.fail()
        rig.engine.manual("manual_deny", "guard-li", "rechecked", "in", subject=subject)
        rig.engine.manual("manual_pass", "guard-wu", "neighbour", "in", subject="none")
        assert rig.engine.dropped_backlog == 1
        rig.store.recover()
        rig.engine.manual("manual_pass", "guard-zhou", "escorted", "in", subject=subject)
        assert ("manual_pass", "guard-zhou") in _manuals(rig)
    finally:
        rig.close()


def test_only_a_refused_decision_marks_the_form_to_be_put_back(guard_client, guard_core):
    """A refusal (nothing recorded) comes back marked on the manual form (``data-refused``:
    guard.js puts back what was typed); the mark is signed with the banner, so a link cannot
    add it to a banner that is no refusal (a decision recorded leaves the form empty)."""
    csrf = login(guard_client)
    response = post(guard_client, "/guard/manual", csrf, decision="pass", subject="9", reason="x")
    location = response.headers["location"]
    assert "refused=1" in location
    form = re.compile(r'<form[^>]*id="manual-form"[^>]*>', re.S)
    assert "data-refused" in form.search(guard_client.get(location).text).group(0)
    unmarked = location.replace("&refused=1", "")
    page = guard_client.get(unmarked).text
    assert "data-refused" not in form.search(page).group(0)
    assert 'class="flash err" role="alert">' not in page  # its signature was the refusal's
