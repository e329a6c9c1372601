"""A restart of the daemon within one boot is seen in the daily report's ``downtime``.

Before: ``downtime`` saw only changes of the kernel's ``boot_id`` between events, so a crash
systemd restarted, an update, a ``systemctl restart`` or a stand-by on an unreadable card
left no trace: the office saw fewer events and nothing else. The daemon now records its start
(``daemon.start``: whether the last run stopped cleanly, from the marker a clean stop leaves
in the data dir) and its clean stop (``daemon.stop``) in the audit table, and ``downtime``
lists each span the daemon was not running within a boot: stop → start, or, after a run that
did not stop cleanly, its last sign of life → start."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from checkpoint.app import STOPPED_MARKER, Daemon, build_core, record_start
from checkpoint.notify import Notifier
from kiosk import stats
from kiosk.clock import FakeClock
from kiosk.config import parse_config
from kiosk.store import EventDraft, EventLog

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 2, 12)
MIDNIGHT = datetime(2026, 2, 11, 16, 0, tzinfo=UTC)  # 00:00 Shanghai on DAY


def _log(path, at, boot_id="boot-a"):
    return EventLog(path, "gate-1", at, "NORMAL", migrations=[stats.MIGRATIONS], boot_id=boot_id)


def _at(at, hours):
    at.set_wall(MIDNIGHT + timedelta(hours=hours))


def test_a_restart_of_the_daemon_within_one_boot_is_listed(tmp_path):
    at = FakeClock(start=MIDNIGHT)
    log = _log(tmp_path / "k.db", at).open()
    _at(at, 7)
    log.audit("daemon", "daemon.start", {"last_stop": "none"})
    _at(at, 8)
    log.append(EventDraft(direction="in", decision="pass"))
    _at(at, 9)
    log.audit("daemon", "daemon.stop")  # systemctl restart, an update: a clean stop
    _at(at, 9.25)
    log.audit("daemon", "daemon.start", {"last_stop": "clean"})
    _at(at, 10)
    log.append(EventDraft(direction="in", decision="pass"))  # then a crash: no stop row
    _at(at, 10.5)
    log.audit("daemon", "daemon.start", {"last_stop": "unclean"})
    _at(at, 11)
    log.append(EventDraft(direction="in", decision="pass"))
    down = stats.daily_report(log.reader(), DAY, TZ)["downtime"]
    assert down["boots"] == 1 and down["restarts_total"] == 2
    assert down["restarts"] == [
        {"from": "2026-02-12T09:00:00+08:00", "booted": None, "to": "2026-02-12T09:15:00+08:00",
         "minutes": 15.0, "kind": "daemon_stopped"},
        {"from": "2026-02-12T10:00:00+08:00", "booted": None, "to": "2026-02-12T10:30:00+08:00",
         "minutes": 30.0, "kind": "daemon_died"},
    ]  # fmt: skip
    assert down["restart_minutes"] == 45.0
    log.close()


def test_a_daemon_start_on_a_new_boot_is_the_boots_restart_once(tmp_path):
    """A reboot is already a change of boot between events: its daemon rows add nothing."""
    at, path = FakeClock(start=MIDNIGHT), tmp_path / "k.db"
    log = _log(path, at).open()
    _at(at, 8)
    log.audit("daemon", "daemon.start", {"last_stop": "none"})
    log.append(EventDraft(direction="in", decision="pass"))
    _at(at, 9)
    log.audit("daemon", "daemon.stop")
    log.close()
    log = _log(path, at, "boot-b").open()
    _at(at, 10)
    log.audit("daemon", "daemon.start", {"last_stop": "clean"})
    log.append(EventDraft(direction="in", decision="pass"))
    down = stats.daily_report(log.reader(), DAY, TZ)["downtime"]
    assert down["restarts_total"] == 1 and down["restarts"][0]["kind"] == "boot"
    assert down["restart_minutes"] == 120.0
    log.close()


def _config():
    return parse_config({"site": {"kiosk_id": "gate-1"}, "web": {"port": 0}})


def _daemon_rows(data_dir):
    log = EventLog(data_dir / "kiosk.db", "gate-1", FakeClock(start=MIDNIGHT), "NORMAL").open()
    try:
        found = log.reader().execute(
            "select actor, action, detail from audit where action like 'daemon.%' order by seq"
        )
        return [tuple(row) for row in found.fetchall()]
    finally:
        log.close()


def test_the_daemon_records_its_start_and_its_clean_stop(data_dir):
    core = build_core(_config(), data_dir)
    record_start(core)  # a first start: no run before it on record
    asyncio.run(Daemon(core, notifier=Notifier(None)).stop())
    assert (data_dir / STOPPED_MARKER).is_file()
    core = build_core(_config(), data_dir)
    record_start(core)  # after the clean stop: the marker is taken
    assert not (data_dir / STOPPED_MARKER).exists()
    core.close()  # not the daemon's stop: a crash, as the next start tells
    core = build_core(_config(), data_dir)
    record_start(core)
    core.close()
    assert _daemon_rows(data_dir) == [
        ("daemon", "daemon.start", '{"last_stop":"none"}'),
        ("daemon", "daemon.stop", None),
        ("daemon", "daemon.start", '{"last_stop":"clean"}'),
        ("daemon", "daemon.start", '{"last_stop":"unclean"}'),
    ]


def test_a_marker_that_is_not_the_daemons_is_read_bounded_and_taken(data_dir):
    (data_dir / STOPPED_MARKER).write_bytes(b"\xff" * 100_000)
    core = build_core(_config(), data_dir)
    record_start(core)
    core.close()
    assert not (data_dir / STOPPED_MARKER).exists()
    assert _daemon_rows(data_dir) == [("daemon", "daemon.start", '{"last_stop":"clean"}')]
