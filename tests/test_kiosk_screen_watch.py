"""The kiosk's own screen coming back by itself when its page stops listening: a crashed
renderer ("Aw, Snap!"), Chromium's error page after a load that failed, a page that never
reconnects. Chromium stays running through all of them, so ``Restart=always`` never fired
and the screen stayed on it, with nobody watching, until someone restarted it.

The daemon says whether a screen of this host has its stream open (``GET /kiosk/watch``);
the screen unit's watcher (its ``ExecStartPost``) asks every 30 s and ends the screen's main
process after four answers in a row that none is, so systemd starts it again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from fastapi import FastAPI
from guard_support import close_core, make_core
from test_systemd_units import load, one
from test_ui_kiosk import http_scope, kiosk_app, read_sse

from ui import kiosk_screen


async def status_of(app: FastAPI, path: str) -> int:
    answer: list[int] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            answer.append(message["status"])

    await app(http_scope(path, {}), receive, send)
    return answer[0]


def test_the_watch_says_whether_a_screen_of_this_host_is_listening(data_dir, clock, monkeypatch):
    core = make_core(data_dir, clock, monkeypatch)
    try:
        app = kiosk_app(core)

        async def watched() -> list[int]:
            seen = [await status_of(app, "/kiosk/watch")]  # no screen yet
            opened = asyncio.Event()

            def on_event(events: list) -> None:
                opened.set()

            # The page names itself (its own random id), so its beats can be told apart.
            path = "/kiosk/events?screen=00112233445566778899aabb"
            stream = asyncio.create_task(
                read_sse(app, path, on_event=on_event, until=lambda ev: len(seen) > 1)
            )
            await opened.wait()
            seen.append(await status_of(app, "/kiosk/watch"))  # its stream is open
            core.bus.publish({"type": "health", "faults": {}, "deciding": True})  # wake it
            await stream
            seen.append(await status_of(app, "/kiosk/watch"))  # it went away
            return seen

        assert asyncio.run(watched()) == [503, 200, 503]
    finally:
        close_core(core)


def watcher_script() -> str:
    """The screen unit's ExecStartPost as /bin/sh gets it (systemd's $$ and %% undone)."""
    line = one(load("kiosk-screen.service"), "Service", "ExecStartPost")
    assert line.startswith("/bin/sh -c '") and line.endswith("'"), line
    return line[len("/bin/sh -c '") : -1].replace("$$", "$").replace("%%", "%")


def fake_tools(bin_dir: Path, answers: list[str]) -> Path:
    """``curl`` answering the given HTTP codes in turn (the last one from then on) and logging
    its calls; ``sleep`` not sleeping."""
    bin_dir.mkdir()
    log = bin_dir / "calls"
    codes = bin_dir / "codes"
    codes.write_text("\n".join(answers) + "\n")
    (bin_dir / "curl").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log}"\n'
        f'code=$(head -n 1 "{codes}")\n'
        f'[ "$(wc -l < "{codes}")" -gt 1 ] && sed -i 1d "{codes}"\n'
        '[ "$code" = STOP ] && kill -KILL "$MAINPID"\n'
        'printf "%s" "$code"\n'
    )
    (bin_dir / "sleep").write_text("#!/bin/sh\nexit 0\n")
    for tool in ("curl", "sleep"):
        (bin_dir / tool).chmod(0o755)
    return log


def run_watcher(tmp_path: Path, answers: list[str]) -> tuple[int | None, list[str]]:
    """Run the watcher against a stand-in for the screen's main process; returns how that
    process ended (None: still running) and curl's calls. An answer ``STOP`` kills the
    stand-in with SIGKILL (the watcher ends with it)."""
    log = fake_tools(tmp_path / "bin", answers)
    main = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "MAINPID": str(main.pid),
        "KIOSK_SCREEN_ORIGIN": "http://127.0.0.1:8000",
        "KIOSK_SCREEN_PIN": "",
    }
    try:
        subprocess.run(["/bin/sh", "-c", watcher_script()], env=env, check=True, timeout=10)
        try:
            ended = main.wait(timeout=5)
        except subprocess.TimeoutExpired:
            ended = None
    finally:
        main.kill()
        main.wait()
    return ended, log.read_text().splitlines()


def test_a_screen_whose_page_stopped_listening_is_restarted(tmp_path):
    ended, calls = run_watcher(tmp_path, ["200", "503", "503", "503", "503"])
    assert ended == -signal.SIGTERM
    assert len(calls) == 5  # four 503s in a row: about two minutes without a page
    assert all(c.endswith("http://127.0.0.1:8000/kiosk/watch") for c in calls)


def test_a_screen_is_not_restarted_while_the_daemon_itself_is_away_or_the_page_comes_back(
    tmp_path,
):
    # The daemon restarting (curl gets no answer, 000) is not the page's fault: the page
    # reconnects by itself once it is back, and a new Chromium would only wait for it too.
    answers = ["503", "503", "503", "000", "503", "503", "503", "200", "503", "503", "503"]
    answers += ["000"] * 3 + ["STOP"]
    ended, calls = run_watcher(tmp_path, answers)
    assert ended == -signal.SIGKILL  # by the test's STOP: the watcher never ended it
    assert len(calls) >= len(answers)  # (until this test reaps the stand-in, it is a zombie)


async def answer_of(app: FastAPI, method: str, path: str, headers: dict | None = None):
    """``(status, body)`` of one request to ``app`` from 127.0.0.1 (the screen's own host)."""
    status: list[int] = []
    body = bytearray()

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        else:
            body.extend(message.get("body", b""))

    scope = http_scope(path, {"content-length": "0", **(headers or {})})
    scope["method"] = method
    await app(scope, receive, send)
    return status[0], body.decode()


SCREEN_ID = "0123456789abcdef01234567"


def test_a_screen_whose_page_froze_with_its_stream_open_is_reported_stale(
    data_dir, clock, monkeypatch
):
    # A page stuck in a loop (or a hung renderer) keeps its stream open: the daemon's side of
    # the connection is fine, so /kiosk/watch said "listening" and the screen stayed frozen
    # all day. Only a running page says it runs: its beat, every few seconds.
    core = make_core(data_dir, clock, monkeypatch)
    try:
        app = kiosk_app(core)
        events_path = f"/kiosk/events?screen={SCREEN_ID}"

        async def watched() -> list[int]:
            seen: list[int] = []
            opened = asyncio.Event()
            done = False
            stream = asyncio.create_task(
                read_sse(app, events_path, on_event=lambda ev: opened.set(), until=lambda ev: done)
            )
            await opened.wait()
            watch = lambda: answer_of(app, "GET", "/kiosk/watch")  # noqa: E731
            seen.append((await watch())[0])  # opened: as good as a beat
            clock.advance(kiosk_screen.BEAT_STALE_S - 1)
            seen.append((await watch())[0])  # not a beat for a while, still within
            clock.advance(2)
            code, text = await watch()
            seen.append(code)  # frozen: the stream open, the page silent
            assert "frozen" in text and "46 s" in text, text
            beat = await answer_of(app, "POST", f"/kiosk/beat?screen={SCREEN_ID}")
            seen.append(beat[0])
            seen.append((await watch())[0])  # it runs again
            done = True
            core.bus.publish({"type": "health", "faults": {}, "deciding": True})  # wake it
            await stream
            seen.append((await watch())[0])  # gone
            seen.append((await answer_of(app, "POST", f"/kiosk/beat?screen={SCREEN_ID}"))[0])
            seen.append((await watch())[0])  # a beat without a stream makes no screen
            return seen

        assert asyncio.run(watched()) == [200, 200, 503, 204, 200, 503, 404, 503]
    finally:
        close_core(core)


def test_what_a_stranger_sends_to_the_beat_is_bounded(data_dir, clock, monkeypatch):
    core = make_core(data_dir, clock, monkeypatch)
    try:
        app = kiosk_app(core)
        screen = app.state.screen

        async def sent() -> list[int]:
            codes = []
            for query in ("", "?screen=", "?screen=" + "a" * 33, "?screen=XYZ0123456789abcd"):
                codes.append((await answer_of(app, "POST", "/kiosk/beat" + query))[0])
            cross = {"origin": "http://elsewhere.test"}
            path = f"/kiosk/beat?screen={SCREEN_ID}"
            codes.append((await answer_of(app, "POST", path, cross))[0])
            codes.append((await answer_of(app, "POST", path, {"content-length": "9"}))[0])
            return codes

        assert asyncio.run(sent()) == [422, 422, 422, 422, 403, 413]
        # The table stays small whatever a local client opens.
        for n in range(kiosk_screen.WATCHED_MAX + 5):
            screen.beats.opened(f"{n:016x}")
        assert len(screen.beats.streams) == kiosk_screen.WATCHED_MAX
    finally:
        close_core(core)


def test_streams_left_behind_never_keep_a_new_screen_from_being_watched(
    data_dir, clock, monkeypatch
):
    # The table of watched screens is bounded; when it was full of streams whose pages were
    # long gone (a reconnect storm's leftovers, a stranger's), a new page was refused a place:
    # its beats were not kept, the watch went stale, the watcher restarted the screen, and
    # the new page was refused again, every two and a half minutes, all day. The stalest
    # place now goes to the newcomer.
    core = make_core(data_dir, clock, monkeypatch)
    try:
        beats = kiosk_app(core).state.screen.beats
        for n in range(kiosk_screen.WATCHED_MAX):
            beats.opened(f"{n:016x}")  # never closed
        clock.advance(kiosk_screen.BEAT_STALE_S + 60)
        assert beats.silent_s() > kiosk_screen.BEAT_STALE_S
        beats.opened(SCREEN_ID)
        clock.advance(kiosk_screen.BEAT_S)
        assert beats.beat(SCREEN_ID)  # its beats are kept
        assert beats.silent_s() == 0
    finally:
        close_core(core)
