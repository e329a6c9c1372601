"""A pass-checking kiosk that trusts no issuer key refuses to start, in one line.

Not in test_edge_hostile.py, whose module runs a real daemon in a thread of this process for
its tests: ``kiosk run`` points the process's log at stderr (``kiosk.logs.setup_logging``),
so whatever that daemon logged while this start was refused (a line with a traceback) was
read as this start's: the likely way the test failed once at load 10-18 (not reproduced in
78 runs at load 3-25; a thread logging an exception during the start fails it every time)."""

from __future__ import annotations

from checkpoint.cli import main


def test_a_pass_checking_kiosk_trusting_no_key_refuses_to_start(tmp_path, capsys):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text('[web]\nport = 0\n[engine]\ncpu = "off"\n')
    assert main(["run", "--config", str(cfg), "--data", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "no trusted issuer key" in err and "Traceback" not in err
