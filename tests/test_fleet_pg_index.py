"""The office's ``fleet_events`` indexes, built on a database that already holds rows (real
PostgreSQL). The ``(kiosk_id, ts)`` index (2026-12) was made inside the schema's transaction
with a plain ``CREATE INDEX`` the first time a program of that version opened a big existing
database: the build holds a SHARE lock on ``fleet_events`` (every pull's insert waits) and the
schema's lock (every other program opening the database waits) for as long as it reads the
table. It is built ``CONCURRENTLY`` now, outside any transaction, and an INVALID one an
interrupted build left is dropped and built again."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from pgfixture import Network, add_events, make_kiosk
from test_fleet_pg import pull_pg

from office.pg import _INDEX_LOCK, PgTarget

pytest_plugins = ("pgfixture",)  # pg_cluster, pg_dsn: a real PostgreSQL

INDEX = "fleet_events_kiosk_ts"

#: With the index built concurrently a pull waits for no lock at all, so any bound will do;
#: the bound only turns the wait the old build made (until the open transaction ends: for
#: ever here) into an error.
NO_WAIT = "&options=-c%20lock_timeout%3D2000"


@pytest.fixture
def gate(tmp_path, clock):
    core = make_kiosk(tmp_path / "gate-1.db", "gate-1", clock, 20)
    yield core
    core.store.close()


def index_state(dsn: str) -> bool | None:
    """Whether the index is valid; None when there is none."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [INDEX]
        ).fetchone()
    return None if row is None else bool(row[0])


def until_postgres_says(dsn: str, sql: str, params: list, *, found: bool, what: str) -> None:
    """Return once ``sql`` finds a row (``found``) or none: a state PostgreSQL reports, not a
    time guessed; ``what`` is said if it never does."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (conn.execute(sql, params).fetchone() is not None) is found:
                return
        raise AssertionError(what)


def waiting_on_a_lock(dsn: str, application_name: str) -> None:
    """Return once the session of ``application_name`` waits on a lock (its build stopped
    behind the open transaction)."""
    until_postgres_says(
        dsn,
        "SELECT 1 FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
        [application_name],
        found=True,
        what=f"{application_name} never waited on a lock",
    )


def holds_no_lock_any_more(dsn: str, pid: int) -> None:
    """Return once the session of backend ``pid`` holds no lock. A client's close does not
    end its session's locks: its advisory locks go only when its backend has exited, which
    PostgreSQL does after the close returns (later under load); the next program to try the
    lock meanwhile finds it held."""
    until_postgres_says(
        dsn,
        "SELECT 1 FROM pg_locks WHERE pid = %s",
        [pid],
        found=False,
        what=f"the session of backend {pid} still holds its locks",
    )


def a_pull_writing(dsn: str) -> psycopg.Connection:
    """A session in the middle of a page's transaction (its row lock on ``fleet_events``
    held): the build has to wait for it to end."""
    conn = psycopg.connect(dsn)
    conn.execute("UPDATE fleet_events SET pulled_at = pulled_at WHERE seq = 1")
    return conn


def test_the_index_built_on_an_existing_database_holds_no_pull_back(gate, pg_dsn):
    net = Network(gate)
    pull_pg("http://gate-1", gate.token, pg_dsn, net)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # a database made before it
        conn.execute(f"DROP INDEX {INDEX}")
    writing = a_pull_writing(pg_dsn)
    failed: list[BaseException] = []

    def first_open() -> None:  # the first program of this version to open it
        try:
            PgTarget(pg_dsn, application_name="kiosk-first-open").close()
        except BaseException as exc:  # noqa: BLE001 - said by the test below
            failed.append(exc)

    builder = threading.Thread(target=first_open)
    builder.start()
    try:
        waiting_on_a_lock(pg_dsn, "kiosk-first-open")
        add_events(gate, 5)
        # another program opens the database and pulls while the build is under way
        result = pull_pg("http://gate-1", gate.token, pg_dsn + NO_WAIT, net)
        assert result.inserted == 5
    finally:
        writing.commit()
        writing.close()
        builder.join()
    assert failed == [] and index_state(pg_dsn) is True


def interrupted_build(dsn: str) -> None:
    """A ``CREATE INDEX CONCURRENTLY`` cancelled while it waited (a program stopped, the
    machine restarted): it leaves the index INVALID."""
    writing = a_pull_writing(dsn)
    cut: list[BaseException] = []

    def build() -> None:
        with psycopg.connect(dsn, autocommit=True, application_name="kiosk-cut") as conn:
            try:
                conn.execute(f"CREATE INDEX CONCURRENTLY {INDEX} ON fleet_events (kiosk_id, ts)")
            except psycopg.errors.QueryCanceled as exc:
                cut.append(exc)

    builder = threading.Thread(target=build)
    builder.start()
    try:
        waiting_on_a_lock(dsn, "kiosk-cut")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'kiosk-cut'"
            )
    finally:
        builder.join()
        writing.commit()
        writing.close()
    assert len(cut) == 1


def test_an_index_an_interrupted_build_left_invalid_is_built_again(gate, pg_dsn):
    pull_pg("http://gate-1", gate.token, pg_dsn, Network(gate))
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP INDEX {INDEX}")
    interrupted_build(pg_dsn)
    assert index_state(pg_dsn) is False  # there, never used, still written at each insert
    PgTarget(pg_dsn).close()
    assert index_state(pg_dsn) is True


def test_an_index_another_program_is_building_is_left_to_it(gate, pg_dsn):
    pull_pg("http://gate-1", gate.token, pg_dsn, Network(gate))
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP INDEX {INDEX}")
    interrupted_build(pg_dsn)
    with psycopg.connect(pg_dsn, autocommit=True) as building:  # its build under way
        building.execute("SELECT pg_advisory_lock(%s)", [_INDEX_LOCK])
        backend = building.info.backend_pid
        PgTarget(pg_dsn + NO_WAIT).close()  # neither waits for it nor drops it
        assert index_state(pg_dsn) is False
    # That program gone, its lock with it: not at its close but once its backend has exited
    # (under load a while later: the next open found it held and left the index to it).
    holds_no_lock_any_more(pg_dsn, backend)
    PgTarget(pg_dsn).close()  # the next to open builds it
    assert index_state(pg_dsn) is True
