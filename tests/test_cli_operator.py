"""The ``kiosk`` command as a Pi operator at a terminal meets it: Ctrl-C in the middle of a
long verb, output piped to ``head``, odd file systems. Each case ends in one line on stderr,
the documented exit code (docs/cli.md), and nothing lost or left half-done."""

from __future__ import annotations

import pytest

from checkpoint.cli import main


@pytest.fixture
def issuer(tmp_path):
    assert main(["keys", "new", "--dir", str(tmp_path / "keys"), "--name", "office"]) == 0
    return tmp_path / "keys" / "office.key"


def test_ctrl_c_during_pass_batch_leaves_no_card_without_its_line(
    tmp_path, issuer, monkeypatch, capsys
):
    # A card in the folder without passes.csv is a signed pass the office has no record of,
    # and the folder is no longer empty, so the batch cannot simply be run again.
    from checkpoint.cli import pass_cmd

    households = tmp_path / "households.csv"
    households.write_text("household,holder\n" + "".join(f"1-1-{i:04d},P{i}\n" for i in range(5)))
    real_card = pass_cmd._card
    cards = []

    def card_then_ctrl_c(*args, **kwargs):
        if len(cards) == 3:
            raise KeyboardInterrupt
        cards.append(1)
        return real_card(*args, **kwargs)

    monkeypatch.setattr(pass_cmd, "_card", card_then_ctrl_c)
    out = tmp_path / "cards"
    capsys.readouterr()
    code = main(
        ["pass", "batch", "--key", str(issuer), "--csv", str(households), "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 130
    assert list(out.iterdir()) == []
    assert "interrupted" in err and "nothing issued" in err
    monkeypatch.setattr(pass_cmd, "_card", real_card)
    assert (
        main(["pass", "batch", "--key", str(issuer), "--csv", str(households), "--out", str(out)])
        == 0
    )
    assert len(list(out.iterdir())) == 6
