"""CPU placement: the gate's process keeps its cores to itself; background work runs elsewhere.

Why: a passage is a chain of thread hand-offs (scanner thread → asyncio loop → event-log
writer → loop → gate worker), each a wake-up. On a busy machine (an office pulling the log,
the kiosk screen's browser, the export helper encoding pages) a wake-up that has to wait for
a core, or bounce to another one, adds milliseconds per hop; the pull bench measured the
passage p99 roughly doubling under a pull with the daemon free to run anywhere, and staying
within 2× of idle once the export helper (and the bench's client) kept off the daemon's core.

``plan(setting)`` turns ``engine.cpu`` into a ``CpuPlan``:

* ``"auto"`` (default): with two or more usable CPUs, background helpers get the lowest-numbered
  one and the daemon all the others (on a Pi 4/5: helpers on CPU 0, the daemon on 1-3, so its
  own C-level work — camera capture, decoding, SQLite — still runs in parallel; on a 2-core
  machine: one each); with one CPU, nothing is pinned.
* ``"off"``: nothing is pinned (the kernel places everything).
* a CPU number: the daemon gets that CPU only, helpers the rest. A number this machine does not
  have (a config copied from a bigger board) is logged and ignored, never fatal: the gate
  runs unpinned rather than not at all.

``pin_process(plan)`` moves every thread of this process (threads created later inherit it)
and shortens the interpreter's switch interval to ``GATE_SWITCH_INTERVAL_S``: when the
daemon's threads share a core, a thread woken for the gate (the event-log writer after
the loop's decision, the loop after the commit) otherwise waits up to CPython's default 5 ms
for whichever thread holds the GIL (the web server writing a page) to let go. It remembers
the previous affinity and interval so ``release()`` can put them back (tests and the demo run
the daemon inside a longer-lived process). ``enter_background(cpus)`` is what a helper
process calls first: off the gate's cores, at a lower priority (nice +10).

Only Linux has ``sched_setaffinity``; elsewhere every plan is "not pinned".
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: How much nicer than the daemon a background helper runs.
BACKGROUND_NICE = 10
#: The pinned daemon's GIL switch interval (CPython's default is 0.005 s).
GATE_SWITCH_INTERVAL_S = 0.001


@dataclass(frozen=True)
class CpuPlan:
    """Where the gate's process runs (``gate``) and where its helpers run (``background``);
    both ``None`` when nothing is pinned. ``reason`` says why, for the log and the bench."""

    gate: frozenset[int] | None
    background: frozenset[int] | None
    reason: str

    @property
    def pinned(self) -> bool:
        return self.gate is not None


def available_cpus() -> frozenset[int]:
    """The CPUs this process may run on (its affinity, which a cgroup cpuset limits too)."""
    if not hasattr(os, "sched_getaffinity"):
        return frozenset()
    return frozenset(os.sched_getaffinity(0))


def plan(setting: str | int, available: frozenset[int] | None = None) -> CpuPlan:
    """The placement for ``engine.cpu`` on a machine whose usable CPUs are ``available``."""
    cpus = available_cpus() if available is None else frozenset(available)
    if setting == "off":
        return CpuPlan(None, None, "engine.cpu = off")
    if len(cpus) < 2:
        return CpuPlan(None, None, f"{len(cpus)} usable CPU(s): nothing to keep apart")
    if setting == "auto":
        helpers = min(cpus)
        gate = cpus - {helpers}
        reason = f"daemon on CPU {_fmt(gate)}, helpers on {helpers}"
        return CpuPlan(gate, frozenset({helpers}), reason)
    if isinstance(setting, int) and not isinstance(setting, bool):
        if setting not in cpus:
            return CpuPlan(
                None, None, f"engine.cpu = {setting} is not usable here (usable: {_fmt(cpus)})"
            )
    else:
        raise ValueError(f"engine.cpu must be 'auto', 'off' or a CPU number, not {setting!r}")
    return CpuPlan(frozenset({setting}), cpus - {setting}, f"daemon on CPU {setting}")


def _fmt(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus)) or "none"


_lock = threading.Lock()
_saved: dict[int, frozenset[int]] | None = None
_saved_interval: float | None = None
_current: CpuPlan | None = None


def _threads() -> list[int]:
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:  # no /proc: this thread only (threads started from it inherit)
        return [0]


def pin_process(p: CpuPlan) -> bool:
    """Pin every thread of this process to ``p.gate``; True when pinned. Idempotent: a
    second call re-pins (new threads) but keeps the affinity saved by the first."""
    global _saved, _saved_interval, _current
    if not p.pinned or not hasattr(os, "sched_setaffinity"):
        if not p.pinned:
            log.info("cpu placement: not pinned", extra={"reason": p.reason})
        return False
    assert p.gate is not None
    with _lock:
        saved: dict[int, frozenset[int]] = {}
        for tid in _threads():
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                saved[tid] = frozenset(os.sched_getaffinity(tid))
                os.sched_setaffinity(tid, p.gate)
        if _saved is None:
            _saved, _saved_interval = saved, sys.getswitchinterval()
        sys.setswitchinterval(GATE_SWITCH_INTERVAL_S)
        _current = p
    background = _fmt(p.background or frozenset())
    log.info("cpu placement", extra={"reason": p.reason, "background": background})
    return True


def release() -> None:
    """Undo ``pin_process``: the switch interval is restored; threads that existed then get
    their affinity back; threads started since get the process's original one (the main
    thread's)."""
    global _saved, _saved_interval, _current
    with _lock:
        saved, _saved, _current = _saved, None, None
        interval, _saved_interval = _saved_interval, None
    if interval is not None:
        sys.setswitchinterval(interval)
    if not saved or not hasattr(os, "sched_setaffinity"):
        return
    fallback = saved.get(os.getpid()) or next(iter(saved.values()))
    for tid in _threads():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, saved.get(tid, fallback))


def background_cpus() -> tuple[int, ...] | None:
    """Where this process's helpers should run, sorted (``None``: wherever the kernel
    likes). A tuple, so it can be handed to a helper process as an argument."""
    with _lock:
        if _current is None or not _current.background:
            return None
        return tuple(sorted(_current.background))


def enter_background(cpus: tuple[int, ...] | None) -> None:
    """First thing a helper process does: off the gate's cores (``cpus``, from
    ``background_cpus()`` of the parent) and BACKGROUND_NICE nicer. Never fails: a helper that
    cannot move still works, it just competes with the gate."""
    if cpus and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, frozenset(cpus))
        except OSError as exc:
            log.warning("helper cannot leave the gate's CPU", extra={"error": str(exc)})
    with contextlib.suppress(OSError, AttributeError):
        os.nice(BACKGROUND_NICE)
