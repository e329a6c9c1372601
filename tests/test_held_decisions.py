"""Decisions the event log could not take when the daemon stops: kept beside the log, not lost.

A card failing mid-shift (a page of kiosk.db gone malformed, the card full, read-only) makes
every passage a deny recorded nowhere but in the engine's memory (the backlog). The fix for
each of those stops the daemon (``systemctl restart``, ``sudo reboot``, moving kiosk.db away),
which dropped them with one line saying how many. Where the card still takes a small file,
they are written beside the log, masked as the office's export masks them."""

from __future__ import annotations

import json
import logging
import os
import stat

from kiosk.standby import HELD_PREFIX
from tests import test_runner as runner_tests


def _stopped_with_held(tmp_path, held_dir):
    r = runner_tests.Rig(
        tmp_path, overrides={"policy": {"mode": "pass_only"}, "engine": {"idle_probe_s": 60}}
    )
    r.runner.held_dir = held_dir

    async def main():
        await r.runner.start()
        r.store.fail()  # the log stays unwritable
        r.show(r.pass_text())
        await r.next("decision")
        r.show(r.pass_text())
        await r.next("decision")
        await r.runner.stop()

    try:
        runner_tests.run(main())
        return r.log.events()
    finally:
        r.close()


def test_decisions_held_in_memory_at_stop_are_kept_beside_the_log_masked(tmp_path, caplog):
    """Two passages denied while the log failed, then the daemon stopped: they were gone,
    the journal saying only how many. They are in ``held-events-*.ndjson`` in the data dir
    (mode 0600), one masked record a line with its decision, reasons and time, and the
    journal names the file."""
    data = tmp_path / "data"
    data.mkdir()
    with caplog.at_level(logging.ERROR, logger="kiosk.runner"):
        events = _stopped_with_held(tmp_path, data)
    assert events == []
    [kept] = [p for p in data.iterdir() if p.name.startswith(HELD_PREFIX)]
    assert kept.suffix == ".ndjson" and stat.S_IMODE(os.stat(kept).st_mode) == 0o600
    records = [json.loads(line) for line in kept.read_text().splitlines()]
    assert [r["decision"] for r in records] == ["deny", "deny"]
    assert all("store_fault" in r["reasons"] for r in records)
    assert all(r["ts"] and r["direction"] in ("in", "out") for r in records)
    assert all(r["pass_id"] and "*" in r["pass_id"] for r in records)  # masked
    assert "stopping with 2 event(s) held in memory and not written" in caplog.text
    assert str(kept) in caplog.text


def test_a_card_that_takes_no_file_either_is_said_and_the_stop_goes_on(tmp_path, caplog):
    """Read-only or full, the card takes nothing: the stop goes on and says so."""
    missing = tmp_path / "gone"  # as a directory the card refuses to write into
    with caplog.at_level(logging.ERROR, logger="kiosk.runner"):
        _stopped_with_held(tmp_path, missing)
    assert "stopping with 2 event(s) held in memory and not written" in caplog.text
    assert "could not be kept" in caplog.text


def test_a_card_that_does_not_answer_for_the_file_is_said_and_the_stop_goes_on(
    tmp_path, caplog, monkeypatch
):
    """A stalled card (writes hang for minutes): the file's write is waited for as long as a
    commit is (``engine.store_deadline_ms``), then the stop goes on and says so; before, the
    stop waited on it for ever in the loop's executor (joined at exit: the process stayed)."""
    import threading

    from kiosk import runner

    answer = threading.Event()
    monkeypatch.setattr(runner, "keep_held", lambda *_args: answer.wait(30))
    r = runner_tests.Rig(
        tmp_path,
        overrides={
            "policy": {"mode": "pass_only"},
            "engine": {"idle_probe_s": 60, "store_deadline_ms": 100},
        },
    )
    r.runner.held_dir = tmp_path

    async def main():
        await r.runner.start()
        r.store.fail()
        r.show(r.pass_text())
        await r.next("decision")
        await r.runner.stop()

    try:
        with caplog.at_level(logging.ERROR, logger="kiosk.runner"):
            runner_tests.run(main())
    finally:
        answer.set()
        r.close()
    assert "stopping with 1 event(s) held in memory and not written" in caplog.text
    assert "could not be kept" in caplog.text and "not done within 0.1 s" in caplog.text
