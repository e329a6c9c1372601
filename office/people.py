"""A resident forgotten at a gate (``kiosk person forget``), forgotten in the office's copy too.

The gate empties its own rows and prints which of its events it emptied (``events_seqs``, as
ranges: ``1-4,9``, ``kiosk.people.seq_ranges``); its log cannot reach the office's copy
(``pulled_events``, ``fleet_events``), which holds what the token allowed until the office's
retention. ``forget_in_copy(copy, kiosk_id, ranges, now)`` empties those rows of that gate in
the copy by the office's retention rule (``office.retention``): ``pass_id``, ``household``,
``holder`` nulled, ``person`` keeps its counts, ``purged_at`` set; ``hash``, ``prev_hash``,
``personal_digest`` and ``seq`` never written, so the copy still verifies and ``kiosk
verify-log --against`` still matches it. A row already purged, or not pulled yet (the gate's
own is empty when it is), is left as it is. A forget is not a purge: PostgreSQL's
``fleet_meta`` ``retention.last_purge`` keeps the office's last purge (the gate's
``person_forgotten`` audit row is the forget's record); a SQLite copy's WAL is wiped as after
a purge.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from kiosk.store import format_ts
from office.retention import Copy, OfficePurgeResult, SqliteCopy, kept_counts

__all__ = ["MAX_SEQS", "forget_in_copy", "parse_seqs"]

#: A cutoff later than every row: the forgotten rows are chosen by ``seq``, not by age.
_EVERY_ROW = "9999-12-31T23:59:59.999999Z"
_RANGE = re.compile(r"^\s*(\d{1,18})\s*(?:-\s*(\d{1,18})\s*)?$")
#: The most seqs one request names (a resident's passages over years stay far below).
MAX_SEQS = 1_000_000


def parse_seqs(text: str) -> list[tuple[int, int]]:
    """``1-4,9`` as ``[(1, 4), (9, 9)]``; ``ValueError`` for anything else."""
    ranges: list[tuple[int, int]] = []
    total = 0
    for part in text.split(","):
        found = _RANGE.match(part)
        if found is None:
            raise ValueError("event seqs as the gate printed them: 1-4,9 (numbers and ranges)")
        first = int(found.group(1))
        last = int(found.group(2) or first)
        if not 1 <= first <= last:
            raise ValueError(f"{part.strip()}: a range from 1 up, its first not after its last")
        total += last - first + 1
        if total > MAX_SEQS:
            raise ValueError(f"more than {MAX_SEQS} events named")
        ranges.append((first, last))
    return ranges


def forget_in_copy(
    copy: Copy, kiosk_id: str, ranges: Iterable[tuple[int, int]], now: datetime
) -> int:
    """Empty gate ``kiosk_id``'s events ``ranges`` in ``copy`` (module docstring), a range a
    transaction; returns the rows emptied."""
    stamp = format_ts(now)
    emptied = 0
    for first, last in ranges:
        after = first - 1
        while after < last:
            rows = copy.candidates(kiosk_id, _EVERY_ROW, after, last, 1000)
            if not rows:
                break
            kept = [(seq, kept_counts(person)) for seq, person in rows]
            emptied += copy.null(kiosk_id, kept, _EVERY_ROW, stamp)
            after = rows[-1][0]
    if isinstance(copy, SqliteCopy):  # its WAL wiped; PostgreSQL's ``finish`` records a purge
        copy.finish(OfficePurgeResult(now, emptied, 1, 1, True))
    return emptied
