"""A keyboard-mode (USB HID) scanner read from its evdev node, against a fake writing real
``struct input_event`` records into a FIFO."""

from __future__ import annotations

import errno
import os
import queue
import time

import pytest
from fd_support import descriptors_past_1024

from drivers.fake_hid import FakeHidReader, FakeHidScanner
from drivers.hid_scanner import (
    EV_KEY,
    EV_SYN,
    KEY_BITMAP_BYTES,
    KEY_CAPSLOCK,
    KEY_ENTER,
    KEY_KPENTER,
    KEY_LEFTCTRL,
    KEY_LEFTSHIFT,
    KEY_TAB,
    SYN_REPORT,
    UNKNOWN_KEYS_HINT,
    HidScanner,
    KeyLine,
    KeyLineDecoder,
    event_struct,
    grab_error,
    ioctl_keys_down,
    open_error,
)
from drivers.readers import build_readers
from kiosk.backoff import Backoff
from kiosk.config import ConfigError, parse_config
from kiosk.config.readers import DecoderConfig
from kiosk.devices import CodeReader

PASS = "KP1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDE$VK G2EC0LSV5RF"
OTHER = "KP1:Q7Y2L1U1:C1B/LGA57J0J2OMWRQ8QV3GE5%M1S*T.4Y6Y-ZC5O0G1*1FMT4E"
WAIT_S = 5.0  # upper bound for the driver thread; met at once when things work
KEY_F1 = 59  # in no layout table: no character


@pytest.fixture
def fake(tmp_path):
    with FakeHidScanner(tmp_path) as scanner:
        yield scanner


def _scanner(fake: FakeHidScanner, clock, **kw) -> tuple[HidScanner, queue.Queue, list]:
    rejected: list = []
    kw.setdefault("grab", fake.grab)
    scanner = HidScanner(
        fake.node,
        clock,
        name="hid",
        reconnect=Backoff(base_s=0.02, cap_s=0.05),
        on_rejection=rejected.append,
        **kw,
    )
    codes: queue.Queue = queue.Queue()
    scanner.start(codes.put)
    return scanner, codes, rejected


def _wait(scanner: HidScanner, state: str, detail: str = "") -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        health = scanner.health()
        if health.state == state and detail in health.detail:
            return
        scanner.health_changed.wait(min(0.1, max(0.0, deadline - time.monotonic())))
        scanner.health_changed.clear()
    assert (scanner.health().state, scanner.health().detail) == (state, detail)


def _typed(keys: list[tuple[int, int]], max_chars: int = 64, **kw) -> list[KeyLine]:
    decoder = KeyLineDecoder(max_chars, **kw)
    return [line for code, value in keys if (line := decoder.key(code, value)) is not None]


def _tap(code: int) -> list[tuple[int, int]]:
    return [(code, 1), (code, 0)]


# -- the record layout -----------------------------------------------------------------


def test_input_event_records_are_24_bytes_on_64_bit_and_16_on_32_bit():
    assert event_struct(8).size == 24
    assert event_struct(4).size == 16
    with pytest.raises(ValueError, match="2-byte long"):
        event_struct(2)


@pytest.mark.parametrize("long_bytes", [8, 4])
def test_a_code_typed_in_either_record_layout_reaches_the_sink(tmp_path, clock, long_bytes):
    with FakeHidScanner(tmp_path, long_bytes=long_bytes) as fake:
        assert fake.record_size == {8: 24, 4: 16}[long_bytes]
        scanner, codes, rejected = _scanner(fake, clock, long_bytes=long_bytes)
        try:
            assert isinstance(scanner, CodeReader)
            _wait(scanner, "ok")
            fake.scan(PASS)
            code = codes.get(timeout=WAIT_S)
            assert (code.text, code.source, code.mono_ns) == (PASS, "hid", clock.monotonic_ns())
            assert rejected == []
        finally:
            scanner.stop()


def test_records_torn_across_reads_are_put_back_together(fake, clock):
    scanner, codes, _ = _scanner(fake, clock)
    try:
        _wait(scanner, "ok")
        size = fake.record_size
        whole = bytearray()
        fake.send_raw = whole.extend  # collect what one scan writes
        fake.scan("AB1")
        del fake.send_raw
        for start in range(0, len(whole), size * 2 + 5):  # never on a record boundary
            fake.send_raw(bytes(whole[start : start + size * 2 + 5]))
        assert codes.get(timeout=WAIT_S).text == "AB1"
    finally:
        scanner.stop()


# -- keys to text ----------------------------------------------------------------------


def test_shift_and_caps_lock_give_capitals_and_symbols_of_the_us_layout():
    keys = [(KEY_LEFTSHIFT, 1), *_tap(30), *_tap(3), (KEY_LEFTSHIFT, 0), *_tap(30), *_tap(3)]
    keys += [*_tap(KEY_CAPSLOCK), *_tap(48), *_tap(4), (KEY_LEFTSHIFT, 1), *_tap(48)]
    keys += [(KEY_LEFTSHIFT, 0), *_tap(KEY_ENTER)]
    assert _typed(keys) == [KeyLine(data=b"A@a2B3b")]


def test_autorepeat_is_not_a_key_the_scanner_typed():
    keys = [(30, 1), (30, 2), (30, 2), (30, 0), *_tap(KEY_ENTER)]
    assert _typed(keys) == [KeyLine(data=b"a")]


def test_a_key_without_a_character_or_a_ctrl_chord_refuses_the_line_never_skips_the_key():
    assert _typed([*_tap(30), *_tap(KEY_F1), *_tap(31), *_tap(KEY_ENTER)]) == [
        KeyLine(reason="unknown_key")
    ]
    ctrl_b = [(KEY_LEFTCTRL, 1), *_tap(48), (KEY_LEFTCTRL, 0), *_tap(30), *_tap(KEY_ENTER)]
    assert _typed(ctrl_b) == [KeyLine(reason="unknown_key")]
    # ... and the next line is read again.
    assert _typed([*_tap(KEY_F1), *_tap(KEY_ENTER), *_tap(30), *_tap(KEY_ENTER)]) == [
        KeyLine(reason="unknown_key"),
        KeyLine(data=b"a"),
    ]


def test_a_line_past_the_maximum_is_dropped_to_its_end_and_said_once():
    keys = [*(_tap(30) * 65), *(_tap(31) * 10), *_tap(KEY_ENTER), *_tap(32), *_tap(KEY_ENTER)]
    assert _typed(keys) == [KeyLine(reason="oversized"), KeyLine(data=b"d")]


def test_end_keys_are_as_configured_and_any_other_is_a_character_hygiene_refuses():
    keys = [*_tap(30), *_tap(KEY_TAB), *_tap(31), *_tap(KEY_KPENTER)]
    assert _typed(keys, end_keys=["kpenter"]) == [KeyLine(data=b"a\ts")]
    assert _typed(keys, end_keys=["tab"]) == [KeyLine(data=b"a")]
    assert _typed([*_tap(30), *_tap(KEY_ENTER)], end_keys=["tab"]) == []


# -- the driver on the fake ------------------------------------------------------------


def test_the_scanner_is_taken_for_the_kiosk_alone_and_given_back_on_stop(fake, clock):
    scanner, _, _ = _scanner(fake, clock)
    try:
        _wait(scanner, "ok")
        assert fake.grabbed
    finally:
        scanner.stop()
    assert not fake.grabbed
    assert [on for _, on in fake.grabs] == [True, False]
    assert scanner.health().state == "absent"


def test_stop_wakes_the_read_that_waits_and_the_reader_thread_ends(fake, clock, monkeypatch):
    """A stop waited out the reader's poll (0.1 s each, on the Pi too) before its thread
    ended and the device was given back; a poll that waits long ended the stop with the
    thread still reading. The stop wakes the poll; keys still read at once."""
    monkeypatch.setattr(HidScanner, "WAIT_MS", 60_000)
    scanner, codes, _ = _scanner(fake, clock)
    thread = scanner._worker._thread
    try:
        _wait(scanner, "ok")
        fake.scan(PASS)
        assert codes.get(timeout=WAIT_S).text == PASS
    finally:
        scanner.stop()
    assert thread is not None and not thread.is_alive()
    assert not fake.grabbed


def test_autorepeat_shift_and_unknown_keys_on_the_wire(fake, clock):
    scanner, codes, rejected = _scanner(fake, clock)
    try:
        _wait(scanner, "ok")
        fake.scan(PASS, autorepeat=True)
        assert codes.get(timeout=WAIT_S).text == PASS
        fake.type_text("KP1:AB")
        fake.press(KEY_F1)
        fake.scan("CD")
        fake.scan(OTHER)
        assert codes.get(timeout=WAIT_S).text == OTHER
        assert [r.reason for r in rejected] == ["unknown_key"]
        assert scanner.pipeline.stats.rejected == 1
    finally:
        scanner.stop()


@pytest.mark.parametrize(
    ("typed", "reason"),
    [("A" * 513, "oversized"), ("KP1:AB\tCD", "control_chars")],
)
def test_lines_are_refused_as_a_serial_scanners_are(fake, clock, typed, reason):
    scanner, codes, rejected = _scanner(fake, clock, end_keys=["enter"])
    try:
        _wait(scanner, "ok")
        fake.scan(typed)
        fake.scan(PASS)
        assert codes.get(timeout=WAIT_S).text == PASS
        assert [r.reason for r in rejected] == [reason]
        assert codes.empty()
    finally:
        scanner.stop()


def test_the_same_code_again_within_the_hold_off_is_one_passage(fake, clock):
    scanner, codes, _ = _scanner(fake, clock, decoder_cfg=DecoderConfig(holdoff_s=3.0))
    try:
        _wait(scanner, "ok")
        fake.scan(PASS)
        fake.scan(PASS)
        fake.scan(OTHER)
        assert [codes.get(timeout=WAIT_S).text for _ in range(2)] == [PASS, OTHER]
    finally:
        scanner.stop()


def test_a_scanner_unplugged_mid_code_is_a_fault_and_reads_again_when_back(fake, clock):
    scanner, codes, rejected = _scanner(fake, clock)
    try:
        _wait(scanner, "ok")
        fake.type_text("KP1:HALF")
        fake.unplug()
        _wait(scanner, "fault", f"{fake.node} is gone (unplugged)")
        _wait(scanner, "fault", "no such device (scanner unplugged? ls /dev/input/by-id/)")
        fake.replug()
        _wait(scanner, "ok")
        assert fake.grabbed
        fake.scan(PASS)
        assert codes.get(timeout=WAIT_S).text == PASS  # nothing of the half code glued on
        # ... and the half code is said, not lost in silence.
        assert [(r.reason, r.length) for r in rejected] == [("unterminated", 8)]
        assert scanner.connects == 2
    finally:
        scanner.stop()


def test_a_read_failing_with_enodev_is_a_fault_naming_the_unplug(fake, clock):
    def unplugged(fd: int, n: int) -> bytes:
        raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))

    scanner, _, _ = _scanner(fake, clock, read=unplugged)
    try:
        fake.press(30)  # something to read
        _wait(scanner, "fault", f"scanner lost: {fake.node} is gone (unplugged); reconnecting")
    finally:
        scanner.stop()


def test_a_scanner_another_program_holds_is_a_fault_naming_it_until_let_go(fake, clock):
    fake.hold_grab()
    scanner, codes, _ = _scanner(fake, clock)
    try:
        _wait(scanner, "fault", "another program holds it (a second kiosk service")
        fake.hold_grab(False)
        _wait(scanner, "ok")
        fake.scan(PASS)
        assert codes.get(timeout=WAIT_S).text == PASS
    finally:
        scanner.stop()


def test_open_and_grab_failures_name_the_cause_and_the_fix():
    node = "/dev/input/by-id/usb-X-event-kbd"
    denied = open_error(node, OSError(errno.EACCES, "Permission denied"))
    assert "the kiosk user needs the group input" in denied
    assert "DeviceAllow=char-input" in open_error(node, OSError(errno.EPERM, "not permitted"))
    not_evdev = grab_error(node, OSError(errno.ENOTTY, "Inappropriate ioctl"))
    assert "not an input event device" in not_evdev


def test_a_node_that_is_no_input_device_is_refused_by_the_real_grab(tmp_path, clock):
    plain = tmp_path / "event-kbd"
    plain.write_bytes(b"")
    scanner = HidScanner(str(plain), clock, reconnect=Backoff(base_s=0.02, cap_s=0.05))
    scanner.start(lambda code: None)
    try:
        _wait(scanner, "fault", "not an input event device")
    finally:
        scanner.stop()


# -- config ----------------------------------------------------------------------------


def test_hid_sources_are_configured_and_built(clock):
    config = parse_config(
        {
            "readers": {
                "sources": [
                    {"type": "hid", "name": "gate", "device": "/dev/input/by-id/usb-S-event-kbd"},
                    {"type": "fake_hid", "name": "demo", "end_keys": ["tab"]},
                ]
            }
        }
    )
    real, demo = build_readers(config.readers, clock)
    assert isinstance(real, HidScanner) and real.device == "/dev/input/by-id/usb-S-event-kbd"
    assert isinstance(demo, FakeHidReader)
    assert not os.path.lexists(demo.fake.node)  # building the devices does no I/O
    codes: queue.Queue = queue.Queue()
    demo.start(codes.put)
    try:
        _wait(demo, "ok")
        demo.fake.scan(PASS)
        assert (codes.get(timeout=WAIT_S).text, demo.fake.grabbed) == (PASS, True)
    finally:
        demo.stop()
    assert not os.path.lexists(os.path.dirname(demo.fake.node))  # nothing left behind


@pytest.mark.parametrize(
    ("source", "where"),
    [
        ({"type": "hid"}, "readers.sources[0].device"),
        ({"type": "hid", "device": "event3"}, "readers.sources[0].device"),
        ({"type": "hid", "device": "/dev/input/event3", "end_keys": []}, "end_keys"),
        ({"type": "hid", "device": "/dev/input/event3", "end_keys": ["esc"]}, "end_keys"),
    ],
)
def test_a_hid_source_without_a_usable_node_or_end_key_is_a_config_error(source, where):
    with pytest.raises(ConfigError) as err:
        parse_config({"readers": {"sources": [source]}})
    assert where in str(err.value)


def test_two_sources_on_one_input_node_are_refused():
    node = "/dev/input/by-id/usb-S-event-kbd"
    with pytest.raises(ConfigError, match="a scanner is read by one source"):
        parse_config(
            {
                "readers": {
                    "sources": [
                        {"type": "hid", "name": "a", "device": node},
                        {"type": "hid", "name": "b", "device": node},
                    ]
                }
            }
        )


@pytest.mark.skipif(
    os.environ.get("KIOSK_TEST_HARDWARE") != "1", reason="real scanner: KIOSK_TEST_HARDWARE=1"
)
def test_a_real_keyboard_mode_scanner_reads_a_code(clock):  # pragma: no cover - hardware
    """Set KIOSK_TEST_HARDWARE_HID to the scanner's /dev/input/by-id/...-event-kbd node and
    scan any QR code within 20 s."""
    node = os.environ.get("KIOSK_TEST_HARDWARE_HID", "")
    if not node:
        pytest.skip("KIOSK_TEST_HARDWARE_HID names no node")
    scanner = HidScanner(node, clock)
    codes: queue.Queue = queue.Queue()
    scanner.start(codes.put)
    try:
        _wait(scanner, "ok")
        assert codes.get(timeout=20).text
    finally:
        scanner.stop()


def test_kiosk_run_warns_of_a_fake_keyboard_scanner_as_of_any_emulator():
    from checkpoint.cli.daemon_cmd import emulated_devices

    config = parse_config({"readers": {"sources": [{"type": "fake_hid"}]}})
    assert "readers.sources[0]" in emulated_devices(config)


def test_the_demo_types_its_codes_into_a_configured_fake_keyboard_scanner(tmp_path, clock):
    from checkpoint.app import build_core
    from checkpoint.demo import code_sink

    config = parse_config({"readers": {"sources": [{"type": "fake_hid", "name": "hid"}]}})
    core = build_core(config, tmp_path / "data", clock)
    [reader] = core.devices.readers
    assert isinstance(reader, FakeHidReader)
    handed: list[tuple[str, str | None, str]] = []
    core.runner.submit_code = lambda text, direction, source: handed.append(
        (text, direction, source)
    )
    codes: queue.Queue = queue.Queue()
    reader.start(codes.put)
    try:
        sink = code_sink(core)
        sink(PASS, None)
        code = codes.get(timeout=WAIT_S)
        assert (code.text, code.source) == (PASS, "hid")
        sink("KP1:通行", "in")  # no US key types it: handed over as the console would
        assert handed == [("KP1:通行", "in", "demo")]
    finally:
        reader.stop()
        core.close()


def test_a_scanner_opened_past_descriptor_1024_is_still_read(fake, clock):
    """A busy daemon (LAN connections: LimitNOFILE=8192) reopens a re-plugged scanner on a
    descriptor past 1024, which select() cannot wait on."""
    with descriptors_past_1024():
        scanner, codes, _ = _scanner(fake, clock)
        try:
            _wait(scanner, "ok")
            assert max(fake.holders) > 1024
            fake.scan(PASS)
            assert codes.get(timeout=WAIT_S).text == PASS
        finally:
            scanner.stop()


def test_a_scanner_whose_every_code_has_keys_without_a_character_turns_degraded(fake, clock):
    """A scanner sending every character as Alt+keypad digits (or another layout's extra
    key) never gets a decision on the screen: the guard must see why on the Devices page."""
    scanner, codes, rejected = _scanner(fake, clock)
    # Alt+999: past any code page (read as Alt codes, a well-formed one is a character).
    alt_keypad = [(EV_KEY, 56, 1), *((EV_KEY, 73, v) for _ in range(3) for v in (1, 0))]
    alt_keypad.append((EV_KEY, 56, 0))
    try:
        _wait(scanner, "ok")
        for _ in range(HidScanner.UNKNOWN_IN_A_ROW - 1):
            fake.send_events(alt_keypad)
            fake.press(KEY_ENTER)
        fake.scan(PASS)  # a good line between: not a scanner set wrong
        assert codes.get(timeout=WAIT_S).text == PASS
        assert scanner.health().state == "ok"
        for _ in range(HidScanner.UNKNOWN_IN_A_ROW):
            fake.send_events(alt_keypad)
            fake.press(KEY_ENTER)
        _wait(scanner, "degraded", UNKNOWN_KEYS_HINT)
        fake.scan(OTHER)
        assert codes.get(timeout=WAIT_S).text == OTHER
        _wait(scanner, "ok")
        assert [r.reason for r in rejected].count(
            "unknown_key"
        ) == 2 * HidScanner.UNKNOWN_IN_A_ROW - 1
    finally:
        scanner.stop()


# -- Alt+keypad codes (a scanner in "Alt mode", layout-independent) ----------------------

KEY_LEFTALT = 56
KEYPAD = {"0": 82, "1": 79, "2": 80, "3": 81, "4": 75, "5": 76, "6": 77, "7": 71, "8": 72, "9": 73}


def _alt(digits: str, alt: int = KEY_LEFTALT) -> list[tuple[int, int]]:
    """Alt held, ``digits`` on the keypad, Alt released: how Windows takes a character."""
    return [(alt, 1), *(key for d in digits for key in _tap(KEYPAD[d])), (alt, 0)]


def test_alt_keypad_codes_give_the_characters_windows_gives():
    """A leading 0 is the ANSI code page (1252), none the OEM one (437), as Windows types
    them: Alt+0233 and Alt+130 are both é, Alt+0128 is €."""
    keys = [*_tap(30), *_alt("066"), *_alt("67"), *_alt("0065", alt=100), *_tap(KEY_ENTER)]
    keys += [*_alt("0233"), *_alt("130"), *_alt("0128"), *_alt("156"), *_tap(KEY_ENTER)]
    assert _typed(keys) == [KeyLine(data=b"aBCA"), KeyLine(data="éé€£".encode())]


def test_a_pass_typed_all_in_alt_codes_is_read_as_typed_on_keys():
    line = [key for ch in PASS for key in _alt(f"0{ord(ch)}")]
    assert _typed([*line, *_tap(KEY_ENTER)], max_chars=len(PASS)) == [KeyLine(data=PASS.encode())]


@pytest.mark.parametrize(
    "keys",
    [
        _alt("999"),  # past 255: Windows would wrap it round to another character
        _alt("00065"),  # five digits
        _alt("0"),  # NUL
        _alt("0129"),  # no character in code page 1252
        [(KEY_LEFTALT, 1), (KEY_LEFTCTRL, 1), *_tap(77), (KEY_LEFTCTRL, 0), (KEY_LEFTALT, 0)],
        [
            (KEY_LEFTALT, 1),
            *_tap(77),
            (KEY_LEFTSHIFT, 1),
            *_tap(76),
            (KEY_LEFTSHIFT, 0),
            (KEY_LEFTALT, 0),
        ],  # fmt: skip
        [(KEY_LEFTALT, 1), *_tap(77), *_tap(30), (KEY_LEFTALT, 0)],  # Alt+6, then Alt+a
        [(KEY_LEFTALT, 1), *_tap(77), *_tap(76), *_tap(KEY_ENTER), (KEY_LEFTALT, 0)],
        [(KEY_LEFTALT, 1), *_tap(KEY_F1), (KEY_LEFTALT, 0)],
    ],
)
def test_a_garbled_alt_sequence_refuses_its_line_and_the_next_reads_alone(keys):
    typed = [*_tap(30), *keys, *_tap(KEY_ENTER), *_tap(31), *_tap(KEY_ENTER)]
    assert _typed(typed) == [KeyLine(reason="unknown_key"), KeyLine(data=b"s")]


def test_an_alt_sequence_cut_off_is_part_of_the_dropped_line_never_of_the_next():
    decoder = KeyLineDecoder(64)
    for code, value in [(KEY_LEFTALT, 1), *_tap(77), *_tap(76)]:
        assert decoder.key(code, value) is None
    assert decoder.partial > 0  # so the expiry drops it as unterminated
    decoder.drop()
    lines = [decoder.key(c, v) for c, v in [(KEY_LEFTALT, 0), *_tap(31), *_tap(KEY_ENTER)]]
    assert [line for line in lines if line is not None] == [KeyLine(data=b"s")]


def test_the_maximum_counts_characters_typed_in_alt_codes_not_their_bytes():
    keys = [key for _ in range(64) for key in _alt("0233")]
    assert _typed([*keys, *_tap(KEY_ENTER)]) == [KeyLine(data="é".encode() * 64)]
    assert _typed([*keys, *_alt("0233"), *_tap(KEY_ENTER)]) == [KeyLine(reason="oversized")]


def test_a_scanner_in_alt_mode_reads_passes_and_refuses_a_gs1_separator(fake, clock):
    """A scanner set to send every character as Alt+keypad codes (layout-independent) reads
    passes; GS1's FNC1 (Alt+029, the group separator) is a control character hygiene refuses."""
    scanner, codes, rejected = _scanner(fake, clock)
    try:
        _wait(scanner, "ok")
        fake.scan(PASS, alt_codes=True)
        assert codes.get(timeout=WAIT_S).text == PASS
        fake.scan("0104012345678901\x1d10ABC", alt_codes=True)
        fake.scan(OTHER, alt_codes=True)
        assert codes.get(timeout=WAIT_S).text == OTHER
        assert [r.reason for r in rejected] == ["control_chars"]
        assert scanner.health().state == "ok"
    finally:
        scanner.stop()


def test_a_scanner_set_to_send_aim_identifiers_still_reads_passes(fake, clock):
    """``]Q1`` before each code (the AIM identifier of a QR code) made every pass a denial."""
    scanner, codes, rejected = _scanner(fake, clock)
    try:
        _wait(scanner, "ok")
        fake.scan("]Q1" + PASS)
        assert codes.get(timeout=WAIT_S).text == PASS
        assert rejected == []
    finally:
        scanner.stop()


def _ctrl(code: int) -> list[tuple[int, int]]:
    return [(KEY_LEFTCTRL, 1), *_tap(code), (KEY_LEFTCTRL, 0)]


KEY_J, KEY_M = 36, 50


def test_a_cr_lf_suffix_typed_as_enter_and_ctrl_j_ends_each_code_once():
    """A scanner set to the CR LF suffix types CR as Enter and LF as Ctrl+J: the Ctrl+J was
    an unknown key opening the next line, so each code left a partial line behind (dropped as
    unterminated, the reader degraded saying to end codes with Enter) and a code scanned
    within half a second of the last was refused."""
    decoder = KeyLineDecoder(64)
    keys = [*_tap(30), *_tap(KEY_ENTER), *_ctrl(KEY_J), *_tap(31), *_tap(KEY_ENTER), *_ctrl(KEY_J)]
    lines = [line for c, v in keys if (line := decoder.key(c, v)) is not None]
    assert lines == [KeyLine(data=b"a"), KeyLine(data=b"s")]
    assert decoder.partial == 0


def test_cr_and_lf_typed_as_ctrl_m_and_ctrl_j_end_a_line_as_on_a_serial_line():
    keys = [*_tap(30), *_ctrl(KEY_M), *_tap(31), *_ctrl(KEY_J), *_ctrl(KEY_M), *_ctrl(KEY_J)]
    assert _typed(keys) == [KeyLine(data=b"a"), KeyLine(data=b"s")]
    # Not with another modifier, nor another Ctrl key: those refuse the line as before.
    keys = [*_tap(30), (KEY_LEFTSHIFT, 1), *_ctrl(KEY_J), (KEY_LEFTSHIFT, 0), *_tap(KEY_ENTER)]
    assert _typed(keys) == [KeyLine(reason="unknown_key")]
    assert _typed([*_tap(30), *_ctrl(48), *_tap(KEY_ENTER)]) == [KeyLine(reason="unknown_key")]


def test_a_pumped_scanner_opens_reads_and_is_lost_in_the_callers_thread(tmp_path, clock):
    """``pump`` (replay's virtual time): no thread; an absent node is a fault, tried again at
    the next pump; a code typed is handed over; an unplug is a fault with the code cut off
    counted."""
    fake = FakeHidScanner(tmp_path, plugged=False)
    rejected: list = []
    scanner = HidScanner(fake.node, clock, grab=fake.grab, on_rejection=rejected.append)
    codes: list = []
    try:
        scanner.pump(codes.append)
        assert scanner.health().state == "fault" and "no such device" in scanner.health().detail
        fake.replug()
        scanner.pump(codes.append)
        assert scanner.health().state == "ok" and fake.grabbed
        fake.scan(PASS)
        fake.type_text("KP1:")
        scanner.pump(codes.append)
        assert [c.text for c in codes] == [PASS]
        fake.unplug()
        scanner.pump(codes.append)
        assert (
            scanner.health().detail
            == f"scanner lost: {fake.node} is gone (unplugged); reconnecting"
        )
        assert [(r.reason, r.length) for r in rejected] == [("unterminated", 4)]
    finally:
        scanner.stop()
        fake.close()
    assert scanner.health().state == "absent"


# -- the kernel's SYN_DROPPED (the reader fell behind: events lost) -----------------------


def _pumped(fake: FakeHidScanner, clock, **kw) -> tuple[HidScanner, list, list]:
    rejected: list = []
    kw.setdefault("grab", fake.grab)
    scanner = HidScanner(fake.node, clock, name="hid", on_rejection=rejected.append, **kw)
    codes: list = []
    scanner.pump(codes.append)
    assert scanner.health().state == "ok"
    return scanner, codes, rejected


def test_keys_lost_to_an_overrun_never_stitch_two_halves_into_one_code(fake, clock):
    """The kernel drops what a late reader left unread and queues SYN_DROPPED and the newest
    event: "KP1:6BF" + drop + "...the rest\\n" was read as one code, a valid pass then denied
    as a forged one and recorded so. The line the drop cut is refused (``overrun``) through
    its end, the events up to the next SYN_REPORT are not read, and the next code reads."""
    scanner, codes, rejected = _pumped(fake, clock)
    try:
        fake.type_text(PASS[:7])
        fake.overrun(newest=(EV_KEY, 30, 1))  # the newest event, its packet's end not sent
        fake.send_events([(EV_KEY, 30, 0)])  # ... still before the SYN_REPORT: not read
        fake.type_text(PASS[40:])
        fake.press(KEY_ENTER)
        fake.scan(OTHER)
        scanner.pump(codes.append)
        assert [c.text for c in codes] == [OTHER]
        assert [(r.reason, r.length) for r in rejected] == [("overrun", 7)]
        assert scanner.pipeline.stats.rejected == 1
        assert scanner.health().state == "ok"
    finally:
        scanner.stop()


def test_an_enter_lost_to_an_overrun_never_merges_two_scans(fake, clock):
    scanner, codes, rejected = _pumped(fake, clock)
    try:
        fake.scan(PASS)
        fake.type_text("KP1:AB")  # its Enter and the next code's start are lost
        fake.overrun()
        fake.send_events([(EV_SYN, SYN_REPORT, 0)])
        fake.scan("CDEF")
        fake.scan(OTHER)
        scanner.pump(codes.append)
        assert [c.text for c in codes] == [PASS, OTHER]
        assert [r.reason for r in rejected] == ["overrun"]
    finally:
        scanner.stop()


def test_a_line_cut_by_an_overrun_whose_end_never_comes_ends_after_a_pause_unsaid(fake, clock):
    """The last code's tail and Enter lost: the cut line ends at the pause (said once, as an
    overrun, not as a scanner sending no line end), and the next code reads whole."""
    scanner, codes, rejected = _pumped(fake, clock)
    try:
        fake.type_text("KP1:AB")
        fake.overrun()
        fake.send_events([(EV_SYN, SYN_REPORT, 0)])
        fake.type_text("CD")
        scanner.pump(codes.append)
        clock.advance(HidScanner.UNTERMINATED_AFTER_NS / 1e9 + 0.1)
        scanner.pump(codes.append)
        fake.scan(OTHER)
        scanner.pump(codes.append)
        assert [c.text for c in codes] == [OTHER]
        assert [r.reason for r in rejected] == ["overrun"]
        assert scanner.health().state == "ok"
    finally:
        scanner.stop()


@pytest.mark.parametrize(("down", "typed"), [(set(), "a"), ({KEY_LEFTSHIFT}, "A")])
def test_the_modifiers_held_are_read_from_the_device_after_an_overrun(fake, clock, down, typed):
    """A Shift release (or press) lost in the drop left every later code in the wrong case:
    the keys held are asked of the device (EVIOCGKEY) once the drop is over."""
    asked: list[int] = []

    def keys_down(fd: int) -> frozenset[int]:
        asked.append(fd)
        return frozenset(down)

    scanner, codes, rejected = _pumped(fake, clock, keys_down=keys_down)
    try:
        fake.send_events([(EV_KEY, KEY_LEFTSHIFT, 1), (EV_SYN, SYN_REPORT, 0)])
        fake.press(45)  # X, Shift held; then what the drop took: more, Shift let go or not
        fake.overrun()
        fake.send_events([(EV_SYN, SYN_REPORT, 0)])
        scanner.pump(codes.append)
        assert asked == [next(iter(fake.holders))]
        fake.press(KEY_ENTER)  # the cut line's end
        fake.press(30)
        fake.press(KEY_ENTER)
        scanner.pump(codes.append)
        assert [c.text for c in codes] == [typed]
        assert [r.reason for r in rejected] == ["overrun"]
    finally:
        scanner.stop()


def test_keys_read_past_the_devices_key_state_are_not_read_again(fake, clock):
    """EVIOCGKEY gives the state after every key event so far and empties the kernel's queue
    of them: a Shift press already read past the SYN_REPORT, its release flushed, left Shift
    held for the next code. Those keys are in the state: the next read goes on from it."""
    scanner, codes, rejected = _pumped(fake, clock, keys_down=lambda fd: frozenset())
    try:
        fake.type_text("KP1:AB")
        fake.overrun()
        fake.send_events([(EV_SYN, SYN_REPORT, 0), (EV_KEY, KEY_LEFTSHIFT, 1)])
        fake.send_events([(EV_SYN, SYN_REPORT, 0)])  # ... its release flushed by the ioctl
        scanner.pump(codes.append)
        fake.press(KEY_ENTER)  # the cut line's end
        fake.scan("kp1")
        scanner.pump(codes.append)
        assert [c.text for c in codes] == ["kp1"]
        assert [r.reason for r in rejected] == ["overrun"]
    finally:
        scanner.stop()


def test_without_the_devices_key_state_the_modifiers_are_let_go(fake, clock):
    """A FIFO is no input device: the real EVIOCGKEY fails, and no modifier is taken as held."""
    scanner, codes, _ = _pumped(fake, clock)
    try:
        fake.send_events([(EV_KEY, KEY_LEFTSHIFT, 1), (EV_SYN, SYN_REPORT, 0)])
        fake.overrun()
        fake.send_events([(EV_SYN, SYN_REPORT, 0)])
        fake.press(KEY_ENTER)
        fake.scan("a")
        scanner.pump(codes.append)
        assert [c.text for c in codes] == ["a"]
    finally:
        scanner.stop()


def test_the_keys_held_are_read_from_the_kernels_bitmap():
    bits = bytearray(KEY_BITMAP_BYTES)
    for code in (KEY_LEFTSHIFT, 100, 0x2FF):  # Shift, right Alt, KEY_MAX
        bits[code // 8] |= 1 << (code % 8)
    calls: list = []

    def ioctl(fd: int, request: int, arg: bytes) -> bytes:
        calls.append((fd, request, len(arg)))
        return bytes(bits)

    assert ioctl_keys_down(7, ioctl=ioctl) == {KEY_LEFTSHIFT, 100, 0x2FF}
    assert calls == [(7, 0x80604518, 96)]  # EVIOCGKEY(96): _IOC(_IOC_READ, 'E', 0x18, 96)


def test_a_caps_lock_lost_to_an_overrun_never_flips_the_case_of_later_codes(fake, clock):
    """Caps Lock is a toggle the keys held (EVIOCGKEY) cannot give back: a press lost in the
    drop left every later code in the other case (a valid pass denied as forged) until the
    scanner was plugged again. After lost events Caps Lock is taken as off, as at the open."""
    scanner, codes, rejected = _pumped(fake, clock, keys_down=lambda fd: frozenset())
    try:
        fake.press(KEY_CAPSLOCK)
        fake.type_text("ab")  # ... its Caps Lock press to turn it off again is lost
        fake.overrun()
        fake.send_events([(EV_SYN, SYN_REPORT, 0)])
        scanner.pump(codes.append)
        clock.advance(HidScanner.UNTERMINATED_AFTER_NS / 1e9 + 0.1)
        scanner.pump(codes.append)
        fake.scan("kp1abc")
        scanner.pump(codes.append)
        assert [c.text for c in codes] == ["kp1abc"]
        assert [r.reason for r in rejected] == ["overrun"]
    finally:
        scanner.stop()


def test_a_line_cut_by_an_overrun_then_unplugged_is_refused_once(fake, clock):
    """The cut line was said at the overrun: an unplug before its end adds no ``unterminated``
    for the keys read after the drop."""
    scanner, codes, rejected = _pumped(fake, clock)
    try:
        fake.type_text("KP1:AB")
        fake.overrun()
        fake.send_events([(EV_SYN, SYN_REPORT, 0)])
        fake.type_text("CD")
        scanner.pump(codes.append)
        fake.unplug()
        scanner.pump(codes.append)
        assert scanner.health().state == "fault"
        assert [(r.reason, r.length) for r in rejected] == [("overrun", 6)]
    finally:
        scanner.stop()


def test_two_overruns_in_one_line_refuse_it_once(fake, clock):
    """A line cut twice is one code the person scans again: one ``overrun``, not one per drop;
    the next line reads."""
    scanner, codes, rejected = _pumped(fake, clock)
    try:
        fake.type_text("KP1:AB")
        fake.overrun()
        fake.send_events([(EV_SYN, SYN_REPORT, 0)])
        fake.type_text("CD")
        fake.overrun()
        fake.send_events([(EV_SYN, SYN_REPORT, 0)])
        fake.type_text("EF")
        fake.press(KEY_ENTER)
        fake.scan(OTHER)
        scanner.pump(codes.append)
        assert [c.text for c in codes] == [OTHER]
        assert [(r.reason, r.length) for r in rejected] == [("overrun", 6)]
        assert scanner.pipeline.stats.rejected == 1
    finally:
        scanner.stop()
