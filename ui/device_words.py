"""What the drivers, the event log and the runner say about a device (``Health.detail``, a
fault's text), in the guard's language for the Devices page.

The drivers write one plain English line each (it also goes to the log); each form they write
is matched whole here and said again from ``ui/messages.toml`` (``dev.*``), whose English
repeats the drivers' wording. What a form carries over is kept as it is: numbers, device
paths, pins, registers, error names and the operating system's own error text. A part named
``inner`` is a detail of its own (a problem inside a retry notice) and is said the same way.
A text in no known form is shown as it came: never hidden, never guessed at.
"""

from __future__ import annotations

import re

from ui import i18n

#: ``(key, form)``: a retry notice first (it wraps another detail), then the drivers' forms.
FORMS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (key, re.compile(form))
    for key, form in (
        ("reopening", r"(?P<inner>.+); reopening in (?P<s>[\d.]+) s"),
        ("retry", r"(?P<inner>.+); retry in (?P<s>[\d.]+) s"),
        ("reconnecting", r"(?P<inner>.+); reconnecting"),
        (
            "bus_reopen",
            r"I2C bus closed after errors; reopen attempt (?P<n>\d+) in (?P<s>[\d.]+) s "
            r"\((?P<inner>.+)\)",
        ),
        (
            "noisy",
            r"noisy I2C bus: (?P<f>\d+) of the last (?P<n>\d+) words failed their check \(PEC, "
            r"range or re-read\); reads are retried, but check the wiring, pull-ups and cable "
            r"length \((?P<doc>docs/\S+)\)",
        ),
        ("no_read", r"no read yet"),
        ("reads", r"(?P<n>\d+) reads"),
        ("read_hung_ms", r"read hung for (?P<ms>\d+) ms"),
        (
            "drifting",
            r"sensor die drifting (?P<d>[+-]?[\d.]+) degC/min \(warm-up or thermal shock\): "
            r"readings wait for it to settle",
        ),
        ("pec_mismatches", r"(?P<n>\d+) PEC mismatches \(pec=warn\)"),
        ("pec_off", r"PEC checking off: reads confirmed by re-reading"),
        ("frozen_reads", r"readings frozen: identical words for (?P<n>\d+) reads"),
        ("register", r"register (?P<reg>0x[0-9A-Fa-f]+): (?P<inner>.+) \((?P<n>\d+) attempts\)"),
        ("w_pec", r"PEC mismatch"),
        ("w_flag", r"error flag set"),
        ("w_bytes", r"expected 3 bytes, got (?P<n>\d+)"),
        ("w_range", r"(?P<c>-?[\d.]+) degC outside (?P<lo>-?[\d.]+)\.\.(?P<hi>-?[\d.]+)"),
        ("w_disagree", r"two reads disagree \(no PEC to arbitrate\)"),
        ("w_none", r"no attempt"),
        (
            "i2c_no_answer",
            r"I2C error (?P<err>\S+): no answer at (?P<addr>0x[0-9A-F]{2}) \(check the wiring "
            r"and the address: (?P<cmd>sudo i2cdetect -(?:y \d+|l))\)",
        ),
        ("i2c_error", r"I2C error (?P<err>\S+)"),
        ("repeated", r"(?P<inner>.+), repeated: I2C bus closed, will reopen"),
        ("bus_closed", r"I2C bus closed after errors"),
        (
            "i2c_missing",
            r"cannot open (?P<what>/dev/i2c-\d+): no such device \(I2C off or (?P<mod>i2c-dev) "
            r"not loaded: (?P<cmd>sudo \./scripts/install), and reboot if it says so\)",
        ),
        (
            "i2c_blocked",
            r"cannot open (?P<what>/dev/i2c-\d+): blocked by the service's device policy "
            r"\((?P<setting>DeviceAllow=char-i2c) in (?P<unit>kiosk\.service), resolved before "
            r"(?P<mod>i2c-dev) was loaded: (?P<cmd>sudo systemctl restart kiosk)\)",
        ),
        ("open_bus", r"cannot open I2C bus: (?P<err>.+)"),
        ("prev_read", r"previous read has not returned \(I2C bus hung\)"),
        ("busy", r"thermometer busy \(a read has not returned\)"),
        ("thermo_closed", r"thermometer closed"),
        ("unexpected", r"unexpected driver error: (?P<err>.+)"),
        ("read_deadline", r"read hung past its deadline"),
        ("relay_deadline", r"relay command hung past its deadline"),
        ("not_started", r"not started"),
        ("stopped", r"stopped"),
        ("starting", r"starting"),
        ("not_used", r"not used yet"),
        ("closed", r"closed"),
        ("open", r"open"),
        ("unplugged", r"unplugged"),
        ("no_relay", r"no relay configured \(advisory only\)"),
        ("port_gone", r"(?P<port>\S+) is gone \(relay board unplugged\?\)"),
        (
            "relay_held",
            r"relay port (?P<port>\S+) is held by another program \(a second (?P<svc>kiosk) "
            r"service\?\)",
        ),
        ("relay_write", r"relay write failed: (?P<err>.+)"),
        ("gpio_write", r"(?P<pin>GPIO\d+) write failed: (?P<err>.+)"),
        ("gpio_gone", r"(?P<pin>GPIO\d+) unavailable: (?P<chip>\S+) is gone"),
        ("gpio_unavailable", r"(?P<pin>GPIO\d+) unavailable: (?P<err>.+)"),
        ("serial_relay", r"serial relay (?P<port>\S+): (?P<err>.+)"),
        ("gpio_relay", r"gpio relay: (?P<err>.+)"),
        ("gate_fault", r"gate fault"),
        ("gate_health", r"gate health error: (?P<err>.+)"),
        ("cam_not_started", r"camera not started within (?P<s>[\d.]+) s \(open hung\?\)"),
        ("cam_no_frame", r"camera lost: no frame for (?P<s>[\d.]+) s"),
        ("cam_lost", r"camera lost: (?P<err>.+)"),
        ("cam_frozen", r"camera frozen: same frame for (?P<s>[\d.]+) s"),
        (
            "cam_covered",
            r"camera covered or facing a blank surface: uniform picture for (?P<s>[\d.]+) s "
            r"\(or the gate unlit\)",
        ),
        ("reader_error", r"reader error: (?P<err>.+)"),
        ("free_space", r"cannot read free space: (?P<err>.+)"),
        (
            "csi_usb_instead",
            r"(?P<inner>no CSI camera .+\)); a (?P<usb>USB) camera is plugged in: if it "
            r"replaces the (?P<csi>CSI) camera, make this source "
            r'(?P<setting>type = "camera", device = .+)',
        ),
        (
            "csi_usb_instead_ls",
            r"(?P<inner>no CSI camera .+\)); a (?P<usb>USB) camera is plugged in: if it "
            r"replaces the (?P<csi>CSI) camera, make this source "
            r'(?P<setting>type = "camera") with its device \((?P<cmd>ls /dev/v4l/by-id/)\)',
        ),
        (
            "csi_absent",
            r"no (?P<csi>CSI) camera (?P<num>\d+): (?P<lib>libcamera) finds (?P<found>\d+) "
            r"camera\(s\); check the ribbon \(Pi powered off\) and (?P<cmd>rpicam-hello "
            r"--list-cameras) \((?P<auto>camera_auto_detect=1) or the sensor's (?P<overlay>"
            r"dtoverlay) in (?P<file>/boot/firmware/config\.txt)\)",
        ),
        (
            "csi_busy",
            r"cannot open (?P<csi>CSI) camera (?P<num>\d+): (?P<err>.+); another program holds "
            r"the camera \((?P<cmd>rpicam-hello), a second (?P<svc>kiosk) service\?\)",
        ),
        ("csi_open", r"cannot open (?P<csi>CSI) camera (?P<num>\d+): (?P<err>.+)"),
        (
            "usb_swapped",
            r"cannot open (?P<what>\S+): no such device; the camera plugged in now is "
            r'(?P<now>\S+): set (?P<setting>device = "\S+") in its (?P<section>\[\[readers'
            r"\.sources\]\])",
        ),
        (
            "usb_swapped_many",
            r"cannot open (?P<what>\S+): no such device; the cameras plugged in now are "
            r"(?P<now>.+): set (?P<setting>device) to the gate camera's in its (?P<section>"
            r"\[\[readers\.sources\]\])",
        ),
        (
            "usb_missing",
            r"cannot open (?P<what>\S+): no such device \(camera unplugged\? (?P<cmd>ls "
            r"/dev/v4l/by-id/)\)",
        ),
        (
            "usb_denied",
            r"cannot open (?P<what>\S+): permission denied \(the (?P<user>kiosk) user needs the "
            r"group (?P<group>video)\)",
        ),
        (
            "usb_busy",
            r"cannot open (?P<what>\S+): not a capture node, or busy \(another program "
            r"streaming from it\?\); (?P<cmd>v4l2-ctl --list-devices) names each camera's "
            r"capture node",
        ),
        (
            "hid_missing",
            r"cannot open (?P<what>\S+): no such device \(scanner unplugged\? (?P<cmd>ls "
            r"/dev/input/by-id/)\)",
        ),
        (
            "hid_denied",
            r"cannot open (?P<what>\S+): permission denied \(the (?P<user>kiosk) user needs the "
            r"group (?P<group>input|i2c): (?P<cmd>sudo \./scripts/install)\)",
        ),
        (
            "hid_blocked",
            r"cannot open (?P<what>\S+): blocked by the service's device policy \((?P<setting>"
            r"DeviceAllow=char-input) in (?P<unit>kiosk\.service)\)",
        ),
        (
            "hid_busy",
            r"cannot grab (?P<what>\S+): another program holds it \(a second (?P<svc>kiosk) "
            r"service, or (?P<cmd>evtest --grab)\?\)",
        ),
        (
            "hid_not_evdev",
            r"cannot grab (?P<what>\S+): not an input event device \(name its (?P<node>"
            r"/dev/input/by-id/\.\.\.-event-kbd) node\)",
        ),
        ("hid_grab", r"cannot grab (?P<what>\S+): (?P<err>.+)"),
        ("hid_gone", r"(?P<what>\S+) is gone \(unplugged\)"),
        (
            "hid_unterminated",
            r"keys without a line end: set the scanner to end each code with (?P<end>Enter) "
            r"\(or add its key to (?P<setting>end_keys), (?P<doc>docs/\S+)\)",
        ),
        ("cannot_open", r"cannot open (?P<what>\S+): (?P<err>.+)"),
        (
            "i2c_too_fast",
            r"I2C bus at (?P<speed>\d+ kHz), the (?P<chip>MLX90614) needs (?P<most>100 kHz) or "
            r"less: set (?P<setting>dtparam=i2c_arm_baudrate=100000) in (?P<file>/boot/firmware/"
            r"config\.txt) and reboot \((?P<doc>docs/\S+)\)",
        ),
        ("scanner_lost", r"scanner lost: (?P<inner>.+)"),
        (
            "no_ack",
            r"module does not acknowledge triggers \((?P<n>\d+) unanswered\): keyboard mode, "
            r"another baud rate or hung\? \((?P<doc>docs/\S+)\)",
        ),
        (
            "unterminated",
            r"data without a line end: set the module to end each code with CR "
            r"\((?P<setup>kiosk scanner setup), (?P<doc>docs/\S+)\)",
        ),
        (
            "hid_unknown_keys",
            r"codes with keys the (?P<layout>US) layout has no character for: set the scanner to "
            r"the US keyboard layout, without (?P<alt>Alt) or (?P<ctrl>Ctrl) key codes "
            r"\((?P<doc>docs/\S+)\)",
        ),
        ("log_closed", r"event log is not open"),
        # kiosk.cardfault's words of a write the card refused, before any other failed write.
        ("card_full", r"last write failed: the (?:card|disk) is full \((?P<mb>[\d.]+) MB free\)"),
        ("read_only", r"last write failed: the (?:card|disk) is read-only"),
        (
            "card_io",
            r"last write failed: the (?:card|disk) failed a read or write \(it may be failing\)",
        ),
        ("write_failed", r"last write failed: (?P<err>.+)"),
        ("read_only", r"the file system is read-only: nothing can be recorded"),
        (
            "read_failed",
            r"a read failed: (?P<err>\S+): part of the database is damaged or cannot be read"
            r" \(the SD card may be failing\); run (?P<command>kiosk verify-log)",
        ),
        ("low_disk", r"low disk: (?P<mb>\d+) MB free \(< (?P<min>[\d.]+)\)"),
        # The Pi's power and heat (drivers.pihealth): a kernel file that does not read as one.
        ("pi_not_hex", r"(?P<path>/\S+): (?P<text>'.*') is not a hex word"),
        ("pi_not_word", r"(?P<path>/\S+): (?P<text>'.*') is not a 32-bit word"),
        ("pi_not_alarm", r"(?P<path>/\S+): (?P<text>'.*') is not 0 or 1"),
        ("pi_not_milli", r"(?P<path>/\S+): (?P<text>'.*') is not millidegrees"),
        ("pi_not_temp", r"(?P<path>/\S+): (?P<c>-?[\d.]+) degC is not a SoC temperature"),
        ("pi_cannot_read", r"cannot read (?P<path>/sys/\S+): (?P<err>.+)"),
        (
            "pi_stale",
            r"the kernel's (?P<driver>rpi_volt) driver \((?P<module>raspberrypi_hwmon)\) is not"
            r" loaded: the throttle word"
            r" is the firmware's answer at boot, not read as now",
        ),
        ("seq", r"seq (?P<n>\d+)"),
        ("store_fault", r"store_fault: (?P<inner>.+)"),
    )
)
#: How deep details inside details are said (a retry of a register's problem is two).
MAX_DEPTH = 3


def detail_text(lang: str, detail: str, depth: int = 0) -> str:
    """``detail`` in ``lang``; as it came when it is in no known form."""
    for key, form in FORMS:
        found = form.fullmatch(detail)
        if found is None:
            continue
        parts = found.groupdict()
        if "inner" in parts and depth < MAX_DEPTH:
            parts["inner"] = detail_text(lang, parts["inner"], depth + 1)
        return i18n.t(lang, f"dev.{key}", **parts)
    return detail
