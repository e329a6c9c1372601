"""Files the office hands the product, as a Windows PC saves them: each reads as it was meant,
or is refused with a clear line and nothing changed."""

from __future__ import annotations

import json

from checkpoint.cli import main

LISTS = {
    "revocations": [{"pass_id": "0123456789ab", "reason": "lost"}],
    "quarantine": [{"household": "3-201", "from": "2026-03-01", "until": "2026-03-14"}],
    "households": [{"household": "3-201", "residents": 3}],
}


def test_fleet_publish_reads_a_lists_file_saved_with_a_bom(tmp_path, capsys):
    """Before: lists.json saved by Notepad ("UTF-8 with BOM") was refused as 'not JSON
    (Unexpected UTF-8 BOM ...)', and the clerk had no way in Notepad to see what was wrong.
    The BOM is no text, as in the config and the CSV imports."""
    assert main(["keys", "new", "--dir", str(tmp_path), "--name", "office"]) == 0
    lists = tmp_path / "lists.json"
    lists.write_bytes(
        b"\xef\xbb\xbf" + json.dumps(LISTS, indent=2).encode().replace(b"\n", b"\r\n")
    )
    out = tmp_path / "bundle.json"
    capsys.readouterr()
    argv = ["fleet", "publish", "--key", str(tmp_path / "office.key"), "--lists", str(lists)]
    assert main([*argv, "--out", str(out)]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["version"] == 1 and out.is_file()
