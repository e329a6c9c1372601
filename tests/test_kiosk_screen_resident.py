"""The kiosk screen as a queue of residents meets it (defects found walking it in Chromium
against the daemon on fakes): what the next person sees of the previous one, what a deny
tells them to do, and what a screen that lost its link shows when it comes back.

SSE is driven on the test's own loop (``test_ui_kiosk.read_sse``): no sleeps, no threads.
"""

from __future__ import annotations

import asyncio

import pytest
from guard_support import BASE, close_core, make_core
from test_ui_kiosk import DENY_DECISION, IDLE, PASS_DECISION, TestClient, kiosk_app, read_sse

from ui import i18n
from ui.views import kiosk_view

GATE_OPEN_7 = {
    "type": "state",
    "state": "gate_open",
    "prompt": "pass",
    "direction": "in",
    "passage": 7,
}
DECIDED_8 = {
    "type": "state",
    "state": "decided",
    "prompt": "see_guard",
    "direction": "in",
    "passage": 8,
}


@pytest.fixture
def core(data_dir, clock, monkeypatch):
    c = make_core(data_dir, clock, monkeypatch)
    yield c
    close_core(c)


def _watch(app, core, messages, lang="en") -> list:  # noqa: ANN001 - test helper
    """One screen connected while ``messages`` are published, then gone: its events."""
    published = False

    def publish(events: list) -> None:
        nonlocal published
        if not published and len(events) >= 2:  # its first view and banner came
            published = True
            for message in messages:
                core.bus.publish(message)

    return asyncio.run(
        read_sse(
            app,
            f"/kiosk/events?lang={lang}",
            on_event=publish,
            until=lambda ev: sum(1 for n, _ in ev if n == "view") >= 1 + len(messages),
        )
    )


def test_a_screen_that_reconnects_after_the_passage_ended_shows_no_earlier_result(core):
    # Person A passes while the screen is connected; the screen's link drops (a browser
    # restart, a network blip, a reload); A's passage ends meanwhile. The screen that comes
    # back must not greet the next person as A, chime a pass or show A's temperature: the
    # process-wide tracker was fed only by connected streams, so it still held A's pass.
    app = kiosk_app(core)
    _watch(app, core, [PASS_DECISION | {"passage": 7}, GATE_OPEN_7])
    core.bus.publish(IDLE)  # nobody watching: A walked through, the kiosk is idle

    with TestClient(app, base_url=BASE) as client:
        page = client.get("/kiosk?lang=en").text
    assert "result-pass" not in page and "Hello" not in page and "36.4" not in page

    events = asyncio.run(read_sse(app, "/kiosk/events?lang=en", until=lambda ev: len(ev) >= 2))
    first = events[0][1]
    assert first["result"] is None and first["sound"] is None and first["hello"] is None


def test_a_reconnecting_screen_shows_no_deny_of_an_earlier_passage(core):
    # A's fever deny was on screen when the link dropped; B's passage then reached its own
    # decision unseen. The screen coming back must not show A's fever (red, 38.3 °C, held
    # 6 s by the page) over B's passage.
    app = kiosk_app(core)
    _watch(app, core, [DENY_DECISION | {"passage": 7}, DECIDED_8 | {"passage": 7}])
    core.bus.publish(DECIDED_8)  # passage 8's decision went out while nobody watched

    events = asyncio.run(read_sse(app, "/kiosk/events?lang=en", until=lambda ev: len(ev) >= 2))
    first = events[0][1]
    assert first["result"] is None and "38.3" not in str(first)


# --- a deny held on screen while the person switches language ------------------------------

DENY_7 = DENY_DECISION | {"passage": 7}
DECIDED_7 = DECIDED_8 | {"passage": 7}


def _views(app, path: str, n: int) -> list:  # noqa: ANN001 - test helper
    events = asyncio.run(
        read_sse(app, path, until=lambda ev: sum(1 for name, _ in ev if name == "view") >= n)
    )
    return [data for name, data in events if name == "view"]


def test_a_deny_held_on_screen_is_shown_again_in_the_language_the_person_tapped(core, clock):
    # The engine's hold (result_hold_s, 4 s by default) ends before the page's (6 s,
    # DENY_MIN_HOLD_S). A resident taps English to read why they were denied: the English
    # page rendered the kiosk as it is now, idle, "Please show your pass QR code", and the
    # deny was gone for exactly the person the switch is for.
    app = kiosk_app(core)
    _watch(app, core, [DENY_7, DECIDED_7], lang="zh-CN")
    clock.advance(4.2)
    core.bus.publish(IDLE)  # the engine's hold is over; the page still holds the deny

    with TestClient(app, base_url=BASE) as client:
        page = client.get("/kiosk?lang=en&held=13").text
    assert "look-deny" in page and "Temperature too high" in page and "38.3" in page

    held, now = _views(app, "/kiosk/events?lang=en&held=13", 2)[:2]
    assert held["look"] == "deny" and held["result_id"] == "13" and held["lang"] == "en"
    assert held["result"]["reasons"] == ["Temperature too high"]
    assert held["sound"] is None  # heard once already; the words are said in English
    assert held["hold_s"] == pytest.approx(6.0 - 4.2, abs=0.05)  # the rest of the hold
    assert now["phase"] == "idle" and now["result"] is None  # waits for the hold on the page


def test_a_deny_is_not_held_again_past_its_hold_nor_over_the_next_passage(core, clock):
    app = kiosk_app(core)
    _watch(app, core, [DENY_7, DECIDED_7], lang="zh-CN")
    core.bus.publish(IDLE)
    with TestClient(app, base_url=BASE) as client:
        assert "look-idle" in client.get("/kiosk?lang=en").text  # no result held: as it is
        assert "look-idle" in client.get("/kiosk?lang=en&held=12").text  # not the latest
        core.bus.publish(
            {"type": "state", "state": "measuring", "prompt": "measuring", "passage": 8}
        )
        assert "look-deny" not in client.get("/kiosk?lang=en&held=13").text  # the next one's
        core.bus.publish(IDLE)
        assert "look-deny" in client.get("/kiosk?lang=en&held=13").text
        clock.advance(6.0)
        assert "look-deny" not in client.get("/kiosk?lang=en&held=13").text  # hold over
    first = _views(app, "/kiosk/events?lang=en&held=13", 1)[0]
    assert first["result"] is None and "hold_s" not in first


# --- what a deny tells the person to do ----------------------------------------------------

FEVER_WAIT = {
    "zh-CN": "请在旁等候，保安将为您复测",
    "en": "Please wait aside; a guard will re-check you",
}
FEVER_WORDS = {"zh-CN": "体温偏高", "en": "Temperature too high"}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize(
    "other", ["pass_expired", "pass_revoked", "quota_exceeded", "outside_hours", "quarantined"]
)
def test_a_fever_with_another_reason_still_asks_the_person_to_wait_for_the_guard(lang, other):
    # The policy lists the pass's reasons before the temperature's, and the screen took the
    # first reason's what-to-do: a resident with an expired pass and 38.6 °C was sent to the
    # office ("ask the office for a new pass"), one after hours told to come back later,
    # while the fever alarm called the guard to the gate they had left.
    decision = DENY_DECISION | {"reasons": [other, "fever"], "temp_c": 38.6}
    view = kiosk_view(DECIDED_8, decision, lang, fever_c=37.3)
    assert view["prompt"] == FEVER_WAIT[lang]
    assert view["result"]["reasons"][0] == FEVER_WORDS[lang]  # said first, spoken too
    assert FEVER_WORDS[lang] in view["speak"] and FEVER_WAIT[lang] in view["speak"]


def test_with_no_guard_on_duty_a_fever_is_told_where_to_call_not_to_wait():
    decision = DENY_DECISION | {"reasons": ["no_guard_on_duty", "fever"], "temp_c": 38.6}
    view = kiosk_view(DECIDED_8, decision, "en", fever_c=37.3, call="0571-8888 1234")
    assert "please call 0571-8888 1234" in view["prompt"]


CLOCK_WAIT = {
    "zh-CN": "本机时钟尚未校准：请在旁等候，保安将为您核验通行证",
    "en": "This gate's clock is not set: please wait, the guard will check your pass",
}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_fever_on_a_pass_an_unset_clock_calls_not_yet_valid_is_told_the_fever_first(lang):
    # A Pi booted without network (clock behind) read a pass issued this morning as not yet
    # valid, and the wrist read 38.6 °C: the screen listed the fever first but told the
    # person the clock line (its what-to-do outranked every reason's), so they waited to have
    # their pass checked and were never told the guard is coming for their temperature.
    decision = DENY_DECISION | {
        "reasons": ["pass_not_yet_valid", "fever"],
        "flags": ["clock_not_set"],
        "temp_c": 38.6,
    }
    view = kiosk_view(DECIDED_8, decision, lang, fever_c=37.3)
    assert view["prompt"] == FEVER_WAIT[lang]
    assert view["result"]["reasons"][0] == FEVER_WORDS[lang]
    assert FEVER_WAIT[lang] in view["speak"] and CLOCK_WAIT[lang] not in view["speak"]
    alone = DENY_DECISION | {
        "reasons": ["pass_not_yet_valid"],
        "flags": ["clock_not_set"],
        "temp_c": 36.6,
        "alarm": None,
    }
    assert kiosk_view(DECIDED_8, alone, lang, fever_c=37.3)["prompt"] == CLOCK_WAIT[lang]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize("reason", ["pass_expired", "quota_exceeded"])
def test_a_pass_a_clock_ahead_calls_expired_or_over_the_quota_waits_for_the_guard(lang, reason):
    # A clock read as right but days fast (not synchronised) expired a visitor's pass that the
    # newest time known to have passed still holds valid: not "ask the office for a new pass"
    # (the person left, the guard's card stayed open), the guard checks it.
    decision = DENY_DECISION | {
        "reasons": [reason],
        "flags": ["clock_not_set"],
        "temp_c": 36.6,
        "alarm": None,
    }
    assert kiosk_view(DECIDED_8, decision, lang, fever_c=37.3)["prompt"] == CLOCK_WAIT[lang]


def test_with_no_guard_on_duty_a_pass_an_unset_clock_calls_early_is_told_where_to_call():
    # The clock line promises a guard who will check the pass; nobody is on duty to come.
    decision = DENY_DECISION | {
        "reasons": ["no_guard_on_duty", "pass_not_yet_valid"],
        "flags": ["clock_not_set"],
        "temp_c": 36.6,
        "alarm": None,
    }
    view = kiosk_view(DECIDED_8, decision, "en", fever_c=37.3, call="0571-8888 1234")
    assert "please call 0571-8888 1234" in view["prompt"]


@pytest.mark.parametrize(
    ("lang", "words"), [("zh-CN", "请出示通行码"), ("en", "Show your pass QR code")]
)
def test_someone_too_slow_with_their_pass_is_told_to_show_it_not_to_stop(lang, words):
    # A temperature-first kiosk measured an elderly resident, who was still looking for
    # the paper pass when code_timeout_s ran out: the deny (no_pass) said "Please stop here",
    # which gives them nothing to do; showing the pass starts a new passage.
    decision = DENY_DECISION | {"reasons": ["no_pass"], "temp_c": 36.5, "needs_guard": False}
    view = kiosk_view(DECIDED_8, decision, lang, fever_c=37.3)
    assert view["prompt"].startswith(words) and words in view["speak"]


# --- a failed measurement: what restarts it --------------------------------------------------

RESCAN = {"zh-CN": "通行码", "en": "pass QR code"}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize("reason", ["temp_implausible", "no_temperature"])
def test_a_failed_measurement_on_a_code_first_kiosk_asks_for_the_pass_again(core, lang, reason):
    # A gloved hand read 29 °C twice (or the child stepped away before the reading): the
    # passage is over. On a code-first kiosk (the default) only a code starts the next one,
    # but the screen said "remove your glove and measure again": the resident held a bare
    # wrist to the sensor and nothing happened until the screen went back to "show your pass".
    app = kiosk_app(core)
    deny = DENY_DECISION | {"reasons": [reason], "temp_c": None, "passage": 8, "alarm": None}
    events = _watch(app, core, [deny, DECIDED_8], lang)
    view = [data for name, data in events if name == "view"][-1]
    assert view["look"] == "remeasure"
    assert RESCAN[lang] in view["prompt"] and RESCAN[lang] in view["speak"]


def test_a_failed_measurement_on_a_temperature_first_kiosk_asks_for_the_wrist_only():
    # There the wrist starts the next passage: no code needed first.
    deny = DENY_DECISION | {"reasons": ["temp_implausible"], "temp_c": None, "alarm": None}
    view = kiosk_view(DECIDED_8, deny, "zh-CN", code_first=False)
    assert view["prompt"] == "请摘下手套，露出手腕后重新测温"


# --- the gate countdown ----------------------------------------------------------------------

LOCKED_AFTER_PASS = {
    "type": "state",
    "state": "decided",
    "prompt": "pass",
    "direction": "in",
    "passage": 7,
    "gate_open": False,
}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_gate_countdown_is_not_shown_once_the_gate_has_locked(lang):
    # The pulse ends, the engine says decided/pass with the gate locked, and the result stays
    # for result_hold_s. Every view of the pass carried gate_closes_in_s, and the page starts
    # the countdown at each view: "Gate open, go through within 3 s" came back for 3 s in
    # front of a locked gate, and the next person in the queue pushed it.
    decision = PASS_DECISION | {"passage": 7}
    opened = kiosk_view(GATE_OPEN_7 | {"gate_open": True}, decision, lang, gate_open_s=3)
    assert opened["gate_closes_in_s"] == 3
    locked = kiosk_view(LOCKED_AFTER_PASS, decision, lang, gate_open_s=3)
    assert locked["result"]["kind"] == "pass"  # still the result: the person went through
    assert locked["gate_closes_in_s"] is None


def test_a_screen_loaded_mid_pulse_counts_down_what_is_left_of_it(core, clock):
    # Every view of the pass said the whole pulse (3 s), and the page starts its countdown at
    # each: a page loaded or reconnected 2 s into the pulse said "go through within 3 s" for a
    # gate that locks in 1 s.
    app = kiosk_app(core)
    locks_at = clock.monotonic_ns() + 3_000_000_000
    _watch(
        app, core, [PASS_DECISION | {"passage": 7}, GATE_OPEN_7 | {"gate_closes_at_ns": locks_at}]
    )
    first = _views(app, "/kiosk/events?lang=en", 1)[0]
    assert first["gate_closes_in_s"] == 3
    clock.advance(1.8)
    again = _views(app, "/kiosk/events?lang=en", 1)[0]
    assert again["result"]["kind"] == "pass" and again["gate_closes_in_s"] == 1.2


GATE_CLOSED = {
    "zh-CN": "闸门已关闭。如未通过，请到保安处",
    "en": "The gate has closed. Not through? Please see the guard",
}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_pass_no_longer_says_go_through_once_the_gate_has_locked(lang):
    # After the pulse the relay locks and the pass stays for result_hold_s (1 s more by
    # default, up to 60 s where a site lengthened it): the screen stayed green, "通过 /
    # 请通行", in front of a locked gate; a hesitant person pushed it, a newcomer read "go".
    decision = PASS_DECISION | {"passage": 7}
    opened = kiosk_view(GATE_OPEN_7 | {"gate_open": True}, decision, lang, gate_open_s=3)
    assert opened["look"] == "pass" and opened["prompt"] == i18n.t(lang, "prompt.pass")
    locked = kiosk_view(LOCKED_AFTER_PASS, decision, lang, gate_open_s=3)
    assert locked["look"] == "idle" and locked["headline"] is None  # no green, no tick
    assert locked["prompt"] == GATE_CLOSED[lang]
    assert locked["hello"] is None and locked["sound"] is None and locked["speak"] is None
    night = kiosk_view(LOCKED_AFTER_PASS, decision, lang, on_duty=False, call="0571-1234")
    assert "0571-1234" in night["prompt"] and night["prompt"] != GATE_CLOSED[lang]


def test_the_next_persons_check_does_not_show_the_previous_persons_result():
    # A pass-only kiosk (no thermometer): B's code read over A's result goes straight to
    # "deciding". The tracker kept A's decision through "deciding", so B saw A's pass and
    # greeting until B's own decision came (up to store_deadline_ms on a slow card).
    from ui.views import ScreenTracker

    tracker = ScreenTracker()
    for message in (PASS_DECISION | {"passage": 7}, GATE_OPEN_7, LOCKED_AFTER_PASS):
        tracker.feed(message)
    tracker.feed({"type": "state", "state": "deciding", "prompt": "checking", "passage": 8})
    view = kiosk_view(tracker.state, tracker.decision, "en", gate_open_s=3)
    assert view["phase"] == "checking" and view["result"] is None and view["hello"] is None


# --- a guard's decision ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "promise", "instead"),
    [
        ("zh-CN", "保安将为您复测", "请听从保安安排"),
        ("en", "a guard will re-check you", "Please follow the guard's instructions"),
    ],
)
def test_a_guards_fever_deny_does_not_promise_a_re_check(lang, promise, instead):
    # The guard measured by hand (38.4 °C) and denied: the engine records fever beside
    # guard_override, and the kiosk said "DENIED (guard) · Temperature too high · Please wait
    # aside; a guard will re-check you": the re-check was just done, by the guard deciding.
    decision = {
        "decision": "manual_deny",
        "reasons": ["guard_override", "fever"],
        "temp_c": 38.4,
        "needs_guard": True,
        "passage": 9,
    }
    view = kiosk_view(DECIDED_8 | {"passage": 9}, decision, lang, fever_c=37.3)
    assert promise not in view["prompt"] and promise not in view["speak"]
    assert view["prompt"] == instead
    assert view["result"]["reasons"] == [FEVER_WORDS[lang]]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize("reason", sorted(i18n.reason_codes()))
def test_a_deny_that_sends_to_the_guard_does_not_say_denied_twice(lang, reason):
    """Under the red headline 禁止通行 the next step said 禁止通行，请到保安处 (hard passback,
    a forged pass): the headline again, then what to do."""
    decision = DENY_DECISION | {"reasons": [reason], "alarm": None, "needs_guard": True}
    view = kiosk_view(DECIDED_8, decision, lang)
    result = view["result"]
    if result is None or result["kind"] != "deny" or not result["next"]:
        return
    assert result["word"].casefold() not in result["next"].casefold(), (reason, result)


# --- what someone who cannot read the screen hears ------------------------------------------


def test_measure_again_and_see_the_guard_do_not_sound_the_same():
    # Someone who cannot read the screen (poor sight, cannot read, no voice for the language
    # on the Pi) has only the cue: a cold wrist (hold it to the sensor again) and a broken
    # thermometer (go to the guard's window for a manual check) both sounded one soft tone,
    # so the person kept holding a wrist to a kiosk that could not measure.
    from test_ui_kiosk import DECIDED, PASS_DECISION, deny_for

    cues = {
        "pass": kiosk_view(DECIDED, PASS_DECISION, "en")["sound"],
        "deny": kiosk_view(DECIDED, deny_for("pass_expired"), "en")["sound"],
        "remeasure": kiosk_view(DECIDED, deny_for("temp_implausible"), "en")["sound"],
        "fault": kiosk_view(DECIDED, deny_for("sensor_fault", temp_c=None), "en")["sound"],
    }
    assert len(set(cues.values())) == 4, cues
    assert cues["fault"] == kiosk_view(DECIDED, deny_for("gate_fault"), "en")["sound"]


def test_the_page_plays_every_cue_the_view_can_ask_for():
    # A cue the page does not know is silence: each the view names has its own sound in
    # kiosk.js, and nothing the view never names is left there.
    import re
    from pathlib import Path

    import ui.views

    js = (Path(ui.views.__file__).parent / "static" / "kiosk.js").read_text(encoding="utf-8")
    played = set(re.findall(r'kind === "(\w+)"', js))
    assert played == set(ui.views.CUES.values()), (played, ui.views.CUES)


# --- what the people behind learn -----------------------------------------------------------

#: Words that name a household's confinement: the screen faces the queue and the voice is
#: heard by it, so neither says them (the guard's console names it; the person knows why).
CONFINEMENT = ("隔离", "观察", "quarantin", "observ")


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize("reason", ["quarantined", "quarantine_unconfirmed", "under_observation"])
@pytest.mark.parametrize("direction", ["out", "in"])
def test_the_queue_is_not_told_that_a_household_is_confined(lang, reason, direction):
    # A quarantined resident denied going out had 您家正处于居家隔离期 ("Your household is in
    # home quarantine") in 5 cm letters on the screen facing the queue, and the voice said it
    # aloud to everyone waiting; an observed returnee had 居家观察期间 shown and spoken.
    from test_ui_kiosk import DECIDED, deny_for

    view = kiosk_view(DECIDED, deny_for(reason, direction=direction), lang)
    said = [*view["result"]["reasons"], view["result"]["next"], view["prompt"], view["speak"]]
    for text in said:
        assert not any(word in text.lower() for word in CONFINEMENT), text
    # ...and the person is still told what to do next, in words of their language.
    assert view["result"]["reasons"] and view["result"]["next"]
    if lang == "en":
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in "".join(said))


# --- the gate at night ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quiet_from", "quiet_until", "quiet"),
    [("16:00", "07:00", True), ("22:00", "07:00", False), ("16:00", "16:30", False)],
)
def test_a_site_quiet_at_night_neither_chimes_nor_speaks_in_its_quiet_hours(
    data_dir, clock, monkeypatch, quiet_from, quiet_until, quiet
):
    # The gate is under bedroom windows: every deny's two buzzes and the voice saying it at
    # 2 a.m. woke the block, and the kiosk had no way to be quiet at night. With
    # site.quiet_at_night the screen still shows everything; only the sound and voice stop
    # from quiet_from to quiet_until, the site's clock (16:30 in Shanghai here).
    from test_ui_kiosk import DECIDED

    from kiosk.config import KioskConfig
    from ui.kiosk_screen import Screen
    from ui.views import ScreenTracker

    site = {"quiet_at_night": True, "quiet_from": quiet_from, "quiet_until": quiet_until}
    config = KioskConfig.model_validate({"site": site})
    c = make_core(data_dir, clock, monkeypatch, config)
    try:
        screen = Screen.build(c)
        tracker = ScreenTracker(DECIDED)
        tracker.feed(DENY_DECISION)
        view = screen.view_of(tracker, "zh-CN")
        assert view["result"]["kind"] == "deny" and view["prompt"]  # shown all the same
        assert (view["sound"], view["speak"]) == (None, None) if quiet else view["sound"] == "deny"
    finally:
        close_core(c)


@pytest.mark.parametrize(("lang", "step"), [("zh-CN", "登记"), ("en", "register")])
def test_a_pass_of_another_compound_is_told_to_register_in_either_language(lang, step):
    # A visitor showing another compound's pass was told 请到保安处登记 (register with the
    # guard) on a Chinese screen but only "Please see the guard" in English, the language a
    # visitor from elsewhere picks: both say what the guard will do, register them.
    from test_ui_kiosk import DECIDED, deny_for

    view = kiosk_view(DECIDED, deny_for("pass_unknown_key"), lang)
    assert step in view["result"]["next"].lower()
