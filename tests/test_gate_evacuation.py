"""Evacuation: a guard holds the gate open for everyone, on record, for a bounded time
(``kiosk.evacuation``, ``Engine.manual(evacuate=...)``, the console's Devices page).

Before, a fire or a medical emergency left the guard a manual pass per person (each a record
of nobody, each a 3 s pulse) or the release button held by hand; nothing told the kiosk
screen to wave people through, nor counted who went by."""

from __future__ import annotations

import pytest
from guard_support import decided, hidden_fields, post, refused_with, send
from support import storage_failing
from test_engine import Rig

from kiosk import evacuation
from ui import i18n
from ui.views import kiosk_view


@pytest.fixture
def rig(clock, tmp_path):
    r = Rig(clock, tmp_path, policy={"mode": "pass_only"})
    yield r
    r.close()


def _evacuate(rig, minutes=10, cause="fire"):
    rig.engine.manual(
        "manual_pass",
        "guard-zhou",
        "smoke in block 3",
        "out",
        subject="none",
        evacuate=(cause, minutes),
    )


def _states(rig):
    return [m for m in rig.messages if m["type"] == "state"]


def test_an_evacuation_holds_the_gate_open_on_record_and_ends_on_its_own(rig):
    _evacuate(rig, minutes=10)
    event = rig.events()[-1]
    assert event["decision"] == "manual_pass" and event["flags"] == ["evacuation"]
    assert event["operator"] == "guard-zhou"
    assert rig.gate.is_open
    assert _states(rig)[-1]["evacuation"] == {"cause": "fire", "ends_in_s": 600}
    rig.run(9 * 60)
    assert rig.gate.is_open  # not the 3 s pulse: held
    assert [c.open_ for c in rig.gate.commands] == [True]
    rig.run(61)
    assert rig.gate.is_open is False  # over on its own, bounded
    assert "evacuation" not in _states(rig)[-1]
    assert rig.engine.evacuation is None


def test_a_guard_ends_it_and_the_gate_locks(rig):
    _evacuate(rig)
    rig.run(30)
    rig.engine.end_evacuation()
    assert "evacuation" not in _states(rig)[-1]
    rig.run(rig.config.gate.pulse_ms / 1000 + 0.5)
    assert rig.gate.is_open is False
    with pytest.raises(ValueError, match="no evacuation"):
        rig.engine.end_evacuation()


def test_codes_read_while_it_lasts_are_decided_and_flagged_so_the_count_is_known(rig):
    _evacuate(rig)
    rig.run(2)
    for household in ("A-101", "B-202", "C-303"):
        rig.show(rig.pass_text(household=household))
        rig.run(1)
    flagged = [e for e in rig.events() if "evacuation" in e["flags"] and e["kind"] == "passage"]
    assert [e["household"] for e in flagged] == ["A-101", "B-202", "C-303"]
    assert rig.gate.is_open  # a pass's pulse does not cut the evacuation short
    rig.run(20)
    assert rig.gate.is_open


def test_a_full_disk_does_not_keep_the_gate_shut_in_a_fire(rig):
    """The record waits in memory (the backlog) and is written once the disk takes it."""
    rig.store.fail()
    _evacuate(rig)
    assert rig.gate.is_open
    assert rig.engine.evacuation is not None
    assert rig.engine.backlog and rig.engine.backlog[0].flags == ("evacuation",)
    rig.store.recover()
    rig.run(rig.config.engine.idle_probe_s + 1)
    assert [e["flags"] for e in rig.events()] == [["evacuation"]]


def test_the_time_is_bounded_and_the_cause_is_one_the_screen_may_show(rig):
    for bad in [(("fire", 0)), ("fire", evacuation.MAX_MIN + 1), ("fire", 2.5), ("arson", 5)]:
        with pytest.raises(ValueError, match="evacuation"):
            _evacuate(rig, minutes=bad[1], cause=bad[0])
    with pytest.raises(ValueError, match="evacuation is a manual pass"):
        rig.engine.manual(
            "manual_deny", "guard-zhou", "x", "out", subject="none", evacuate=("fire", 5)
        )
    assert rig.events() == [] and rig.gate.commands == []


# --- the console and the kiosk screen ------------------------------------------------------


def _ask(client, page: str = "/guard/health", **form):
    """The Devices page's evacuation form sent with ``form`` (its one-time token, and what
    it showed under way, taken from the page as drawn)."""
    drawn = hidden_fields(client.get(page).text, "evac-start-form")
    return send(client, "/guard/evacuation", drawn | form)


def _start_from_console(client, core, **form):
    with decided(client, core) as seen:
        response = _ask(
            client,
            cause="fire",
            minutes="15",
            **({"reason": "smoke in block 3", "confirm": "yes"} | form),
        )
    return response, seen


def test_a_guard_starts_and_ends_an_evacuation_on_the_console_both_on_record(
    guard_core, app_client
):
    core, client = guard_core, app_client
    response, seen = _start_from_console(client, core)
    assert response.status_code == 303 and "err=" not in response.headers["location"]
    assert seen[0]["decision"] == "manual_pass" and seen[0]["committed"] is True
    event = core.store.events(0, 10)[-1]
    assert event["flags"] == ["evacuation"] and event["operator"] == "alice"
    started = [a for a in core.store.audits(0, 100) if a["action"] == "evacuation"]
    assert started and started[-1]["detail"]["cause"] == "fire"
    assert started[-1]["detail"]["minutes"] == 15
    assert core.runner.engine.evacuation is not None
    page = client.get("/guard/health?lang=en").text
    assert "Evacuation under way (Fire)" in page and 'action="/guard/evacuation/end"' in page
    live = client.get("/guard?lang=en").text  # the console's "current" panel says it too
    assert "EVACUATION: The gate is open" in live
    ended = send(client, "/guard/evacuation/end", _drawn(client, "evac-end-form"))
    assert ended.status_code == 303 and "err=" not in ended.headers["location"]
    assert core.runner.engine.evacuation is None
    assert [a["actor"] for a in core.store.audits(0, 100) if a["action"] == "evacuation_end"] == [
        "alice"
    ]
    again = post(client, "/guard/evacuation/end", client.csrf)
    assert "err=" in again.headers["location"]  # none under way: said, nothing recorded


def test_the_console_asks_first_and_opens_nothing_until_the_guard_confirms(guard_core, app_client):
    """One tap on "start" held the gate open for 15 minutes: a tap meant for the Devices table
    above it, a curious volunteer. It asks first, as every consequential console action, and
    the confirmation carries the cause and the time the guard chose."""
    asked = _ask(app_client, "/guard/health?lang=en", cause="medical", minutes="30", reason="")
    assert asked.status_code == 200 and 'id="confirm-step"' in asked.text
    assert "The gate stays open for everyone. Start the evacuation?" in asked.text
    assert (
        'name="cause" value="medical"' in asked.text and 'name="minutes" value="30"' in asked.text
    )
    assert 'href="/guard/health"' in asked.text  # "no" leads back to the page, not to a POST
    assert guard_core.runner.engine.evacuation is None and guard_core.store.last_seq == 0
    assert guard_core.runner.gate.commands[-1:] != [True]


def test_in_an_emergency_the_guard_types_nothing_the_cause_is_the_reason(guard_core, app_client):
    """ "Reason (required)" under a fire: the guard typing while people wait at a locked gate.
    The cause chosen is the record's reason when nothing is typed."""
    response, seen = _start_from_console(app_client, guard_core, reason="")
    assert response.status_code == 303 and "err=" not in response.headers["location"]
    event = guard_core.store.events(0, 10)[-1]
    assert event["flags"] == ["evacuation"] and event["person"] == {"note": "evacuation: fire"}
    assert guard_core.runner.engine.evacuation is not None


def test_an_end_whose_row_cannot_be_written_takes_no_effect(guard_core, app_client):
    _start_from_console(app_client, guard_core)
    end = _drawn(app_client, "evac-end-form")
    with storage_failing(guard_core.store, "audit"):
        response = send(app_client, "/guard/evacuation/end", end)
    assert "err=" in response.headers["location"]
    assert guard_core.runner.engine.evacuation is not None  # still held open, as on record


def test_the_console_refuses_a_time_it_does_not_offer(guard_core, app_client):
    response = _ask(app_client, cause="fire", minutes="600", reason="x")
    assert "err=" in response.headers["location"]
    assert guard_core.runner.engine.evacuation is None and guard_core.store.last_seq == 0


def test_the_kiosk_screen_tells_everyone_to_go_through_without_stopping():
    state = {
        "state": "gate_open",
        "prompt": "pass",
        "evacuation": {"cause": "fire", "ends_in_s": 900},
    }
    for lang, words in (("en", "do not stop"), ("zh-CN", "不要停留")):
        view = kiosk_view(state, None, lang)
        assert view["look"] == "pass" and words in view["prompt"]
        assert view["headline"]["word"] == i18n.t(lang, "kiosk.evacuation")
        assert view["wrist"] is False and view["preview"] is False and view["dirs_live"] is False
    assert kiosk_view({"state": "idle", "prompt": "show_pass"}, None, "en")["look"] == "idle"


@pytest.fixture
def app_client(guard_core):
    from guard_support import make_app, signed_in

    with signed_in(make_app(guard_core)) as client:
        yield client


# --- two tablets: a form drawn before the evacuation under way (rvguard28) -------------------


def test_a_second_start_only_ever_holds_the_gate_open_longer_its_first_cause_kept(rig):
    """A second guard's "medical, 5 min", sent while a fire's hour was under way, replaced it:
    the gate locked 5 minutes into the fire, the screens said "medical". A second start
    keeps the evacuation under way (its cause, who started it) and holds the gate open until
    the later of the two ends: never sooner."""
    _evacuate(rig, minutes=60, cause="fire")
    first = rig.engine.evacuation
    rig.run(60)
    rig.engine.manual(
        "manual_pass", "guard-li", "stale form", "out", subject="none", evacuate=("medical", 5)
    )
    held = rig.engine.evacuation
    assert held.view(rig.clock.monotonic_ns()) == {"cause": "fire", "ends_in_s": 59 * 60}
    assert (held.by, held.since_ns, held.version) == ("guard-zhou", first.since_ns, first.version)
    assert _states(rig)[-1]["evacuation"]["cause"] == "fire"  # the kiosk screen's words
    assert [e["flags"] for e in rig.events()] == [["evacuation"], ["evacuation"]]  # both on record
    rig.run(58 * 60)
    assert rig.gate.is_open  # not locked 5 minutes after the second start
    rig.engine.manual(
        "manual_pass", "guard-li", "still burning", "out", subject="none", evacuate=("other", 30)
    )
    longer = rig.engine.evacuation
    assert longer.view(rig.clock.monotonic_ns()) == {"cause": "fire", "ends_in_s": 30 * 60}
    assert longer.version != first.version  # an end drawn before it ends it no more
    rig.run(30 * 60 + 1)
    assert rig.gate.is_open is False and rig.engine.evacuation is None


def test_a_graver_cause_started_during_one_becomes_its_cause_a_lesser_one_does_not(rig):
    """A fire during a medical emergency's 15 minutes: the guard's second start held the gate
    open longer, but the kiosk screen, both consoles and the end's record still said
    "medical". A graver cause (fire, then medical, then other) replaces the one under way,
    its later end kept, who started it and when kept; a lesser one (a stale "medical" sent
    during the fire) leaves it a fire."""
    _evacuate(rig, minutes=15, cause="medical")
    first = rig.engine.evacuation
    rig.run(60)
    rig.engine.manual(
        "manual_pass", "guard-li", "smoke", "out", subject="none", evacuate=("fire", 5)
    )
    held = rig.engine.evacuation
    assert held.view(rig.clock.monotonic_ns()) == {"cause": "fire", "ends_in_s": 14 * 60}
    assert (held.by, held.since_ns) == ("guard-zhou", first.since_ns)
    assert held.version != first.version  # an end drawn showing "medical" is not about it
    assert _states(rig)[-1]["evacuation"]["cause"] == "fire"  # the kiosk screen's words
    for lesser in ("medical", "other"):
        rig.engine.manual(
            "manual_pass", "guard-li", "stale", "out", subject="none", evacuate=(lesser, 30)
        )
        assert rig.engine.evacuation.view(rig.clock.monotonic_ns())["cause"] == "fire"
    assert _states(rig)[-1]["evacuation"] == {"cause": "fire", "ends_in_s": 30 * 60}


def test_an_end_names_the_evacuation_it_was_shown_and_ends_no_other(rig):
    _evacuate(rig, minutes=5)
    shown = rig.engine.evacuation.version
    rig.run(5 * 60 + 1)  # over on its own; a fire starts the next one
    _evacuate(rig, minutes=60)
    with pytest.raises(evacuation.Changed, match="not the one shown") as refused:
        rig.engine.end_evacuation(shown)
    assert refused.value.under_way == rig.engine.evacuation
    assert rig.engine.evacuation is not None and rig.gate.is_open
    rig.engine.end_evacuation(rig.engine.evacuation.version)
    assert rig.engine.evacuation is None


def test_an_evacuation_started_again_is_the_same_one_another_one_is_not(rig):
    """What an end's ``seen`` is checked against: the evacuation it showed, by its start. One
    started again since (held open longer, made graver) is the same one, its version moved;
    one started after it ended is not."""
    _evacuate(rig, minutes=5, cause="medical")
    shown = rig.engine.evacuation.version
    rig.engine.manual(
        "manual_pass", "guard-li", "smoke", "out", subject="none", evacuate=("fire", 60)
    )
    held = rig.engine.evacuation
    assert held.version != shown and held.same_as(shown)
    assert (held.by, held.again_by) == ("guard-zhou", "guard-li")
    assert not any(held.same_as(seen) for seen in ("none", None, "", "0-0-fire"))
    rig.run(60 * 60 + 1)
    _evacuate(rig, minutes=60)
    assert not rig.engine.evacuation.same_as(shown)


def _drawn(client, form_id: str) -> dict[str, str]:
    """The hidden fields of the Devices page's form ``form_id`` as drawn now."""
    return hidden_fields(client.get("/guard/health?lang=en").text, form_id)


def _confirmed(client, core, asked):
    """``Yes`` on the confirmation step ``asked``."""
    assert asked.status_code == 200 and 'id="confirm-step"' in asked.text, asked.text[:300]
    with decided(client, core):
        return send(client, "/guard/evacuation", hidden_fields(asked.text, "confirm-form"))


def test_a_start_drawn_before_the_fire_says_it_is_under_way_and_cuts_nothing_short(
    guard_core, app_client
):
    """Two tablets: B's Devices page drawn before A started a fire's 60 minutes; B then
    starts "medical, 5 min" from it. The confirmation said nothing of the fire and the Yes
    cut it to 5 minutes. Now the step names the one under way (its cause, who started it,
    the minutes left), and Yes holds it open no shorter: a fire, 60 minutes."""
    core, client = guard_core, app_client
    stale = _drawn(client, "evac-start-form")  # tablet B, before the fire
    fire = _drawn(client, "evac-start-form") | {"cause": "fire", "minutes": "60"}
    _confirmed(client, core, send(client, "/guard/evacuation", fire))  # tablet A
    asked = send(client, "/guard/evacuation", stale | {"cause": "medical", "minutes": "5"})
    assert "already under way (Fire, started by alice, about 60 min left)" in asked.text
    assert "Yes keeps it going: it stays Fire," in asked.text
    done = _confirmed(client, core, asked)
    assert done.status_code == 303 and "err=" not in done.headers["location"]
    now = core.clock.monotonic_ns()
    assert core.runner.engine.evacuation.view(now) == {"cause": "fire", "ends_in_s": 3600}
    rows = [a["detail"] for a in core.store.audits(0, 100) if a["action"] == "evacuation"]
    assert [(r["cause"], r["minutes"], r.get("under_way")) for r in rows] == [
        ("fire", 60, None),
        ("medical", 5, "fire"),
    ]
    page = client.get("/guard/health?lang=en").text
    assert "Evacuation under way (Fire): the gate is held open" in page
    assert "started by alice" in page


def test_a_fire_during_a_medical_emergency_is_a_fire_on_every_screen_and_record(
    guard_core, app_client
):
    """Medical, 15 min; smoke: Fire, 60 min. The gate was held open longer but the Devices
    page, the other tablet and the end's record said "Medical emergency", and the step that
    asked first said "still as Medical emergency". It says what a Yes does ("becomes Fire",
    "stays Fire"), and the fire is the cause everywhere, up to the end's record."""
    core, client = guard_core, app_client
    med = _drawn(client, "evac-start-form") | {"cause": "medical", "minutes": "15"}
    _confirmed(client, core, send(client, "/guard/evacuation", med))
    fire = _drawn(client, "evac-start-form") | {"cause": "fire", "minutes": "60"}
    asked = send(client, "/guard/evacuation", fire)
    assert (
        "(Medical emergency, started by alice, about 15 min left). Yes keeps it going: it"
        " becomes Fire, and the gate is held open until the later" in asked.text
    )
    assert (
        "确定后这次疏散继续，原因改为火灾，"
        in send(client, "/guard/evacuation?lang=zh-CN", fire).text
    )
    _confirmed(client, core, asked)
    now = core.clock.monotonic_ns()
    assert core.runner.engine.evacuation.view(now) == {"cause": "fire", "ends_in_s": 3600}
    assert "Evacuation under way (Fire)" in client.get("/guard/health?lang=en").text
    stale = _drawn(client, "evac-start-form") | {"cause": "medical", "minutes": "5"}
    asked = send(client, "/guard/evacuation", stale)
    assert "Yes keeps it going: it stays Fire," in asked.text
    assert "原因仍为火灾" in send(client, "/guard/evacuation?lang=zh-CN", stale).text
    _confirmed(client, core, asked)
    assert core.runner.engine.evacuation.cause == "fire"
    send(client, "/guard/evacuation/end", _drawn(client, "evac-end-form"))
    assert core.runner.engine.evacuation is None
    rows = [a for a in core.store.audits(0, 100) if a["action"].startswith("evacuation")]
    assert [(a["action"], a["detail"]["cause"], a["detail"].get("under_way")) for a in rows] == [
        ("evacuation", "medical", None),
        ("evacuation", "fire", "medical"),
        ("evacuation", "medical", "fire"),
        ("evacuation_end", "fire", None),
    ]


def test_a_yes_sent_after_another_tablet_started_one_asks_again(guard_core, app_client):
    """The confirmation step drawn with nothing under way, Yes tapped after another tablet
    started a fire: asked again, naming the fire, nothing done until then."""
    core, client = guard_core, app_client
    form = _drawn(client, "evac-start-form") | {"cause": "other", "minutes": "5"}
    asked = send(client, "/guard/evacuation", form)
    fire = _drawn(client, "evac-start-form") | {"cause": "fire", "minutes": "60"}
    _confirmed(client, core, send(client, "/guard/evacuation", fire))
    seq = core.store.last_seq
    again = send(client, "/guard/evacuation", hidden_fields(asked.text, "confirm-form"))
    assert again.status_code == 200 and "already under way (Fire" in again.text
    assert core.store.last_seq == seq
    zh = client.get("/guard/health?lang=zh-CN")
    assert zh.status_code == 200
    asked_zh = send(client, "/guard/evacuation?lang=zh-CN", form)
    assert "已有紧急疏散进行中（火灾，由 alice 开始" in asked_zh.text


def test_a_stale_end_button_does_not_lock_the_gate_on_a_later_evacuation(
    guard_core, app_client, clock
):
    """Tablet B showed evacuation 1 with its End button, then slept; evacuation 1 ran out, A
    started a fire; B's tablet woke and End locked the gate in the fire. The End form carries
    which evacuation it showed: another one is refused, with words, and goes on."""
    core, client = guard_core, app_client
    first = _drawn(client, "evac-start-form") | {"cause": "other", "minutes": "5"}
    _confirmed(client, core, send(client, "/guard/evacuation", first))
    stale_end = _drawn(client, "evac-end-form")  # tablet B
    clock.advance(5 * 60 + 1)
    client.portal.call(_tick, core)
    assert core.runner.engine.evacuation is None
    fire = _drawn(client, "evac-start-form") | {"cause": "fire", "minutes": "60"}
    _confirmed(client, core, send(client, "/guard/evacuation", fire))
    refused = send(client, "/guard/evacuation/end", stale_end)
    assert refused_with(client, refused) == (
        "The evacuation under way is not the one your page showed: Fire, started by alice, "
        "about 60 min left. Nothing was ended: look at it again before you end it."
    )
    assert core.runner.engine.evacuation is not None
    end = _drawn(client, "evac-end-form")
    assert send(client, "/guard/evacuation/end", end).status_code == 303
    assert core.runner.engine.evacuation is None
    twice = send(client, "/guard/evacuation/end", end)  # the same form again: a double tap
    assert "err=" in twice.headers["location"]
    rows = [a for a in core.store.audits(0, 100) if a["action"].startswith("evacuation_end")]
    assert [(a["action"], a["detail"].get("cause"), a["detail"].get("problem")) for a in rows] == [
        ("evacuation_end_failed", None, "evac.changed"),
        ("evacuation_end", "fire", None),
        ("evacuation_end_failed", None, "err.sent_twice"),
    ]


async def _tick(core):
    core.runner.engine.tick()


def test_an_end_drawn_before_another_tablets_start_again_says_so_and_asks_again(
    guard_core, app_client
):
    """Tablet B showed the fire's 15 minutes and its End; A started it again for 60. B's End
    was refused as "not the one your page showed", though it is the same fire. It says what
    moved since B's page was drawn and asks again; Yes ends it, and a Yes drawn before it
    moved once more asks again."""
    core, client = guard_core, app_client
    fire = _drawn(client, "evac-start-form") | {"cause": "fire", "minutes": "15"}
    _confirmed(client, core, send(client, "/guard/evacuation", fire))
    end_b = _drawn(client, "evac-end-form")  # tablet B
    more = _drawn(client, "evac-start-form") | {"cause": "fire", "minutes": "60"}
    _confirmed(client, core, send(client, "/guard/evacuation", more))  # tablet A
    asked = send(client, "/guard/evacuation/end", end_b)
    assert asked.status_code == 200 and 'id="confirm-step"' in asked.text
    assert (
        "Since your page was drawn, alice started this evacuation again: Fire now, about 60"
        " min left. End it now and lock the gate?" in asked.text
    )
    zh = send(client, "/guard/evacuation/end?lang=zh-CN", end_b).text
    assert "您的页面显示之后，alice 再次开始了这次疏散：现为火灾，约剩 60 分钟。确定现在" in zh
    assert core.runner.engine.evacuation is not None
    page = client.get("/guard/health?lang=en").text
    assert "started by alice; started again by alice" in page
    yes = hidden_fields(asked.text, "confirm-form")
    longer = _drawn(client, "evac-start-form") | {"cause": "medical", "minutes": "60"}
    core.clock.advance(60)  # a minute later, the fire held open longer once more
    _confirmed(client, core, send(client, "/guard/evacuation", longer))
    again = send(client, "/guard/evacuation/end", yes)
    assert again.status_code == 200 and "Fire now, about 60 min left" in again.text
    assert core.runner.engine.evacuation is not None
    ended = send(client, "/guard/evacuation/end", hidden_fields(again.text, "confirm-form"))
    assert ended.status_code == 303 and "err=" not in ended.headers["location"]
    assert core.runner.engine.evacuation is None
    rows = [a for a in core.store.audits(0, 100) if a["action"] == "evacuation_end"]
    assert [(a["actor"], a["detail"]["cause"]) for a in rows] == [("alice", "fire")]


def test_an_end_whose_evacuation_is_started_again_as_its_row_is_written_ends_nothing(
    guard_core, app_client, monkeypatch
):
    """The row says the guard ended it, then another tablet's start lands before the gate
    locks: nothing ends, and the guard is told what moved (the row of the refusal follows)."""
    from ui.guard import deps

    core, client = guard_core, app_client
    fire = _drawn(client, "evac-start-form") | {"cause": "medical", "minutes": "15"}
    _confirmed(client, core, send(client, "/guard/evacuation", fire))
    end = _drawn(client, "evac-end-form")
    write = deps.write_row_first

    def written_then_started_again(request):
        write(request)
        engine = core.runner.engine
        now = core.clock.monotonic_ns()
        engine.evacuation = evacuation.held_open(engine.evacuation, "fire", 60, "bob", now)

    monkeypatch.setattr(deps, "write_row_first", written_then_started_again)
    refused = send(client, "/guard/evacuation/end", end)
    assert refused_with(client, refused) == (
        "Since your page was drawn, bob started this evacuation again: Fire now, about 60 min"
        " left. Nothing was ended: look at it again before you end it."
    )
    assert core.runner.engine.evacuation is not None
    rows = [a for a in core.store.audits(0, 100) if a["action"].startswith("evacuation_end")]
    assert [(a["action"], a["detail"].get("problem")) for a in rows] == [
        ("evacuation_end", None),
        ("evacuation_end_failed", "evac.moved"),
    ]


def test_two_starts_confirmed_while_a_passage_is_committed_start_one_the_other_is_asked(
    guard_core, app_client, monkeypatch
):
    """Two tablets confirm "start" with nothing under way while the engine is committing a
    passage: both found nothing under way, both waited for the engine, and both were
    recorded (two manual passes for one evacuation, the second guard told nothing of the
    first). What is under way is looked at again as the engine starts each: the second is
    not started nor recorded, and its guard is asked again, naming the first."""
    import asyncio
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from guard_support import WAIT_S

    core, client = guard_core, app_client
    engine, runner = core.runner.engine, core.runner
    committing, both_queued = asyncio.Event(), threading.Event()
    cross, enqueue = runner._cross, engine._enqueue_manual

    async def held_deny(crossing):  # the passage being committed: held until both are queued
        if crossing.draft.decision == "manual_deny":
            await committing.wait()
        await cross(crossing)

    def queued(item):
        enqueue(item)
        if sum(i.evacuation is not None for i in engine._manual_queue) == 2:
            both_queued.set()

    monkeypatch.setattr(runner, "_cross", held_deny)
    monkeypatch.setattr(engine, "_enqueue_manual", queued)
    form = {"cause": "fire", "minutes": "15", "confirm": "yes"}
    forms = [_drawn(client, "evac-start-form") | form for _tablet in "ab"]
    client.portal.call(lambda: engine.manual("manual_deny", "bob", "no pass", "in"))
    with ThreadPoolExecutor(2) as pool:
        taps = [pool.submit(send, client, "/guard/evacuation", form) for form in forms]
        assert both_queued.wait(WAIT_S)
        client.portal.call(committing.set)
        asked, started = sorted((t.result(WAIT_S) for t in taps), key=lambda r: r.status_code)
    assert started.status_code == 303 and "err=" not in started.headers["location"]
    assert asked.status_code == 200 and "already under way (Fire" in asked.text
    starts = [e for e in core.store.events(0, 10) if "evacuation" in e["flags"]]
    assert [e["decision"] for e in starts] == ["manual_pass"]
    assert engine.evacuation is not None and engine.evacuation.again_by == ""


def test_a_start_another_went_first_is_not_started_and_the_next_action_waiting_is(rig):
    """In the engine: two starts confirmed over nothing under way and a guard's deny wait
    behind a passage being committed. The first start holds the gate open; the second is
    told ``Moved`` (naming it), never started nor recorded; the deny then starts."""
    from test_engine import _hold_crossings

    held = _hold_crossings(rig)
    rig.engine.manual("manual_deny", "bob", "no pass", "in")
    told: list = []
    for _tablet in "ab":
        rig.engine.manual(
            "manual_pass", "guard-zhou", "smoke in block 3", "out", subject="none",
            evacuate=("fire", 10), seen=evacuation.NONE, on_recorded=told.append,
        )  # fmt: skip
    rig.engine.manual("manual_deny", "bob", "no pass either", "in", on_recorded=told.append)
    del rig.ports.cross  # carried out again, the held one first
    rig.ports.cross(held[0])
    first, moved, deny = told
    assert first.committed and isinstance(moved, evacuation.Moved) and deny.committed
    assert moved.under_way is rig.engine.evacuation and moved.under_way.again_by == ""
    assert [(e["decision"], e["flags"]) for e in rig.events()] == [
        ("manual_deny", []), ("manual_pass", ["evacuation"]), ("manual_deny", [])
    ]  # fmt: skip


def test_two_guards_ending_it_at_once_leave_one_end_on_record_the_second_told_who(
    guard_core, app_client, monkeypatch
):
    """Two guards tap "End the evacuation" at the same instant on two tablets: both pages
    showed it under way, both rows were written ("evacuation ended" twice, for one end), and
    the second guard was told only that none is under way. The end is claimed as its row is
    written: the second writes no end and is told who ended it; a third, later, too."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from guard_support import ADMIN_PW, WAIT_S, signed_in

    from ui.guard import deps

    core, client = guard_core, app_client
    fire = _drawn(client, "evac-start-form") | {"cause": "fire", "minutes": "15"}
    _confirmed(client, core, send(client, "/guard/evacuation", fire))
    with signed_in(client.app, "root", ADMIN_PW) as bob:
        end_a = _drawn(client, "evac-end-form")
        end_b = hidden_fields(bob.get("/guard/health?lang=en").text, "evac-end-form")
        writing, answered = threading.Event(), threading.Event()
        write = deps.write_row_first

        def first_held(request):  # alice's row is being written as bob taps
            if not writing.is_set():
                writing.set()
                assert answered.wait(WAIT_S)
            write(request)

        monkeypatch.setattr(deps, "write_row_first", first_held)
        with ThreadPoolExecutor(1) as pool:
            tap_a = pool.submit(send, client, "/guard/evacuation/end", end_a)
            assert writing.wait(WAIT_S)
            told_b = refused_with(bob, send(bob, "/guard/evacuation/end", end_b))
            answered.set()
            ended = tap_a.result(WAIT_S)
        assert ended.status_code == 303 and "err=" not in ended.headers["location"]
        assert told_b == "alice is ending this evacuation now. Nothing more was recorded."
        assert core.runner.engine.evacuation is None
        later = refused_with(bob, send(bob, "/guard/evacuation/end", end_b))
    assert later == "alice has ended this evacuation already. Nothing more was recorded."
    rows = [a for a in core.store.audits(0, 100) if a["action"].startswith("evacuation_end")]
    assert [(a["actor"], a["action"], a["detail"].get("problem")) for a in rows] == [
        ("root", "evacuation_end_failed", "evac.ending"),
        ("alice", "evacuation_end", None),
        ("root", "evacuation_end_failed", "evac.ended"),
    ]


def test_an_end_claimed_by_one_guard_is_refused_to_another_naming_the_first(rig):
    """In the engine: a guard's end claimed (its row being written) and then done; another
    guard's end of the same evacuation, meanwhile or after, is ``AlreadyEnded`` naming the
    first; a claim given up (its row not written) leaves it to be ended."""
    _evacuate(rig)
    shown = rig.engine.evacuation.version
    given_up = rig.engine.claim_end(shown, "zhou")
    rig.engine.release_end(given_up)
    claim = rig.engine.claim_end(shown, "zhou")
    with pytest.raises(evacuation.AlreadyEnded) as meanwhile:
        rig.engine.claim_end(shown, "li")
    assert (meanwhile.value.ending.by, meanwhile.value.ending.at_ns) == ("zhou", None)
    rig.engine.end_evacuation(shown, claim)
    rig.engine.release_end(claim)  # the end stands
    assert rig.engine.evacuation is None
    with pytest.raises(evacuation.AlreadyEnded) as after:
        rig.engine.end_evacuation(shown)
    assert after.value.ending.by == "zhou" and after.value.ending.at_ns is not None


class _FoundBefore:
    """A registration's condition (``EventDraft.unless``) that finds it recorded already:
    another tablet registered the same visitor a moment before."""

    def __init__(self, event):
        self.event = event

    def found(self, db, until=None):
        return self.event


def test_a_code_shown_while_a_guard_action_waited_is_decided_when_that_action_is_refused(rig):
    """A resident holds her pass up while a guard's registration is committed and another
    guard's evacuation start waits behind it. The registration is refused (another tablet
    recorded it), the kiosk goes idle, and the start is refused as it starts (the evacuation
    its page showed is over). Her code, kept for when the kiosk was free, stayed kept: the
    screen asked her to show her pass while she showed it (the camera does not send a code
    held still again), and a code kept up to ``code_timeout_s`` is taken for whoever is at the
    gate when the kiosk next goes idle. Now the kiosk takes what waited as soon as it is free:
    her pass is decided at once."""
    from test_engine import _hold_crossings

    earlier = rig.log.append(_draft_of_visitor())
    held = _hold_crossings(rig)
    told: list = []
    rig.engine.manual(
        "manual_pass", "guard-li", "visitor", "in", kind="registration",
        person={"name": "Zhang San", "unit": "3-101"}, unless=_FoundBefore({"seq": earlier.seq}),
        on_recorded=told.append,
    )  # fmt: skip
    rig.engine.manual(
        "manual_pass", "guard-zhou", "smoke in block 3", "out", subject="none",
        evacuate=("fire", 10), seen="1-2-fire", on_recorded=told.append,
    )  # fmt: skip
    pass_text = rig.pass_text()
    rig.show(pass_text)  # kept: the kiosk is busy with the guard's registration
    assert rig.decisions() == []
    _carry_out(rig, held[0])
    moved, refused = told  # the start refused as the kiosk went idle, before the answer
    assert refused.refused is not None and isinstance(moved, evacuation.Moved)
    assert [d["decision"] for d in rig.decisions()] == ["pass"]
    assert rig.engine.state == "gate_open" and rig.engine.ignored_codes == 0
    assert [(e["decision"], e["kind"]) for e in rig.events()][-1] == ("pass", "passage")


def _draft_of_visitor():
    from kiosk.store import EventDraft

    return EventDraft(
        direction="in", decision="manual_pass", kind="registration", operator="guard-wang",
        reasons=("guard_override",), person={"name": "Zhang San", "unit": "3-101"},
    )  # fmt: skip


def _carry_out(rig, crossing):
    del rig.ports.cross  # the DirectPorts method again
    rig.ports.cross(crossing)
