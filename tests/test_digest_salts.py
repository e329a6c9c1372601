"""Crypto-shredding the personal digests: after retention purged a row's personal fields, its
``personal_digest`` (kept: the chain covers it) must not let anyone holding the file find the
purged household or name by trying candidates, nor tell two purged rows of one person apart
from two of different people. The salt of a period goes once every personal field of that
period is gone; the chain verifies before a purge (recomputing with the period's salt) and
after it (from the stored digests)."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from support import reporting_log

from kiosk import hashchain
from kiosk.retention import purge
from kiosk.store import EventDraft

T0 = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
#: What someone with the file would try: every household of a compound and a few names.
HOUSEHOLDS = [f"{b}-{f}{u:02d}" for b in range(1, 6) for f in range(1, 19) for u in range(1, 5)]
NAMES = ["Wang Fang", "Li Na", "Zhang Wei"]
CHAIN_COLUMNS = {"hash", "prev_hash", "personal_digest", "digest"}


def fill(log, days: int) -> None:
    """Two passages a day of one household (out and back in, written by a guard: no pass),
    and one of another."""
    for d in range(days):
        for hour, household, holder in ((1, "3-1702", "Wang Fang"), (9, "3-1702", "Wang Fang"),
                                        (5, "2-0501", "Li Na")):  # fmt: skip
            log.clock.set_wall(T0 + timedelta(days=d, hours=hour))
            log.append(
                EventDraft(
                    direction="out" if hour < 9 else "in",
                    decision="manual_pass",
                    kind="manual",
                    operator="guard:li",
                    household=household,
                    holder=holder,
                )
            )


def every_key_in(path) -> list[bytes]:
    """Every value in the file that could be a key: hex text of 16 bytes or more, in any
    table (the attacker knows the scheme, and tries each as it is and as a period's salt)."""
    conn = sqlite3.connect(path)
    found = []
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            cursor = conn.execute(f"SELECT * FROM [{table}]")  # noqa: S608 - test
            names = [d[0] for d in cursor.description]
            for row in cursor:
                for name, value in zip(names, row, strict=True):
                    if name in CHAIN_COLUMNS:  # digests and hashes are no keys
                        continue
                    if isinstance(value, str) and len(value) >= 32:
                        try:
                            found.append(bytes.fromhex(value))
                        except ValueError:
                            pass
    finally:
        conn.close()
    return found


def guesses(keys: list[bytes], row: dict) -> set[tuple[str, str]]:
    """The (household, holder) pairs whose digest under one of ``keys`` is the row's."""
    derive = getattr(hashchain, "row_key", None)
    candidates = list(keys)
    if derive is not None:
        candidates += [derive(k, row) for k in keys]
    hits = set()
    for key in candidates:
        for household in HOUSEHOLDS:
            for holder in NAMES:
                guess = {"pass_id": None, "household": household, "holder": holder, "person": None}
                if hashchain.event_personal_digest(key, guess) == row["personal_digest"]:
                    hits.add((household, holder))
    return hits


@pytest.mark.slow
def test_a_purged_rows_digest_gives_away_neither_its_household_nor_who_it_was(tmp_path, clock):
    """Before: one salt for the whole log, in the log's own ``meta`` table: trying the
    compound's few hundred households and the residents' names against a purged row's digest
    found them, and two purged passages of one household had the same digest."""
    path = tmp_path / "kiosk.db"
    log = reporting_log(path, clock)
    try:
        fill(log, 4)
        assert log.verify().ok
        now = T0 + timedelta(days=4)
        log.clock.set_wall(now)
        purge(log, 1, now, tz="UTC")
        assert log.verify().ok
        purged = [e for e in log.events(limit=100) if e["purged_at"] is not None]
    finally:
        log.close()
    assert len(purged) == 9  # three days of passages are past the day of retention
    keys = every_key_in(path)
    for row in purged:
        assert guesses(keys, row) == set(), f"events seq {row['seq']} linkable"
    same_household = [r["personal_digest"] for r in purged if r["seq"] in (1, 2)]  # 3-1702
    assert same_household[0] != same_household[1]
    # the attacker's method works: on a row not purged yet it finds the household
    log = reporting_log(path, clock)
    try:
        kept = [e for e in log.events(limit=100) if e["purged_at"] is None]
    finally:
        log.close()
    assert guesses(keys, kept[0]) == {(kept[0]["household"], kept[0]["holder"])}


def test_hmac_is_what_the_attacker_recomputes():
    """The attacker's digest is the log's (a guard against a test that proves nothing)."""
    key = bytes(32)
    row = {"pass_id": None, "household": "3-1702", "holder": "Wang Fang", "person": None}
    body = hashchain.canonical({k: row[k] for k in hashchain.EVENT_PERSONAL_FIELDS})
    assert (
        hashchain.event_personal_digest(key, row) == hmac.new(key, body, hashlib.sha256).hexdigest()
    )


def salts(path) -> dict[str, str | None]:
    conn = sqlite3.connect(path)
    try:
        found = dict(conn.execute("SELECT period, salt FROM digest_salts"))
        legacy = conn.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
    finally:
        conn.close()
    return found | {"legacy": legacy[0] if legacy else None}


def test_a_periods_salt_goes_with_its_last_personal_field_and_leaves_no_copy_behind(
    tmp_path, clock
):
    """The salt of a day stays while any row of that day holds personal fields (the chain is
    checked with it), goes at the purge that empties the day, and is then in neither the
    database file nor its WAL (the pages it was on are zeroed, the WAL wiped)."""
    path = tmp_path / "kiosk.db"
    log = reporting_log(path, clock)
    try:
        fill(log, 4)  # 1 to 4 March
        before = salts(path)
        assert set(before) == {"2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04", "legacy"}
        assert all(before.values())
        now = datetime(2026, 3, 5, 4, 0, tzinfo=UTC)  # two days back: up to 3 March 04:00
        log.clock.set_wall(now)
        result = purge(log, 2, now, tz="UTC")
        after = salts(path)
        # 1 and 2 March are empty; 3 March's 05:00 and 10:00 passages are not purged yet; the
        # legacy salt of a new log keys no row at all
        assert result.salts_shredded == 3
        assert after["2026-03-01"] is None and after["2026-03-02"] is None
        assert after["2026-03-03"] == before["2026-03-03"] and after["legacy"] is None
        assert log.verify().ok
    finally:
        log.close()
    for name in ("kiosk.db", "kiosk.db-wal"):
        raw = (tmp_path / name).read_bytes() if (tmp_path / name).exists() else b""
        for period in ("2026-03-01", "2026-03-02", "legacy"):
            assert before[period].encode() not in raw, f"{period}'s salt left in {name}"
    log = reporting_log(path, clock)  # opens without the legacy salt, and verifies
    try:
        assert log.verify().ok
    finally:
        log.close()


def test_a_row_stamped_on_a_day_whose_salt_went_gets_a_new_salt_and_verifies(tmp_path, clock):
    """A decision committed late from the engine's backlog (or a clock set back) lands on a
    day already emptied: that day gets a fresh salt; the purged rows need none."""
    log = reporting_log(tmp_path / "kiosk.db", clock)
    try:
        fill(log, 3)
        now = T0 + timedelta(days=3)
        log.clock.set_wall(now)
        purge(log, 1, now, tz="UTC")
        assert salts(tmp_path / "kiosk.db")["2026-03-01"] is None
        log.clock.set_wall(T0 + timedelta(hours=12))
        log.append(EventDraft(direction="in", decision="pass", household="3-1702", holder="W"))
        assert salts(tmp_path / "kiosk.db")["2026-03-01"] is not None
        assert log.verify().ok
    finally:
        log.close()


def verified_after(path, *statements: str):
    """``verify-log``'s verdict on the file after someone with a shell ran ``statements``."""
    from kiosk.store import verify_database

    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
        return verify_database(conn)
    finally:
        conn.close()


def test_a_purges_own_audit_row_stays_checked_after_its_days_salt_went(tmp_path, clock):
    """A purge's audit row is never purged (verification checks purges against it): its
    digest is attested under a public key when its day's salt goes, so an edit of its cutoff
    is still found."""
    path = tmp_path / "kiosk.db"
    log = reporting_log(path, clock)
    try:
        fill(log, 2)
        for days in (2, 4):
            now = T0 + timedelta(days=days)
            log.clock.set_wall(now)
            purge(log, 1, now, tz="UTC")
        assert salts(path)["2026-03-03"] is None  # the first purge's day, emptied
        assert log.verify().ok
        [first, _] = [a for a in log.audits(limit=100) if a["action"] == "retention_purge"]
    finally:
        log.close()
    result = verified_after(
        path,
        "DROP TRIGGER audit_append_only_update",
        "UPDATE audit SET detail = replace(detail, '2026-03-02', '2026-03-09')"
        f" WHERE seq = {first['seq']}",
    )
    assert not result.ok and result.first_bad_seq == first["seq"]
    assert "do not match their digest" in result.problem


def test_a_salt_deleted_while_its_day_holds_personal_fields_is_reported(tmp_path, clock):
    path = tmp_path / "kiosk.db"
    log = reporting_log(path, clock)
    try:
        fill(log, 2)
    finally:
        log.close()
    result = verified_after(path, "UPDATE digest_salts SET salt = NULL WHERE period = '2026-03-02'")
    assert not result.ok and result.first_bad_seq == 4
    assert "digest salt of its period (2026-03-02) is gone" in result.problem


def legacy_log(path, clock, monkeypatch, days: int):
    """A log as the one-salt version wrote it: events and audit rows keyed by ``meta``'s
    salt, no period salts (the events migration set without ``m002_period_salts``)."""
    from sqlite_utils.migrations import Migrations

    from kiosk import store

    older = Migrations(store.MIGRATIONS.name)
    first = store.MIGRATIONS._migrations[0]
    older(name=first.name)(first.fn)
    with monkeypatch.context() as patched:
        patched.setattr(store, "MIGRATIONS", older)
        log = reporting_log(path, clock)
        try:
            fill(log, days)
            log.audit("guard:li", "lists.revoke", {"pass_id": "0123456789ab"})
            assert "digest_salts" not in log.reader().table_names()
        finally:
            log.close()


def test_a_one_salt_log_keeps_verifying_and_its_salt_goes_with_its_last_personal_field(
    tmp_path, clock, monkeypatch
):
    """Upgrading: the rows already written stay keyed by the log's one salt (it verifies
    before and after), new rows get their day's salt, and the old salt goes at the purge that
    empties the last of the old rows, no earlier."""
    from checkpoint.cli import main

    path = tmp_path / "kiosk.db"
    legacy_log(path, clock, monkeypatch, 3)  # 1 to 3 March
    assert main(["verify-log", "--db", str(path)]) == 0  # read as it is, not migrated
    log = reporting_log(path, clock)
    try:
        legacy = salts(path)["legacy"]
        assert legacy and set(salts(path)) == {"legacy"}
        fill(log, 1)  # 1 March again, now with a period salt: both keys in one day
        assert set(salts(path)) == {"legacy", "2026-03-01"} and log.verify().ok
        now = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
        log.clock.set_wall(now)
        purge(log, 2, now, tz="UTC")  # up to 2 March 03:00: old rows of 2 and 3 March remain
        assert salts(path)["legacy"] == legacy and log.verify().ok
        now = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
        log.clock.set_wall(now)
        result = purge(log, 1, now, tz="UTC")  # every old row is purged now
        assert salts(path)["legacy"] is None and result.salts_shredded == 2  # and 1 March's
        assert log.verify().ok
        personal = [e for e in log.events(limit=100) if e["purged_at"] is None]
        assert personal == []
    finally:
        log.close()
    assert legacy.encode() not in path.read_bytes()
    log = reporting_log(path, clock)  # reopens without the old salt: none of its rows needs it
    log.close()
    assert main(["verify-log", "--db", str(path)]) == 0


def test_an_attestation_added_for_a_row_with_personal_fields_does_not_hide_its_edit(
    tmp_path, clock
):
    """Only a purge's own audit row is ever attested: a public digest written for a guard's
    row does not stand in for its salted one."""
    path = tmp_path / "kiosk.db"
    log = reporting_log(path, clock)
    try:
        log.audit("guard:li", "lists.quarantine_add", {"household": "3-1702"})
        [row] = log.audits(limit=10)
    finally:
        log.close()
    edited = dict(row, detail={"household": "9-9999"})
    forged = hashchain.audit_personal_digest(hashchain.ATTEST_KEY, edited)
    result = verified_after(
        path,
        "DROP TRIGGER audit_append_only_update",
        f"""UPDATE audit SET detail = '{{"household":"9-9999"}}' WHERE seq = {row["seq"]}""",
        f"INSERT INTO digest_attested VALUES ('audit', {row['seq']}, '{forged}')",
    )
    assert not result.ok and "do not match their digest" in result.problem
