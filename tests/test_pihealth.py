"""The Pi's own power and heat: nothing in the product read them, so a gate on a weak supply
showed device faults with no cause named, and one in the sun slowed with no word of why.

The driver reads the kernel's files (``drivers.pihealth``: the firmware's ``get_throttled``,
the ``rpi_volt`` hwmon alarm, ``thermal_zone0/temp``) as a fake lays them out in a folder; the
``PowerWatch`` keeps the last reading for health, ``/metrics``, the Devices page and the live
page's card, and records each spell (coalesced: a flapping supply is one spell) for the daily
report's ``downtime``."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from guard_support import console_fixtures

from drivers.pihealth import FakePiSysfs, SysfsPiPower, build_pi_power
from kiosk import stats
from kiosk.alarms import PI_POWER_ALARM, power_alarms
from kiosk.config import parse_config
from kiosk.pihealth import ACTIVE_HOLD_S, COALESCE_S, PiPowerReading, PowerWatch, power_spells
from ui import i18n

START = datetime(2026, 7, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
clock, core, app, alice, admin = console_fixtures(START)

UNDER = 0x50005  # under-voltage now and since the last poll, throttled because of it
HOT = 0xA000A  # ARM capped and the soft temperature limit: a hot SoC, not the supply
BOTH = UNDER | HOT  # a weak supply in a hot enclosure: two causes, two spells
#: The rows of an under-voltage spell and a throttled spell, each opened and ended (sorted).
TWO_SPELLS = [
    "pi_power.throttled.end",
    "pi_power.throttled.start",
    "pi_power.under_voltage.end",
    "pi_power.under_voltage.start",
]


@pytest.fixture
def pi(tmp_path):
    return FakePiSysfs(tmp_path / "root").set(0, temp_c=47.2)


@pytest.fixture
def watch(core, clock, pi):
    found = PowerWatch(SysfsPiPower(pi.root), clock, core.store)
    core.pi_power = found
    return found


def _spell_rows(core):
    return [
        (r["action"], r["detail"])
        for r in core.store.audits(limit=1000)
        if r["action"].startswith("pi_power.")
    ]


def test_the_driver_reads_the_three_files_where_the_kernel_puts_them(pi):
    pi.set(UNDER, temp_c=61.5)
    reading = SysfsPiPower(pi.root).read()
    assert reading == PiPowerReading(throttled=UNDER, lcrit_alarm=True, soc_temp_c=61.5)
    assert reading.seen("under_voltage") and reading.seen("throttled")
    pi.set(HOT, temp_c=83.0)
    reading = SysfsPiPower(pi.root).read()
    assert (reading.seen("under_voltage"), reading.seen("throttled")) == (False, True)
    # The firmware device found at a Pi 4's path alone (no driver folder to find it by).
    (pi.root / "sys/bus/platform/drivers/raspberrypi-firmware/soc:firmware").unlink()
    assert SysfsPiPower(pi.root).read().throttled == HOT


def test_files_that_are_not_there_are_not_available_never_a_fault(tmp_path, core, clock):
    not_a_pi = PowerWatch(SysfsPiPower(tmp_path), clock, core.store)
    not_a_pi.poll()
    status = not_a_pi.status()
    assert (status["state"], status["available"], status["problems"]) == ("absent", False, [])
    assert not status["under_voltage"] and power_alarms(status) == []
    assert PowerWatch(None, clock).status()["state"] == "absent"  # pi_health.driver "none"


@pytest.mark.parametrize(
    ("which", "text", "said"),
    [
        ("get_throttled", "0xzz\n", "is not a hex word"),
        ("get_throttled", "1ffffffff\n", "is not a 32-bit word"),
        ("in0_lcrit_alarm", "2\n", "is not 0 or 1"),
        ("temp", "warm\n", "is not millidegrees"),
        ("temp", "999000\n", "999.0 degC is not a SoC temperature"),
    ],
)
def test_a_garbled_file_is_a_problem_named_and_starts_or_ends_nothing(
    pi, watch, core, clock, which, text, said
):
    pi.set(UNDER)
    watch.poll()  # a spell begins
    pi.set(0)
    pi.garble(which, text)
    for _ in range(3):
        clock.advance(COALESCE_S)
        watch.poll()
    status = watch.status()
    [problem] = status["problems"]
    assert said in problem and which in problem
    assert status["state"] in ("degraded", "fault")
    if which == "temp":  # the word and the alarm say the supply is fine again: it ended
        assert "pi_power.under_voltage.end" in [a for a, _ in _spell_rows(core)]
    elif which == "get_throttled":  # unknown: the throttled spell neither ends nor restarts
        assert "pi_power.throttled.end" not in [a for a, _ in _spell_rows(core)]
    else:  # the alarm unknown, the word says under-voltage no more: it ended
        assert "pi_power.under_voltage.end" in [a for a, _ in _spell_rows(core)]


def test_a_word_no_driver_refreshes_is_said_and_not_read_as_now(pi, watch, core):
    pi.set(UNDER)
    pi.unload_hwmon()
    watch.poll()
    status = watch.status()
    assert "rpi_volt driver (raspberrypi_hwmon) is not loaded" in status["problems"][0]
    assert not status["under_voltage"] and _spell_rows(core) == []
    from ui.device_words import detail_text

    assert "内核的 rpi_volt 驱动（raspberrypi_hwmon）未加载" in detail_text(
        "zh-CN", status["problems"][0]
    )


def test_a_flapping_supply_is_one_spell_two_rows_and_two_journal_lines(
    pi, watch, core, clock, caplog
):
    caplog.set_level(logging.INFO, logger="kiosk.pihealth")
    for i in range(60):  # two minutes of a supply dipping every other poll
        pi.set(UNDER if i % 2 == 0 else 0, temp_c=55.0)
        watch.poll()
        clock.advance(2)
    starts = ["pi_power.under_voltage.start"]  # the throttle it brings is no spell of its own
    assert [a for a, _ in _spell_rows(core)] == starts
    assert watch.status()["under_voltage"] and watch.status()["state"] == "fault"
    pi.set(0)
    clock.advance(COALESCE_S)
    watch.poll()
    watch.poll()
    rows = _spell_rows(core)
    assert [a for a, _ in rows] == [  # the word's bit 2 too: throttled because of it
        "pi_power.under_voltage.start",
        "pi_power.under_voltage.end",
    ]
    end = dict(rows)["pi_power.under_voltage.end"]
    assert end["flaps"] == 29 and end["seconds"] == 116.0 and not end["stopped"]
    lines = [r.getMessage() for r in caplog.records]
    assert sum("under-voltage:" in line for line in lines) == 1
    assert sum("under-voltage over" in line for line in lines) == 1
    assert len(lines) == 2  # its start and its end


def test_the_card_stands_while_it_lasts_in_both_languages_and_goes(pi, watch, alice, clock):
    pi.set(UNDER, temp_c=58.0)
    watch.poll()
    for lang, words, todo in (
        ("en", "supply voltage is too low since 09:00", "official 5.1 V supply"),
        ("zh-CN", "自 09:00 起主机供电电压过低", "官方 5.1 V 电源"),
    ):
        alarms = alice.get(f"/guard/api/feed?lang={lang}").json()["alarms"]
        [card] = [a for a in alarms if a["key"] == PI_POWER_ALARM]
        assert words in card["detail"] and todo in card["todo"]
    pi.set(HOT, temp_c=84.5)
    clock.advance(ACTIVE_HOLD_S + 1)
    watch.poll()
    [card] = [
        a
        for a in alice.get("/guard/api/feed?lang=en").json()["alarms"]
        if a["key"] == PI_POWER_ALARM
    ]
    assert "slowed down since 09:01 (SoC 84.5 °C)" in card["detail"]  # the heat's, not 09:00's
    assert "heatsink" in card["todo"]
    pi.set(0, temp_c=50.0)
    clock.advance(ACTIVE_HOLD_S + 1)
    watch.poll()
    alarms = alice.get("/guard/api/feed?lang=en").json()["alarms"]
    assert [a for a in alarms if a["key"] == PI_POWER_ALARM] == []


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_devices_page_has_a_row_for_it(pi, watch, admin, clock, lang):
    label = i18n.t(lang, "device.pi_power")

    def row():
        rows = admin.get(f"/guard/api/health?lang={lang}").json()["rows"]
        [found] = [r for r in rows if r["device"] == label]
        return found

    watch.poll()
    assert (row()["state"], row()["detail"]) == ("ok", i18n.t(lang, "health.pi_ok", temp="47.2 °C"))
    pi.set(0, temp_c=81.0)
    watch.poll()
    assert (row()["state"], row()["detail"]) == (
        "degraded",
        i18n.t(lang, "health.pi_hot", temp="81.0 °C"),
    )
    pi.set(UNDER)
    watch.poll()
    assert row()["state"] == "fault"
    assert i18n.t(lang, "health.pi_under_voltage", since="09:00") in html.unescape(
        admin.get(f"/guard/health?lang={lang}").text
    )
    pi.remove()
    clock.advance(COALESCE_S)
    watch.poll()
    assert (row()["state"], row()["detail"]) == ("absent", i18n.t(lang, "health.pi_absent"))
    pi.set(0)
    pi.garble("get_throttled", "zz\n")
    watch.poll()
    path = f"{pi.root}/sys/bus/platform/drivers/raspberrypi-firmware/soc:firmware/get_throttled"
    problem = i18n.t(lang, "dev.pi_not_hex", path=path, text="'zz'")
    assert row() == {**row(), "state": "degraded"}
    assert i18n.t(lang, "health.pi_problem", problem=problem) in row()["detail"]


def test_health_and_metrics_carry_it(pi, watch, core):
    from fastapi.testclient import TestClient

    from ui.app import create_app

    pi.set(UNDER, temp_c=62.25)
    watch.poll()
    with TestClient(create_app(core)) as client:
        health = client.get("/api/v1/health").json()
        metrics = client.get("/metrics").text
    pi_power = health["pi_power"]  # public: no token needed for it
    assert pi_power["under_voltage"] and pi_power["throttled"]
    assert pi_power["flags"] == ["under_voltage", "throttled"]
    assert pi_power["occurred"] == ["under_voltage", "throttled"]
    assert (pi_power["throttled_word"], pi_power["soc_temp_c"]) == ("0x50005", 62.25)
    assert "kiosk_pi_under_voltage 1\n" in metrics and "kiosk_pi_throttled 1\n" in metrics
    assert f"kiosk_pi_throttled_word {UNDER}\n" in metrics
    assert "kiosk_pi_soc_temperature_celsius 62.25\n" in metrics
    assert 'kiosk_device_up{device="pi_power",state="fault"} 0' in metrics


def test_the_daily_report_says_each_spell_when_and_for_how_long(pi, watch, core, clock):
    clock.advance(12 * 60)  # 09:12
    pi.set(UNDER)
    watch.poll()
    clock.advance(180)
    watch.poll()  # last seen 09:15
    pi.set(0)
    clock.advance(COALESCE_S)
    watch.poll()
    down = stats.daily_report(core.store.reader(), date(2026, 7, 1), "Asia/Shanghai")["downtime"]
    assert down["power_total"] == 1  # its throttle is its own, no throttled spell beside it
    under = down["power"][0]
    assert under == {
        "condition": "under_voltage",
        "from": "2026-07-01T09:12:00+08:00",
        "to": "2026-07-01T09:15:00+08:00",
        "minutes": 3.0,
        "flaps": 0,
        "dating": "clock",
    }
    report = stats.daily_report(core.store.reader(), date(2026, 7, 1), "Asia/Shanghai")
    csv = stats.report_file(report, "csv").decode("utf-8-sig")
    assert "downtime,power.1.condition,under_voltage" in csv
    from ui.guard.display import report_summary

    report = stats.daily_report(core.store.reader(), date(2026, 7, 1), "Asia/Shanghai")
    assert ("Pi under-voltage from 09:12 (minutes)", 3.0) in report_summary(report, "en")
    assert ("主机供电电压过低（09:12 起，分钟）", 3.0) in report_summary(report, "zh-CN")


def test_a_spell_not_over_is_in_the_report_without_an_end(pi, watch, core, clock):
    pi.set(HOT, temp_c=84.0)
    watch.poll()
    down = stats.daily_report(core.store.reader(), date(2026, 7, 1), "Asia/Shanghai")["downtime"]
    assert down["power"] == [
        {"condition": "throttled", "from": "2026-07-01T09:00:00+08:00", "to": None,
         "minutes": None, "flaps": 0, "dating": "clock"}
    ]  # fmt: skip
    next_day = stats.daily_report(core.store.reader(), date(2026, 7, 2), "Asia/Shanghai")
    assert next_day["downtime"]["power"][0]["to"] is None  # still on: it touches that day too
    assert (
        stats.daily_report(core.store.reader(), date(2026, 6, 30), "Asia/Shanghai")["downtime"][
            "power_total"
        ]
        == 0
    )


def test_the_daemon_polls_it_off_the_loop_and_ends_an_open_spell_at_its_stop(core, tmp_path):
    from checkpoint.app import Daemon
    from checkpoint.notify import Notifier

    root = tmp_path / "fake-pi"
    core.config = core.config.model_copy(
        update={
            "pi_health": parse_config(
                {"pi_health": {"driver": {"type": "fake", "root": str(root)}}}
            ).pi_health
        }
    )
    daemon = Daemon(core, notifier=Notifier(None))

    async def run():
        await daemon._watch_pi_power()
        FakePiSysfs(root).set(BOTH)
        daemon._pi_power.poll()
        daemon._pi_power_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await daemon._pi_power_task
        daemon._pi_power.close()

    asyncio.run(run())
    assert core.health()["pi_power"]["available"]
    assert [a for a, _ in _spell_rows(core)][-1] == "pi_power.throttled.end"
    assert dict(_spell_rows(core))["pi_power.under_voltage.end"]["stopped"]


def test_the_factory_builds_what_the_config_names(tmp_path):
    def section(driver):
        return parse_config({"pi_health": {"driver": driver}}).pi_health

    assert build_pi_power(section({"type": "none"}), tmp_path) is None
    assert build_pi_power(section({"type": "sysfs"}), tmp_path).root == Path("/")
    fake = build_pi_power(section({"type": "fake"}), tmp_path)
    assert fake.root == tmp_path / "pi-sysfs" and fake.read().throttled == 0


def test_the_demo_runs_the_fake_and_its_banner_says_how_to_drive_it(core, tmp_path):
    from checkpoint.demo import _pi_power_line, demo_config

    config = demo_config(0)
    assert config.pi_health.driver.type == "fake"
    core.config, core.data_dir = config, tmp_path
    [line] = _pi_power_line(core)
    word = tmp_path / "pi-sysfs/sys/devices/platform/soc/soc:firmware/get_throttled"
    assert line == f"  Pi power     : echo 50005 > {word}   (under-voltage; echo 0: over)"
    source = build_pi_power(config.pi_health, tmp_path)
    word.write_text("50005\n")  # what the banner tells the operator to do
    assert source.read().seen("under_voltage")


def test_kiosk_run_names_a_fake_pi_health_among_the_emulators():
    """At a real gate a fake's files would hide a real under-voltage."""
    from checkpoint.cli.daemon_cmd import emulated_devices

    assert "pi_health.driver" not in emulated_devices(parse_config({}))
    fake = parse_config({"pi_health": {"driver": {"type": "fake"}}})
    assert "pi_health.driver" in emulated_devices(fake)


class _StuckAudit:
    """A store whose audit write waits (a writer queue behind a stuck card) until let go."""

    def __init__(self):
        import threading

        self.entered, self.go = threading.Event(), threading.Event()
        self.rows = []

    def audit(self, actor, action, detail=None):
        self.entered.set()
        assert self.go.wait(10), "the test never let the write go"
        self.rows.append(action)


def test_a_stuck_audit_write_never_holds_up_health_or_the_guards_pages(pi, clock):
    import threading

    store = _StuckAudit()
    watch = PowerWatch(SysfsPiPower(pi.root), clock, store)
    pi.set(BOTH)
    poller = threading.Thread(target=watch.poll)
    poller.start()
    try:
        assert store.entered.wait(5)  # the spell's start row is being written, and waits
        answered = threading.Event()
        reader = threading.Thread(target=lambda: (watch.status(), answered.set()))
        reader.start()
        assert answered.wait(5), "status() waited on the audit write"
        assert watch.status()["under_voltage"] and watch.active("under_voltage") == START
    finally:
        store.go.set()
        poller.join(5)
    assert store.rows == ["pi_power.under_voltage.start", "pi_power.throttled.start"]


class _FailingCard:
    """The store's audit as a failing card answers it: ``StoreFault`` while ``failing``."""

    def __init__(self, store):
        self.store, self.failing = store, True

    def audit(self, actor, action, detail=None):
        if self.failing:
            from kiosk.store import StoreFault

            raise StoreFault("store_fault", "disk I/O error")
        self.store.audit(actor, action, detail)


def test_a_spells_start_row_the_card_refused_is_written_once_it_works_again(pi, core, clock):
    card = _FailingCard(core.store)
    watch = PowerWatch(SysfsPiPower(pi.root), clock, card)
    pi.set(BOTH)
    watch.poll()  # both start rows refused: held, not lost
    assert _spell_rows(core) == []
    card.failing = False
    clock.advance(60)
    watch.poll()  # the card works again: written, in order, with when they happened
    rows = _spell_rows(core)
    assert [a for a, _ in rows] == ["pi_power.under_voltage.start", "pi_power.throttled.start"]
    assert rows[0][1]["from"] == rows[0][1]["held_at"] == "2026-07-01T01:00:00.000000Z"
    card.failing = True
    pi.set(0)
    clock.advance(COALESCE_S)
    watch.poll()  # the end rows refused, then the daemon stops: one last try
    card.failing = False
    watch.close()
    assert [a for a, _ in _spell_rows(core)][2:] == [
        "pi_power.under_voltage.end",
        "pi_power.throttled.end",
    ]
    down = stats.daily_report(core.store.reader(), date(2026, 7, 1), "Asia/Shanghai")["downtime"]
    assert [(s["condition"], s["minutes"]) for s in down["power"]] == [
        ("under_voltage", 1.0),
        ("throttled", 1.0),
    ]


def test_a_spell_whose_start_row_was_never_written_is_reported_from_its_end_row(core):
    end = {"from": "2026-07-01T04:00:00.000000Z", "to": "2026-07-01T04:15:00.000000Z",
           "seconds": 900.0, "flaps": 3, "stopped": False}  # fmt: skip
    core.store.audit("daemon", "pi_power.throttled.end", end)
    down = stats.daily_report(core.store.reader(), date(2026, 7, 1), "Asia/Shanghai")["downtime"]
    assert down["power_total"] == 1
    assert down["power"] == [
        {"condition": "throttled", "from": "2026-07-01T12:00:00+08:00",
         "to": "2026-07-01T12:15:00+08:00", "minutes": 15.0, "flaps": 3,
         "dating": "clock"}
    ]  # fmt: skip


def _report(core, day):
    return stats.daily_report(core.store.reader(), day, "Asia/Shanghai")["downtime"]


def test_a_spell_the_pi_died_in_is_over_at_its_last_sign_of_life_not_for_days(
    pi, watch, core, clock
):
    pi.set(BOTH)
    watch.poll()  # 09:00: both spells begin
    clock.advance(10 * 60)
    core.store.audit("alice", "roster.handover", {"note": "shift"})  # 09:10: alive
    clock.advance(3 * 3600)  # a brown-out: no end row, the Pi off for hours; then it boots
    core.store.audit("daemon", stats.DAEMON_START, {"last_stop": "unclean"})
    PowerWatch(SysfsPiPower(pi.root), clock, core.store).poll()  # 12:10: still under-voltage
    down = _report(core, date(2026, 7, 1))
    assert [(s["condition"], s["from"], s["to"], s["minutes"]) for s in down["power"]] == [
        ("under_voltage", "2026-07-01T09:00:00+08:00", "2026-07-01T09:10:00+08:00", 10.0),
        ("throttled", "2026-07-01T09:00:00+08:00", "2026-07-01T09:10:00+08:00", 10.0),
        ("under_voltage", "2026-07-01T12:10:00+08:00", None, None),
        ("throttled", "2026-07-01T12:10:00+08:00", None, None),
    ]
    assert down["power_total"] == 4
    # The days after count only the spell still on, not the one the Pi died in.
    assert _report(core, date(2026, 7, 2))["power_total"] == 2
    died = power_spells(core.store.reader(), ("2026-07-01T00:00:00.000000Z",
                                                    "2026-07-02T00:00:00.000000Z"))  # fmt: skip
    assert [s.get("died", False) for s in died] == [True, True, False, False]
    from kiosk.pihealth import _DAEMON_START

    assert _DAEMON_START == stats.DAEMON_START  # the row it ends them at, as stats names it


def test_a_spell_the_pi_died_in_is_over_at_the_next_start_row_if_the_daemons_was_lost(
    pi, watch, core, clock
):
    pi.set(HOT, temp_c=84.0)
    watch.poll()  # 09:00; the Pi dies, and the daemon's start row is refused after the boot
    clock.advance(2 * 3600)
    again = PowerWatch(SysfsPiPower(pi.root), clock, core.store)
    again.poll()  # 11:00: hot still, a start row again
    clock.advance(60)
    again.poll()  # last seen 11:01
    pi.set(0, temp_c=60.0)
    clock.advance(COALESCE_S)
    again.poll()
    down = _report(core, date(2026, 7, 1))
    assert [(s["from"], s["to"]) for s in down["power"]] == [
        ("2026-07-01T09:00:00+08:00", "2026-07-01T09:00:00+08:00"),  # no sign of life after
        ("2026-07-01T11:00:00+08:00", "2026-07-01T11:01:00+08:00"),
    ]
    assert _report(core, date(2026, 7, 2))["power_total"] == 0


@pytest.mark.slow
def test_a_file_garbled_differently_at_each_poll_writes_a_few_lines_an_hour_not_one_a_poll(
    pi, watch, clock, caplog
):
    from kiosk.logs import FLAP_LINES

    caplog.set_level(logging.INFO, logger="kiosk.pihealth")
    for i in range(900):  # half an hour: a loose sensor, garbled or fine at each poll
        if i % 2:
            pi.set(0, temp_c=48.3)
        else:
            pi.garble("temp", f"{200000 + i}\n")
        watch.poll()
        clock.advance(2)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == FLAP_LINES  # ~43,000 a day before, one a poll
    assert "cannot be read in full" in lines[0] and "counted, not logged" in lines[-1]
    caplog.clear()
    clock.advance(3600)  # an hour on, read in full all along: one line says so, with the count
    watch.poll()
    watch.poll()
    [line] = [r.getMessage() for r in caplog.records]
    assert "read in full again" in line and "changes not logged" in line
    assert watch.status()["problems"] == []


# --- one weak supply, one spell: the firmware's throttle is the under-voltage's -----------------


def _a_weak_supply(pi, watch, clock, words=(UNDER, 0)) -> None:
    """Two minutes of a supply dipping every other poll (the firmware throttling for it:
    ``0x50005``), then five quiet minutes: the spell is over."""
    for i in range(60):
        pi.set(words[i % len(words)], temp_c=55.0)
        watch.poll()
        clock.advance(2)
    pi.set(0, temp_c=55.0)
    clock.advance(COALESCE_S)
    watch.poll()


def test_one_weak_supply_is_one_spell_whose_cause_is_under_voltage(pi, watch, core, clock, caplog):
    """Before: bit 0 and the throttle it brings (bit 2) wrote an under-voltage spell and a
    throttled one: two row pairs, two journal lines each, two entries in ``downtime.power``
    for one bad supply, the second saying "too hot" of a Pi that was not."""
    caplog.set_level(logging.INFO, logger="kiosk.pihealth")
    _a_weak_supply(pi, watch, clock)
    rows = _spell_rows(core)
    assert [a for a, _ in rows] == ["pi_power.under_voltage.start", "pi_power.under_voltage.end"]
    start, end = (detail for _, detail in rows)
    assert start["throttled"] is True and end["throttled"] is True and end["flaps"] == 29
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and all("the firmware slowed the Pi for it" in line for line in lines)
    down = stats.daily_report(core.store.reader(), date(2026, 7, 1), "Asia/Shanghai")["downtime"]
    assert [spell["condition"] for spell in down["power"]] == ["under_voltage"]
    assert down["power_total"] == 1


@pytest.mark.parametrize(
    "words",
    [(UNDER, 0, 0x4), (UNDER, 0x4, 0), (UNDER, 0x4), (0x10001, 0x20002)],
    ids=["dip-back-throttle", "dip-throttle-back", "dip-throttle", "dip-without-its-throttle"],
)
def test_a_throttle_alone_between_the_supplys_dips_is_the_supplys(
    pi, watch, core, clock, caplog, words
):
    """Before: the supply dipping, back, the firmware throttling (or capping) with no
    under-voltage in that reading, then dipping again wrote that throttle as a throttled spell
    of its own whose lines said "its SoC not hot": two spells for one weak supply, one of them
    named for what it was not. A throttle within the under-voltage's hold (``ACTIVE_HOLD_S``)
    of its dip is the supply's: one spell, its rows saying the firmware slowed the Pi."""
    caplog.set_level(logging.INFO, logger="kiosk.pihealth")
    _a_weak_supply(pi, watch, clock, words=words)
    rows = _spell_rows(core)
    assert [a for a, _ in rows] == ["pi_power.under_voltage.start", "pi_power.under_voltage.end"]
    start, end = (detail for _, detail in rows)
    assert start["throttled"] is bool(words[0] & 0x4) and end["throttled"] is True
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and not any("not hot" in line for line in lines)
    assert "the firmware slowed the Pi for it" in lines[1]


def test_a_throttle_after_the_dip_is_the_supplys_until_it_clears(pi, watch, core, clock):
    """A throttle alone that follows the dip within the hold is the supply's (health, the
    card, its spell's rows) for as long as it lasts, past the hold too; one first seen past
    the hold, after it cleared, is a spell of its own, its cause unknown."""
    pi.set(0x10001, temp_c=55.0)  # the supply dips, no throttle yet
    watch.poll()
    clock.advance(10)
    pi.set(0x20002, temp_c=55.0)  # back, the ARM capped: 01:00:10
    watch.poll()
    for _ in range(int(ACTIVE_HOLD_S) // 10 + 1):
        status = watch.status()
        assert (status["throttled"], status["throttled_cause"]) == (True, "under_voltage")
        assert status["throttled_since"] == "2026-07-01T01:00:10+00:00"
        supplys = "under_voltage" if status["under_voltage"] else "supply"  # the voltage back
        assert [card.cause for card in power_alarms(status)] == [supplys]
        clock.advance(10)
        watch.poll()
    assert [a for a, _ in _spell_rows(core)] == ["pi_power.under_voltage.start"]
    pi.set(0, temp_c=55.0)  # 01:01:20 the cap gone: it was the supply's
    watch.poll()
    clock.advance(ACTIVE_HOLD_S)
    pi.set(0x20002, temp_c=55.0)  # 01:02:20 capped again, 130 s after the dip: its own
    watch.poll()
    assert watch.status()["throttled_cause"] == "unknown"
    rows = _spell_rows(core)
    assert [a for a, _ in rows] == ["pi_power.under_voltage.start", "pi_power.throttled.start"]
    assert rows[1][1]["from"] == "2026-07-01T01:02:20.000000Z"
    watch.close()
    ends = {a: d for a, d in _spell_rows(core) if a.endswith(".end")}
    assert ends["pi_power.under_voltage.end"]["throttled"] is True
    assert ends["pi_power.throttled.end"]["cause"] == "unknown"


def test_a_throttle_after_the_dip_that_turns_hot_is_heats_from_its_first_reading(
    pi, watch, core, clock
):
    pi.set(UNDER, temp_c=70.0)
    watch.poll()
    clock.advance(2)
    pi.set(0x4, temp_c=70.0)  # the supply back, still throttled: the supply's for now
    watch.poll()
    clock.advance(2)
    pi.set(0x4, temp_c=watch.hot_c)  # the SoC at hot_c: heat's, from the throttle's start
    watch.poll()
    watch.close()
    detail = dict(_spell_rows(core))
    assert detail["pi_power.throttled.start"]["from"] == "2026-07-01T01:00:02.000000Z"
    assert detail["pi_power.throttled.end"]["cause"] == "heat"


def test_a_stop_gives_a_throttle_still_within_the_hold_to_the_supply(pi, watch, core, clock):
    pi.set(0x10001, temp_c=55.0)
    watch.poll()
    clock.advance(2)
    pi.set(0x4, temp_c=55.0)
    watch.poll()
    watch.close()
    rows = _spell_rows(core)
    assert [a for a, _ in rows] == ["pi_power.under_voltage.start", "pi_power.under_voltage.end"]
    assert rows[1][1]["throttled"] is True and rows[1][1]["stopped"] is True


def test_health_says_the_throttle_of_an_under_voltage_and_no_spell_of_heat(pi, watch, clock):
    pi.set(UNDER, temp_c=55.0)
    watch.poll()
    status = watch.status()
    assert status["under_voltage"] and status["throttled"]
    assert status["throttled_since"] == status["under_voltage_since"]
    assert status["state"] == "fault"
    pi.set(0, temp_c=55.0)
    clock.advance(ACTIVE_HOLD_S + 1)
    watch.poll()
    assert not watch.status()["throttled"] and not watch.status()["under_voltage"]


@pytest.mark.parametrize(
    ("word", "temp_c"),
    [(HOT, 70.0), (0x4, 81.0)],
    ids=["soft-temperature-limit", "throttled-at-hot_c"],
)
def test_heat_in_an_under_voltage_spell_is_a_throttled_spell_of_its_own(
    pi, watch, core, clock, word, temp_c
):
    pi.set(UNDER, temp_c=55.0)
    watch.poll()
    clock.advance(60)
    pi.set(word, temp_c=temp_c)  # the supply fine again, the SoC hot: bit 3, or at hot_c
    watch.poll()
    assert [a for a, _ in _spell_rows(core)] == [
        "pi_power.under_voltage.start",
        "pi_power.throttled.start",
    ]
    assert _spell_rows(core)[0][1]["throttled"] is True


def test_a_hot_soc_throttled_before_the_supply_sagged_stays_its_own_spell(pi, watch, core):
    pi.set(HOT, temp_c=84.0)
    watch.poll()
    pi.set(UNDER | HOT, temp_c=84.0)
    watch.poll()
    rows = _spell_rows(core)
    assert [a for a, _ in rows] == ["pi_power.throttled.start", "pi_power.under_voltage.start"]
    assert rows[1][1]["throttled"] is False


# --- a throttle alone is a spell from that reading, named for the cause it has -----------------


def _a_supply_then_a_throttle_alone(pi, watch, clock) -> None:
    """A poll every 10 s: three minutes of under-voltage with its throttle, twenty of the ARM
    capped (``0x20002``: capped now and since the kernel's last poll, no bit 2) with no
    under-voltage and the SoC at 60 degC, then ten quiet."""
    for minutes, word in ((3, UNDER), (20, 0x20002), (10, 0)):
        for _ in range(minutes * 6):
            pi.set(word, temp_c=60.0)
            watch.poll()
            clock.advance(10)


def test_a_throttle_that_outlasts_the_under_voltage_is_the_supplys_until_it_clears(
    pi, watch, core, clock, caplog
):
    """Before: a throttle alone went to the under-voltage spell while that one was only
    coalescing, then became a throttled spell of its own whose lines said "its SoC too hot"
    of a SoC at 60 degC; later, "cause unknown" from its first reading: two spells and a
    card switching from the supply to "cause unknown" for one weak supply. The throttle that
    followed the dip is the supply's until it clears: the under-voltage spell is not over
    while it lasts (its ``to`` the throttle's last sighting, ``throttled`` true)."""
    caplog.set_level(logging.INFO, logger="kiosk.pihealth")
    _a_supply_then_a_throttle_alone(pi, watch, clock)
    rows = _spell_rows(core)
    assert [a for a, _ in rows] == ["pi_power.under_voltage.start", "pi_power.under_voltage.end"]
    end = dict(rows)["pi_power.under_voltage.end"]
    assert (end["to"], end["throttled"]) == ("2026-07-01T01:22:50.000000Z", True)
    down = stats.daily_report(core.store.reader(), date(2026, 7, 1), "Asia/Shanghai")["downtime"]
    assert [(s["condition"], s["from"][11:19], s["to"][11:19]) for s in down["power"]] == [
        ("under_voltage", "09:00:00", "09:22:50"),
    ]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and all("the firmware slowed the Pi for it" in line for line in said)
    assert not any("hot" in line or "unknown" in line for line in said)


def test_a_throttle_lingering_after_the_dip_counts_in_downtime_power(pi, watch, core, clock):
    """Before: the spell's ``to`` was the under-voltage's last sighting, so a throttle that
    lingered 20 minutes after a dip showed in ``downtime.power`` only as ``throttled: true``,
    the spell a minute long. It lasts until the supply's problem, the voltage or the throttle
    it caused, was last seen: dip at 09:00, voltage back at 09:01, throttle last read 09:21."""
    for polls, word in ((6, UNDER), (20 * 6 + 1, 0x40004), (COALESCE_S // 10 + 1, 0)):
        for _ in range(int(polls)):  # a poll every 10 s: 09:00:00-09:00:50, 09:01:00-09:21:00
            pi.set(word, temp_c=55.0)
            watch.poll()
            clock.advance(10)
    down = _report(core, date(2026, 7, 1))
    assert down["power"] == [
        {"condition": "under_voltage", "from": "2026-07-01T09:00:00+08:00",
         "to": "2026-07-01T09:21:00+08:00", "minutes": 21.0, "flaps": 0,
         "dating": "clock"}
    ]  # fmt: skip


def test_the_under_voltage_spell_is_not_over_while_its_throttle_lingers(pi, watch, core, clock):
    _a_supply_then_a_throttle_alone(pi, watch, clock)  # the cap cleared at 01:23:00
    [end] = [
        (r["ts"], r["detail"])
        for r in core.store.audits(limit=1000)
        if r["action"] == ("pi_power.under_voltage.end")
    ]
    assert end[0] >= "2026-07-01T01:27:50"  # five quiet minutes after the throttle's last read


def test_a_throttled_spells_lines_say_heat_once_a_reading_in_it_did(pi, watch, clock, caplog):
    caplog.set_level(logging.INFO, logger="kiosk.pihealth")
    pi.set(0x20002, temp_c=60.0)  # capped now and since the last poll, the SoC not hot
    watch.poll()
    clock.advance(60)
    pi.set(0x4, temp_c=watch.hot_c)  # the same spell, the SoC at hot_c now
    watch.poll()
    pi.set(0, temp_c=60.0)
    clock.advance(COALESCE_S)
    watch.poll()
    start, end = (r.getMessage() for r in caplog.records)
    assert start.startswith("throttled: ") and "cause unknown" in start and "hot" not in start
    assert end.startswith("throttled over: ") and "its SoC too hot" in end


# --- bit 1 (ARM frequency capped): said by the cause the rest of the reading shows ------------


def _guard_words(admin, lang="en") -> tuple[str, dict]:
    """The devices page's Pi row and the live page's Pi card, as the guard reads them."""
    label = i18n.t(lang, "device.pi_power")
    rows = admin.get(f"/guard/api/health?lang={lang}").json()["rows"]
    [row] = [r["detail"] for r in rows if r["device"] == label]
    alarms = admin.get(f"/guard/api/feed?lang={lang}").json()["alarms"]
    [card] = [a for a in alarms if a["key"] == PI_POWER_ALARM]
    return row, card


@pytest.mark.parametrize(
    ("word", "temp_c", "cause", "said"),
    [
        (0x20002, 55.0, "unknown", "cause unknown"),  # capped alone, the SoC cool
        (0x2, 81.0, "heat", "heatsink"),  # capped, the SoC at hot_c
        (0xA000A, 55.0, "heat", "heatsink"),  # capped with the soft temperature limit
        (0x30003, 55.0, "under_voltage", "for the low voltage"),  # capped with under-voltage
    ],
    ids=["alone", "hot-soc", "soft-limit", "under-voltage"],
)
def test_the_arm_capped_bit_is_said_as_the_cause_the_reading_shows(
    pi, watch, core, admin, word, temp_c, cause, said
):
    """Before: bit 1 alone (the firmware caps the ARM's frequency for a low supply as for
    heat) on a cool SoC gave the guard "slowed down ... shade the enclosure, fit a heatsink",
    and so did the cap of an under-voltage on the devices page: heat said with no sign of it."""
    pi.set(word, temp_c=temp_c)
    watch.poll()
    row, card = _guard_words(admin)
    if cause == "heat":
        assert "heatsink" in card["todo"] and "slowed down since 09:00" in card["detail"]
    else:
        heat = [w for text in (row, card["detail"], card["todo"]) for w in HEAT_WORDS if w in text]
        assert heat == []
    assert said in row
    status = watch.status()
    assert status["throttled"] and status["throttled_cause"] == cause
    assert "freq_capped" in status["flags"]
    if cause == "heat":
        return
    if cause == "unknown":
        assert "capped" in card["detail"] and "cause unknown" in card["detail"]
    else:  # the supply's: its card, its one spell
        assert "supply voltage is too low since 09:00" in card["detail"]
        assert [a for a, _ in _spell_rows(core)] == ["pi_power.under_voltage.start"]
    zh_row, zh_card = _guard_words(admin, "zh-CN")
    assert not any(w in text for text in (zh_row, zh_card["todo"]) for w in ("遮阳", "散热片"))


#: What the guard is told only of heat: the enclosure shaded, a heatsink.
HEAT_WORDS = ("heatsink", "Shade", "too hot")


# --- one weak supply reads as one supply problem, whatever throttle came before --------------


def test_a_throttle_of_no_known_cause_takes_none_of_a_later_supplys_throttle(
    pi, watch, core, clock
):
    """Before: a throttled spell of cause unknown still open (the ARM capped on a cool SoC)
    took every later dip's throttle: the supply's throttle said "cause unknown" in health
    and on the card, and kept that spell going as a second spell of the one weak supply."""
    pi.set(0x20002, temp_c=55.0)  # 01:00:00 capped on a cool SoC: a spell, cause unknown
    watch.poll()
    clock.advance(120)
    pi.set(UNDER, temp_c=55.0)  # 01:02:00 the supply dips, the firmware throttling for it
    watch.poll()
    status = watch.status()
    assert (status["throttled_cause"], status["throttled_since"]) == (
        "under_voltage",
        "2026-07-01T01:02:00+00:00",
    )
    assert [card.cause for card in power_alarms(status)] == ["under_voltage"]
    clock.advance(2)
    _a_weak_supply(pi, watch, clock)
    ends = {a: d for a, d in _spell_rows(core) if a.endswith(".end")}
    assert ends["pi_power.throttled.end"]["to"] == "2026-07-01T01:00:00.000000Z"
    assert ends["pi_power.throttled.end"]["flaps"] == 0
    assert ends["pi_power.under_voltage.end"]["throttled"] is True


@pytest.mark.slow
def test_a_supply_dipping_every_90_s_with_a_cap_lingering_70_s_is_one_supply_problem(
    pi, watch, core, clock, caplog
):
    """Before: the cap outlasting the hold after each dip became a throttled spell "cause
    unknown" and the card switched between the supply and "cause unknown" 20 times in 15
    minutes. A throttle that began within the hold of a dip is the supply's until it clears."""
    caplog.set_level(logging.INFO, logger="kiosk.pihealth")
    causes = []
    for t in range(0, 900, 2):
        phase = t % 90
        pi.set(UNDER if phase == 0 else (0x20002 if phase <= 70 else 0), temp_c=55.0)
        watch.poll()
        status = watch.status()
        assert status["throttled"] and status["throttled_cause"] == "under_voltage", t
        causes += [card.cause for card in power_alarms(status)]
        clock.advance(2)
    assert len(causes) == 450 and "unknown" not in causes  # one card all along
    assert [a for a, _ in _spell_rows(core)] == ["pi_power.under_voltage.start"]
    assert len(caplog.records) == 1


def test_a_throttle_pending_when_its_supplys_spell_ends_is_that_spells_not_a_later_ones(
    pi, watch, core, clock
):
    """Before: the word unreadable after a throttle that followed the dip, the under-voltage
    spell ended (the alarm said 0) with the throttle still pending: its rows said the firmware
    had not slowed the Pi, and a throttle an hour later started a spell at the old one's time."""
    pi.set(0x10001, temp_c=55.0)
    watch.poll()
    clock.advance(2)
    pi.set(0x20002, temp_c=55.0)  # 01:00:02 the cap after the dip: the supply's
    watch.poll()
    pi.set(0, temp_c=55.0)
    pi.garble("get_throttled", "0xzz\n")  # the word unreadable, the alarm says 0
    for _ in range(4):
        clock.advance(COALESCE_S)
        watch.poll()
    clock.advance(3600)
    pi.set(0x20002, temp_c=55.0)  # 02:20:02, capped: a spell from now
    watch.poll()
    detail = dict(_spell_rows(core))
    assert detail["pi_power.under_voltage.end"]["throttled"] is True
    assert detail["pi_power.throttled.start"]["from"] == "2026-07-01T02:20:02.000000Z"


def test_heat_after_a_pending_throttle_unseen_past_the_hold_starts_from_the_hot_read(
    pi, watch, core, clock
):
    pi.set(0x10001, temp_c=55.0)
    watch.poll()
    clock.advance(2)
    pi.set(0x20002, temp_c=55.0)  # 01:00:02 the cap after the dip: the supply's, pending
    watch.poll()
    pi.set(0, temp_c=55.0)
    pi.garble("get_throttled", "0xzz\n")  # two minutes of a word that cannot be read
    for _ in range(12):
        clock.advance(10)
        watch.poll()
    pi.set(0x4, temp_c=watch.hot_c)  # 01:02:02 throttled and hot: heat's from this read
    watch.poll()
    watch.close()
    detail = dict(_spell_rows(core))
    assert detail["pi_power.throttled.start"]["from"] == "2026-07-01T01:02:02.000000Z"
    assert detail["pi_power.under_voltage.end"]["throttled"] is True


def test_health_says_heat_while_a_sign_of_it_was_seen_within_the_coalesce_window(
    pi, watch, core, clock, admin
):
    """Before: one hot read named the whole throttled spell's throttle "heat" in health and
    on the card (shade the enclosure, fit a heatsink) for as long as it lasted, ten minutes
    on of a SoC at 55 degC capped with no sign of heat. Health says heat while a sign of it
    was seen within the spell's coalesce window, else what the present read shows; the
    spell's rows keep heat once seen."""
    pi.set(0x2, temp_c=81.0)  # 01:00:00 capped and at hot_c: heat
    watch.poll()
    for _ in range(int(COALESCE_S) // 2):  # to 01:05:00: capped, the SoC at 55 degC
        clock.advance(2)
        pi.set(0x20002, temp_c=55.0)
        watch.poll()
    assert watch.status()["throttled_cause"] == "heat"
    clock.advance(2)
    watch.poll()
    status = watch.status()
    assert (status["throttled_cause"], status["throttled_since"]) == (
        "unknown",
        "2026-07-01T01:00:00+00:00",
    )
    row, card = _guard_words(admin)
    assert "cause unknown" in card["detail"] and "cause unknown" in row
    pi.set(0x20002, temp_c=watch.hot_c)  # hot again: heat again
    watch.poll()
    assert watch.status()["throttled_cause"] == "heat"
    pi.set(0x20002, temp_c=55.0)
    watch.poll()
    watch.close()
    assert dict(_spell_rows(core))["pi_power.throttled.end"]["cause"] == "heat"


@pytest.mark.parametrize(
    ("lang", "said", "todo"),
    [
        ("en", "slowed down since 09:00 after a dip in its supply", "The voltage is back"),
        ("zh-CN", "自 09:00 起供电电压曾过低，主机降频运行", "电压已恢复"),
    ],
)
def test_once_the_voltage_is_back_the_card_says_the_pi_is_slowed_after_a_dip(
    pi, watch, clock, admin, lang, said, todo
):
    """Before: the under-voltage card ("the supply voltage is too low") stood up to two
    minutes after the voltage was back, for the throttle the dip left behind."""
    pi.set(0x10001, temp_c=55.0)  # 01:00:00 the supply dips
    watch.poll()
    for _ in range(29):  # the cap lingers to 01:00:58, then gone: the supply's
        clock.advance(2)
        pi.set(0x20002, temp_c=55.0)
        watch.poll()
    clock.advance(2)
    pi.set(0, temp_c=55.0)
    watch.poll()
    clock.advance(50)  # 01:01:50: 110 s after the dip, 52 s after the cap
    watch.poll()
    status = watch.status()
    assert (status["under_voltage"], status["throttled_cause"]) == (False, "under_voltage")
    row, card = _guard_words(admin, lang)
    assert said in card["detail"] and todo in card["todo"]
    too_low = ("too low", "电压过低：")
    assert not any(w in text for text in (card["detail"], row) for w in too_low)


def test_a_heat_spells_lines_say_heat_not_no_under_voltage_when_the_read_has_both(
    pi, watch, clock, caplog
):
    """Before: a weak supply in a hot enclosure (``0x5000F``) wrote a throttled spell whose
    lines said "slowed with no under-voltage" of the read that saw the under-voltage."""
    caplog.set_level(logging.INFO, logger="kiosk.pihealth")
    pi.set(BOTH, temp_c=84.0)
    watch.poll()
    watch.close()
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("throttled")]
    assert len(said) == 2
    assert all("slowed for heat (its SoC too hot)" in line for line in said)
    assert not any("no under-voltage" in line for line in said)


# --- the supply's throttle at its edges (review3's mutants) ----------------------------------


def test_a_throttle_gone_within_the_hold_is_settled_so_a_later_one_is_its_own(
    pi, watch, core, clock
):
    """The throttle after the dip clears: it was the supply's (its spell's rows say so), and
    a throttle first seen after it past the hold is a spell of its own, not the supply's."""
    pi.set(0x10001, temp_c=55.0)
    watch.poll()
    clock.advance(2)
    pi.set(0x4, temp_c=55.0)  # 01:00:02 throttled after the dip: the supply's
    watch.poll()
    clock.advance(2)
    pi.set(0, temp_c=55.0)  # 01:00:04 gone
    watch.poll()
    clock.advance(ACTIVE_HOLD_S)
    pi.set(0x4, temp_c=55.0)  # 01:01:04 throttled again, past the hold: its own
    watch.poll()
    rows = _spell_rows(core)
    assert [a for a, _ in rows] == ["pi_power.under_voltage.start", "pi_power.throttled.start"]
    assert rows[1][1]["from"] == "2026-07-01T01:01:04.000000Z"
    watch.close()
    assert dict(_spell_rows(core))["pi_power.under_voltage.end"]["throttled"] is True


def test_a_pending_throttle_is_settled_when_the_supply_dips_again(pi, watch, core, clock):
    """The throttle after the first dip is the supply's once it dips again: a throttle that
    later turns hot is heat's from its own first read, not from the settled one's."""
    pi.set(0x10001, temp_c=55.0)
    watch.poll()
    clock.advance(2)
    pi.set(0x20002, temp_c=55.0)  # 01:00:02 pending
    watch.poll()
    clock.advance(2)
    pi.set(UNDER, temp_c=55.0)  # 01:00:04 the supply again, its throttle
    watch.poll()
    clock.advance(2)
    pi.set(0x20002, temp_c=55.0)  # 01:00:06 the cap alone: pending from here
    watch.poll()
    clock.advance(2)
    pi.set(0x20002, temp_c=watch.hot_c)  # 01:00:08 hot: heat's from 01:00:06
    watch.poll()
    rows = dict(_spell_rows(core))
    assert rows["pi_power.throttled.start"]["from"] == "2026-07-01T01:00:06.000000Z"


def test_the_soft_temperature_limit_having_occurred_alone_is_heat(pi, watch, core):
    pi.set(0x80002, temp_c=60.0)  # capped now, the soft limit since the last poll (bit 19)
    watch.poll()
    status = watch.status()
    assert (status["throttled"], status["throttled_cause"]) == (True, "heat")
    assert dict(_spell_rows(core))["pi_power.throttled.start"]["cause"] == "heat"


def test_a_pending_throttle_stands_in_health_from_its_last_sighting(pi, watch, clock):
    pi.set(0x10001, temp_c=55.0)
    watch.poll()
    for _ in range(50):  # 01:00:02 to 01:01:40 the cap after the dip, pending
        clock.advance(2)
        pi.set(0x20002, temp_c=55.0)
        watch.poll()
    pi.set(0, temp_c=55.0)
    clock.advance(ACTIVE_HOLD_S)  # 01:02:40: 60 s after the cap's last read
    watch.poll()
    status = watch.status()
    assert (status["throttled"], status["throttled_cause"]) == (True, "under_voltage")
    clock.advance(2)
    watch.poll()
    assert not watch.status()["throttled"]


def test_health_dates_the_supplys_throttle_from_its_first_read(pi, watch, clock):
    pi.set(UNDER, temp_c=55.0)  # 01:00:00 the dip and its throttle
    watch.poll()
    clock.advance(2)
    pi.set(0x20002, temp_c=55.0)  # 01:00:02 the cap after it, pending
    watch.poll()
    assert watch.status()["throttled_since"] == "2026-07-01T01:00:00+00:00"


@pytest.mark.parametrize(("after", "supplys"), [(ACTIVE_HOLD_S, True), (ACTIVE_HOLD_S + 2, False)])
def test_a_throttle_first_seen_at_the_holds_edge(pi, watch, core, clock, after, supplys):
    pi.set(0x10001, temp_c=55.0)
    watch.poll()
    clock.advance(after)
    pi.set(0x20002, temp_c=55.0)  # the first throttle after the dip, at or past the hold
    watch.poll()
    assert watch.status()["throttled_cause"] == ("under_voltage" if supplys else "unknown")
    assert ("pi_power.throttled.start" in dict(_spell_rows(core))) is not supplys


def test_the_supplys_throttle_is_dated_by_its_last_sighting_in_health(pi, watch, clock):
    pi.set(UNDER, temp_c=55.0)  # 01:00:00
    watch.poll()
    clock.advance(50)
    pi.set(UNDER, temp_c=55.0)  # 01:00:50 again, its throttle seen last now
    watch.poll()
    pi.set(0, temp_c=55.0)
    clock.advance(ACTIVE_HOLD_S)  # 01:01:50: a minute after the last: it stands
    watch.poll()
    assert watch.status()["throttled"] and watch.status()["under_voltage"]


def test_a_spell_of_heat_open_when_the_supply_dips_keeps_the_throttle(pi, watch, core):
    pi.set(HOT, temp_c=84.0)  # a hot SoC throttled: heat's spell
    watch.poll()
    pi.set(UNDER, temp_c=75.0)  # the supply sags, the read itself shows no heat
    watch.poll()
    rows = _spell_rows(core)
    assert [a for a, _ in rows] == ["pi_power.throttled.start", "pi_power.under_voltage.start"]
    assert rows[1][1]["throttled"] is False and watch.status()["throttled_cause"] == "heat"


def test_a_throttle_only_since_the_kernels_last_poll_counts(pi, watch, core):
    pi.set(0x20000, temp_c=55.0)  # capped since the last poll (bit 17), not now
    watch.poll()
    assert watch.status()["throttled"] and watch.status()["throttled_cause"] == "unknown"
    assert [a for a, _ in _spell_rows(core)] == ["pi_power.throttled.start"]


def test_a_pending_throttle_that_turns_hot_in_an_open_spell_is_that_spells_alone(
    pi, watch, core, clock
):
    pi.set(0x20002, temp_c=55.0)  # 01:00:00 capped, cause unknown: a spell
    watch.poll()
    clock.advance(2)
    pi.set(0x10001, temp_c=55.0)  # 01:00:02 the supply dips, no throttle with it
    watch.poll()
    clock.advance(2)
    pi.set(0x20002, temp_c=55.0)  # 01:00:04 the cap after the dip: pending
    watch.poll()
    clock.advance(2)
    pi.set(0x20002, temp_c=watch.hot_c)  # 01:00:06 hot: the open spell's, heat's
    watch.poll()
    watch.close()
    ends = {a: d for a, d in _spell_rows(core) if a.endswith(".end")}
    assert ends["pi_power.throttled.end"]["cause"] == "heat"
    assert ends["pi_power.under_voltage.end"]["throttled"] is False  # not the supply's too


def test_a_throttled_start_line_written_late_says_from_when(pi, watch, clock, caplog):
    """Before: the start line of a throttle that turned hot after the dip was written at the
    hot read with no time, while its row's ``from`` was the throttle's first read."""
    caplog.set_level(logging.INFO, logger="kiosk.pihealth")
    pi.set(UNDER, temp_c=70.0)
    watch.poll()
    clock.advance(2)
    pi.set(0x4, temp_c=70.0)  # 01:00:02 the throttle after the dip
    watch.poll()
    clock.advance(2)
    pi.set(0x4, temp_c=watch.hot_c)  # 01:00:04 hot: heat's from 01:00:02
    watch.poll()
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("throttled")]
    assert "from 2026-07-01T01:00:02.000000Z" in line


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_a_throttle_alone_is_not_said_as_a_capped_arm(pi, watch, admin, lang):
    """Before: bit 2 alone (throttled, the ARM not capped) gave the card "The Pi's ARM
    frequency is capped" and the row "ARM frequency capped"."""
    pi.set(0x4, temp_c=55.0)
    watch.poll()
    row, card = _guard_words(admin, lang)
    assert not any(
        "frequency is capped" in t or "frequency capped since" in t for t in (row, card["detail"])
    )
    said = ("slowed down", "cause unknown") if lang == "en" else ("降频运行", "原因不明")
    assert all(w in card["detail"] and w in row for w in said)


def _end_row(core, condition: str) -> dict:
    [end] = [
        r["detail"] for r in core.store.audits(limit=1000) if r["action"] == f"{condition}.end"
    ]
    return end


@pytest.mark.parametrize(
    ("first_dip", "stepped_to", "to"),
    [
        # A dip before NTP set the clock (1970), the throttle lingering past the sync: its
        # ``to`` was the 2026 of the throttle's last read, the spell 56 years long.
        (datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC), START, "1970-01-01T00:21:05.000000Z"),
        # The clock stepped back an hour while the throttle lingered: max() kept the
        # voltage's last sighting, the 20 minutes of throttle lost.
        (START, datetime(2026, 7, 1, 0, 10, tzinfo=UTC), "2026-07-01T01:21:00.000000Z"),
    ],
)
def test_a_spells_to_is_its_last_sighting_moved_on_by_the_monotonic_clock(
    pi, watch, core, clock, first_dip, stepped_to, to
):
    """The throttle's last read is dated from the spell's last sighting of the voltage plus
    the monotonic time between them, as the spell's start and end are: the wall clock
    stepping (forward at the sync, or back) between them changes nothing."""
    clock.set_wall(first_dip)
    for polls, word in ((6, UNDER), (10 * 6, 0x40004), (10 * 6 + 1, 0x40004)):
        for _ in range(polls):  # dip 6 polls, 10 s apart; the throttle lingers 20 minutes
            pi.set(word, temp_c=55.0)
            watch.poll()
            clock.advance(10)
        if polls == 10 * 6:
            clock.set_wall(stepped_to)  # NTP's step, halfway through the throttle
    for _ in range(int(COALESCE_S // 10) + 1):
        pi.set(0, temp_c=55.0)
        watch.poll()
        clock.advance(10)
    end = _end_row(core, "pi_power.under_voltage")
    assert (end["from"], end["to"], end["seconds"]) == (
        first_dip.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        to,
        21 * 60.0,
    )


def _dip_with_a_step(pi, watch, clock, word, stepped_to, *, synced_after=True):
    """Six polls of ``word`` 10 s apart, the wall clock stepped to ``stepped_to`` after the
    third (NTP's first sync under the boot's load, or a step back): the spell lasts 50 s."""
    for i in range(6):
        pi.set(word, temp_c=55.0)
        watch.poll()
        clock.advance(10)
        if i == 2:
            clock.set_wall(stepped_to)
            clock.is_synced = synced_after


def _quiet(pi, watch, clock):
    for _ in range(int(COALESCE_S // 10) + 1):
        pi.set(0, temp_c=55.0)
        watch.poll()
        clock.advance(10)


@pytest.mark.parametrize(
    ("first_dip", "synced", "stepped_to", "span"),
    [
        # The dip began before NTP set the clock (1970): the sync came during it. Its end was
        # the 2026 of its last read, from the 1970 of its first: 56 years in downtime.power.
        # Now both ends are dated by the synchronised clock, as the events of that boot are.
        (
            datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC),
            False,
            START,
            ("2026-07-01T00:59:30.000000Z", "2026-07-01T01:00:20.000000Z"),
        ),
        # The clock stepped back an hour during the dip: it ended before it began (0 s, and
        # the report's minutes -59.7).
        (
            START,
            True,
            datetime(2026, 7, 1, 0, 0, 30, tzinfo=UTC),
            ("2026-07-01T01:00:00.000000Z", "2026-07-01T01:00:50.000000Z"),
        ),
    ],
)
def test_a_clock_step_during_a_dip_moves_neither_end_of_its_spell(
    pi, watch, core, clock, first_dip, synced, stepped_to, span
):
    clock.set_wall(first_dip)
    clock.is_synced = synced
    _dip_with_a_step(pi, watch, clock, UNDER, stepped_to)
    _quiet(pi, watch, clock)
    end = _end_row(core, "pi_power.under_voltage")
    assert (end.get("dated_from", end["from"]), end["to"], end["seconds"]) == (*span, 50.0)
    [spell] = _report(core, date(2026, 7, 1))["power"]
    assert (spell["condition"], spell["minutes"]) == ("under_voltage", 0.8)


def test_a_throttled_spell_stepped_back_during_it_ends_after_it_begins(pi, watch, core, clock):
    _dip_with_a_step(pi, watch, clock, HOT, datetime(2026, 7, 1, 0, 0, 30, tzinfo=UTC))
    _quiet(pi, watch, clock)
    end = _end_row(core, "pi_power.throttled")
    assert (end["from"], end["to"], end["seconds"]) == (
        "2026-07-01T01:00:00.000000Z",
        "2026-07-01T01:00:50.000000Z",
        50.0,
    )


def test_a_throttled_spell_taking_over_a_lingering_throttle_is_dated_from_its_first_read(
    pi, watch, core, clock
):
    """A throttle lingering after a dip, then hot: a throttled spell from the lingering
    throttle's first read; the clock stepped back between them changes neither end."""
    for polls, word in ((1, UNDER), (3, 0x40004)):
        for _ in range(polls):
            pi.set(word, temp_c=55.0)
            watch.poll()
            clock.advance(10)
    clock.set_wall(datetime(2026, 7, 1, 0, 0, 40, tzinfo=UTC))  # an hour back
    for _ in range(2):
        pi.set(HOT, temp_c=85.0)
        watch.poll()
        clock.advance(10)
    _quiet(pi, watch, clock)
    end = _end_row(core, "pi_power.throttled")
    assert (end["from"], end["to"], end["seconds"]) == (
        "2026-07-01T01:00:10.000000Z",
        "2026-07-01T01:00:50.000000Z",
        40.0,
    )


def test_a_spell_the_kiosk_stopped_in_is_dated_by_the_clock_once_synchronised(
    pi, watch, core, clock
):
    """The stop's end row: a dip stamped 1970, NTP's sync during it, the kiosk stopped."""
    clock.set_wall(datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC))
    clock.is_synced = False
    _dip_with_a_step(pi, watch, clock, UNDER, START)
    watch.close()
    end = _end_row(core, "pi_power.under_voltage")
    assert (end["from"], end["dated_from"], end["to"], end["seconds"], end["stopped"]) == (
        "1970-01-01T00:00:05.000000Z",  # as its start row said: the spell it ends
        "2026-07-01T00:59:30.000000Z",
        "2026-07-01T01:00:20.000000Z",
        50.0,
        True,
    )
    [spell] = _report(core, date(2026, 7, 1))["power"]
    assert (spell["from"], spell["minutes"]) == ("2026-07-01T08:59:30+08:00", 0.8)


def test_a_spell_of_an_older_version_ending_before_it_began_is_no_negative_minutes(core):
    end = {"from": "2026-07-01T04:00:00.000000Z", "to": "2026-07-01T03:00:20.000000Z",
           "seconds": 0.0, "flaps": 0, "stopped": False}  # fmt: skip
    core.store.audit("daemon", "pi_power.under_voltage.end", end)
    [spell] = _report(core, date(2026, 7, 1))["power"]
    assert (spell["to"], spell["minutes"]) == ("2026-07-01T12:00:00+08:00", 0.0)
