"""API tokens: scoped, shown once, stored as a peppered HMAC, revocable."""

from __future__ import annotations

import pytest

from checkpoint.cli import main
from kiosk import stats, tokens
from kiosk.store import EventLog
from kiosk.tokens import TokenError, TokenStore, resolve_pepper, short_pepper


@pytest.fixture
def store(tmp_path, clock):
    log = EventLog(tmp_path / "kiosk.db", "gate-1", clock, "NORMAL", migrations=[tokens.MIGRATIONS])
    log.open()
    yield log
    log.close()


@pytest.fixture
def token_store(store, clock):
    return TokenStore(store, b"test-pepper", clock)


def test_new_token_authenticates_with_its_scopes(token_store):
    info, plain = token_store.create(["logs:read", "stats:read"], name="office")
    assert plain.startswith(f"kt_{info.id}_")
    found = token_store.authenticate(plain)
    assert found is not None and found.id == info.id
    assert found.allows("logs:read") and found.allows("stats:read")
    assert not found.allows("logs:personal")
    assert found.name == "office"


def test_only_the_peppered_hash_is_stored(token_store, store, tmp_path):
    _, plain = token_store.create(["logs:read"])
    secret = plain.split("_", 2)[2]
    row = next(store.reader().query("select * from api_tokens"))
    assert secret not in str(row) and plain not in str(row)
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("kiosk.db"))
    assert secret.encode() not in raw


def test_a_different_pepper_does_not_accept_the_token(token_store, store, clock):
    _, plain = token_store.create(["logs:read"])
    assert TokenStore(store, b"other-pepper", clock).authenticate(plain) is None


@pytest.mark.parametrize(
    "presented",
    ["", "Bearer", "kt_zzzzzzzz_x", "kt_00000000_" + "A" * 43, "not-a-token" * 10],
)
def test_malformed_or_unknown_tokens_are_refused(token_store, presented):
    token_store.create(["logs:read"])
    assert token_store.authenticate(presented) is None


def test_a_wrong_secret_for_a_real_id_is_refused(token_store):
    info, plain = token_store.create(["logs:read"])
    forged = plain[:-1] + ("A" if plain[-1] != "A" else "B")
    assert token_store.authenticate(forged) is None


def test_revoked_token_stops_working_and_is_listed_as_revoked(token_store, clock):
    info, plain = token_store.create(["logs:read"])
    clock.advance(60)
    revoked = token_store.revoke(info.id)
    assert revoked.revoked_at is not None
    assert token_store.authenticate(plain) is None
    assert [t.active for t in token_store.list()] == [False]
    # A second revoke keeps the first time.
    clock.advance(60)
    assert token_store.revoke(info.id).revoked_at == revoked.revoked_at


def test_revoking_an_unknown_id_is_an_error(token_store):
    with pytest.raises(TokenError, match="no token"):
        token_store.revoke("deadbeef")


def test_a_whole_token_pasted_to_revoke_revokes_it_and_never_says_its_secret(token_store, store):
    # An operator told "this token leaked" pastes the token itself, not its id.
    info, plain = token_store.create(["logs:read"])
    assert token_store.revoke(plain).id == info.id
    assert token_store.authenticate(plain) is None
    secret = plain.split("_", 2)[2]
    audit = [str(row) for row in store.reader().query("select * from audit")]
    assert not any(secret in row for row in audit)
    # A leaked token of another log: refused without echoing its secret back.
    other = "kt_0badf00d_" + "S" * 43
    with pytest.raises(TokenError, match="0badf00d") as refused:
        token_store.revoke(other)
    assert "S" * 43 not in str(refused.value)
    # Anything else is not echoed at length either.
    with pytest.raises(TokenError, match="not a token id") as garbled:
        token_store.revoke("x" * 500)
    assert "x" * 100 not in str(garbled.value)


@pytest.mark.parametrize("scopes", [[], ["logs:write"], ["logs:read", "admin"]])
def test_unknown_or_missing_scopes_are_refused(token_store, scopes):
    with pytest.raises(TokenError):
        token_store.create(scopes)
    assert token_store.list() == []


def test_creation_and_revocation_are_audited_without_the_secret(token_store, store):
    info, plain = token_store.create(["logs:read"])
    token_store.revoke(info.id)
    rows = store.audits()
    assert [r["action"] for r in rows][-2:] == ["token_created", "token_revoked"]
    assert all(plain.split("_", 2)[2] not in str(r) for r in rows)


def test_database_pepper_is_created_once_and_reused(store, clock):
    first = TokenStore(store, None, clock)
    _, plain = first.create(["logs:read"])
    second = TokenStore(store, None, clock)
    assert second.authenticate(plain) is not None


def test_secret_pepper_wins_over_the_database_pepper(store):
    secret = "from-secret-" + "x" * 20
    assert resolve_pepper(store, {"KIOSK_TOKEN_PEPPER": secret}) == secret.encode()
    db_pepper = resolve_pepper(store, {})
    assert len(db_pepper) == 32 and resolve_pepper(store, {}) == db_pepper


def test_a_pepper_shorter_than_a_key_is_taken_and_warned_of_by_name(store, clock):
    """A gate's hand-set pepper ("guessable-pepper") was refused, its tokens with it: a token
    carries 256 random bits, so its hash is out of an offline guess's reach whatever the
    pepper, and a new one voids every token. It is taken; the warning names the credential
    and what a new one costs, never its value."""
    short = {"KIOSK_TOKEN_PEPPER": "guessable-pepper"}
    assert resolve_pepper(store, short) == b"guessable-pepper"
    _, plain = TokenStore(store, "guessable-pepper", clock).create(["logs:read"])
    assert TokenStore(store, resolve_pepper(store, short), clock).authenticate(plain)
    msg = short_pepper(short)
    assert msg is not None and "token_pepper is short (16 characters" in msg
    assert "guessable" not in msg and "/dev/urandom" in msg and "voids every API token" in msg


def test_cli_token_new_list_revoke(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KIOSK_TOKEN_PEPPER", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    db = str(tmp_path / "k.db")
    assert main(["token", "new", "--scope", "logs:read", "--name", "office", "--db", db]) == 0
    out = capsys.readouterr()
    plain = out.out.strip()
    assert plain.startswith("kt_") and "shown only once" in out.err
    token_id = plain.split("_")[1]
    assert main(["token", "list", "--db", db]) == 0
    listed = capsys.readouterr().out
    assert token_id in listed and "active" in listed and plain not in listed
    assert main(["token", "revoke", token_id, "--db", db]) == 0
    assert main(["token", "list", "--db", db]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["token", "revoke", "00000000", "--db", db]) == 2
    assert "no token" in capsys.readouterr().err


def test_cli_token_new_with_bad_scope_is_a_usage_error(tmp_path, capsys):
    assert main(["token", "new", "--scope", "root", "--db", str(tmp_path / "k.db")]) == 2
    err = capsys.readouterr().err
    assert "unknown scope 'root'" in err and "Traceback" not in err


def test_stats_migrations_can_share_the_file(tmp_path, clock):
    log = EventLog(
        tmp_path / "k.db",
        "gate-1",
        clock,
        "NORMAL",
        migrations=[tokens.MIGRATIONS, stats.MIGRATIONS],
    ).open()
    try:
        names = set(log.reader().table_names())
    finally:
        log.close()
    assert {"api_tokens", "token_pepper", "daily_aggregates", "events"} <= names
