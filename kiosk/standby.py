"""Standing by: a kiosk whose event log the SD card keeps from opening at start.

A card mounted read-only after a failed check, a damaged last page of ``kiosk.db``, a full
card or a file left to another user made ``kiosk run`` exit 1 at start, and systemd started
it again every 3 s for ever (``Restart=on-failure``, ``StartLimitIntervalSec=0``): dark
screens, the devices reopened every 3 s, and the reason only in the journal. Nothing can be
recorded, so nothing may pass by itself (``policy.on_store_fault``: nobody passes
unrecorded); the daemon instead stands by, the gate never commanded (its relay stays
locked), serving the kiosk screen ("see the guard"), the guard console and health with the
reason and the fix, and tries the log again until it opens, then starts as ever
(``checkpoint.standby``, docs/operations.md).

``card_failure`` tells these from a start failure the card does not cause (a config naming
another kiosk's log, a schema of a newer program), which still ends the process.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kiosk.cardfault import kind_of
from kiosk.privacy import mask_event
from kiosk.store import EventDraft, StoreFault, error_name, format_ts

#: What the card does, by SQLite's errors a write does not meet (a prefix, as
#: ``kiosk.cardfault.SQLITE_KINDS``, whose ``io`` is ``damaged`` here).
_SQLITE_KINDS = {
    "SQLITE_CORRUPT": "damaged",
    "SQLITE_NOTADB": "damaged",
    "SQLITE_CANTOPEN": "unwritable",
}

#: Every kind, for the faces' words (``standby.fix.<kind>``).
KINDS = ("read_only", "damaged", "full", "unwritable")


def card_failure(exc: BaseException) -> str | None:
    """The kind of card failure that kept the event log from opening (one of ``KINDS``), or
    None when ``exc`` is not the card's: ``read_only`` (the file system refuses writes),
    ``damaged`` (a page or the file cannot be read back), ``full``, ``unwritable`` (a file of
    the data dir another user owns)."""
    if isinstance(exc, StoreFault):
        detail = str(exc)
        if "the file system is read-only" in detail:
            return "read_only"
        if "is not writable by this user" in detail:
            return "unwritable"
        cause = exc.__cause__
        return None if cause is None else card_failure(cause)
    if isinstance(exc, (OSError, sqlite3.Error)) and (kind := kind_of(exc)) is not None:
        return "damaged" if kind == "io" else kind
    if isinstance(exc, sqlite3.Error):
        name = error_name(exc)
        return next((k for e, k in _SQLITE_KINDS.items() if name.startswith(e)), None)
    return None


#: What failed, as the journal's standby lines, public health and the faces say it: the event
#: log did not open, or it opened and the start met the card's fault later (``Standby.opened``).
CANNOT_OPEN = "cannot open the event log"
FAILED_START = "the start met the card's fault after the event log opened"


@dataclass
class Standby:
    """Why the kiosk stands by, since when (UTC ISO), and how often it tried the log.
    ``opened``: the log had opened, and the start met the card's fault after it."""

    reason: str
    kind: str
    since: str
    tries: int = 1
    opened: bool = False

    def what_failed(self) -> str:
        """What failed, in the journal's words: ``FAILED_START`` or ``CANNOT_OPEN``."""
        return FAILED_START if self.opened else CANNOT_OPEN

    def failed_again(self, reason: str, kind: str, *, opened: bool = False) -> bool:
        """One more try failed; True when it failed otherwise than the last (worth a line).
        ``opened``: this try's log had opened and the start met the fault after it; a try
        whose log did not open says so again (health, the console), whatever the last said."""
        self.tries += 1
        changed = (reason, kind, opened) != (self.reason, self.kind, self.opened)
        self.reason, self.kind, self.opened = reason, kind, opened
        return changed

    def health(self, kiosk_id: str, version: str, *, whole: bool = True) -> dict[str, Any]:
        """The ``/api/v1/health`` report while standing by: not deciding, the store in fault.
        ``whole``: with the reason as the journal has it (the data dir's paths, its owners'
        uids, SQLite's words), for this host; else the kind of fault in its place, as public
        health never says more of a running kiosk's store than the error's kind."""
        said = {"kind": self.kind, "since": self.since, "tries": self.tries}
        report: dict[str, Any] = {
            "deciding": False,
            "state": "standby",
            "standby": {"reason": self.reason, **said} if whole else said,
            "devices": {"store": {"state": "fault", "detail": self.detail(whole)}},
            "kiosk_id": kiosk_id,
            "version": version,
        }
        if not whole:
            report["withheld"] = ["standby.reason"]
        return report

    def detail(self, whole: bool) -> str:
        """Why nothing is decided: the reason (``whole``), else what failed and its kind."""
        if whole:
            return self.reason
        what = FAILED_START if self.opened else "the event log cannot be opened"
        return f"{what} ({self.kind})"


#: The file a stop keeps the decisions the log could not take in: ``held-events-<UTC>.ndjson``.
HELD_PREFIX = "held-events-"


def held_record(draft: EventDraft, kiosk_id: str, boot_id: str, now: datetime) -> dict[str, Any]:
    """A decision the log could not take, as the office's export masks it: what was decided,
    why, which way, the reading and when (the engine's clock, else ``now``)."""
    decided = draft.decided
    record = {
        "ts": format_ts(decided.wall if decided else now),
        "mono_ns": decided.mono_ns if decided else None,
        "clock_synced": decided.synced if decided else None,
        "boot_id": boot_id,
        "kiosk_id": kiosk_id,
        "direction": draft.direction,
        "decision": draft.decision,
        "reasons": list(draft.reasons),
        "kind": draft.kind,
        "flags": list(draft.flags),
        "temp_c": draft.temp_c,
        "temp_object_c": draft.temp_object_c,
        "temp_ambient_c": draft.temp_ambient_c,
        "operator": draft.operator,
        "pass_id": draft.pass_id,
        "household": draft.household,
        "holder": draft.holder,
        "person": dict(draft.person) if draft.person is not None else None,
    }
    return mask_event(record)


def keep_held(
    drafts: Sequence[EventDraft], directory: Path, kiosk_id: str, boot_id: str, now: datetime
) -> Path:
    """Write ``drafts`` (the engine's backlog at stop) to a new ``HELD_PREFIX`` file in
    ``directory``, one masked record a line, mode 0600, synced; ``OSError`` when the card
    takes no file either (read-only, full)."""
    stamp = now.strftime("%Y%m%dT%H%M%S.%fZ")
    path = directory / f"{HELD_PREFIX}{stamp}.ndjson"
    lines = "".join(
        json.dumps(held_record(d, kiosk_id, boot_id, now), ensure_ascii=False) + "\n"
        for d in drafts
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(lines)
            out.flush()
            os.fsync(out.fileno())
    except OSError:
        path.unlink(missing_ok=True)
        raise
    return path
