"""``loop``: from a camera frame arriving to the gate command and to the committed event.

Over at least 1,000 replayed passages (virtual time for everything that waits: the
measurement, the gate pulse, the result hold), each passage is timed in real time from the
moment its frame reaches the real ``FramePipeline`` to

* the committed event (``EventLog.append`` returned: FULL sync, on a temporary file), and
* the gate command (the relay driver called; it is always after the commit).

The kiosk runs temperature-first here, so the person is already measured when the frame
arrives: the interval is the product's own latency, not a person's. ``overhead_p99_ms`` is
the 99th percentile of (latency to the gate minus the decode time of that same frame), i.e.
everything the kiosk adds to decoding: gray conversion and change gate, pass verification,
the rules, the event commit with its fsync, the relay call. Target: <= 5 ms. The decode time
is measured here around ``FramePipeline.process`` (the pipeline times itself on the injected
clock, which is virtual in a replay). ``engine_overhead_p99_ms`` is the same without the time
spent inside ``EventLog.append`` (the FULL-sync fsync, which depends on the storage), so a slow
disk and a slow engine can be told apart.

Every figure is the median over repeated runs (``repeats``), each run on a fresh database.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def _pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: a reported p99 is a real passage)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def _frames(keys: Any, clock: Any, count: int) -> list[Any]:
    from drivers.fake_camera import FakeCamera
    from kiosk.passes import issue_pass

    camera = FakeCamera(clock, seed=7)
    frames = []
    for i in range(count):
        text, _ = issue_pass(keys, f"B-{i:03d}", f"Res {i}", days=30, now=clock.now())
        camera.show_code(text, seed=1000 + i)
        frames.append(camera.next_frame()[0])
    return frames


def _one_run(passages: int, frames: list[Any], key: Any, workdir: Path) -> dict[str, Any]:
    from checkpoint.replay import DirectPorts
    from drivers.decoders import build_decoder
    from drivers.gate import FakeGate
    from drivers.mlx90614_emulator import Mlx90614Emulator
    from drivers.pipeline import FramePipeline
    from drivers.thermometer import FakeMlx90614
    from kiosk import lists as lists_mod
    from kiosk.clock import FakeClock
    from kiosk.config import parse_config
    from kiosk.engine import Engine
    from kiosk.history import PassageHistory
    from kiosk.passes import TrustList
    from kiosk.store import EventLog

    # The same few frames (passes) go round again within seconds: no anti-passback here.
    cfg = parse_config(
        {
            "engine": {"order": "temperature_first"},
            "store": {"synchronous": "FULL"},
            "policy": {"passback": {"enabled": False}},
        }
    )
    clock = FakeClock()
    log = EventLog(
        workdir / "bench.db", "bench", clock, "FULL", [lists_mod.MIGRATIONS], boot_id="bench"
    ).open()
    try:
        list_store = lists_mod.ListStore(log, clock)
        list_store.load()
        emulator = Mlx90614Emulator(clock, seed=3)
        thermometer = FakeMlx90614(emulator, clock, sleep=clock.advance)
        gate = FakeGate(clock)
        pipeline = FramePipeline(
            build_decoder(cfg.readers.decoder.backend), cfg.readers.decoder, clock
        )
        marks: dict[str, int] = {}

        class TimedLog:
            """The real log; notes when the append started (the fsync is inside it)."""

            def append(self, draft: Any) -> Any:
                marks.setdefault("commit_start", time.perf_counter_ns())
                return log.append(draft)

        ports = DirectPorts(
            TimedLog(),
            gate,
            on_gate=lambda open_: marks.setdefault("gate", time.perf_counter_ns()),
            on_commit=lambda _event: marks.setdefault("commit", time.perf_counter_ns()),
        )
        trust = TrustList([("bench", key.public_key())])
        engine = Engine(cfg, clock, ports, trust, list_store, PassageHistory())
        ports.engine = engine
        sample_dt = 1.0 / cfg.thermometer.thermometry.sample_hz
        settle_ticks = int((cfg.gate.pulse_ms / 1000 + cfg.engine.result_hold_s + 1) / 0.05)

        to_gate: list[float] = []
        to_commit: list[float] = []
        decode: list[float] = []
        overhead: list[float] = []
        engine_only: list[float] = []
        missed = 0
        for i in range(passages):
            emulator.person_arrives(36.6)
            for _ in range(200):
                engine.on_reading(thermometer.read())
                engine.tick()
                clock.advance(sample_dt)
                if engine.state == "awaiting_code":
                    break
            else:
                raise RuntimeError(f"bench passage {i}: no temperature ({engine.state})")
            marks.clear()
            frame = frames[i % len(frames)]
            t0 = time.perf_counter_ns()
            codes = pipeline.process(frame, clock.monotonic_ns())
            t_decoded = time.perf_counter_ns()
            for code in codes:
                engine.on_code(code)
            if "gate" not in marks:
                missed += 1
            else:
                gate_ms = (marks["gate"] - t0) / 1e6
                decode_ms = (t_decoded - t0) / 1e6
                commit_ms = (marks["commit"] - marks["commit_start"]) / 1e6
                to_gate.append(gate_ms)
                to_commit.append((marks["commit"] - t0) / 1e6)
                decode.append(decode_ms)
                overhead.append(gate_ms - decode_ms)
                engine_only.append(gate_ms - decode_ms - commit_ms)
            emulator.person_leaves()
            for _ in range(settle_ticks):
                engine.tick()
                clock.advance(0.05)
    finally:
        log.close()
    if not to_gate:
        raise RuntimeError("bench: no passage reached the gate")
    return {
        "p50_ms": statistics.median(to_gate),
        "p99_ms": _pct(to_gate, 99),
        "commit_p50_ms": statistics.median(to_commit),
        "commit_p99_ms": _pct(to_commit, 99),
        "decode_ms": statistics.median(decode),
        "overhead_p50_ms": statistics.median(overhead),
        "overhead_p99_ms": _pct(overhead, 99),
        "fsync_commit_p50_ms": statistics.median(
            o - e for o, e in zip(overhead, engine_only, strict=True)
        ),
        "engine_overhead_p99_ms": _pct(engine_only, 99),
        "missed": missed,
    }


def run(quick: bool) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.clock import FakeClock

    passages = 1000
    repeats = 1 if quick else 3
    key = Ed25519PrivateKey.generate()
    frames = _frames(key, FakeClock(), 40)
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="kiosk-bench-loop-") as tmp:
            runs.append(_one_run(passages, frames, key, Path(tmp)))

    def med(name: str) -> float:
        return round(statistics.median(run[name] for run in runs), 3)

    return {
        "passages": passages,
        "p50_ms": med("p50_ms"),
        "p99_ms": med("p99_ms"),
        "decode_ms": med("decode_ms"),
        "overhead_p99_ms": med("overhead_p99_ms"),
        "overhead_p50_ms": med("overhead_p50_ms"),
        "commit_p50_ms": med("commit_p50_ms"),
        "commit_p99_ms": med("commit_p99_ms"),
        "fsync_commit_p50_ms": med("fsync_commit_p50_ms"),
        "engine_overhead_p99_ms": med("engine_overhead_p99_ms"),
        "missed": int(statistics.median(run["missed"] for run in runs)),
        "repeats": repeats,
        "store": "FULL",
    }
