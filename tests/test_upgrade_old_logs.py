"""A gate's event log written by an older release, opened by this one (an update).

The files in ``tests/data`` were made by that release's own code (``tests/data/README.md``):
the schema is migrated in place, nothing recorded is lost or altered, the hash chains still
verify, and the daily reports of the days before the update say what the old release said."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path

import pytest
from test_store import draft

from checkpoint.cli import main
from kiosk import accounts, ledgers, lists, stats, tokens
from kiosk.store import EventLog

DATA = Path(__file__).parent / "data"
OLD_LOGS = sorted(p.name.removesuffix(".db.gz") for p in DATA.glob("old-log-*.db.gz"))


def daemon_sets() -> list:
    return [
        lists.MIGRATIONS,
        tokens.MIGRATIONS,
        accounts.MIGRATIONS,
        stats.MIGRATIONS,
        *ledgers.MIGRATIONS,
    ]


def unpacked(name: str, tmp_path: Path) -> tuple[Path, dict]:
    path = tmp_path / "kiosk.db"
    path.write_bytes(gzip.decompress((DATA / f"{name}.db.gz").read_bytes()))
    return path, json.loads((DATA / f"{name}.json").read_text())


def rows(path: Path) -> dict[str, list[list[object]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: [
                list(r) for r in conn.execute(f"SELECT seq, id, hash FROM {table} ORDER BY seq")
            ]
            for table in ("events", "audit")
        }
    finally:
        conn.close()


def contains(old: object, new: object, where: str = "report") -> list[str]:
    """Where ``new`` differs from ``old`` in what ``old`` has (``new`` may add fields)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k, v in old.items() for d in contains(v, new.get(k), f"{where}.{k}")]
    return [] if old == new else [f"{where}: {old!r} then, {new!r} now"]


@pytest.mark.parametrize("name", OLD_LOGS)
def test_an_old_releases_log_is_migrated_keeping_every_row_and_the_chain(name, tmp_path, clock):
    path, then = unpacked(name, tmp_path)
    with EventLog(path, "gate-1", clock, migrations=daemon_sets()) as log:
        assert log.verify().ok
        assert rows(path) == then["rows"]
        log.append(draft())  # and the chain goes on from where the old release left it
        assert log.verify().ok
    assert rows(path)["events"][:-1] == then["rows"]["events"]
    assert main(["verify-log", "--db", str(path)]) == 0


@pytest.mark.parametrize("name", OLD_LOGS)
def test_an_old_releases_reports_of_its_days_are_unchanged(name, tmp_path, capsys, clock):
    path, then = unpacked(name, tmp_path)
    with EventLog(path, "gate-1", clock, migrations=daemon_sets()):
        pass  # the daemon of this version migrates it at its start (a report only reads)
    for day, report in then["reports"].items():
        assert main(["report", "--day", day, "--db", str(path)]) == 0
        now = json.loads(capsys.readouterr().out)
        assert contains(report, now, day) == []


@pytest.mark.parametrize("name", OLD_LOGS)
def test_an_old_releases_log_left_unreadable_does_not_stay_half_migrated(name, tmp_path, clock):
    """A migration that fails half-way (here: the card full after the first set) leaves the
    log as the old release wrote it, so that release still opens it."""
    from sqlite_utils.migrations import Migrations

    path, then = unpacked(name, tmp_path)
    before = sqlite3.connect(path)
    applied = before.execute("SELECT migration_set, name FROM _sqlite_migrations").fetchall()
    before.close()
    failing = Migrations("kiosk.zz_failing")

    @failing(name="m001_fails")
    def fails(db):  # type: ignore[no-untyped-def]
        raise sqlite3.OperationalError("database or disk is full")

    with pytest.raises(Exception):  # noqa: B017 - the store's fault, whatever its wording
        EventLog(path, "gate-1", clock, migrations=[*daemon_sets(), failing]).open()
    after = sqlite3.connect(path)
    try:
        assert (
            after.execute("SELECT migration_set, name FROM _sqlite_migrations").fetchall()
            == applied
        )
        tables = {r[0] for r in after.execute("SELECT name FROM sqlite_master")}
        assert "digest_salts" not in tables and "boot_clock" not in tables
    finally:
        after.close()
    assert rows(path) == then["rows"]


def test_a_verb_of_the_new_release_does_not_migrate_the_log_under_the_older_running_daemon(
    tmp_path, capsys
):
    """Between the install's switch of /opt/kiosk/current and its restart of the daemon (or
    with the new checkout's .venv/bin/kiosk), a verb of the new release (the nightly purge,
    `sudo kiosk-admin token new`) migrated the log while the older daemon ran on: that daemon
    went on writing rows in the schema it knows into one it does not (after period salts:
    digests `verify-log` then calls edited, for good). A daemon holds kiosk.lock; a verb with
    migrations to make refuses while it is held, naming what it would change, and changes
    nothing; once the daemon is stopped the verb migrates."""
    import fcntl
    import os

    name = OLD_LOGS[0]
    path, _then = unpacked(name, tmp_path)
    conn = sqlite3.connect(path)
    applied = conn.execute("SELECT migration_set, name FROM _sqlite_migrations").fetchall()
    conn.close()
    lock = os.open(tmp_path / "kiosk.lock", os.O_RDWR | os.O_CREAT, 0o640)
    try:
        os.write(lock, b"4242\n")
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the older daemon, running
        assert main([*TOKEN_NEW, "--db", str(path)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert "pid 4242" in err and "kiosk.events m002_period_salts" in err, err
        conn = sqlite3.connect(path)
        try:
            now = conn.execute("SELECT migration_set, name FROM _sqlite_migrations").fetchall()
        finally:
            conn.close()
        assert now == applied
    finally:
        os.close(lock)  # the daemon stopped (the update restarts it on this version)
    assert main([*TOKEN_NEW, "--db", str(path)]) == 0


TOKEN_NEW = ["token", "new", "--scope", "logs:read"]  # a verb that writes (reads only: below)


def sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


READ_VERBS = [
    ["token", "list"],
    ["guard", "list"],
    ["report", "--day", "2026-03-02"],
    ["lists", "import", "{csv}"],
    ["vehicles", "import", "{csv}"],
    ["compound", "import", "{csv}"],
]


@pytest.mark.parametrize("name", OLD_LOGS)
@pytest.mark.parametrize("verb", READ_VERBS, ids=lambda v: " ".join(v[:2]))
def test_a_verb_that_only_reads_leaves_an_older_releases_log_as_it_was(
    name, verb, tmp_path, capsys
):
    """A verb that only reads (a report, a list, an import's preview), run while no daemon held
    the log (the daemon stopped for a copy, a copy taken off a gate, the new checkout's own
    ``kiosk`` before the update), migrated it: the release that wrote it then refused it, and
    going back was cut off by a look. It changes nothing and says which verb migrates."""
    path, _ = unpacked(name, tmp_path)
    before = sha(path)
    (tmp_path / "in.csv").write_text("pass_id,reason\nP-1,lost\n")
    args = [a.format(csv=tmp_path / "in.csv") for a in verb]
    assert main([*args, "--db", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, (out, err)
    assert "older version" in err and f"`kiosk {' '.join(verb[:2]).split(' --')[0]}`" in err, err
    assert "kiosk run" in err, err
    assert sha(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "kiosk.db"]


def test_a_read_verb_tells_a_daemons_log_without_a_set_from_one_a_verb_began(
    tmp_path, clock, capsys
):
    """A whole set missing is a sign of an older version only in a log a daemon wrote (it opens
    the log with every set it has, and records its site): `report` refuses to add it there.
    A log a writing verb began (`token new`, before the daemon first ran) is read, as before."""
    from kiosk.store import record_site

    older = [s for s in daemon_sets() if s.name != "kiosk.roster"]  # a release before rosters
    daemons = tmp_path / "daemon.db"
    with EventLog(daemons, "gate-1", clock, migrations=older) as log:
        record_site(log, {"timezone": "Asia/Shanghai", "quota": None})
        log.append(draft())
    before = sha(daemons)
    assert main(["report", "--day", "2026-03-02", "--db", str(daemons)]) == 1
    err = capsys.readouterr().err
    assert "older version" in err and "kiosk.roster" in err, err
    assert sha(daemons) == before
    begun = tmp_path / "begun.db"
    assert main(["token", "new", "--scope", "logs:read", "--db", str(begun)]) == 0
    assert main(["report", "--day", "2026-03-02", "--db", str(begun)]) == 0
