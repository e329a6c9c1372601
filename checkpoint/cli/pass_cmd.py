"""``kiosk keys new`` and ``kiosk pass issue|verify|batch``.

Exit codes (docs/cli.md): 0 ok / valid, 1 run-time failure / invalid pass, 2 bad input
(usage, an unreadable key or trust folder, a malformed payload).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
import unicodedata
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drivers.clocksync import system_clock
from kiosk.files import UnreadableFile, read_bounded
from kiosk.pass_format import FLAGS, MAX_VALID_HOURS, QR_CAPACITY_CHARS, ROLES
from kiosk.typed import typed

from .errors import CliError, Interrupted, UsageError, made_in, refuse_root_over, write_file
from .parsers import Verbs, add_group, add_verb, path_of, stdin
from .personal_args import from_stdin
from .store_args import INSTALLED_CONFIG, add_config_arg, held_for_writing_in, load_verb_config

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.cards import Fmt
    from kiosk.headers import Column
    from kiosk.passes import Pass

MAX_DAYS = MAX_VALID_HOURS // 24
#: ``pass issue``'s options that name a resident: ``-`` reads them from stdin, in this order.
_PERSONAL = ("household", "holder")
#: The households CSV is read no further than this (as the list imports: 5 MB).
MAX_CSV_BYTES = 5 * 1024 * 1024


def register(sub: Verbs) -> None:
    add_group(sub, "keys", _keys)
    add_group(sub, "pass", _passes)


def _keys(actions: Verbs) -> None:
    """make the key pairs passes are signed with

    Manage Ed25519 issuer keys. The .pub files form a kiosk's trust list.

    Examples:
      kiosk keys new --dir keys --name office-2026"""
    new = add_verb(actions, "new", keys_new)
    new.add_argument("--dir", required=True, type=path_of, help="folder for the key files")
    new.add_argument("--name", default="issuer", help="key name (default: issuer)")


def _passes(actions: Verbs) -> None:
    """issue, verify and batch-issue signed passes

    Signed passes: issue one (optionally with a printable card), verify a payload against a
    trust folder, or issue a batch from a CSV of households.

    Examples:
      kiosk pass issue --key keys/office-2026.key --tz Asia/Shanghai --holder Wang --out card.png
      kiosk pass batch --key keys/office-2026.key --tz Asia/Shanghai --csv households.csv --out c/
      sudo kiosk-admin pass issue --key /var/lib/kiosk/keys/issuer.key   # the gate's zone"""
    issue = add_verb(actions, "issue", pass_issue)
    _issue_args(issue)
    issue.add_argument(
        "--household", help="household code, e.g. 12-3-0502; - reads it from stdin (asked for)"
    )
    issue.add_argument(
        "--holder",
        help="holder's name or initial; - reads it from stdin, a line: never in the shell's"
        " history, ps or sudo's journal (left out at a terminal: asked for)",
    )
    issue.add_argument("--role", default="resident", choices=ROLES, help="default: resident")
    issue.add_argument(
        "--flag", action="append", default=[], choices=FLAGS, help="pass flag (repeatable)"
    )
    issue.add_argument("--out", type=path_of, help="also write a printable card (.svg or .png)")

    verify = add_verb(actions, "verify", pass_verify)
    verify.add_argument("payload", metavar="PAYLOAD", help="the QR text; '-' reads stdin")
    verify.add_argument("--trust", required=True, type=path_of, help="folder of trusted *.pub")
    verify.add_argument("--at", help="check validity at this ISO time instead of now")

    batch = add_verb(actions, "batch", pass_batch)
    _issue_args(batch)
    batch.add_argument("--csv", required=True, type=path_of, help="households CSV")
    batch.add_argument("--out", required=True, type=path_of, help="output folder")
    batch.add_argument("--format", choices=("svg", "png"), default="svg", help="card format")


def _issue_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", required=True, type=path_of, help="issuer private key (.key)")
    p.add_argument("--days", type=float, default=30, help=f"validity in days (max {MAX_DAYS})")
    p.add_argument("--lang", choices=("both", "zh-CN", "en"), default="both", help="card language")
    p.add_argument(
        "--tz",
        help="the site's time zone: the card's dates, --days and a --start without an offset"
        " (default: site.timezone of --config; with neither, refused)",
    )
    add_config_arg(
        p,
        "kiosk config whose site.timezone the passes are dated in (default: $KIOSK_CONFIG,"
        " which kiosk-admin sets to the daemon's); --tz goes before it",
    )
    p.add_argument("--site-name", help="compound name printed on the card")
    p.add_argument(
        "--start",
        help="the time now (ISO, in --tz if without an offset), read off a phone or a watch:"
        " needed while this machine's clock is not synchronised",
    )
    p.add_argument(
        "--trust-clock",
        action="store_true",
        help="sign the clock's time although it is not synchronised (checked by hand)",
    )
    p.add_argument(
        "--start-anyway",
        action="store_true",
        help="a --start more than a day from this machine's clock, or one by which the pass"
        " has expired already: the clock is what is wrong (checked by hand)",
    )


# --------------------------------------------------------------------------- verbs


def keys_new(args: argparse.Namespace) -> int:
    """make a key pair to sign passes with (.key kept secret, .pub for the gates)

    Write DIR/NAME.key (private, mode 0600) and DIR/NAME.pub (copy the .pub into each
    kiosk's trust folder). Never overwrites an existing key; a key a power cut left empty
    before its public half was written (it signed nothing) is replaced.

    Examples:
      kiosk keys new --dir keys --name office-2026   # keys/office-2026.key and .pub
      sudo install -o kiosk -m 0644 keys/office-2026.pub /var/lib/kiosk/trust/   # on each gate"""
    from kiosk.passes import KeyFileError, empty_key_left_by_a_cut, new_key_pair

    folder = Path(args.dir)
    refuse_root_over(made_in(folder.absolute()), "keys new")
    try:
        with held_for_writing_in(folder):  # DIR may be a data dir's keys/: never under a restore
            cut = empty_key_left_by_a_cut(folder / f"{args.name}.key", folder / f"{args.name}.pub")
            key_path, pub_path = new_key_pair(args.dir, args.name)
    except KeyFileError as exc:
        raise UsageError(str(exc)) from None
    if cut:
        print(f"replaced the empty {key_path} (a power cut while it was made; it signed nothing)")
    print(f"private key: {key_path} (mode 0600; keep it off the kiosk unless it issues)")
    print(f"public key:  {pub_path} (copy into each kiosk's trust folder)")
    return 0


def _days(value: float) -> float:
    if not 1 / 24 <= value <= MAX_DAYS:
        raise UsageError(f"--days must be between 1/24 and {MAX_DAYS}")
    return value


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: 'Asia', a folder
        raise UsageError(f"unknown timezone {name!r}") from None


def _site_zone(args: argparse.Namespace) -> ZoneInfo:
    """The zone the passes are dated in: ``--tz``, else site.timezone of the kiosk config
    (``--config``, ``$KIOSK_CONFIG``: ``store_args``, as the other verbs find it). With
    neither, refused: a card dated in another zone than the gate's is read wrong by the
    resident and refused by the gate hours early (it was Shanghai's, unasked)."""
    if args.tz is not None:
        return _zone(args.tz)
    if args.config is None:
        raise UsageError(
            "in which time zone? give --tz ZONE (the site's, e.g. Asia/Shanghai), or the"
            " gate's config with --config FILE or $KIOSK_CONFIG (the daemon's is"
            f" {INSTALLED_CONFIG}, which `sudo kiosk-admin` uses): its site.timezone;"
            " nothing issued"
        )
    return _zone(load_verb_config(args.config).site.timezone)


def _typed(option: str, text: str, outcome: str) -> datetime:
    """``option``'s time (``kiosk.days.typed_instant``: on a day from ``FIRST_DAY`` to
    ``LAST_DAY``, the console's too); else ``UsageError`` naming it, exit 2 (one at the
    calendar's ends printed an OverflowError's traceback)."""
    from kiosk.days import FIRST_DAY, LAST_DAY, typed_instant

    try:
        return typed_instant(text)
    except ValueError:
        raise UsageError(
            f"{option} {text[:48]!r}: expected a time such as 2026-03-02T09:10, on a day from"
            f" {FIRST_DAY} to {LAST_DAY}; {outcome}"
        ) from None


def _start(args: argparse.Namespace, zone: ZoneInfo, days: float) -> datetime:
    """When the passes start (``kiosk.passes.pass_start``, the console's rule): the clock's
    time when synchronised (or ``--trust-clock``), else ``--start``, required (one without
    an offset in ``zone``: in the hour the autumn change repeats, the occurrence nearest the
    clock's reading; in the one the spring change skips, refused); one more than a day from
    the clock, or by which a pass of ``days`` has expired, only with ``--start-anyway``."""
    from kiosk.passes import PassStartError, pass_start

    start = None if args.start is None else _typed("--start", args.start, "nothing issued")
    try:  # one without an offset is a time of the site's clock: pass_start reads it in zone
        clock = system_clock(assume_synced=args.trust_clock)
        return pass_start(clock, start, zone, days=days, anyway=args.start_anyway)
    except PassStartError as exc:
        if exc.code == "skipped":
            raise UsageError(
                f"{exc}; check --start (the time now, in --tz); nothing issued"
            ) from None
        if exc.code in ("far", "expired"):
            raise UsageError(
                f"{exc}; check --start (the time now, in --tz), or add --start-anyway if"
                " this machine's clock is what is wrong; nothing issued"
            ) from None
        raise UsageError(
            f"{exc}; give --start (the time now, in --tz), or --trust-clock after checking"
            " `date` by hand; nothing issued"
        ) from None


def _key(path: Path) -> Ed25519PrivateKey:
    from kiosk.passes import KeyFileError, load_private_key

    try:
        return load_private_key(path)
    except KeyFileError as exc:
        raise UsageError(str(exc)) from None


def _card(pass_: Pass, payload: str, fmt: Fmt, args: argparse.Namespace, zone: ZoneInfo) -> bytes:
    from kiosk.cards import CardFallbackWarning, render_card

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CardFallbackWarning)
        data = render_card(pass_, payload, fmt, args.lang, site_name=args.site_name, tz=zone)
    for w in caught:
        if issubclass(w.category, CardFallbackWarning):
            print(f"kiosk pass: warning: {w.message}", file=sys.stderr)
    return data


def pass_issue(args: argparse.Namespace) -> int:
    """issue a signed pass; prints the QR payload on one line

    Issue a signed pass valid from now. Prints the payload (one line). The household and
    the holder given as - are read from stdin, a line each (household first), and asked for
    at a terminal when left out: as arguments they stay in the shell's history, ps and
    sudo's journal. On a clock not synchronised, from --start (the time now), or
    --trust-clock.

    Examples:
      kiosk pass issue --key keys/office-2026.key --tz Asia/Shanghai --out card.png   # asks
      kiosk pass issue --key keys/office-2026.key --config kiosk.toml --holder -   # a line
      sudo kiosk-admin pass issue --key /var/lib/kiosk/keys/issuer.key --household TEST --holder T
    """
    from kiosk.cards import CardError, card_format_for
    from kiosk.passes import issue_pass

    days = _days(args.days)
    zone = _site_zone(args)
    now = _start(args, zone, days)  # refused before the holder is asked for, not after
    from_stdin(args, _PERSONAL, ask=_PERSONAL)
    fmt = None
    if args.out is not None:
        try:
            fmt = card_format_for(args.out)
        except CardError as exc:
            raise UsageError(str(exc)) from None
    key = _key(args.key)
    try:
        payload, pass_ = issue_pass(
            key,
            args.household,
            args.holder,
            args.role,
            days,
            now,
            args.flag,
            tz=zone,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if fmt is not None:
        try:
            card = _card(pass_, payload, fmt, args, zone)
        except CardError as exc:  # a font that is none: said, no payload printed
            raise CliError(f"{exc}; nothing issued") from None
        write_file(args.out, card)
    print(payload)
    return 0


def pass_verify(args: argparse.Namespace) -> int:
    """verify a payload against a trust folder; prints JSON

    Verify a pass payload with every *.pub in the trust folder and check its validity
    window. Prints {valid, reasons, ...decoded fields} as JSON. Exit 0 valid, 1 invalid,
    2 unusable input (malformed payload, bad trust folder).

    Examples:
      sudo kiosk-admin pass verify - --trust /var/lib/kiosk/trust   # paste the QR text, Enter
      kiosk pass verify - --trust keys --at 2026-03-05T08:00:00+08:00"""
    from kiosk.passes import PassError, TrustList, TrustListError

    # A longer line is cut after one character too many: still refused as too long.
    limit = QR_CAPACITY_CHARS + 3
    payload = stdin().readline(limit).rstrip("\r\n") if args.payload == "-" else args.payload
    now = system_clock().now()
    if args.at:
        now = _typed("--at", args.at, "nothing verified")
        if now.tzinfo is None:
            raise UsageError("--at needs a UTC offset, e.g. 2026-03-02T08:30:00+08:00")
    try:
        trust = TrustList.from_dir(args.trust)
    except TrustListError as exc:
        raise UsageError(str(exc)) from None
    if not len(trust):
        raise UsageError(f"no *.pub keys in {args.trust}")
    try:
        pass_ = trust.verify(payload)
    except PassError as exc:
        print(json.dumps({"valid": False, "reasons": [exc.reason], "detail": exc.detail}))
        return 2 if exc.reason == "pass_malformed" else 1
    reasons = []
    if now < pass_.valid_from:
        reasons.append("pass_not_yet_valid")
    elif now >= pass_.valid_until:
        reasons.append("pass_expired")
    verdict = {
        "valid": not reasons,
        "reasons": reasons or ["ok"],
        **pass_.fields(),
        "issuer": trust.issuer_of(pass_.key_id),
        "checked_at": now.isoformat(),
    }
    print(json.dumps(verdict, ensure_ascii=False))
    return 0 if not reasons else 1


#: The columns of ``kiosk pass batch``'s households CSV.
BATCH_COLUMNS = ("household", "holder", "role", "days", "flags")


def _batch_records(path: Path) -> tuple[list[Column], list[tuple[int, dict[str, str], bool]]]:
    """The households CSV's header and its rows: line number, fields, whether it fills more
    fields than the header names. As the list imports read a sheet (``kiosk.sheets``): the
    header's names in any case, spaces around them ignored; Excel's empty columns after the
    last named one and its empty rows (cells once formatted or cleared: ``,,,``) skipped, and
    an office sheet's title above the header and its footer (合计, 制表人) below the table
    (``kiosk.sheets.find_table``): a pass is printed for a holder, never for a total. The
    header's columns as a clerk names them (``户号``, ``姓名``: ``kiosk.headers``); a column
    read past (``手机号``) is left out of the rows, and out of the columns returned (each with
    its header as written and its letter, for the errors)."""
    from kiosk import sheets
    from kiosk.community import CommunityError
    from kiosk.headers import HEADERS, match_header

    try:
        text = sheets.decode_text(read_bounded(path, MAX_CSV_BYTES))
    except (UnreadableFile, CommunityError) as exc:
        raise UsageError(f"{path}: {exc}; nothing issued") from None
    reader = sheets.csv_rows(text)
    lines: list[tuple[int, list[str]]] = []
    try:
        for values in reader:
            if any(v.strip() for v in values):
                lines.append((reader.line_num, values))
    except csv.Error as exc:  # e.g. a field over the csv module's limit: not a households CSV
        line = reader.line_num  # the bad record's lines are read when it is refused
        raise UsageError(f"{path}: line {line}: {exc}; nothing issued") from None
    if not lines:
        return [], []
    try:  # a title above the header, 合计 and 制表人 below the table: no pass for them
        head, body, layout = sheets.find_table(lines, HEADERS["pass_batch"])
        cells = [name.strip() for name in head]  # "Household, Holder", "户号, 姓名"
        while cells and not cells[-1]:
            cells.pop()
        named = match_header(layout.header_line, cells, HEADERS["pass_batch"])
    except CommunityError as exc:
        raise UsageError(f"{path}: {exc}; nothing issued") from None
    columns = [column.field for column in named]  # None: read past (手机号), not kept
    records = [
        (
            line,
            {c: v for c, v in zip(columns, values, strict=False) if c is not None},
            any(v.strip() for v in values[len(columns) :]),
        )
        for line, values in body
    ]
    return [c for c in named if c.field is not None], records


def _batch_row(
    line: int, raw: dict[str, str], extra: bool, named: list[Column], default_days: float
) -> dict[str, Any]:
    """A households CSV's row as ``issue_pass`` takes it. ``CommunityError`` naming its line
    and its column as headed for a value refused (a code Excel changed, a role, days or a
    flag that is none), ``ValueError`` for the row's."""
    from kiosk import sheets
    from kiosk.headers import read_value, refuse_at
    from kiosk.passes import check_fields

    for column in named:  # 1.10101E+17: Excel's number for a long code, not the code
        if column.field in ("household", "holder"):
            sheets.check_code(line, column, raw.get(column.field) or "")
    if extra:
        raise ValueError("more fields than the header")
    household = typed(raw.get("household") or "")  # as issue_pass will put it on the pass
    holder = typed(raw.get("holder") or "")
    check_fields(household, holder)

    def value(field: str, read: Callable[[str], Any]) -> Any:
        try:
            return read(raw.get(field) or "")
        except ValueError as exc:
            refuse_at(line, field, named, str(exc))

    # 居民 is resident, 物业 is staff, 7天 is 7 (kiosk.headers.read_value)
    role = value("role", lambda text: read_value("role", text).strip() or "resident")
    days = value("days", lambda text: _batch_days(read_value("days", text), default_days))
    flags = value("flags", _flags)
    return {
        "line": line,
        "household": household,
        "holder": holder,
        "role": role,
        "days": days,
        "flags": flags,
    }


def _batch_days(text: str, default_days: float) -> float:
    days = float(text) if text.strip() else default_days
    if not 1 / 24 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1/24 and {MAX_DAYS}")
    return days


def _flags(text: str) -> list[str]:
    flags = [f.strip() for f in unicodedata.normalize("NFKC", text).split(";") if f.strip()]
    if bad := [f for f in flags if f not in FLAGS]:
        raise ValueError(f"unknown flag {bad[0]!r}")
    return flags


def _batch_rows(path: Path, default_days: float) -> list[dict[str, Any]]:
    from kiosk.community import CommunityError

    named, records = _batch_records(path)
    columns = [str(c.field) for c in named]
    header = set(columns)
    if not {"household", "holder"} <= header:
        raise UsageError(f"{path}: the header needs household and holder columns")
    if len(header) != len(columns):  # DictReader would keep the last of the two
        twice = sorted({name for name in columns if columns.count(name) > 1})
        raise UsageError(f"{path}: the header names {', '.join(twice)} more than once")
    unknown = header - set(BATCH_COLUMNS)
    if unknown:
        raise UsageError(f"{path}: unknown columns {', '.join(sorted(unknown))}")
    rows, errors = [], []
    for line, raw, extra in records:
        try:
            rows.append(_batch_row(line, raw, extra, named, default_days))
        except CommunityError as exc:  # names its column as headed: line 3, column C (身份)
            errors.append(str(exc))
        except ValueError as exc:  # of the row: household and holder, more fields
            errors.append(f"line {line}: {exc}")
    if errors:
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise UsageError(f"{path}: " + "; ".join(errors[:3]) + more + "; nothing issued")
    if not rows:
        raise UsageError(f"{path}: no rows")
    return rows


def pass_batch(args: argparse.Namespace) -> int:
    """issue passes for every row of a households CSV

    CSV columns: household, holder, and optionally role, days, flags (';'-separated); UTF-8
    or GB18030 (as a Chinese Windows Excel saves it), as the list imports read. Every row is
    checked first; one bad row and nothing is written. Writes one card per pass (named by
    pass id) and passes.csv with every payload (UTF-8 with a BOM, as Excel reads it), into a
    new folder readable by its owner only (or an empty one, as it is).

    Examples:
      kiosk pass batch --key keys/office-2026.key --tz Asia/Shanghai --csv households.csv --out c/
      kiosk pass batch --key k.key --config kiosk.toml --csv h.csv --format png --out c/"""
    from kiosk.cards import CardError
    from kiosk.passes import issue_pass
    from kiosk.sheets import write_csv

    default_days = _days(args.days)
    zone = _site_zone(args)
    rows = _batch_rows(args.csv, default_days)
    key = _key(args.key)
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is not a folder; batch output goes into a new or empty folder")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty; batch output goes into a new or empty folder")
    now = _start(args, zone, min(float(row["days"]) for row in rows))  # any one expired
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)  # names and payloads: owner only
    except OSError as exc:
        raise CliError(f"cannot create {out}: {exc.strerror or exc}") from None
    manifest: list[list[str]] = [
        ["household", "holder", "role", "pass_id", "valid_from", "valid_until", "payload", "card"]
    ]
    written: list[Path] = []
    try:
        for row in rows:
            payload, pass_ = issue_pass(
                key,
                row["household"],
                row["holder"],
                row["role"],
                row["days"],
                now,
                row["flags"],
                tz=zone,
            )
            card = f"{pass_.pass_id}.{args.format}"
            try:
                drawn = _card(pass_, payload, args.format, args, zone)
            except CardError as exc:  # the cards before it go too: nothing issued
                _undo(written)
                raise CliError(f"line {row['line']}: {exc}; nothing issued") from None
            written.append(out / card)
            _write_or_undo(written, drawn)
            manifest.append(
                [
                    pass_.household,
                    pass_.holder,
                    pass_.role,
                    pass_.pass_id,
                    pass_.valid_from.isoformat(),
                    pass_.valid_until.isoformat(),
                    payload,
                    card,
                ]
            )
        written.append(out / "passes.csv")
        # UTF-8 with a BOM: Excel on a Chinese Windows reads a CSV without one as GB18030.
        _write_or_undo(written, write_csv(manifest).encode("utf-8-sig"))
    except KeyboardInterrupt:  # Ctrl-C half-way: as a failed write, no card left behind
        _undo(written)
        raise Interrupted("interrupted: nothing issued (the batch's cards were removed)") from None
    print(f"issued {len(rows)} passes into {out} (see passes.csv)")
    return 0


def _write_or_undo(written: list[Path], data: bytes) -> None:
    """Write the last of ``written``; if it fails (a full card), remove every card of the
    batch again: a card without its line in passes.csv is a pass the office has no record
    of, and the folder must be empty for the batch to run again."""
    try:
        write_file(written[-1], data)
    except CliError as exc:
        _undo(written)
        raise CliError(f"{exc}; nothing issued (the batch's cards were removed)") from None


def _undo(written: list[Path]) -> None:
    for path in written:
        with contextlib.suppress(OSError):
            path.unlink()
