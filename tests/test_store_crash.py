"""Crash test: a writer SIGKILLed at random points 200 times loses nothing it acknowledged.

A *zygote* process (this file run as a script) imports the store once and forks a fresh
writer child per round, so 200 kills fit in a few seconds instead of 200 interpreter starts.
Each child opens the log and appends events (and audit rows) forever, writing
``ack <table> <seq> <id>`` to stdout with one unbuffered ``write`` only *after* ``append``
returned. The test SIGKILLs it after a random delay (0-50 ms: during open, migrations, a
commit, or between commits), has the zygote reap it, and goes again. Some rounds start on a
brand-new file so kills also land while the file and schema are being created (a child
needs about 10 ms to open a fresh log).

SIGKILL stops the process, not the machine: this proves atomicity and the acknowledgement
contract; survival of a power cut is what ``synchronous=FULL`` adds (docs/event-log.md).
"""

from __future__ import annotations

import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

KILLS = 200
FRESH_FILE_ROUNDS = 20  # of the 200: each on a new file, killed within 30 ms of the fork


def _child(db_path: str) -> None:
    """The writer: append until killed, acknowledging each committed row."""
    from drivers.clocksync import system_clock
    from kiosk.store import EventDraft, EventLog

    log = EventLog(db_path, "crash-kiosk", system_clock()).open()
    i = 0
    while True:
        i += 1
        event = log.append(
            EventDraft(
                direction="in" if i % 2 else "out",
                decision="pass" if i % 5 else "deny",
                reasons=("ok",) if i % 5 else ("fever",),
                pass_id=f"P-{i}",
                household="B2-0402",
                person={"name": "Crash Tester", "n": i},
                temp_c=36.0 + (i % 10) / 10,
                latency_ms=float(i % 300),
            )
        )
        os.write(1, f"ack events {event.seq} {event.id}\n".encode())
        if i % 3 == 0:
            log.audit("crash-test", "note", {"i": i})
            seq = log.last_audit_seq
            os.write(1, f"ack audit {seq} -\n".encode())


def _zygote() -> None:
    """Fork one writer per ``go DB`` line; ``reap PID`` waits for it. Single-threaded, so
    forking is safe."""
    import kiosk.store  # noqa: F401  (imported once, inherited by every child)

    for line in sys.stdin:
        command, arg = line.split()
        if command == "go":
            pid = os.fork()
            if pid == 0:
                try:
                    _child(arg)
                finally:
                    os._exit(3)
            os.write(1, f"pid {pid}\n".encode())
        elif command == "reap":
            _, status = os.waitpid(int(arg), 0)
            os.write(1, f"reaped {arg} {status}\n".encode())


class Zygote:
    def __init__(self, stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        self.stderr = open(stderr_path, "w")  # noqa: SIM115 (closed in close())
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
        )
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=env,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, prefix: str, acks: list[tuple[str, int, str]]) -> str:
        while True:
            try:
                line = self.lines.get(timeout=20)
            except queue.Empty:
                raise AssertionError(
                    f"no {prefix!r} from the zygote: {self.stderr_path.read_text()[-2000:]}"
                ) from None
            if line.startswith("ack "):
                _, table, seq, row_id = line.split()
                acks.append((table, int(seq), row_id))
            elif line.startswith(prefix):
                return line

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.stderr.close()


def _check(db: Path, acks: list[tuple[str, int, str]]) -> int:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "events" not in tables:  # killed before the schema committed: nothing was acked
            assert acks == []
            return 0
        for table in ("events", "audit"):
            seqs = [r[0] for r in conn.execute(f"SELECT seq FROM {table} ORDER BY seq")]
            assert seqs == list(range(1, len(seqs) + 1)), f"{table}: gap in seq"
            mark = conn.execute("SELECT value FROM meta WHERE key = ?", [f"{table}.seq"])
            assert int(mark.fetchone()[0]) == len(seqs), f"{table}: high-water mark off"
            nulls = conn.execute(
                f"SELECT count(*) FROM {table} WHERE hash IS NULL OR prev_hash IS NULL"
                " OR personal_digest IS NULL"
            ).fetchone()[0]
            assert nulls == 0, f"{table}: partial rows"
        ids = dict(conn.execute("SELECT seq, id FROM events"))
        audit_seqs = {r[0] for r in conn.execute("SELECT seq FROM audit")}
        for table, seq, row_id in acks:
            if table == "events":
                assert ids.get(seq) == row_id, f"acknowledged event seq {seq} lost"
            else:
                assert seq in audit_seqs, f"acknowledged audit seq {seq} lost"
        return len(ids)
    finally:
        conn.close()


@pytest.mark.slow
def test_sigkilled_writer_never_loses_an_acknowledged_event(tmp_path, clock):
    from kiosk.store import EventDraft, EventLog, verify_database

    rng = random.Random(20260302)
    main_db = tmp_path / "main.db"
    plan = [(tmp_path / f"fresh-{i}.db", rng.uniform(0, 0.03)) for i in range(FRESH_FILE_ROUNDS)]
    plan += [(main_db, rng.uniform(0, 0.05)) for _ in range(KILLS - FRESH_FILE_ROUNDS)]
    acks: dict[Path, list[tuple[str, int, str]]] = {db: [] for db, _ in plan}

    zygote = Zygote(tmp_path / "zygote.stderr")
    try:
        for db, delay in plan:
            zygote.send(f"go {db}")
            pid = int(zygote.expect("pid ", acks[db]).split()[1])
            time.sleep(delay)  # a random point in the writer's life (real time: a real crash)
            os.kill(pid, signal.SIGKILL)
            zygote.send(f"reap {pid}")
            status = int(zygote.expect(f"reaped {pid}", acks[db]).split()[2])
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
                f"writer exited on its own (status {status}): it crashed, not killed"
            )
    finally:
        zygote.close()

    committed = {db: _check(db, rows) for db, rows in acks.items()}
    assert sum(1 for rows in acks[main_db] if rows[0] == "events") > 100  # it did real work
    assert committed[main_db] >= max(s for t, s, _ in acks[main_db] if t == "events")

    # The log is still usable after 180 crashes: chains verify and seq carries on.
    for db in acks:
        with EventLog(db, "crash-kiosk", clock) as log:
            assert log.verify().ok, f"{db.name}: {log.verify().problem}"
            before = log.last_seq
            assert log.append(EventDraft(direction="in", decision="pass")).seq == before + 1
            assert verify_database(log.reader()).ok


if __name__ == "__main__" and sys.argv[1:] == ["--zygote"]:
    _zygote()
