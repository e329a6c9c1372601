"""What the guard console shows, built from core records: feed rows masked for the viewer's
role, alarm cards, device health in words, the statistics page's cards and charts, the CSV
export and the printable card. Plain functions of their inputs, tested directly."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from kiosk import privacy
from kiosk.alarms import (
    ALARM_DEVICES,
    PEER_ALARM,
    PI_POWER_ALARM,
    QUOTA_DETAIL,
    RETENTION_ALARM,
    UNREADABLE_ALARM,
    Alarm,
    alarm_from_event,
    person_of,
    power_cause,
    reason_codes,
)
from kiosk.categories import category_words, item_words
from kiosk.days import offset_text, repeated
from kiosk.engine import UNKNOWN_DWELLING
from kiosk.links import judged_fever, not_opened
from kiosk.lists import entry_version
from kiosk.passes import Pass
from kiosk.sheets import write_csv, write_xlsx
from kiosk.typed import whole_number
from kiosk.unreadable import damaged_fields
from ui import charts, i18n
from ui.device_words import detail_text
from ui.report_words import as_of_line, words
from ui.views import VERIFY_COMMAND, device_entries, device_label

#: Fields a plain guard sees unmasked (to recognise a person); admins see all. Free-text
#: notes are scrubbed of phone- and ID-shaped numbers for guards.
GUARD_CLEAR_FIELDS = frozenset(
    {
        "pass_id",
        "household",
        "holder",
        "person.name",
        "person.unit",
        "person.plate",
        "person.driver",
        "person.occupants",
        "person.passengers",
        "person.driver_temp_c",
        "person.resident_of",
        "person.plate_check",
    }
)
ALL_FIELDS = privacy.FIELD_NAMES


def local_time(ts: str | None, tz: ZoneInfo, fmt: str = "%H:%M:%S") -> str:
    if not ts:
        return ""
    try:
        when = datetime.fromisoformat(ts)
    except ValueError:
        return ts
    return when.astimezone(tz).strftime(fmt)


def shown_time(ts: str | None, tz: ZoneInfo, fmt: str = "%H:%M:%S") -> str:
    """``local_time`` for a guard to read on a screen: a local time the autumn change repeats
    (02:30 in Berlin on the last Sunday of October, once in summer time, once in winter time)
    carries its UTC offset, ``02:30:00 UTC+01:00``; every other time reads as before."""
    shown, offset = local_time(ts, tz, fmt), repeated_offset(ts, tz)
    return f"{shown} {offset}" if offset else shown


def event_time(event: Mapping[str, Any], lang: str, tz: ZoneInfo, fmt: str = "%H:%M:%S") -> str:
    """When an event happened, for a guard to read (``shown_time``): its dated time
    (``kiosk.queries.dated``: one stamped before NTP stepped the clock at the time its boot's
    synchronised clock gives it, as the reports count it); one whose clock nothing has
    synchronised yet at what that clock said, and saying so."""
    shown = shown_time(event.get("dated_ts") or event.get("ts"), tz, fmt)
    if event.get("dating") == "unsynced":
        return f"{shown} ({i18n.t(lang, 'banner.clock_unsynced')})"
    return shown


#: A feed row's time, and with its date when it is not of today's local day.
FEED_TIME, FEED_DATED = "%H:%M:%S", "%m-%d %H:%M:%S"


def feed_day(event: Mapping[str, Any], tz: ZoneInfo) -> str:
    """The site's local day a feed row happened on (``YYYY-MM-DD``; "" when not known)."""
    return local_time(event.get("dated_ts") or event.get("ts"), tz, "%Y-%m-%d")


def feed_time(event: Mapping[str, Any], lang: str, tz: ZoneInfo, today: date | None) -> str:
    """When a feed row happened (``event_time``), its date (``%m-%d``) too when it is not of
    ``today``, the site's local day: at the start of a shift, last evening's denies must not
    read as this morning's. ``today`` None: the time alone."""
    fmt = FEED_TIME
    if today is not None:
        day = feed_day(event, tz)
        fmt = FEED_DATED if day and day != today.isoformat() else FEED_TIME
    return event_time(event, lang, tz, fmt)


def clock_time(ts: str | None, lang: str, tz: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time written by a clock of this gate with nothing to date it by (a calibration's
    pair or fit, a list's change: no boot nor monotonic time kept): one before 2000 was a
    clock never set (a fresh card without network time, 1970), said as what it read and that
    it was not set."""
    shown = local_time(ts, tz, fmt)
    if shown and (ts or "")[:4] < "2000":
        return f"{shown} ({i18n.t(lang, 'banner.clock_unsynced')})"
    return shown


def repeated_offset(ts: str | None, tz: ZoneInfo) -> str:
    """``UTC+01:00`` when the local time of ``ts`` happens twice that day (the hour the
    autumn change repeats: ``kiosk.days.repeated``), else nothing."""
    try:
        when = datetime.fromisoformat(ts or "").astimezone(tz)
    except ValueError:
        return ""
    return offset_text(when) if repeated(when) else ""


def utc_offset(ts: str | None, tz: ZoneInfo) -> str:
    """``UTC+02:00``: with the local time it names the instant, also in the hour a daylight
    saving change repeats (text no spreadsheet reads as a formula or a time)."""
    if not ts:
        return ""
    try:
        return offset_text(datetime.fromisoformat(ts).astimezone(tz))
    except ValueError:
        return ""


def alarm_time(a: Alarm, lang: str, tz: ZoneInfo) -> str:
    """A card's date and time as ``event_time`` says an event's: when it happened."""
    if not a.ts:
        return ""
    dating = "clock" if a.clock_synced else ("boot" if a.dated_ts else "unsynced")
    return event_time(
        {"ts": a.ts, "dated_ts": a.dated_ts, "dating": dating}, lang, tz, "%m-%d %H:%M:%S"
    )


def alarm_view(a: Alarm, lang: str, tz: ZoneInfo, clear: frozenset[str]) -> dict[str, Any]:
    """An alarm card in the guard's language: what, who and a vehicle's plate (masked for the
    viewer's role), temperature, direction, date and time, and the passages it is about."""
    if a.key.startswith(PEER_ALARM):
        return peer_alarm_view(a, lang, tz)
    if a.key == PI_POWER_ALARM:
        return pi_power_alarm_view(a, lang, tz)
    if a.key == RETENTION_ALARM:
        return retention_alarm_view(a, lang, tz)
    if a.kind == "overflow":
        detail = i18n.t(lang, "alarm.overflow_detail", n=a.dropped)
    elif a.key == UNREADABLE_ALARM:
        detail = i18n.t(lang, "alarm.unreadable_rows", rows=a.detail, command=VERIFY_COMMAND)
    elif a.detail == QUOTA_DETAIL and len(a.passages) == 2:
        first, second = (passage_text(a, i, lang, tz) for i in range(2))
        detail = i18n.t(lang, f"alarm.{QUOTA_DETAIL}", first=first, second=second)
    elif a.kind == "record":
        detail = record_words(a, lang)
    elif len(a.reasons) > 1:  # a clock's referral: each reason the two times found
        known = i18n.reason_codes()
        detail = "; ".join(i18n.reason_text(lang, c) if c in known else c for c in a.reasons)
    elif a.detail in i18n.reason_codes():
        detail = i18n.reason_text(lang, a.detail)
    elif i18n.has(f"device.{a.detail}"):
        detail = device_label(lang, a.detail)
    elif i18n.has(f"alarm.{a.detail}"):
        detail = i18n.t(lang, f"alarm.{a.detail}")
    else:
        detail = a.detail
    # The plate is a person's field (``person.plate``): masked as the feed masks it.
    car = {"plate": a.plate} if a.plate else None
    masked = privacy.mask_event(
        {"holder": a.holder, "household": a.household, "person": car}, clear
    )
    plate = (masked.get("person") or {}).get("plate")
    who = [masked.get("holder"), masked.get("household")]
    who.append(i18n.t(lang, "alarm.plate", plate=plate) if plate else None)
    seqs = a.seqs or ([a.seq] if a.seq is not None else [])
    # A device in fault: what the guard does meanwhile (operations.md's "Do" column). An
    # engine's alarm about a passage (``gate_fault``: the relay did not open for it) too.
    about = a.detail if a.detail == "gate_not_locked" else ALARM_DEVICES.get(a.detail, a.detail)
    todo = f"alarm.todo.{about}"
    if a.reasons:  # a clock's referral: the two times disagreed; what the guard does
        todo = i18n.t(lang, "alarm.todo.clock_not_set", reading=alarm_time(a, lang, tz))
    elif a.kind == "record":  # a record to check: which, and registering again if needed
        todo = i18n.t(lang, todo, seq=a.seq)
    else:
        todo = i18n.t(lang, todo) if a.kind == "device" and i18n.has(todo) else ""
    return {
        "todo": todo,
        "key": a.key,
        "kind": a.kind,
        "title": i18n.t(lang, f"alarm.{a.kind}"),
        "time": alarm_time(a, lang, tz),
        "detail": detail,
        "seq": a.seq,
        "who": " · ".join(str(v) for v in who if v),
        "temp": f"{a.temp_c:.1f} °C" if a.temp_c is not None else "",
        "direction": i18n.t(lang, f"dir.{a.direction}") if a.direction in ("in", "out") else "",
        "seqs": seqs,
        "times": i18n.t(lang, "alarm.times", n=a.times) if a.times > 1 else "",
        "count": a.count,  # sent back by the page's form as drawn: ``AlarmDesk.close``'s seen
        "incident": a.since,  # sent back too: ``AlarmDesk.close``'s incidents
    }


def record_words(a: Alarm, lang: str) -> str:
    """A record's card's words (``kiosk.alarms.RECORD_ALARMS``): what was written or left
    out, whose decision (a guard's name, else "a guard"), and the record it names; a late
    pass the screen had denied (``cause`` ``denied``) has words of its own."""
    key = f"alarm.{a.detail}_{a.cause}" if a.cause else f"alarm.{a.detail}"
    operator = a.operator or i18n.t(lang, "alarm.a_guard")
    return i18n.t(lang, key, seq=a.seq, operator=operator)


def passage_text(a: Alarm, i: int, lang: str, tz: ZoneInfo) -> str:
    """A quota card's passage ``i``: its gate and when it happened as the feed says it
    (``event_time``: dated, or the clock's stamp and that the clock was not set)."""
    gate, ts = a.passages[i]
    dating = a.passages_dating[i] if i < len(a.passages_dating) else "clock"
    when = {"ts": ts, "dated_ts": ts, "dating": dating}
    return f"{gate} {event_time(when, lang, tz, '%m-%d %H:%M')}"


#: The Pi's power card's (``alarm.*``) and row's (``health.*``) words by what health says
#: (``kiosk.alarms.power_cause``): heat only when a reading said heat; a cause not named here
#: is said as unknown.
PI_POWER_WORDS = {
    "under_voltage": "pi_under_voltage",
    "supply": "pi_slowed_supply",
    "heat": "pi_throttled",
    "unknown": "pi_capped",
}


def pi_power_word(cause: str) -> str:
    return PI_POWER_WORDS.get(cause, PI_POWER_WORDS["unknown"])


def pi_power_alarm_view(a: Alarm, lang: str, tz: ZoneInfo) -> dict[str, Any]:
    """The Pi's power card (``kiosk.alarms.power_alarms``): under-voltage (and the throttle
    it brings), slowed down after the supply's dip (the voltage back), slowed down for heat,
    or capped for a cause unknown, since when, the SoC's temperature, and what the guard does
    meanwhile."""
    word = pi_power_word(a.cause)
    since = local_time(a.ts, tz, "%H:%M") if a.ts else "?"
    time = local_time(a.ts, tz, "%m-%d %H:%M:%S") if a.ts else ""
    detail = i18n.t(lang, f"alarm.{word}", since=since, temp=_soc_temp(a.temp_c, lang))
    return _device_card(a, lang, word, time, detail)


#: A step after the purges' commits failing (``kiosk.retention.STEP_CAUSES``): each card
#: says what to do of its own (what holds the step), not the refusals' (the clock, NTP).
RETENTION_STEPS = ("wipe_failed", "held_failed", "set_aside_failed")
#: Why the retention purge is overdue (``kiosk.retention.overdue``), each its card's words.
RETENTION_CAUSES = (
    "unsynchronised",
    "set_back",
    "store",
    "not_run",
    "waiting_for_clock",
    *RETENTION_STEPS,
)
#: The causes that refuse every purge: they tell no row's age (a fresh install without NTP
#: holds nothing past retention yet), so the card says the purges are refused, for how long.
RETENTION_REFUSALS = ("unsynchronised", "set_back", "store")


def retention_alarm_view(a: Alarm, lang: str, tz: ZoneInfo) -> dict[str, Any]:
    """The overdue retention's card (``kiosk.alarms.retention_alarms``): the purges refused
    for how many days and why (a clock NTP never set, set back, the card), or personal data
    past retention kept (events waiting for the clock, no purge run), since the last purge,
    and whom to tell."""
    cause = a.cause if a.cause in RETENTION_CAUSES else "not_run"
    since = local_time(a.ts, tz, "%m-%d %H:%M") if a.ts else i18n.t(lang, "alarm.retention_never")
    detail = i18n.t(lang, f"alarm.retention_{cause}", since=since, n=a.detail)
    word = f"retention_{cause}" if cause in RETENTION_STEPS else "retention"
    card = _device_card(a, lang, word, since if a.ts else "", detail)
    title = "alarm.retention_refused" if cause in RETENTION_REFUSALS else "alarm.retention"
    return card | {"title": i18n.t(lang, title)}


def _device_card(a: Alarm, lang: str, word: str, time: str, detail: str) -> dict[str, Any]:
    """A device's standing card (the Pi's power, a compound gate): no passage, no person."""
    return {
        "todo": i18n.t(lang, f"alarm.todo.{word}"),
        "key": a.key,
        "kind": a.kind,
        "title": i18n.t(lang, "alarm.device"),
        "time": time,
        "detail": detail,
        "seq": None,
        "who": "",
        "temp": "",
        "direction": "",
        "seqs": [],
        "times": "",
        "count": a.count,
        "incident": a.since,
    }


def _soc_temp(temp_c: float | None, lang: str) -> str:
    return i18n.t(lang, "health.pi_unknown_temp") if temp_c is None else f"{temp_c:.1f} °C"


def pi_power_words(pi: dict[str, Any], lang: str, tz: ZoneInfo) -> tuple[str, str]:
    """The Pi's power and heat row (``report["pi_power"]``): ``absent`` (not a Pi, an older
    kernel), ``fault`` while under-voltage, ``degraded`` while slowed down, hot or a file
    cannot be read (each problem said), else ``ok`` with the SoC's temperature."""
    state = str(pi.get("state"))
    if state in ("absent", "unknown"):
        return "absent", i18n.t(lang, f"health.pi_{'absent' if state == 'absent' else 'starting'}")
    temp = _soc_temp(pi.get("soc_temp_c"), lang)
    words = []
    for condition in ("under_voltage", "throttled"):
        if pi.get(condition):
            since = local_time(str(pi.get(f"{condition}_since")), tz, "%H:%M")
            word = pi_power_word(power_cause(pi, condition))
            words.append(i18n.t(lang, f"health.{word}", since=since, temp=temp))
    if pi.get("hot") and not pi.get("throttled"):
        words.append(i18n.t(lang, "health.pi_hot", temp=temp))
    for problem in pi.get("problems") or []:
        words.append(i18n.t(lang, "health.pi_problem", problem=detail_text(lang, str(problem))))
    if not words:
        words.append(i18n.t(lang, "health.pi_ok", temp=temp))
    return state, " ".join(words)


def peer_alarm_view(a: Alarm, lang: str, tz: ZoneInfo) -> dict[str, Any]:
    """A compound gate's card (``kiosk.alarms.peer_alarms``): which gate, since when its
    outings are unknown here (or answers for it were refused as forged), and what that means
    for the rules and the guard."""
    gate = i18n.t(lang, "device.peer", id=a.detail)
    # Held back: since when is this gate's own clock not set (1970), no time to show.
    dated = bool(a.ts) and a.cause != "held"
    since = local_time(a.ts, tz, "%H:%M") if dated else "?"
    # Refused as forged (or unsigned): not the network's doing (check-the-cable would be the
    # wrong advice); unsigned: most likely that gate's release or key, not an impostor.
    word = {"forged": "peer_forged", "unsigned": "peer_unsigned", "held": "peer_held"}.get(
        a.cause, "peer"
    )
    time = local_time(a.ts, tz, "%m-%d %H:%M:%S") if dated else ""
    detail = i18n.t(
        lang, f"alarm.{word if word != 'peer' else 'peer_stale'}", gate=gate, since=since
    )
    return _device_card(a, lang, word, time, detail)


def feed_row(
    event: dict[str, Any],
    lang: str,
    tz: ZoneInfo,
    clear: frozenset[str],
    *,
    let_through: bool = True,
    today: date | None = None,
    fevers: Iterable[int] = (),
) -> dict[str, Any]:
    """One line of the live feed, masked for the viewer. ``let_through``: False for a pass
    the gate did not open for (a later row says so, ``not_opened:<seq>``): drawn as not let
    through. A row saying so names that pass (``not_opened``, and the words the stream's
    page draws it with once this row arrives, ``not_opened_text``). ``today``: the site's
    local day, a row of another day carries its date (``feed_time``); ``day`` and ``dated``
    let a page redraw it so once its day is over. ``fevers``: the rows guards' decisions
    are about that the gate judged a fever (``kiosk.queries.fevers_decided``)."""
    masked = privacy.mask_event(event, clear)
    person = decoded_person(masked)
    who_parts = [
        str(v)
        for v in (
            masked.get("holder") or person.get("name") or person.get("driver"),
            person.get("plate"),
            person.get("phone"),
            person.get("id_number"),
        )
        if v
    ]
    reasons = reason_codes(event.get("reasons"))
    decision = str(event.get("decision") or "")
    alarm = alarm_from_event(event)
    temp = event.get("temp_c")  # the kiosk's estimate, or a guard's hand-measured reading
    return {
        "seq": event.get("seq"),
        "time": feed_time(event, lang, tz, today),
        # Its local day and its time with the date: a page left open past midnight shows
        # the date of the rows it drew yesterday once the day moves on (guard.js).
        "day": feed_day(event, tz),
        "dated": event_time(event, lang, tz, FEED_DATED),
        "clock_unset": event.get("dating") == "unsynced",
        "decision": decision,
        "decision_text": i18n.t(lang, "decision.pass_not_opened")
        if decision == "pass" and not let_through
        else i18n.t(lang, f"decision.{decision}")
        if decision in ("pass", "deny", "manual_pass", "manual_deny")
        else decision,
        "ok": decision in ("pass", "manual_pass") and let_through,
        "not_opened": not_opened(event.get("flags") or ()),
        "not_opened_text": i18n.t(lang, "decision.pass_not_opened"),
        # A row whose stored fields cannot be read says so, never "ok" for reasons it lost.
        "reasons": i18n.t(lang, "row.unreadable", fields=", ".join(damaged))
        if (damaged := event.get("unreadable"))
        else i18n.reasons_text(lang, reasons),
        "temp": f"{float(temp):.1f}" if isinstance(temp, int | float) else "",
        # As the gate judged the reading when it decided (``fever`` among the row's reasons,
        # or a guard's decision carrying the reading of such a row: ``judged_fever``), never
        # by today's threshold: a 37.4 let through stays a pass once it is lowered.
        "fever": judged_fever(event, fevers),
        "direction": i18n.t(lang, f"dir.{event['direction']}")
        if event.get("direction") in ("in", "out")
        else "",
        "who": " · ".join(who_parts),
        "kind": str(event.get("kind") or "passage"),
        "kind_text": i18n.t(lang, f"kind.{event['kind']}")
        if event.get("kind") in ("registration", "vehicle")
        else "",
        "operator": event.get("operator") or "",
        "alarm": alarm.kind if alarm else None,
        **manual_fields(event, person, decision),
        "subject": subject_text(event, masked, who_parts, reasons, lang, tz)
        if event.get("kind", "passage") == "passage"
        else "",
        # A passage naming no household (no pass read): the manual form's dwelling is read
        # for it, and its confirmation line says the dwelling checked (whether, not which).
        "names_household": bool(event.get("household")),
    }


def manual_fields(event: dict[str, Any], person: dict[str, Any], decision: str) -> dict[str, Any]:
    """What a guard's decision adds to its row: the typed reason (masked for the viewer),
    whether the temperature was measured by hand, the passage it was about, and whether the
    guard kept a dwelling the gate did not know as typed (``unknown_dwelling``: its
    quarantine, quota and observation never checked; the row's badge says so)."""
    manual = decision in ("manual_pass", "manual_deny")
    overrides = [
        f.split(":", 1)[1] for f in event.get("flags") or [] if str(f).startswith("overrides:")
    ]
    return {
        "note": str(person.get("note") or "") if manual else "",
        "by_hand": manual
        and isinstance(event.get("temp_c"), int | float)
        and event.get("temp_object_c") is None,
        "about_seq": whole_number(overrides[0]) if overrides else None,
        "unknown_dwelling": manual and UNKNOWN_DWELLING in list(event.get("flags") or ()),
    }


def subject_text(
    event: dict[str, Any],
    masked: dict[str, Any],
    who: list[str],
    reasons: list[str],
    lang: str,
    tz: ZoneInfo,
) -> str:
    """A passage named for a guard about to decide on it: who, household, temperature,
    reason, date and time."""
    temp = event.get("temp_c")
    shown = [c for c in reasons if c not in ("ok", "guard_override")]
    parts = [
        who[0] if who else i18n.t(lang, "manual.unknown_person"),
        str(masked.get("household") or ""),
        f"{float(temp):.1f} °C" if isinstance(temp, int | float) else "",
        i18n.reasons_text(lang, shown)
        if shown
        else i18n.t(lang, f"decision.{event.get('decision')}"),
        local_time(event.get("dated_ts") or event.get("ts"), tz, "%m-%d %H:%M:%S"),
    ]
    return " · ".join(p for p in parts if p)


def decoded_person(masked: dict[str, Any]) -> dict[str, Any]:
    """An event's ``person`` as a dict (stored rows hold it as JSON text); {} without one."""
    return dict(person_of(masked))


def _person_of(event: dict[str, Any], clear: frozenset[str]) -> dict[str, Any]:
    return decoded_person(privacy.mask_event(event, clear))


def _temp(value: object) -> str:
    return f"{float(value):.1f} °C" if isinstance(value, int | float) else ""


def vehicle_text(event: dict[str, Any], clear: frozenset[str]) -> dict[str, Any]:
    """A vehicle registration's occupants with their temperatures, and its plate check
    (``resident``: a resident's car; ``unknown``: not on the resident-vehicle list)."""
    if event.get("kind") != "vehicle":
        return {}
    person = _person_of(event, clear)
    return {
        "occupants": _occupants_words(person),
        "plate_check": str(person.get("plate_check") or ""),
        "resident_of": str(person.get("resident_of") or ""),
    }


def visitor_row(event: dict[str, Any], clear: frozenset[str], tz: ZoneInfo) -> dict[str, Any]:
    """An earlier visitor found by name or phone suffix: what the form may be filled with
    (fields the viewer's role does not see are shown masked and copied on the server)."""
    person = _person_of(event, clear)
    return {
        "seq": event.get("seq"),
        "name": str(person.get("name") or ""),
        "phone": str(person.get("phone") or ""),
        "unit": str(person.get("unit") or ""),
        "reason": str(person.get("note") or ""),
        # When they came: dated (``kiosk.queries.dated``), as the feed shows it.
        "when": local_time(event.get("dated_ts") or event.get("ts"), tz, "%Y-%m-%d %H:%M"),
    }


def source_text(lang: str, source: object) -> str:
    """Where a list entry (or the lists) came from, in words: the console, a sheet imported,
    the office's bundle; a source no word is known for is shown as stored."""
    key = f"lists.source.{source}"
    return i18n.t(lang, key) if i18n.has(key) else str(source or "")


#: The free-text columns of the lists (notes, revocation reasons).
LIST_TEXT = ("note", "reason", "bundle_reason")


def lists_view(
    tables: dict[str, list[dict[str, Any]]], tz: ZoneInfo, lang: str, clear: frozenset[str]
) -> dict[str, Any]:
    """The three lists as stored (``kiosk.queries.list_rows``), newest first, with who changed
    each row (and from where, in ``lang``) and when, times local.

    Guards see households and names here: they must know whom they are editing. A phone or
    ID number typed into a note or a reason is masked unless ``clear`` lets the viewer read
    notes (``privacy.FREE_TEXT_CLEAR``), as in the feed."""
    scrub = not clear & privacy.FREE_TEXT_CLEAR
    out: dict[str, list[dict[str, Any]]] = {}
    for name, rows in tables.items():
        out[name] = []
        for row in rows:
            row["version"] = entry_version(name, row)  # as stored: the removal's ``seen``
            for key in LIST_TEXT:
                if scrub and isinstance(row.get(key), str):
                    row[key] = privacy.scrub_text(row[key])
            for key in ("created_at", "revoked_at", "updated_at"):
                if row.get(key):
                    row[key] = clock_time(row[key], lang, tz)
            if "source" in row:
                row["source"] = source_text(lang, row["source"])
            out[name].append(row)
    return out


def guard_decisions(report: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """The statistics page's card of the guards' decisions: the daily report's ``overrides``
    (each kind of decision, ``kiosk.links.guard_decision``, and ``overriding``, those that
    changed the kiosk's) in the day report's words (``ui.report_words``), as ``title`` and
    ``rows`` of (item, words, count); no rows for a report frozen before it was counted."""
    said = words(lang)
    section = report.get("overrides")
    counts = section.items() if isinstance(section, Mapping) else ()
    rows = [(item, item_words(said, "overrides", item), n) for item, n in counts]
    return {"title": category_words(said, "overrides"), "rows": rows}


def stats_cards(report: dict[str, Any]) -> dict[str, Any]:
    by = report.get("by_decision", {})
    passages = report.get("passages") or {}
    community = report.get("community") or {}
    cars = community.get("vehicles")
    cars = cars if isinstance(cars, dict) else {"registrations": cars}
    return {
        "registrations": community.get("registrations") or 0,
        "vehicles": cars.get("registrations") or 0,
        "unknown_plates": cars.get("unknown_plates"),
        # None in a report frozen before they were counted (2026-12-08).
        "unknown_dwellings": community.get("unknown_dwellings"),
        "quarantined": community.get("quarantined_households") or 0,
        # Passages by how they ended: a deny the guard overrode is one passage, not two (a
        # report frozen before passages were counted has only its decisions).
        "total": passages.get("total", report.get("events", 0)),
        "passes": passages.get("passed", by.get("pass", 0) + by.get("manual_pass", 0)),
        "denies": passages.get("denied", by.get("deny", 0) + by.get("manual_deny", 0)),
        "manual": by.get("manual_pass", 0) + by.get("manual_deny", 0),
        # Feverish people (a car's feverish occupants each); a report frozen before they
        # were counted has only its alarms.
        "fevers": _fever_people(report.get("fever_alarms") or {}),
    }


def fever_times(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The statistics page's fever alarm times, (local time, UTC offset): the offset only on a
    day whose clock changes (the report's ``hours`` have two offsets), where 02:30 may be
    either of two instants an hour apart; elsewhere the time as the guard knows it. A report
    frozen before the alarms' ``at`` has its local times only."""
    alarms = report.get("fever_alarms") or {}
    at, hours = alarms.get("at"), report.get("hours")
    changes = isinstance(hours, list) and len({x["start"][-6:] for x in hours}) > 1
    if not changes or not isinstance(at, list):
        return [(str(t), "") for t in alarms.get("times") or []]
    return [
        (when.strftime("%H:%M:%S"), offset_text(when))
        for when in (datetime.fromisoformat(a) for a in at)
    ]


def _fever_people(alarms: Mapping[str, Any]) -> int:
    people = alarms.get("people")
    return people if isinstance(people, int) else int(alarms.get("count") or 0)


def _hour_bars(report: Mapping[str, Any]) -> list[charts.Bar]:
    """Passages, each in the hour it came to the gate: the day's real hours (``hours``: the
    one the autumn change repeats twice, each named with its UTC offset; the one the spring
    change skips not at all); a report frozen before them has 24 clock hours (its events by
    hour if frozen before passages were counted)."""
    hours = report.get("hours")
    if not isinstance(hours, list) or not hours:
        counts = (report.get("passages") or {}).get("by_hour") or report.get("by_hour")
        return [charts.Bar(f"{h:02d}", n, "pass") for h, n in enumerate(counts or [0] * 24)]
    clock_hours = [x["hour"] for x in hours]
    bars = []
    for x in hours:
        label = f"{x['hour']:02d}"
        if clock_hours.count(x["hour"]) > 1:  # the hour the autumn change repeats
            label += " " + offset_text(datetime.fromisoformat(x["start"]))
        bars.append(charts.Bar(label, x["passages"], "pass"))
    return bars


def stats_charts(report: dict[str, Any], lang: str, fever_c: float) -> dict[str, Any]:
    """The statistics page's SVG charts, drawn from the daily report."""
    _ = i18n.translator(lang)
    per_hour = charts.bar_chart(
        _hour_bars(report),
        title=_("stats.per_hour"),
        columns=(_("stats.col_hour"), _("stats.col_passages")),
        empty_text=_("stats.no_data"),
        label_every=3,
        phone=True,
    )
    # Denies only: "ok" and a guard's override are not reasons anybody was stopped.
    reasons = [
        (code, n)
        for code, n in report.get("by_reason", {}).items()
        if code not in ("ok", "guard_override") and n
    ]
    reasons.sort(key=lambda kv: -kv[1])
    # Every reason, one row each (no cap: the day's one quarantine deny is shown too).
    by_reason = charts.hbar_chart(
        [charts.Bar(i18n.reason_text(lang, c), n, "deny") for c, n in reasons],
        title=_("stats.by_reason"),
        columns=(_("stats.col_reason"), _("stats.col_denies")),
        empty_text=_("stats.no_data"),
        phone=True,
    )
    bins = report.get("temperature_histogram") or []
    hist_bars = []
    for b in bins:
        lo, hi = b.get("from_c"), b.get("to_c")
        label = f"<{hi:.1f}" if lo is None else (f"≥{lo:.1f}" if hi is None else f"{lo:.1f}")
        tone = (
            "fever"
            if lo is not None and lo + 1e-9 >= fever_c - 0.5 and (hi is None or hi > fever_c)
            else "neutral"
        )
        hist_bars.append(charts.Bar(label, b.get("count", 0), tone))
    temp_hist = charts.bar_chart(
        hist_bars,
        title=_("stats.temp_hist"),
        columns=(_("stats.col_temp"), _("stats.col_people")),
        empty_text=_("stats.no_data"),
        label_every=2 if len(hist_bars) > 10 else 1,
        phone=True,
    )
    exits = report.get("exits_per_household") or {}
    histogram = exits.get("histogram") or {}
    quota = exits.get("quota_exits") if exits.get("quota_enabled") else None
    top = max([int(k) for k in histogram] + [quota or 0, 1])
    exit_bars = [
        charts.Bar(
            str(k), histogram.get(str(k), 0), "deny" if quota is not None and k > quota else "pass"
        )
        for k in range(1, top + 1)
    ]
    exits_chart = charts.bar_chart(
        exit_bars,
        title=_("stats.exits"),
        columns=(_("stats.col_exits"), _("stats.col_households")),
        empty_text=_("stats.no_data"),
        height=220,
        phone=True,
    )
    return {
        "per_hour": per_hour,
        "by_reason": by_reason,
        "temp_hist": temp_hist,
        "exits": exits_chart,
        "ratios": charts.ratio_css(per_hour, by_reason, temp_hist, exits_chart),
        "quota": quota,
        "over_quota": exits.get("over_quota_households", 0),
        "households": exits.get("households", 0),
        # Outings whose households were purged before the day was kept: not 0, unknown (their
        # count kept since 2026-12-07); or, the day's households known, an outing in the
        # quota's period before the day that may have been one of theirs: over it unknown.
        "unknown": "households" in exits and exits["households"] is None,
        "outings": exits.get("exits"),
        "over_unknown": "over_quota_households" in exits and exits["over_quota_households"] is None,
    }


#: The export's columns as the office files them: (i18n key of the header, how to get the
#: value). No internal columns (hash, latency, sensor readings, chain fields). Columns are
#: only ever added at the end (an office's sheet reads them by place).
EXPORT_COLUMNS = (
    "export.time",
    "export.gate",
    "export.direction",
    "export.kind",
    "export.decision",
    "export.reasons",
    "export.temp",
    "export.household",
    "export.name",
    "export.phone",
    "export.plate",
    "export.occupants",
    "export.note",
    "export.operator",
    "export.pass_id",
    "export.utc_offset",
    "export.unreadable",  # the row's fields that cannot be read (a damaged row), else empty
)


def _occupants_words(person: dict[str, Any]) -> str:
    people = []
    if person.get("driver"):
        people.append(f"{person['driver']} {_temp(person.get('driver_temp_c'))}".strip())
    for p in person.get("passengers") or []:
        if isinstance(p, dict):
            people.append(f"{p.get('name') or '—'} {_temp(p.get('temp_c'))}".strip())
    return "、".join(people)


def export_row(row: dict[str, Any], lang: str, tz: ZoneInfo, clear: frozenset[str]) -> list[Any]:
    """One event as the office's table has it: local time, words, masked for the viewer."""
    masked = privacy.mask_event(row, clear)
    person = decoded_person(masked)
    decision = str(row.get("decision") or "")
    kind = str(row.get("kind") or "passage")
    temp = row.get("temp_c")
    return [
        local_time(row.get("ts"), tz, "%Y-%m-%d %H:%M:%S"),
        row.get("kiosk_id") or "",
        i18n.t(lang, f"dir.{row['direction']}") if row.get("direction") in ("in", "out") else "",
        i18n.t(lang, f"export.kind.{kind}") if i18n.has(f"export.kind.{kind}") else kind,
        i18n.t(lang, f"decision.{decision}") if i18n.has(f"decision.{decision}") else decision,
        i18n.reasons_text(lang, reason_codes(row.get("reasons"))),
        round(float(temp), 1) if isinstance(temp, int | float) else None,
        masked.get("household") or person.get("unit") or person.get("resident_of") or "",
        masked.get("holder") or person.get("name") or "",
        person.get("phone") or "",
        person.get("plate") or "",
        _occupants_words(person),
        person.get("note") or "",
        row.get("operator") or "",
        masked.get("pass_id") or "",
        utc_offset(row.get("ts"), tz),
        ", ".join(damaged_fields(row)),
    ]


def report_summary(report: dict[str, Any], lang: str) -> list[tuple[str, Any]]:
    """The day's figures for the export's first sheet: (label, number), reasons in words."""
    cards = stats_cards(report)
    rows: list[tuple[str, Any]] = [(i18n.t(lang, "stats.day"), str(report.get("day") or ""))]
    if (as_of := as_of_line(report, lang)) is not None:  # a day not over: its figures so far
        rows.append(as_of)
    for key, label in (
        ("total", "stats.total"),
        ("passes", "stats.passes"),
        ("denies", "stats.denies"),
        ("manual", "stats.manual"),
        ("fevers", "stats.fevers"),
        ("registrations", "stats.registrations"),
        ("vehicles", "stats.vehicles"),
        ("quarantined", "stats.quarantined"),
    ):
        rows.append((i18n.t(lang, label), int(cards[key])))
    for key, label in (
        ("unknown_plates", "stats.unknown_plates"),
        ("unknown_dwellings", "stats.unknown_dwellings"),
    ):
        if cards[key] is not None:
            rows.append((i18n.t(lang, label), int(cards[key])))
    for code, n in sorted(report.get("by_reason", {}).items(), key=lambda kv: -kv[1]):
        if code not in ("ok", "guard_override") and n:
            rows.append((i18n.t(lang, "export.reason_row", r=i18n.reason_text(lang, code)), n))
    return rows + _exits_rows(report, lang) + _alone_rows(report, lang)


def _exits_rows(report: dict[str, Any], lang: str) -> list[tuple[str, Any]]:
    """The outings' two headline figures, as the statistics page says them: the households
    that went out and those over the quota; one the report holds as ``null`` (purged before
    the day was kept) in words, never 0. No rows without them (a report frozen before)."""
    exits = report.get("exits_per_household")
    if not isinstance(exits, dict):
        return []
    return [
        (i18n.t(lang, label), i18n.t(lang, "export.unknown") if n is None else int(n))
        for label, n in (
            ("export.households_out", exits.get("households")),
            ("export.over_quota", exits.get("over_quota_households")),
        )
    ]


def _alone_rows(report: dict[str, Any], lang: str) -> list[tuple[str, Any]]:
    """What the kiosk decided alone (the passages outside the staffed hours, with them on)
    and when it was down (restarts, device-fault spells): ``kiosk.stats.daily_report``."""
    rows: list[tuple[str, Any]] = []
    staffing = report.get("staffing") or {}
    if staffing.get("hours"):
        staffed = staffing["staffed"]["passages"]["total"]
        rows.append((i18n.t(lang, "export.staffed_row", hours=staffing["hours"]), staffed))
        rows.append(
            (i18n.t(lang, "export.unstaffed_row"), staffing["unstaffed"]["passages"]["total"])
        )
    down = report.get("downtime") or {}
    if "restarts_total" in down:
        rows.append((i18n.t(lang, "export.restarts"), down["restarts_total"]))
        rows.append((i18n.t(lang, "export.restart_minutes"), down["restart_minutes"]))
        rows.append((i18n.t(lang, "export.fault_spells"), down["faults_total"]))
    for spell in down.get("power") or []:  # the Pi's own: "Pi under-voltage from 09:12", 3.0
        what = i18n.t(lang, f"export.pi_{spell['condition']}")
        since = spell["from"]  # None: a boot whose clock was never set (docs/operations.md)
        label = (
            i18n.t(lang, "export.pi_spell_unset", what=what)
            if since is None
            else i18n.t(lang, "export.pi_spell", what=what, at=str(since)[11:16])
        )
        minutes = spell.get("minutes")
        rows.append((label, i18n.t(lang, "export.pi_ongoing") if minutes is None else minutes))
    return rows


def export_table(
    rows: list[dict[str, Any]], lang: str, tz: ZoneInfo, clear: frozenset[str]
) -> tuple[list[str], list[list[Any]]]:
    """The day's events as the office files them: headers in the viewer's language, one
    row per event in ``seq`` order."""
    headers = [i18n.t(lang, key) for key in EXPORT_COLUMNS]
    return headers, [export_row(r, lang, tz, clear) for r in rows]


def events_csv(headers: list[str], table: list[list[Any]]) -> str:
    """The export table as CSV by the kiosk's one writer (``write_csv``: a number's "-" is its
    sign, text never runs as a formula in a spreadsheet), UTF-8 with a BOM (Excel on a
    Chinese Windows needs it)."""
    return "\ufeff" + write_csv([headers, *table])


def events_xlsx(
    headers: list[str], table: list[list[Any]], summary: list[tuple[str, Any]], lang: str
) -> bytes:
    """The export as an Excel workbook by the kiosk's one writer (``write_xlsx``): the day's
    figures, then the events (numbers as numbers, text never read as a formula)."""
    figures = i18n.t(lang, "export.sheet_summary")
    events = i18n.t(lang, "export.sheet_events")
    return write_xlsx(
        {figures: [list(item) for item in summary], events: [headers, *table]},
        widths={figures: (28,), events: (20, 12, 6, 8, 10, 24, 10)},
        frozen=(events,),
    )


def health_rows(report: dict[str, Any], lang: str, tz: ZoneInfo) -> list[dict[str, Any]]:
    """Thermometer, readers, gate, store, clock, calibration, last event and disk space, in
    words, from a ``core.health()`` report plus ``last_event`` (the newest event's timestamp,
    or None)."""
    rows = []

    def add(label: str, state: str, detail: str = "") -> None:
        known = state in ("ok", "degraded", "fault", "absent")
        rows.append(
            {
                "device": label,
                "state": state if known else "unknown",
                "state_text": i18n.t(lang, f"health.{state if known else 'unknown'}"),
                "detail": detail,
            }
        )

    entries = device_entries(report)
    present = {key for key, _entry in entries}
    for key in ("thermometer", "gate", "store"):
        if key not in present:
            add(device_label(lang, key), "unknown")
    for key, entry in entries:
        detail = detail_text(lang, str(entry.get("detail") or ""))
        add(device_label(lang, key), str(entry.get("state")), detail)
    synced = (report.get("clock") or {}).get("synced")
    if synced is not None:
        add(
            device_label(lang, "clock"),
            "ok" if synced else "degraded",
            "" if synced else i18n.t(lang, "banner.clock_unsynced"),
        )
    calibration = report.get("calibration") or {}
    if "fitted" in calibration:
        add(device_label(lang, "calibration"), *calibration_words(calibration, lang, tz))
    trust_problem = (report.get("trust") or {}).get("problem")
    if trust_problem:
        add(
            device_label(lang, "trust"),
            "degraded",
            i18n.t(lang, "health.trust_problem", problem=str(trust_problem)),
        )
    volume = report.get("data_volume") or {}
    if "fs_type" in volume:
        add(device_label(lang, "data_volume"), *volume_words(volume, lang))
    cert = report.get("tls_certificate") or {}
    if "state" in cert:
        add(device_label(lang, "tls_certificate"), *certificate_words(cert, lang, tz))
    pi = report.get("pi_power") or {}
    if "state" in pi:
        add(device_label(lang, "pi_power"), *pi_power_words(pi, lang, tz))
    for peer in report.get("peers") or []:
        add(*peer_words(peer, lang, tz))
    last = report.get("last_event")
    add(
        device_label(lang, "last_event"),
        "ok" if last else "unknown",
        local_time(str(last), tz, "%Y-%m-%d %H:%M:%S") if last else "",
    )
    free = report.get("disk_free_mb")
    if free is not None:
        add(device_label(lang, "disk"), "ok", i18n.t(lang, "health.free_mb", mb=int(free)))
    return rows


def calibration_words(calibration: dict[str, Any], lang: str, tz: ZoneInfo) -> tuple[str, str]:
    """The calibration's row (``report["calibration"]``): the site fit in force and since
    when, or ``degraded`` when the default model is; and when the file cannot be read (a card
    that damaged it), ``degraded`` saying so and which model the kiosk measures with: the fit
    it read last, or the default one (never "not fitted" alone for a site that was fitted)."""
    fitted_at = calibration.get("fitted_at")
    day = clock_time(str(fitted_at), lang, tz, "%Y-%m-%d") if fitted_at else ""
    problem = calibration.get("problem")
    if problem:
        in_use = "health.calibration_kept" if fitted_at else "health.calibration_default"
        return "degraded", i18n.t(
            lang,
            "health.calibration_unreadable",
            problem=str(problem),
            in_use=i18n.t(lang, in_use, day=day),
            reset="kiosk calibrate reset --yes",
        )
    if fitted_at:
        return "ok" if calibration["fitted"] else "degraded", i18n.t(
            lang, "health.fitted_on", day=day
        )
    return "ok" if calibration["fitted"] else "degraded", i18n.t(lang, "health.uncalibrated")


def peer_words(peer: dict[str, Any], lang: str, tz: ZoneInfo) -> tuple[str, str, str]:
    """Another gate of the compound's row (``report["peers"]``): ``ok`` and when it was last
    heard, or ``closed`` since when (it said so as it stopped: no outings there to know), or
    ``degraded`` and since when its outings are unknown here (the quota and the
    anti-passback hold at this gate only), or that answers not signed by its key were refused
    (``forged``), or answers with no signature at all (``unsigned``), or that passages of it are
    left with it while this gate's clock is not set (``held``); ``degraded`` too, and
    by how much and what to do, when its clock is off this gate's beyond
    ``kiosk.peers.MAX_SKEW``, or when rows of it were refused (``rows_refused``: a household
    or pass id with a character nobody sees, an outing not counted here), or quarantine
    entries of it were clamped (``quarantine_refused``: a day outside the days a guard may
    type, held to them and in force here)."""
    label = i18n.t(lang, "device.peer", id=str(peer.get("kiosk_id")))
    if peer.get("state") == "ok":
        heard = local_time(str(peer.get("last_success")), tz, "%m-%d %H:%M:%S")
        rows = int(peer.get("rows_held") or 0)
        state, words = "ok", i18n.t(lang, "health.peer_ok", time=heard, rows=rows)
    elif peer.get("state") == "starting":
        state, words = "ok", i18n.t(lang, "health.peer_starting")
    elif peer.get("state") == "closed":
        since = local_time(str(peer.get("closed_since")), tz, "%H:%M")
        state, words = "ok", i18n.t(lang, "health.peer_closed", since=since)
    elif peer.get("state") == "forged":
        since = local_time(str(peer.get("stale_since")), tz, "%m-%d %H:%M")
        n = int(peer.get("forged") or 0)
        state, words = "degraded", i18n.t(lang, "health.peer_forged", since=since, n=n)
    elif peer.get("state") == "unsigned":
        since = local_time(str(peer.get("stale_since")), tz, "%m-%d %H:%M")
        n = int(peer.get("unsigned") or 0)
        state, words = "degraded", i18n.t(lang, "health.peer_unsigned", since=since, n=n)
    elif peer.get("state") == "held":
        n = int(peer.get("held_back") or 0)
        state, words = "degraded", i18n.t(lang, "health.peer_held", n=n)
    else:
        since = local_time(str(peer.get("stale_since")), tz, "%m-%d %H:%M")
        state, words = "degraded", i18n.t(lang, "health.peer_stale", since=since)
    skew = peer.get("clock_skew_s")
    if peer.get("clock_skewed") and isinstance(skew, int):
        minutes = round(abs(skew) / 60)
        amount = i18n.t(lang, "health.skew_amount", h=minutes // 60, m=minutes % 60)
        way = i18n.t(lang, "health.skew_behind" if skew < 0 else "health.skew_ahead")
        words = f"{words}; {i18n.t(lang, 'health.peer_skew', amount=amount, way=way)}"
        state = "degraded"
    for field, key in (("rows_refused", "peer_refused"), ("quarantine_refused", "peer_days")):
        refused = peer.get(field)
        if isinstance(refused, int) and refused > 0:
            words = f"{words}; {i18n.t(lang, f'health.{key}', n=refused)}"
            state = "degraded"
    return label, state, words


def certificate_words(cert: dict[str, Any], lang: str, tz: ZoneInfo) -> tuple[str, str]:
    """The API's TLS certificate's row (``kiosk.tlscert``): ``ok`` and until when; a warning
    when it runs out within ``WARN_DAYS`` days or is not valid yet; ``fault`` once it ran out
    (the office's pull is refused)."""
    until = local_time(str(cert.get("not_after")), tz, "%Y-%m-%d")
    state = str(cert.get("state"))
    if state == "ok":
        return "ok", i18n.t(lang, "health.cert_until", day=until)
    if state == "expires_soon":
        return "degraded", i18n.t(lang, "health.cert_soon", n=cert.get("days_left"), day=until)
    if state == "not_yet_valid":
        since = local_time(str(cert.get("not_before")), tz, "%Y-%m-%d %H:%M")
        return "degraded", i18n.t(lang, "health.cert_not_yet", day=since)
    return "fault", i18n.t(lang, "health.cert_expired", day=until)


def volume_words(volume: dict[str, Any], lang: str) -> tuple[str, str]:
    """The data dir's row: ``ok`` and its file system, or ``degraded`` and what a data dir in
    RAM means for the guard (``health.volatile``)."""
    fs = str(volume.get("fs_type"))
    if volume.get("upper_type"):
        fs = f"{fs} ({volume['upper_type']})"
    if volume.get("volatile"):
        return "degraded", i18n.t(lang, "health.volatile", fs=fs)
    return "ok", fs


def card_svg(payload: str, pass_: Pass, lang: str, site_name: str, tz: ZoneInfo) -> str:
    """The printable card (``kiosk.cards.render_card``, both languages) as inline SVG."""
    from kiosk.cards import render_card

    svg = render_card(pass_, payload, "svg", "both", site_name=site_name, tz=tz).decode("utf-8")
    return svg[svg.index("<svg") :]
