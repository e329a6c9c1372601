"""``edge`` bench: the checkpoint keeps deciding, at its normal latency, under a connection flood.

A child process runs the real kiosk (``checkpoint.app.build_core`` on the default simulated
devices, full policy: temperature *and* pass) behind the daemon's own web server
(``checkpoint.server.build_server``: connection caps, header/body deadlines) on ``127.0.0.1``,
with its open-file limit set to 1,024 (``RLIMIT_NOFILE``, systemd's default soft limit: what
the issue's flood exhausted). A probe thread in the child sends people through the real loop:
the MLX90614 emulator gets a person at 36.4-36.8 °C, a freshly signed pass is handed to
``EngineRunner.submit_code`` as a scanner would, and its decision, as the bus brings it to the
screens, ends the time from the code (code → measurement → decision → commit → bus).
The person leaves once decided; the next comes when the gate is locked again.

This process drives two phases, in one run and interleaved over repeats so machine noise hits
both alike:

* ``idle``: only the probe;
* ``flood``: 1,100 idle TCP connections and 50 slowloris connections (request headers sent a
  byte a second, never finished) held against the kiosk from 40 loopback addresses
  (127.0.1.x, so the per-address cap does not do all the work: the overall cap is reached
  too). Every connection the kiosk closes is opened again after ``RECONNECT_S``: the flood
  holds its pressure, as an attacker's script would.

Figures: ``loop_p99_idle_ms`` / ``loop_p99_flood_ms`` (nearest-rank p99 of code → committed
decision, median over repeats; ``flood_over_idle`` their ratio); ``passages`` timed in all;
``passages_without_temperature`` (a decision without a body temperature, or with
``no_temperature``/``sensor_fault``); ``lost_events`` (a code handed in with no committed event
in the log for its pass); ``health_ok_fraction_flood``: ``/api/v1/health`` asked every 0.5 s
on a new connection from another address (127.0.0.3) during the flood, answered (200 or
503) within 3 s; ``refused_connections``, ``evicted_connections`` (closed to make room while
silent about their request) and ``accept_errors`` from the server; ``sched_lag_p99_*`` the
asyncio loop's scheduling lag (``ui.api.LoopLagMonitor``). All traffic stays on 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from checkpoint.bench import simulated_thermometer
from checkpoint.bench.background import Background, until_stopped
from checkpoint.bench.pull import _pct  # nearest rank: a reported p99 is a real passage

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.config import KioskConfig
    from kiosk.core import Core

IDLE_CONNECTIONS = 1100
SLOWLORIS = 50
FLOOD_SOURCES = 40
#: A closed flood connection is opened again after this long.
RECONNECT_S = 1.0
CHILD_NOFILE = 1024
#: (passages per phase and repeat, repeats)
FULL_SIZES = (30, 3)
QUICK_SIZES = (12, 1)
PROBE_SOURCE = "bench-edge-scanner"
DECISION_TIMEOUT_S = 20.0


# --- the kiosk (child process) ---------------------------------------------------------------


def bench_config() -> KioskConfig:
    from kiosk.config import parse_config

    return parse_config(
        {
            "site": {"kiosk_id": "bench-edge", "direction": "in"},
            "gate": {"pulse_ms": 100},
            # Short result screen: the next person may come as soon as the gate is locked.
            "engine": {"result_hold_s": 0.5},
            "web": {"host": "127.0.0.1", "port": 0, "api_worker_process": False},
        }
    )


class TemperatureProbe:
    """People through the real loop, one at a time: a body at the sensor, then a pass."""

    def __init__(self, core: Core, key: Ed25519PrivateKey) -> None:
        self.core, self.key = core, key
        self.emulator = simulated_thermometer(core)
        self.latency_ms: list[float] = []
        self.without_temperature = 0
        self.no_decision = 0
        self.pass_ids: list[str] = []
        self.error: str | None = None
        self._decided = threading.Event()
        self._last: dict[str, Any] = {}
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-edge-probe", daemon=True)
        self._expect: tuple[str, int] | None = None  # (pass id, monotonic ns of its code)

    async def watch(self) -> None:
        """Decisions as the screens see them: the bus (on the loop)."""
        subscription = self.core.runner.bus.subscribe(name="bench-edge-probe")
        try:
            async for message in subscription:
                if message.get("type") == "decision":
                    self._on_decision(message)
        finally:
            subscription.close()

    def _on_decision(self, message: dict[str, Any]) -> None:
        expect = self._expect
        if expect is None or message.get("pass_id") != expect[0]:
            return
        self._last = dict(message, ms=(self.core.clock.monotonic_ns() - expect[1]) / 1e6)
        self._decided.set()

    def reset(self) -> None:
        self.latency_ms.clear()
        self.without_temperature = 0
        self.no_decision = 0

    def _one(self, n: int) -> None:
        from kiosk.passes import issue_pass

        engine = self.core.runner.engine
        while not self._stop.is_set() and (
            engine.state not in ("idle", "decided") or engine.gate_is_open
        ):
            self._stop.wait(0.02)
        if self._stop.is_set():
            return
        text, pass_ = issue_pass(
            self.key, f"B{n % 9}-{n:04d}", f"Res {n}", days=1, now=self.core.clock.now()
        )
        self._decided.clear()
        self.emulator.person_arrives(36.4 + (n % 5) / 10)
        time.sleep(0.3)  # the wrist reaches the sensor before the pass is shown
        self.pass_ids.append(pass_.pass_id)
        self._expect = (pass_.pass_id, self.core.clock.monotonic_ns())
        self.core.runner.submit_code(text, source=PROBE_SOURCE)
        if not self._decided.wait(DECISION_TIMEOUT_S):
            self.no_decision += 1
        else:
            message = self._last
            reasons = set(message.get("reasons") or ())
            if message.get("temp_c") is None or reasons & {"no_temperature", "sensor_fault"}:
                self.without_temperature += 1
            if message.get("committed"):
                self.latency_ms.append(float(message["ms"]))
        self.emulator.person_leaves()
        self._stop.wait(0.4)  # walks away: the sensor sees nobody before the next person

    def _run(self) -> None:
        n = 0
        try:
            while not self._stop.is_set():
                if self._paused.is_set():
                    self._stop.wait(0.05)
                    continue
                n += 1
                self._one(n)
        except Exception as exc:  # noqa: BLE001 - reported to the bench, which stops
            self.error = f"{type(exc).__name__}: {exc}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(DECISION_TIMEOUT_S + 2)

    def recorded(self) -> int:
        """How many of the probe's passes have a committed event in the log."""
        ids = list(self.pass_ids)
        found = 0
        db = self.core.store.reader()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" for _ in chunk)
            row = db.execute(
                f"SELECT count(DISTINCT pass_id) FROM events WHERE pass_id IN ({marks})",  # noqa: S608
                chunk,
            ).fetchone()
            found += int(row[0] or 0)
        return found


def _serve(data_dir: str) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (CHILD_NOFILE, CHILD_NOFILE))
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from checkpoint.app import build_core
    from checkpoint.server import build_server, install_accept_log
    from drivers.clocksync import system_clock
    from kiosk.passes import public_key_pem
    from ui.api import LoopLagMonitor
    from ui.app import create_app

    data = Path(data_dir)
    key = Ed25519PrivateKey.generate()
    (data / "trust").mkdir(parents=True, exist_ok=True)
    (data / "trust" / "bench.pub").write_bytes(public_key_pem(key.public_key()))
    config = bench_config()
    core = build_core(config, data, system_clock(assume_synced=True))

    async def main() -> None:
        await core.runner.start()
        server = build_server(create_app(core), config.web)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.02)
        accept_log = install_accept_log(asyncio.get_running_loop())
        lag = LoopLagMonitor(keep=100_000)
        lag.ensure_started()
        probe = TemperatureProbe(core, key)
        watcher = asyncio.create_task(probe.watch())
        probe._paused.set()
        probe.start()
        print(server.sock.getsockname()[1], flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            command = line.strip()
            if command in ("", "quit"):
                break
            if command == "reset":
                probe._paused.set()
                probe.reset()
                lag.samples.clear()
                probe._paused.clear()
                reply: dict[str, Any] = {"ok": True}
            else:  # report
                samples = list(lag.samples)
                reply = {
                    "passages": len(probe.latency_ms),
                    "p99_ms": _pct(probe.latency_ms, 99),
                    "p50_ms": _pct(probe.latency_ms, 50),
                    "without_temperature": probe.without_temperature,
                    "no_decision": probe.no_decision,
                    "sched_lag_p99_ms": (_pct(samples, 99) or 0.0) * 1000,
                    "refused": server.limits.gate.refused,
                    "evicted": server.limits.gate.evicted,
                    "open": server.limits.gate.open_total,
                    "accept_errors": accept_log.total,
                    "error": probe.error,
                }
            print(json.dumps(reply), flush=True)
        probe._paused.set()
        # Off the loop: the probe's last passage may still wait for its decision, which the
        # loop makes (joining here blocked it, and that passage was counted lost).
        await asyncio.to_thread(probe.stop)
        recorded = probe.recorded()
        print(json.dumps({"submitted": len(probe.pass_ids), "recorded": recorded}), flush=True)
        watcher.cancel()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 3)
        await core.runner.stop()

    try:
        asyncio.run(main())
    finally:
        core.close()  # the relay first, the log last (a stalled card)


# --- the flood and the driver (this process) -------------------------------------------------


class Flood(Background):
    """Idle and slowloris connections held against ``port`` on one asyncio thread."""

    join_s = 15.0

    def __init__(self, port: int, idle: int, slow: int) -> None:
        super().__init__()
        self.port, self.idle, self.slow = port, idle, slow
        self.connects = 0
        self.closed_by_server = 0
        self.open_now = 0

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _hold(self, i: int, slowloris: bool) -> None:
        source = f"127.0.1.{1 + i % FLOOD_SOURCES}"
        while not self._stop.is_set():
            writer = None
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", self.port, local_addr=(source, 0)
                )
                self.connects += 1
                self.open_now += 1
                if slowloris:
                    writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: kiosk\r\nX-a: ")
                while not self._stop.is_set():
                    if slowloris:
                        writer.write(b"a")
                    try:
                        data = await asyncio.wait_for(reader.read(1024), 1.0)
                    except TimeoutError:
                        continue
                    if not data:
                        break
                self.closed_by_server += 0 if self._stop.is_set() else 1
            except OSError:
                pass
            finally:
                if writer is not None:
                    self.open_now -= 1
                    writer.transport.abort()
            await asyncio.sleep(RECONNECT_S)

    async def _main(self) -> None:
        tasks = [asyncio.create_task(self._hold(i, False)) for i in range(self.idle)]
        tasks += [asyncio.create_task(self._hold(i, True)) for i in range(self.slow)]
        await until_stopped(self._stop, tasks, 0.1)


class HealthPoller(Background):
    """``/api/v1/health`` every 0.5 s from another loopback address (a guard's browser)."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port
        self.ok = self.asked = 0

    def _run(self) -> None:
        url = f"http://127.0.0.1:{self.port}/api/v1/health"
        while not self._stop.wait(0.5):
            self.asked += 1
            # A new connection each time: can a new client get in while the flood holds on?
            transport = httpx.HTTPTransport(local_address="127.0.0.3")
            with (
                httpx.Client(transport=transport, timeout=3) as client,
                contextlib.suppress(httpx.HTTPError),
            ):
                if client.get(url).status_code in (200, 503):
                    self.ok += 1


def _loopback_aliases_work() -> bool:
    try:
        with socket.socket() as s:
            s.bind(("127.0.1.1", 0))
        return True
    except OSError:
        return False


class _Child:
    def __init__(self, data_dir: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "checkpoint.bench.edge", "serve", data_dir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline().strip() or 0)

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def phase(self, passages: int, timeout_s: float) -> dict[str, Any]:
        self.ask("reset")
        deadline = time.monotonic() + timeout_s
        while True:
            report = self.ask("report")
            if report["error"]:
                raise RuntimeError(f"bench probe failed: {report['error']}")
            if report["passages"] + report["no_decision"] >= passages:
                return report
            if time.monotonic() > deadline:
                raise RuntimeError(f"probe timed {report['passages']} of {passages} passages")
            time.sleep(0.5)

    def close(self) -> dict[str, Any]:
        try:
            return self.ask("quit")
        finally:
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run(quick: bool) -> dict[str, Any]:
    if not _loopback_aliases_work():
        return {"available": False, "reason": "cannot bind 127.0.1.x (no 127.0.0.0/8 loopback)"}
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = IDLE_CONNECTIONS + SLOWLORIS + 256
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            return {"available": False, "reason": f"open-file limit {hard} < {need} here"}
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    passages, repeats = QUICK_SIZES if quick else FULL_SIZES
    idle: list[dict[str, Any]] = []
    flood: list[dict[str, Any]] = []
    health = {"ok": 0, "asked": 0}
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-edge-") as tmp:
        child = _Child(tmp)
        if not child.port:
            child.proc.kill()
            return {"available": False, "reason": "bench kiosk did not start"}
        try:
            limit_s = passages * 8 + 60
            for _ in range(repeats):
                idle.append(child.phase(passages, limit_s))
                fl = Flood(child.port, IDLE_CONNECTIONS, SLOWLORIS)
                poller = HealthPoller(child.port)
                with fl:
                    time.sleep(3)  # the flood reaches its caps before the timing starts
                    with poller:
                        flood.append(child.phase(passages, limit_s))
                flood[-1]["flood_connects"] = fl.connects
                health["ok"] += poller.ok
                health["asked"] += poller.asked
            final = child.close()
        finally:
            if child.proc.poll() is None:
                child.proc.kill()
                child.proc.wait()

    def med(reports: list[dict[str, Any]], key: str) -> float:
        return round(statistics.median(float(r[key]) for r in reports), 1)

    idle_p99, flood_p99 = med(idle, "p99_ms"), med(flood, "p99_ms")
    everything = idle + flood
    return {
        "connections": IDLE_CONNECTIONS,
        "slowloris": SLOWLORIS,
        "child_open_files": CHILD_NOFILE,
        "loop_p99_idle_ms": idle_p99,
        "loop_p99_flood_ms": flood_p99,
        "flood_over_idle": round(flood_p99 / idle_p99, 2) if idle_p99 else None,
        "loop_p50_idle_ms": med(idle, "p50_ms"),
        "loop_p50_flood_ms": med(flood, "p50_ms"),
        "loop_metric": "code_to_committed_decision_with_temperature",
        "sched_lag_p99_idle_ms": med(idle, "sched_lag_p99_ms"),
        "sched_lag_p99_flood_ms": med(flood, "sched_lag_p99_ms"),
        "passages": sum(int(r["passages"]) + int(r["no_decision"]) for r in everything),
        "passages_without_temperature": sum(int(r["without_temperature"]) for r in everything),
        "lost_events": int(final["submitted"]) - int(final["recorded"]),
        "undecided": sum(int(r["no_decision"]) for r in everything),
        "health_ok_fraction_flood": round(health["ok"] / health["asked"], 3)
        if health["asked"]
        else None,
        "refused_connections": int(flood[-1]["refused"]),
        "evicted_connections": int(flood[-1]["evicted"]),
        "flood_connects": sum(int(r["flood_connects"]) for r in flood),
        "accept_errors": int(flood[-1]["accept_errors"]),
        "repeats": repeats,
    }


if __name__ == "__main__":  # pragma: no cover - the bench's child process
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        _serve(sys.argv[2])
    else:
        print("usage: python -m checkpoint.bench.edge serve DATA_DIR", file=sys.stderr)
        sys.exit(2)
