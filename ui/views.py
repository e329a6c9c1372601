"""What the two screens share: templates, security headers, the bus feed, the kiosk's view of
a screen state, device health in words and SSE framing.

Both ``ui.kiosk_screen`` (the unattended screen) and ``ui.guard`` (the console, which shows the
kiosk's state beside its feed) build on these; neither imports the other.
"""

from __future__ import annotations

import functools
import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from fastapi.responses import Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from kiosk.alarms import CLOCK_REFERRALS
from kiosk.clock import earliest
from kiosk.config.gate import stop_releases
from kiosk.policy import guard_on_duty
from kiosk.privacy import greeting_name, mask_name
from kiosk.stats import daily_report, stamp_as_of
from kiosk.store import error_name
from ui import i18n

if TYPE_CHECKING:
    from kiosk.config import KioskConfig
    from kiosk.core import Core

HERE = Path(__file__).parent

#: No inline script and no inline style anywhere: a page's look is the stylesheets' (its
#: fields' widths are classes), so a text injected into a page cannot restyle it (hide a
#: warning, lay a link over a button). A value computed per page (a chart's aspect ratio) is
#: a ``<style>`` with that response's nonce (``csp``). Frames are refused so a guard page
#: cannot be clickjacked.
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'"
)


def csp(style_nonce: str | None = None) -> str:
    """``CSP``, with ``style_nonce`` (``secrets.token_urlsafe``) allowing the page's
    ``<style nonce>`` elements."""
    if style_nonce is None:
        return CSP
    return CSP.replace("style-src 'self';", f"style-src 'self' 'nonce-{style_nonce}';")


def secure_headers(response: Response, style_nonce: str | None = None) -> Response:
    response.headers["Content-Security-Policy"] = csp(style_nonce)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


HEARTBEAT_S = 15.0


#: The kiosk stream's heartbeat: a ``tick`` carrying the kiosk's clock at least this often. The
#: page shows its offline state when nothing arrived for ``OFFLINE_AFTER_MS`` (kiosk.js).
TICK_S = 2.0


#: A deny (or any non-pass result) stays on the screen at least this long, unless the next
#: person starts (kiosk.js): someone reading slowly at 1-2 m gets the whole message.
DENY_MIN_HOLD_S = 6.0


#: Phases in which the person is at the gate (the preview is on).
ACTIVE_PHASES = frozenset({"scan", "measure", "hold", "checking", "decided"})


#: Engine states (``kiosk.engine.State``) mapped to the screen's phases.
PHASE_OF = {
    "idle": "idle",
    "awaiting_code": "scan",
    "code_read": "measure",
    "measuring": "hold",
    "deciding": "checking",
    "decided": "decided",
    "gate_open": "decided",
}


@functools.cache
def templates() -> Jinja2Templates:
    """The pages' templates: one environment for the process, so the two screens (and every
    app built in one process) share each template, compiled once at its first page."""
    t = Jinja2Templates(directory=str(HERE / "templates"))
    t.env.globals["asset_v"] = _asset_version()
    return t


def _asset_version() -> str:
    static = HERE / "static"
    stamps = [int(p.stat().st_mtime) for p in static.glob("*") if p.is_file()]
    return str(max(stamps, default=0))


def current_state(core: Core) -> dict[str, Any]:
    """The current screen state message: the bus's last ``state`` (the engine publishes one
    at every change), or the engine's snapshot before it has published any."""
    return core.bus.last("state") or core.runner.engine.snapshot()


def health_report(core: Core) -> dict[str, Any]:
    try:
        return core.health()
    except Exception:  # noqa: BLE001 - a failing health probe is itself a fault to show
        return {
            "deciding": False,
            "devices": {"store": {"state": "fault", "detail": "health failed"}},
        }


class BusFeed:
    """One screen's subscription to ``core.bus``, made at construction (so nothing published
    before the first read is lost). Iteration ends when the bus drops a slow subscriber (the
    browser then reconnects) and at the daemon's stop (``EventBus.end_streams``: the stream
    ends cleanly, before the web server's end); ``aclose()`` unsubscribes."""

    def __init__(self, core: Core) -> None:
        self._sub = core.bus.subscribe(stream=True)

    def __aiter__(self) -> BusFeed:
        return self

    async def __anext__(self) -> dict[str, Any]:
        message = await self._sub.get()
        if message is None or message.get("type") == "dropped":
            raise StopAsyncIteration
        return message

    def ready(self) -> list[dict[str, Any]]:
        """The messages already queued, taken without waiting (up to the ``dropped`` one, which
        ends the feed and is not returned). Lets a stream write a burst in one go."""
        out: list[dict[str, Any]] = []
        while (message := self._sub.get_nowait()) is not None:
            if message.get("type") == "dropped":
                break
            out.append(message)
        return out

    async def aclose(self) -> None:
        self._sub.close()


def gate_report(core: Core, day: date) -> dict[str, Any]:
    """The gate's daily report of ``day`` as every face of the daemon serves it (the
    console's statistics, printable report and exports, ``/api/v1/stats``): with the lists'
    freshness and the staffed hours, and stamped when it was made (``kiosk.stats.stamp_as_of``:
    a day not over says so, never to be read as the day's total)."""
    policy = core.config.policy
    report = daily_report(
        core.store.reader(),
        day,
        core.config.site.timezone,
        policy.quota,
        core.lists.current.freshness,
        policy.hours,
    )
    return stamp_as_of(report, core.clock.now())


def bus_messages(core: Core) -> BusFeed:
    return BusFeed(core)


class ClosingStream(StreamingResponse):
    """A ``StreamingResponse`` that closes its generator however the response ends.

    A client that goes away while a write is blocked (its socket's buffer full: flaky Wi-Fi)
    gets the response cancelled at that write, with the generator suspended at its ``yield``;
    its ``finally`` (the bus unsubscribe) would otherwise wait for the cyclic garbage collector,
    the orphan meanwhile a bus subscriber holding up to a queue of messages."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()


def as_number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None


class ScreenTracker:
    """Follows the bus for one screen: the state message says *where* the passage is, the
    decision message (published just before the ``decided``/``gate_open`` state) says *what*
    was decided. The decision is kept until the next passage starts."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self.state: dict[str, Any] = dict(state or {})
        self.decision: dict[str, Any] | None = None

    def feed(self, message: dict[str, Any]) -> bool:
        """Take one bus message; True when the screen's view changes."""
        kind = message.get("type")
        if kind == "decision":
            self.decision = message
            return True
        if kind == "state":
            self.state = message
            if message.get("state") not in ("deciding", "decided", "gate_open") or (
                self.decision is not None
                and message.get("passage") is not None
                and self.decision.get("passage") != message.get("passage")
            ):
                self.decision = None  # over, or another passage's (one this screen missed)
            return True
        return False


#: Reasons that are the kiosk's trouble, not the person's: shown as a device fault (amber),
#: never as a red deny. A thermometer, reader, gate or disk fault sends the person to the
#: guard for a manual check.
DEVICE_REASONS = frozenset(
    {"sensor_fault", "reader_fault", "store_fault", "gate_fault", "air_out_of_range"}
)
#: The engine's prompts that put the screen out of service (no invitation to scan): a
#: device's fault, and the kiosk stopping (a guard's pass it did not open the gate for).
OUT_OF_ORDER_PROMPTS = frozenset({"out_of_order", "stopping"})


#: Reasons that only mean "measure again" (a cold wrist, a glove, nobody at the sensor): amber,
#: and the reading is not shown as if it were a body temperature.
MEASURE_REASONS = frozenset({"temp_implausible", "no_temperature"})


#: Reasons nobody needs to read at the gate.
SILENT_REASONS = frozenset({"ok", "guard_override"})


#: Engine prompts that ask for the wrist: the screen shows where to hold it.
WRIST_PROMPTS = frozenset({"step_up", "measure_wrist", "measure_again", "measuring"})


#: Result icons by kind (text glyphs inside a round badge; colour is never the only signal).
ICONS = {"pass": "✔", "deny": "✖", "fault": "!", "remeasure": "↻", "out_of_service": "⏸"}


#: The sound of each result kind (``view["sound"]``; kiosk.js plays each, and nothing else):
#: someone who cannot read the screen has only the cue, so measure-again (the wrist again)
#: and a device fault (go to the guard's window) are two sounds, not one soft tone.
CUES = {"pass": "pass", "deny": "deny", "remeasure": "remeasure", "fault": "guard"}


def cue(kind: str, *, on_duty: bool = True) -> str:
    """``CUES[kind]``; with no guard on duty a device fault sounds as a deny: nobody is at the
    guard's window the three-note call sends the person to."""
    return CUES["deny"] if kind == "fault" and not on_duty else CUES[kind]


def on_duty_now(core: Core) -> bool:
    """Whether a guard is on duty now: ``kiosk.policy.guard_on_duty``, the rule the core
    denies what needs a guard by (``no_guard_on_duty``), on the kiosk's clock."""
    now = core.clock.now()
    zone = ZoneInfo(core.config.site.timezone)
    return guard_on_duty(now, core.config.policy, zone, earliest=earliest(core.clock, now))


def decided_on_duty(decision: dict[str, Any], now: bool) -> bool:
    """Whether a guard was on duty when ``decision`` was made: its referrals to the guard say
    so for as long as it is shown (a fever decided at 17:29:59 still says "a guard will
    re-check you" at 17:30:01: the guard was called, and comes). Not when its reasons say
    nobody was (``no_guard_on_duty``); else the engine's stamp (``on_duty``), else ``now``
    (a message without one)."""
    if "no_guard_on_duty" in (decision.get("reasons") or ()):
        return False
    stamped = decision.get("on_duty")
    return stamped if isinstance(stamped, bool) else now


#: Reasons said (and acted on) before the others: with no guard on duty nobody comes, so the
#: person is told where to call; a fever keeps them at the gate for the guard's re-check,
#: whatever else is wrong with their pass (the policy lists the pass's reasons first).
FIRST_REASONS = ("no_guard_on_duty", "fever")


def _first_reasons_first(codes: list[str]) -> list[str]:
    rank = {code: i for i, code in enumerate(FIRST_REASONS)}
    return sorted(codes, key=lambda c: rank.get(c, len(FIRST_REASONS)))


def result_kind(verdict: str, codes: list[str]) -> str:
    """``pass``, ``deny`` (red: the person's pass or health), ``remeasure`` (amber: only the
    measurement failed) or ``fault`` (amber: only the kiosk failed)."""
    if verdict in ("pass", "manual_pass"):
        return "pass"
    personal = [c for c in codes if c not in SILENT_REASONS | DEVICE_REASONS | MEASURE_REASONS]
    if personal or verdict == "manual_deny":
        return "deny"
    if any(c in MEASURE_REASONS for c in codes):
        return "remeasure"
    if any(c in DEVICE_REASONS for c in codes):
        return "fault"
    return "deny"


def _reason_words(lang: str, code: str, hours: str | None, *, on_duty: bool = True) -> str:
    text = i18n.reason_for_person(lang, code, on_duty=on_duty)
    if code == "outside_hours" and hours:
        text += f"（{hours}）" if lang == "zh-CN" else f" ({hours})"
    return text


def _reason_next(
    lang: str, code: str, call: str, *, clock_wait: bool, on_duty: bool = True
) -> str | None:
    """What to do after ``code``. The screen says the first reason's, in the order the
    reasons are said, so a fever's (or nobody on duty's) comes first whatever else is wrong:
    an early pass on a clock NTP has not set (``clock_wait``) is the guard's to check, not
    "come back later", but only in its own place in that order."""
    if clock_wait and code in CLOCK_REFERRALS:
        return i18n.t_now(lang, "kiosk.clock_not_set_next", on_duty=on_duty, call=call)
    return i18n.reason_next(lang, code, call, on_duty=on_duty)


def result_view(
    decision: dict[str, Any],
    lang: str,
    *,
    hours: str | None = None,
    call: str = "",
    code_first: bool = False,
    on_duty: bool = True,
) -> tuple[dict[str, Any], str | None]:
    """The result block of a decided passage and the what-to-do line (None for a pass: the
    prompt says it). Device and measurement reasons are never listed as the person's fault.
    ``code_first``: only a code starts the next passage, so measuring again starts with the
    pass shown again (on a temperature-first kiosk the wrist starts it). ``on_duty`` false
    (no guard on duty now): every referral to the guard says where to ``call`` instead."""
    verdict = str(decision.get("decision"))
    codes = [str(c) for c in decision.get("reasons") or []]
    flags = [str(f) for f in decision.get("flags") or []]
    kind = result_kind(verdict, codes)
    if kind == "deny":
        shown = _first_reasons_first(
            [c for c in codes if c not in SILENT_REASONS | DEVICE_REASONS | MEASURE_REASONS]
        )
    elif kind == "remeasure":
        shown = [c for c in codes if c in MEASURE_REASONS][:1]
    else:
        # The air outside the thermometer's range is said (winter): nothing else of a device.
        shown = [c for c in codes if c == "air_out_of_range"][:1] if kind == "fault" else []
    needs_guard = bool(decision.get("needs_guard") or decision.get("alarm"))
    clock_wait = needs_guard and "clock_not_set" in flags
    nexts = [
        n
        for c in shown
        if (n := _reason_next(lang, c, call, clock_wait=clock_wait, on_duty=on_duty))
    ]
    if kind == "pass":
        next_step = None
    elif kind == "fault":
        fault_next = i18n.t_now(lang, "kiosk.fault_next", on_duty=on_duty, call=call)
        next_step = nexts[0] if nexts else fault_next
    elif verdict == "manual_deny":
        next_step = i18n.t(lang, "kiosk.guard_denied_next")  # the guard is there, deciding
    elif kind == "remeasure" and code_first:
        next_step = i18n.t(lang, f"kiosk.rescan.{shown[0]}")
    elif nexts:
        next_step = nexts[0]
    else:
        # Under the deny's headline: what to do, not "denied" again (prompt.see_guard).
        key = "kiosk.see_guard_next" if needs_guard else "prompt.stop"
        next_step = i18n.t_now(lang, key, on_duty=on_duty, call=call)
    word_key = f"result.{verdict}" if kind in ("pass", "deny") else f"result.{kind}"
    result = {
        "kind": kind,
        "word": i18n.t(lang, word_key),
        "icon": ICONS[kind],
        "reasons": [_reason_words(lang, c, hours, on_duty=on_duty) for c in shown],
        "next": next_step,
    }
    return result, next_step


def shown_temperature(state: dict[str, Any], decision: dict[str, Any] | None) -> float | None:
    """The body temperature to show, or None. A reading the thermometry called implausible
    (a cold wrist reads 28.7 °C) or a decision that could not measure shows no number: it is
    not the person's temperature."""
    if decision is not None:
        codes = set(decision.get("reasons") or [])
        if codes & MEASURE_REASONS or codes & {"sensor_fault"}:
            return None
        return as_number(decision.get("temp_c"))
    reading = state.get("temperature")
    if isinstance(reading, dict) and reading.get("status") == "ok":
        return as_number(reading.get("body_c"))
    return None


def greeting(decision: dict[str, Any], lang: str) -> str | None:
    """``王*英，您好``: the holder's masked name, never more (re-masked here, whatever came)."""
    name = decision.get("holder_greeting") or decision.get("holder_initial")
    if not name:
        return None
    masked = greeting_name(str(name)) if decision.get("holder_greeting") else mask_name(str(name))
    return i18n.t(lang, "kiosk.hello", name=masked)


def headline(lang: str, kind: str, word_key: str) -> dict[str, str]:
    """The big icon and word of a state that is not a decision."""
    return {"kind": kind, "word": i18n.t(lang, word_key), "icon": ICONS[kind]}


def out_of_order_prompt(prompt_key: str, *, stop_releases: bool = False) -> str:
    """The message key of what an out-of-service screen says: the kiosk stopping (the gate it
    leaves released where ``stop_releases``: ``kiosk.config.gate.stop_releases``), else the
    guard's manual check."""
    if prompt_key not in OUT_OF_ORDER_PROMPTS:
        return "prompt.out_of_order"
    released = prompt_key == "stopping" and stop_releases
    return f"prompt.{prompt_key}_released" if released else f"prompt.{prompt_key}"


def _idle_look(phase: str, prompt_key: str) -> str:
    if phase == "out_of_order":
        return "out_of_service"
    if prompt_key == "measure_again":
        return "remeasure"
    return "idle"


def _phase(raw: str, prompt_key: str, decision: dict[str, Any] | None) -> tuple[str, str]:
    """The screen's phase for the engine's state ``raw`` and the decision being shown, and the
    prompt it says (none for a result this screen never saw)."""
    phase = PHASE_OF.get(raw, "idle")
    if decision is not None and phase in ("idle", "checking"):
        phase = "decided"
    if phase == "decided" and decision is None:
        phase = "checking" if raw == "deciding" else "idle"
        if phase == "idle":
            prompt_key = ""  # a result this screen never saw: not "please go through"
    if prompt_key in OUT_OF_ORDER_PROMPTS:
        phase = "out_of_order"
    return phase, prompt_key


def kiosk_view(
    state: dict[str, Any],
    decision: dict[str, Any] | None,
    lang: str,
    *,
    fever_c: float | None = None,
    gate_open_s: float | None = None,
    hours: str | None = None,
    call: str = "",
    code_first: bool = False,
    stop_releases: bool = False,
    on_duty: bool = True,
) -> dict[str, Any]:
    """What the kiosk screen shows for a screen state and the decision being shown (``call``:
    where to call when no guard is on duty, ``policy.hours.call``, said for every referral to
    the guard while ``on_duty`` is false; ``code_first``: the kiosk's ``engine.order``;
    ``stop_releases``: ``kiosk.config.gate.stop_releases``; ``offline_next``: what the page
    says while the daemon is unreachable). A decided passage's referrals follow the duty it
    was decided in (``decided_on_duty``), not ``on_duty``.

    ``look`` is the screen's colour and icon, one per state that must not be confused: idle,
    pass (green), deny (red), remeasure and fault (amber), out_of_service (its own colour, no
    invitation to scan). Only whitelisted, non-personal fields leave; names masked (``王*英``)."""
    raw = str(state.get("state") or "idle")
    phase, prompt_key = _phase(raw, str(state.get("prompt") or ""), decision)
    view: dict[str, Any] = {
        "phase": phase,
        "look": _idle_look(phase, prompt_key),
        "lang": lang,
        "headline": None,
        "result": None,
        "temp": None,
        "temp_fever": False,
        "hello": None,
        "direction": None,
        "direction_code": None,
        "gate_closes_in_s": None,
        "sound": None,
        "speak": None,
        # Not behind a result: it hides the side panel the preview is in (kiosk.css).
        "preview": phase in ACTIVE_PHASES and phase != "decided",
        "wrist": prompt_key in WRIST_PROMPTS and phase != "out_of_order",
        "hint": None,
        "dirs_live": phase not in ("decided", "out_of_order"),
        "degraded": bool(state.get("degraded")),
        "result_id": None,
        "offline_next": i18n.t_now(lang, "kiosk.offline_next", on_duty=on_duty, call=call),
    }
    _facts(view, state, decision, lang, fever_c, decided=phase == "decided")
    verdict = (decision or {}).get("decision")
    if phase == "decided" and decision and verdict in PASS_OR_DENY:
        _decided(
            view,
            decision,
            lang,
            hours=hours,
            gate_open_s=gate_open_s,
            call=call,
            code_first=code_first,
            on_duty=decided_on_duty(decision, on_duty),
        )
        if raw != "gate_open":
            view["gate_closes_in_s"] = None  # not open yet, or locked again: no countdown
        if raw == "decided" and view["look"] == "pass":
            _gate_closed(view, lang, call=call, on_duty=on_duty)
    elif phase == "out_of_order":
        view["headline"] = headline(lang, "out_of_service", "kiosk.out_of_service")
        key = out_of_order_prompt(prompt_key, stop_releases=stop_releases)
        view["prompt"] = i18n.t_now(lang, key, on_duty=on_duty, call=call)
    else:
        key = f"prompt.{prompt_key}" if i18n.has(f"prompt.{prompt_key}") else "prompt.show_pass"
        view["prompt"] = i18n.t_now(lang, key, on_duty=on_duty, call=call)
        if prompt_key == "measure_again":
            view["headline"] = headline(lang, "remeasure", "result.remeasure")
        if phase in ("scan", "measure"):
            view["speak"] = view["prompt"]
        view["hint"] = i18n.t(lang, "prompt.step_up" if view["wrist"] else "kiosk.preview_off")
    _evacuation(view, state, lang)
    return view


def _gate_closed(view: dict[str, Any], lang: str, *, call: str, on_duty: bool) -> None:
    """A pass whose gate has locked again (the pulse over, the result still held): no green
    "go through" in front of a locked gate. The screen says the gate closed and where to turn
    for anyone not through (the pass is recorded: shown again, it is passback); the result
    stays for the guard's console, not heard again."""
    prompt = i18n.t_now(lang, "prompt.gate_closed", on_duty=on_duty, call=call)
    view.update(look="idle", headline=None, prompt=prompt, hello=None, sound=None, speak=None)


def _evacuation(view: dict[str, Any], state: dict[str, Any], lang: str) -> None:
    """An evacuation under way (``kiosk.evacuation``, the state's ``evacuation``) over whatever
    the passage shows: the whole screen green, telling everyone to go through without stopping
    (the out-of-order screen's layout: one message, no preview, no wrist, no direction
    buttons)."""
    if not isinstance(state.get("evacuation"), dict):
        return
    word = i18n.t(lang, "kiosk.evacuation")
    prompt = i18n.t(lang, "prompt.evacuation")
    view.update(
        phase="out_of_order",
        look="pass",
        headline={"kind": "pass", "word": word, "icon": ICONS["pass"]},
        result=None,
        prompt=prompt,
        temp=None,
        temp_fever=False,
        hello=None,
        wrist=False,
        preview=False,
        hint=None,
        dirs_live=False,
        gate_closes_in_s=None,
        sound=None,
        speak=f"{word}. {prompt}" if lang != "zh-CN" else f"{word}，{prompt}",
        result_id=None,
        # The guard console's "current" panel shows it too (guard.js, guard_live.html).
        evacuation=dict(state["evacuation"]),
    )


PASS_OR_DENY = frozenset({"pass", "deny", "manual_pass", "manual_deny"})


def _facts(
    view: dict[str, Any],
    state: dict[str, Any],
    decision: dict[str, Any] | None,
    lang: str,
    fever_c: float | None,
    *,
    decided: bool,
) -> None:
    """The temperature (the decision's once ``decided``) and the direction."""
    temp = shown_temperature(state, decision if decided else None)
    if temp is not None:
        view["temp"] = f"{temp:.1f} °C"
        view["temp_fever"] = fever_c is not None and temp >= fever_c
    direction = (decision or {}).get("direction") or state.get("direction")
    if direction in ("in", "out"):
        view["direction"] = i18n.t(lang, f"kiosk.dir.{direction}")
        view["direction_code"] = direction


def _decided(
    view: dict[str, Any],
    decision: dict[str, Any],
    lang: str,
    *,
    hours: str | None,
    gate_open_s: float | None,
    call: str = "",
    code_first: bool = False,
    on_duty: bool = True,
) -> None:
    """Fill ``view`` for a decided passage."""
    result, next_step = result_view(
        decision, lang, hours=hours, call=call, code_first=code_first, on_duty=on_duty
    )
    ok = result["kind"] == "pass"
    view["result"] = result
    view["headline"] = {k: result[k] for k in ("kind", "word", "icon")}
    view["look"] = result["kind"]
    view["prompt"] = i18n.t(lang, "prompt.pass") if ok else next_step
    view["wrist"] = result["kind"] == "remeasure"
    if view["wrist"]:
        view["hint"] = i18n.t(lang, "prompt.step_up")
    if ok:
        view["hello"] = greeting(decision, lang)
    view["sound"] = cue(result["kind"], on_duty=on_duty)
    # One sound and one spoken line per decision, however many views show it.
    view["result_id"] = str(decision.get("seq") or decision.get("passage"))
    spoken = [result["word"], *result["reasons"][:1]]
    if next_step:
        spoken.append(next_step)
    view["speak"] = ("，" if lang == "zh-CN" else ". ").join(spoken)
    if ok and gate_open_s and (left := round(gate_open_s, 1)):
        view["gate_closes_in_s"] = left  # what is left of the pulse (the page counts it down)


def opening_hours(cfg: KioskConfig) -> str | None:
    """``08:30–17:30`` (``20:00–08:00`` for a night guard, ``08:30–17:30, 20:00–08:00`` for
    two spans) when the site has opening hours, for the outside-hours reason."""
    hours = cfg.policy.hours
    return hours.text() if hours.enabled else None


def screen_settings(cfg: KioskConfig) -> dict[str, Any]:
    """What of the site's config the kiosk screen's words and countdown depend on: the
    arguments ``kiosk_view`` takes from it, the same for the kiosk's own screen and the guard
    console's mirror of it (``ui.guard.live.kiosk_mirror``)."""
    return {
        "fever_c": cfg.thermometer.thermometry.fever_threshold_c,
        "gate_open_s": cfg.gate.pulse_ms / 1000,
        "hours": opening_hours(cfg),
        "call": cfg.policy.hours.call,
        "code_first": cfg.engine.order == "code_first",
        "stop_releases": stop_releases(cfg.gate),
    }


def clock_ms(core: Core) -> int:
    """The kiosk's wall clock (the demo's is the scenario's) in epoch milliseconds: the screen
    shows this clock, not the browser's."""
    return int(core.clock.now().timestamp() * 1000)


def faults_of(report: dict[str, Any]) -> dict[str, str]:
    """``{device: state}`` for every device not ``ok``: those in fault as the engine sees
    them (``faults``: device -> detail, in its health message and in a ``core.health()``
    report), then each device's own state (``devices``: key -> ``{"state", "detail"}``, a
    ``core.health()`` report's). The readers count as one device, ``reader``, in the worst
    state of any of them (a scanner unplugged beside a camera still starting is a fault)."""
    out = {str(device): "fault" for device in report.get("faults") or {}}
    for key, entry in device_entries(report):
        state = entry.get("state")
        if state in _NOT_OK:
            device = "reader" if key.startswith("reader:") else key
            known = out.get(device)
            if known is None or _NOT_OK.index(state) < _NOT_OK.index(known):
                out[device] = state
    return out


#: A device's states that are not ``ok``, the worst first.
_NOT_OK = ("fault", "absent", "degraded")


#: Devices of a health report in display order (``reader:NAME`` entries are ``reader``).
DEVICE_ORDER = ("thermometer", "reader", "gate", "store")


def device_entries(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(key, {"state", "detail"})`` for every device of a ``core.health()`` report."""
    devices = report.get("devices") or {}

    def order(key: str) -> tuple[int, str]:
        base = key.split(":", 1)[0]
        return (DEVICE_ORDER.index(base) if base in DEVICE_ORDER else len(DEVICE_ORDER), key)

    return [(key, devices[key]) for key in sorted(devices, key=order)]


def device_label(lang: str, device: str) -> str:
    if device.startswith("reader:"):
        # The default source names read as words; a site's own name is shown as written.
        name = device[7:]
        source = f"device.source.{name}"
        shown = i18n.t(lang, source) if i18n.has(source) else name
        if lang == "zh-CN":
            return f"{i18n.t(lang, 'device.reader')}（{shown}）"
        return f"{i18n.t(lang, 'device.reader')} ({shown})"
    key = f"device.{device}"
    return i18n.t(lang, key) if i18n.has(key) else device


def lists_stale_hours(core: Core) -> int | None:
    """Hours since the lists were updated when that is past ``policy.lists_stale_after_h``
    (-1: never updated, which counts as stale; -2: stamped after the clock's now, age
    unknown, ``LISTS_STAMP_AHEAD``); None while they are fresh."""
    fresh = core.lists.current.freshness
    now = core.clock.now()
    if not fresh.is_stale(now, core.config.policy.lists_stale_after_h):
        return None
    if fresh.stamp_ahead(now):
        return LISTS_STAMP_AHEAD
    age = fresh.age(now)
    return -1 if age is None else int(age.total_seconds() // 3600)


#: ``lists_stale_hours`` of lists stamped after the clock's now (the clock stepped back).
LISTS_STAMP_AHEAD = -2


def sse(event: str, data: object) -> str:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n"


#: The runbook's command that names what a damaged log can still give back.
VERIFY_COMMAND = "sudo kiosk-admin verify-log"


def unreadable_words(lang: str, exc: BaseException, file: str) -> str:
    """A read the card failed (``kiosk.store.is_damaged_read``), said in ``lang``: what it is,
    that the gate goes on, and what to run."""
    said = {"err": error_name(exc), "file": file, "command": VERIFY_COMMAND}
    return i18n.t(lang, "err.database_unreadable", **said)
