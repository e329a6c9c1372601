"""The export side of the event log: what ``/api/v1/events`` sends.

Pages are read with one tuple per row and encoded one event at a time (the pull's hot path);
``export_page_at`` is the entry point the daemon's export helper process calls. ``PageSource``
is the seam the API builds pages through: ``InProcessPages`` here, a helper-process one in the
program shell (``checkpoint.export_helper``).
"""

from __future__ import annotations

import json
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

try:  # 5-10x faster JSON on the export's hot path; the standard library otherwise
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency, kept optional for safety
    orjson = None  # type: ignore[assignment]

from kiosk import record
from kiosk.files import ended_read, sqlite_read_only
from kiosk.privacy import mask_event
from kiosk.unreadable import decode_json

if TYPE_CHECKING:  # the export helper process imports this module: keep it lean
    from sqlite_utils import Database

    from kiosk.store import EventLog

#: Event columns, as ``/api/v1/events`` sends them (the one record definition).
COLUMNS = record.EVENT_COLUMNS

_SELECT_EVENTS = f"SELECT {', '.join(COLUMNS)} FROM events WHERE seq > ? ORDER BY seq LIMIT ?"  # noqa: S608
_DECODED = ("reasons", "flags", "person")
_I_REASONS, _I_FLAGS, _I_SYNCED = (COLUMNS.index(n) for n in ("reasons", "flags", "clock_synced"))
#: Read-only connections of the export worker process, by database path (a few at most).
_EXPORT_READERS: OrderedDict[str, sqlite3.Connection] = OrderedDict()


def dumps_event(event: dict[str, Any]) -> bytes:
    """One event as compact UTF-8 JSON."""
    if orjson is not None:
        return orjson.dumps(event)
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def read_events(db: sqlite3.Connection | Database, after: int, limit: int) -> list[dict[str, Any]]:
    """Keyset page of the ``events`` table as plain dicts (JSON columns decoded).

    The same rows as ``EventLog.events()``, read with one tuple per row and one dict build,
    because this is the pull's hot path. ``db``: a sqlite3 or sqlite-utils connection."""
    return list(iter_events(db, after, limit))


def iter_events(
    db: sqlite3.Connection | Database, after: int, limit: int
) -> Iterator[dict[str, Any]]:
    """``read_events`` one event at a time (a page is encoded without holding its events)."""
    for row in db.execute(_SELECT_EVENTS, [after, limit]):
        values = list(row)
        values[_I_REASONS] = values[_I_REASONS] or "[]"
        values[_I_FLAGS] = values[_I_FLAGS] or "[]"
        values[_I_SYNCED] = bool(values[_I_SYNCED])
        # a field whose text is not JSON is passed on as it is, named in ``unreadable``
        yield decode_json(dict(zip(COLUMNS, values, strict=True)), _DECODED, keep_text=True)


def export_page(
    db: sqlite3.Connection | Database, after: int, limit: int, allowed: Iterable[str], ndjson: bool
) -> tuple[bytes, int, int, int]:
    """One page of ``/api/v1/events``, masked: ``(body, count, next, last)``.

    JSON body: ``{"events": [...], "next": N, "last": N}``; NDJSON: one event per line. One
    dumps per event, never one for the page, so the GIL is released between events. Each
    event is read, masked and encoded straight into the body: a page never holds its events
    as objects (5,000 dicts of dicts, most of what building a page cost in memory)."""
    clear = frozenset(allowed)
    last = int(db.execute("SELECT max(seq) FROM events").fetchone()[0] or 0)
    body = bytearray() if ndjson else bytearray(b'{"events":[')
    separator = b"\n" if ndjson else b","
    count, next_seq = 0, after
    for event in iter_events(db, after, limit):
        if count and not ndjson:
            body += separator
        body += dumps_event(mask_event(event, clear))
        if ndjson:
            body += separator
        count, next_seq = count + 1, event["seq"]
    if not ndjson:
        body += f'],"next":{next_seq},"last":{last}}}'.encode()
    return bytes(body), count, next_seq, last


def export_page_at(
    path: str, after: int, limit: int, allowed: tuple[str, ...], ndjson: bool
) -> tuple[bytes, int, int, int]:
    """``export_page`` on the database at ``path``: the entry point of the API's export worker
    process (single-threaded, so its cached read-only connections are never shared)."""
    conn = _EXPORT_READERS.pop(path, None)
    if conn is None:
        conn = sqlite_read_only(path)
        conn.execute("PRAGMA busy_timeout = 5000")
        # Pages are read once, in seq order: a 256 KiB page cache, not SQLite's 2 MB.
        conn.execute("PRAGMA cache_size = -256")
    _EXPORT_READERS[path] = conn
    while len(_EXPORT_READERS) > 4:
        _EXPORT_READERS.popitem(last=False)[1].close()
    with ended_read(conn):  # kept for the next page: a failed one leaves nothing open
        return export_page(conn, after, limit, allowed, ndjson)


class PageSource(Protocol):
    """Builds one masked page of ``/api/v1/events``: ``(body, count, next, last)``; opened by
    the daemon's start, closed by its stop (a page asked after: ``LogClosing``, at the latest
    when the log's close begins)."""

    def build(
        self, store: EventLog, after: int, limit: int, allowed: frozenset[str], ndjson: bool
    ) -> tuple[bytes, int, int, int]: ...

    def open(self) -> None: ...

    def close(self) -> None: ...


class InProcessPages:
    """Pages built in the calling thread, on that thread's read-only connection: its reads
    are the log's, refused once its close begins; nothing to open or close of its own."""

    def build(
        self, store: EventLog, after: int, limit: int, allowed: frozenset[str], ndjson: bool
    ) -> tuple[bytes, int, int, int]:
        return export_page(store.reader(), after, limit, allowed, ndjson)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass
