"""``pull`` bench: events per second of a pull over loopback, and what it costs the loop.

A child process runs the real kiosk core (``kiosk.app.build_core``: the engine runner on the
default simulated devices, the event log, ``ui.app.create_app``) under uvicorn on
``127.0.0.1`` (a free port) against a pre-filled temporary event log (100,000 events; 20,000
with ``quick``). This process pulls with the real client (``kiosk.pull.Puller``: hash checks,
SQLite writes) into a fresh target each repeat, and 20 real SSE clients read ``/kiosk/events``
(fed a health message every 50 ms).

* ``events_per_s``: median over repeats of a whole pull (events / wall seconds).
* ``loop_p99_idle_ms`` / ``loop_p99_loaded_ms``: median over repeats of the p99 of the
  *asyncio scheduling lag of the daemon's loop* (how late a 10 ms timer fires;
  ``ui.api.LoopLagMonitor``) — the loop the engine runner decides on — with nothing
  connected, and while 20 SSE clients stream and a pull runs (``loaded_events_per_s`` is that
  pull's rate). The runner does not report a passage-loop latency of its own yet, hence
  ``loop_metric``. Each repeat runs idle, plain and loaded back to back so machine noise hits
  all three alike; ``loaded_over_idle`` is their ratio.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

PEPPER = b"bench-pepper"
SSE_CLIENTS = 20
#: (events, pull repeats, idle seconds)
FULL_SIZES = (100_000, 3, 3.0)
QUICK_SIZES = (20_000, 1, 2.0)


def prefill(path: Path, events: int) -> None:
    """Write ``events`` chained events in bulk, exactly as ``EventLog.append`` would hash
    them (one transaction per 10,000 rows instead of one per row, so set-up stays short)."""
    from kiosk import hashchain
    from kiosk.clock import FakeClock
    from kiosk.store import EventDraft, EventLog

    clock = FakeClock()
    log = EventLog(path, "bench-gate", clock, "NORMAL").open()
    # One real append fixes the schema, the salt and the column encoding for the copies.
    log.append(
        EventDraft(
            direction="in",
            decision="pass",
            pass_id="P-00000",
            household="B1-0101",
            holder="Bench Resident",
            person={"name": "Bench Resident", "phone": "13800138000"},
            temp_c=36.5,
            latency_ms=150.0,
        )
    )
    template = log.events(limit=1)[0]

    def write(db: Any, start: int, count: int) -> None:
        conn = db.conn
        salt = bytes.fromhex(conn.execute("select value from meta where key='salt'").fetchone()[0])
        prev = conn.execute("select hash from events order by seq desc limit 1").fetchone()[0]
        columns = list(template)
        sql = (
            f"insert into events ({', '.join(columns)})"  # noqa: S608 - fixed column names
            f" values ({', '.join('?' for _ in columns)})"
        )
        rows = []
        for seq in range(start, start + count):
            row = dict(template)
            row.update(
                seq=seq,
                id=f"00000000-0000-4000-8000-{seq:012d}",
                ts=f"2026-03-02T{(seq // 3600) % 24:02d}:{(seq // 60) % 60:02d}:"
                f"{seq % 60:02d}.000000Z",
                mono_ns=1_000_000_000 + seq * 1_000_000_000,
                direction="out" if seq % 2 else "in",
                decision="deny" if seq % 50 == 0 else "pass",
                reasons=["fever"] if seq % 50 == 0 else ["ok"],
                temp_c=35.8 + (seq % 20) / 10,
                pass_id=f"P-{seq:05d}",
                household=f"B{seq % 9}-{seq % 400:04d}",
            )
            row["personal_digest"] = hashchain.event_personal_digest(salt, row)
            row["prev_hash"] = prev
            row["hash"] = prev = hashchain.event_hash(row)
            stored = dict(
                row,
                reasons=json.dumps(row["reasons"]),
                flags=json.dumps(row["flags"]),
                person=hashchain.canonical(row["person"]).decode(),
                clock_synced=int(row["clock_synced"]),
            )
            rows.append([stored[c] for c in columns])
        conn.executemany(sql, rows)
        conn.execute("update meta set value = ? where key = 'events.seq'", [str(start + count - 1)])

    seq = 2
    while seq <= events:
        count = min(10_000, events - seq + 1)
        log.submit(lambda db, s=seq, c=count: write(db, s, c))
        seq += count
    log.close()


# --- the server (child process) -------------------------------------------------------------


def serve(db_path: str, token_file: str) -> None:
    """Child process: the real kiosk core (``kiosk.app.build_core``: engine runner on the
    default simulated devices, event log, screens, API) on a free loopback port, printed on
    stdout, plus two bench-only routes that report the loop's lag."""
    import uvicorn
    from fastapi import FastAPI

    from kiosk import stats
    from kiosk.app import build_core
    from kiosk.clock import SystemClock
    from kiosk.config import parse_config
    from ui import api
    from ui.api import LoopLagMonitor
    from ui.app import create_app

    path = Path(db_path)
    config = parse_config(
        {"site": {"kiosk_id": "bench-gate"}, "store": {"path": path.name, "synchronous": "FULL"}}
    )
    core = build_core(config, path.parent, SystemClock(assume_synced=True))
    core.store.submit(lambda db: stats.MIGRATIONS.apply(db))
    _, plain = core.tokens.create(["logs:read"], name="bench")
    Path(token_file).write_text(plain, encoding="utf-8")
    lag = LoopLagMonitor(keep=200_000)

    async def publisher() -> None:
        # Screen traffic for the SSE clients: a health message every 50 ms.
        n = 0
        while True:
            await asyncio.sleep(0.05)
            n += 1
            core.bus.publish({"type": "health", "n": n, **core.health()})

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await core.runner.start()
        lag.ensure_started()
        task = asyncio.get_running_loop().create_task(publisher())
        yield
        task.cancel()
        await core.runner.stop()
        api.PageBuilder.shutdown()

    app = create_app(core)
    app.router.lifespan_context = lifespan

    @app.post("/_bench/lag/reset")
    def reset() -> dict:
        lag.samples.clear()
        return {"ok": True}

    @app.get("/_bench/lag")
    def lag_report() -> dict:
        samples = sorted(lag.samples)
        if not samples:
            return {"samples": 0}
        return {
            "samples": len(samples),
            "p50_ms": samples[len(samples) // 2] * 1000,
            "p99_ms": samples[min(len(samples) - 1, int(0.99 * len(samples)))] * 1000,
            "max_ms": samples[-1] * 1000,
        }

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
    )
    try:
        server.run(sockets=[sock])
    finally:
        api.PageBuilder.shutdown()
        core.store.close()
        core.devices.close()


# --- the client (this process) --------------------------------------------------------------


class _SseClients:
    """``n`` SSE clients reading ``/kiosk/events`` on one asyncio thread until stopped."""

    def __init__(self, base: str, n: int) -> None:
        self.base, self.n = base, n
        self.connected = 0
        self.messages = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _one(self, client: httpx.AsyncClient) -> None:
        async with client.stream("GET", self.base + "/kiosk/events") as response:
            self.connected += 1
            if self.connected == self.n:
                self._ready.set()
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    self.messages += 1
                if self._stop.is_set():
                    return

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.n + 5)
        async with httpx.AsyncClient(timeout=None, limits=limits) as client:
            tasks = [asyncio.create_task(self._one(client)) for _ in range(self.n)]
            while not self._stop.is_set():
                await asyncio.sleep(0.05)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> _SseClients:
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError(f"only {self.connected} of {self.n} SSE clients connected")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _timed_pull(base: str, token: str, target: Path) -> tuple[int, float]:
    from kiosk.pull import Puller

    start = time.perf_counter()
    with Puller(target, page_size=5000) as puller:
        result = puller.pull(base, token)
    return result.inserted, time.perf_counter() - start


def run(quick: bool) -> dict[str, Any]:
    events, repeats, idle_s = QUICK_SIZES if quick else FULL_SIZES
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-pull-") as tmp:
        tmp_path = Path(tmp)
        db = tmp_path / "kiosk.db"
        prefill(db, events)
        token_file = tmp_path / "token"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk.bench.pull", "serve", str(db), str(token_file)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert proc.stdout is not None
            port = int(proc.stdout.readline().strip() or 0)
            if not port:
                proc.wait(10)
                return {
                    "available": False,
                    "reason": f"bench server did not start (exit {proc.returncode})",
                }
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(timeout=10) as http:
                for _ in range(200):
                    try:
                        http.get(base + "/_bench/lag")
                        break
                    except httpx.TransportError:
                        time.sleep(0.05)
                token = token_file.read_text(encoding="utf-8").strip()

                # Interleaved repeats, so machine noise hits idle, plain and loaded alike.
                idle_p99, rates, loaded_p99, loaded_rates = [], [], [], []
                sse_messages = 0
                for i in range(repeats):
                    http.post(base + "/_bench/lag/reset")
                    time.sleep(idle_s)  # idle: nothing connected, nothing pulled
                    idle_p99.append(http.get(base + "/_bench/lag").json()["p99_ms"])

                    inserted, seconds = _timed_pull(base, token, tmp_path / f"plain-{i}.db")
                    if inserted != events:
                        raise RuntimeError(f"pulled {inserted} of {events} events")
                    rates.append(inserted / seconds)

                    # Loaded: 20 SSE clients streaming while a whole pull runs.
                    with _SseClients(base, SSE_CLIENTS) as sse:
                        http.post(base + "/_bench/lag/reset")
                        inserted, seconds = _timed_pull(base, token, tmp_path / f"loaded-{i}.db")
                        loaded_p99.append(http.get(base + "/_bench/lag").json()["p99_ms"])
                        sse_messages += sse.messages
                    loaded_rates.append(inserted / seconds)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    idle = statistics.median(idle_p99)
    loaded = statistics.median(loaded_p99)
    return {
        "events": events,
        "events_per_s": round(statistics.median(rates)),
        "loop_p99_idle_ms": round(idle, 3),
        "loop_p99_loaded_ms": round(loaded, 3),
        "loop_metric": "asyncio_sched_lag_daemon_loop",
        "loaded_over_idle": round(loaded / idle, 2) if idle > 0 else None,
        "loaded_events_per_s": round(statistics.median(loaded_rates)),
        "sse_clients": SSE_CLIENTS,
        "sse_messages": sse_messages,
        "repeats": repeats,
    }


if __name__ == "__main__":  # pragma: no cover - the bench's child process
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        print("usage: python -m kiosk.bench.pull serve DB TOKEN_FILE", file=sys.stderr)
        sys.exit(2)
