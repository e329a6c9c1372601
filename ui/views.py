"""What the two screens share: templates, security headers, the bus feed, the kiosk's view of
a screen state, device health in words and SSE framing.

Both ``ui.kiosk_screen`` (the unattended screen) and ``ui.guard`` (the console, which shows the
kiosk's state beside its feed) build on these; neither imports the other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from kiosk.privacy import mask_name
from ui import i18n

if TYPE_CHECKING:
    from kiosk.core import Core

HERE = Path(__file__).parent
#: guard page cannot be clickjacked.
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'"
)


def secure_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


HEARTBEAT_S = 15.0
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


def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(HERE / "templates"))
    t.env.globals["asset_v"] = _asset_version()
    return t


def _asset_version() -> str:
    static = HERE / "static"
    stamps = [int(p.stat().st_mtime) for p in static.glob("*") if p.is_file()]
    return str(max(stamps, default=0))


def current_state(core: Core) -> dict:
    """The current screen state message: the bus's last ``state`` (the engine publishes one
    at every change), or the engine's snapshot before it has published any."""
    return core.bus.last("state") or core.runner.engine.snapshot()


def health_report(core: Core) -> dict:
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
    browser then reconnects); ``aclose()`` unsubscribes."""

    def __init__(self, core: Core) -> None:
        self._sub = core.bus.subscribe()

    def __aiter__(self) -> BusFeed:
        return self

    async def __anext__(self) -> dict:
        message = await self._sub.get()
        if message is None or message.get("type") == "dropped":
            raise StopAsyncIteration
        return message

    def ready(self) -> list[dict]:
        """The messages already queued, taken without waiting (up to the ``dropped`` one, which
        ends the feed and is not returned). Lets a stream write a burst in one go."""
        out: list[dict] = []
        while (message := self._sub.get_nowait()) is not None:
            if message.get("type") == "dropped":
                break
            out.append(message)
        return out

    async def aclose(self) -> None:
        self._sub.close()


def bus_messages(core: Core) -> BusFeed:
    return BusFeed(core)


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

    def __init__(self, state: dict | None = None) -> None:
        self.state: dict = dict(state or {})
        self.decision: dict | None = None

    def feed(self, message: dict) -> bool:
        """Take one bus message; True when the screen's view changes."""
        kind = message.get("type")
        if kind == "decision":
            self.decision = message
            return True
        if kind == "state":
            self.state = message
            if message.get("state") not in ("deciding", "decided", "gate_open"):
                self.decision = None
            return True
        return False


def kiosk_view(
    state: dict,
    decision: dict | None,
    lang: str,
    *,
    fever_c: float | None = None,
    gate_open_s: float | None = None,
    call: str = "",
) -> dict:
    """What the kiosk screen shows for a screen state and the decision being shown (``call``:
    where to call when no guard is on duty, ``policy.hours.call``).

    Only whitelisted, non-personal fields leave here: the holder is at most an initial."""
    raw = str(state.get("state") or "idle")
    phase = PHASE_OF.get(raw, "idle")
    prompt_key = str(state.get("prompt") or "")
    if decision is not None and phase in ("idle", "checking"):
        phase = "decided"
    if phase == "decided" and decision is None:
        phase = "checking" if raw == "deciding" else "idle"
    if prompt_key == "out_of_order":
        phase = "out_of_order"

    view: dict[str, Any] = {
        "phase": phase,
        "lang": lang,
        "result": None,
        "temp": None,
        "temp_fever": False,
        "hello": None,
        "direction": None,
        "direction_code": None,
        "gate_closes_in_s": None,
        "sound": None,
        "speak": None,
        "preview": phase in ACTIVE_PHASES,
        "degraded": bool(state.get("degraded")),
        "result_id": None,
    }
    temp = None
    if decision is not None:
        temp = as_number(decision.get("temp_c"))
    if temp is None and isinstance(state.get("temperature"), dict):
        temp = as_number(state["temperature"].get("body_c"))
    if temp is not None:
        view["temp"] = f"{temp:.1f} °C"
        view["temp_fever"] = fever_c is not None and temp >= fever_c
    direction = (decision or {}).get("direction") or state.get("direction")
    if direction in ("in", "out"):
        view["direction"] = i18n.t(lang, f"kiosk.dir.{direction}")
        view["direction_code"] = direction

    verdict = (decision or {}).get("decision")
    if phase == "decided" and verdict in ("pass", "deny", "manual_pass", "manual_deny"):
        ok = verdict in ("pass", "manual_pass")
        codes = [str(c) for c in (decision or {}).get("reasons") or []]
        reasons = [i18n.reason_text(lang, c) for c in codes if c not in ("ok", "guard_override")]
        nexts = [n for c in codes if (n := i18n.reason_next(lang, c, call))]
        needs_guard = bool((decision or {}).get("needs_guard") or (decision or {}).get("alarm"))
        if ok:
            next_step = None
        elif nexts:
            next_step = nexts[0]
        else:
            next_step = i18n.t(lang, "prompt.see_guard" if needs_guard else "prompt.stop")
        view["result"] = {
            "kind": "pass" if ok else "deny",
            "word": i18n.t(lang, f"result.{verdict}"),
            "icon": "✔" if ok else "✖",
            "reasons": reasons,
            "next": next_step,
        }
        view["prompt"] = i18n.t(lang, "prompt.pass" if ok else "prompt.stop")
        initial = (decision or {}).get("holder_initial")
        if ok and initial:
            view["hello"] = i18n.t(lang, "kiosk.hello", initial=mask_name(str(initial)))
        view["sound"] = "pass" if ok else "deny"
        # One sound and one spoken line per decision, however many views show it.
        view["result_id"] = str((decision or {}).get("seq") or (decision or {}).get("passage"))
        spoken = [view["result"]["word"], *reasons[:1]]
        if next_step:
            spoken.append(next_step)
        view["speak"] = ("，" if lang == "zh-CN" else ". ").join(spoken)
        if ok and gate_open_s:
            view["gate_closes_in_s"] = int(round(gate_open_s))
    else:
        key = f"prompt.{prompt_key}"
        if i18n.has(key):
            view["prompt"] = i18n.t(lang, key)
        else:
            view["prompt"] = i18n.t(lang, "prompt.show_pass")
        if phase in ("scan", "measure"):
            view["speak"] = view["prompt"]
    return view


def faults_of(report: dict) -> dict[str, str]:
    """``{device: state}`` for every device not ``ok``, from the engine's health message
    (``faults``: device -> detail, all in fault) or a ``core.health()`` report (``devices``:
    key -> ``{"state", "detail"}``). The readers count as one device, ``reader``."""
    out = {str(device): "fault" for device in report.get("faults") or {}}
    for key, entry in device_entries(report):
        state = entry.get("state")
        if state in ("fault", "absent", "degraded"):
            out.setdefault("reader" if key.startswith("reader:") else key, state)
    return out


#: Devices of a health report in display order (``reader:NAME`` entries are ``reader``).
DEVICE_ORDER = ("thermometer", "reader", "gate", "store")


def device_entries(report: dict) -> list[tuple[str, dict]]:
    """``(key, {"state", "detail"})`` for every device of a ``core.health()`` report."""
    devices = report.get("devices") or {}

    def order(key: str) -> tuple[int, str]:
        base = key.split(":", 1)[0]
        return (DEVICE_ORDER.index(base) if base in DEVICE_ORDER else len(DEVICE_ORDER), key)

    return [(key, devices[key]) for key in sorted(devices, key=order)]


def device_label(lang: str, device: str) -> str:
    if device.startswith("reader:"):
        return f"{i18n.t(lang, 'device.reader')} ({device[7:]})"
    key = f"device.{device}"
    return i18n.t(lang, key) if i18n.has(key) else device


def lists_stale_hours(core: Core) -> int | None:
    """Hours since the lists were updated when that is past ``policy.lists_stale_after_h``
    (-1: never updated, which counts as stale); None while they are fresh."""
    fresh = core.lists.current.freshness
    now = core.clock.now()
    if not fresh.is_stale(now, core.config.policy.lists_stale_after_h):
        return None
    age = fresh.age(now)
    return -1 if age is None else int(age.total_seconds() // 3600)


def sse(event: str, data: Any) -> str:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n"
