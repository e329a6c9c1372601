"""The guard's alarms: which events and bus messages raise one, and which are still open.

An alarm is *derived*, never stored on its own: a denied event with an alarming reason (fever,
quarantine, a forged pass, a device fault) raises one keyed by its ``seq``; a bus ``alarm``
message raises one (a device's is keyed by the device, so a fault and its standing health entry
make one card); a device in fault in the health report stands as an alarm while the fault
lasts. Acknowledgements are audit rows (``alarm_ack``), so after a restart the desk reads the
last ``lookback_h`` hours of events and acknowledgements back and shows the same open alarms.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from kiosk import queries
from kiosk.clock import Clock

#: Reason codes of a denied event that raise an alarm, by alarm kind (checked in this order).
ALARM_REASONS = {
    "fever": "fever",
    "quarantined": "quarantine",
    "pass_bad_signature": "forged",
    "pass_unknown_key": "forged",
    "sensor_fault": "device",
    "reader_fault": "device",
    "store_fault": "device",
}
#: Bus alarm names (``kiosk.policy.ALARMS`` and the engine's device alarms) by alarm kind.
ALARM_KINDS = {
    "fever": "fever",
    "quarantine_breach": "quarantine",
    "quarantine_return": "quarantine",
    "quarantined": "quarantine",
    "forged_pass": "forged",
    "pass_bad_signature": "forged",
    "pass_unknown_key": "forged",
    "device_fault": "device",
    "sensor_fault": "device",
    "reader_fault": "device",
    "store_fault": "device",
    "gate_fault": "device",
    "gate_not_locked": "device",
    "guard_needed": "guard",
}
#: Device alarms of the engine, by the device they are about.
ALARM_DEVICES = {
    "sensor_fault": "thermometer",
    "reader_fault": "reader",
    "gate_fault": "gate",
    "gate_not_locked": "gate",
    "store_fault": "store",
}
#: The audit action of an acknowledgement (read back at start).
ACK_ACTION = "alarm_ack"
#: Events scanned per read while catching up.
SCAN_BATCH = 500


@dataclass
class Alarm:
    key: str
    kind: str  # fever | quarantine | forged | device | guard | other
    ts: str
    seq: int | None = None
    detail: str = ""
    acked_by: str | None = None
    acked_at: str | None = None


@dataclass
class AlarmBoard:
    """Open and acknowledged alarms, keyed; keeps the latest ``keep`` (acknowledged ones are
    dropped first). ``acked_before`` holds acknowledgements read back from the audit log:
    key -> (who, when)."""

    keep: int = 200
    alarms: dict[str, Alarm] = field(default_factory=dict)
    scanned_seq: int = -1  # -1: not scanned yet
    acked_before: dict[str, tuple[str, str]] = field(default_factory=dict)

    def add(self, alarm: Alarm) -> bool:
        if alarm.key in self.alarms:
            return False
        if alarm.key in self.acked_before:
            alarm.acked_by, alarm.acked_at = self.acked_before.pop(alarm.key)
        self.alarms[alarm.key] = alarm
        if len(self.alarms) > self.keep:
            acked = [k for k, a in self.alarms.items() if a.acked_by]
            for k in (acked or list(self.alarms))[: len(self.alarms) - self.keep]:
                del self.alarms[k]
        return True

    def open(self) -> list[Alarm]:
        return sorted(
            (a for a in self.alarms.values() if not a.acked_by), key=lambda a: a.ts, reverse=True
        )

    def forget_cleared_devices(self, standing: set[str]) -> None:
        """Drop acknowledged device alarms whose fault has cleared, so a new fault alarms
        again. An unacknowledged one stays: a fault that came and went is still news."""
        for key in [
            k
            for k, a in self.alarms.items()
            if k.startswith("device:") and k not in standing and a.acked_by
        ]:
            del self.alarms[key]

    def ack(self, key: str, who: str, when: str) -> Alarm | None:
        alarm = self.alarms.get(key)
        if alarm is None or alarm.acked_by:
            return None
        alarm.acked_by, alarm.acked_at = who, when
        return alarm


def reason_codes(value: Any) -> list[str]:
    """An event's ``reasons`` as a list of codes, whether decoded or stored as JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    return [str(v) for v in value or []]


def alarm_from_event(event: Mapping[str, Any]) -> Alarm | None:
    """The alarm an event raises (fever, quarantine breach, forged pass, device), if any."""
    if event.get("decision") not in ("deny", "manual_deny"):
        return None
    reasons = reason_codes(event.get("reasons"))
    for code, kind in ALARM_REASONS.items():
        if code in reasons:
            seq = event.get("seq")
            return Alarm(
                key=f"event:{seq}",
                kind=kind,
                ts=str(event.get("ts") or ""),
                seq=int(seq) if seq is not None else None,
                detail=code,
            )
    return None


def alarm_from_message(message: Mapping[str, Any], now: str) -> Alarm | None:
    """An alarm from a bus ``alarm`` message; None for a ``cleared`` notice (the card stays
    until a guard acknowledges it)."""
    if message.get("state") == "cleared":
        return None
    raw = str(message.get("alarm") or "other")
    kind = ALARM_KINDS.get(raw, "other")
    seq = message.get("seq")
    if seq is not None:
        return Alarm(key=f"event:{seq}", kind=kind, ts=now, seq=int(seq), detail=raw)
    if raw in ALARM_DEVICES:
        # Same key as the standing alarm from the health report: one card per device.
        device = ALARM_DEVICES[raw]
        return Alarm(key=f"device:{device}", kind="device", ts=now, detail=device)
    return Alarm(key=f"bus:{raw}:{message.get('mono_ns') or now}", kind=kind, ts=now, detail=raw)


def device_alarms(faults: Mapping[str, str]) -> list[Alarm]:
    """A standing alarm for each device in fault (``{device: state}``), while it lasts."""
    return [
        Alarm(key=f"device:{device}", kind="device", ts="", detail=device)
        for device, state in faults.items()
        if state == "fault"
    ]


class AlarmSource(queries.Readable, Protocol):
    """The event log as the desk reads it."""

    @property
    def last_seq(self) -> int: ...

    def events(self, after_seq: int = 0, limit: int = 100) -> list[dict[str, Any]]: ...


class AlarmDesk:
    """The alarms of one console process over the event log, safe to share between the
    loop and the threads pages and streams run in."""

    def __init__(
        self, log: AlarmSource, clock: Clock, *, lookback_h: float = 12, keep: int = 200
    ) -> None:
        self._log = log
        self._clock = clock
        self._lookback = timedelta(hours=lookback_h)
        self._lock = threading.Lock()
        self.board = AlarmBoard(keep=keep)

    def _now(self) -> str:
        return self._clock.now().isoformat()

    def _scan(self) -> None:
        board = self.board
        if board.scanned_seq < 0:
            # First look after start: alarms of the last hours, not the whole history.
            since = (self._clock.now() - self._lookback).isoformat()[:19]
            first = queries.first_seq_since(self._log, since)
            board.scanned_seq = (first - 1) if first is not None else self._log.last_seq
            # Acknowledgements survive a restart: they are in the audit log.
            for note in queries.audits_since(self._log, ACK_ACTION, since):
                key = note.detail.get("key")
                if isinstance(key, str) and key.startswith("event:"):
                    board.acked_before[key] = (note.actor, note.ts)
        while True:
            batch = self._log.events(after_seq=board.scanned_seq, limit=SCAN_BATCH)
            for event in batch:
                board.scanned_seq = max(board.scanned_seq, int(event["seq"]))
                alarm = alarm_from_event(event)
                if alarm is not None:
                    board.add(alarm)
            if len(batch) < SCAN_BATCH:
                break

    def open_alarms(self, standing: list[Alarm]) -> list[Alarm]:
        """Standing device alarms not on the board yet, then the board's open ones."""
        with self._lock:
            self._scan()
            self.board.forget_cleared_devices({a.key for a in standing})
            return [*(a for a in standing if a.key not in self.board.alarms), *self.board.open()]

    def note_message(self, message: Mapping[str, Any]) -> bool:
        """Take a bus ``alarm`` message; True when it raised a new alarm."""
        alarm = alarm_from_message(message, self._now())
        with self._lock:
            return alarm is not None and self.board.add(alarm)

    def ack(self, key: str, who: str, standing: list[Alarm]) -> Alarm | None:
        """Acknowledge the open alarm ``key``; None when there is no such open alarm. The
        caller audits it (action ``alarm_ack`` with the key) so it stays acknowledged."""
        with self._lock:
            self._scan()
            if key.startswith("device:") and key not in self.board.alarms:
                for alarm in standing:
                    self.board.add(alarm)
            return self.board.ack(key, who, self._now())
