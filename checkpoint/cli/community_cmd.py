"""``kiosk report``, ``kiosk lists import``, ``kiosk vehicles import``, ``kiosk compound import``.

They work on the kiosk's own database (``--db`` / ``--config`` / ``--data``, as ``kiosk
purge``), through ``EventLog`` like the daemon, so they are safe beside it. An import first
prints what it would change (JSON on stdout) and changes nothing; ``--apply`` applies it and
the change is audited with ``--actor`` (default ``cli``). Personal data is never printed: a
plan lists counts and the keys it touches are printed only with ``--show-keys``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import zipfile
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.files import UnreadableFile, read_bounded

from .errors import CliError, Interrupted, UsageError, write_file
from .parsers import Verbs, add_group, add_verb, path_arg
from .store_args import (
    INSTALLED_CONFIG,
    add_store_args,
    hours_unknown,
    load_args_config,
    open_store,
    site_config,
)

if TYPE_CHECKING:
    from sqlite_utils.migrations import Migrations

    from kiosk.compound import ImportPlan
    from kiosk.listimport import ListPlan
    from kiosk.store import EventLog
    from kiosk.vehicles import VehiclePlan

_MAX_FILE = 5 * 1024 * 1024


def register(sub: Verbs) -> None:
    rep = add_verb(sub, "report", report_run)
    rep.add_argument("--day", required=True, metavar="YYYY-MM-DD", help="local day")
    rep.add_argument(
        "--xlsx", metavar="FILE", type=path_arg, help="write the report as an .xlsx workbook"
    )
    rep.add_argument("--csv", metavar="FILE", type=path_arg, help="write the report as CSV")
    add_lang_arg(rep)
    add_store_args(rep)

    add_group(sub, "lists", _lists, dest="lists_verb")
    add_group(sub, "vehicles", _vehicles, dest="vehicles_verb")
    add_group(sub, "compound", _compound, dest="compound_verb")


def _lists(actions: Verbs) -> None:
    """import revocations, quarantine or households from CSV or .xlsx

    Import revocations, quarantine or households from a CSV or .xlsx file, told by its
    columns (or --list): revocations pass_id[,reason]; quarantine
    household,from,until[,holder,note]; households household[,residents,observation_until,note].

    Examples:
      sudo kiosk-admin lists import /tmp/quarantine.xlsx            # shows the changes
      sudo kiosk-admin lists import /tmp/quarantine.xlsx --apply --actor mona"""
    _import_action(actions, "lists")


def _vehicles(actions: Verbs) -> None:
    """import the resident-vehicle list from CSV or .xlsx

    Import the resident-vehicle list from a CSV or .xlsx file (columns
    plate,household[,note]).

    Examples:
      sudo kiosk-admin vehicles import /tmp/vehicles.csv
      sudo kiosk-admin vehicles import /tmp/vehicles.csv --apply"""
    _import_action(actions, "vehicles")


def _compound(actions: Verbs) -> None:
    """import the compound map from CSV or .xlsx

    Import the compound map from a CSV or .xlsx file (columns
    building,unit,floor,household[,residents]).

    Examples:
      sudo kiosk-admin compound import /tmp/map.xlsx
      sudo kiosk-admin compound import /tmp/map.xlsx --apply"""
    _import_action(actions, "compound")


#: What ``kiosk KIND import --help`` shows (one function imports the three kinds).
_IMPORT_EXAMPLES = {
    "lists": (
        "sudo kiosk-admin lists import /tmp/revoked.csv                # shows the changes",
        "sudo kiosk-admin lists import /tmp/quarantine.xlsx --list quarantine --apply --actor mona",
    ),
    "vehicles": (
        "sudo kiosk-admin vehicles import /tmp/vehicles.csv --show-keys",
        "sudo kiosk-admin vehicles import /tmp/vehicles.csv --apply --actor mona",
    ),
    "compound": (
        "sudo kiosk-admin compound import /tmp/map.xlsx",
        "sudo kiosk-admin compound import /tmp/map.xlsx --apply --actor mona",
    ),
}


def _import_action(actions: Verbs, kind: str) -> None:
    imp = add_verb(actions, "import", import_run, examples=_IMPORT_EXAMPLES[kind])
    imp.add_argument("file", metavar="FILE", type=path_arg, help="a .csv or .xlsx file")
    if kind == "lists":
        imp.add_argument(
            "--list",
            choices=("revocations", "quarantine", "households"),
            help="which list (default: told by the columns)",
        )
    imp.add_argument("--apply", action="store_true", help="apply the changes (audited)")
    imp.add_argument("--actor", default="cli", help="who is importing (for the audit)")
    imp.add_argument("--show-keys", action="store_true", help="list the keys changed")
    add_store_args(imp)
    imp.set_defaults(kind=kind)


def _sets() -> list[Migrations]:
    """The migration sets a community verb needs of the kiosk's log."""
    from kiosk import lists, stats, tokens
    from kiosk.ledgers import MIGRATIONS

    return [tokens.MIGRATIONS, stats.MIGRATIONS, lists.MIGRATIONS, *MIGRATIONS]


def report_day(text: str) -> date:
    """``--day`` of a daily report: ``YYYY-MM-DD`` from ``kiosk.days.FIRST_DAY`` to
    ``LAST_DAY`` (``kiosk.days.typed_day``, as the console and the API take it)."""
    from kiosk.days import FIRST_DAY, LAST_DAY, OutsideDays, typed_day

    try:
        return typed_day(text)
    except OutsideDays:
        raise UsageError(f"--day {text}: reports cover {FIRST_DAY} to {LAST_DAY}") from None
    except ValueError:
        raise UsageError(f"--day {text!r} is not a date (YYYY-MM-DD)") from None


def refuse_unbegun(day: date, today: date, zone: str, events: Any) -> None:
    """``kiosk.days.refuse_unbegun`` (a day not begun, holding nothing) as a ``UsageError``
    naming ``--day``."""
    from kiosk import days

    try:
        days.refuse_unbegun(day, today, zone, events)
    except days.DayNotBegun as exc:
        raise UsageError(f"--day {day}: {exc}") from None


def report_target(path: str, suffix: str) -> Path:
    """Where a report in the format of ``suffix`` (.xlsx, .csv) may go: a file name with that
    suffix, in an existing folder, and not a file holding something else (a config, the list
    just imported); an earlier report of the same format is replaced (a daily job's file)."""
    target = Path(path)
    if target.suffix.lower() != suffix:
        raise UsageError(f"--{suffix[1:]} {path}: the file name must end in {suffix}")
    if not target.parent.is_dir():
        raise UsageError(f"no such directory: {target.parent}")
    if target.exists() and not _is_report(target, suffix):
        raise UsageError(f"{path} exists and is not a report: give a new file name")
    return target


def _report_marks() -> tuple[set[bytes], list[bytes]]:
    """What an earlier report begins with in each language (``ui.report_words``): its CSV's
    header line, and its workbook's first sheet as ``xl/workbook.xml`` names it."""
    from kiosk.categories import worded
    from ui.report_words import FILE_LANGS, words

    header = ["category", "item", "value"]
    heads, sheets = {",".join(header).encode()}, [b'name="daily report"']
    for lang in FILE_LANGS:
        said = words(lang)
        heads.add(",".join(worded([header], said)[0]).encode())
        sheets.append(f'name="{said("sheet.daily report")}"'.encode())
    return heads, sheets


def _is_report(path: Path, suffix: str) -> bool:
    heads, sheets = _report_marks()
    try:
        if suffix == ".csv":
            with path.open("rb") as f:
                first = f.readline(128).removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")
            return first in heads
        with zipfile.ZipFile(path) as book:
            info = book.getinfo("xl/workbook.xml")
            listed = book.read(info) if info.file_size < 1 << 20 else b""
            return any(sheet in listed for sheet in sheets)
    except (OSError, KeyError, zipfile.BadZipFile):
        return False


def add_lang_arg(parser: argparse.ArgumentParser) -> None:
    """``--lang``: the language of a report's .xlsx and CSV (``ui.report_words``)."""
    parser.add_argument(
        "--lang",
        choices=("en", "zh-CN"),
        default="en",
        help="the language of the .xlsx/CSV labels; en: the files as before, zh-CN: Chinese"
        " headers, sheet names and words beside the codes",
    )


#: What ``kiosk report`` says when the log's daemon did not record the staffed hours.
HOURS_UNKNOWN = (
    "kiosk report: {path}: its daemon recorded no staffed hours (a release before 2026-12-07),"
    " so the day is not split by them (staffing.hours: unknown); name the kiosk's config with"
    f" --config FILE or $KIOSK_CONFIG (the daemon's is {INSTALLED_CONFIG})"
)


def report_run(args: argparse.Namespace) -> int:
    """the daily report in the office's categories (JSON, .xlsx, CSV)

    The gate's daily report for a local day: decisions and reasons plus the office's
    categories (people in/out, fevers, returnees, quarantined households, registrations,
    vehicles, service requests). Prints JSON unless --xlsx/--csv.

    Examples:
      sudo kiosk-admin report --day 2026-03-02
      sudo kiosk-admin report --day 2026-03-02 --xlsx /tmp/report-2026-03-02.xlsx"""
    from kiosk.days import as_zone
    from kiosk.stats import STAFFING_UNKNOWN, daily_report, stamp_as_of

    day = report_day(args.day)
    targets = {
        f: report_target(p, "." + f) for f, p in (("xlsx", args.xlsx), ("csv", args.csv)) if p
    }
    config = load_args_config(args)
    store = open_store(args, config, _sets(), reads_only="report")
    try:
        config, unknown = site_config(args, config, store), hours_unknown(args, store)
        policy = config.policy
        report = daily_report(
            store.reader(),
            day,
            config.site.timezone,
            policy.quota,
            hours=policy.hours,
            hours_known=not unknown,  # never "staffed round the clock" for hours unrecorded
        )
        zone, now = as_zone(config.site.timezone), store.clock.now()
        refuse_unbegun(day, now.astimezone(zone).date(), zone.key, report["events"])
    finally:
        store.close()
    if report["staffing"] == STAFFING_UNKNOWN:  # not frozen with the day either
        print(HOURS_UNKNOWN.format(path=store.path), file=sys.stderr)
    report.setdefault("day", day.isoformat())  # a report frozen by an older release
    report.setdefault("timezone", zone.key)
    write_report(targets, stamp_as_of(report, now), args.lang)
    if not targets:
        print(json.dumps(report, ensure_ascii=False))
    return 0


def write_report(targets: dict[str, Path], report: dict[str, Any], lang: str = "en") -> None:
    """The gate's report into ``targets`` (``xlsx``, ``csv``) as the office files it
    (``kiosk.stats.report_file``: with the row saying when it was made), labelled in
    ``lang`` (``ui.report_words``)."""
    from kiosk.stats import report_file
    from ui.report_words import file_words

    words = file_words(lang)
    if "xlsx" in targets:
        write_file(targets["xlsx"], report_file(report, "xlsx", words))
    if "csv" in targets:
        write_file(targets["csv"], report_file(report, "csv", words))


def _read(path: str) -> bytes:
    try:
        return read_bounded(path, _MAX_FILE)
    except UnreadableFile as exc:
        raise UsageError(f"{path}: {exc}") from None


def _plan(
    kind: str, data: bytes, name: str, store: EventLog, args: argparse.Namespace
) -> tuple[ListPlan | ImportPlan | VehiclePlan, Callable[[str], object]]:
    """The checked import and how to apply it (given the actor)."""
    from kiosk.compound import CompoundMap
    from kiosk.listimport import apply_list_import, plan_list_import
    from kiosk.lists import ListStore
    from kiosk.vehicles import VehicleList

    if kind == "lists":
        lists = ListStore(store, store.clock)
        list_plan = plan_list_import(data, name, lists.load(), args.list)
        return list_plan, lambda actor: apply_list_import(list_plan, lists, actor)
    if kind == "compound":
        compound = CompoundMap(store, store.clock)
        map_plan = compound.plan_import(data, name)
        return map_plan, lambda actor: compound.apply(map_plan, actor)
    vehicles = VehicleList(store, store.clock)
    vehicle_plan = vehicles.plan_import(data, name)
    return vehicle_plan, lambda actor: vehicles.apply(vehicle_plan, actor)


def _off_map(plan: ListPlan | ImportPlan | VehiclePlan, store: EventLog) -> list[str]:
    """The households a quarantine sheet's rows to apply name that the compound map (when one
    is loaded) lacks, as the console asks about one before it is quarantined."""
    from kiosk.compound import CompoundMap
    from kiosk.listimport import ListPlan

    if not isinstance(plan, ListPlan) or plan.kind != "quarantine":
        return []
    return CompoundMap(store, store.clock).lacking(str(r["household"]) for r in plan.rows)


@contextlib.contextmanager
def _ctrl_c_after(caught: list[int]) -> Iterator[None]:
    """Ctrl-C while an import is applied is noted in ``caught`` and acted on after: the
    transaction runs on the log's writer thread, so Ctrl-C ended the verb (exit 130, silent)
    while the import was committed all the same. Outside the main thread, nothing changes."""
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    except ValueError:  # not the main thread: signals are not ours to take
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def import_run(args: argparse.Namespace) -> int:
    """show what the file changes; --apply to apply it

    Check every row and print the changes (added, changed, removed, unchanged) as JSON;
    nothing is written without --apply. Exit 2 on a bad file."""
    from kiosk.community import CommunityError, check_actor
    from kiosk.listimport import ListPlan
    from kiosk.lists import ListError
    from kiosk.store import StoreFault

    try:  # first: a change must never be put in force and then fail on its audit row
        actor = check_actor(args.actor)
        actor.encode("utf-8")  # undecodable bytes of argv come as lone surrogates
    except CommunityError as exc:
        raise UsageError(f"--actor: {exc}") from None
    except UnicodeError:
        raise UsageError("--actor: not UTF-8 text") from None
    data = _read(args.file)
    config = load_args_config(args)
    reading = None if args.apply else f"{args.kind} import"  # a preview: only reads
    store = open_store(args, config, _sets(), create=args.apply, reads_only=reading)
    interrupted: list[int] = []
    try:
        plan, apply = _plan(args.kind, data, Path(args.file).name, store, args)
        out: dict[str, Any] = {"file": Path(args.file).name, **plan.diff.counts()}
        if isinstance(plan, ListPlan):
            out["list"] = plan.kind
        out.update(plan.layout.shown())  # a title above the header, a footer below the table
        off_map = _off_map(plan, store)
        if off_map:
            out["not_on_map"] = len(off_map)
        if args.show_keys:
            out["keys"] = {"added": plan.diff.added, "changed": plan.diff.changed,
                           "removed": plan.diff.removed}  # fmt: skip
            out["keys"] |= {"not_on_map": off_map} if off_map else {}
        out["applied"] = False
        if args.apply:
            with _ctrl_c_after(interrupted):
                apply(actor)
            out["applied"] = True
    except KeyboardInterrupt:  # before the transaction began
        raise Interrupted("interrupted: nothing applied") from None
    except (CommunityError, ListError, ValueError) as exc:
        raise UsageError(f"{Path(args.file).name}: {exc}") from None
    except StoreFault as exc:
        raise CliError(f"import failed: {exc}") from None
    finally:
        store.close()
    print(json.dumps(out, ensure_ascii=False))
    if off_map:
        print(
            f"{len(off_map)} household(s) to quarantine are not on the compound map: a typo"
            " confines nobody and lets the real residents out (--show-keys names them)",
            file=sys.stderr,
        )
    if interrupted:
        raise Interrupted("interrupted after the import was applied (in force, audited)")
    if not args.apply and not plan.diff.empty:
        print("nothing applied: run again with --apply", file=sys.stderr)
    return 0
