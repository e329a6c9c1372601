"""Two guards at one gate, each on a tablet signed in to the same console: what one does
while the other's page still shows the state before it. A removal (a quarantine lifted, a
pass restored, a household taken off the ledger) acts on the entry its page showed, or not
at all: the form carries the entry's version as drawn (``kiosk.lists.entry_version``) and
the list store refuses it when the entry has changed since, saying what it is now."""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from guard_support import (
    ADMIN_PW,
    WAIT_S,
    add_event,
    decided,
    hidden_fields,
    make_app,
    post,
    send,
    signed_in,
)

from kiosk import lists as kiosk_lists
from kiosk import queries
from kiosk.accounts import hash_password
from kiosk.alarms import ALARMS_HEARD
from kiosk.observation import ObservationLedger
from kiosk.roster import Roster
from ui.auth import COOKIE
from ui.guard.live import FeedStream
from ui.views import ScreenTracker, current_state


@pytest.fixture
def app(guard_core):
    return make_app(guard_core)


@pytest.fixture
def tablets(app):
    """Guard A (alice) and guard B (root), each signed in on a tablet of their own."""
    with signed_in(app) as a, signed_in(app, "root", ADMIN_PW) as b:
        yield a, b


def remove_form(page: str, which: str, key: str, value: str) -> dict[str, str]:
    """The hidden fields of the remove form of the row of list ``which`` whose ``key`` is
    ``value``, as the lists page draws it."""
    for form in re.findall(
        rf'<form method="post" action="/guard/lists/{which}/remove">(.*?)</form>', page, re.S
    ):
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
        fields = {k: html.unescape(v) for k, v in fields.items()}
        if fields.get(key) == value:
            return fields
    raise AssertionError(f"no remove form for {key}={value}")


def confirmed(tablet, path: str, fields: dict[str, str]) -> dict[str, str]:
    """The confirmation step's form, as the page of ``fields`` sent to ``path`` draws it."""
    asked = send(tablet, path, fields)
    assert asked.status_code == 200 and 'id="confirm-form"' in asked.text, asked.text[:300]
    form = asked.text.split('id="confirm-form"', 1)[1].split("</form>", 1)[0]
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    return {k: html.unescape(v) for k, v in found}


def refusal(response) -> str | None:
    """What a form's answer refused: the banner of a page drawn again as typed (400), or the
    ``err`` a redirect carries; None when nothing was refused (a redirect without one)."""
    if response.status_code == 400:
        found = re.search(r'class="flash err"[^>]*>(.*?)</', response.text, re.S)
        assert found, response.text[:300]
        return html.unescape(found.group(1)).removeprefix("✖").strip()
    assert response.status_code == 303, response.text[:300]
    return parse_qs(urlsplit(response.headers["location"]).query).get("err", [None])[0]


def quarantine_add(core, household: str, actor: str = "office") -> int:
    core.lists.add_quarantine(household, None, "2026-01-01", "2026-12-31", actor=actor)
    return max(e.id for e in core.lists.current.quarantine if e.household == household)


def test_a_quarantine_lift_drawn_before_another_guard_reused_its_entry_lifts_nothing(
    tablets, guard_core
):
    """A's page shows entry N (household 5-202); B lifts it and quarantines 3-301, which the
    store numbers N again (the highest id freed). A's confirmation must not lift 3-301."""
    a, b = tablets
    entry = quarantine_add(guard_core, "5-202")
    path = "/guard/lists/quarantine/remove"
    shown = remove_form(a.get("/guard/lists").text, "quarantine", "id", str(entry))
    a_confirm = confirmed(a, path, shown)
    b_confirm = confirmed(
        b, path, remove_form(b.get("/guard/lists").text, "quarantine", "id", str(entry))
    )
    assert refusal(send(b, path, b_confirm)) is None
    assert quarantine_add(guard_core, "3-301", actor="root") == entry  # the same number again
    answer = send(a, path, a_confirm)
    said = refusal(answer)
    assert said is not None and "3-301" in said
    shown = answer.text  # drawn again, in the guard's language, with what it is now
    assert "已被改动" in shown and "3-301" in shown
    assert [e.household for e in guard_core.lists.current.quarantine] == ["3-301"]


def test_a_pass_restored_from_a_page_drawn_before_it_was_revoked_again_stays_revoked(
    tablets, guard_core
):
    """The card was found (A asks to restore the pass); meanwhile B restored it and, told it
    was stolen after all, revoked it again. A's confirmation lifts nothing."""
    a, b = tablets
    pass_id = "a1b2c3d4e5f6"
    guard_core.lists.revoke(pass_id, "lost", actor="alice")
    path = "/guard/lists/revocations/remove"
    a_confirm = confirmed(
        a, path, remove_form(a.get("/guard/lists").text, "revocations", "pass_id", pass_id)
    )
    guard_core.clock.advance(60)
    guard_core.lists.unrevoke(pass_id, actor="root")
    guard_core.clock.advance(60)
    guard_core.lists.revoke(pass_id, "stolen", actor="root")
    assert refusal(send(a, path, a_confirm)) is not None
    assert guard_core.lists.current.is_revoked(pass_id)


def test_a_household_removed_from_a_page_drawn_before_another_guard_set_it_stays(
    tablets, guard_core
):
    a, _b = tablets
    guard_core.lists.set_household("9-909", actor="office", residents=3)
    path = "/guard/lists/households/remove"
    a_confirm = confirmed(
        a, path, remove_form(a.get("/guard/lists").text, "households", "household", "9-909")
    )
    guard_core.clock.advance(60)
    guard_core.lists.set_household(
        "9-909", actor="root", residents=3, observation_until="2026-12-30"
    )
    assert refusal(send(a, path, a_confirm)) is not None
    assert guard_core.lists.current.households["9-909"].observation_until is not None


def test_a_removal_of_an_unchanged_entry_goes_ahead(tablets, guard_core):
    a, _b = tablets
    entry = quarantine_add(guard_core, "5-202")
    path = "/guard/lists/quarantine/remove"
    a_confirm = confirmed(
        a, path, remove_form(a.get("/guard/lists").text, "quarantine", "id", str(entry))
    )
    assert refusal(send(a, path, a_confirm)) is None
    assert guard_core.lists.current.quarantine == () or not guard_core.lists.current.quarantine


def test_the_store_refuses_a_removal_of_an_entry_changed_since_it_was_seen(guard_core):
    entry = quarantine_add(guard_core, "5-202")
    (row,) = queries.list_rows(guard_core.store)["quarantine"]
    seen = kiosk_lists.entry_version("quarantine", row)
    guard_core.lists.remove_quarantine(entry, actor="root")
    assert quarantine_add(guard_core, "3-301") == entry
    with pytest.raises(kiosk_lists.ListChanged, match="3-301"):
        guard_core.lists.remove_quarantine(entry, actor="alice", seen=seen)
    assert len(guard_core.lists.current.quarantine) == 1
    # Without a version (a script, the CLI) the entry of that number goes, as before.
    guard_core.lists.remove_quarantine(entry, actor="alice")
    assert not guard_core.lists.current.quarantine


def test_a_pass_revoked_by_another_guard_meanwhile_keeps_that_guards_revocation(
    tablets, guard_core
):
    """A asks to void a pass as lost; before A confirms, B voids it as stolen (call the
    police if it is shown). A's confirmation used to write over B's: the reason the gate's
    card shows became "lost", by A. B's revocation stays, and A is told whose it is."""
    a, b = tablets
    pass_id = "a1b2c3d4e5f6"
    path = "/guard/lists/revocations/add"
    a_confirm = confirmed(a, path, {"csrf": a.csrf, "pass_id": pass_id, "note": "lost"})
    b_confirm = confirmed(b, path, {"csrf": b.csrf, "pass_id": pass_id, "note": "stolen"})
    assert refusal(send(b, path, b_confirm)) is None
    said = refusal(send(a, path, a_confirm))
    assert said is not None and "root" in said
    (row,) = queries.list_rows(guard_core.store)["revocations"]
    assert (row["reason"], row["actor"]) == ("stolen", "root")


def add_form(page: str, which: str) -> dict[str, str]:
    """The hidden fields of list ``which``'s add form (its CSRF and ``once`` tokens)."""
    form = page.split(f'action="/guard/lists/{which}/add"', 1)[1].split("</form>", 1)[0]
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    return {k: html.unescape(v) for k, v in found}


def test_a_household_added_over_another_guards_entry_asks_first_and_keeps_its_observation(
    tablets, guard_core
):
    """B puts 9-909 under observation (a returnee); A, whose page showed no 9-909, adds it
    with its residents. A's form used to replace B's entry whole: the observation gone, the
    returnee let through. A is shown the entry as it is and asked to replace it."""
    a, b = tablets
    path = "/guard/lists/households/add"
    a_form = add_form(a.get("/guard/lists").text, "households") | {
        "household": "9-909",
        "residents": "4",
    }
    b_form = add_form(b.get("/guard/lists").text, "households")
    b_form |= {"household": "9-909", "residents": "3", "observation_until": "2026-12-30"}
    assert refusal(send(b, path, b_form)) is None
    asked = send(a, path, a_form)
    assert asked.status_code == 200 and 'id="confirm-form"' in asked.text
    assert "2026-12-30" in asked.text and "root" in asked.text  # what it is now
    assert guard_core.lists.current.households["9-909"].observation_until is not None
    # Confirmed, A's entry replaces the one A was shown...
    a_confirm = confirmed(a, path, a_form)
    # ...unless it changed again before A confirmed.
    guard_core.clock.advance(60)
    guard_core.lists.set_household(
        "9-909", actor="root", residents=3, observation_until="2026-12-31"
    )
    assert refusal(send(a, path, a_confirm)) is not None
    assert str(guard_core.lists.current.households["9-909"].observation_until) == "2026-12-31"
    a_confirm = confirmed(a, path, add_form(a.get("/guard/lists").text, "households") | a_form)
    assert refusal(send(a, path, a_confirm)) is None
    household = guard_core.lists.current.households["9-909"]
    assert (household.residents, household.observation_until) == (4, None)


def test_a_household_another_guard_added_after_the_add_form_was_checked_is_not_replaced(
    guard_core,
):
    """The page saw no 9-909 (``NEW_ENTRY``); another guard's entry written in between stays."""
    guard_core.lists.set_household(
        "9-909", actor="root", residents=3, observation_until="2026-12-30"
    )
    with pytest.raises(kiosk_lists.ListChanged, match="root"):
        guard_core.lists.set_household(
            "9-909", actor="alice", residents=4, seen=kiosk_lists.NEW_ENTRY
        )
    assert guard_core.lists.current.households["9-909"].residents == 3


def alarm_keys(lines: list[str]) -> list[list[str]]:
    """The alarm cards of each ``alarms`` event among a stream's lines, by key."""
    drawn = [line for line in lines if line.startswith("event: alarms")]
    return [[c["key"] for c in json.loads(line.split("data: ", 1)[1])] for line in drawn]


def test_an_alarm_closed_on_one_tablet_leaves_the_other_tablets_feed_at_once(
    app, tablets, guard_core
):
    """A closes the fever alarm; B's live page kept showing it open (and counting it) until
    some other passage or device change came, so B went to the gate for it too. Closing
    tells every open stream, and each draws the alarms again."""
    a, b = tablets
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.4, household="3-201")
    g = app.state.guard
    b_session = g.auth.sessions.read(b.cookies.get(COOKIE))
    b_stream = FeedStream(g, b_session, "en", guard_core.store.last_seq)
    tracker = ScreenTracker(current_state(guard_core))
    told = guard_core.bus.subscribe(name="tablet-b")  # as B's open stream is
    try:
        assert alarm_keys([asyncio.run(b_stream.alarms())]) == [["event:1"]]
        closed = post(a, "/guard/alarms/ack", a.csrf, only="event:1@1", resolution="handled")
        assert refusal(closed) is None
        lines: list[str] = []
        while (message := told.get_nowait()) is not None:
            lines += asyncio.run(b_stream.on_message(message, tracker))
    finally:
        told.close()
    assert alarm_keys(lines) == [[]]


def status_form(page: str, pid: int) -> dict[str, str]:
    """The hidden fields of returnee ``pid``'s status form, as the ledger's page draws it."""
    action = f'action="/guard/community/returnees/{pid}/status"'
    form = page.split(action, 1)[1].split("</form>", 1)[0]
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    return {k: html.unescape(v) for k, v in found}


def test_a_returnee_cleared_from_a_page_drawn_before_another_manager_escalated_stays_escalated(
    app, guard_core
):
    """Manager B escalates a returnee with a fever (to the clinic); manager A, whose page
    still says "observing", clears them. A's clearing undid B's escalation unseen: the
    person free to go out. The status form carries the status its page showed."""
    guard_core.accounts.add("boss", "admin", hash_password(ADMIN_PW, n=2**10), actor="root")
    person = guard_core.ledgers.observation.register(
        name="Li Lei", household="3-2-702", phone="", origin="Wuhan",
        date_back=guard_core.clock.now().date().isoformat(), actor="root",
    )  # fmt: skip
    path = f"/guard/community/returnees/{person.id}/status"
    with signed_in(app, "root", ADMIN_PW) as a, signed_in(app, "boss", ADMIN_PW) as b:
        a_form = status_form(a.get("/guard/community/returnees").text, person.id)
        b_form = status_form(b.get("/guard/community/returnees").text, person.id)
        assert refusal(send(b, path, b_form | {"status": "escalated"})) is None
        said = refusal(send(a, path, a_form | {"status": "cleared"}))
    assert said is not None and "已上报" in said  # escalated, in the page's language
    assert guard_core.ledgers.observation.person(person.id).status == "escalated"


def test_an_alarm_raised_reaches_both_tablets_live_pages(app, tablets, guard_core):
    """The relay did not lock (the gate may stand open): the engine's one bus alarm went to
    the first tablet's stream only. The alarm desk is shared, so the second stream found
    the card already on the board, took it for nothing new and drew nothing: that tablet
    neither showed nor sounded it. Each stream draws the alarms its page has not shown, once
    the desk (which hears the bus itself: ``AlarmDesk.follow``) says they changed."""
    a, b = tablets
    g = app.state.guard
    tracker = ScreenTracker(current_state(guard_core))
    streams = [FeedStream(g, g.auth.sessions.read(t.cookies.get(COOKIE)), "en", 0) for t in (a, b)]
    for stream in streams:  # each page as drawn: no alarm
        assert alarm_keys([asyncio.run(stream.alarms())]) == [[]]
    message = {"type": "alarm", "alarm": "gate_not_locked", "state": "raised", "detail": "x"}
    assert g.alarms.note_message(message)  # as the desk's ear hears it on the bus
    heard = {"type": ALARMS_HEARD}
    drawn = [alarm_keys(asyncio.run(s.on_message(dict(heard), tracker))) for s in streams]
    assert drawn[0] == drawn[1] and len(drawn[0]) == 1 and len(drawn[0][0]) == 1
    # Told again with nothing changed since: nothing more on either.
    again = [asyncio.run(s.on_message(dict(heard), tracker)) for s in streams]
    assert again == [[], []]


def step_form(page: str, rid: int, action: str) -> dict[str, str]:
    """The hidden fields of request ``rid``'s ``action`` form, as the services page draws it."""
    marker = f'action="/guard/community/services/{rid}/{action}"'
    form = page.split(marker, 1)[1].split("</form>", 1)[0]
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    return {k: html.unescape(v) for k, v in found}


def test_a_request_cancelled_from_a_page_drawn_before_a_helper_took_it_stays_taken(
    tablets, guard_core
):
    """A volunteer took the food request and is on the stairs; the guard's page still said
    "open" and the guard cancelled it, under the volunteer's feet. The step's form carries
    the state its page showed."""
    a, b = tablets
    desk = guard_core.ledgers.services
    request = desk.open("3-2-702", "food", "root", confined=True)
    path = f"/guard/community/services/{request.id}/cancel"
    a_form = step_form(a.get("/guard/community/services").text, request.id, "cancel")
    taken = f"/guard/community/services/{request.id}/take"
    b_form = step_form(b.get("/guard/community/services").text, request.id, "take")
    assert refusal(send(b, taken, b_form)) is None
    said = refusal(send(a, path, a_form))
    assert said is not None and "已接单" in said  # taken, in the page's language
    assert desk.get(request.id).state == "taken"


def test_a_request_two_helpers_take_at_the_very_same_moment_is_taken_once(
    app, guard_core, monkeypatch
):
    """Both taps read the request open before either wrote: the state is read again in the
    write (``ServiceDesk._move``), so one takes it and the other is told it is taken."""
    desk = guard_core.ledgers.services
    request = desk.open("3-2-702", "food", "root", confined=True)
    path = f"/guard/community/services/{request.id}/take"
    with signed_in(app) as a:
        form = step_form(a.get("/guard/community/services").text, request.id, "take")
        both_read = reads_together(monkeypatch, type(desk), "get")  # drawn: only taps read
        taps = both_tap(both_read, lambda _: send(a, path, form), range(2))
    assert sorted(refusal(t) is None for t in taps) == [False, True]
    assert len([r for r in guard_core.store.audits() if r["action"] == "service.taken"]) == 1


def test_an_alarm_both_guards_close_is_closed_once_and_the_second_is_told_by_whom_and_how(
    tablets, guard_core
):
    """A closes the fever card as a false alarm; B, on the other tablet, closes it as
    escalated. One close stands (one audit row); B was told only "no such open alarm", not
    that A had closed it, nor as what: B is told both, and can follow it up."""
    a, b = tablets
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.4, household="3-201")
    closing = {"only": "event:1@1"}
    assert (
        refusal(post(a, "/guard/alarms/ack", a.csrf, resolution="false_alarm", **closing)) is None
    )
    said = refusal(post(b, "/guard/alarms/ack", b.csrf, resolution="escalated", **closing))
    assert said is not None and "alice" in said and "误报" in said
    acks = [r for r in guard_core.store.audits() if r["action"] == "alarm_ack"]
    assert [(r["actor"], r["detail"]["resolution"]) for r in acks] == [("alice", "false_alarm")]


def test_a_handover_signed_with_a_double_tap_is_signed_once(app, guard_core, monkeypatch):
    """The outgoing guard's double tap on "sign": both requests found the handover unsigned
    (the check was read before the write), and both signed it: two ``handover.ack`` rows,
    the stamp the later one's. The check is made again in the write."""
    roster, gate = guard_core.ledgers.roster, guard_core.config.site.kiosk_id
    now = guard_core.clock.now()
    roster.add_shift(gate, "alice", now - timedelta(hours=7), now + timedelta(hours=1), "root")
    handover = roster.open_handover(gate, "alice", "root")
    both_read = reads_together(monkeypatch, Roster, "handover")
    path = f"/guard/community/handover/{handover.id}/ack"
    with signed_in(app) as a:
        taps = both_tap(both_read, lambda _: send(a, path, {"csrf": a.csrf}), range(2))
    said = sorted(refusal(t) or "" for t in taps)
    assert said[0] == "" and said[1] != ""  # one signs, the other is told it was signed
    acks = [r for r in guard_core.store.audits() if r["action"] == "handover.ack"]
    assert len(acks) == 1


def reads_together(monkeypatch, owner, name: str) -> threading.Barrier:
    """Patch ``owner.name`` so that each tap, having read, waits for the other tap's read: both
    read before either writes, the race a double tap is. The wait ends when a tap's request ends
    (``both_tap``), so a read made once after the write (the page a redirect draws) does not
    wait out ``WAIT_S`` for a second read that never comes."""
    both_read = threading.Barrier(2, timeout=WAIT_S)
    read = getattr(owner, name)

    def read_together(self, *args, **kwargs):
        found = read(self, *args, **kwargs)
        if threading.current_thread() is not threading.main_thread():
            with contextlib.suppress(threading.BrokenBarrierError):
                both_read.wait()
        return found

    monkeypatch.setattr(owner, name, read_together)
    return both_read


def both_tap(both_read: threading.Barrier, tap, who) -> list:
    """Run ``tap`` for each of ``who`` at once (two threads); a tap whose request has ended
    releases the other from ``reads_together``'s wait."""

    def one(t):
        try:
            return tap(t)
        finally:
            both_read.abort()

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, who))


def returnee_with_fever(core) -> tuple[int, str]:
    """A returnee whose door reading today was a fever: their open alarm (person, day)."""
    ledger = core.ledgers.observation
    today = core.clock.now().date().isoformat()
    person = ledger.register(name="Li Lei", household="3-2-702", phone="", origin="Wuhan",
                             date_back=today, actor="root")  # fmt: skip
    ledger.record_temperature(person.id, 38.6, "root")
    (alarm,) = [a for a in ledger.alarms() if a.kind == "fever"]
    return person.id, alarm.day.isoformat()


def test_a_returnee_alarm_closed_on_both_tablets_is_closed_once_and_says_by_whom(
    tablets, guard_core
):
    a, b = tablets
    pid, day = returnee_with_fever(guard_core)
    path = f"/guard/community/returnees/{pid}/ack"
    form = {"kind": "fever", "day": day}
    assert refusal(send(a, path, {"csrf": a.csrf, **form})) is None
    said = refusal(send(b, path, {"csrf": b.csrf, **form}))
    assert said is not None and "alice" in said  # who closed it, not "no open alarm"


def test_a_returnee_alarm_closed_by_two_taps_at_once_is_closed_once(app, guard_core, monkeypatch):
    """Both requests found the alarm open before either wrote: two ``observation.ack`` rows,
    the second guard's name over the first's. The check is made again in the write."""
    pid, day = returnee_with_fever(guard_core)
    both_read = reads_together(monkeypatch, ObservationLedger, "alarms")
    path = f"/guard/community/returnees/{pid}/ack"
    form = {"kind": "fever", "day": day}
    with signed_in(app) as a, signed_in(app, "root", ADMIN_PW) as b:
        taps = both_tap(both_read, lambda t: send(t, path, {"csrf": t.csrf, **form}), (a, b))
    assert sorted(refusal(t) is None for t in taps) == [False, True]
    acks = [r for r in guard_core.store.audits() if r["action"] == "observation.ack"]
    assert len(acks) == 1


def test_a_shift_added_with_a_double_tap_is_added_once(app, guard_core, monkeypatch):
    """The manager's double tap on "add shift": both requests looked for a clash before
    either wrote, found none, and the roster had the same shift twice. The clash is looked
    for in the write."""
    form = {"guard": "alice", "starts": "2026-03-03T08:00", "ends": "2026-03-03T16:00"}
    path = "/guard/community/shifts"
    with signed_in(app, "root", ADMIN_PW) as boss:
        both_read = reads_together(monkeypatch, Roster, "shifts")  # signed in: only taps read
        taps = both_tap(
            both_read, lambda _: send(boss, path, {"csrf": boss.csrf, **form}), range(2)
        )
    assert sorted(refusal(t) is None for t in taps) == [False, True]
    rows = list(guard_core.store.reader()["roster_shifts"].rows)
    assert len(rows) == 1


def registered(core, kind: str = "registration") -> list[tuple[int, str, str]]:
    events = core.store.readable_events(after_seq=0, limit=50)
    return [(e["seq"], e["operator"], e["direction"]) for e in events if e["kind"] == kind]


def _asked_on_the_second_tablet(a, b, guard_core, clock, kind, typed, second):
    """``typed`` registered (``kind``: person or vehicle) on tablet A, then 20 s later on B
    (in English) with ``second`` over it: B's answer, the question asked first."""
    path = f"/guard/register/{kind}"
    form_a = hidden_fields(a.get("/guard/register").text, f"{kind}-form")
    form_b = hidden_fields(b.get("/guard/register?lang=en").text, f"{kind}-form")
    with decided(a, guard_core):
        assert refusal(send(a, path, form_a | typed)) is None
    clock.advance(20)
    asked = send(b, path, form_b | typed | second)
    assert asked.status_code == 200 and 'id="confirm-form"' in asked.text, asked.text[:300]
    return asked


def test_a_resident_registered_on_two_tablets_is_asked_about_before_the_second_record(
    app, guard_core, clock
):
    """Guards A and B each register Zhang Guiying of 3-201 going out, 20 s apart, on their own
    tablets: two registrations, two outings for the household's quota, nothing said. The
    second is asked first, naming the one on record (when, by whom): recorded again only
    when the guard says so (twins exist), never refused unsaid; the same person going the
    other way, or minutes later, is not asked."""
    typed = {"name": "Zhang Guiying", "phone": "", "id_number": "", "unit": "3-201",
             "resident": "1", "reason": "no phone", "temp_c": "36.5", "decision": "pass",
             "direction": "out"}  # fmt: skip
    path = "/guard/register/person"
    guard_core.lists.set_household("3-201", "root")  # a dwelling the gate knows: not asked about
    with signed_in(app) as a, signed_in(app, "root", ADMIN_PW) as b:
        second = {"name": "ZHANG guiying "}  # however spelled
        asked = _asked_on_the_second_tablet(a, b, guard_core, clock, "person", typed, second)
        words = html.unescape(asked.text)
        assert (
            "ZHANG guiying (3-201) was registered going out at 16:30:00 by alice (manual pass,"
            " passage #1), perhaps on another tablet. Record them again?"
        ) in words
        assert registered(guard_core) == [(1, "alice", "out")]
        again = hidden_fields(asked.text, "confirm-form") | {"confirm": "yes"}
        with decided(b, guard_core):
            assert refusal(send(b, path, again)) is None
        assert registered(guard_core) == [(1, "alice", "out"), (2, "root", "out")]
        home = typed | {"direction": "in"}  # back in: another passage, not asked
        with decided(a, guard_core):
            fresh = hidden_fields(a.get("/guard/register").text, "person-form")
            assert refusal(send(a, path, fresh | home)) is None
        clock.advance(6 * 60)  # out again minutes later: a new outing, not asked
        with decided(a, guard_core):
            fresh = hidden_fields(a.get("/guard/register").text, "person-form")
            assert refusal(send(a, path, fresh | typed)) is None
        with decided(b, guard_core):  # a deny is no passage: never asked
            fresh = hidden_fields(b.get("/guard/register").text, "person-form")
            assert refusal(send(b, path, fresh | typed | {"decision": "deny"})) is None
    assert [d for _, _, d in registered(guard_core)] == ["out", "out", "in", "out", "out"]


def test_a_vehicle_registered_on_two_tablets_is_asked_about_before_the_second_record(
    app, guard_core, clock
):
    """Guards A and B each register the car 京A12345 going out, 20 s apart: the second is
    asked first, as a person is (the same plate however typed, as the plate check reads it:
    京a·12345), naming the record; recorded again only when the guard says so. Another
    plate, or the same car coming back in, is not asked."""
    typed = {"plate": "京A12345", "driver": "Zhao Gang", "driver_temp": "36.4", "reason": "搬家",
             "decision": "pass", "direction": "out", "p1_name": "Zhang Guiying",
             "p1_temp": "36.5"}  # fmt: skip
    path = "/guard/register/vehicle"
    with signed_in(app) as a, signed_in(app, "root", ADMIN_PW) as b:
        second = {"plate": "京a·12345"}
        asked = _asked_on_the_second_tablet(a, b, guard_core, clock, "vehicle", typed, second)
        assert (
            "京A·12345 (Zhao Gang) was registered going out at 16:30:00 by alice (manual pass,"
            " passage #1), perhaps on another tablet. Record them again?"
        ) in html.unescape(asked.text)  # said as this guard typed it
        assert registered(guard_core, "vehicle") == [(1, "alice", "out")]
        again = hidden_fields(asked.text, "confirm-form") | {"confirm": "yes"}
        assert again["again"] == "1"
        with decided(b, guard_core):
            assert refusal(send(b, path, again)) is None
        for other in ({"plate": "京B54321"}, {"direction": "in"}):
            with decided(a, guard_core):
                fresh = hidden_fields(a.get("/guard/register").text, "vehicle-form")
                assert refusal(send(a, path, fresh | typed | other)) is None
    assert registered(guard_core, "vehicle") == [
        (1, "alice", "out"), (2, "root", "out"), (3, "alice", "out"), (4, "alice", "in")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "typed"),
    [
        ("person", {"name": "Zhang Guiying", "phone": "", "id_number": "", "unit": "3-201",
                    "resident": "1", "reason": "no phone", "temp_c": "36.5"}),
        ("vehicle", {"plate": "京A12345", "driver": "Zhao Gang", "driver_temp": "36.4",
                     "reason": "搬家"}),
    ],
)  # fmt: skip
def test_a_registration_sent_from_two_tablets_at_the_very_same_moment_is_recorded_once(
    app, guard_core, monkeypatch, kind, typed
):
    """Two guards register the same elderly visitor (or car) at the very same moment: both
    requests looked for an earlier record before either wrote, found none, and both recorded
    him: two passages, two outings of the quota. The look is made again in the commit's own
    write transaction: the second writes nothing and is asked first, as when it came a minute
    later, its form kept as typed (Yes records it)."""
    from ui.guard import registrations

    typed = typed | {"decision": "pass", "direction": "out"}
    path = f"/guard/register/{kind}"
    guard_core.lists.set_household("3-201", "root")  # a dwelling the gate knows: not asked about
    both_read = reads_together(monkeypatch, registrations, "registered_before")
    with signed_in(app) as a:
        page = "/guard/register?lang=en"
        forms = [hidden_fields(a.get(page).text, f"{kind}-form") for _ in "ab"]
        taps = both_tap(both_read, lambda form: send(a, path, form | typed), forms)
        asked, done = sorted(taps, key=lambda t: t.status_code)
        assert done.status_code == 303 and refusal(done) is None
        assert asked.status_code == 200 and 'id="confirm-form"' in asked.text
        assert "passage #1), perhaps on another tablet" in html.unescape(asked.text)
        assert len(registered(guard_core, REG_KINDS[kind])) == 1
        rows = [r["action"] for r in guard_core.store.audits()][-2:]
        assert rows == [f"register_{kind}", "confirm_asked"]  # one recorded, one asked
        again = hidden_fields(asked.text, "confirm-form") | {"confirm": "yes"}
        assert again["again"] == "1" and all(again[k] == v for k, v in typed.items())
        with decided(a, guard_core):
            assert refusal(send(a, path, again)) is None  # told, the guard records it again
    assert len(registered(guard_core, REG_KINDS[kind])) == 2


REG_KINDS = {"person": "registration", "vehicle": "vehicle"}
