"""A change and its audit row, in one transaction, wherever the change is asked for.

A ledger (returnees, service requests, the roster and handovers, the compound map, the
resident vehicles, the lists) writes each change with ``audited_write(log, fn, actor, action,
detail)``: ``fn`` makes the change and the row saying who made it, what changed and from what
to what is inserted in the same write transaction (``EventLog.submit_audited``). If the row
cannot be written (the disk is full, the process dies before the commit) the change is rolled
back with it: no change is ever on record without its row, and no row without its change.

A caller that audits its requests itself — the guard console's route class
(``ui.guard.deps.audited_route``) — runs each request inside ``auditing_request(detail)``:
the row of a change made for the request then also carries the request's own detail
(``detail()``, what the route noted) and ``outcome: ok``, and the request learns which rows
were written (``RequestAudit.written``), so it never writes a second row for the same change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlite_utils

from .ports import AuditedWriter

__all__ = ["Change", "RequestAudit", "audited_write", "auditing_request"]

T = TypeVar("T")

#: ``(actor, action, detail)`` of one change.
Change = tuple[str, str, dict[str, Any]]


@dataclass
class RequestAudit:
    """One audited request: ``detail()`` is what the request itself says (read when a change
    is written); ``written`` the rows of the changes made for it, in order."""

    detail: Callable[[], Mapping[str, Any]]
    written: list[Change] = field(default_factory=list)


_REQUEST: ContextVar[RequestAudit | None] = ContextVar("kiosk_audit_request", default=None)


def audited_write(
    log: AuditedWriter,
    fn: Callable[[sqlite_utils.Database], T],
    actor: str,
    action: str,
    detail: Callable[[T], Mapping[str, Any]],
) -> T:
    """Run ``fn(db)`` and insert its audit row (``actor``, ``action``, ``detail(result)``) in
    one write transaction; return ``fn``'s result. Inside ``auditing_request`` (in this
    context or the one a worker thread copied from it) the row also carries the request's
    detail and ``outcome: ok``, and is recorded as written for the request."""
    request = _REQUEST.get()
    extra: dict[str, Any] = {} if request is None else {**request.detail(), "outcome": "ok"}
    rows: list[dict[str, Any]] = []

    def row(result: T) -> dict[str, Any]:
        rows.append({**extra, **detail(result)})
        return rows[-1]

    result = log.submit_audited(fn, actor, action, row)
    if request is not None:
        request.written.append((actor, action, rows[-1]))
    return result


@contextlib.contextmanager
def auditing_request(detail: Callable[[], Mapping[str, Any]]) -> Iterator[RequestAudit]:
    """Changes written inside the block (and in threads started from it, which copy the
    context) carry ``detail()`` and are listed in the yielded ``RequestAudit``."""
    request = RequestAudit(detail)
    token = _REQUEST.set(request)
    try:
        yield request
    finally:
        _REQUEST.reset(token)
