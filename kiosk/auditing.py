"""One audit row per change, wherever the change is asked for.

A ledger (returnees, service requests, the roster and handovers, the compound map, the
resident vehicles, the lists) audits each change it makes with who made it, what changed and
from what to what, through ``audit_change(log, actor, action, detail)``. Called from the
command line or the daemon, that writes the row. A caller that audits its requests itself —
the guard console's route class (``ui.guard.deps.audited_route``) — runs each request inside
``collect_changes()``: the changes are handed to it instead of written, and it writes each as
the request's row (with the request's outcome). One change is one row, never two.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Protocol

__all__ = ["AuditLog", "Change", "audit_change", "collect_changes"]

#: ``(actor, action, detail)`` of one change.
Change = tuple[str, str, dict[str, Any]]

_COLLECTING: ContextVar[list[Change] | None] = ContextVar("kiosk_audit_changes", default=None)


class AuditLog(Protocol):
    def audit(self, actor: str, action: str, detail: Mapping[str, Any] | None = None) -> None: ...


def audit_change(log: AuditLog, actor: str, action: str, detail: Mapping[str, Any]) -> None:
    """Audit one change: handed to ``collect_changes()`` if the caller is collecting (in this
    context or the one a worker thread copied from it), else written to ``log`` now."""
    changes = _COLLECTING.get()
    if changes is None:
        log.audit(actor, action, detail)
    else:
        changes.append((actor, action, dict(detail)))


@contextlib.contextmanager
def collect_changes() -> Iterator[list[Change]]:
    """Collect the changes audited inside the block (and in threads started from it, which
    copy the context) instead of writing them; the caller must write them."""
    changes: list[Change] = []
    token = _COLLECTING.set(changes)
    try:
        yield changes
    finally:
        _COLLECTING.reset(token)
