"""A quarantined resident without a pass, measured and denied ``no_pass`` by the kiosk, walked
out when the guard picked *the last passage* (that deny: the person at the gate) and typed
their dwelling, as the form invites: the dwelling was read only for *a person without a
pass*, so the record named no household, held nothing and was not flagged ``unchecked``. A
passage that names no household (``no_pass``, ``reader_fault``: an unknown person) is now
held on the dwelling typed, by the rules for a person without a pass; neither naming one,
the pass is flagged ``unchecked``; and the confirmation line says the dwelling it checked."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from guard_support import BASE, add_event, decided, login, make_app, post
from test_guard_holds import as_a_browser_sends
from test_manual_household import HOUSEHOLD, core, quarantine  # noqa: F401

from kiosk.engine import ManualSubject


def about(client, csrf, seq, **more):
    sent = {"decision": "pass", "subject": str(seq), "reason": "忘带通行证", "direction": "out"}
    return post(client, "/guard/manual", csrf, **(sent | more))


@pytest.mark.parametrize("reason", ["no_pass", "reader_fault"])
def test_the_dwelling_typed_for_a_passage_naming_none_is_held(core, reason):  # noqa: F811
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        quarantine(core)
        seen = add_event(core, direction="out", decision="deny", reasons=(reason,), temp_c=36.5)
        before = core.store.last_seq
        asked = about(client, csrf, seen.seq, household="３-４０２")
        assert asked.status_code == 200 and core.store.last_seq == before
        assert 'id="confirm-confirm-quarantine"' in asked.text
        with decided(client, core):
            done = as_a_browser_sends(client, asked.text, ("quarantine_reason", "送医"),
                                      ("confirm_quarantine", "1"))  # fmt: skip
        assert done.status_code == 303 and "err=" not in done.headers["location"]
        event = core.store.events()[-1]
    assert (event["decision"], event["household"]) == ("manual_pass", HOUSEHOLD)
    assert "quarantine" in event["flags"] and f"overrides:{seen.seq}" in event["flags"]
    assert "unchecked" not in event["flags"]


def test_a_passage_naming_none_and_no_dwelling_typed_is_flagged_unchecked(core):  # noqa: F811
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        seen = add_event(core, direction="out", decision="deny", reasons=("no_pass",))
        with decided(client, core):
            assert about(client, csrf, seen.seq).status_code == 303
        event = core.store.events()[-1]
    assert event["household"] is None and "unchecked" in event["flags"]


def test_a_passage_naming_its_household_keeps_it_whatever_is_typed(core):  # noqa: F811
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        seen = add_event(core, direction="out", decision="deny", reasons=("fever",),
                         household="5-101", pass_id="p1")  # fmt: skip
        with decided(client, core):
            assert about(client, csrf, seen.seq, household=HOUSEHOLD).status_code == 303
        event = core.store.events()[-1]
    assert event["household"] == "5-101" and "unchecked" not in event["flags"]


def test_the_engine_takes_a_household_only_for_a_passage_naming_none(core):  # noqa: F811
    engine = core.runner.engine
    named = ManualSubject(seq=1, pass_id="p1", household="5-101")
    with pytest.raises(ValueError, match="household"):
        engine.manual("manual_pass", "alice", "x", "out", subject=named, household=HOUSEHOLD)


def test_the_form_marks_whether_the_last_passage_names_a_household(core):  # noqa: F811
    """What guard.js's confirmation line reads: a passage naming none is said with the
    dwelling typed (or "nothing can be checked"), as a person without a pass is."""
    with TestClient(make_app(core), base_url=BASE) as client:
        login(client)
        add_event(core, direction="out", decision="deny", reasons=("no_pass",))
        page = client.get("/guard").text
        assert 'id="subject-last"' in page and 'data-household=""' in page
        add_event(core, direction="out", decision="deny", reasons=("fever",), household="5-101",
                  pass_id="p1")  # fmt: skip
        assert 'data-household="1"' in client.get("/guard").text
        rows = client.get("/guard/api/feed").json()["rows"]
    assert [r["names_household"] for r in rows[:2]] == [True, False]
