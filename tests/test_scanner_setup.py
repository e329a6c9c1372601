"""``kiosk scanner setup``: the GM65 zone-bit protocol, against the fake module on a real pty."""

from __future__ import annotations

import queue

import pytest

from checkpoint.cli import main
from drivers import gm65
from drivers.fake_serial import FakeGM65
from drivers.serial_scanner import SerialScanner

WAIT_S = 5.0


@pytest.fixture
def module(tmp_path):
    with FakeGM65(tmp_path) as fake:
        yield fake


def test_frames_are_the_manuals():
    # The manual's own examples: save to flash, the write acknowledgement, "find baud rate".
    save = gm65.SAVE_COMMAND
    assert save == bytes.fromhex("7E 00 09 01 00 00 00 DE C8")
    assert gm65.reply(0, b"\x00") == gm65.ACK == bytes.fromhex("02 00 00 01 00 33 31")
    assert gm65.read_command(0x002A, 2) == bytes.fromhex("7E 00 07 01 00 2A 02 D8 0F")
    assert gm65.write_command(0x002A, b"\x39\x01") == bytes.fromhex("7E 00 08 02 00 2A 39 01 A7 EA")


def test_a_reply_with_a_bad_crc_or_an_error_status_is_refused():
    assert gm65.parse_reply(b"KP1:ABC\r" + gm65.ACK + b"x") == (b"\x00", b"x")
    assert gm65.parse_reply(gm65.ACK[:5]) is None  # incomplete
    with pytest.raises(gm65.Gm65Error, match="bad CRC"):
        gm65.parse_reply(gm65.ACK[:-1] + b"\x00")
    with pytest.raises(gm65.Gm65Error, match="status 0x01"):
        gm65.parse_reply(gm65.reply(1, b""))


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_setup_puts_the_module_in_cdc_output_cr_tail_and_command_mode(module, capsys):
    code = main(["scanner", "setup", module.port, "--output", "cdc", "--mode", "command"])
    out = capsys.readouterr().out
    assert code == 0, out
    zones = module.zones
    assert zones[gm65.ZONE_OUTPUT] == 0xA3  # bits 1-0 = 11 (USB virtual serial), rest kept
    assert zones[gm65.ZONE_TAIL] == 0x00  # bits 6-5 = 00: CR
    assert zones[gm65.ZONE_MODE] == 0x15  # bits 1-0 = 01 (command), light and aimer kept
    assert module.saved == zones  # saved to flash after the read-back
    assert "output  zone 0x000D: 0xA0 -> 0xA3 (set)" in out
    assert "mode    zone 0x0000: 0x14 -> 0x15 (set)" in out
    assert "saved to the module's flash" in out


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_after_setup_codes_arrive_with_a_cr_and_the_scanner_reads_them(module, clock):
    assert main(["scanner", "setup", module.port, "--mode", "continuous"]) == 0
    assert module.terminator == b"\r"
    codes: queue.Queue = queue.Queue()
    scanner = SerialScanner(module.port, clock, name="gm65")
    scanner.start(codes.put)
    try:
        for _ in range(100):  # the driver opens the port in its thread
            if scanner.health().state == "ok":
                break
            scanner.health_changed.wait(WAIT_S)
            scanner.health_changed.clear()
        module.scan("KP1:HELLO")
        assert codes.get(timeout=WAIT_S).text == "KP1:HELLO"
    finally:
        scanner.stop()


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_a_module_already_set_up_is_only_read_and_saved(module, capsys):
    module.zones.update({gm65.ZONE_OUTPUT: 0xA0, gm65.ZONE_TAIL: 0x00, gm65.ZONE_MODE: 0x16})
    assert main(["scanner", "setup", module.port, "--output", "serial"]) == 0
    kinds = [frame[2] for frame in module.commands]
    assert gm65.TYPE_WRITE not in kinds and kinds[-1] == gm65.TYPE_SAVE
    assert capsys.readouterr().out.count("(already)") == 3


def test_a_module_that_does_not_answer_fails_with_one_line_naming_keyboard_mode(module, capsys):
    module.mute()
    code = main(["scanner", "setup", module.port, "--timeout", "0.05", "--no-save"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "no reply to read of zone 0x000D" in err and "USB keyboard mode" in err
    assert module.zones[gm65.ZONE_OUTPUT] == 0xA0  # nothing was changed


def test_bad_usage_and_a_missing_port_are_one_line(tmp_path, capsys):
    assert main(["scanner", "setup", "/dev/null", "--baudrate", "5"]) == 2
    assert main(["scanner", "setup", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "Traceback" not in "".join(err)


def test_the_fake_module_ignores_a_frame_with_a_wrong_crc(module):
    import serial

    port = serial.serial_for_url(module.port, baudrate=9600, timeout=0.05)
    try:
        bad = bytearray(gm65.write_command(gm65.ZONE_MODE, b"\x16"))
        bad[-1] ^= 0xFF
        port.write(bytes(bad))
        assert gm65.Gm65(port, timeout_s=WAIT_S).read_zone(gm65.ZONE_MODE) == 0x14
    finally:
        port.close()
    assert module.zones[gm65.ZONE_MODE] == 0x14
