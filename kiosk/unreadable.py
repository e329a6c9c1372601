"""A stored event whose fields cannot be read (an SD card's bit rot, a hand edit): left out.

The one way the reports read the event log's rows forgivingly (``kiosk.stats``,
``kiosk.categories``, ``kiosk.links.decision_before``, and through them ``/api/v1/stats``,
the guard's statistics and exports, ``kiosk report`` and the freeze before each retention
purge): a row one of whose fields does not read as the record types it
(``kiosk.hashchain.unreadable_field``, the check ``kiosk verify-log`` names as an
"unreadable value") is left out of every figure, counted by the caller
(``unreadable_rows`` of the day's report), and logged once by its ``seq`` and the field's
name, never its values (they may be a person's). A damaged row never counts as a pass, nor
as anything else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from kiosk.hashchain import unreadable_field

__all__ = ["CHECKED", "also_checked", "readable_rows"]

log = logging.getLogger(__name__)

#: The rows told about already in this process, by (kiosk_id, seq): each is logged once.
_TOLD: set[tuple[str, int]] = set()
#: How many rows are remembered as told (past it, the memory starts again).
MAX_TOLD = 1000
_LOCK = threading.Lock()

Row = TypeVar("Row", bound=Mapping[str, Any])

#: The typed fields of an events row a report's figures read (``kiosk.record``'s kinds), in
#: every events table the reports read (the gate's log, the district's day in memory): each
#: read of a day's rows selects them all (``also_checked``), so each leaves out the same rows.
CHECKED = ("reasons", "flags", "temp_c", "person")


def also_checked(picked: Collection[str]) -> list[str]:
    """The columns a query of the events must select besides those it ``picked`` (by name),
    for ``readable_rows``: the ``CHECKED`` ones it looks at, and ``kiosk_id``, which with
    ``seq`` names the row it tells of."""
    return [name for name in ("kiosk_id", *CHECKED) if name not in picked]


def readable_rows(rows: Iterable[Row], skipped: list[int] | None = None) -> Iterator[Row]:
    """``rows`` (stored ``events`` rows, whole or in part) but those with a ``CHECKED`` field
    that cannot be read (``unreadable_field``): each of those is put into ``skipped`` (its
    ``seq``) and logged once (``told``)."""
    for row in rows:
        field = unreadable_field({name: row[name] for name in CHECKED if name in row})
        if field is None:
            yield row
            continue
        seq = row.get("seq")
        if skipped is not None and isinstance(seq, int):
            skipped.append(seq)
        told(str(row.get("kiosk_id") or ""), seq, field)


def told(kiosk_id: str, seq: Any, field: str) -> None:
    """Log, once for each row, that event ``seq`` was left out for its ``field``."""
    key = (kiosk_id, seq if isinstance(seq, int) else -1)
    with _LOCK:
        if key in _TOLD:
            return
        if len(_TOLD) >= MAX_TOLD:
            _TOLD.clear()
        _TOLD.add(key)
    log.warning(
        "event seq %s: its %s cannot be read (damaged); left out of the figures"
        " (kiosk verify-log names the row)",
        seq,
        field,
    )
