"""A key caught half-copied in the trust folder at start (``cp`` creates the file, then writes
it: an empty office.pub) is read again once after a short wait before ``kiosk run`` decides
(51a06e56 made any trust read error exit 2: systemd no longer restarted it, the unit stayed
failed for a key that was whole a moment later). A key still bad is exit 2, in its words."""

from __future__ import annotations

from pathlib import Path

import pytest

import checkpoint.app
from checkpoint.app import build_core
from checkpoint.cli import main
from kiosk.config import KioskConfig
from kiosk.passes import TRUST_SETTLE_S, new_key_pair


def _half_copied(tmp_path: Path) -> tuple[Path, bytes]:
    new_key_pair(tmp_path / "keys", "office")
    trust = tmp_path / "data" / "trust"
    trust.mkdir(parents=True)
    (trust / "office.pub").write_bytes(b"")  # cp has created it, not written it yet
    return trust / "office.pub", (tmp_path / "keys" / "office.pub").read_bytes()


def test_a_key_whole_a_moment_later_starts(tmp_path, clock):
    pub, whole = _half_copied(tmp_path)
    waited: list[float] = []

    def wait(seconds: float) -> None:
        waited.append(seconds)
        pub.write_bytes(whole)  # cp has finished meanwhile

    core = build_core(KioskConfig(), tmp_path / "data", clock, trust_wait=wait)
    try:
        assert core.trust.names == ("office",)
    finally:
        core.close()
    assert waited == [TRUST_SETTLE_S]


def test_a_key_still_bad_after_the_wait_is_exit_2_in_its_words(tmp_path, capsys, monkeypatch):
    _half_copied(tmp_path)
    waited: list[float] = []
    monkeypatch.setattr(checkpoint.app, "settle_trust_wait", waited.append)
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text('[site]\nkiosk_id = "gate-1"\n[web]\nport = 0\n[engine]\ncpu = "off"\n')
    assert main(["run", "--config", str(cfg), "--data", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "cannot start:" in err and "office.pub" in err and "Traceback" not in err
    assert waited == [TRUST_SETTLE_S]


def test_a_whole_key_is_not_waited_for(tmp_path, clock):
    pub, whole = _half_copied(tmp_path)
    pub.write_bytes(whole)

    def wait(seconds: float) -> None:
        pytest.fail("waited for a folder read well")

    build_core(KioskConfig(), tmp_path / "data", clock, trust_wait=wait).close()
