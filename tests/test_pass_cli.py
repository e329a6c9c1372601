from __future__ import annotations

import csv
import io
import json
import stat
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import zxingcpp
from PIL import Image
from support import need

from checkpoint.cli import main
from kiosk.passes import TrustList


@pytest.fixture
def keys(tmp_path):
    assert main(["keys", "new", "--dir", str(tmp_path / "keys"), "--name", "office"]) == 0
    return tmp_path / "keys"


#: The site's zone these tests issue in (``pass issue`` assumes none: ``--tz`` or a config).
SHANGHAI = ("--tz", "Asia/Shanghai")
BERLIN = ("--tz", "Europe/Berlin")


def _issue(capsys, keys, *extra, tz=SHANGHAI):
    code = main(
        [
            "pass",
            "issue",
            "--key",
            str(keys / "office.key"),
            "--household",
            "12-3-0502",
            "--holder",
            "王小明",
            *tz,
            *extra,
        ]
    )
    out, err = capsys.readouterr()
    return code, out, err


def _verify(capsys, payload, trust, *extra):
    code = main(["pass", "verify", payload, "--trust", str(trust), *extra])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_keys_new_writes_an_owner_only_private_key_and_a_public_key(keys, capsys):
    assert stat.S_IMODE((keys / "office.key").stat().st_mode) == 0o600
    assert (keys / "office.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert TrustList.from_dir(keys).names == ("office",)


def test_keys_new_refuses_to_overwrite_with_exit_2(keys, capsys):
    capsys.readouterr()
    assert main(["keys", "new", "--dir", str(keys), "--name", "office"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_issue_prints_one_line_payload_that_verifies_with_exit_0(keys, capsys):
    capsys.readouterr()
    code, out, _ = _issue(capsys, keys, "--role", "staff", "--days", "7")
    assert code == 0 and out.count("\n") == 1 and out.startswith("KP1:")
    code, verdict, _ = _verify(capsys, out.strip(), keys)
    assert code == 0
    assert verdict["valid"] is True and verdict["reasons"] == ["ok"]
    assert verdict["household"] == "12-3-0502" and verdict["holder"] == "王小明"
    assert verdict["role"] == "staff" and verdict["issuer"] == "office"
    start = datetime.fromisoformat(verdict["valid_from"])
    assert datetime.fromisoformat(verdict["valid_until"]) - start == timedelta(days=7)


def test_verify_reports_expiry_and_not_yet_valid_with_exit_1(keys, capsys):
    capsys.readouterr()
    _, out, _ = _issue(capsys, keys, "--days", "1")
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    code, verdict, _ = _verify(capsys, out.strip(), keys, "--at", later)
    assert (code, verdict["valid"], verdict["reasons"]) == (1, False, ["pass_expired"])
    earlier = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    code, verdict, _ = _verify(capsys, out.strip(), keys, "--at", earlier)
    assert (code, verdict["reasons"]) == (1, ["pass_not_yet_valid"])


def test_verify_with_another_trust_folder_is_unknown_key_exit_1(keys, tmp_path, capsys):
    main(["keys", "new", "--dir", str(tmp_path / "other")])
    capsys.readouterr()
    _, out, _ = _issue(capsys, keys)
    code, verdict, _ = _verify(capsys, out.strip(), tmp_path / "other")
    assert (code, verdict["reasons"]) == (1, ["pass_unknown_key"])


def test_verify_malformed_payload_is_unusable_input_exit_2(keys, capsys):
    capsys.readouterr()
    code, verdict, _ = _verify(capsys, "hello world", keys)
    assert (code, verdict["valid"], verdict["reasons"]) == (2, False, ["pass_malformed"])


def test_verify_reads_the_payload_from_stdin(keys, capsys, monkeypatch):
    capsys.readouterr()
    _, out, _ = _issue(capsys, keys)
    monkeypatch.setattr("sys.stdin", io.StringIO(out))
    code, verdict, _ = _verify(capsys, "-", keys)
    assert code == 0 and verdict["valid"]


class _Terminal(io.StringIO):
    """What an operator types at a terminal: stdin that is a TTY."""

    def isatty(self) -> bool:
        return True


def _issue_given(capsys, monkeypatch, keys, stdin, *given):
    """``kiosk pass issue`` with these options for the household and the holder, stdin."""
    monkeypatch.setattr("sys.stdin", stdin)
    code = main(
        ["pass", "issue", "--tz", "Asia/Shanghai", "--key", str(keys / "office.key"), *given]
    )
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("given", "stdin"),
    [
        (("--household", "12-3-0502", "--holder", "-"), io.StringIO("王小明\n")),
        (("--household", "-", "--holder", "-"), io.StringIO("12-3-0502\n王小明\n")),
        ((), _Terminal("12-3-0502\n王小明\n")),  # asked for, by name
        (("--household", "12-3-0502"), _Terminal("王小明\r\n")),
    ],
)
def test_the_holder_is_given_without_putting_it_on_the_command_line(
    keys, capsys, monkeypatch, given, stdin
):
    """``--holder NAME`` was the only way: the resident's name stayed in the shell's history,
    in ``ps`` for every user of the Pi, and in sudo's journal (``COMMAND=``) under
    kiosk-admin. ``-`` reads it from stdin; at a terminal, left out, it is asked for."""
    capsys.readouterr()
    code, out, err = _issue_given(capsys, monkeypatch, keys, stdin, *given)
    assert code == 0, err
    _, verdict, _ = _verify(capsys, out.strip(), keys)
    assert verdict["household"] == "12-3-0502" and verdict["holder"] == "王小明"
    assert ("holder: " in err) == isinstance(stdin, _Terminal)
    assert ("household: " in err) == ("--household" not in given)


@pytest.mark.parametrize(
    ("given", "stdin", "said"),
    [
        (("--household", "1-2"), io.StringIO("王小明\n"), "--holder"),  # not asked: no terminal
        (("--household", "1-2", "--holder", "-"), io.StringIO(""), "--holder -: no value"),
        (("--household", "1-2", "--holder", "-"), io.StringIO("\n"), "--holder -: no value"),
        (("--household", "-", "--holder", "-"), io.StringIO("1-2\n"), "--holder -: no value"),
        (("--household", "1-2", "--holder", "-"), io.StringIO("王" * 5000), "longer than"),
        # no stdin at all (fd 0 closed: cron, nohup): a traceback before
        (("--household", "1-2", "--holder", "-"), None, "--holder -: no value"),
        (("--household", "1-2"), None, "--holder is required"),
    ],
)
def test_a_holder_missing_from_stdin_is_refused_and_nothing_issued(
    keys, capsys, monkeypatch, given, stdin, said
):
    capsys.readouterr()
    code, out, err = _issue_given(capsys, monkeypatch, keys, stdin, *given)
    assert code == 2 and out == ""
    assert said in err and "王" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pass", "verify", "KP1:", "--trust", "/nonexistent/trust"], "does not exist"),
        (
            [
                "pass",
                "issue",
                "--tz",
                "Asia/Shanghai",
                "--key",
                "/nonexistent.key",
                "--household",
                "1",
                "--holder",
                "L",
            ],
            "cannot read key",
        ),
    ],
)
def test_unusable_files_are_one_line_errors_with_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--days", "0"], "--days must be between"),
        (["--out", "card.pdf"], ".svg or .png"),
        (["--tz", "Mars/Olympus"], "unknown timezone"),
    ],
)
def test_bad_issue_options_are_usage_errors(keys, capsys, extra, message):
    capsys.readouterr()
    code, out, err = _issue(capsys, keys, *extra)
    assert code == 2 and out == "" and message in err


def test_too_long_holder_is_a_usage_error_naming_the_limit(keys, capsys):
    capsys.readouterr()
    code = main(
        [
            "pass",
            "issue",
            "--tz",
            "Asia/Shanghai",
            "--key",
            str(keys / "office.key"),
            "--household",
            "12-3-0502",
            "--holder",
            "欧阳娜娜娜",
        ]
    )
    assert code == 2 and "room for 22" in capsys.readouterr().err


def test_issue_with_out_writes_a_card_that_scans_to_the_payload(keys, tmp_path, capsys):
    capsys.readouterr()
    card = tmp_path / "card.png"
    code, out, _ = _issue(capsys, keys, "--out", str(card))
    assert code == 0
    texts = [r.text for r in zxingcpp.read_barcodes(Image.open(card).convert("L"))]
    assert texts == [out.strip()]


def batch(keys, households, out_dir, *extra: str, tz=SHANGHAI) -> int:
    """``kiosk pass batch`` with the office key; its exit code."""
    args = ["--key", str(keys / "office.key"), "--csv", str(households), "--out", str(out_dir)]
    return main(["pass", "batch", *args, *tz, *extra])


def test_batch_issues_every_row_with_a_card_and_a_manifest(keys, tmp_path, capsys):
    households = tmp_path / "households.csv"
    households.write_text(
        "household,holder,role,days,flags\n1-1,Wang,,,\n1-2,Li,staff,3,escort\n",
        encoding="utf-8",
    )
    capsys.readouterr()
    out_dir = tmp_path / "cards"
    assert batch(keys, households, out_dir) == 0
    rows = list(csv.DictReader((out_dir / "passes.csv").open(encoding="utf-8-sig")))
    assert [(r["household"], r["role"]) for r in rows] == [("1-1", "resident"), ("1-2", "staff")]
    trust = TrustList.from_dir(keys)
    for row in rows:
        assert trust.verify(row["payload"]).pass_id == row["pass_id"]
        assert (out_dir / row["card"]).read_bytes().startswith(b"<?xml")
    assert trust.verify(rows[1]["payload"]).flags == ("escort",)


def test_the_batchs_passes_csv_is_written_by_the_kiosks_one_csv_writer(keys, tmp_path, capsys):
    """passes.csv is what ``kiosk.sheets.write_csv`` writes for its rows (CR LF line ends, one
    quoting rule with the kiosk's other sheets): a holder with a comma or a quote stays whole."""
    from kiosk.sheets import write_csv

    households = tmp_path / "households.csv"
    households.write_text('household,holder\n1-1,"Wang, Jr."\n1-2,"Li ""Xiao"" Ming"\n')
    capsys.readouterr()
    assert batch(keys, households, tmp_path / "cards") == 0
    text = (tmp_path / "cards" / "passes.csv").read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert [r[1] for r in rows] == ["holder", "Wang, Jr.", 'Li "Xiao" Ming']
    assert text == write_csv(rows)


def test_batch_with_a_bad_row_names_the_line_and_writes_nothing(keys, tmp_path, capsys):
    households = tmp_path / "households.csv"
    households.write_text("household,holder,role\n1-1,Wang,\n1-2,Li,landlord\n")
    capsys.readouterr()
    out_dir = tmp_path / "cards"
    assert batch(keys, households, out_dir) == 2
    err = capsys.readouterr().err
    assert (
        "line 3, column C (role): landlord is none of resident, staff" in err
        and "nothing issued" in err
    )
    assert not out_dir.exists()


def test_batch_output_is_readable_by_its_owner_only(keys, tmp_path, capsys):
    """Before: the cards and passes.csv (every holder's name and household, and each pass's
    payload, which opens the gate) were written with the umask's mode, 0644 under the usual
    022: readable by every user of the office machine. They are made 0600 in a 0700
    folder, as a pulled copy of the log is."""
    import os

    households = tmp_path / "households.csv"
    households.write_text("household,holder\n1-1,Wang\n", encoding="utf-8")
    out_dir = tmp_path / "cards"
    before = os.umask(0o022)  # the usual login umask
    try:
        assert batch(keys, households, out_dir) == 0
    finally:
        os.umask(before)
    assert stat.S_IMODE(out_dir.stat().st_mode) == 0o700
    written = list(out_dir.iterdir())
    assert len(written) == 2
    assert {stat.S_IMODE(p.stat().st_mode) for p in written} == {0o600}


def test_a_card_written_by_issue_is_readable_by_its_owner_only(keys, tmp_path, capsys):
    import os

    card = tmp_path / "card.svg"
    before = os.umask(0o022)
    try:
        code, _, _ = _issue(capsys, keys, "--out", str(card))
    finally:
        os.umask(before)
    assert code == 0 and stat.S_IMODE(card.stat().st_mode) == 0o600


def test_a_card_written_over_a_world_readable_file_is_readable_by_its_owner_only(
    keys, tmp_path, capsys
):
    """Before: a card written over an existing file kept that file's mode (0644: every user
    of the office machine could read the payload that opens the gate)."""
    card = tmp_path / "card.svg"
    card.write_text("yesterday's card")
    card.chmod(0o644)
    code, _, _ = _issue(capsys, keys, "--out", str(card))
    assert code == 0 and stat.S_IMODE(card.stat().st_mode) == 0o600
    assert card.read_text() != "yesterday's card"


def test_keys_new_replaces_a_key_a_power_cut_left_empty(tmp_path, capsys):
    """A power cut while `keys new` wrote the key (before its sync) leaves NAME.key empty and
    no NAME.pub: it never signed a pass. `keys new` said only "already exists", so the issuer
    was stuck with an empty key; it is replaced, and the output says so."""
    (tmp_path / "issuer.key").write_bytes(b"")
    assert main(["keys", "new", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "replaced the empty" in out and "signed nothing" in out, out
    from kiosk.passes import load_private_key, load_public_key

    private = load_private_key(tmp_path / "issuer.key")
    assert load_public_key(tmp_path / "issuer.pub") == private.public_key()


@pytest.mark.parametrize("content", [b"", b"-----BEGIN PRIVATE KEY-----\nAAAA", b"\0" * 119])
def test_keys_new_names_a_damaged_key_whose_public_half_is_out_and_keeps_both(
    tmp_path, capsys, content
):
    """An empty or damaged key beside its public half may have signed passes the trust
    folders hold: it is never replaced. The message says what is wrong and what to do, not
    only "already exists"."""
    (tmp_path / "issuer.key").write_bytes(content)
    (tmp_path / "issuer.pub").write_bytes(b"-----BEGIN PUBLIC KEY-----\nkept\n")
    assert main(["keys", "new", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert ("is empty" if not content else "is damaged") in err, err
    assert "backup" in err and "move both aside" in err, err
    assert (tmp_path / "issuer.key").read_bytes() == content
    assert (tmp_path / "issuer.pub").read_bytes() == b"-----BEGIN PUBLIC KEY-----\nkept\n"


def test_batch_reads_a_households_list_saved_by_a_chinese_windows_excel(keys, tmp_path, capsys):
    """Before: the batch read the CSV as UTF-8 only, so the list a Chinese Windows Excel saves
    (GB18030) was refused ('utf-8' codec can't decode ...) while the list imports read it
    (``kiosk.sheets``). It is read the same way now: UTF-8 (a BOM or none) or GB18030."""
    households = tmp_path / "households.csv"
    households.write_bytes("household,holder\n1-1,王小明\n1-2,李\n".encode("gb18030"))
    capsys.readouterr()
    out_dir = tmp_path / "cards"
    assert batch(keys, households, out_dir) == 0, capsys.readouterr().err
    rows = list(csv.DictReader((out_dir / "passes.csv").open(encoding="utf-8-sig")))
    assert [r["holder"] for r in rows] == ["王小明", "李"]
    assert TrustList.from_dir(keys).verify(rows[0]["payload"]).holder == "王小明"


def test_the_batchs_passes_csv_shows_chinese_names_when_excel_opens_it(keys, tmp_path, capsys):
    """Before: passes.csv was UTF-8 without a BOM, and Excel on a Chinese Windows (the
    office's, that saves the batch's list as GB18030) opened it as GB18030: 王小明 read as
    mojibake. It starts with the BOM, as the guard console's export does."""
    households = tmp_path / "households.csv"
    households.write_text("household,holder\n1-1,王小明\n", encoding="utf-8")
    capsys.readouterr()
    assert batch(keys, households, tmp_path / "cards") == 0, capsys.readouterr().err
    data = (tmp_path / "cards" / "passes.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbfhousehold,holder,")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert [r["holder"] for r in rows] == ["王小明"]


def test_batch_reads_a_list_with_excels_empty_columns_and_rows(keys, tmp_path, capsys):
    """Before: Excel saves the cells a clerk once formatted or cleared as empty columns
    (``household,holder,,``) and empty rows (``,,,``); the batch refused such a list ('the
    header names  more than once', 'line 5: household must not be empty') while the list
    imports read it (``kiosk.sheets``). Empty columns at the end and empty rows are skipped,
    and a line is still named by its line in the file."""
    households = tmp_path / "households.csv"
    households.write_bytes(b"household,holder,,\r\n1-1,Wang,,\r\n,,,\r\n1-2,Li,,\r\n,,,\r\n\r\n")
    capsys.readouterr()
    assert batch(keys, households, tmp_path / "cards") == 0, capsys.readouterr().err
    rows = list(csv.DictReader((tmp_path / "cards" / "passes.csv").open(encoding="utf-8-sig")))
    assert [(r["household"], r["holder"]) for r in rows] == [("1-1", "Wang"), ("1-2", "Li")]
    households.write_bytes(b"household,holder,,\r\n1-1,Wang,,\r\n,,,\r\n1-2,Li,staff,\r\n")
    assert batch(keys, households, tmp_path / "cards2") == 2
    assert "line 4: more fields than the header" in capsys.readouterr().err


def test_batch_reads_a_header_typed_with_capitals_and_spaces(keys, tmp_path, capsys):
    """Before: ``Household, Holder`` (as a clerk types a header) was 'the header needs
    household and holder columns'; the list imports read a header in any case with spaces
    around its names (``kiosk.sheets``), and so does the batch now."""
    households = tmp_path / "households.csv"
    households.write_text("Household, Holder ,ROLE\n1-1,Wang,staff\n", encoding="utf-8")
    capsys.readouterr()
    assert batch(keys, households, tmp_path / "cards") == 0, capsys.readouterr().err
    rows = list(csv.DictReader((tmp_path / "cards" / "passes.csv").open(encoding="utf-8-sig")))
    assert [(r["household"], r["holder"], r["role"]) for r in rows] == [("1-1", "Wang", "staff")]


def test_batch_refuses_a_list_that_is_no_text_naming_the_file(keys, tmp_path, capsys):
    households = tmp_path / "households.csv"
    households.write_bytes(b"household,holder\n1-1,\xff\xfe\x80\n")
    capsys.readouterr()
    out_dir = tmp_path / "cards"
    assert batch(keys, households, out_dir) == 2
    err = capsys.readouterr().err
    assert "neither UTF-8 nor GB18030" in err and "nothing issued" in err
    assert not out_dir.exists()


class _At:
    def __init__(self, when: datetime) -> None:
        self.when = when

    def now(self) -> datetime:
        return self.when

    def synced(self) -> bool:
        return True


def _issued_at(monkeypatch, capsys, keys, when: datetime, *extra: str, tz=SHANGHAI) -> dict:
    """``kiosk pass issue`` run at ``when``; the pass as ``kiosk pass verify`` decodes it."""
    monkeypatch.setattr("checkpoint.cli.pass_cmd.system_clock", lambda **_: _At(when))
    code, out, err = _issue(capsys, keys, *extra, tz=tz)
    assert code == 0, err
    verdict = _verify(capsys, out.strip(), keys, "--at", when.isoformat())[1]
    return verdict


@pytest.mark.parametrize(
    ("issued", "days", "until"),
    [
        # Across the autumn change (Berlin, 25 Oct 2026): 30 days is 721 real hours.
        ("2026-10-20T14:05:00+02:00", "30", "2026-11-19T14:05:00+01:00"),
        # Across the spring change (29 Mar 2026): 10 days is 239 real hours.
        ("2026-03-20T10:00:00+01:00", "10", "2026-03-30T10:00:00+02:00"),
        # No change between: N x 24 hours, as before.
        ("2026-06-01T09:30:00+02:00", "7", "2026-06-08T09:30:00+02:00"),
        # A part of a day is hours on from that clock time.
        ("2026-10-24T08:00:00+02:00", "1.5", "2026-10-25T20:00:00+01:00"),
    ],
)
def test_issue_days_end_at_the_same_local_clock_time_across_a_summer_time_change(
    keys, capsys, monkeypatch, issued, days, until
):
    """Before: --days N was N x 24 real hours, so a card issued at 14:05 for 30 days across
    the autumn change read 'until 19 Nov 13:05' (and the gate refused it an hour before the
    resident expected, across the spring change an hour after). N days now end at the same
    local clock time N days on in the site's zone (--tz); the signed format is unchanged."""
    when = datetime.fromisoformat(issued)
    verdict = _issued_at(monkeypatch, capsys, keys, when, "--days", days, "--tz", "Europe/Berlin")
    assert verdict["valid"] is True
    assert datetime.fromisoformat(verdict["valid_until"]) == datetime.fromisoformat(until)


def test_issue_days_that_end_in_the_hour_the_spring_change_skips_end_an_hour_later(
    keys, capsys, monkeypatch
):
    """02:30 on 29 March 2026 does not exist in Berlin: the pass runs to 03:30 (summer time),
    never shorter than the days asked for."""
    when = datetime.fromisoformat("2026-03-28T02:30:00+01:00")
    verdict = _issued_at(monkeypatch, capsys, keys, when, "--days", "1", "--tz", "Europe/Berlin")
    assert datetime.fromisoformat(verdict["valid_until"]) == datetime.fromisoformat(
        "2026-03-29T03:30:00+02:00"
    )


def test_issue_card_prints_the_clock_time_the_pass_was_issued_at_as_its_end(
    keys, capsys, monkeypatch, tmp_path
):
    card = tmp_path / "card.svg"
    when = datetime.fromisoformat("2026-10-20T14:05:00+02:00")
    _issued_at(
        monkeypatch, capsys, keys, when, "--tz", "Europe/Berlin", "--lang", "en", "--out", str(card)
    )
    text = card.read_text(encoding="utf-8")
    assert "2026-10-20 14:05" in text and "2026-11-19 14:05" in text


@pytest.fixture
def not_a_font(tmp_path, monkeypatch):
    """KIOSK_CJK_FONT naming a file that is no font (a download cut short, a wrong file)."""
    from kiosk import cards

    bad = tmp_path / "simhei.ttf"
    bad.write_bytes(b"<html>404 Not Found</html>")
    monkeypatch.setenv("KIOSK_CJK_FONT", str(bad))
    cards.find_cjk_font.cache_clear()
    yield bad
    cards.find_cjk_font.cache_clear()


def test_a_png_card_that_cannot_be_drawn_is_a_clear_error_not_a_traceback(
    keys, tmp_path, capsys, not_a_font
):
    """Before: `pass issue --out card.png` with a font file that is no font ended in a
    traceback (CardError: cannot load font), and `pass batch` the same, its folder left
    made. Now one line naming the font, exit 1, no payload printed, nothing issued."""
    card = tmp_path / "card.png"
    code, out, err = _issue(capsys, keys, "--out", str(card))
    assert code == 1 and out == "" and not card.exists()
    assert "simhei.ttf" in err and "nothing issued" in err and "Traceback" not in err
    households = tmp_path / "households.csv"
    households.write_text("household,holder\n1-1,Wang\n1-2,Li\n", encoding="utf-8")
    args = ["--key", str(keys / "office.key"), "--csv", str(households)]
    out_dir = tmp_path / "cards"
    assert (
        main(
            ["pass", "batch", "--tz=Asia/Shanghai", *args, "--out", str(out_dir), "--format", "png"]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "line 2" in err and "simhei.ttf" in err and "nothing issued" in err
    assert list(out_dir.iterdir()) == []


@pytest.mark.slow
def test_a_batch_row_whose_name_the_png_font_cannot_draw_leaves_no_card_behind(
    keys, tmp_path, capsys
):
    """The second row's holder has a rare character the CJK font lacks (𪚥, extension B):
    the batch stops at that line, the first row's card is removed again, nothing issued."""
    from kiosk.cards import find_cjk_font

    need(find_cjk_font() is not None, "a CJK font (fonts-noto-cjk)")
    households = tmp_path / "households.csv"
    households.write_text("household,holder\n1-1,Wang\n1-2,张𪚥\n", encoding="utf-8")
    args = ["--key", str(keys / "office.key"), "--csv", str(households)]
    out_dir = tmp_path / "cards"
    capsys.readouterr()
    assert (
        main(
            ["pass", "batch", "--tz=Asia/Shanghai", *args, "--out", str(out_dir), "--format", "png"]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "line 3" in err and "U+2A6A5" in err and "nothing issued" in err
    assert list(out_dir.iterdir()) == []


def _unsynced_machine(monkeypatch, when: datetime) -> None:
    """This machine's kernel does not call its clock synchronised; it reads ``when``."""

    class Unsynced(_At):
        def synced(self) -> bool:
            return False

    def clock(*, assume_synced: bool = False) -> _At:
        return _At(when) if assume_synced else Unsynced(when)

    monkeypatch.setattr("checkpoint.cli.pass_cmd.system_clock", clock)


def test_issue_on_a_clock_not_synchronised_needs_the_time_now_and_starts_the_pass_at_it(
    keys, capsys, monkeypatch
):
    """A Pi after a power cut reads its last shutdown's time (22:10) until NTP answers: a
    six-hour pass issued at 09:10 on that reading was valid 22:10-04:10, expired when handed
    over. Nothing is issued without --start; with it the pass starts then."""
    shutdown = datetime(2026, 3, 1, 22, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
    _unsynced_machine(monkeypatch, shutdown)
    code, out, err = _issue(capsys, keys, "--days", "0.25")
    assert code == 2 and out == ""
    assert "not synchronised" in err and "2026-03-01 22:10" in err and "--start" in err
    code, out, err = _issue(capsys, keys, "--days", "0.25", "--start", "2026-03-02T09:10")
    assert code == 0, err
    verdict = _verify(capsys, out.strip(), keys, "--at", "2026-03-02T12:00:00+08:00")[1]
    assert verdict["valid"] is True
    assert verdict["valid_from"] == "2026-03-02T01:10:00+00:00"
    assert verdict["valid_until"] == "2026-03-02T07:10:00+00:00"
    code, out, err = _issue(capsys, keys, "--start", "nine ten")
    assert code == 2 and "--start 'nine ten'" in err
    code, out, err = _issue(capsys, keys, "--trust-clock")  # the operator checked `date`
    assert code == 0, err
    verdict = _verify(capsys, out.strip(), keys, "--at", shutdown.isoformat())[1]
    assert verdict["valid_from"] == "2026-03-01T14:10:00+00:00"


def test_a_batch_on_a_clock_not_synchronised_issues_nothing_without_the_time_now(
    keys, tmp_path, capsys, monkeypatch
):
    _unsynced_machine(monkeypatch, datetime(2026, 3, 1, 14, 10, tzinfo=UTC))
    households = tmp_path / "households.csv"
    households.write_text("household,holder\n1-101,Wang\n", encoding="utf-8")
    out_dir = tmp_path / "cards"
    assert batch(keys, households, out_dir) == 2
    assert "not synchronised" in capsys.readouterr().err
    assert not out_dir.exists()
    assert batch(keys, households, out_dir, "--start", "2026-03-02T09:10") == 0
    [row] = csv.DictReader(io.StringIO((out_dir / "passes.csv").read_text(encoding="utf-8-sig")))
    assert row["valid_from"] == "2026-03-02T01:10:00+00:00"


def test_a_start_far_from_the_machines_clock_or_already_expired_by_it_is_refused(
    keys, capsys, monkeypatch
):
    """A mistyped month printed passes a month late (or 200 expired ones), 2030 went
    through: a start more than a day from the machine's reading, or a pass already expired
    by it, is refused naming both times, unless --start-anyway (the clock is what is wrong)."""
    _unsynced_machine(monkeypatch, datetime(2026, 3, 1, 22, 10, tzinfo=ZoneInfo("Asia/Shanghai")))
    code, out, err = _issue(capsys, keys, "--start", "2026-04-02T09:10")
    assert code == 2 and out == ""
    assert "2026-04-02 09:10" in err and "2026-03-01 22:10" in err and "--start-anyway" in err
    code, out, err = _issue(capsys, keys, "--start", "2030-03-02T09:10")
    assert code == 2 and "2030-03-02 09:10" in err
    code, out, err = _issue(capsys, keys, "--days", "0.25", "--start", "2026-03-01T10:00")
    assert code == 2 and "expired" in err and "2026-03-01 22:10" in err
    code, out, err = _issue(capsys, keys, "--start", "2026-04-02T09:10", "--start-anyway")
    assert code == 0, err


def test_a_start_typed_in_the_repeated_autumn_hour_is_the_one_nearest_the_clock(
    keys, capsys, monkeypatch
):
    """Berlin, 25 Oct 2026, 02:25 CET by the machine's clock (not synchronised): the 02:30
    typed off a phone is 02:30 CET, not 02:30 CEST (an hour earlier)."""
    _unsynced_machine(monkeypatch, datetime(2026, 10, 25, 1, 25, tzinfo=UTC))
    code, out, err = _issue(capsys, keys, "--days", "1", "--start", "2026-10-25T02:30", tz=BERLIN)
    assert code == 0, err
    verdict = _verify(capsys, out.strip(), keys, "--at", "2026-10-25T02:00:00+00:00")[1]
    assert verdict["valid_from"] == "2026-10-25T01:30:00+00:00"
    code, out, err = _issue(capsys, keys, "--start", "2026-03-29T02:30", tz=BERLIN)
    assert code == 2 and "no such time in Europe/Berlin" in err and "--start" in err


def _site_config(tmp_path, zone: str):
    """A kiosk config whose site is in ``zone``."""
    path = tmp_path / "kiosk.toml"
    path.write_text(f'[site]\nkiosk_id = "gate-1"\ntimezone = "{zone}"\n', encoding="utf-8")
    return path


def test_issue_dates_the_pass_in_the_site_timezone_of_the_kiosks_config(
    keys, capsys, monkeypatch, tmp_path
):
    """Before: `kiosk pass issue` ignored the gate's zone and dated the card in Shanghai's
    (`sudo kiosk-admin` sets $KIOSK_CONFIG, never read): a New York card issued at 07:00 read
    20:00, and --days 1 ended at Shanghai's 20:00 next day, not the gate's 07:00. Now --tz
    defaults to site.timezone of --config / $KIOSK_CONFIG; --tz still wins."""
    monkeypatch.setenv("KIOSK_CONFIG", str(_site_config(tmp_path, "America/New_York")))
    card = tmp_path / "card.svg"
    when = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)  # 07:00 in New York; the spring change next
    verdict = _issued_at(
        monkeypatch, capsys, keys, when, "--days", "1", "--lang", "en", "--out", str(card), tz=()
    )
    assert verdict["valid_until"] == "2026-03-08T11:00:00+00:00"  # 07:00 EDT: 23 hours
    text = card.read_text(encoding="utf-8")
    assert "2026-03-07 07:00" in text and "2026-03-08 07:00" in text
    verdict = _issued_at(monkeypatch, capsys, keys, when, "--days", "1", tz=SHANGHAI)
    assert verdict["valid_until"] == "2026-03-08T12:00:00+00:00"  # --tz over the config
    monkeypatch.delenv("KIOSK_CONFIG")
    config = _site_config(tmp_path, "America/New_York")
    verdict = _issued_at(monkeypatch, capsys, keys, when, "--config", str(config), tz=())
    assert datetime.fromisoformat(verdict["valid_until"]) - when == timedelta(days=30, hours=-1)


def test_issue_and_batch_without_a_zone_are_refused_naming_tz_and_config(
    keys, capsys, monkeypatch, tmp_path
):
    """No --tz and no config: refused (exit 2), never dated in Shanghai's zone unasked."""
    monkeypatch.delenv("KIOSK_CONFIG", raising=False)
    code, out, err = _issue(capsys, keys, "--trust-clock", tz=())
    assert code == 2 and out == ""
    assert "--tz" in err and "--config" in err and "nothing issued" in err
    households = tmp_path / "households.csv"
    households.write_text("household,holder\n1-101,Wang\n", encoding="utf-8")
    out_dir = tmp_path / "cards"
    assert batch(keys, households, out_dir, "--trust-clock", tz=()) == 2
    err = capsys.readouterr().err
    assert "--tz" in err and "--config" in err and not out_dir.exists()


@pytest.mark.parametrize(
    "start",
    [
        "9999-12-31T20:00:00+00:00",
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00",
        "1999-12-31T23:00",
    ],
)
@pytest.mark.parametrize("synced", [True, False])
def test_a_start_at_the_calendars_ends_is_refused_with_exit_2_not_a_traceback(
    keys, capsys, monkeypatch, start, synced
):
    """`kiosk pass issue --start 9999-12-31T20:00:00+00:00 --tz Asia/Shanghai` printed an
    OverflowError's traceback: a start on none of the days a person may type is refused as
    --start's mistake, exit 2, nothing issued."""
    when = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    if synced:
        monkeypatch.setattr("checkpoint.cli.pass_cmd.system_clock", lambda **_: _At(when))
    else:
        _unsynced_machine(monkeypatch, when)
    code, out, err = _issue(capsys, keys, "--start", start, "--start-anyway")
    assert (code, out) == (2, "")
    assert f"--start {start!r}" in err and "2000-01-01 to 2999-12-31" in err
    assert "Traceback" not in err and "nothing issued" in err


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_verify_at_the_calendars_ends_is_refused_with_exit_2(keys, capsys, at):
    payload = _issue(capsys, keys, "--trust-clock")[1].strip()
    code, verdict, err = _verify(capsys, payload, keys, "--at", at)
    assert (code, verdict) == (2, None)
    assert f"--at {at!r}" in err and "2000-01-01 to 2999-12-31" in err
