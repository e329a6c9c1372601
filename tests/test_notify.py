"""The sd_notify protocol as systemd hears it: a real AF_UNIX datagram socket stands in for
``$NOTIFY_SOCKET``; time is a FakeClock, so nothing here waits for real (except the one
``slow`` test that runs the watchdog on the real event loop in a child process)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import unit_seconds

from checkpoint.notify import Notifier, NotifyError, Watchdog, socket_address, watchdog_interval_ns
from kiosk.clock import FakeClock


class FakeSystemd:
    """The receiving end of NOTIFY_SOCKET: a bound SOCK_DGRAM socket that collects messages."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env_value = env_value

    def messages(self) -> list[str]:
        out = []
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return out
            out.append(data.decode("utf-8"))

    def wait_message(self, timeout_s: float) -> str | None:
        self.sock.settimeout(timeout_s)
        try:
            return self.sock.recv(4096).decode("utf-8")
        except TimeoutError:
            return None
        finally:
            self.sock.setblocking(False)

    def wait_ready(self, proc: subprocess.Popen, start_s: float) -> str:
        """What systemd waits for of the ``Type=notify`` daemon ``proc``: ``READY=1`` within
        ``start_s`` (the unit's ``TimeoutStartSec``), each ``EXTEND_TIMEOUT_USEC`` giving it
        that long from when it came, as systemd does. The ``STATUS`` sent with it; fails when
        the daemon ended first, or when the time ran out (systemd would have killed it)."""
        deadline = time.monotonic() + start_s
        while (left := deadline - time.monotonic()) > 0:
            message = self.wait_message(min(left, 0.5))  # a bounded wait, to see it end
            if message is None:
                assert proc.poll() is None, f"the daemon ended (exit {proc.returncode}), not ready"
                continue
            said = dict(line.partition("=")[::2] for line in message.splitlines())
            if "EXTEND_TIMEOUT_USEC" in said:
                extended = time.monotonic() + int(said["EXTEND_TIMEOUT_USEC"]) / 1e6
                deadline = max(deadline, extended)
            if said.get("READY") == "1":
                return said.get("STATUS", "")
        raise AssertionError(f"no READY=1 within the start's {start_s:.0f} s (TimeoutStartSec)")


#: systemd's bounds from kiosk.service for the start (READY=1 ending it) and for the stop
#: (SIGTERM to the exit), and one for a request to a started daemon (answered at once).
START_S = unit_seconds("TimeoutStartSec")
STOP_S = unit_seconds("TimeoutStopSec")
WAIT_S = 30.0


@contextlib.contextmanager
def daemon_running(command: list[str], systemd: FakeSystemd, log: Path) -> Iterator[dict]:
    """The daemon ``command`` (a ``kiosk run``, its config's ``port = 0``) run as systemd runs
    it (``Type=notify``) under ``systemd``: its health once it said READY=1 within the unit's
    ``TimeoutStartSec``, on the port its status names (the one the system gave it); at the
    end SIGTERM, and exit 0 within the unit's ``TimeoutStopSec``. Its journal (stderr) goes
    to ``log``, shown when it fails."""
    env = {**os.environ, "NOTIFY_SOCKET": systemd.env_value}
    env.pop("WATCHDOG_USEC", None)
    env.pop("WATCHDOG_PID", None)
    with log.open("w", encoding="utf-8") as journal:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=journal, env=env)
    try:
        try:
            status = systemd.wait_ready(proc, START_S)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; its journal: {log.read_text()[-3000:]}") from None
        [url] = re.findall(r"http://\S+", status)  # "deciding; http://127.0.0.1:PORT"
        yield httpx.get(f"{url}/api/v1/health", timeout=WAIT_S).raise_for_status().json()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_S) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def systemd() -> Iterator[FakeSystemd]:
    # A short directory: sun_path holds only 108 bytes and pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="kn-") as d:
        path = os.path.join(d, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.setblocking(False)
        try:
            yield FakeSystemd(sock, path)
        finally:
            sock.close()


@pytest.fixture
def abstract_systemd() -> Iterator[FakeSystemd]:
    name = f"kiosk-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    try:
        yield FakeSystemd(sock, "@" + name)
    finally:
        sock.close()


class Heartbeat:
    """What the engine runner gives the watchdog: healthy while beats are recent."""

    def __init__(self, clock: FakeClock, stall_after_s: float) -> None:
        self.clock = clock
        self.stall_ns = int(stall_after_s * 1e9)
        self.last_ns = clock.monotonic_ns()

    def beat(self) -> None:
        self.last_ns = self.clock.monotonic_ns()

    def healthy(self) -> bool:
        return self.clock.monotonic_ns() - self.last_ns < self.stall_ns


def watchdog_env(systemd: FakeSystemd, usec: int = 10_000_000) -> dict[str, str]:
    return {"NOTIFY_SOCKET": systemd.env_value, "WATCHDOG_USEC": str(usec)}


# --- Notifier -----------------------------------------------------------------------------


def test_ready_with_status_reaches_the_socket_in_one_datagram(systemd):
    notifier = Notifier.from_env({"NOTIFY_SOCKET": systemd.env_value})
    assert notifier.enabled
    assert notifier.ready("deciding; camera ok")
    assert systemd.messages() == ["READY=1\nSTATUS=deciding; camera ok"]


def test_status_and_stopping_are_spoken(systemd):
    notifier = Notifier(systemd.env_value)
    notifier.status("starting devices")
    notifier.stopping("shutting down")
    assert systemd.messages() == [
        "STATUS=starting devices",
        "STOPPING=1\nSTATUS=shutting down",
    ]


def test_abstract_namespace_socket_is_reached(abstract_systemd):
    notifier = Notifier.from_env({"NOTIFY_SOCKET": abstract_systemd.env_value})
    assert notifier.ready()
    assert abstract_systemd.messages() == ["READY=1"]


def test_abstract_address_gets_a_leading_nul():
    assert socket_address("@kiosk/notify") == b"\0kiosk/notify"
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"


def test_no_notify_socket_makes_every_call_a_no_op():
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert notifier.ready("x") is False
    assert notifier.watchdog() is False
    assert notifier.stopping() is False


def test_a_newline_in_status_cannot_inject_another_assignment(systemd):
    notifier = Notifier(systemd.env_value)
    notifier.status("camera lost\nREADY=1")
    assert systemd.messages() == ["STATUS=camera lost READY=1"]


def test_malformed_assignment_is_refused(systemd):
    with pytest.raises(ValueError):
        Notifier(systemd.env_value).send("READY")


@pytest.mark.parametrize("value", ["relative/path", "@", "/" + "x" * 200])
def test_unusable_notify_socket_disables_notification_with_a_warning(value, caplog):
    with pytest.raises(NotifyError):
        socket_address(value)
    notifier = Notifier.from_env({"NOTIFY_SOCKET": value})
    assert not notifier.enabled
    assert "NOTIFY_SOCKET" in caplog.text


def test_send_to_a_vanished_socket_is_logged_once_not_raised(caplog):
    with tempfile.TemporaryDirectory(prefix="kn-") as d:
        notifier = Notifier(os.path.join(d, "gone"))
        assert notifier.ready() is False
        assert notifier.watchdog() is False
    assert caplog.text.count("cannot notify systemd") == 1


def test_a_full_systemd_queue_drops_the_message_instead_of_blocking(systemd, caplog):
    """The notifier runs on the event loop: a receiver that does not read must not stall it."""
    notifier = Notifier(systemd.env_value)
    results: list[bool] = []

    def flood() -> None:
        for _ in range(20_000):
            results.append(notifier.watchdog())
            if not results[-1]:
                return

    worker = threading.Thread(target=flood, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "send blocked on a full socket queue"
    assert results[-1] is False
    assert caplog.text.count("cannot notify systemd") == 1


# --- watchdog interval from the environment -----------------------------------------------


def test_watchdog_interval_is_half_of_watchdog_usec():
    assert watchdog_interval_ns({"WATCHDOG_USEC": "30000000"}, pid=7) == 15_000_000_000


def test_watchdog_meant_for_another_pid_is_not_ours():
    env = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1234"}
    assert watchdog_interval_ns(env, pid=1234) == 15_000_000_000
    assert watchdog_interval_ns(env, pid=99) is None


def test_no_watchdog_usec_means_no_watchdog(systemd, clock):
    wd = Watchdog.from_env(Notifier(systemd.env_value), lambda: True, clock, environ={})
    assert not wd.enabled
    assert wd.tick(clock.monotonic_ns()) is False
    asyncio.run(wd.run())  # returns at once
    assert systemd.messages() == []


@pytest.mark.parametrize("usec", ["soon", "0", "-5"])
def test_bad_watchdog_usec_disables_the_watchdog_with_a_warning(usec, systemd, clock, caplog):
    env = {"NOTIFY_SOCKET": systemd.env_value, "WATCHDOG_USEC": usec}
    wd = Watchdog.from_env(Notifier.from_env(env), lambda: True, clock, environ=env)
    assert not wd.enabled
    assert "WATCHDOG_USEC" in caplog.text


# --- Watchdog.tick: periodic pings, withheld while stalled ---------------------------------


def test_watchdog_pings_every_half_period_while_the_loop_beats(systemd, clock):
    beat = Heartbeat(clock, stall_after_s=3)
    notifier = Notifier.from_env(watchdog_env(systemd))
    wd = Watchdog.from_env(notifier, beat.healthy, clock, environ=watchdog_env(systemd))
    assert wd.interval_ns == 5_000_000_000
    sent = []
    for _ in range(40):  # 20 s in 0.5 s steps, the loop beating every step
        sent.append(wd.tick(clock.monotonic_ns()))
        clock.advance(0.5)
        beat.beat()
    assert sent.count(True) == 4  # t = 0, 5, 10, 15
    assert [i for i, s in enumerate(sent) if s] == [0, 10, 20, 30]
    assert systemd.messages() == ["WATCHDOG=1"] * 4


def test_watchdog_pings_stop_when_the_loop_stalls_and_resume_when_it_recovers(systemd, clock):
    beat = Heartbeat(clock, stall_after_s=3)
    env = watchdog_env(systemd)
    notifier = Notifier.from_env(env)
    notifier.ready("deciding")
    wd = Watchdog.from_env(notifier, beat.healthy, clock, environ=env)
    assert systemd.messages() == ["READY=1\nSTATUS=deciding"]

    assert wd.tick(clock.monotonic_ns())  # healthy: ping at t=0
    assert systemd.messages() == ["WATCHDOG=1"]

    # The loop stops beating. Over the next 30 s (three times WatchdogSec) no ping is sent.
    for _ in range(60):
        clock.advance(0.5)
        wd.tick(clock.monotonic_ns())
    stalled = systemd.messages()
    assert "WATCHDOG=1" not in stalled
    assert stalled == ["STATUS=loop stalled; watchdog pings withheld"]
    assert not wd.is_healthy

    # It beats again: pings resume at the next re-check (a quarter period) and the status
    # the daemon last set is restored.
    beat.beat()
    sent_at = None
    for step in range(10):
        if wd.tick(clock.monotonic_ns()):
            sent_at = step
            break
        clock.advance(0.5)
        beat.beat()
    assert sent_at is not None and sent_at <= 3
    assert systemd.messages() == ["STATUS=deciding", "WATCHDOG=1"]


def test_a_health_check_that_raises_counts_as_stalled(systemd, clock, caplog):
    def broken() -> bool:
        raise RuntimeError("runner gone")

    env = watchdog_env(systemd)
    wd = Watchdog.from_env(Notifier.from_env(env), broken, clock, environ=env)
    for _ in range(30):
        wd.tick(clock.monotonic_ns())
        clock.advance(1)
    assert "WATCHDOG=1" not in systemd.messages()
    assert "treating the loop as unhealthy" in caplog.text


def test_run_sleeps_until_the_next_due_time(systemd, clock):
    """run() on an injected sleep that moves the fake clock: pings at 0, 5, 10, 15 s."""
    env = watchdog_env(systemd)
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) >= 4:
            raise asyncio.CancelledError
        clock.advance(seconds)

    wd = Watchdog.from_env(
        Notifier.from_env(env), lambda: True, clock, environ=env, sleep=fake_sleep
    )
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(wd.run())
    assert slept == [5.0, 5.0, 5.0, 5.0]
    assert systemd.messages() == ["WATCHDOG=1"] * 4


def test_start_and_stop_run_the_watchdog_as_a_named_task(systemd, clock):
    env = watchdog_env(systemd)
    ticks = asyncio.Event()

    async def fake_sleep(seconds: float) -> None:
        ticks.set()
        await asyncio.Event().wait()  # park until cancelled

    async def main() -> str:
        wd = Watchdog.from_env(
            Notifier.from_env(env), lambda: True, clock, environ=env, sleep=fake_sleep
        )
        task = wd.start()
        assert wd.start() is task
        await ticks.wait()
        await wd.stop()
        assert task.cancelled()
        return task.get_name()

    assert asyncio.run(main()) == "kiosk-watchdog"
    assert systemd.messages() == ["WATCHDOG=1"]


# --- the real event loop, real time ----------------------------------------------------------

_CHILD = """
import asyncio, sys, time
from drivers.clocksync import system_clock
from checkpoint.notify import Notifier, Watchdog

stall_after = float(sys.argv[1])
start = time.monotonic()

async def main():
    notifier = Notifier.from_env()
    notifier.ready("deciding")
    # Healthy for `stall_after` seconds, then the loop "hangs" (heartbeat stops).
    wd = Watchdog.from_env(notifier, lambda: time.monotonic() - start < stall_after,
                           system_clock())
    wd.start()
    await asyncio.sleep(stall_after + 1.0)

asyncio.run(main())
"""


@pytest.mark.slow
def test_real_loop_pings_then_goes_quiet_when_it_stalls(systemd):
    env = dict(os.environ, NOTIFY_SOCKET=systemd.env_value, WATCHDOG_USEC="200000")
    env.pop("WATCHDOG_PID", None)
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, "0.6"], env=env, cwd=Path(__file__).parent.parent
    )
    got: list[tuple[float, str]] = []
    t0 = time.monotonic()
    try:
        while child.poll() is None:
            msg = systemd.wait_message(0.05)
            if msg is not None:
                got.append((time.monotonic() - t0, msg))
        got.extend((time.monotonic() - t0, m) for m in systemd.messages())
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0
    texts = [m for _, m in got]
    assert texts[0] == "READY=1\nSTATUS=deciding"
    pings = [t for t, m in got if m == "WATCHDOG=1"]
    assert len(pings) >= 4  # every 0.1 s for 0.6 s
    assert "STATUS=loop stalled; watchdog pings withheld" in texts
    stalled_at = next(t for t, m in got if m.startswith("STATUS=loop stalled"))
    assert all(t < stalled_at for t in pings)
