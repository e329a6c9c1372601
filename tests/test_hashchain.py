"""Canonical row hashing, and ``verify`` finding edits, deletions, insertions and reordering."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk import hashchain
from kiosk.clock import FakeClock
from kiosk.store import EventDraft, EventLog, verify_database

SALT = bytes(range(32))


def base_row() -> dict:
    row = {
        "seq": 7,
        "id": "6b1f3f0e-0000-4000-8000-000000000007",
        "kiosk_id": "gate-1",
        "ts": "2026-03-02T08:30:00.000000Z",
        "boot_id": "boot-a",
        "mono_ns": 123,
        "clock_synced": True,
        "direction": "in",
        "decision": "pass",
        "reasons": ["ok"],
        "temp_c": 36.5,
        "temp_object_c": 34.0,
        "temp_ambient_c": 22.0,
        "latency_ms": 80.0,
        "operator": None,
        "kind": "passage",
        "flags": [],
        "pass_id": "P-1",
        "household": "B1-101",
        "holder": "Li",
        "person": {"name": "Li Na", "phone": "139"},
        "prev_hash": hashchain.GENESIS,
    }
    row["personal_digest"] = hashchain.event_personal_digest(SALT, row)
    return row


def test_hash_is_the_same_for_python_values_and_their_sqlite_form():
    python_form = base_row()
    stored_form = dict(
        python_form,
        clock_synced=1,
        reasons='["ok"]',
        flags="[]",
        temp_ambient_c=22,  # an int read back from a REAL column is still the same value
        person='{"phone":"139","name":"Li Na"}',
    )
    assert hashchain.event_hash(stored_form) == hashchain.event_hash(python_form)
    assert hashchain.event_personal_digest(SALT, stored_form) == python_form["personal_digest"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", 8),
        ("id", "other"),
        ("kiosk_id", "gate-2"),
        ("ts", "2026-03-02T08:30:01.000000Z"),
        ("boot_id", "boot-b"),
        ("mono_ns", 124),
        ("clock_synced", False),
        ("direction", "out"),
        ("decision", "deny"),
        ("reasons", ["fever"]),
        ("temp_c", 38.2),
        ("temp_object_c", 35.0),
        ("temp_ambient_c", 21.0),
        ("latency_ms", 81.0),
        ("operator", "guard-7"),
        ("kind", "manual"),
        ("flags", ["vip"]),
        ("personal_digest", "0" * 64),
        ("prev_hash", "f" * 64),
    ],
)
def test_changing_any_non_personal_field_changes_the_hash(field, value):
    row = base_row()
    assert hashchain.event_hash(dict(row, **{field: value})) != hashchain.event_hash(row)


@pytest.mark.parametrize("field", hashchain.EVENT_PERSONAL_FIELDS)
def test_personal_fields_reach_the_hash_only_through_their_digest(field):
    row = base_row()
    nulled = dict(row, **{field: None})
    assert hashchain.event_hash(nulled) == hashchain.event_hash(row)
    assert hashchain.event_personal_digest(SALT, nulled) != row["personal_digest"]


def test_personal_digest_depends_on_the_database_salt():
    row = base_row()
    assert hashchain.event_personal_digest(bytes(32), row) != row["personal_digest"]


def test_events_and_audit_hashes_are_domain_separated():
    row = {"seq": 1, "prev_hash": hashchain.GENESIS, "personal_digest": "x"}
    assert hashchain.event_hash(row) != hashchain.audit_hash(row)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "36.6", True])
def test_values_without_one_canonical_form_are_refused(value):
    with pytest.raises(hashchain.CanonicalError):
        hashchain.event_hash(dict(base_row(), temp_c=value))


def test_canonical_encoding_is_compact_sorted_utf8():
    assert hashchain.canonical({"b": 1, "a": "王"}) == '{"a":"王","b":1}'.encode()


# --- verify() against tampering ------------------------------------------------------------


@pytest.fixture
def db_path(tmp_path, clock):
    path = tmp_path / "kiosk.db"
    with EventLog(path, "gate-1", clock) as log:
        for i in range(5):
            clock.advance(1)
            log.append(
                EventDraft(
                    direction="in",
                    decision="pass",
                    pass_id=f"P-{i}",
                    household="B1-101",
                    person={"name": f"Resident {i}"},
                    temp_c=36.4,
                )
            )
            log.audit("guard-7", "note", {"n": i})
    return path


def tamper(path, *statements: str) -> None:
    """Edit the file behind the log's back, as someone with a shell could."""
    conn = sqlite3.connect(path)
    for trigger in (
        "events_append_only_delete",
        "events_append_only_update",
        "audit_append_only_delete",
        "audit_append_only_update",
    ):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for sql in statements:
        conn.execute(sql)
    conn.commit()
    conn.close()


def verify(path):
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return verify_database(conn)
    finally:
        conn.close()


def test_untouched_log_verifies(db_path):
    result = verify(db_path)
    assert result.ok
    assert (result.events_checked, result.audit_checked) == (5, 5)


def test_edited_decision_is_found_at_its_row(db_path):
    tamper(db_path, "UPDATE events SET decision = 'deny' WHERE seq = 3")
    result = verify(db_path)
    assert not result.ok
    assert (result.table, result.first_bad_seq) == ("events", 3)
    assert "hash mismatch" in result.problem


def test_edited_personal_field_is_found_through_the_digest(db_path):
    tamper(db_path, "UPDATE events SET pass_id = 'P-forged' WHERE seq = 2")
    result = verify(db_path)
    assert (result.first_bad_seq, result.ok) == (2, False)
    assert "personal fields" in result.problem


def test_nulling_personal_fields_without_purged_at_is_an_edit(db_path):
    tamper(db_path, "UPDATE events SET holder = NULL, person = NULL WHERE seq = 4")
    assert verify(db_path).first_bad_seq == 4


def test_purged_row_with_restored_personal_data_must_match_its_digest(db_path):
    tamper(
        db_path,
        "UPDATE events SET pass_id = NULL, household = NULL, person = NULL,"
        " purged_at = '2026-04-01T00:00:00.000000Z' WHERE seq = 1",
    )
    # The chain still holds (a purge keeps the hash), but no audited purge covers the row.
    faked = verify(db_path)
    assert faked.first_bad_seq == 1 and "no audited purge covers it" in faked.problem
    tamper(db_path, "UPDATE events SET pass_id = 'P-someone-else' WHERE seq = 1")
    assert verify(db_path).first_bad_seq == 1


def test_deleted_middle_row_is_reported_as_missing(db_path):
    tamper(db_path, "DELETE FROM events WHERE seq = 3")
    result = verify(db_path)
    assert result.first_bad_seq == 4
    assert "seq 3 missing" in result.problem


def test_deleted_tail_rows_are_found_by_the_high_water_mark(db_path):
    tamper(db_path, "DELETE FROM events WHERE seq >= 4")
    result = verify(db_path)
    assert result.first_bad_seq == 4
    assert "truncated" in result.problem


def test_reordered_rows_are_found(db_path):
    # Swap the contents of rows 2 and 3, leaving their seq slots in place.
    tamper(
        db_path,
        "UPDATE events SET seq = -2 WHERE seq = 2",
        "UPDATE events SET seq = 2 WHERE seq = 3",
        "UPDATE events SET seq = 3 WHERE seq = -2",
    )
    result = verify(db_path)
    assert result.first_bad_seq == 2
    assert not result.ok


def test_inserted_forged_row_is_found(db_path):
    tamper(
        db_path,
        "INSERT INTO events SELECT 6, id, kiosk_id, ts, boot_id, mono_ns, clock_synced,"
        " direction, pass_id, household, 'pass', reasons, temp_c, temp_object_c, temp_ambient_c,"
        " latency_ms, operator, kind, flags, holder, person, personal_digest, purged_at,"
        " hash, hash FROM events WHERE seq = 5",
        "UPDATE meta SET value = '6' WHERE key = 'events.seq'",
    )
    result = verify(db_path)
    assert result.first_bad_seq == 6
    assert "hash mismatch" in result.problem


def test_rewritten_chain_without_the_salt_still_fails_the_digest(db_path):
    # Someone recomputes every hash after an edit but cannot recompute the keyed digest.
    tamper(db_path)  # drops the triggers
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM events ORDER BY seq")]
    prev = hashchain.GENESIS
    for row in rows:
        if row["seq"] == 2:
            row["household"] = "B9-999"
        row["prev_hash"] = prev
        row["hash"] = prev = hashchain.event_hash(row)
        conn.execute(
            "UPDATE events SET household = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            [row["household"], row["prev_hash"], row["hash"], row["seq"]],
        )
    conn.commit()
    conn.close()
    result = verify(db_path)
    assert result.first_bad_seq == 2
    assert "personal fields" in result.problem


def test_audit_chain_edits_are_found_too(db_path):
    tamper(db_path, "UPDATE audit SET actor = 'nobody' WHERE seq = 5")
    result = verify(db_path)
    assert (result.table, result.first_bad_seq) == ("audit", 5)
    assert result.problems == (result.problem,)


def test_both_chains_broken_reports_events_first_and_lists_both(db_path):
    tamper(
        db_path,
        "UPDATE audit SET action = 'x' WHERE seq = 1",
        "UPDATE events SET kind = 'vehicle' WHERE seq = 5",
    )
    result = verify(db_path)
    assert (result.table, result.first_bad_seq) == ("events", 5)
    assert len(result.problems) == 2


def test_missing_salt_is_a_problem(db_path):
    tamper(db_path, "DELETE FROM meta WHERE key = 'salt'")
    result = verify(db_path)
    assert not result.ok and "salt" in result.problem


def test_partial_row_without_hash_is_reported(db_path):
    tamper(db_path, "UPDATE events SET hash = '' WHERE seq = 5")
    result = verify(db_path)
    assert result.first_bad_seq == 5 and "partial row" in result.problem


def test_garbage_in_a_json_column_is_reported_not_raised(db_path):
    tamper(db_path, "UPDATE events SET reasons = 'not json' WHERE seq = 2")
    result = verify(db_path)
    assert result.first_bad_seq == 2 and "unreadable" in result.problem


def test_negative_zero_hashes_like_zero_because_sqlite_returns_it_as_zero():
    row = base_row()
    assert hashchain.event_hash(dict(row, temp_ambient_c=-0.0)) == hashchain.event_hash(
        dict(row, temp_ambient_c=0.0)
    )


# --- property: whatever a valid draft holds, the stored row verifies ------------------------

_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
_json = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
_temp = st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(-50, 60)
_drafts = st.builds(
    EventDraft,
    direction=st.sampled_from(["in", "out"]),
    decision=st.sampled_from(["pass", "deny", "manual_pass", "manual_deny"]),
    reasons=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=3),
    pass_id=st.none() | st.text(min_size=1, max_size=30),
    household=st.none() | st.text(min_size=1, max_size=30),
    holder=st.none() | st.text(min_size=1, max_size=30),
    person=st.none() | st.dictionaries(st.text(max_size=10), _json, max_size=4),
    temp_c=_temp,
    temp_object_c=_temp,
    temp_ambient_c=_temp,
    latency_ms=st.none() | st.floats(min_value=0, max_value=1e9),
    operator=st.none() | st.text(min_size=1, max_size=20),
    kind=st.sampled_from(["passage", "manual", "registration", "vehicle"]),
    flags=st.lists(st.text(min_size=1, max_size=12), max_size=3),
)


@pytest.mark.slow
def test_any_valid_draft_round_trips_and_verifies(tmp_path):
    with EventLog(tmp_path / "kiosk.db", "gate-1", FakeClock(), synchronous="NORMAL") as log:

        @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(drafts=st.lists(_drafts, min_size=1, max_size=4))
        def appended_rows_verify(drafts):
            start = log.last_seq
            events = [log.append(d) for d in drafts]
            assert [e.to_dict() for e in events] == log.events(after_seq=start)
            result = log.verify()
            assert result.ok, result.problem

        appended_rows_verify()
