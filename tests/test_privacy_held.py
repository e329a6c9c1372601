"""The decisions a stop kept beside the log (``held-events-<UTC>.ndjson``) under retention.

They are masked (a name's initial, the last two characters of a pass id or household, a
phone's last four digits) but personal all the same, with a temperature beside them: a file
the operator never copied off stayed in the data dir for ever, the one thing there no purge
touched. The purge empties their personal fields once they are older than the retention
period, as it does the log's rows."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta

from checkpoint.app import Daemon, build_core
from checkpoint.notify import Notifier
from kiosk.clock import ClockReading, FakeClock
from kiosk.config import KioskConfig
from kiosk.privacy_held import purge_held
from kiosk.standby import HELD_PREFIX, keep_held
from kiosk.store import EventDraft

START = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
PERSON = {"name": "Wang Xiuying", "phone": "13800138000", "unit": "3-402", "occupants": 2}


def drafts(clock: FakeClock, synced: bool = True) -> list[EventDraft]:
    decided = ClockReading(clock.now(), clock.monotonic_ns(), synced)
    return [
        EventDraft(direction="in", decision="deny", reasons=("store_fault",), temp_c=36.6,
                   pass_id="a1b2c3d4e5f6", household="3-402", holder="Wang Xiuying",
                   person=PERSON, decided=decided),
    ]  # fmt: skip


def records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_daemons_purge_empties_a_held_file_past_retention(data_dir):
    """A stop during a storage fault kept a passage; 31 days later the daemon's hourly purge
    left the file as it was (Wang's initial, pass id and household ends, the phone's last
    digits). It now holds the decision, its reasons, time and temperature, no person."""
    clock = FakeClock(start=START)
    path = keep_held(drafts(clock), data_dir, "gate-1", "boot-1", clock.now())
    core = build_core(KioskConfig(), data_dir, clock)
    try:
        daemon = Daemon(core, notifier=Notifier(None))
        clock.advance(29 * 86400)
        daemon.purge_once()
        assert records(path)[0]["holder"] == "W."  # within retention: as kept
        clock.advance(2 * 86400)
        daemon.purge_once()
    finally:
        core.close()
    [kept] = records(path)
    assert [kept[k] for k in ("pass_id", "household", "holder")] == [None, None, None]
    assert kept["person"] == {"occupants": 2}  # the counts, as the log keeps them
    assert kept["decision"] == "deny" and kept["temp_c"] == 36.6 and kept["purged_at"]
    assert "8000" not in path.read_text() and "W." not in path.read_text()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in data_dir.iterdir() if p.name.startswith(HELD_PREFIX)] == [path.name]


def test_a_record_stamped_on_an_unset_clock_is_dated_by_the_first_purge_that_saw_it(
    tmp_path, reporting_store, clock
):
    """A stop before NTP set the clock stamps 1970: dated so, it would be emptied at the
    first purge, before the office had it. It is dated by the first purge that saw the file,
    and emptied a retention period after that."""
    at_1970 = FakeClock(start=datetime(1970, 1, 1, 0, 5, tzinfo=UTC))
    path = keep_held(drafts(at_1970, synced=False), tmp_path, "gate-1", "boot-1", at_1970.now())
    now = clock.now()
    assert purge_held(reporting_store, tmp_path, now - timedelta(days=30), now) == 0
    later = now + timedelta(days=29)
    assert purge_held(reporting_store, tmp_path, later - timedelta(days=30), later) == 0
    assert records(path)[0]["holder"] == "W."
    later = now + timedelta(days=31)
    assert purge_held(reporting_store, tmp_path, later - timedelta(days=30), later) == 1
    assert records(path)[0]["holder"] is None
    assert purge_held(reporting_store, tmp_path, later - timedelta(days=30), later) == 0


def test_kiosk_purge_empties_the_held_file_beside_its_log(tmp_path, capsys, monkeypatch):
    """``kiosk purge`` (the nightly timer) empties the held files beside the log it purges,
    as the daemon's hourly purge does, and counts them."""
    from checkpoint.cli import main
    from tests.test_retention import _purge_cli_log, _system_clock_at

    db = _purge_cli_log(tmp_path)  # its events of 2026-01-01
    at = FakeClock(start=datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    path = keep_held(drafts(at), db.parent, "gate-1", "boot-1", at.now())
    _system_clock_at(monkeypatch, datetime(2026, 6, 1, tzinfo=UTC), synced=True)
    assert main(["purge", "--older-than", "30", "--db", str(db)]) == 0
    assert json.loads(capsys.readouterr().out)["held_files_purged"] == 1
    assert records(path)[0]["holder"] is None and "W." not in path.read_text()
