"""The GM65-class serial scanner against a fake module on a real pty pair."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import pytest
from fd_support import descriptors_past_1024

from drivers.codes import SerialLinePipeline
from drivers.fake_serial import GM65_TRIGGER, FakeGM65
from drivers.serial_scanner import GM65_TRIGGER_ACK, SerialScanner, strip_ack
from kiosk.backoff import Backoff
from kiosk.config.readers import DecoderConfig
from kiosk.devices import CodeReader

PASS = "KP1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDE$VK G2EC0LSV5RF"
OTHER = "KP1:Q7Y2L1U1:C1B/LGA57J0J2OMWRQ8QV3GE5%M1S*T.4Y6Y-ZC5O0G1*1FMT4E"
WAIT_S = 5.0  # upper bound for the driver thread; met at once when things work


@pytest.fixture
def module(tmp_path):
    with FakeGM65(tmp_path) as fake:
        yield fake


def _scanner(
    port: str, clock, reconnect: Backoff = Backoff(base_s=0.02, cap_s=0.05), **kw
) -> tuple[SerialScanner, queue.Queue, list]:
    rejected: list = []
    scanner = SerialScanner(
        port,
        clock,
        name="gm65",
        reconnect=reconnect,
        on_rejection=rejected.append,
        **kw,
    )
    codes: queue.Queue = queue.Queue()
    scanner.start(codes.put)
    return scanner, codes, rejected


def _wait_health(scanner: SerialScanner, state: str) -> None:
    """Until the scanner's health is ``state``, for ``WAIT_S`` at most in all (it waited
    ``WAIT_S`` a change for up to 100 changes: 500 s before a failing test said so)."""
    deadline = time.monotonic() + WAIT_S
    while scanner.health().state != state and time.monotonic() < deadline:
        scanner.health_changed.wait(min(0.1, max(0.0, deadline - time.monotonic())))
        scanner.health_changed.clear()
    assert scanner.health().state == state


def test_scanned_code_reaches_the_sink_tagged_with_the_scanner(module, clock):
    scanner, codes, _ = _scanner(module.port, clock)
    try:
        assert isinstance(scanner, CodeReader)
        _wait_health(scanner, "ok")
        module.scan(PASS)
        code = codes.get(timeout=WAIT_S)
        assert (code.text, code.source, code.mono_ns) == (PASS, "gm65", clock.monotonic_ns())
    finally:
        scanner.stop()
    assert scanner.health().state == "absent"


def test_garbage_bytes_are_rejected_and_the_next_code_still_reads(module, clock):
    scanner, codes, rejected = _scanner(module.port, clock)
    try:
        _wait_health(scanner, "ok")
        module.send_raw(b"\xff\xfe\x00\x80\x81garbage\r\n")
        noise = bytes(b for b in range(256) if b not in (0x0A, 0x0D)) * 20  # 5 KB
        module.send_raw(noise + b"\r\n")
        module.scan(PASS)
        assert codes.get(timeout=WAIT_S).text == PASS
        reasons = [r.reason for r in rejected]
        assert reasons[0] == "not_utf8" and "oversized" in reasons
        assert codes.empty()
    finally:
        scanner.stop()


def test_junk_glued_to_a_code_rejects_that_line_instead_of_misreading_it(module, clock):
    scanner, codes, rejected = _scanner(module.port, clock)
    try:
        _wait_health(scanner, "ok")
        module.send_raw(b"\x80\x81")  # a baud glitch without a line end
        module.scan(PASS)
        module.scan(OTHER)
        assert codes.get(timeout=WAIT_S).text == OTHER
        assert [r.reason for r in rejected] == ["not_utf8"]
    finally:
        scanner.stop()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"A" * 4096, "oversized"),
        (b"KP1:ABC\x00DEF", "control_chars"),
        (b"KP1:\x1b]0;owned\x07", "control_chars"),
    ],
)
def test_hostile_scanner_lines_are_rejected_with_a_reason(module, clock, payload, reason):
    scanner, codes, rejected = _scanner(module.port, clock)
    try:
        _wait_health(scanner, "ok")
        module.scan(payload)
        module.scan(PASS)
        assert codes.get(timeout=WAIT_S).text == PASS
        assert [r.reason for r in rejected] == [reason]
    finally:
        scanner.stop()


def test_sql_and_html_lines_reach_the_engine_as_plain_text(module, clock):
    scanner, codes, _ = _scanner(module.port, clock)
    try:
        _wait_health(scanner, "ok")
        module.scan("'; DROP TABLE events; --")
        module.scan("<img src=x onerror=alert(1)>")
        got = [codes.get(timeout=WAIT_S).text, codes.get(timeout=WAIT_S).text]
        assert got == ["'; DROP TABLE events; --", "<img src=x onerror=alert(1)>"]
    finally:
        scanner.stop()


def test_unplugged_scanner_is_a_fault_and_reconnects_by_itself(module, clock):
    scanner, codes, _ = _scanner(module.port, clock)
    try:
        _wait_health(scanner, "ok")
        module.unplug()
        _wait_health(scanner, "fault")
        detail = scanner.health().detail
        assert "scanner lost" in detail or "cannot open" in detail
        module.replug()
        _wait_health(scanner, "ok")
        assert scanner.connects >= 2
        module.scan(PASS)
        assert codes.get(timeout=WAIT_S).text == PASS
    finally:
        scanner.stop()


def test_stop_wakes_the_read_that_waits_and_the_reader_thread_ends(module, clock, monkeypatch):
    """A stop (each reload, each shutdown) waited out the reader's read (0.1 s each on the Pi
    too) before its thread ended; a read that waits long ended the stop with the thread still
    reading (the join gave up after 2 s). The stop wakes the read; codes still read at once."""
    monkeypatch.setattr(SerialScanner, "WAIT_MS", 60_000)
    scanner, codes, _ = _scanner(module.port, clock)
    thread = scanner._worker._thread
    try:
        _wait_health(scanner, "ok")
        module.scan(PASS)
        assert codes.get(timeout=WAIT_S).text == PASS
    finally:
        scanner.stop()
    assert thread is not None and not thread.is_alive()
    assert scanner.health().state == "absent"


def test_unplugging_the_fake_module_ends_its_thread_at_once(tmp_path, monkeypatch):
    """The fake module's unplug (every test's and replay's close) waited out its wait for a
    command (50 ms) before its thread ended; one waiting long outlived the unplug."""
    monkeypatch.setattr(FakeGM65, "POLL_MS", 60_000)
    with FakeGM65(tmp_path) as fake:
        thread = fake._worker._thread
        fake.unplug()
        assert thread is not None and not thread.is_alive()
        fake.replug()
        thread = fake._worker._thread
    assert thread is not None and not thread.is_alive()


def test_a_replug_refused_by_the_worker_leaves_the_fake_unplugged_for_the_next(tmp_path):
    """Before: a replug whose worker refused to start (the unplug's stop gave up on its loop)
    kept the new pty and symlink: every later replug returned early and the fake stayed
    silent for good. The refused replug is undone: the next one plugs it in."""
    with FakeGM65(tmp_path) as fake:
        fake.unplug()
        start = fake._worker.start

        def refused(*_args):
            raise RuntimeError("worker fake-gm65: its loop is stopped, has not ended")

        fake._worker.start = refused
        with pytest.raises(RuntimeError):
            fake.replug()
        assert not Path(fake.port).exists()
        fake._worker.start = start
        fake.replug()
        thread = fake._worker._thread
        assert thread is not None and thread.is_alive()
        assert Path(fake.port).exists()


def test_scanner_absent_at_start_is_a_fault_until_plugged_in(tmp_path, clock):
    fake = FakeGM65(tmp_path)
    fake.unplug()
    scanner, codes, _ = _scanner(fake.port, clock)
    try:
        _wait_health(scanner, "fault")
        assert "cannot open" in scanner.health().detail
        fake.replug()
        _wait_health(scanner, "ok")
        fake.scan(PASS)
        assert codes.get(timeout=WAIT_S).text == PASS
    finally:
        scanner.stop()
        fake.close()


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_trigger_mode_sends_the_command_and_strips_the_acknowledgement(module, clock):
    module.queue_code(PASS)
    scanner, codes, rejected = _scanner(module.port, clock, trigger=GM65_TRIGGER)
    try:
        code = codes.get(timeout=WAIT_S)
        assert code.text == PASS  # no 02 00 00 01 00 33 31 glued to the front
        assert module.triggers >= 1 and rejected == []
        module.queue_code(OTHER)
        clock.advance(1.0)  # the next trigger is due on the kiosk's clock
        assert codes.get(timeout=WAIT_S).text == OTHER
    finally:
        scanner.stop()


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_trigger_mode_scanner_that_stops_answering_is_a_fault_until_it_answers(module, clock):
    """A module in keyboard mode, at another baud rate or hung answers no trigger: the port
    is open, so only the missing acknowledgements show that nobody can scan."""
    module.mute()
    scanner, _codes, _ = _scanner(module.port, clock, trigger=GM65_TRIGGER)
    try:
        for _ in range(3):  # three triggers unanswered: still nothing said
            assert module.trigger_seen.wait(WAIT_S)
            module.trigger_seen.clear()
            assert scanner.health().state == "ok"
            scanner.health_changed.clear()
            clock.advance(1.0)  # the next trigger is due
        assert module.trigger_seen.wait(WAIT_S)  # the fourth, three before it unanswered
        assert scanner.health_changed.wait(WAIT_S)
        health = scanner.health()
        assert health.state == "fault" and "acknowledge" in health.detail
        module.muted = False  # set up again (or back from its hang): answers the next trigger
        clock.advance(1.0)
        _wait_health(scanner, "ok")
    finally:
        scanner.stop()


def test_ack_split_across_reads_is_still_stripped():
    data = GM65_TRIGGER_ACK + PASS.encode() + b"\r\n"
    clean, held = strip_ack(data[:3])
    assert clean == b"" and held == data[:3]
    clean, held = strip_ack(held + data[3:])
    assert (clean, held) == (PASS.encode() + b"\r\n", b"")


def test_pyserial_loop_url_works_as_a_port(clock):
    import serial

    port = serial.serial_for_url("loop://", timeout=0.1)
    scanner = SerialScanner("loop://", clock, serial_factory=lambda url, **kw: port)
    codes: queue.Queue = queue.Queue()
    scanner.start(codes.put)
    try:
        _wait_health(scanner, "ok")
        port.write(PASS.encode() + b"\r")
        assert codes.get(timeout=WAIT_S).text == PASS
    finally:
        scanner.stop()


def test_stop_ends_the_wait_of_a_port_that_is_not_posix_at_once(clock):
    """A port with no descriptor to poll (pyserial's ``loop://``, the fakes' and tests')
    waited out its own read timeout at each stop (0.1 s; one waiting long outlived the stop's
    2 s join, its thread still reading): the stop ends that read too (its ``cancel_read``)."""
    import serial

    port = serial.serial_for_url("loop://", timeout=60)  # a read waits for a minute
    scanner = SerialScanner("loop://", clock, serial_factory=lambda url, **kw: port)
    codes: queue.Queue = queue.Queue()
    scanner.start(codes.put)
    thread = scanner._worker._thread
    try:
        _wait_health(scanner, "ok")
        port.write(PASS.encode() + b"\r")
        assert codes.get(timeout=WAIT_S).text == PASS
    finally:
        scanner.stop()
    assert thread is not None and not thread.is_alive()  # not the join's 2 s given up
    assert scanner.health().state == "absent"


def test_same_code_scanned_twice_within_the_holdoff_is_submitted_once(module, clock):
    scanner, codes, _ = _scanner(module.port, clock, decoder_cfg=DecoderConfig(holdoff_s=3))
    try:
        _wait_health(scanner, "ok")
        module.scan(PASS)
        module.scan(PASS)
        module.scan(OTHER)
        assert [codes.get(timeout=WAIT_S).text, codes.get(timeout=WAIT_S).text] == [PASS, OTHER]
        clock.advance(3.5)
        module.scan(PASS)
        assert codes.get(timeout=WAIT_S).text == PASS
    finally:
        scanner.stop()


def test_any_error_opening_the_port_is_a_fault_logged_once_per_cause(clock, caplog):
    attempts = []
    enough = __import__("threading").Event()

    def factory(port, **kw):
        attempts.append(port)
        if len(attempts) >= 6:
            enough.set()
        raise RuntimeError("lgpio-style failure")  # not a SerialException/OSError

    caplog.set_level("WARNING", logger="drivers")
    # Six tries, not the waits between them: a millisecond each (0.2 s at the module's pace).
    quick = Backoff(base_s=0.001, cap_s=0.001)
    scanner, _, _ = _scanner("/dev/ttyS0", clock, quick, serial_factory=factory)
    assert enough.wait(WAIT_S)
    scanner.stop()
    assert len(attempts) >= 6
    assert scanner.faults.lines == 1
    assert [r.getMessage() for r in caplog.records] == [
        "gm65: cannot open /dev/ttyS0: RuntimeError: lgpio-style failure"
    ]


class ScriptedPort:
    """A pyserial port that returns scripted chunks, then reads nothing; each empty read
    advances the kiosk's clock by the driver's read timeout (0.1 s), as a real one waits."""

    def __init__(self, clock, chunks: list[bytes]) -> None:
        self._clock = clock
        self._chunks = list(chunks)
        self.in_waiting = 0

    def read(self, _n: int) -> bytes:
        if self._chunks:
            return self._chunks.pop(0)
        self._clock.advance(0.1)
        return b""

    def write(self, data: bytes) -> int:
        return len(data)

    def close(self) -> None:
        return None


def _wait_health_within(scanner: SerialScanner, state: str, changes: int = 3) -> None:
    """``_wait_health`` for a scripted port: only a few changes can come, so fail fast."""
    for _ in range(changes):
        if scanner.health().state == state:
            return
        scanner.health_changed.wait(WAIT_S)
        scanner.health_changed.clear()
    assert scanner.health().state == state


def test_a_module_sending_codes_without_a_line_end_is_reported_not_silently_dropped(clock):
    """A GM65 out of the box sends no line end: its codes pile up unseen while the port
    looks fine. A partial line left alone is dropped (nothing glued to the next code) and the
    reader says what to do."""
    port = ScriptedPort(clock, [PASS.encode()])
    rejected: list = []
    scanner = SerialScanner(
        "/dev/ttyACM0", clock, serial_factory=lambda *_a, **_k: port, on_rejection=rejected.append
    )
    codes: queue.Queue = queue.Queue()
    scanner.start(codes.put)
    try:
        _wait_health_within(scanner, "degraded")
        assert "line end" in scanner.health().detail
        assert [r.reason for r in rejected] == ["unterminated"]
        assert rejected[0].length == len(PASS)
        assert codes.empty()
    finally:
        scanner.stop()


def test_a_terminated_code_after_an_unterminated_one_reads_alone_and_clears_the_warning(clock):
    port = ScriptedPort(clock, [b"junk"])
    scanner = SerialScanner("/dev/ttyACM0", clock, serial_factory=lambda *_a, **_k: port)
    codes: queue.Queue = queue.Queue()
    scanner.start(codes.put)
    try:
        _wait_health_within(scanner, "degraded")
        port._chunks.append(PASS.encode() + b"\r")
        assert codes.get(timeout=WAIT_S).text == PASS
        _wait_health_within(scanner, "ok")
    finally:
        scanner.stop()


def test_setup_while_the_daemon_reads_the_port_is_refused_naming_the_daemon(module, clock, capsys):
    """Both would read one tty and each get part of the bytes: the daemon ate the module's
    replies, and setup said "a module in USB keyboard mode" about a module set up correctly.
    The daemon holds the port exclusively; setup is refused and told to stop it first."""
    from checkpoint.cli import main

    scanner, _, _ = _scanner(module.port, clock)
    try:
        _wait_health(scanner, "ok")
        code = main(["scanner", "setup", module.port, "--timeout", "0.2", "--no-save"])
    finally:
        scanner.stop()
    err = capsys.readouterr().err
    assert code == 1 and "systemctl stop kiosk" in err and "keyboard mode" not in err
    assert module.commands == []  # nothing reached the module


def test_a_second_reader_of_the_same_port_is_a_fault_not_half_of_the_codes(module, clock):
    first, codes, _ = _scanner(module.port, clock)
    try:
        _wait_health(first, "ok")
        second = SerialScanner(module.port, clock, reconnect=Backoff(base_s=0.02, cap_s=0.05))
        second.start(lambda code: None)
        try:
            _wait_health(second, "fault")
            assert "exclusively lock" in second.health().detail
            for text in (PASS, OTHER):  # every code to the one reader
                module.scan(text)
                assert codes.get(timeout=WAIT_S).text == text
        finally:
            second.stop()
    finally:
        first.stop()


def test_a_scanner_opened_past_descriptor_1024_is_still_read(module, clock):
    """pyserial's own read() waits with select(), which refuses a descriptor past 1024:
    the reader would reconnect for good ("filedescriptor out of range") and read nothing."""
    with descriptors_past_1024():
        scanner, codes, rejected = _scanner(module.port, clock)
        try:
            _wait_health(scanner, "ok")
            module.send_raw(PASS.encode()[:20])
            module.send_raw(PASS.encode()[20:] + b"\r\n")
            assert codes.get(timeout=WAIT_S).text == PASS
            assert scanner.connects == 1 and scanner.health().state == "ok"
            assert rejected == []
        finally:
            scanner.stop()


def test_a_trigger_mode_scanner_opened_past_descriptor_1024_is_still_triggered(module, clock):
    """pyserial's write() with a write timeout also waits with select()."""
    with descriptors_past_1024():
        module.queue_code(PASS)
        scanner, codes, _ = _scanner(module.port, clock, trigger=GM65_TRIGGER)
        try:
            assert codes.get(timeout=WAIT_S).text == PASS
            assert module.triggers >= 1 and scanner.connects == 1
        finally:
            scanner.stop()


def test_a_scanner_unplugged_past_descriptor_1024_is_a_fault_and_reconnects(module, clock):
    with descriptors_past_1024():
        scanner, codes, _ = _scanner(module.port, clock)
        try:
            _wait_health(scanner, "ok")
            module.unplug()
            _wait_health(scanner, "fault")
            module.replug()
            _wait_health(scanner, "ok")
            module.scan(PASS)
            assert codes.get(timeout=WAIT_S).text == PASS
        finally:
            scanner.stop()


@pytest.mark.parametrize("aim", ["]Q0", "]Q1", "]Q2", "]Q3", "]Q6"])
def test_a_scanner_set_to_send_aim_identifiers_still_reads_passes(aim):
    """A scanner set to prefix each code with its AIM symbology identifier (ISO/IEC 15424:
    ``]Q1`` for a QR code) had every pass denied as pass_malformed with nothing said."""
    pipeline = SerialLinePipeline(DecoderConfig())
    codes, rejected = pipeline.feed(f"{aim}{PASS}\r\n".encode(), 1)
    assert ([c.text for c in codes], rejected) == ([PASS], [])


@pytest.mark.parametrize(
    ("line", "text", "reason"),
    [
        ("]Q1", None, "empty"),  # an identifier and nothing read
        ("]Q7" + PASS, "]Q7" + PASS, None),  # no QR modifier: the text as it came
        ("]C0" + PASS, "]C0" + PASS, None),  # another symbology: not a pass, left whole
        ("x]Q1" + PASS, "x]Q1" + PASS, None),  # only at the start of a line
        ("]Q1\x1d01", None, "control_chars"),
    ],
)
def test_only_a_qr_codes_identifier_at_the_start_of_a_line_is_taken_off(line, text, reason):
    pipeline = SerialLinePipeline(DecoderConfig())
    codes, rejected = pipeline.feed(line.encode() + b"\r", 1)
    assert [c.text for c in codes] == ([text] if text else [])
    assert [r.reason for r in rejected] == ([reason] if reason else [])


class UnpluggedPort(ScriptedPort):
    """Sends its chunks, then is unplugged (the read fails as a hung-up USB-CDC port does)."""

    def read(self, _n: int) -> bytes:
        if self._chunks:
            return self._chunks.pop(0)
        raise OSError(5, "Input/output error")


def test_a_code_cut_off_by_an_unplug_is_refused_and_counted_never_glued_on(clock):
    ports = [UnpluggedPort(clock, [b"KP1:HALF"]), ScriptedPort(clock, [PASS.encode() + b"\r"])]
    rejected: list = []
    scanner = SerialScanner(
        "/dev/ttyACM0",
        clock,
        serial_factory=lambda *_a, **_k: ports.pop(0),
        reconnect=Backoff(base_s=0.01, cap_s=0.01),
        on_rejection=rejected.append,
    )
    codes: queue.Queue = queue.Queue()
    scanner.start(codes.put)
    try:
        assert codes.get(timeout=WAIT_S).text == PASS  # nothing of the half code glued on
        assert [(r.reason, r.length) for r in rejected] == [("unterminated", 8)]
        assert scanner.pipeline.stats.rejected == 1 and scanner.connects == 2
    finally:
        scanner.stop()


def test_a_lost_port_is_closed_before_the_wait_to_reconnect(module, clock):
    """cdc-acm frees a ttyACM number only when its last descriptor closes: a port kept open
    through the wait made a module re-enumerating meanwhile come back as ttyACM1, and a config
    naming /dev/ttyACM0 never read again. The wait is the reader's own (injected here)."""
    import serial

    opened: list = []

    def open_then_unplug(*args, **kw):
        port = serial.serial_for_url(*args, **kw)
        opened.append(port)
        module.unplug()  # the cable pulled once the port is open: the next read fails
        return port

    waited_with_open_ports: list[list[bool]] = []

    class Stopping(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waited_with_open_ports.append([port.is_open for port in opened])
            return True  # the stop comes during the wait

    scanner = SerialScanner(module.port, clock, serial_factory=open_then_unplug)
    scanner._worker.stopping = Stopping()
    scanner._reconnecting(lambda code: None)
    assert len(opened) == 1 and "scanner lost" in scanner.health().detail
    assert waited_with_open_ports == [[False]]
