"""A test client's calls into its event loop in one trip each (installed by conftest).

Starlette's ``TestClient`` runs the app on an event loop in another thread (an anyio
``BlockingPortal``) and reaches it through the portal's ``call`` and ``start_task_soon``:
about eight of them a request (its events, its body stream, its cancel scope, the app's
task, each chunk of the body), more to enter and leave the client. anyio spawns each call's
task from the caller's thread with ``from_thread.run_sync`` and waits for the loop to have
spawned it (one round trip between the threads), then waits for the task's result (a second
one). The first wait tells the caller nothing the result does not: here the spawn is handed
to the loop (``run_sync_soon``, in the order the calls were made, as before) and the caller
waits once, for the result. The task is the same (the portal's task group runs the portal's
own ``_call_func``, in its cancel scope); a spawn the task group refuses sets the call's
future to that error, which ``call`` raises, as it raised it before.

~30 us of CPU and one wake-up of each thread less a call: the ~4,000 requests and ~1,000
clients of a unit-suite run make ~40,000 calls.
"""

from __future__ import annotations

import inspect
from concurrent.futures import Future
from typing import Any

#: The private method of anyio's portal this replaces, with the parameters it has.
_SPAWN = "_spawn_task_from_thread"
_SPAWN_PARAMS = ["self", "func", "args", "kwargs", "name", "future"]


def _spawn_in_one_trip(
    portal: Any,
    func: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    name: object,
    future: Future[Any],
) -> None:
    """``BlockingPortal._spawn_task_from_thread`` without waiting for the spawn."""

    def spawn() -> None:
        try:
            portal._task_group.start_soon(portal._call_func, func, args, kwargs, future, name=name)
        except BaseException as exc:
            if future.set_running_or_notify_cancel():
                future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise

    token = portal._token
    token.backend_class.run_sync_soon(spawn, (), token.native_token)


def install(patch: Any) -> str | None:
    """Spawn the portals' tasks in one trip; why not, when this anyio's portal is not the one
    this knows (each call then makes its two trips, slower and as correct)."""
    from anyio import from_thread

    portal = from_thread.BlockingPortal
    real = getattr(portal, _SPAWN, None)
    params = list(inspect.signature(real).parameters) if callable(real) else []
    if params != _SPAWN_PARAMS or not callable(getattr(portal, "_call_func", None)):
        return (
            f"this anyio's BlockingPortal has no {_SPAWN}({', '.join(_SPAWN_PARAMS[1:])}):"
            " tests/portal_calls.py must learn it (each portal call makes two trips meanwhile)"
        )
    patch.setattr(portal, _SPAWN, _spawn_in_one_trip)
    return None
