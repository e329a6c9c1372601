"""The Devices page (``/guard/health``) in the guard's language: what the drivers report about
each device (status and fault texts) is shown in Chinese on the Chinese page; identifiers (a
device path, a GPIO pin, a register, an error name) stay as they are, and a text no driver
wrote in a known form is shown as it came, never hidden."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest
from guard_support import login

from ui.guard.display import health_rows

#: What the drivers, the event log and the runner report (their own wording), each with what
#: the Chinese page must keep of it.
DRIVER_TEXTS = [
    ("no read yet", ""),
    ("1234 reads", "1234"),
    ("read hung for 1500 ms", "1500"),
    ("I2C bus closed after errors; reopen attempt 3 in 4.0 s (I2C error EREMOTEIO)",
     "EREMOTEIO"),
    ("sensor die drifting +1.2 degC/min (warm-up or thermal shock): readings wait for it to"
     " settle", "+1.2"),
    ("noisy I2C bus: 12 of the last 40 words failed their check (PEC, range or re-read);"
     " reads are retried, but check the wiring, pull-ups and cable length"
     " (docs/thermometer.md)", "docs/thermometer.md"),
    ("3 PEC mismatches (pec=warn)", "3"),
    ("PEC checking off: reads confirmed by re-reading", ""),
    ("readings frozen: identical words for 20 reads", "20"),
    ("register 0x07: PEC mismatch (3 attempts)", "0x07"),
    ("register 0x07: two reads disagree (no PEC to arbitrate) (3 attempts)", "0x07"),
    ("I2C error EIO, repeated: I2C bus closed, will reopen", "EIO"),
    ("cannot open I2C bus: No such file or directory", "No such file or directory"),
    ("previous read has not returned (I2C bus hung)", "I2C"),
    ("thermometer busy (a read has not returned)", ""),
    ("thermometer closed", ""),
    ("read hung past its deadline", ""),
    ("relay command hung past its deadline", ""),
    ("not started", ""),
    ("stopped", ""),
    ("starting", ""),
    ("not used yet", ""),
    ("closed", ""),
    ("open", ""),
    ("unplugged", ""),
    ("no relay configured (advisory only)", ""),
    ("/dev/ttyUSB1 is gone (relay board unplugged?)", "/dev/ttyUSB1"),
    ("relay write failed: write timeout", "write timeout"),
    ("relay port /dev/ttyUSB0 is held by another program (a second kiosk service?)",
     "/dev/ttyUSB0"),
    ("GPIO17 write failed: OSError", "OSError"),
    ("GPIO17 unavailable: /dev/gpiochip0 is gone", "/dev/gpiochip0"),
    ("camera not started within 10 s (open hung?)", "10"),
    ("camera lost: no frame for 5 s; reopening in 2.0 s", "2.0"),
    ("camera frozen: same frame for 30 s; reopening in 1.0 s", "30"),
    ("reader error: OSError: [Errno 19] No such device; reopening in 4.0 s",
     "OSError: [Errno 19] No such device"),
    ("cannot open /dev/ttyACM0: [Errno 2] could not open port; retry in 8.0 s",
     "[Errno 2] could not open port"),
    ("scanner lost: read failed; reconnecting", "read failed"),
    ("module does not acknowledge triggers (3 unanswered): keyboard mode, another baud rate or"
     " hung? (docs/wiring.md)", "docs/wiring.md"),
    ("data without a line end: set the module to end each code with CR (kiosk scanner setup,"
     " docs/wiring.md)", "kiosk scanner setup"),
    ("event log is not open", ""),
    ("last write failed: disk I/O error", "disk I/O error"),
    ("cannot read free space: Permission denied", "Permission denied"),
    ("low disk: 180 MB free (< 200)", "180 MB"),
    ("seq 42", "42"),
    ("gate health error: boom", "boom"),
    ("store_fault: database or disk is full", "database or disk is full"),
    ("cannot open /dev/video0: no such device (camera unplugged? ls /dev/v4l/by-id/)",
     "/dev/video0"),
    ("cannot open /dev/video0: permission denied (the kiosk user needs the group video);"
     " reopening in 2.0 s", "/dev/video0"),
    ("cannot open /dev/video2: not a capture node, or busy (another program streaming from"
     " it?); v4l2-ctl --list-devices names each camera's capture node", "/dev/video2"),
    ("no CSI camera 0: libcamera finds 0 camera(s); check the ribbon (Pi powered off) and"
     " rpicam-hello --list-cameras (camera_auto_detect=1 or the sensor's dtoverlay in"
     " /boot/firmware/config.txt); reopening in 10.0 s", "rpicam-hello --list-cameras"),
    ("cannot open CSI camera 0: OSError: [Errno 16] Device or resource busy (RuntimeError:"
     " Camera __init__ sequence did not complete.); another program holds the camera"
     " (rpicam-hello, a second kiosk service?)",
     "OSError: [Errno 16] Device or resource busy (RuntimeError: Camera __init__ sequence did"
     " not complete.)"),
    ("cannot open CSI camera 1: IndexError: list index out of range",
     "IndexError: list index out of range"),
    ("I2C bus at 400 kHz, the MLX90614 needs 100 kHz or less: set"
     " dtparam=i2c_arm_baudrate=100000 in /boot/firmware/config.txt and reboot"
     " (docs/wiring.md)", "dtparam=i2c_arm_baudrate=100000"),
]  # fmt: skip

#: Latin words a Chinese page may show in a device's detail: identifiers and units.
KEPT = re.compile(
    r"I2C|GPIO\d+|MB|0x[0-9A-F]+|E[A-Z]+|docs/\S+|/dev/\S+|kiosk scanner setup|CSI|kHz"
    r"|MLX90614|/boot/firmware/config\.txt|libcamera|rpicam-hello( --list-cameras)?"
    r"|camera_auto_detect=1|dtoverlay|dtparam=\S+|v4l2-ctl --list-devices|ls|video|kiosk"
)


def detail_of(detail: str, lang: str) -> str:
    report = {"devices": {"thermometer": {"state": "fault", "detail": detail}}}
    [row] = [r for r in health_rows(report, lang, ZoneInfo("UTC")) if r["detail"]]
    return str(row["detail"])


@pytest.mark.parametrize(("detail", "kept"), DRIVER_TEXTS)
def test_a_driver_text_is_in_chinese_on_the_chinese_page_with_its_identifiers(detail, kept):
    shown = detail_of(detail, "zh-CN")
    assert kept in shown
    raw = kept if re.search(r"[A-Za-z]", kept) else ""  # an identifier or an error's own text
    latin = re.findall(r"[A-Za-z]{2,}\S*", KEPT.sub("", shown.replace(raw, "")))
    assert not latin, f"{detail!r} shown as {shown!r}"
    assert re.search(r"[\u4e00-\u9fff]", shown)


@pytest.mark.parametrize(("detail", "kept"), DRIVER_TEXTS)
def test_the_english_page_shows_the_drivers_own_words(detail, kept):
    assert detail_of(detail, "en") == detail


def test_the_camera_drivers_own_words_are_in_a_known_form():
    # The texts above are copies; these come from the drivers themselves, so a driver that
    # rewords one is caught here rather than shown in English on the Chinese page.
    from drivers.camera import not_opened_reason
    from drivers.picamera import NO_CAMERA

    texts = [NO_CAMERA.format(num=0, found=0)]
    texts += [f"cannot open /dev/video9: {not_opened_reason('/dev/video9')}"]
    for text in texts:
        assert detail_of(text, "zh-CN") != text
        assert not re.search(r"[A-Za-z]{2,}", KEPT.sub("", detail_of(text, "zh-CN"))), text


def test_a_text_in_no_known_form_is_shown_as_it_came():
    assert detail_of("firmware 1.2 said hello", "zh-CN") == "firmware 1.2 said hello"


def test_the_devices_page_on_the_simulated_kiosk_has_no_english_in_chinese(guard_client):
    login(guard_client)
    page = guard_client.get("/guard/health?lang=zh-CN").text
    table = page[page.index('<table id="health"') : page.index("</table>")]
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", table)]
    words = re.findall(r"[A-Za-z]{2,}", KEPT.sub("", " ".join(cells)))
    assert not words, cells
    rows = guard_client.get("/guard/api/health?lang=zh-CN").json()["rows"]
    assert "尚未读数" in [r["detail"] for r in rows]


def test_the_keyboard_scanners_own_words_are_in_a_known_form():
    import errno

    from drivers.hid_scanner import UNKNOWN_KEYS_HINT, UNTERMINATED_HINT, grab_error, open_error

    node = "/dev/input/by-id/usb-Scanner-event-kbd"
    texts = [f"{open_error(node, OSError(n, 'x'))}; retry in 2.0 s" for n in
             (errno.ENOENT, errno.EACCES, errno.EPERM)]  # fmt: skip
    texts += [grab_error(node, OSError(n, "x")) for n in (errno.EBUSY, errno.ENOTTY)]
    texts += [f"scanner lost: {node} is gone (unplugged); reconnecting", UNTERMINATED_HINT]
    texts += [UNKNOWN_KEYS_HINT]
    kept = re.compile(
        KEPT.pattern + r"|input|DeviceAllow=char-input|kiosk\.service|evtest --grab"
        r"|sudo \./scripts/install|/dev/input/by-id/\S*|Enter|end_keys|US|Alt|Ctrl"
    )
    for text in texts:
        shown = detail_of(text, "zh-CN")
        assert node in shown or "docs/wiring.md" in shown, text
        assert not re.search(r"[A-Za-z]{2,}", kept.sub("", shown)), (text, shown)
        assert detail_of(text, "en") == text


def test_the_thermometers_own_words_are_in_a_known_form():
    import errno

    from drivers.faultlog import open_error
    from drivers.mlx90614 import I2C_OPEN_HINTS, bus_error

    node = "/dev/i2c-1"
    causes = [open_error(node, OSError(n, "x"), I2C_OPEN_HINTS) for n in I2C_OPEN_HINTS]
    causes += [bus_error(OSError(n, "x"), 0x5A, bus) for n in (121, 6) for bus in (1, None)]
    causes += [f"{bus_error(OSError(121, 'x'), 0x5A, 1)}, repeated: I2C bus closed, will reopen"]
    texts = [f"I2C bus closed after errors; reopen attempt 2 in 0.5 s ({c})" for c in causes]
    texts += [f"{c}; reopening in 0.4 s" for c in causes]
    kept = re.compile(
        KEPT.pattern + r"|i2c-dev|DeviceAllow=char-i2c|i2c|kiosk\.service|sudo \./scripts/install"
        r"|sudo systemctl restart kiosk|sudo i2cdetect -(y \d|l)"
    )
    assert errno.EREMOTEIO == 121 and errno.ENXIO == 6
    for text in texts:
        shown = detail_of(text, "zh-CN")
        assert not re.search(r"[A-Za-z]{2,}", kept.sub("", shown)), (text, shown)
        assert detail_of(text, "en") == text
