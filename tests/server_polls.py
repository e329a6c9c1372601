"""The servers' own polls at a test's pace (installed by ``tests/conftest.py``).

A uvicorn server (the daemon's web server, the standby's, a test's ``live_server``) looks
whether it was asked to stop every 0.1 s, then at its stop waits 0.1 s for its connections
before it polls them, every 0.1 s, until they are closed: ~0.2 s of every test that stops
one, waited for nothing (~30 tests a run). Here those sleeps of ``uvicorn.server`` are
``POLL_S``: the same polls of the same conditions, more often. What a server does, and the
graceful-shutdown timeout (not a sleep), stay as they are; the daemon keeps uvicorn's pace.

The collector's status server (``office.collector.StatusServer``, the standard library's
``serve_forever``) looks whether it was asked to stop every ``STATUS_POLL_S`` (50 ms), read
when it starts: in the tests, every ``POLL_S``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

#: How long one of the servers' polls waits in the tests (uvicorn's: 0.1 s; the status
#: server's: 50 ms).
POLL_S = 0.005


class _QuickPolls:
    """``asyncio`` as ``uvicorn.server`` sees it: the same, its sleeps no longer than
    ``POLL_S``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    async def sleep(delay: float, result: Any = None) -> Any:
        return await asyncio.sleep(min(delay, POLL_S), result)


def install(patch: pytest.MonkeyPatch) -> str | None:
    """Shorten the servers' polls; why not, when this uvicorn has no such module global."""
    import uvicorn.server

    from office import collector

    patch.setattr(collector, "STATUS_POLL_S", POLL_S)
    if getattr(uvicorn.server, "asyncio", None) is not asyncio:
        return "uvicorn.server polls as it does: the tests that stop a server wait ~0.2 s each"
    patch.setattr(uvicorn.server, "asyncio", _QuickPolls())
    return None
