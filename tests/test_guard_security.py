"""The guard console against an attacker on the LAN: a copied session cookie, rotated IPv6
addresses, and what a guard sees when a page or a decision cannot be served."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from guard_support import (
    BASE,
    GUARD_PW,
    WAIT_S,
    add_event,
    close_core,
    login,
    make_app,
    make_core,
    post,
)

from kiosk import accounts
from kiosk.accounts import Account, AccountStore, hash_password
from kiosk.store import EventLog, StoreFault
from ui.auth import LoginLimiter, SessionManager


@pytest.fixture
def restartable(data_dir, clock, monkeypatch):
    """Start the console on ``data_dir``; call again to restart it (the old one is closed)."""
    cores = []

    def start():
        if cores:
            close_core(cores[-1])
        cores.append(make_core(data_dir, clock, monkeypatch))
        return cores[-1]

    yield start
    close_core(cores[-1])


def _copied_cookie(client: TestClient) -> str:
    return client.cookies.get("kiosk_session", path="/guard")


def _with_cookie(app, cookie: str) -> TestClient:
    thief = TestClient(app, base_url=BASE)
    thief.cookies.set("kiosk_session", cookie, domain="kiosk.test", path="/guard")
    return thief


def _console_opens(client: TestClient) -> bool:
    return client.get("/guard/api/feed").status_code == 200


def test_a_signed_out_cookie_stays_dead_after_a_restart(restartable):
    app = make_app(restartable())
    with TestClient(app, base_url=BASE) as guard:
        csrf = login(guard)
        copied = _copied_cookie(guard)
        assert post(guard, "/guard/logout", csrf).status_code == 303
    with _with_cookie(app, copied) as thief:
        assert not _console_opens(thief)
    app = make_app(restartable())  # the daemon restarts, the session key is the same
    with _with_cookie(app, copied) as thief:
        assert not _console_opens(thief)


def _bob_signed_in_then(core, change) -> str:
    """Bob (a table account) signs in; ``change(core)`` is done to his account while his
    page is open, which then no longer opens; his copied cookie."""
    core.accounts.add("bob", "guard", hash_password("old-password-1", n=2**10), actor="root")
    with TestClient(make_app(core), base_url=BASE) as bob:
        login(bob, "bob", "old-password-1")
        assert _console_opens(bob)
        change(core)
        assert not _console_opens(bob)
        return _copied_cookie(bob)


def _new_password(core) -> None:
    core.accounts.add("bob", "guard", hash_password("new-password-2", n=2**10), actor="root")


def test_changing_a_password_ends_the_accounts_sessions_also_after_a_restart(restartable):
    copied = _bob_signed_in_then(restartable(), _new_password)
    app = make_app(restartable())
    with _with_cookie(app, copied) as thief:
        assert not _console_opens(thief)


def test_a_disabled_account_stays_out_also_after_a_restart_and_when_enabled_again(restartable):
    copied = _bob_signed_in_then(restartable(), lambda c: c.accounts.disable("bob", "root"))
    core = restartable()
    with _with_cookie(make_app(core), copied) as thief:
        assert not _console_opens(thief)
    _new_password(core)  # enabled again: the old cookie does not come back with it
    with _with_cookie(make_app(core), copied) as thief:
        assert not _console_opens(thief)


def test_a_live_session_survives_a_restart(restartable):
    app = make_app(restartable())
    with TestClient(app, base_url=BASE) as guard:
        login(guard, "alice", GUARD_PW)
        copied = _copied_cookie(guard)
    with _with_cookie(make_app(restartable()), copied) as same_guard:
        assert _console_opens(same_guard)


@pytest.fixture
def log(data_dir, clock):
    opened = EventLog(data_dir / "k.db", "gate-1", clock, migrations=[accounts.MIGRATIONS]).open()
    yield opened
    opened.close()


def _stored_revocations(log) -> list[str]:
    return [r["sid"] for r in log.reader().query("select sid from guard_sessions_revoked")]


def test_a_kept_revocation_is_purged_once_its_cookie_has_expired(log, clock):
    store = AccountStore(log, now=clock.now)
    now = clock.now()
    store.revoke_session("old", "alice", now + timedelta(hours=1), now)
    store.revoke_session("new", "alice", now + timedelta(hours=5), now)
    assert set(store.revoked_sessions(now)) == {"old", "new"}
    later = now + timedelta(hours=2)
    assert set(store.revoked_sessions(later)) == {"new"}
    store.revoke_session("newer", "bob", later + timedelta(hours=8), later)
    assert sorted(_stored_revocations(log)) == ["new", "newer"]  # "old" is gone from disk


def test_kept_revocations_are_bounded(log, clock, monkeypatch):
    monkeypatch.setattr(accounts, "REVOKED_KEPT", 3)
    store = AccountStore(log, now=clock.now)
    now = clock.now()
    for i in range(5):
        store.revoke_session(f"s{i}", "alice", now + timedelta(hours=1 + i), now)
    # The ones nearest their end go first.
    assert sorted(_stored_revocations(log)) == ["s2", "s3", "s4"]


def test_while_the_revocation_record_is_unreadable_only_this_processes_sessions_count(clock):
    class Unreadable:
        def revoke_session(self, *args):
            raise StoreFault("store_fault", "disk I/O error")

        def revoked_sessions(self, now):
            raise StoreFault("store_fault", "disk I/O error")

    earlier = SessionManager(b"s" * 32, clock, lifetime_s=3600)
    old_cookie, _ = earlier.issue(Account("alice", "guard", "secret"))
    sessions = SessionManager(b"s" * 32, clock, lifetime_s=3600, revocations=Unreadable())
    new_cookie, _ = sessions.issue(Account("alice", "guard", "secret"))
    assert sessions.read(old_cookie) is None  # perhaps signed out before the restart
    assert sessions.read(new_cookie) is not None


# --- the login limiter against rotated addresses -----------------------------------------------


def test_an_ipv6_attacker_rotating_addresses_in_one_64_is_limited_as_one(clock):
    limiter = LoginLimiter(clock, per_minute=3)
    for host in range(1, 4):
        addr = f"2001:db8:1:2::{host:x}"
        assert limiter.retry_after_s(addr) == 0
        limiter.failed(addr, "root")
    assert limiter.retry_after_s("2001:db8:1:2:ffff:ffff:ffff:fffe") > 0  # same /64
    assert limiter.retry_after_s("2001:db8:1:3::1") == 0  # the next /64 is someone else


def test_an_ipv4_mapped_address_is_its_ipv4_address(clock):
    limiter = LoginLimiter(clock, per_minute=2)
    limiter.failed("::ffff:192.0.2.7", "root")
    limiter.failed("192.0.2.7", "root")
    assert limiter.retry_after_s("192.0.2.7") > 0
    assert limiter.retry_after_s("::ffff:192.0.2.7") > 0
    assert limiter.retry_after_s("192.0.2.8") == 0  # IPv4 stays per address


def test_the_login_form_answers_429_to_a_rotating_ipv6_attacker(guard_core):
    app = make_app(guard_core)
    limit = guard_core.config.web.login_attempts_per_min
    statuses = []
    for host in range(1, limit + 2):
        with TestClient(app, base_url=BASE, client=(f"2001:db8::{host:x}", 50000)) as c:
            page = c.get("/guard/login")
            token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            statuses.append(
                c.post(
                    "/guard/login",
                    data={"name": "root", "password": "guess", "csrf": token},
                    headers={"Origin": BASE},
                    follow_redirects=False,
                ).status_code
            )
    assert statuses == [401] * limit + [429]


# --- what a guard sees ---------------------------------------------------------------------


@pytest.mark.parametrize("seq", ["999", "0", "abc", "-1", "9" * 40, "1" * 5000, "1.5", "１"])
def test_a_missing_or_malformed_passage_is_a_page_in_the_guards_language(guard_client, seq):
    login(guard_client)
    response = guard_client.get(f"/guard/passage/{seq}?lang=zh-CN")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "没有这条通行记录" in response.text
    assert 'href="/guard"' in response.text  # the way back to the live page
    english = guard_client.get(f"/guard/passage/{seq}?lang=en")
    assert "No such passage" in english.text


def test_the_passage_page_still_shows_a_passage(guard_client, guard_core):
    event = add_event(guard_core, holder="Li Wei", household="3-201")
    login(guard_client)
    page = guard_client.get(f"/guard/passage/{event.seq}?lang=en")
    assert page.status_code == 200 and "Li Wei" in page.text


def test_the_household_page_finds_old_passes_signed_with_full_width_codes(guard_client, guard_core):
    """Rows written before input was folded (``kiosk.typed``) keep ``５－７０２``: the readers
    compare both spellings (``lists.same_text``), and so must the household's page."""
    led = guard_core.ledgers
    led.compound.apply(
        led.compound.plan_import(b"building,floor,household\n5,7,5-702\n", "map.csv"), "root"
    )
    add_event(guard_core, household="５－７０２", holder="Old Pass", temp_c=36.1)
    add_event(guard_core, household="5-702", holder="New Pass", temp_c=36.2)
    add_event(guard_core, household="5-7020", holder="Neighbour", temp_c=36.3)
    login(guard_client)
    home = guard_client.get("/guard/community/household/1?lang=en").text
    passages = home.split('id="passages"', 1)[1].split("</section>", 1)[0]
    assert passages.count("<td>36.1</td>") == 1 and passages.count("<td>36.2</td>") == 1
    assert "36.3" not in passages


def test_concurrent_guesses_cannot_all_pass_the_login_limit(guard_client, guard_core):
    """The limit was checked before the password and the failure counted after it: a burst
    of guesses sent at once were all checked (30 at once at the demo, limit 5)."""
    limit = guard_core.config.web.login_attempts_per_min
    burst = limit * 2
    tokens = [
        re.search(r'name="csrf" value="([^"]+)"', guard_client.get("/guard/login").text).group(1)
        for _ in range(burst)
    ]
    state = threading.Condition()
    checking, answers = [], []
    release = threading.Event()

    def held_check(name, password):  # the password check, held until the burst is in
        with state:
            checking.append(name)
            state.notify_all()
        release.wait(WAIT_S)
        return None

    def guess(token):
        answer = guard_client.post(
            "/guard/login",
            data={"name": "root", "password": "guess", "csrf": token},
            headers={"Origin": BASE},
            follow_redirects=False,
        )
        with state:
            answers.append(answer.status_code)
            state.notify_all()

    guard_core.accounts.authenticate = held_check
    threads = [threading.Thread(target=guess, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    with state:
        state.wait_for(lambda: len(checking) + len(answers) >= burst, WAIT_S)
    release.set()
    for thread in threads:
        thread.join(WAIT_S)
    assert len(checking) == limit
    assert sorted(answers) == [401] * limit + [429] * limit
