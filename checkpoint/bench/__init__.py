"""``kiosk bench``: the benchmark suite, one module per section (docs/bench.md).

Every timing is a median over repeated runs; every comparison is a ratio measured in the same
run, because this kind of machine is shared and noisy. A section whose capability is not built
yet says so explicitly (``{"available": false, "reason": ...}``), never zeros.
"""

from __future__ import annotations

import importlib
import resource
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drivers.gate import FakeGate
    from drivers.mlx90614_emulator import Mlx90614Emulator
    from kiosk.core import Core
    from kiosk.store import EventDraft

#: Contract order (docs/bench.md). Each name is a module ``checkpoint.bench.<name>`` exposing
#: ``run(quick) -> dict``.
SECTIONS = ("decode", "thermo", "decide", "loop", "idle", "store", "pull", "edge", "memory")


def bench_draft() -> EventDraft:
    """A typical decision's event, with personal data, for the sections that write events."""
    from kiosk.store import EventDraft  # not on import: `kiosk --help` lists `bench` (SECTIONS)

    return EventDraft(
        direction="in",
        decision="pass",
        reasons=("ok",),
        pass_id="P-BENCH-0001",
        household="B1-0101",
        holder="B.",
        person={"name": "Bench Resident", "unit": "B1-0101"},
        temp_c=36.5,
        temp_object_c=34.2,
        temp_ambient_c=23.9,
        latency_ms=150.0,
    )


def simulated_thermometer(core: Core) -> Mlx90614Emulator:
    """The MLX90614 emulator behind the core's fake thermometer (the benches' people)."""
    from checkpoint.replay import emulator_of

    emulator = emulator_of(core)
    if emulator is None:
        raise RuntimeError("the bench needs the simulated thermometer (driver type fake)")
    return emulator


def simulated_gate(core: Core) -> FakeGate:
    """The core's fake gate (its ``on_command`` times the relay's command)."""
    from drivers.gate import FakeGate

    gate = core.devices.gate
    if not isinstance(gate, FakeGate):
        raise RuntimeError("the bench needs the simulated gate (driver type fake)")
    return gate


def unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}


#: How the reason of a section that crashed begins (``kiosk bench`` then exits 1).
FAILED = "failed: "


def failed_sections(result: dict[str, Any]) -> list[str]:
    return [
        name
        for name, value in result.items()
        if isinstance(value, dict) and str(value.get("reason", "")).startswith(FAILED)
    ]


def _section_runner(name: str) -> Callable[[bool], dict[str, Any]] | None:
    try:
        module = importlib.import_module(f"checkpoint.bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"checkpoint.bench.{name}":
            return None
        raise
    runner: Callable[[bool], dict[str, Any]] = module.run
    return runner


#: Sections that run only when named (``--only fleet``: it needs PostgreSQL and 20 kiosks).
OPT_IN = ("fleet",)


#: Sections that measure other processes' memory, run before every other: a library this
#: process maps (cv2 and numpy, loaded by ``decode``) is shared with the daemon it measures,
#: and PSS gives this process a share of each such page, which on the board the daemon pays
#: alone (``total_pss_mb`` 129.8 with cv2 and numpy loaded here, 138.3 without: same code).
FIRST = ("memory",)


def run_all(quick: bool = False, only: list[str] | None = None) -> dict[str, Any]:
    """The sections asked for (all but ``OPT_IN`` by default), ``FIRST`` first; the result
    in the contract's order."""
    chosen = [
        name
        for name in (*SECTIONS, *OPT_IN)
        if not ((only and name not in only) or (not only and name in OPT_IN))
    ]
    ran = {name: _run_section(name, quick) for name in sorted(chosen, key=_runs_before)}
    result: dict[str, Any] = {name: ran[name] for name in chosen}
    result["rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def _runs_before(name: str) -> int:
    return 0 if name in FIRST else 1


def _run_section(name: str, quick: bool) -> dict[str, Any]:
    runner = _section_runner(name)
    if runner is None:
        return unavailable("not built yet")
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    try:
        return runner(quick)
    except Exception as exc:  # a crash loses that section's figures, not the others'
        traceback.print_exc(file=sys.stderr)
        failed = unavailable(f"{FAILED}{type(exc).__name__}: {exc}")
        print(f"kiosk bench: {name} {failed['reason']}", file=sys.stderr, flush=True)
        return failed
