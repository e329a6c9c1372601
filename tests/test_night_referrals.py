"""At night the kiosk screen sends nobody to a guard who is not there.

Staffed hours (``policy.hours.mode = "staffed"``, the default) are when a guard is on duty;
outside them the screen says where to call (``policy.hours.call``). Only the
``no_guard_on_duty`` reason did: at 23:00 a thermometer down showed "please see the guard
for a manual check", a full disk "device fault: please see the guard", another compound's
pass "please register with the guard", the offline screen "… or see the guard". Every
referral to the guard has its night form now (``ui/messages.toml``'s ``[night]``), said
while ``kiosk.policy.guard_on_duty`` (the rule ``decide`` gives ``no_guard_on_duty`` by)
says nobody is on duty. SSE is driven on the test's own loop (``test_ui_kiosk.read_sse``).
"""

from __future__ import annotations

import asyncio
import re
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from guard_support import ADMIN_PW, BASE, close_core, make_app, make_core, signed_in
from test_ui_kiosk import DECIDED, IDLE, TestClient, deny_for, kiosk_app, read_sse

from kiosk import policy
from kiosk.clock import FakeClock
from kiosk.config import parse_config
from kiosk.history import PassageHistory
from kiosk.lists import Lists
from kiosk.passes import TrustList
from kiosk.standby import Standby
from kiosk.thermometry import Temperature
from ui import i18n, kiosk_screen
from ui.kiosk_screen import banner_view, kiosk_view
from ui.standby import create_standby_app, screen_words
from ui.views import SILENT_REASONS

CALL = "duty office 0755-1234567"
MESSAGES = tomllib.loads(resources.files("ui").joinpath("messages.toml").read_text("utf-8"))
NIGHT = MESSAGES["night"]
#: What names the guard in the kiosk's words (门卫 is the standby screen's word for him).
GUARD = re.compile(r"保安|门卫|\bguards?\b", re.IGNORECASE)
#: Kiosk words that name the guard and are no referral to one.
NOT_REFERRALS = {
    "kiosk.guard_denied_next": "a guard decided this passage just now: one is there",
    "kiosk.elsewhere": "addressed to the guards, on a device that is not the kiosk",
    "reason.no_guard_on_duty": "says that no guard is on duty",
}
#: The kiosk screen's own words: its prompts, results' what-to-do, offline screen, banner,
#: and the screen of a kiosk standing by (its log cannot open: ``ui.standby``).
KIOSK_PREFIXES = ("prompt.", "kiosk.", "banner.", "standby.kiosk")


def kiosk_words() -> dict[str, list[str]]:
    """Every word the kiosk screen may say after a result or as its state: ``[screens]``'s
    kiosk keys, ``[next]`` as ``next.<code>`` and a result's reasons as ``reason.<code>``
    (``[to_person]``'s words, else ``[reasons]``'s; none of those it never shows)."""
    words = {k: v for k, v in MESSAGES["screens"].items() if k.startswith(KIOSK_PREFIXES)}
    reasons = MESSAGES["reasons"] | MESSAGES["to_person"]
    shown = {c: pair for c, pair in reasons.items() if c not in SILENT_REASONS}
    return (
        words
        | {f"next.{code}": pair for code, pair in MESSAGES["next"].items()}
        | {f"reason.{code}": pair for code, pair in shown.items()}
    )


def names_the_guard(pair: list[str]) -> bool:
    return any(GUARD.search(text) for text in pair)


def test_every_referral_to_the_guard_has_its_night_form():
    """A new kiosk word sending the person to the guard fails here until ``[night]`` says
    what it says with nobody on duty."""
    naming = {key for key, pair in kiosk_words().items() if names_the_guard(pair)}
    referrals = naming - set(NOT_REFERRALS)
    # no_guard_on_duty's own words are where to call (no guard to see).
    referrals.discard("next.no_guard_on_duty")
    assert sorted(referrals - set(NIGHT)) == []
    assert sorted(set(NIGHT) - set(kiosk_words())) == []  # no night form of nothing
    for key, (zh, en) in NIGHT.items():
        # A reason says what is wrong: where to call is the next line's.
        assert key.startswith("reason.") or ("{call_line}" in zh and "{call_line}" in en), key
        assert not names_the_guard([zh.replace("{call_line}", ""), en]), key


# --- each referral, said at night --------------------------------------------------------

Said = Callable[[str, bool], str]


def _state(state: str, prompt: str, **kw: Any) -> Said:
    return lambda lang, on_duty: kiosk_view(
        {"type": "state", "state": state, "prompt": prompt},
        None,
        lang,
        call=CALL,
        on_duty=on_duty,
        **kw,
    )["prompt"]


def _deny(*reasons: str, **extra: Any) -> Said:
    decision = {"decision": "deny", "reasons": list(reasons), "needs_guard": False} | extra

    def words(lang: str, on_duty: bool) -> str:
        return kiosk_view(DECIDED, decision, lang, call=CALL, on_duty=on_duty)["prompt"]

    return words


def _banner(report: dict[str, Any]) -> Said:
    return lambda lang, on_duty: banner_view(report, lang, on_duty=on_duty, call=CALL)[0]


#: How the screen comes to say each night form's key.
SAID: dict[str, Said] = {
    "prompt.see_guard": _state("deciding", "see_guard"),
    "prompt.out_of_order": _state("idle", "out_of_order"),
    "prompt.stopping": _state("idle", "stopping"),
    "prompt.stopping_released": _state("idle", "stopping", stop_releases=True),
    "kiosk.see_guard_next": _deny(needs_guard=True),
    "prompt.gate_closed": lambda lang, on_duty: kiosk_view(
        {"type": "state", "state": "decided", "prompt": "pass"},
        {"decision": "pass", "reasons": ["ok"], "seq": 3},
        lang,
        call=CALL,
        on_duty=on_duty,
    )["prompt"],
    "kiosk.clock_not_set_next": _deny(
        "pass_not_yet_valid", needs_guard=True, flags=["clock_not_set"]
    ),
    "kiosk.fault_next": _deny("store_fault"),
    "kiosk.offline_next": lambda lang, on_duty: kiosk_view(
        IDLE, None, lang, call=CALL, on_duty=on_duty
    )["offline_next"],
    "banner.air": _banner({"faults": {"air": "below the calibrated range"}}),
    "banner.not_deciding": _banner({"deciding": False}),
    "standby.kiosk": lambda lang, on_duty: screen_words(on_duty=on_duty, call=CALL)[
        i18n.LANGS.index(lang)
    ],
}


def _spoken(code: str) -> Said:
    """What the screen says aloud of a deny for ``code`` alone, decided on duty or not."""
    return lambda lang, on_duty: kiosk_view(
        DECIDED, deny_for(code, on_duty=on_duty), lang, call=CALL, on_duty=on_duty
    )["speak"]


def said(key: str) -> Said:
    if key.startswith("next."):
        return _deny(key.removeprefix("next."))
    if key.startswith("reason."):
        return _spoken(key.removeprefix("reason."))
    return SAID[key]


def test_every_night_form_is_said_by_the_screen():
    assert sorted(k for k in NIGHT if not k.startswith(("next.", "reason."))) == sorted(SAID)


@pytest.mark.parametrize("lang", i18n.LANGS)
@pytest.mark.parametrize("key", sorted(NIGHT))
def test_at_night_a_referral_to_the_guard_says_where_to_call(key, lang):
    words = said(key)
    by_day, at_night = words(lang, True), words(lang, False)
    assert names_the_guard([by_day]) and i18n.call_line(lang, CALL) not in by_day
    assert i18n.call_line(lang, CALL) in at_night, at_night
    assert not names_the_guard([at_night.replace(i18n.call_line(lang, CALL), "")])


@pytest.mark.parametrize(("lang", "words"), [("zh-CN", "请联系物业"), ("en", "call the office")])
def test_at_night_with_no_number_configured_the_screen_says_the_office(lang, words):
    view = kiosk_view({"state": "idle", "prompt": "out_of_order"}, None, lang, on_duty=False)
    assert view["prompt"] == i18n.call_line(lang, "") and words in view["prompt"]


# --- the one rule: the core's ------------------------------------------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")
STAFFED = {"enabled": True, "open_at": "08:30", "close_at": "17:30", "call": CALL}


def _fever_decision(cfg: Any, now: datetime, earliest: datetime | None) -> policy.Decision:
    inputs = policy.PassageInputs(
        direction="in",
        code=None,
        temperature=Temperature("ok", 38.6, 36.6, 22.0, None),
        clock_synced=earliest is None,
        earliest=earliest,
    )
    state = policy.PolicyState(TrustList(), Lists(), PassageHistory())
    return policy.decide(inputs, state, now, cfg.policy, cfg.thermometer.thermometry, SHANGHAI)


@pytest.mark.parametrize(
    ("local", "behind_h", "on_duty"),
    [
        ("08:29", None, False),
        ("08:30", None, True),
        ("17:29", None, True),
        ("17:30", None, False),
        ("23:00", None, False),
        ("23:00", 14, True),  # an unset clock maybe 14 h fast: on duty by one of the times
        ("23:00", 1, False),  # off duty by both
    ],
)
def test_the_screen_and_the_core_agree_on_who_is_on_duty(local, behind_h, on_duty):
    cfg = parse_config({"policy": {"mode": "temperature_only", "hours": STAFFED}})
    hour, minute = (int(x) for x in local.split(":"))
    now = datetime(2026, 3, 2, hour, minute, tzinfo=SHANGHAI)
    earliest = None if behind_h is None else now - timedelta(hours=behind_h)
    assert policy.guard_on_duty(now, cfg.policy, SHANGHAI, earliest=earliest) is on_duty
    decision = _fever_decision(cfg, now, earliest)
    assert ("no_guard_on_duty" in decision.reasons) is not on_duty
    assert decision.on_duty is on_duty  # stamped on the decision the screen shows


@pytest.mark.parametrize("hours", [{}, STAFFED | {"mode": "closed"}])
def test_round_the_clock_or_closed_hours_keep_the_guard(hours):
    cfg = parse_config({"policy": {"hours": hours}})
    night = datetime(2026, 3, 2, 23, 0, tzinfo=SHANGHAI)
    assert policy.guard_on_duty(night, cfg.policy, SHANGHAI)


# --- the screen ----------------------------------------------------------------------------

OUT_OF_ORDER = {"type": "state", "state": "idle", "prompt": "out_of_order", "direction": "in"}


@pytest.fixture
def night_core(data_dir, monkeypatch):
    """A gate staffed 08:30-17:30 (Shanghai), its clock at 17:29:59, the thermometer down."""
    clock = FakeClock(start=datetime(2026, 3, 2, 9, 29, 59, tzinfo=UTC))
    cfg = parse_config({"policy": {"hours": STAFFED}})
    core = make_core(data_dir, clock, monkeypatch, cfg)
    core.bus.publish(OUT_OF_ORDER)
    yield core
    close_core(core)


def test_the_kiosk_page_at_night_says_where_to_call_out_of_service_and_offline(night_core):
    night_core.clock.advance(3600)  # 18:29:59
    night_core.bus.publish({"type": "health", "faults": {}, "deciding": False})
    with TestClient(kiosk_app(night_core), base_url=BASE) as client:
        page = client.get("/kiosk?lang=en").text
    line = i18n.call_line("en", CALL)
    assert page.count(line) >= 3  # the out-of-service prompt, the offline screen, the banner
    assert "see the guard" not in page and "call the guard" not in page


def test_a_screen_out_of_service_says_where_to_call_once_the_shift_ends(night_core, monkeypatch):
    """Nothing else happens at 17:30: the screen's words change by themselves."""
    monkeypatch.setattr(kiosk_screen, "TICK_S", 0.05)
    app = kiosk_app(night_core)

    def end_the_shift(events: list) -> None:
        if len(events) == 2:  # the first view and banner, by day
            night_core.clock.advance(2)  # 17:30:01

    events = asyncio.run(
        read_sse(
            app,
            "/kiosk/events?lang=zh-CN",
            on_event=end_the_shift,
            until=lambda ev: sum(1 for n, _ in ev if n == "view") >= 2,
        )
    )
    views = [data for name, data in events if name == "view"]
    assert views[0]["prompt"] == "请到保安处人工测温登记"
    assert views[1]["prompt"] == i18n.call_line("zh-CN", CALL)
    assert views[1]["offline_next"] == "正在重新连接，请稍候。" + i18n.call_line("zh-CN", CALL)
    assert views[1]["look"] == "out_of_service"


def test_a_kiosk_standing_by_at_night_says_where_to_call():
    """Its event log cannot open: the screen said "see the guard" (请找门卫) all night."""
    night = [False]
    app = create_standby_app(
        Standby("store_fault: cannot open kiosk.db", "unwritable", "2026-03-02T15:00:00Z"),
        "gate-1",
        on_duty=lambda: not night[0],
        call=CALL,
    )
    screen = TestClient(app)
    assert "请找门卫" in screen.get("/kiosk").text
    night[0] = True
    page = screen.get("/kiosk").text
    assert i18n.call_line("zh-CN", CALL) in page and i18n.call_line("en", CALL) in page
    assert "门卫" not in page and "see the guard" not in page


@pytest.mark.parametrize(("from_h", "on_duty"), [(-1, True), (2, False)])
def test_the_standby_screen_goes_by_the_cores_rule_on_the_systems_clock(from_h, on_duty):
    from checkpoint.standby import standby_app

    local = datetime.now(SHANGHAI)  # staffed from an hour ago, or from 2 h on, for 2 h
    span = "-".join(f"{local + timedelta(hours=h):%H:%M}" for h in (from_h, from_h + 2))
    cfg = parse_config({"policy": {"hours": {"enabled": True, "spans": [span], "call": CALL}}})
    standby = Standby("store_fault: cannot open kiosk.db", "unwritable", "2026-03-02T15:00:00Z")
    page = TestClient(standby_app(cfg, standby)).get("/kiosk").text
    assert (i18n.call_line("en", CALL) in page) is not on_duty
    assert ("see the guard" in page) is on_duty


# --- a decided result follows the duty it was decided in -----------------------------------


def test_a_fever_decided_on_duty_keeps_its_words_when_the_shift_ends(night_core, monkeypatch):
    """A fever at 17:29:59: the guard is alarmed and comes, so at 17:30:01 the screen still
    says to wait for him (it said "No guard on duty now: please call …", spoken again, while
    the engine waited for the guard); only the offline screen's words turn."""
    monkeypatch.setattr(kiosk_screen, "TICK_S", 0.05)
    done: list[str] = []

    def fever_then_the_shift_ends(events: list) -> None:
        if len(events) == 2 and not done:
            done.append("fever")
            fever = deny_for("fever", needs_guard=True, alarm="fever", temp_c=38.6, on_duty=True)
            night_core.bus.publish({"type": "decision", "passage": 7} | fever)
            night_core.bus.publish(DECIDED | {"passage": 7})
        if done == ["fever"] and any(n == "view" and d.get("result") for n, d in events):
            done.append("turned")
            night_core.clock.advance(2)  # 17:30:01

    events = asyncio.run(
        read_sse(
            kiosk_app(night_core),
            "/kiosk/events?lang=en",
            on_event=fever_then_the_shift_ends,
            until=lambda ev: any(n == "view" and CALL in d["offline_next"] for n, d in ev),
        )
    )
    views = [data for name, data in events if name == "view" and data.get("result")]
    assert len(views) >= 2
    wait = i18n.reason_next("en", "fever")
    assert all(v["prompt"] == wait for v in views), [v["prompt"] for v in views]
    assert len({v["speak"] for v in views}) == 1  # said once, not again at 17:30
    assert CALL not in views[0]["offline_next"] and CALL in views[-1]["offline_next"]


@pytest.mark.parametrize(
    ("decision", "on_duty_now", "night_words"),
    [
        (deny_for("fever", needs_guard=True, alarm="fever", on_duty=True), False, False),
        (deny_for("store_fault", on_duty=True), False, False),  # a fault: see the guard
        (deny_for("quota_exceeded", on_duty=True), False, False),  # decided at 17:29
        (deny_for("quota_exceeded", on_duty=False), True, True),  # decided at 08:29
        (deny_for("fever", "no_guard_on_duty", alarm="fever"), True, True),
        (deny_for("quota_exceeded"), False, True),  # no stamp (an older message): now's
    ],
)
@pytest.mark.parametrize("lang", i18n.LANGS)
def test_a_decided_result_says_the_duty_it_was_decided_in(decision, on_duty_now, night_words, lang):
    view = kiosk_view(DECIDED, decision, lang, call=CALL, on_duty=on_duty_now)
    line = i18n.call_line(lang, CALL)
    assert (line in view["prompt"]) is night_words, view["prompt"]
    assert names_the_guard([view["prompt"].replace(line, "")]) is not night_words
    assert (line in view["offline_next"]) is not on_duty_now  # the offline screen: now's


@pytest.mark.parametrize(("advance_h", "on_duty"), [(0, True), (7, False)])
def test_the_engine_stamps_the_duty_on_its_decision(clock, tmp_path, advance_h, on_duty):
    """16:30 Shanghai is staffed, 23:30 is not: the decision message says which, by the rule
    ``decide`` judged it by."""
    from test_engine import Rig

    rig = Rig(clock, tmp_path, policy={"hours": STAFFED})
    try:
        rig.clock.advance(advance_h * 3600)
        rig.show(rig.pass_text(), "out")
        rig.emulator.person_arrives(36.6)
        rig.run(8)
        decision = rig.decisions()[-1]
    finally:
        rig.close()
    assert decision["decision"] == "pass" and decision["on_duty"] is on_duty


@pytest.mark.parametrize(("on_duty", "sound"), [(True, "guard"), (False, "deny")])
def test_a_device_fault_at_night_does_not_sound_the_call_to_the_guard(on_duty, sound):
    """The three-note call means "go to the guard's window": at night nobody is there."""
    fault = deny_for("sensor_fault", temp_c=None, on_duty=on_duty)
    view = kiosk_view(DECIDED, fault, "en", call=CALL, on_duty=on_duty)
    assert view["look"] == "fault" and view["sound"] == sound
    script = resources.files("ui").joinpath("static/kiosk.js").read_text("utf-8")
    assert f'kind === "{sound}"' in script  # a sound the page has: no new audio


def test_the_consoles_mirror_of_the_kiosk_says_its_night_words(night_core):
    """At 18:29 the kiosk out of service gives the number; the console's "now" box read the
    day's "please see the guard for a manual check"."""
    night_core.clock.advance(3600)
    with signed_in(make_app(night_core), "root", ADMIN_PW) as client:
        page = client.get("/guard?lang=en").text
    assert i18n.call_line("en", CALL) in page
    assert i18n.t("en", "prompt.out_of_order") not in page


def test_the_consoles_mirror_draws_the_kiosks_words_from_the_same_settings(night_core):
    """The console's "now" box was drawn without the opening hours, the measure-again order
    and the countdown: "Outside opening hours" where the person at the gate read "Outside
    opening hours (08:30–17:30)". Both faces take the site's settings from one place."""
    from ui.guard.live import kiosk_mirror

    app = make_app(night_core)
    state = {"state": "decided", "prompt": "deny", "passage": 1}
    decision = {"type": "decision", "passage": 1, "decision": "deny",
                "reasons": ["outside_hours"], "direction": "out", "on_duty": True}  # fmt: skip
    mirrored = kiosk_mirror(app.state.guard, state, decision, "en")
    tracker = kiosk_screen.ScreenTracker(state)
    tracker.feed(decision)
    shown = app.state.screen.view_of(tracker, "en")
    assert mirrored == shown
    assert "Outside opening hours (08:30" in mirrored["speak"]
