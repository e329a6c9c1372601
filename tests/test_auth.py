"""Guard accounts and sign-in pieces: scrypt hashes, the account store, signed sessions,
CSRF tokens, the login rate limiter, the same-origin check and the ``kiosk guard`` command."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlite_utils.migrations import Migrations
from starlette.requests import Request

from checkpoint.cli import main
from kiosk import accounts
from kiosk.accounts import (
    Account,
    AccountError,
    AccountStore,
    credentials_line,
    hash_password,
    parse_guard_users,
    validate_name,
    verify_password,
)
from kiosk.clock import FakeClock
from kiosk.store import EventLog
from ui.auth import LoginLimiter, SessionManager, same_origin, session_key

FAST = 2**10  # test-only scrypt cost


# --- hashing -----------------------------------------------------------------------------


def test_password_hash_verifies_only_the_right_password():
    encoded = hash_password("correct horse", n=FAST)
    assert encoded.startswith(f"scrypt${FAST}$8$1$")
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct hors", encoded)
    assert not verify_password("", encoded)


def test_same_password_hashes_differently_each_time_because_of_the_salt():
    assert hash_password("pw-123456", n=FAST) != hash_password("pw-123456", n=FAST)


def test_default_hash_cost_is_the_production_one():
    """The product's own cost (16 MiB of memory per hash: ~50 ms on a Pi 4), pinned: the
    tests' console rig signs in at a cheap one (TEST_SCRYPT_N), so nothing else would notice
    the product's falling."""
    assert accounts.SCRYPT_N == 2**14
    assert hash_password("pw-123456").startswith("scrypt$16384$")


@pytest.mark.parametrize(
    "bad",
    ["", "plain", "scrypt$3$8$1$AAAA$BBBB", "scrypt$1024$8$1$!!$??", "bcrypt$1$2$3$4$5"],
)
def test_malformed_hash_never_verifies(bad):
    assert not verify_password("anything", bad)


def test_hash_fits_a_guard_users_line():
    line = credentials_line("alice", "guard", hash_password("pw-123456", n=FAST))
    users = parse_guard_users(line)
    role, encoded = users["alice"]
    assert role == "guard" and verify_password("pw-123456", encoded)


@pytest.mark.parametrize(
    "text,problem",
    [
        ("alice:guard", "line 1"),
        ("al ice:guard:x", "bad name"),
        ("alice:boss:" + "scrypt$1024$8$1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAA", "role"),
        ("# c\n\nalice:guard:nothash", "line 3"),
    ],
)
def test_bad_guard_users_secret_names_the_line(text, problem):
    with pytest.raises(AccountError, match=problem):
        parse_guard_users(text)


@pytest.mark.parametrize("n,r", [(2**20, 8), (2**18, 8), (2**16, 32)])
def test_a_hash_whose_cost_scrypt_cannot_run_is_refused_when_read_not_at_each_login(n, r):
    """Parameters within each bound but together past scrypt's memory limit made every
    sign-in of that account a server error (hashlib's ValueError)."""
    line = f"alice:guard:scrypt${n}${r}$1$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43
    with pytest.raises(AccountError, match="line 1.*memory"):
        parse_guard_users(line)
    assert verify_password("pw-123456", line.split(":", 2)[2]) is False


# --- account store -----------------------------------------------------------------------


@pytest.fixture
def store(data_dir, clock):
    log = EventLog(data_dir / "k.db", "gate-1", clock, migrations=[accounts.MIGRATIONS]).open()
    yield log
    log.close()


def test_table_accounts_are_written_through_the_event_log_and_audited(store, clock):
    accs = AccountStore(store, now=clock.now)
    accs.add("bob", "admin", hash_password("pw-123456", n=FAST), actor="root")
    assert accs.get("bob") == Account("bob", "admin", "table")
    assert accs.authenticate("bob", "pw-123456") == Account("bob", "admin", "table")
    assert accs.authenticate("bob", "wrong-pw") is None
    audit = store.audits()[-1]
    assert (audit["actor"], audit["action"]) == ("root", "guard_account_set")
    assert "pw-123456" not in str(store.audits())


def test_disabled_account_can_no_longer_sign_in(store, clock):
    accs = AccountStore(store, now=clock.now)
    accs.add("bob", "guard", hash_password("pw-123456", n=FAST), actor="root")
    assert accs.disable("bob", actor="root")
    assert accs.get("bob") is None
    assert accs.authenticate("bob", "pw-123456") is None
    assert not accs.disable("bob", actor="root")


def test_a_log_with_a_removal_row_edited_by_hand_upgrades_and_signs_in(data_dir, clock):
    """A log written before ``m003_account_rows`` holding a removal row whose detail was
    edited by hand into text that is not JSON: the new indexes leave that row out (creating
    them does not fail on it), and the names' sign-ins go on (the row is nobody's)."""
    before = Migrations("kiosk.accounts")
    before._migrations = accounts.MIGRATIONS._migrations[:2]  # the two before m003
    path = data_dir / "k.db"
    with EventLog(path, "gate-1", clock, migrations=[before]) as old:
        accs = AccountStore(old, now=clock.now)
        for name in ("carol", "dave"):
            accs.add(name, "guard", hash_password("pw-123456", n=FAST), actor="root")
        assert accs.disable("carol", actor="root")
        old.submit(
            lambda db: db.execute(
                "update audit set detail = 'carol left' where action = 'guard_account_disabled'"
            )
        )
    with EventLog(path, "gate-1", clock, migrations=[accounts.MIGRATIONS]) as log:
        indexes = {i.name for i in log.reader()["audit"].indexes}
        assert {"audit_account_removals", "audit_account_adds"} <= indexes
        accs = AccountStore(log)
        assert accs.authenticate("dave", "pw-123456") == Account("dave", "guard", "table")
        assert (accs.since("carol"), accs.since("dave")) == (0, 0)


def test_secret_accounts_win_and_cannot_be_overwritten_from_the_table(store):
    secret = f"carol:guard:{hash_password('pw-secret-1', n=FAST)}"
    accs = AccountStore(store, secret)
    with pytest.raises(AccountError, match="guard_users"):
        accs.add("carol", "admin", hash_password("x-123456", n=FAST), actor="root")
    assert accs.authenticate("carol", "pw-secret-1") == Account("carol", "guard", "secret")
    assert [a.name for a in accs.names()] == ["carol"]


def test_unknown_names_and_bad_names_do_not_authenticate(store):
    accs = AccountStore(store)
    assert accs.authenticate("nobody", "pw-123456") is None
    assert accs.authenticate("../etc", "pw-123456") is None
    with pytest.raises(AccountError):
        accs.add("bad name", "guard", hash_password("pw-123456", n=FAST), actor="root")
    with pytest.raises(AccountError):
        accs.add("dave", "root", hash_password("pw-123456", n=FAST), actor="root")


# --- sessions and CSRF ---------------------------------------------------------------------


def test_session_cookie_round_trips_and_expires_on_the_clock(clock):
    sessions = SessionManager(b"s" * 32, clock, lifetime_s=3600)
    cookie, session = sessions.issue(Account("alice", "guard", "secret"))
    assert sessions.read(cookie) == session
    clock.advance(3599)
    assert sessions.read(cookie) is not None
    clock.advance(2)
    assert sessions.read(cookie) is None


def test_a_wall_clock_step_neither_ends_nor_stretches_a_shift(clock):
    # NTP stepping a Pi without an RTC, or the demo's scenario days: the shift is real time.
    sessions = SessionManager(b"s" * 32, clock, lifetime_s=3600)
    cookie, _ = sessions.issue(Account("alice", "guard", "secret"))
    clock.set_wall(clock.now() + timedelta(days=2))
    clock.advance(1800)
    kept = sessions.read(cookie)
    assert kept is not None
    assert kept.expires == clock.now() + timedelta(seconds=1800)  # the time left, shown
    clock.set_wall(clock.now() - timedelta(days=5))
    clock.advance(1801)
    assert sessions.read(cookie) is None


def test_after_a_restart_a_cookie_is_judged_by_the_expiry_it_carries(clock):
    cookie, _ = SessionManager(b"s" * 32, clock, lifetime_s=3600).issue(
        Account("alice", "guard", "secret")
    )
    restarted = SessionManager(b"s" * 32, clock, lifetime_s=3600)
    clock.advance(3599)
    assert restarted.read(cookie) is not None
    clock.advance(2)
    assert restarted.read(cookie) is None


def test_a_signed_out_session_stays_out_across_a_wall_clock_step(clock):
    sessions = SessionManager(b"s" * 32, clock, lifetime_s=3600)
    cookie, session = sessions.issue(Account("alice", "guard", "secret"))
    sessions.revoke(session)
    clock.set_wall(clock.now() + timedelta(days=1))
    sessions.revoke(sessions.issue(Account("bob", "guard", "secret"))[1])  # prunes revocations
    assert sessions.read(cookie) is None


def test_tampered_or_foreign_cookies_are_refused(clock):
    sessions = SessionManager(b"s" * 32, clock, lifetime_s=3600)
    cookie, _ = sessions.issue(Account("alice", "guard", "secret"))
    payload, mac = cookie.split(".")
    # One character of the MAC changed (the next-to-last: all six of its bits are the MAC's).
    tampered = mac[:-2] + ("B" if mac[-2] == "A" else "A") + mac[-1]
    assert tampered != mac and sessions.read(payload + "." + tampered) is None
    other = SessionManager(b"o" * 32, clock, lifetime_s=3600)
    assert other.read(cookie) is None
    assert sessions.read("") is None and sessions.read("x.y.z") is None


def test_revoked_session_is_refused(clock):
    sessions = SessionManager(b"s" * 32, clock, lifetime_s=3600)
    cookie, session = sessions.issue(Account("alice", "guard", "secret"))
    sessions.revoke(session)
    assert sessions.read(cookie) is None


def test_csrf_token_belongs_to_one_session(clock):
    sessions = SessionManager(b"s" * 32, clock, lifetime_s=3600)
    _, one = sessions.issue(Account("alice", "guard", "secret"))
    _, two = sessions.issue(Account("alice", "guard", "secret"))
    assert sessions.check_csrf(one, sessions.csrf_token(one))
    assert not sessions.check_csrf(one, sessions.csrf_token(two))
    assert not sessions.check_csrf(one, None)


def test_login_form_token_expires_after_an_hour(clock):
    sessions = SessionManager(b"s" * 32, clock, lifetime_s=3600)
    token = sessions.login_form_token()
    assert sessions.check_login_form_token(token)
    assert not sessions.check_login_form_token(token[:-1] + "x")
    clock.advance(3601)
    assert not sessions.check_login_form_token(token)


def test_session_key_comes_from_the_secret_else_is_random_per_process():
    secret = {"KIOSK_SESSION_KEY": "k" * 32}
    assert session_key(secret) == session_key(dict(secret))
    assert session_key({}) != session_key({})


# --- rate limiting --------------------------------------------------------------------------


def test_login_limiter_counts_failures_per_address_in_a_sliding_minute(clock):
    limiter = LoginLimiter(clock, per_minute=3)
    for _ in range(3):
        assert limiter.retry_after_s("10.0.0.5") == 0
        limiter.failed("10.0.0.5")
        clock.advance(10)
    assert limiter.retry_after_s("10.0.0.5") == 30  # the first failure leaves at t=60
    assert limiter.retry_after_s("10.0.0.6") == 0  # other addresses are not affected
    clock.advance(30)
    assert limiter.retry_after_s("10.0.0.5") == 0


def test_successful_login_clears_the_failures(clock):
    limiter = LoginLimiter(clock, per_minute=2)
    limiter.failed("a")
    limiter.succeeded("a")
    limiter.failed("a")
    assert limiter.retry_after_s("a") == 0


# --- same origin ------------------------------------------------------------------------------


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw})


@pytest.mark.parametrize(
    "headers,ok",
    [
        ({"host": "gate:8000", "origin": "http://gate:8000"}, True),
        ({"host": "gate:8000", "origin": "http://evil:8000"}, False),
        ({"host": "gate:8000", "origin": "null"}, False),
        ({"host": "gate:8000", "referer": "http://gate:8000/guard"}, True),
        ({"host": "gate:8000", "referer": "http://gate.evil:8000/guard"}, False),
        ({"host": "gate:8000"}, True),  # no browser sends a cross-site POST without Origin
    ],
)
def test_same_origin_check(headers, ok):
    assert same_origin(_request(headers)) is ok


# --- kiosk guard command ------------------------------------------------------------------------


def test_guard_hash_prints_a_credentials_line(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert main(["guard", "hash", "erin", "--role", "admin", "--password-stdin"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("erin:admin:scrypt$16384$")  # the product's cost, whatever tests use
    users = parse_guard_users(line)
    assert users["erin"][0] == "admin"
    assert verify_password("a-long-password", users["erin"][1])


def test_guard_add_stores_an_account_the_console_accepts(monkeypatch, data_dir, clock):
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert main(["guard", "add", "frank", "--data", str(data_dir), "--password-stdin"]) == 0
    log = EventLog(data_dir / "kiosk.db", "gate-1", clock, migrations=[accounts.MIGRATIONS])
    with log:
        assert AccountStore(log).authenticate("frank", "a-long-password") == Account(
            "frank", "guard", "table"
        )


def test_guard_add_refuses_a_short_password_with_exit_2(monkeypatch, data_dir, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["guard", "add", "frank", "--data", str(data_dir)]) == 2
    assert "too short" in capsys.readouterr().err
    assert not (data_dir / "kiosk.db").exists()


def test_guard_add_refuses_a_bad_name_with_exit_2(monkeypatch, data_dir, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert main(["guard", "add", "bad/name", "--data", str(data_dir)]) == 2
    assert "account name" in capsys.readouterr().err


def test_guard_remove_of_an_unknown_account_fails_with_exit_1(data_dir, clock, capsys):
    EventLog(data_dir / "kiosk.db", "gate-1", clock).open().close()  # the kiosk's log
    assert main(["guard", "remove", "ghost", "--data", str(data_dir)]) == 1
    assert "no stored account" in capsys.readouterr().err


def test_read_password_asks_twice_on_a_terminal(monkeypatch):
    from checkpoint.cli import guard_cmd

    answers = iter(["pw-aaaaaaaa", "pw-bbbbbbbb"])
    monkeypatch.setattr(guard_cmd.getpass, "getpass", lambda prompt: next(answers))
    tty = SimpleNamespace(isatty=lambda: True)
    with pytest.raises(guard_cmd.UsageError, match="differ"):
        guard_cmd.read_password(SimpleNamespace(password_stdin=False), tty)


@pytest.mark.parametrize("name", ["alice\n", "bob\n"])
def test_a_name_ending_in_a_newline_is_refused_not_stored_as_another_account(name):
    """``$`` matches before a final newline: ``alice\\n`` passed the name check, and became an
    account apart from ``alice`` that nobody could sign in as (the form strips the name)."""
    with pytest.raises(AccountError, match="account name"):
        validate_name(name)


def test_an_api_token_name_ending_in_a_newline_is_refused(tmp_path, clock):
    from kiosk.store import EventLog
    from kiosk.tokens import MIGRATIONS, TokenError, TokenStore

    log = EventLog(tmp_path / "k.db", "gate", clock, migrations=[MIGRATIONS]).open()
    try:
        with pytest.raises(TokenError, match="name"):
            TokenStore(log, pepper="p" * 32, clock=clock).create(["logs:read"], name="office\n")
    finally:
        log.close()


@pytest.mark.parametrize("errors", ["surrogateescape", "strict"])
@pytest.mark.parametrize("verb", [["guard", "hash", "x"], ["guard", "add", "x", "--data"]])
def test_a_password_on_stdin_that_is_not_utf8_is_one_line(
    verb, errors, data_dir, monkeypatch, capsys
):
    """A password piped from a file in another encoding (GBK here) was a UnicodeEncodeError
    (or UnicodeDecodeError) traceback; nothing was stored all the same."""
    gbk = "你好世界！\n".encode("gbk")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(gbk), "utf-8", errors))
    argv = [*verb, str(data_dir)] if verb[-1] == "--data" else verb
    assert main([*argv, "--password-stdin"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "UTF-8" in err and "Traceback" not in err
    assert not (data_dir / "kiosk.db").exists()


# --- a sign-in before NTP stepped the clock, and a restart after -------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
REAL = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


class KeptRevocations:
    """``AccountStore``'s record of signed-out sessions, in memory: kept until their time,
    by the wall clock, as the table keeps them."""

    def __init__(self) -> None:
        self.rows: dict[str, datetime] = {}

    def revoke_session(self, sid, name, kept_until, now) -> None:
        self.rows = {s: k for s, k in self.rows.items() if k > now}
        self.rows[sid] = kept_until

    def revoked_sessions(self, now):
        return {s: k for s, k in self.rows.items() if k > now}


def unsynced_clock() -> FakeClock:
    return FakeClock(start=EPOCH, is_synced=False)


def ntp_step(clock: FakeClock) -> None:
    clock.set_wall(REAL)
    clock.is_synced = True


def test_a_sign_in_before_the_ntp_step_survives_a_restart_after_it():
    """Signed in at 09:05 on a Pi booted without network (the clock said 1970); NTP steps
    it; the daemon restarts (same boot): the shift goes on, its time left by the monotonic
    clock, not ended by its 1970 expiry."""
    clock = unsynced_clock()
    cookie, _ = SessionManager(b"s" * 32, clock, 3600, boot_id="b1").issue(
        Account("alice", "guard", "secret")
    )
    clock.advance(600)
    ntp_step(clock)
    restarted = SessionManager(b"s" * 32, clock, 3600, boot_id="b1")
    kept = restarted.read(cookie)
    assert kept is not None
    assert kept.expires == clock.now() + timedelta(seconds=3000)
    clock.advance(3001)
    assert restarted.read(cookie) is None
    # After a reboot the monotonic clock means nothing: the expiry it carries says.
    assert SessionManager(b"s" * 32, clock, 3600, boot_id="b2").read(cookie) is None


def test_a_sign_out_before_the_ntp_step_stays_out_after_it_and_a_restart():
    clock, kept = unsynced_clock(), KeptRevocations()
    sessions = SessionManager(b"s" * 32, clock, 3600, revocations=kept, boot_id="b1")
    cookie, session = sessions.issue(Account("alice", "guard", "secret"))
    sessions.revoke(session)
    ntp_step(clock)
    sessions.revoke(sessions.issue(Account("bob", "guard", "secret"))[1])  # prunes by time
    assert sessions.read(cookie) is None
    restarted = SessionManager(b"s" * 32, clock, 3600, revocations=kept, boot_id="b1")
    assert restarted.read(cookie) is None


def test_a_login_page_opened_before_the_ntp_step_still_signs_in_after_it():
    """The guard opened the console's sign-in page a minute after the Pi booted without
    network time (1970); NTP stepped the clock while the password was typed: "the sign-in
    page expired", type it again. Its age is counted on the monotonic clock."""
    clock = unsynced_clock()
    sessions = SessionManager(b"s" * 32, clock, 3600, boot_id="b1")
    token = sessions.login_form_token()
    clock.advance(20)
    ntp_step(clock)
    assert sessions.check_login_form_token(token)
    clock.advance(3600)
    assert not sessions.check_login_form_token(token)


def test_an_action_cut_off_before_the_ntp_step_is_still_completed_after_it():
    """A guard's session ended (a shift begun before NTP, on a Pi booted without network)
    just as they closed an alarm; the console kept the action for ten minutes, to complete
    after signing in again. NTP stepped the clock meanwhile: the action was "56 years old",
    dropped. Its age is counted on the monotonic clock."""
    clock = unsynced_clock()
    sessions = SessionManager(b"s" * 32, clock, 3600, boot_id="b1")
    token = sessions.resume_token("/guard/alarms/ack", [("key", "event:1")], "alice")
    clock.advance(30)
    ntp_step(clock)
    resume = sessions.take_resume(token)
    assert resume is not None and resume.fields == [("key", "event:1")]
    later = sessions.resume_token("/guard/alarms/ack", [("key", "event:2")], "alice")
    clock.advance(601)
    assert sessions.read_resume(later) is None


def test_an_action_a_restart_forgot_is_said_lost_to_its_guard():
    """The console restarted while a cut-off registration waited for its guard to sign in
    again: the action is gone with the memory that held it, and its guard is told so (which
    one, and that the restart lost it), not that ten minutes went by (a reboot:
    ``test_guard_session.test_a_cut_off_action_a_reboot_forgot_is_said_lost_to_its_guard``)."""
    from ui.auth import Lapsed

    clock = FakeClock()
    sessions = SessionManager(b"s" * 32, clock, 3600, boot_id="b1")
    token = sessions.resume_token(
        "/guard/register/person", [("name", "x")], "alice", "register_person"
    )
    clock.advance(120)
    restarted = SessionManager(b"s" * 32, clock, 3600, boot_id="b1")
    assert restarted.read_resume(token) is None
    assert restarted.lapsed_resume(token, "alice") == Lapsed("register_person", expired=False)
    assert restarted.lapsed_resume(token, "root") is None  # another guard's sign-in
    clock.advance(3600)  # the sign-in link, from the browser's history
    assert restarted.lapsed_resume(token, "alice") is None


def test_sign_outs_on_a_clock_never_synchronised_are_held_no_more_than_the_record(monkeypatch):
    """On a gate whose clock never got network time each sign-out was held in memory for
    good (kept until "counted", never past its time), one more every shift for months; the
    record in the event log keeps ``REVOKED_KEPT``."""
    import kiosk.accounts

    monkeypatch.setattr(kiosk.accounts, "REVOKED_KEPT", 3)
    clock, kept = unsynced_clock(), KeptRevocations()
    sessions = SessionManager(b"s" * 32, clock, 3600, revocations=kept, boot_id="b1")
    cookies = []
    for name in ("a", "b", "c", "d", "e"):
        cookie, session = sessions.issue(Account(name, "guard", "secret"))
        sessions.revoke(session)
        cookies.append(cookie)
        clock.advance(60)
    assert len(sessions._revoked) == 3  # held in memory: REVOKED_KEPT at most
    assert all(sessions.read(cookie) is None for cookie in cookies[-3:])  # the latest stay out


def test_a_sign_out_after_the_step_of_a_sign_in_before_it_stays_out_across_another_step():
    clock, kept = unsynced_clock(), KeptRevocations()
    cookie, _ = SessionManager(b"s" * 32, clock, 3600, revocations=kept, boot_id="b1").issue(
        Account("alice", "guard", "secret")
    )
    ntp_step(clock)
    restarted = SessionManager(b"s" * 32, clock, 3600, revocations=kept, boot_id="b1")
    restarted.revoke(restarted.read(cookie))
    clock.set_wall(clock.now() + timedelta(days=1))  # a clock wrong again, and set again
    restarted.revoke(restarted.issue(Account("bob", "guard", "secret"))[1])
    again = SessionManager(b"s" * 32, clock, 3600, revocations=kept, boot_id="b1")
    assert again.read(cookie) is None


def test_a_cookie_issued_on_a_clock_not_set_is_refused_in_another_boot_whose_clock_is_not_set():
    """A cookie issued at "1970 00:05" in one boot carries an expiry of 1970 too: in the next
    boot, booted without network again, the wall clock reads 1970 once more and that expiry
    looked hours ahead, so a cookie from a boot long gone (copied, or a sign-out whose record
    was lost) let its bearer in. Its issue time means something only in its own boot."""
    clock = unsynced_clock()
    cookie, _ = SessionManager(b"s" * 32, clock, 3600, boot_id="b1").issue(
        Account("alice", "guard", "secret")
    )
    next_boot = unsynced_clock()
    next_boot.advance(300)
    assert SessionManager(b"s" * 32, next_boot, 3600, boot_id="b2").read(cookie) is None
    # In its own boot (the daemon restarted) it still counts, on the monotonic clock.
    assert SessionManager(b"s" * 32, clock, 3600, boot_id="b1").read(cookie) is not None
