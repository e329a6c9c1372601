"""The guard console's test rig, shared by the UI test files.

``make_core`` is ``checkpoint.app.build_core`` on a FakeClock with the default fake devices;
guard accounts, the issuer key and the session key come from secrets as on a kiosk. The
``guard_core`` and ``guard_client`` fixtures (tests/conftest.py) are built with it; a module
that wants the console on a clock of its own, with a guard and an admin signed in, takes
``console_fixtures``. The
engine runner is not started: a request that makes the engine decide spawns the commit (and
then the gate command) on the test client's loop, and ``decided`` waits there for the
decision the engine publishes once the event is committed. Nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from checkpoint.app import Core, build_core
from kiosk.accounts import hash_password
from kiosk.clock import FakeClock
from kiosk.config import KioskConfig
from kiosk.passes import new_key_pair
from kiosk.store import EventDraft
from ui.auth import COOKIE

#: The scrypt cost of the rig's accounts, cheap for tests only: verification reads the cost
#: from the hash itself. At 2**10 each sign-in spent ~2 ms in scrypt (~1,000 a run); the
#: hashing is the same at any cost, and tests of the cost itself use the program's own.
TEST_SCRYPT_N = 2**4
GUARD_PW = "gate-guard-pw"
ADMIN_PW = "office-admin-pw"
_USERS = "\n".join(
    [
        "# test accounts",
        f"alice:guard:{hash_password(GUARD_PW, n=TEST_SCRYPT_N)}",
        f"root:admin:{hash_password(ADMIN_PW, n=TEST_SCRYPT_N)}",
    ]
)
BASE = "http://kiosk.test"
SESSION_KEY = b"k" * 32
WAIT_S = 5.0  # an upper bound for a test to fail instead of hanging, never a sleep


def make_core(
    data_dir: Path,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    config: KioskConfig | None = None,
) -> Core:
    """``build_core`` as the daemon runs it, with this site's issuer key in the trust list."""
    keys = Path(tempfile.mkdtemp(prefix="keys-", dir=data_dir.parent))
    key_path, pub_path = new_key_pair(keys, "site")
    (data_dir / "trust").mkdir(parents=True, exist_ok=True)
    shutil.copy(pub_path, data_dir / "trust" / "site.pub")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.setenv("KIOSK_GUARD_USERS", _USERS)
    monkeypatch.setenv("KIOSK_ISSUER_KEY_PATH", str(key_path))
    monkeypatch.setenv("KIOSK_SESSION_KEY", "ui-test-session-key-of-32-chars!")
    return build_core(config or KioskConfig(), data_dir, clock)


def close_core(core: Core) -> None:
    core.close()


def make_app(core: Core) -> FastAPI:
    from ui import guard, kiosk_screen

    app = FastAPI()
    kiosk_screen.install(app, core)
    guard.install(app, core)
    return app


@contextmanager
def edge_client(
    data_dir: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The kiosk screen and the console behind the daemon's own edge
    (``checkpoint.server.server_config``: the body limit and the rest in front of every
    route), an admin signed in (``.csrf``); the core closed after."""
    from checkpoint.server import server_config
    from kiosk.config import parse_config

    config = parse_config({"web": {"allowed_hosts": ["kiosk.test"]}})
    core = make_core(data_dir, clock, monkeypatch, config)
    served = server_config(make_app(core), config.web).app
    try:
        with TestClient(served, base_url=BASE) as client:
            client.csrf = login(client, "root", ADMIN_PW)
            yield client
    finally:
        close_core(core)


class _SignedIn(TestClient):
    """A test client that signs in through the form as it opens, on its own loop: signed in
    before it opened, the sign-in's request ran on a portal (a thread and a loop) started and
    stopped for it alone, ~2.5 ms of every sign-in."""

    def __init__(self, app: FastAPI, who: tuple[str, str], **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._who = who
        self._csrf: str | None = None

    def __enter__(self) -> _SignedIn:
        super().__enter__()
        try:
            self._csrf = login(self, *self._who)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @property
    def csrf(self) -> str:
        assert self._csrf is not None, "signed in as it opens: with signed_in(app) as client"
        return self._csrf


def signed_in(
    app: FastAPI,
    name: str = "alice",
    password: str = GUARD_PW,
    *,
    raise_server_exceptions: bool = True,
) -> TestClient:
    """A client of ``app`` that signs in as ``name`` through the form as it opens, the
    console's CSRF token as ``.csrf``: ``with signed_in(app) as client``.
    ``raise_server_exceptions=False``: a server error comes back as a 500 response."""
    return _SignedIn(
        app, (name, password), base_url=BASE, raise_server_exceptions=raise_server_exceptions
    )


def console_fixtures(
    start: datetime, *, raise_server_exceptions: bool = True
) -> tuple[Callable[..., Any], ...]:
    """The fixtures of a test module on the console with its own clock, taken as
    ``clock, core, app, alice, admin = console_fixtures(start)``: ``clock`` a FakeClock at
    ``start``; ``core`` is ``guard_core`` (tests/conftest.py) on that clock; ``app`` the kiosk
    screen and the console on it (``make_app``); ``alice`` (a guard) and ``admin`` (root)
    each a client signed in (``signed_in``, with ``raise_server_exceptions``)."""

    @pytest.fixture
    def clock() -> FakeClock:
        return FakeClock(start=start)

    @pytest.fixture
    def core(guard_core: Core) -> Core:
        return guard_core

    @pytest.fixture
    def app(core: Core) -> FastAPI:
        return make_app(core)

    def client(app: FastAPI, *who: str) -> Iterator[TestClient]:
        with signed_in(app, *who, raise_server_exceptions=raise_server_exceptions) as opened:
            yield opened

    @pytest.fixture
    def alice(app: FastAPI) -> Iterator[TestClient]:
        yield from client(app)

    @pytest.fixture
    def admin(app: FastAPI) -> Iterator[TestClient]:
        yield from client(app, "root", ADMIN_PW)

    return clock, core, app, alice, admin


@contextmanager
def decided(client: TestClient, core: Core) -> Iterator[list[dict]]:
    """Around whatever makes the engine decide: then wait, on the client's loop (where the
    runner commits), for the decision the engine publishes after the commit. Yields the list
    the decision message is put in."""
    sub = core.bus.subscribe(name="test")
    seen: list[dict] = []

    async def next_decision() -> dict:
        async with asyncio.timeout(WAIT_S):
            while (message := await sub.get()) is not None:
                if message["type"] == "decision":
                    return message
        raise AssertionError("the bus closed before a decision")

    try:
        yield seen
        seen.append(client.portal.call(next_decision))
    finally:
        sub.close()


def settle_idle(client: TestClient, core: Core) -> None:
    """Drive the (not started) runner's engine on the client's loop until it is idle: the
    gate's close command completes on the relay's worker thread, and until then the same
    code held up again is (rightly) the same person, not a new passage. The fake clock has
    already been advanced past the hold; each tick lets the engine act on what came back."""
    engine = core.runner.engine
    sub = core.bus.subscribe(name="test-idle")

    async def idle() -> None:
        async with asyncio.timeout(WAIT_S):
            while True:
                engine.tick()
                if engine.state == "idle" and not engine.gate_is_open:
                    return
                with contextlib.suppress(TimeoutError):
                    # wakes on the engine's next message (the gate answered), else re-ticks
                    await asyncio.wait_for(sub.get(), 0.05)

    try:
        client.portal.call(idle)
    finally:
        sub.close()


@contextmanager
def gate_opening(core: Core) -> Iterator[threading.Event]:
    """An event set when the gate relay is commanded open (from the runner's gate thread)."""
    opened = threading.Event()
    core.devices.gate.on_command = lambda command: command.open_ and opened.set()
    try:
        yield opened
    finally:
        core.devices.gate.on_command = None


def nothing_recorded(core: Core) -> bool:
    """No event committed, and none on its way: the engine did not even start one."""
    return core.store.last_seq == 0 and core.runner.engine.passage is None


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def login(client: TestClient, name: str = "alice", password: str = GUARD_PW) -> str:
    """Sign in as the login form does (its POST, with a form token signed as its page signs
    one); returns the console's CSRF token, the one its pages carry (``csrf_of``). Drawing
    the login page and the console's front page for each sign-in was half its cost (~7 of
    ~15 ms, some 700 sign-ins a run); the page, its token and the console's are checked
    by the tests of the sign-in itself (test_ui_guard, test_guard_security...)."""
    app = client.app
    while not hasattr(app, "state"):  # the edge's middleware (checkpoint.server) around it
        app = app.app
    sessions = app.state.guard.auth.sessions
    response = client.post(
        "/guard/login",
        data={
            "name": name,
            "password": password,
            "csrf": sessions.login_form_token(),
            "next": "/guard",
        },
        headers={"Origin": BASE},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    session = sessions.read(client.cookies.get(COOKIE))
    assert session is not None, "signed in without a session cookie"
    return sessions.csrf_token(session)


def post(client: TestClient, path: str, csrf: str, **data: Any):
    return client.post(
        path, data={"csrf": csrf, **data}, headers={"Origin": BASE}, follow_redirects=False
    )


def add_event(core: Core, **fields: Any):
    draft = {"direction": "in", "decision": "pass", "reasons": ("ok",)} | fields
    return core.store.append(EventDraft(**draft))


def hidden_fields(page: str, form_id: str) -> dict[str, str]:
    """The hidden fields of the form ``form_id`` on ``page`` (its CSRF and ``once`` tokens)."""
    form = page.split(f'id="{form_id}"', 1)[1].split("</form>", 1)[0]
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    return {name: html.unescape(value) for name, value in found}


def send(client, path: str, fields: dict[str, str]):
    """Post ``fields`` as the console's own form does (same origin, no redirect followed)."""
    return client.post(path, data=fields, headers={"Origin": BASE}, follow_redirects=False)


def refused_with(client: TestClient, response: Any) -> str | None:
    """The error banner's words after a form was sent: the page drawn again with the form as
    typed (400, ``ui.guard.community.common.drawn_again``) or the page the refusal was sent
    back to (303 with a signed ``?err=``); None when it was not refused."""
    if response.status_code == 400:
        page = response.text
    elif response.status_code == 303 and "err=" in response.headers["location"]:
        page = client.get(response.headers["location"]).text
    else:
        return None
    found = re.search(r'class="flash err"[^>]*>(.*?)</', page, re.S)
    return html.unescape(found.group(1)).removeprefix("✖").strip() if found else None
