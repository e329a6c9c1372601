"""The decisions a stop kept beside the log under retention (docs/privacy.md).

A stop while the card refused the log's writes keeps the engine's backlog in
``held-events-<UTC>.ndjson`` in the data dir (``kiosk.standby.keep_held``): masked (a
name's initial, the last two characters of a pass id or household, a phone's last four
digits), with a temperature beside them, personal all the same. The operator is asked to
copy it off for the office and delete it; one left there was the only personal data in the
data dir no purge touched, kept for ever. ``purge_held`` (run by ``kiosk.retention.purge``,
after its clock check) empties a file's personal fields once every record in it is older
than the cutoff, as the purge nulls the log's rows: ``pass_id``, ``household``, ``holder``
go, ``person`` keeps only its counts, ``purged_at`` is set; the decision, reasons, time and
temperatures stay for the office. The file is rewritten in place (a new file of mode 0600,
synced, renamed over it).

A record is dated by its ``ts`` when its clock was synchronised. One stamped on a clock NTP
had not set (1970 on a Pi booted without network) is dated by the first purge that saw its
file (``SEEN_KEY`` in ``meta``): later than it was decided, never earlier, so its file is
never emptied before the period is over.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from kiosk.days import aware_or_none
from kiosk.ports import Store
from kiosk.standby import HELD_PREFIX
from kiosk.store import format_ts

#: ``meta`` key: when a purge first saw each held file (by name) not yet emptied.
SEEN_KEY = "retention.held_seen"
#: What a purged ``person`` keeps: whole-number counts, not personal (``office.retention``).
COUNT_KEYS = ("occupants", "feverish")
#: A held file larger than this is not read (a stop writes at most the engine's backlog).
MAX_HELD_BYTES = 64 * 1024 * 1024


def held_files(directory: Path) -> list[Path]:
    """The held files in ``directory``, oldest name first; regular files only."""
    try:
        names = sorted(p for p in directory.glob(f"{HELD_PREFIX}*.ndjson"))
    except OSError:
        return []
    return [p for p in names if p.is_file() and not p.is_symlink()]


def _read(path: Path) -> list[Any] | None:
    """The file's lines as JSON values (a line that is not JSON: its text); None when it
    cannot be read (gone, too large, not UTF-8)."""
    try:
        if path.stat().st_size > MAX_HELD_BYTES:
            return None
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    values: list[Any] = []
    for line in text.splitlines():
        try:
            values.append(json.loads(line))
        except ValueError:
            values.append(line)
    return values


def _stamp(record: Mapping[str, Any]) -> datetime | None:
    """A record's time when its clock was synchronised, else None."""
    ts = record.get("ts")
    if record.get("clock_synced") is not True or not isinstance(ts, str):
        return None
    return aware_or_none(ts)


def _due(values: list[Any], seen: datetime, cutoff: datetime) -> bool:
    """Whether every record is older than ``cutoff``; an unsynchronised one dated ``seen``."""
    for value in values:
        when = _stamp(value) if isinstance(value, dict) else None
        if (when or seen) >= cutoff:
            return False
    return True


def _personal(value: Any) -> bool:
    """Whether a line still holds personal fields (an unreadable line may: it goes)."""
    if not isinstance(value, dict):
        return True
    if value.get("purged_at"):
        return False
    return any(value.get(k) is not None for k in ("pass_id", "household", "holder", "person"))


def _emptied(value: Any, now: datetime) -> Any:
    """A record without its personal fields (a line that was not a record: dropped)."""
    if not isinstance(value, dict):
        return None
    person = value.get("person")
    counts = (
        {k: person[k] for k in COUNT_KEYS if type(person.get(k)) is int}
        if isinstance(person, dict)
        else {}
    )
    return value | {
        "pass_id": None,
        "household": None,
        "holder": None,
        "person": counts or None,
        "purged_at": format_ts(now),
    }


def _rewrite(path: Path, values: list[Any]) -> None:
    """``values`` as the file's lines, replacing it whole: mode 0600, synced."""
    tmp = path.with_name(f".{path.name}.purging")
    tmp.unlink(missing_ok=True)
    lines = "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in values)
    owner = path.stat()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        if (owner.st_uid, owner.st_gid) != (os.geteuid(), os.getegid()):
            os.fchown(fd, owner.st_uid, owner.st_gid)  # root's purge: still the daemon's file
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(lines)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def _seen(store: Store) -> dict[str, str]:
    row = store.reader().execute("SELECT value FROM meta WHERE key = ?", [SEEN_KEY]).fetchone()
    try:
        found = json.loads(row[0]) if row is not None else {}
    except (TypeError, ValueError):
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _keep_seen(store: Store, seen: dict[str, str]) -> None:
    def write(db: Database) -> None:
        if seen:
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [SEEN_KEY, json.dumps(seen, sort_keys=True)],
            )
        else:
            db.execute("DELETE FROM meta WHERE key = ?", [SEEN_KEY])

    store.submit(write)


def purge_held(store: Store, directory: Path, cutoff: datetime, now: datetime) -> int:
    """Empty the personal fields of the held files in ``directory`` whose records are all
    older than ``cutoff`` (module docstring); returns how many files were emptied. The
    caller has checked the clock. A file that cannot be read or rewritten is left for the
    next purge (``OSError`` is not raised: the log's purge is done)."""
    before = _seen(store)
    seen: dict[str, str] = {}
    emptied = 0
    for path in held_files(directory):
        values = _read(path)
        if values is None or not any(_personal(v) for v in values):
            continue
        first = before.get(path.name, "")
        since = aware_or_none(first)
        if since is None:  # first seen now (or an unreadable note of it: now again)
            first, since = now.astimezone(UTC).isoformat(), now
        if _due(values, since, cutoff):
            try:
                _rewrite(path, [e for v in values if (e := _emptied(v, now)) is not None])
                emptied += 1
                continue
            except OSError:
                pass
        seen[path.name] = first
    if seen != before:
        _keep_seen(store, seen)
    return emptied
