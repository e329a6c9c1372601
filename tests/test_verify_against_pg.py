"""``kiosk verify-log --against postgresql://...``: the office's PostgreSQL as the witness."""

from __future__ import annotations

import sqlite3

from pgfixture import make_kiosk

from checkpoint.cli import main
from office.pg import PgTarget

pytest_plugins = ("pgfixture",)  # pg_cluster, pg_dsn: a real PostgreSQL


def test_a_shortened_log_is_named_against_the_office_postgresql(tmp_path, clock, pg_dsn, capsys):
    gate = make_kiosk(tmp_path / "gate-1.db", "gate-1", clock, 12)
    with PgTarget(pg_dsn) as target:
        target.write_page("http://gate-1", "gate-1", gate.store.events(limit=100))
    gate.store.close()
    db = str(tmp_path / "gate-1.db")
    assert main(["verify-log", "--db", db, "--against", pg_dsn]) == 0
    conn = sqlite3.connect(db)
    for trigger in ("events_append_only_delete", "events_append_only_update"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    conn.execute("DELETE FROM events WHERE seq > 9")
    conn.execute("UPDATE meta SET value = '9' WHERE key = 'events.seq'")
    conn.commit()
    conn.close()
    capsys.readouterr()
    assert main(["verify-log", "--db", db]) == 0  # consistent with itself
    assert main(["verify-log", "--db", db, "--against", pg_dsn]) == 1
    assert "events seq 10: in the office's copy but not in the kiosk's file" in (
        capsys.readouterr().err
    )
