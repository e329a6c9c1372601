"""The fleet end to end: 20 kiosks, one collector, real PostgreSQL, processes killed at random.

Twenty real kiosk HTTP APIs (``ui.api.router`` on a real ``EventLog`` each, distinct kiosk ids,
data dirs and loopback ports) are hosted five to a process by four *host* processes
(``checkpoint.bench.fleet.host_main``, shared with the fleet bench) — twenty full daemons with
engines and fake cameras would not fit two CPU cores; what the collector talks to and what it
must copy is the same. Each kiosk appends decisions through the real
``EventLog.append`` at random moments and runs the real ``ListSync`` against the collector's
``/lists/bundle``. One ``kiosk collect`` process pulls them all into PostgreSQL.

While that runs, the collector and the hosts are SIGKILLed at random moments and restarted; the
office publishes one list bundle in the middle. At the end the central table must equal the
union of the kiosks' logs exactly — every row, no gap, no duplicate — and the bundle must have
reached all twenty gates.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from checkpoint.bench.fleet import Hosts, free_ports, host_env

ROOT = Path(__file__).resolve().parent.parent
KIOSKS = 20
CHAOS_S = 25.0
SETTLE_TIMEOUT_S = 45.0

pytest_plugins = ("pgfixture",)  # pg_cluster, pg_dsn: a real PostgreSQL


class Fleet:
    """The hosts (``checkpoint.bench.fleet.Hosts``: the same kiosk hosts as the fleet bench), the
    collector process, and the office's key and bundle file."""

    def __init__(self, tmp: Path, dsn: str) -> None:
        from kiosk.passes import new_key_pair

        self.tmp, self.dsn = tmp, dsn
        self.collector_port = free_ports(1)[0]
        self.office = tmp / "office"
        self.key_path, _ = new_key_pair(self.office, "office")
        self.bundle = tmp / "www" / "bundle.json"
        self.bundle.parent.mkdir()
        self.hosts = Hosts(
            tmp,
            kiosks=KIOSKS,
            rate_per_s=8.0,
            trust_dir=str(self.office),
            lists_url=f"http://127.0.0.1:{self.collector_port}/lists/bundle",
        )
        self.collector: subprocess.Popen | None = None
        self.log = open(tmp / "collector.log", "ab")  # noqa: SIM115 - closed in stop()
        config = self.hosts.collector_config(
            poll_interval_s=0.3,
            error_backoff_max_s=2,
            max_concurrent=8,
            retries=2,
            timeout_s=5,
            status_port=self.collector_port,
            lists_bundle_file=str(self.bundle),
        )
        lines = [
            f"{name} = {json.dumps(getattr(config, name))}"
            for name in ("poll_interval_s", "error_backoff_max_s", "max_concurrent", "retries",
                         "timeout_s", "status_port")
        ]  # fmt: skip
        lines.append(f"lists_bundle_file = {json.dumps(str(self.bundle))}")
        for k in config.kiosks:
            lines += [
                "[[kiosks]]",
                f'url = "{k.url}"',
                f"token_file = {json.dumps(str(k.token_file))}",
            ]
        self.config_path = tmp / "collect.toml"
        self.config_path.write_text("\n".join(lines) + "\n")

    def start_collector(self) -> None:
        self.collector = subprocess.Popen(
            [sys.executable, "-m", "checkpoint", "collect", "--config", str(self.config_path)],
            env={**host_env(ROOT), "KIOSK_FLEET_DSN": self.dsn},
            cwd=ROOT,
            stdout=self.log,
            stderr=self.log,
        )

    def kill_collector(self) -> None:
        assert self.collector is not None
        self.collector.send_signal(signal.SIGKILL)
        self.collector.wait(10)

    def publish(self) -> int:
        from kiosk.passes import load_private_key
        from office.listsync import publish_bundle

        lists = {
            "revocations": [{"pass_id": "0123456789ab", "reason": "lost"}],
            "quarantine": [{"household": "3-201", "from": "2026-01-01", "until": "2026-12-31"}],
        }
        key = load_private_key(self.key_path)
        return publish_bundle(key, lists, self.bundle, now=datetime.now(UTC)).version

    def stop(self) -> None:
        if self.collector is not None and self.collector.poll() is None:
            self.collector.send_signal(signal.SIGTERM)
            try:
                self.collector.wait(10)
            except subprocess.TimeoutExpired:
                self.collector.kill()
                self.collector.wait(5)
        self.log.close()
        self.hosts.stop()


def _kiosk_db(k: dict) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{k['data']}/kiosk.db?mode=ro", uri=True, timeout=10)


def _kiosk_state(k: dict) -> tuple[int, int]:
    conn = _kiosk_db(k)
    try:
        last = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        row = conn.execute("SELECT value FROM list_meta WHERE key = 'bundle_version'").fetchone()
        return last, int(row[0]) if row else 0
    finally:
        conn.close()


@pytest.mark.slow
def test_twenty_kiosks_one_collector_random_kills_end_exact(pg_dsn, tmp_path):
    import psycopg

    rng = random.Random(int(os.environ.get("KIOSK_E2E_SEED", "10")))
    fleet = Fleet(tmp_path, pg_dsn)
    hosts = fleet.hosts
    kills = {"collector": 0, "host": 0}
    try:
        hosts.start_all()
        hosts.wait_ready()
        fleet.start_collector()

        started = time.monotonic()
        published = None
        next_kill = started + rng.uniform(1.5, 3.5)
        while time.monotonic() - started < CHAOS_S:
            now = time.monotonic()
            if published is None and now - started > CHAOS_S / 3:
                published = fleet.publish()  # once, while processes keep dying
            if now >= next_kill:
                if rng.random() < 0.5:
                    fleet.kill_collector()
                    kills["collector"] += 1
                    time.sleep(rng.uniform(0.1, 0.8))
                    fleet.start_collector()
                else:
                    h = rng.randrange(len(hosts.procs))
                    hosts.kill(h)
                    kills["host"] += 1
                    time.sleep(rng.uniform(0.1, 0.8))
                    hosts.start(h)
                next_kill = time.monotonic() + rng.uniform(1.0, 3.0)
            time.sleep(0.05)
        assert kills["collector"] and kills["host"], kills

        # Let the kiosks go quiet, make sure everything is up, and wait for the collector.
        hosts.stop_file.write_text("stop")
        hosts.wait_ready()
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            states = {k["kiosk_id"]: _kiosk_state(k) for k in hosts.kiosks}
            with psycopg.connect(pg_dsn) as conn:
                held = dict(
                    conn.execute(
                        "SELECT kiosk_id, max(seq) FROM fleet_events GROUP BY kiosk_id"
                    ).fetchall()
                )
            caught_up = all(held.get(kid) == last for kid, (last, _) in states.items())
            lists_out = all(version == published for _, version in states.values())
            if caught_up and lists_out:
                break
            assert time.monotonic() < deadline, (
                f"not settled: behind={[k for k, (s, _) in states.items() if held.get(k) != s]}"
                f" lists={[k for k, (_, v) in states.items() if v != published]}"
            )
            time.sleep(0.3)

        # Exactly the union of the kiosks' logs: every column, no gap, no duplicate.
        columns = "kiosk_id, seq, id, ts, decision, reasons, temp_c, prev_hash, hash"
        with psycopg.connect(pg_dsn) as conn:
            central = conn.execute(
                f"SELECT {columns} FROM fleet_events ORDER BY kiosk_id, seq"
            ).fetchall()
            total, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT (kiosk_id, seq)) FROM fleet_events"
            ).fetchone()
        union = []
        for k in hosts.kiosks:
            conn = _kiosk_db(k)
            union += [
                (*r[:5], json.loads(r[5]), *r[6:])
                for r in conn.execute(f"SELECT {columns} FROM events ORDER BY seq").fetchall()
            ]
            conn.close()
        assert total == distinct == len(union) > 20 * 50
        assert central == union
        for kiosk_id in {r[0] for r in union}:
            seqs = [r[1] for r in union if r[0] == kiosk_id]
            assert seqs == list(range(1, len(seqs) + 1))

        import httpx

        status = httpx.get(f"http://127.0.0.1:{fleet.collector_port}/status.json", timeout=10)
        kiosks = status.json()["kiosks"]
        assert len(kiosks) == KIOSKS and all(k["lag_events"] in (0, None) for k in kiosks)
    finally:
        fleet.stop()
    print(f"\nfleet e2e: {len(union)} events from {KIOSKS} kiosks, kills {kills}")
