"""Make ``old-log-<commit>.db.gz`` and ``old-log-<commit>.json`` with an OLDER release's code.

Run from a checkout of that release (its code, not this one's, writes the file):

    git worktree add --detach /tmp/old-211cd92 211cd92
    cd /tmp/old-211cd92 && PYTHONPATH=. python /path/to/tests/data/make_old_log.py 211cd92 OUT_DIR

The log is what the daemon of that release leaves: every migration set it opens, events on two
site days (a resident, a fever, a guard's manual pass, one before NTP answered), an API token,
an account; the older days purged by its ``kiosk purge`` (personal fields nulled, daily reports
frozen), then two passages more. The JSON holds what that release said of it: every event's
and audit row's ``seq``, ``id`` and ``hash``, ``verify-log``'s verdict, and ``kiosk report``
for each day. ``tests/test_upgrade_old_logs.py`` opens the file with this release's code.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import shutil
import sqlite3
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from checkpoint.cli import main
from kiosk import accounts, ledgers, lists, stats, tokens
from kiosk.clock import FakeClock
from kiosk.engine import EventDraft
from kiosk.store import EventLog

DAYS = ("2026-03-02", "2026-03-03", "2026-03-04")


def passage(**fields: object) -> EventDraft:
    base: dict[str, object] = {
        "direction": "in",
        "decision": "pass",
        "reasons": ("ok",),
        "pass_id": "P-0001",
        "household": "B3-1201",
        "holder": "Wang L.",
        "person": {"name": "Wang Lei", "phone": "13800000000"},
        "temp_c": 36.6,
        "temp_object_c": 34.1,
        "temp_ambient_c": 24.0,
        "latency_ms": 120.5,
    }
    base.update(fields)
    return EventDraft(**base)  # type: ignore[arg-type]


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def build(path: Path) -> None:
    sets = [lists.MIGRATIONS, tokens.MIGRATIONS, accounts.MIGRATIONS, stats.MIGRATIONS]
    sets += list(ledgers.MIGRATIONS)
    clock = FakeClock(start=datetime(2026, 3, 2, 0, 30, tzinfo=UTC))  # 08:30 in Shanghai
    with EventLog(path, "gate-1", clock, migrations=sets) as log:
        clock.is_synced = False  # a passage before NTP answered (a fresh boot)
        log.append(passage(pass_id="P-0003", household="C1-0101", holder="Li M."))
        clock.is_synced = True
        clock.advance(600)
        log.append(passage())
        clock.advance(60)
        log.append(passage(direction="out"))
        clock.advance(300)
        log.append(passage(decision="deny", reasons=("fever",), temp_c=38.2, pass_id="P-0002"))
        clock.advance(120)
        log.append(passage(decision="manual_pass", reasons=("guard_override",), operator="guard"))
        tokens.TokenStore(log, clock=clock).create(["logs:read"], "office")
        accounts.AccountStore(log).add("day", "guard", accounts.hash_password("x" * 12), actor="t")
        clock.advance(86400)
        log.append(passage(pass_id="P-0004", household="A2-0303", holder="Zhao Q."))
        log.append(passage(decision="deny", reasons=("pass_expired",), pass_id="P-0005"))


def main_(commit: str, out_dir: Path) -> None:
    work = Path(tempfile.mkdtemp())
    db = work / "kiosk.db"
    build(db)
    code, _ = cli("purge", "--older-than", "1", "--trust-clock", "--db", str(db))
    assert code == 0, code
    clock = FakeClock(start=datetime(2026, 3, 4, 1, 0, tzinfo=UTC))
    with EventLog(db, "gate-1", clock, migrations=[stats.MIGRATIONS]) as log:
        log.append(passage(pass_id="P-0006", household="B3-1202", holder="Sun Y."))
        clock.advance(60)
        log.append(passage(pass_id="P-0006", household="B3-1202", holder="Sun Y.", direction="out"))
    code, verdict = cli("verify-log", "--db", str(db))
    assert code == 0, verdict
    reports = {}
    for day in DAYS:
        code, text = cli("report", "--day", day, "--db", str(db))
        assert code == 0, text
        reports[day] = json.loads(text)
    conn = sqlite3.connect(db)
    rows = {
        table: [list(r) for r in conn.execute(f"SELECT seq, id, hash FROM {table} ORDER BY seq")]
        for table in ("events", "audit")
    }
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    with db.open("rb") as src, gzip.open(out_dir / f"old-log-{commit}.db.gz", "wb", 9) as dst:
        shutil.copyfileobj(src, dst)
    expected = {"commit": commit, "verify_log": verdict.strip(), "rows": rows, "reports": reports}
    (out_dir / f"old-log-{commit}.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main_(sys.argv[1], Path(sys.argv[2]))
