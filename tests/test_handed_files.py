"""Files the office hands the product, as a Windows PC saves them: each reads as it was meant,
or is refused with a clear line and nothing changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

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


def _public_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_a_key_saved_from_windows_as_pub_txt_or_pub_in_capitals_is_trusted(tmp_path):
    """Before: the office's key copied in from a Windows PC as ``office.pub.txt`` (Notepad adds
    the .txt, Explorer hides it) or ``GATE-2.PUB`` was not read at all: every pass it signed
    was denied as ``pass_unknown_key`` (a forged-pass alarm each) with nothing said about the
    file. A file whose name ends in .pub in any case, or in .pub.txt, is a key file."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.passes import TrustList, issue_pass

    office, gate = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    trust_dir = tmp_path / "trust"
    trust_dir.mkdir()
    (trust_dir / "office.pub.txt").write_bytes(_public_pem(office).replace(b"\n", b"\r\n"))
    (trust_dir / "GATE-2.PUB").write_bytes(_public_pem(gate))
    trust = TrustList.from_dir(trust_dir)
    assert sorted(trust.names) == ["GATE-2", "office"]
    for key, name in ((office, "office"), (gate, "GATE-2")):
        payload, issued = issue_pass(key, "1-101", "Wang", now=datetime.now(UTC))
        assert trust.verify(payload).pass_id == issued.pass_id
        assert trust.issuer_of(issued.key_id) == name


def test_a_key_file_saved_as_utf16_is_refused_saying_so(tmp_path):
    """A .pub that went through Notepad's 'Unicode' or PowerShell's ``>`` is UTF-16: it was
    'not a PEM public key', which the technician could not see in the file."""
    import pytest
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.passes import TrustList, TrustListError

    trust_dir = tmp_path / "trust"
    trust_dir.mkdir()
    pem = _public_pem(Ed25519PrivateKey.generate()).decode()
    (trust_dir / "office.pub").write_bytes(pem.encode("utf-16"))
    with pytest.raises(TrustListError, match="office.pub is saved as UTF-16"):
        TrustList.from_dir(trust_dir)


def test_a_token_file_saved_by_notepad_gives_the_token_and_a_garbled_one_says_so(tmp_path):
    """Before: a peer gate's or a kiosk's token written to its file on a Windows PC kept the
    BOM Notepad puts first: the peer's every fetch failed with UnicodeEncodeError out of httpx,
    told as "its passages could not be kept here (event log)" with a traceback each poll, and
    the collector said the token was not printable ASCII. The BOM and CR LF are not the
    token; one still not printable ASCII (a GBK-saved note) is refused when read, naming the
    file."""
    import pytest

    from kiosk.config.fleet import read_token

    token = "kt_gate-north_" + "A" * 40
    path = tmp_path / "peer.token"
    path.write_bytes(b"\xef\xbb\xbf" + token.encode() + b"\r\n")
    assert read_token(None, path) == token
    path.write_bytes("令牌 ".encode("gbk") + token.encode())
    with pytest.raises(ValueError, match="peer.token does not hold a token"):
        read_token(None, path)


def _excel_text(rows: list[list[str]], encoding: str) -> bytes:
    """A sheet as Excel's "Unicode Text" (UTF-16 with its BOM) or "Text (Tab delimited)"
    (the PC's ANSI code page: GBK on a Chinese Windows) saves it: tabs, CR LF."""
    text = "".join("\t".join(r) + "\r\n" for r in rows)
    return text.encode(encoding)


def test_a_sheet_excel_saved_as_text_is_read_as_the_sheet(tmp_path, capsys):
    """Before: the imports take a .txt (as Excel saves a sheet as text), but read it as a
    comma CSV in UTF-8 or GB18030 only: Excel's "Unicode Text" (UTF-16, tabs) was 'neither
    UTF-8 nor GB18030 text' and its "Text (Tab delimited)" one column named
    'plate\\thousehold' ('missing columns: plate, household', which the clerk could see were
    there). A BOM of UTF-16 is read as UTF-16, and a header with tabs and no comma splits at
    the tabs."""
    from kiosk.sheets import read_table

    rows = [["plate", "household", "note"], ["京A12345", "1-101", "王, 小明"]]
    for encoding in ("utf-16", "gbk"):
        table = read_table(_excel_text(rows, encoding), "vehicles.txt")
        assert table.header == ("plate", "household", "note")
        assert table.rows == ({"plate": "京A12345", "household": "1-101", "note": "王, 小明"},)
    assert main(["keys", "new", "--dir", str(tmp_path), "--name", "office"]) == 0
    households = tmp_path / "households.txt"
    households.write_bytes(_excel_text([["household", "holder"], ["1-101", "王小明"]], "utf-16"))
    argv = [
        "pass",
        "batch",
        "--tz=Asia/Shanghai",
        "--key",
        str(tmp_path / "office.key"),
        "--csv",
        str(households),
    ]
    assert main([*argv, "--out", str(tmp_path / "cards")]) == 0, capsys.readouterr().err


def test_a_key_file_the_kiosk_cannot_read_is_on_the_guards_devices_page(guard_core):
    """Before: a .pub dropped into the trust folder of a running kiosk that could not be read
    (half copied, a private key by mistake, UTF-16) kept the keys in force, as it should, and
    was logged only: the guard saw a forged-pass alarm for every pass of that issuer and
    nothing about the file. The health report says it (``trust.problem``) and the Devices page
    shows a degraded trust-list row naming the file, until the folder reads well again."""
    from zoneinfo import ZoneInfo

    from kiosk.config import trust_dir
    from ui.guard.display import health_rows

    folder = trust_dir(guard_core.config, guard_core.data_dir)
    assert guard_core.health()["trust"] == {"problem": None}
    (folder / "office.pub").write_bytes(b"-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n")
    guard_core.trust.names  # the next pass reads the folder again  # noqa: B018
    problem = guard_core.health()["trust"]["problem"]
    assert "office.pub is not a PEM public key" in problem
    for lang, words in (("zh-CN", "信任名单"), ("en", "trust folder")):
        rows = health_rows(guard_core.health(), lang, ZoneInfo("UTC"))
        [row] = [r for r in rows if problem in r["detail"]]
        assert row["state"] == "degraded" and words in row["detail"] + row["device"]
    (folder / "office.pub").unlink()
    guard_core.trust.names  # noqa: B018
    assert guard_core.health()["trust"] == {"problem": None}
    assert not [
        r for r in health_rows(guard_core.health(), "en", ZoneInfo("UTC")) if "trust" in r["device"]
    ]


def test_a_config_naming_one_serial_port_for_the_scanner_and_the_relay_is_refused():
    """Before: a config copied with the scanner's port also under [gate.driver] (both CH340
    adapters are /dev/ttyUSB*) was valid: the relay's frames went into the scanner module and
    the gate never moved (since the relay takes its port exclusively, it was a gate fault
    blaming 'a second kiosk service'). ``check-config`` names both fields."""
    import pytest

    from kiosk.config import ConfigError, parse_config

    data = {
        "readers": {"sources": [{"type": "serial", "port": "/dev/ttyUSB0"}]},
        "gate": {"driver": {"type": "serial_relay", "port": "/dev/ttyUSB0"}},
    }
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    [problem] = info.value.problems
    assert "gate.driver.port" in problem and "readers.sources[0].port" in problem
    data["gate"]["driver"]["port"] = "/dev/ttyUSB1"
    assert parse_config(data).gate.driver.port == "/dev/ttyUSB1"
