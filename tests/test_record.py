"""The event record is defined once (kiosk.record); the classes and schemas follow it."""

from __future__ import annotations

import dataclasses
import sqlite3

from kiosk import record
from kiosk.store import Event, EventDraft, EventLog


def test_event_class_has_every_field_of_the_record_in_stored_order():
    assert tuple(f.name for f in dataclasses.fields(Event)) == record.stored_order(record.EVENT)


def test_event_draft_holds_exactly_what_the_engine_sets():
    # ... and ``decided``, the clock reading the log stamps ts, mono_ns, clock_synced from,
    # ``audit``, the row of the guard's request written in the event's own transaction, and
    # ``unless``, the condition looked at in that transaction (``kiosk.again``).
    fields = {f.name for f in dataclasses.fields(EventDraft)}
    assert fields == {*record.DRAFT_FIELDS, "decided", "audit", "unless"}
    assert {"ts", "mono_ns", "clock_synced"} <= set(record.EVENT_COLUMNS) - fields


def test_the_log_creates_its_tables_from_the_record(tmp_path, clock):
    with EventLog(tmp_path / "kiosk.db", "gate-1", clock, boot_id="b"):
        conn = sqlite3.connect(tmp_path / "kiosk.db")
        for table, columns in (("events", record.EVENT), ("audit", record.AUDIT)):
            info = conn.execute(f"PRAGMA table_info({table})").fetchall()  # noqa: S608
            assert tuple(row[1] for row in info) == record.stored_order(columns)
        conn.close()


def test_personal_fields_are_never_hashed_directly_and_chain_fields_never_at_all():
    hashed = set(record.EVENT_HASHED_FIELDS)
    assert not hashed & set(record.EVENT_PERSONAL_FIELDS)
    assert not hashed & {"prev_hash", "hash", "personal_digest", "purged_at"}
    assert {"pass_id", "household", "holder", "person"} == set(record.EVENT_PERSONAL_FIELDS)


def test_every_event_column_has_a_postgresql_type():
    assert list(record.PG_TYPES) == list(record.EVENT_COLUMNS)
    assert all(record.PG_TYPES.values())


def test_replay_record_carries_no_personal_data_and_nothing_that_varies_between_runs():
    assert not set(record.REPLAY_FIELDS) & set(record.EVENT_PERSONAL_FIELDS)
    assert not set(record.REPLAY_FIELDS) & {"id", "ts", "boot_id", "mono_ns", "hash"}
    assert set(record.REPLAY_FIELDS) <= set(record.DECISION_FIELDS) | set(record.OUTCOME_FIELDS)


def test_a_draft_gives_its_values_as_the_log_stores_them():
    draft = EventDraft(
        direction="in", decision="deny", reasons=["fever"], temp_c=-0.0, person={"note": "x"}
    )
    values = draft.values()
    assert set(values) == set(record.DRAFT_FIELDS)
    assert values["reasons"] == ["fever"] and values["flags"] == []
    assert values["temp_c"] == 0.0 and str(values["temp_c"]) == "0.0"
    assert values["person"] == {"note": "x"} and type(values["person"]) is dict


def test_every_listing_of_the_record_is_used_and_the_day_export_is_not_one():
    """The guard's day export is the office's sheet (words, masked, ``person`` unpacked),
    defined once in ``ui.guard.display.EXPORT_COLUMNS``; the record keeps no second, unused
    list of it that could drift."""
    assert "in_csv" not in {f.name for f in dataclasses.fields(record.Column)}
    assert not {"CSV_COLUMNS", "CSV_NUMERIC_COLUMNS"} & set(vars(record))
    from ui.guard.display import EXPORT_COLUMNS

    assert all(key.startswith("export.") for key in EXPORT_COLUMNS)
    assert "hash" not in {key.removeprefix("export.") for key in EXPORT_COLUMNS}
