"""Retention of revocations: a revocation holds a pass id and a free-text reason (personal
data), so it may not stay for ever; but while the revoked pass could still be presented, the
revocation is what refuses it. The reason goes with the retention window; the row goes only
once the pass has expired ``REVOCATION_MARGIN`` ago, and a pass whose expiry nobody told the
kiosk is kept for the longest a pass can live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support import reporting_log

from kiosk.clock import FakeClock
from kiosk.config.policy import PolicySection
from kiosk.config.thermometer import ThermometryConfig
from kiosk.history import PassageHistory
from kiosk.lists import LONGEST_PASS, REVOCATION_MARGIN, ListStore
from kiosk.passes import TrustList, issue_pass
from kiosk.policy import PassageInputs, PolicyState, decide
from kiosk.retention import purge
from kiosk.thermometry import Temperature

TZ = ZoneInfo("Asia/Shanghai")
KEY = Ed25519PrivateKey.from_private_bytes(b"\x52" * 32)
TRUST = TrustList([("office", KEY.public_key())])
T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
NORMAL = Temperature("ok", 36.6, 34.6, 22.0, None)
REASON = "lost on the bus, owner Wang Fang 13800138000"


@pytest.fixture
def log(tmp_path):
    clock = FakeClock(start=T0)
    store = reporting_log(tmp_path / "kiosk.db", clock, ledgers=True)
    yield store
    store.close()


def refusal(lists: ListStore, payload: str, now: datetime) -> tuple[str, ...]:
    """Why the gate refuses ``payload`` at ``now`` with the lists in the database."""
    state = PolicyState(TRUST, lists.load(), PassageHistory())
    inputs = PassageInputs("out", payload, NORMAL)
    decision = decide(inputs, state, now, PolicySection(), ThermometryConfig(), TZ)
    assert decision.decision == "deny"
    return decision.reasons


def revocation(log, pass_id: str) -> dict | None:
    rows = log.reader().execute(
        "SELECT reason, bundle_reason FROM list_revocations WHERE pass_id = ?", [pass_id]
    )
    row = rows.fetchone()
    return None if row is None else {"reason": row[0], "bundle_reason": row[1]}


def nightly(log, until: datetime, days: int = 1):
    """The daemon's daily purge (``days`` of retention) at 03:00 each day up to ``until``,
    yielding each purge's moment."""
    when = log.clock.now()
    while when < until:
        when += timedelta(days=1)
        log.clock.set_wall(when)
        purge(log, days, when, tz=TZ)
        yield when


def test_a_revoked_pass_is_refused_as_revoked_until_the_revocation_goes_then_as_expired(log):
    """Before: revocations were never purged (pass id and reason kept for ever)."""
    payload, pass_ = issue_pass(KEY, "1-101", "Wang F", days=3, now=T0)
    # Issued at the guard console: its issue record states the pass's expiry.
    log.audit("guard:li", "pass_issued", {**pass_.fields(), "role": "resident"})
    lists = ListStore(log, log.clock)
    lists.revoke(pass_.pass_id, REASON, actor="guard:li")
    may_go = pass_.valid_until + REVOCATION_MARGIN

    went = None
    for now in nightly(log, may_go + timedelta(days=3)):
        if revocation(log, pass_.pass_id) is None:
            went = went or now
            assert "pass_expired" in refusal(lists, payload, now)
        else:
            assert went is None  # gone is gone
            assert "pass_revoked" in refusal(lists, payload, now)
            # the pass is refused as revoked up to the moment the revocation may go
            assert "pass_revoked" in refusal(lists, payload, may_go - timedelta(seconds=1))
        if now >= T0 + timedelta(days=1, hours=1):  # revoked a day ago: past the retention
            found = revocation(log, pass_.pass_id)
            assert found is None or found["reason"] == ""
    assert went is not None, "the revocation was never purged"
    assert may_go <= went < may_go + timedelta(days=1)
    assert log.verify().ok
    purges = [a for a in log.audits(limit=1000) if a["action"] == "retention_purge"]
    assert sum(a["detail"]["revocations_purged"] for a in purges) == 1


def test_a_revocation_of_a_pass_of_unknown_expiry_stays_for_the_longest_a_pass_lives(log):
    """A revocation from a CSV (or a pass whose issue record retention already purged): the
    kiosk does not know when the pass expires, only that it was issued before the first purge
    that saw the revocation, so it keeps the revocation the longest a pass can be valid after
    that (plus the margin), and the longest-lived pass stays refused as revoked meanwhile."""
    payload, pass_ = issue_pass(KEY, "1-101", "Wang F", days=LONGEST_PASS.days, now=T0)
    lists = ListStore(log, log.clock)
    lists.import_csv("revocations", f'pass_id,reason\n{pass_.pass_id},"{REASON}"\n', "office")
    [first] = list(nightly(log, T0 + timedelta(hours=1), days=30))  # the first purge sees it
    assert revocation(log, pass_.pass_id) == {"reason": REASON, "bundle_reason": None}
    may_go = first + LONGEST_PASS + REVOCATION_MARGIN
    assert pass_.valid_until < may_go

    late = pass_.valid_until - timedelta(hours=1)
    log.clock.set_wall(late)
    purge(log, 30, late, tz=TZ)
    assert revocation(log, pass_.pass_id) == {"reason": "", "bundle_reason": None}
    assert "pass_revoked" in refusal(lists, payload, late)
    log.clock.set_wall(may_go - timedelta(minutes=1))
    purge(log, 30, may_go - timedelta(minutes=1), tz=TZ)
    assert revocation(log, pass_.pass_id) is not None
    log.clock.set_wall(may_go)
    result = purge(log, 30, may_go, tz=TZ)
    assert result.revocations_purged == 1 and revocation(log, pass_.pass_id) is None
    assert "pass_expired" in refusal(lists, payload, may_go)
    assert log.verify().ok


def test_an_office_revocation_under_a_guards_keeps_refusing_unrevoke_after_its_reason_went(log):
    """The office's reason under a guard's revocation marks that the office revokes the pass
    too (the guard cannot lift it): emptied, the mark stays."""
    lists = ListStore(log, log.clock)
    pass_id = "0123456789ab"
    lists.revoke(pass_id, REASON, actor="guard:li")
    log.submit(
        lambda db: db.execute(
            "UPDATE list_revocations SET bundle_reason = ? WHERE pass_id = ?", [REASON, pass_id]
        )
    )
    list(nightly(log, T0 + timedelta(days=3)))
    assert revocation(log, pass_id) == {"reason": "", "bundle_reason": ""}
    with pytest.raises(ValueError, match="office"):
        lists.unrevoke(pass_id, actor="guard:li")


def test_the_purge_of_a_long_revocation_list_takes_a_few_statements_not_one_per_row(log):
    """The purge holds the log's writer (passages wait): before, it looked each revocation's
    pass up in the audit table on its own (18.8 s for a bundle's 200,000 at the first purge,
    taken under load). Now the reads do not grow with the list (only the prepared updates of
    the rows that change run once a row)."""
    import sqlite_utils

    from kiosk.lists import purge_revocations

    def statements(count: int) -> int:
        now = T0 + timedelta(days=40 + count)
        log.submit(lambda db: db.execute("DELETE FROM list_revocations"))
        rows = [
            {"pass_id": f"{i:012x}", "reason": "lost", "revoked_at": T0.isoformat()}
            for i in range(count)
        ]
        log.submit(lambda db: db["list_revocations"].insert_all(rows))
        db = sqlite_utils.Database(log.path)
        seen: list[str] = []
        db.conn.set_trace_callback(seen.append)
        try:
            with db.conn:
                assert purge_revocations(db, now - timedelta(days=30), now) == (0, count)
        finally:
            db.close()
        return len([s for s in seen if s.lstrip().upper().startswith("SELECT")])

    assert statements(500) == statements(5)


def test_a_revocation_made_before_the_ntp_step_keeps_its_reason_for_the_retention_period(
    tmp_path,
):
    """A guard revoked a lost pass at 09:10 on 2 March on a clock reading 1970 (a Pi booted
    without network). The first purge once NTP set the clock emptied the reason at once (1970
    is older than any cutoff), 30 days before retention said. It is dated as an event is: by
    its boot's synchronised clock."""
    clock = FakeClock(start=datetime(1970, 1, 1, tzinfo=UTC), is_synced=False)
    log = reporting_log(tmp_path / "kiosk.db", clock, ledgers=True)
    try:
        lists = ListStore(log, clock)
        clock.advance(600)
        lists.revoke("abcdef012345", REASON, "guard Zhao")
        clock.advance(1200)
        clock.set_wall(datetime(2026, 3, 2, 1, 30, tzinfo=UTC))  # NTP
        clock.is_synced = True
        clock.advance(3600)
        purge(log, 30, clock.now(), tz=TZ)
        assert revocation(log, "abcdef012345") == {"reason": REASON, "bundle_reason": None}
        clock.advance(30 * 24 * 3600)
        purge(log, 30, clock.now(), tz=TZ)
        assert revocation(log, "abcdef012345") == {"reason": "", "bundle_reason": None}
    finally:
        log.close()


def test_a_revocation_made_in_a_boot_never_dated_keeps_its_reason_for_the_retention_period(
    tmp_path,
):
    """A guard revoked a stolen pass on a clock reading 1970, and the power went before NTP
    answered (that boot never dated). The next boot, with network time, emptied the reason
    at its first purge (1970 is older than any cutoff): the guard meeting the pass the next
    day no longer read why it was refused. It is dated no earlier than it can have happened
    (before the next boot began), so it keeps the reason the retention period."""
    from kiosk import lists as lists_mod
    from kiosk import stats, tokens
    from kiosk.ledgers import MIGRATIONS
    from kiosk.store import EventDraft, EventLog

    def opened(clock, boot_id):
        sets = [tokens.MIGRATIONS, stats.MIGRATIONS, lists_mod.MIGRATIONS, *MIGRATIONS]
        path = tmp_path / "kiosk.db"
        return EventLog(path, "gate-1", clock, "NORMAL", migrations=sets, boot_id=boot_id)

    unset = FakeClock(start=datetime(1970, 1, 1, tzinfo=UTC), is_synced=False)
    store = opened(unset, "boot-a")
    log = store.open()
    unset.advance(600)
    ListStore(log, unset).revoke("abcdef012345", REASON, "guard Zhao")
    store.close()  # the power cut: that boot never dated
    clock = FakeClock(start=datetime(2026, 3, 2, 1, 30, tzinfo=UTC))
    store = opened(clock, "boot-b")
    log = store.open()
    try:
        log.append(EventDraft(direction="in", decision="pass"))
        clock.advance(3600)
        purge(log, 30, clock.now(), tz=TZ)
        assert revocation(log, "abcdef012345") == {"reason": REASON, "bundle_reason": None}
        clock.advance(31 * 24 * 3600)
        purge(log, 30, clock.now(), tz=TZ)
        assert revocation(log, "abcdef012345") == {"reason": "", "bundle_reason": None}
    finally:
        store.close()
