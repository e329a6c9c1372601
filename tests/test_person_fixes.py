"""What a review of ``kiosk person show/forget`` and ``kiosk fleet forget`` found, pinned.

Each test names a defect it found: the fix is in the commit that added the test. All on a
FakeClock (the ``guard_core`` fixture's), nothing written outside ``tmp_path``.
"""

from __future__ import annotations

from checkpoint.cli import main


def test_fleet_forget_never_prints_the_databases_password(capsys):
    dsn = "postgresql://office:s3cret-Pw@127.0.0.1:1/fleet?connect_timeout=2"
    assert main(["fleet", "forget", dsn, "--kiosk", "gate-1", "--seqs", "1-4"]) == 1
    err = capsys.readouterr().err
    assert "s3cret-Pw" not in err
    assert "127.0.0.1" in err
