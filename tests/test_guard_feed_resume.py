"""The guard feed's resumption edges: a page asking after a ``seq`` beyond the log's newest
row (the log restored from an older backup) is told so and given the newest rows, never a
live-looking page showing nothing; a stream opened with ``after=0`` (no row shown yet) is the
feed's newest rows with no gap announced; ``/guard/api/feed`` says how many rows it left out;
a gap names its first row left out, and ``/guard/rows/N`` shows the rows from it on."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from guard_support import add_event, login
from test_gate_truth_feed import _stream

from ui.guard import live


def _events(lines: list[str], name: str) -> list[dict]:
    return [json.loads(x.split("data: ", 1)[1]) for x in lines if x.startswith(f"event: {name}\n")]


def _fill(core, n: int) -> None:
    for _ in range(n):
        add_event(core)


def test_a_stream_after_a_seq_beyond_the_log_says_it_was_restored_and_sends_the_newest(
    guard_core,
):
    _fill(guard_core, 5)
    stream, tracker = _stream(guard_core, 5000)  # the page drew rows up to 5000 before the restore
    lines = asyncio.run(stream.rows())
    assert _events(lines, "gap") == [{"rows": 0, "restored": True, "from": None}]
    assert [r["seq"] for r in _events(lines, "row")] == [1, 2, 3, 4, 5]
    assert stream.after == 5  # resumes from the restored log's rows, not after 5000
    new = add_event(guard_core)
    lines = asyncio.run(stream.on_message({"type": "decision", "seq": new.seq}, tracker))
    assert not _events(lines, "gap")
    assert [r["seq"] for r in _events(lines, "row")] == [new.seq]


def test_a_health_message_after_the_restore_reads_the_log(guard_core):
    _fill(guard_core, 3)
    stream, tracker = _stream(guard_core, 5000)
    health = {"type": "health", "degraded": [], "faults": {}, "deciding": True, "backlog": 0}
    lines = asyncio.run(stream.on_message(health, tracker))
    assert _events(lines, "gap") == [{"rows": 0, "restored": True, "from": None}]
    assert [r["seq"] for r in _events(lines, "row")] == [1, 2, 3]


def test_the_feed_after_a_seq_beyond_the_log_says_it_was_restored(guard_client, guard_core):
    _fill(guard_core, 3)
    login(guard_client)
    feed = guard_client.get("/guard/api/feed?after=5000").json()
    assert feed["restored"] is True and feed["not_shown"] == 0
    assert [r["seq"] for r in feed["rows"]] == [3, 2, 1]
    assert guard_client.get("/guard/api/feed?after=2").json()["restored"] is False


def test_the_restored_notice_is_in_both_languages(guard_client):
    login(guard_client)
    page = guard_client.get("/guard?lang=en").text
    assert 'data-restored="The event log was restored from a backup' in page
    page = guard_client.get("/guard?lang=zh-CN").text
    assert 'data-restored="事件记录已从备份恢复' in page


def test_a_stream_opened_after_0_sends_the_newest_rows_and_no_gap(guard_core, monkeypatch):
    monkeypatch.setattr(live, "PAGE_ROWS", 20)  # the log longer than the page keeps, cheaply
    _fill(guard_core, 60)
    stream, _ = _stream(guard_core, 0)
    lines = asyncio.run(stream.rows())
    assert not _events(lines, "gap")
    seqs = [r["seq"] for r in _events(lines, "row")]
    last = guard_core.store.last_seq
    assert seqs == list(range(last - 20 + 1, last + 1))  # the newest the page keeps
    assert stream.after == last


def test_the_feed_says_how_many_rows_after_the_seq_it_left_out(
    guard_client, guard_core, monkeypatch
):
    monkeypatch.setattr(live, "PAGE_ROWS", 20)  # the page keeps 20 rows, cheaply
    _fill(guard_core, 27)
    login(guard_client)
    feed = guard_client.get("/guard/api/feed?after=2").json()
    assert feed["not_shown"] == 5  # rows 3..7: the 20 newest are 8..27
    assert [r["seq"] for r in feed["rows"]][-1] == 8
    assert guard_client.get("/guard/api/feed?after=100").json()["not_shown"] == 0


def test_a_stream_after_a_long_gap_names_the_first_row_it_leaves_out(guard_core, monkeypatch):
    """The page's notice links to the rows it did not show (before 2026-12-06 it said only
    "reload", which brought the newest 50: the guard never saw the rows of the gap)."""
    monkeypatch.setattr(live, "PAGE_ROWS", 20)
    _fill(guard_core, 27)
    stream, _ = _stream(guard_core, 2)
    lines = asyncio.run(stream.rows())
    assert _events(lines, "gap") == [{"rows": 5, "restored": False, "from": 3}]
    assert [r["seq"] for r in _events(lines, "row")][0] == 8  # rows 3..7 left out


def _seqs(page: str) -> list[int]:
    return [int(s) for s in re.findall(r'<tr data-seq="(\d+)"', page)]


def test_the_rows_page_shows_the_rows_from_a_seq_on_and_links_to_the_next(
    guard_client, guard_core, monkeypatch
):
    monkeypatch.setattr(live, "FEED_ROWS", 4)  # a page of 4 rows, cheaply
    _fill(guard_core, 10)
    login(guard_client)
    answer = guard_client.get("/guard/rows/3?lang=en")
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Decisions from #3" in answer.text
    assert _seqs(answer.text) == [3, 4, 5, 6]  # oldest first, as they happened
    assert 'href="/guard/rows/7" id="rows-next"' in answer.text
    last = guard_client.get("/guard/rows/7?lang=en").text
    assert _seqs(last) == [7, 8, 9, 10]
    assert 'id="rows-next"' not in last  # nothing after the newest
    assert _seqs(guard_client.get("/guard/rows/9").text) == [9, 10]
    beyond = guard_client.get("/guard/rows/11?lang=en")
    assert beyond.status_code == 200 and _seqs(beyond.text) == []


def test_the_rows_page_masks_as_the_feed_does(guard_client, guard_core, monkeypatch):
    from ui.guard import deps

    add_event(guard_core, holder="Zhang Wei")
    monkeypatch.setattr(deps.Guard, "clear", lambda self, session: frozenset())  # a role
    login(guard_client)  # that may see no name
    who = guard_client.get("/guard/api/feed").json()["rows"][0]["who"]
    page = guard_client.get("/guard/rows/1").text
    assert who and who != "Zhang Wei"
    assert f'<td class="who">{who}</td>' in page and "Zhang Wei" not in page


@pytest.mark.parametrize(
    "seq", ["0", "abc", "-1", "1.5", "１２", "9" * 19, "9" * 20, "9" * 400, "9" * 5000, "%20"]
)
def test_a_rows_link_that_names_no_seq_is_a_page_in_the_guards_language(guard_client, seq):
    login(guard_client)
    answer = guard_client.get(f"/guard/rows/{seq}?lang=en")
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert "The link names no row number" in answer.text
    zh = guard_client.get(f"/guard/rows/{seq}?lang=zh-CN")
    assert zh.status_code == 400 and "链接中没有有效的记录编号" in zh.text
