"""The guard records letting through by hand a resident whose pass the gate did not open for.

The kiosk passed the resident, then its relay failed (``deny`` ``gate_fault`` flagged
``not_opened:<seq>``): the guard opens the gate by hand and records it. The console refused a
manual pass about that passage (``err.subject_passed``: "the kiosk already passed them"), so
the guard recorded a person without a pass and the household's outing was never counted (the
pass, taken back, was none). It is taken now: the passage ends passed, by the guard's hand,
once in the reports and as the household's one outing."""

from __future__ import annotations

from datetime import date

from guard_support import add_event, decided, login, post

from kiosk import queries, stats


def _passed_not_opened(guard_core) -> int:
    """The kiosk passed a resident going out, and the gate did not open: the pass's seq."""
    passed = add_event(guard_core, direction="out", household="3-201", holder="Li Wei",
                       pass_id="c0ffee000003", temp_c=36.5, temp_object_c=34.0)  # fmt: skip
    add_event(guard_core, direction="out", decision="deny", reasons=("gate_fault",),
              household="3-201", holder="Li Wei", pass_id="c0ffee000003",
              flags=(f"not_opened:{passed.seq}",))  # fmt: skip
    return int(passed.seq)


def test_a_manual_pass_about_a_pass_the_gate_did_not_open_for_is_taken_and_counted_once(
    guard_client, guard_core
):
    seq = _passed_not_opened(guard_core)
    csrf = login(guard_client)
    form = {"subject": str(seq), "reason": "opened by hand", "direction": "out", "decision": "pass"}
    with decided(guard_client, guard_core) as seen:
        answer = post(guard_client, "/guard/manual?lang=en", csrf, **form)
    assert "err=" not in answer.headers["location"], answer.headers["location"]
    assert seen[0]["decision"] == "manual_pass"
    assert queries.override_of(guard_core.store, seq)["decision"] == "manual_pass"
    report = stats.compute_report(guard_core.store.reader(), date(2026, 3, 2), "UTC")
    passages = report["passages"]
    assert (passages["total"], passages["passed"], passages["denied"]) == (1, 1, 0)
    assert report["community"]["people"]["out"] == 1
    exits = report["exits_per_household"]
    assert (exits["households"], exits["exits"]) == (1, 1)


def test_a_manual_pass_about_a_pass_the_gate_opened_for_is_still_refused(guard_client, guard_core):
    passed = add_event(guard_core, direction="out", household="3-201", pass_id="c0ffee000003")
    # Another pass's not_opened row does not speak for this one.
    add_event(guard_core, direction="out", decision="deny", reasons=("gate_fault",),
              flags=(f"not_opened:{passed.seq + 5}",))  # fmt: skip
    csrf = login(guard_client)
    form = {"subject": str(passed.seq), "reason": "again", "direction": "out", "decision": "pass"}
    refused = post(guard_client, "/guard/manual?lang=en", csrf, **form)
    assert "err=" in refused.headers["location"]
    assert guard_core.store.audits()[-1]["detail"]["problem"] == "err.subject_passed"
    assert queries.not_opened_for(guard_core.store, passed.seq) is None


def test_the_pass_and_the_row_saying_the_gate_did_not_open_are_one_passage_decided_once(
    guard_client, guard_core
):
    """The feed offers the newest passage as the subject: the row saying the gate did not
    open (a deny), while an alarm links the pass. A guard's manual pass about one and
    another's about the other were both taken: two people out, two outings of the household,
    for one resident let through once."""
    seq = _passed_not_opened(guard_core)
    csrf = login(guard_client)
    form = {"subject": str(seq + 1), "reason": "opened by hand", "direction": "out",
            "decision": "pass"}  # fmt: skip
    with decided(guard_client, guard_core) as seen:
        post(guard_client, "/guard/manual?lang=en", csrf, **form)
    assert seen[0]["decision"] == "manual_pass"
    # About the pass itself: one subject, whichever row was chosen.
    assert queries.override_of(guard_core.store, seq)["decision"] == "manual_pass"
    again = post(guard_client, "/guard/manual?lang=en", csrf, **(form | {"subject": str(seq)}))
    assert "err=" in again.headers["location"]
    assert guard_core.store.audits()[-1]["detail"]["problem"] == "err.subject_decided"
    report = stats.compute_report(guard_core.store.reader(), date(2026, 3, 2), "UTC")
    assert report["exits_per_household"]["exits"] == 1
    assert report["community"]["people"]["out"] == 1


def test_a_decision_recorded_about_the_row_after_the_pass_decides_the_pass_too(
    guard_client, guard_core
):
    seq = _passed_not_opened(guard_core)
    add_event(guard_core, direction="out", decision="manual_pass", reasons=("guard_override",),
              operator="bob", household="3-201", flags=(f"overrides:{seq + 1}",))  # fmt: skip
    csrf = login(guard_client)
    form = {"subject": str(seq), "reason": "again", "direction": "out", "decision": "pass"}
    refused = post(guard_client, "/guard/manual?lang=en", csrf, **form)
    assert "err=" in refused.headers["location"]
    assert guard_core.store.audits()[-1]["detail"]["problem"] == "err.subject_decided"


def test_the_feed_draws_a_pass_the_gate_did_not_open_for_as_not_let_through(
    guard_client, guard_core
):
    """The guard's feed (the live page, ``/guard/api/feed``, an alarm's ``/guard/passage/N``)
    drew a pass followed by its ``not_opened`` row (``gate_fault``, or the stop's
    ``stopping``) as "✔ pass", beside the row saying the gate did not open for it: the guard
    read it as let through. Such a pass is drawn as not let through (✖, "pass: the gate did
    not open"); a pass the gate opened for is drawn as ever."""
    seq = _passed_not_opened(guard_core)
    opened = add_event(guard_core, direction="out", household="3-202", pass_id="c0ffee000004")
    login(guard_client)
    rows = {r["seq"]: r for r in guard_client.get("/guard/api/feed?lang=en").json()["rows"]}
    assert rows[seq]["ok"] is False
    assert rows[seq]["decision_text"] == "pass: the gate did not open"
    assert rows[opened.seq]["ok"] is True and rows[opened.seq]["decision_text"] == "pass"
    page = guard_client.get(f"/guard/passage/{seq}?lang=en").text
    assert "✖ pass: the gate did not open" in page and "✔ pass" not in page
    live = guard_client.get("/guard?lang=en").text
    assert "✖ pass: the gate did not open" in live
    assert queries.not_let_through(guard_core.store, [rows[seq], rows[opened.seq]]) == {seq}
