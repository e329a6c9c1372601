"""What the Pi operator meets: a full or read-only SD card and power cuts, on real file
systems where the tests run as root (a tiny tmpfs, a loop-mounted ext4); elsewhere those
tests skip and say why."""

from __future__ import annotations

import contextlib
import csv

import pytest
from test_store_full import tiny_tmpfs

from checkpoint.cli import main


@pytest.fixture
def keys(tmp_path):
    assert main(["keys", "new", "--dir", str(tmp_path / "keys"), "--name", "office"]) == 0
    return tmp_path / "keys"


def fill(mnt):
    """Take every free byte of the file system ``mnt``; delete the returned file to free it."""
    filler = mnt / "filler"
    with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 4096)
    return filler


def issue(keys, out, household="12-3-0502"):
    return main(
        [
            "pass",
            "issue",
            "--key",
            str(keys / "office.key"),
            "--household",
            household,
            "--holder",
            "Wang",
            "--out",
            str(out),
        ]
    )


def test_a_file_rewritten_on_a_full_card_keeps_the_one_that_was_there(keys, tmp_path, capsys):
    """Before: the file at --out was truncated first, then the card ran out of space: what
    was there was gone and a cut-off PNG stood in its place, under the name asked for."""
    with tiny_tmpfs(tmp_path / "mnt", "512k") as mnt:
        card = mnt / "card.png"
        card.write_bytes(b"the card printed yesterday")
        fill(mnt)
        assert issue(keys, card) == 1
        err = capsys.readouterr().err
        assert "cannot write" in err and "No space left" in err
        assert card.read_bytes() == b"the card printed yesterday"
        assert sorted(p.name for p in mnt.iterdir()) == ["card.png", "filler"]  # no temp file


def test_a_batch_that_runs_out_of_space_leaves_no_card_behind(keys, tmp_path, capsys):
    """Before: the cards written before the card filled up stayed in the folder without a
    passes.csv: valid passes the office had no record of, and a re-run into the same folder
    was refused ('not empty')."""
    rows = tmp_path / "households.csv"
    with rows.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["household", "holder"])
        writer.writerows([f"1-{n:03d}", f"Holder {n}"] for n in range(40))
    with tiny_tmpfs(tmp_path / "mnt", "256k") as mnt:
        out = mnt / "cards"
        code = main(
            ["pass", "batch", "--key", str(keys / "office.key"), "--csv", str(rows)]
            + ["--out", str(out), "--format", "png"]
        )
        err = capsys.readouterr().err
        assert code == 1
        assert "No space left" in err and "nothing issued" in err
        assert list(out.iterdir()) == []


def test_keys_new_on_a_full_card_leaves_no_half_key_and_can_run_again(tmp_path, capsys):
    """Before: the private key file was made, then the card had no room for it: an empty
    office.key stayed, and every later `keys new` refused to overwrite it."""
    with tiny_tmpfs(tmp_path / "mnt", "256k") as mnt:
        filler = fill(mnt)
        argv = ["keys", "new", "--dir", str(mnt / "keys"), "--name", "office"]
        assert main(argv) == 2
        assert "No space left" in capsys.readouterr().err
        assert list((mnt / "keys").iterdir()) == []
        filler.unlink()
        assert main(argv) == 0
        assert len((mnt / "keys" / "office.key").read_bytes()) > 100
