"""``kiosk collect`` (the office's collector) and ``kiosk fleet`` (publish lists, district report).

The collector's database DSN comes from the environment variable named in its config
(default ``KIOSK_FLEET_DSN``), never from the command line: it usually carries a password.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kiosk.files import UnreadableFile, read_bounded

from .community_cmd import add_lang_arg
from .errors import CliError, UsageError, clock_advice, write_file
from .parsers import Verbs, add_group, add_verb, path_arg

if TYPE_CHECKING:
    from kiosk.config.fleet import CollectorConfig

#: The district's zone before any gate reported one (``site.timezone``'s default).
DEFAULT_TZ = "Asia/Shanghai"


def register(sub: Verbs) -> None:
    p = add_verb(sub, "collect", collect_run)
    p.add_argument(
        "--config", required=True, metavar="FILE", type=path_arg, help="collector TOML file"
    )
    p.add_argument("--once", action="store_true", help="pull every kiosk once, print, exit")
    p.add_argument(
        "--every",
        type=every_arg,
        metavar="SPAN",
        help="with --once: how often cron (or a timer) runs it, a number and its unit (15m,"
        " 2h): the district report reads a longer gap as the collector down (default: the"
        " spacing of its recent runs' starts, at most 1h; 1h until 4 are held)",
    )

    add_group(sub, "fleet", _fleet, dest="fleet_verb")


def _fleet(actions: Verbs) -> None:
    """the office's side of the fleet: publish lists, district report, purge, forget

    Publish a signed list bundle for every gate; the district's daily report from the
    central database; purge the personal data of the office's pulled copies, and empty there
    the rows of a resident a gate forgot.

    Examples:
      kiosk fleet publish --key /etc/kiosk/office/office.key --lists lists.json --out bundle.json
      kiosk fleet report --day 2026-03-02 --xlsx district-2026-03-02.xlsx"""
    _publish_args(add_verb(actions, "publish", publish_run))

    rep = add_verb(actions, "report", report_run)
    rep.add_argument("--day", required=True, metavar="YYYY-MM-DD", help="local day")
    rep.add_argument(
        "--tz",
        metavar="ZONE",
        help="site time zone (default: the one the gates report in; Asia/Shanghai before any)",
    )
    rep.add_argument(
        "--dsn-env", default="KIOSK_FLEET_DSN", metavar="NAME", help="env var with the DSN"
    )
    rep.add_argument("--kiosk", action="append", metavar="ID", help="only these gates")
    rep.add_argument(
        "--xlsx", metavar="FILE", type=path_arg, help="write the report as an .xlsx workbook"
    )
    rep.add_argument("--csv", metavar="FILE", type=path_arg, help="write the report as CSV")
    add_lang_arg(rep)

    purge = add_verb(actions, "purge", purge_run)
    _target_arg(purge)
    purge.add_argument(
        "--older-than",
        type=int,
        metavar="DAYS",
        help="purge what is older than DAYS (default: retention_days of --config, else 30)",
    )
    purge.add_argument(
        "--config",
        metavar="FILE",
        type=path_arg,
        help="collector TOML file (retention_days, DSN)",
    )
    purge.add_argument(
        "--trust-clock",
        action="store_true",
        help="purge although the office's clock is not synchronised (no NTP answer): only once"
        " `date -u` is checked by hand; a clock set back behind the copy is refused all the same",
    )

    forget = add_verb(actions, "forget", forget_run)
    _target_arg(forget)
    forget.add_argument(
        "--kiosk", required=True, metavar="ID", help="the gate (its site.kiosk_id) that forgot"
    )
    forget.add_argument(
        "--seqs",
        required=True,
        metavar="LIST",
        help="the events the gate emptied, as its kiosk person forget printed them (events_seqs,"
        " e.g. 1-4,9)",
    )
    forget.add_argument(
        "--config", metavar="FILE", type=path_arg, help="collector TOML file (its DSN)"
    )


def _target_arg(parser: argparse.ArgumentParser) -> None:
    """The office's copy a verb works on (purge, forget)."""
    parser.add_argument(
        "target",
        nargs="?",
        metavar="TARGET",
        type=path_arg,
        help="a pulled SQLite file (kiosk pull --into FILE) or a postgresql:// DSN (default:"
        " the DSN in $KIOSK_FLEET_DSN, or the --config's database_dsn_env)",
    )


def _collector_config(path: Path | None) -> CollectorConfig | None:
    """The ``--config`` collector file, read (a usage error when it cannot be), or None."""
    from kiosk.config import ConfigError
    from kiosk.config.fleet import load_collector_config

    if path is None:
        return None
    try:
        return load_collector_config(path)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _dsn_from(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise UsageError(f"set {name} to the PostgreSQL DSN (postgresql://...)")
    return value


#: ``kiosk collect --once --every``: a number and its unit.
_EVERY = re.compile(r"([0-9]{1,6})([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def every_arg(text: str) -> float:
    """``--every``'s type: seconds from a number and its unit (``15m``, ``900s``, ``1h``,
    ``1d``), 1 minute to 7 days. A bare number is refused: ``--every 15`` beside cron's
    ``*/15`` is minutes, and read as seconds every gap would be the collector down."""
    from office.pg import MAX_EXPECT_S

    match = _EVERY.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text[:20]!r} is not a number and its unit: 15m (minutes), 900s, 2h or 1d"
        )
    seconds = float(int(match[1]) * _UNIT_S[match[2]])
    if not 60 <= seconds <= MAX_EXPECT_S:
        raise argparse.ArgumentTypeError(f"{text.strip()} is not from 1m to 7d")
    return seconds


def collect_run(args: argparse.Namespace) -> int:
    """pull many kiosks into PostgreSQL, with a status page

    The long-running collector: pulls every kiosk of the config into the PostgreSQL
    database named by $KIOSK_FLEET_DSN (or the config's database_dsn_env), concurrently and
    resumably; per-kiosk status on http://status_host:status_port/ (also /status.json and
    /metrics); serves the signed list bundle at /lists/bundle.

    Examples:
      kiosk collect --config /etc/kiosk/collect.toml   # the DSN in $KIOSK_FLEET_DSN
      kiosk collect --config /etc/kiosk/collect.toml --once   # one round, then exit
      kiosk collect --config /etc/kiosk/collect.toml --once --every 15m   # cron's */15"""
    from kiosk.config import ConfigError
    from kiosk.config.fleet import load_collector_config
    from kiosk.logs import setup_logging
    from office.collector import Collector, StatusServer
    from office.pg import PgError, PgTarget

    if args.every is not None and not args.once:
        raise UsageError(
            "--every is how often cron runs --once; the collector running on keeps its own"
        )
    try:
        config = load_collector_config(args.config)
        dsn = config.dsn()
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    # The daemon's JSON lines, so a warning keeps the gate and the error it names (warnings
    # only: httpx logs every request at info, every poll_interval_s per gate).
    setup_logging("warning")
    try:
        PgTarget(dsn, application_name="kiosk-collect").close()  # reachable, schema in place
    except PgError as exc:
        raise CliError(str(exc)) from None
    collector = Collector(config, dsn)
    if args.once:
        try:
            statuses = collector.run_once(args.every)
        finally:
            collector.stop()
        for status in statuses:
            print(json.dumps(status.as_dict()))
        failed = [s for s in statuses if s.state != "ok"]
        if failed:
            raise CliError(f"{len(failed)} of {len(statuses)} kiosks failed")
        return 0
    try:
        server = StatusServer(
            collector, config.status_host, config.status_port, allowed_hosts=config.allowed_hosts
        )
    except OSError as exc:
        raise CliError(
            f"cannot listen on {config.status_host}:{config.status_port}: {exc.strerror}"
        ) from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    collector.start()
    notice = collector.bundle_notice(server.lan)
    if notice:  # the logs are pulled all the same
        print(f"kiosk collect: {notice}", file=sys.stderr)
    print(
        f"kiosk collect: {len(config.kiosks)} kiosks; status on"
        f" http://{config.status_host}:{server.port}/",
        file=sys.stderr,
        flush=True,
    )
    try:
        while not stop.wait(1.0):
            pass
    finally:
        collector.stop()
        server.stop()
    return 0


def _publish_args(pub: argparse.ArgumentParser) -> None:
    """``kiosk fleet publish``'s arguments."""
    pub.add_argument(
        "--key", required=True, metavar="FILE", type=path_arg, help="office private key (PEM)"
    )
    pub.add_argument(
        "--lists", required=True, metavar="FILE", type=path_arg, help="the lists as JSON"
    )
    pub.add_argument(
        "--out", required=True, metavar="FILE", type=path_arg, help="the bundle file to replace"
    )
    pub.add_argument("--version", type=int, help="explicit version (above the published one)")
    pub.add_argument(
        "--dsn-env",
        default="KIOSK_FLEET_DSN",
        metavar="NAME",
        help="env var with the collector's DSN: the version goes above the highest it served"
        " (read when set)",
    )
    pub.add_argument(
        "--confirm-drop",
        action="store_true",
        help="publish lists that drop most of a list's entries in force (refused without it:"
        " a list cleared by mistake would let every gate's quarantined out)",
    )
    pub.add_argument(
        "--group",
        metavar="GROUP",
        help="the group that reads the bundle's files (mode 0640): the collector's user's"
        " (default: the group of OUT's folder)",
    )


def publish_run(args: argparse.Namespace) -> int:
    """sign the office's lists for the gates, as the next bundle version

    Validate LISTS (JSON with revocations, quarantine, households), sign them with the
    office key as the next version and replace OUT atomically (the collector serves OUT at
    /lists/bundle). A version never goes down. Beside OUT, the same version naming each
    entry's compound (OUT's name with .compounds: bundle.compounds.json), served to the gates
    that name theirs.

    Examples:
      kiosk fleet publish --key /etc/kiosk/office/office.key --lists lists.json --out bundle.json"""
    from kiosk.lists import BundleError
    from kiosk.passes import KeyFileError, load_private_key
    from office import listsync
    from office.listsync import publish_bundle

    try:
        key = load_private_key(args.key)
    except KeyFileError as exc:
        raise UsageError(str(exc)) from None
    lists = _read_lists(args.lists)
    if not isinstance(lists, dict):
        raise UsageError(f"{args.lists}: expected a JSON object with the lists")
    if not Path(args.out).parent.is_dir():
        raise UsageError(f"no such directory: {Path(args.out).parent}")
    _check_out(Path(args.out), Path(args.lists))
    _check_out(listsync.compounds_path(args.out), Path(args.lists), "beside --out")
    group = _group_id(args.group)
    try:
        result = publish_bundle(
            key,
            lists,
            args.out,
            now=datetime.now(UTC),
            version=args.version,
            confirm_drop=args.confirm_drop,
            served=_served(args.dsn_env),
            claim=_claimer(args.dsn_env),
            group=group,
        )
    except listsync.PublishBusy as exc:
        raise CliError(str(exc)) from None
    except BundleError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    if result.notice is not None:
        print(f"kiosk fleet publish: {result.notice}", file=sys.stderr)
    print(json.dumps(result.as_dict()))
    return 0


def _group_id(name: str | None) -> int | None:
    """``--group``'s id (a name, or a number), checked before anything is written: one that
    does not exist, or that this user may not give a file (not a member of it), is refused."""
    import grp

    from office.listsync import may_give_group

    if name is None:
        return None
    try:
        gid = int(name) if name.isdigit() else grp.getgrnam(name).gr_gid
    except KeyError:
        raise UsageError(f"--group {name}: no such group") from None
    if not may_give_group(gid):
        raise UsageError(
            f"--group {name}: you are not a member of it, so the bundle cannot be given to it;"
            " publish as a member (or root)"
        )
    return gid


def _served(env: str) -> int:
    """The highest bundle version the collector served (``office.pg.served_version``) when
    ``env`` names a DSN; 0 (and a line on stderr when it cannot be read) otherwise: a
    database down does not hold back a new quarantine."""
    from office.pg import PgError, served_version

    dsn = os.environ.get(env, "").strip()
    if not dsn:
        return 0
    try:
        return served_version(dsn)
    except PgError as exc:
        print(
            f"kiosk fleet publish: the versions the collector served are not known ({exc});"
            " the version is above the bundle's files only",
            file=sys.stderr,
        )
        return 0


def _claimer(env: str) -> Callable[[int], int] | None:
    """The claim of a version in the collector's database (``office.pg.claim_version``), so
    that two machines publishing at once never sign one version twice; None without a DSN.
    A database that cannot be written is said on stderr, and the version is not claimed."""
    from office.pg import PgError, claim_version

    dsn = os.environ.get(env, "").strip()
    if not dsn:
        return None

    def claim(version: int) -> int:
        try:
            return claim_version(dsn, version)
        except PgError as exc:
            print(
                f"kiosk fleet publish: version {version} is not claimed in the database ({exc})",
                file=sys.stderr,
            )
            return 0

    return claim


def _check_out(out: Path, lists: Path, where: str = "--out") -> None:
    """``--out`` is a new file, an empty one or a bundle: never the lists, nor another file
    (``bundle_version`` reads anything else as version 0, and it would be replaced). The
    same of the bundle naming compounds written beside it (``where``: "beside --out")."""
    from office import listsync

    if not out.exists():
        return
    if not out.is_file():
        raise UsageError(f"{where} {out} is not a file (the bundle the collector serves)")
    if out.samefile(lists):
        raise UsageError(f"{where} {out} is the --lists file; write the bundle to another file")
    try:
        raw = read_bounded(out, listsync.MAX_BUNDLE_BYTES)
    except UnreadableFile as exc:
        if exc.why != "too_large":
            raise CliError(f"{out}: {exc}") from None
        raw = None  # larger than any bundle: not one
    if raw is None or (raw.strip() and listsync.bundle_version(raw) == 0):
        raise UsageError(
            f"{where} {out} is not a list bundle; refusing to replace it (give the bundle file"
            " the collector serves, or a new file)"
        )


def _read_lists(path: str) -> object:
    """The JSON of ``--lists``, read no further than the largest bundle a kiosk takes."""
    from office import listsync

    try:
        raw = read_bounded(path, listsync.MAX_BUNDLE_BYTES)
    except UnreadableFile as exc:
        raise UsageError(f"{path}: {exc} (a kiosk takes no larger bundle)") from None
    try:
        return json.loads(raw.decode("utf-8-sig"))  # a BOM (Notepad's "UTF-8 with BOM"): no text
    except ValueError as exc:  # also UnicodeDecodeError
        raise UsageError(f"{path}: not JSON ({exc})") from None
    except RecursionError:
        raise UsageError(f"{path}: not JSON (nested too deeply)") from None


def report_run(args: argparse.Namespace) -> int:
    """the district's daily report across gates (JSON)

    The daily report over every gate's events in the central database, with the gates'
    ledger counts fetched by the collector. Prints JSON unless --xlsx/--csv.

    Examples:
      kiosk fleet report --day 2026-03-02 --tz Asia/Shanghai
      kiosk fleet report --day 2026-03-02 --kiosk gate-01 --csv gate-01.csv"""
    from kiosk.categories import csv_file
    from office.district import district_csv, district_report, district_xlsx
    from office.pg import PgError
    from ui.report_words import file_words

    from .community_cmd import refuse_unbegun, report_day, report_target

    day = report_day(args.day)
    if args.tz is not None:
        _zone(args.tz)  # a typo is a usage error before the database is asked
    outputs = [report_target(p, "." + f) for f, p in (("xlsx", args.xlsx), ("csv", args.csv)) if p]
    dsn = _dsn_from(args.dsn_env)
    try:
        tz = _zone(args.tz) if args.tz is not None else _gates_zone(dsn, args.kiosk, day)
        report = district_report(dsn, day, tz, kiosks=args.kiosk)
    except PgError as exc:
        raise CliError(str(exc)) from None
    today = datetime.fromisoformat(report["as_of"]).astimezone(tz).date()
    refuse_unbegun(day, today, tz.key, report["events"])
    words = file_words(args.lang)
    if args.xlsx:
        write_file(Path(args.xlsx), district_xlsx(report, words))
    if args.csv:
        write_file(Path(args.csv), csv_file(district_csv(report, words)))
    if not outputs:
        print(json.dumps(report, ensure_ascii=False))
    return 0


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: 'Asia', a folder
        raise UsageError(f"--tz: unknown time zone {name!r}") from None


def _gates_zone(dsn: str, kiosks: list[str] | None, day: date) -> ZoneInfo:
    """The zone the district's day is cut in without ``--tz``: the one the gates report in
    (``office.district.report_zones``; names of one clock that day are one); ``DEFAULT_TZ``
    before any report; several: --tz."""
    from office.district import report_zones

    zones = report_zones(dsn, kiosks, day)
    if len(zones) > 1:
        shown = ", ".join(z[:64] for z in zones[:10])
        raise UsageError(f"--tz: the gates report their days in several time zones ({shown})")
    return _zone(zones[0] if zones else DEFAULT_TZ)


def purge_run(args: argparse.Namespace) -> int:
    """blank the names, households and pass ids of a pulled copy past retention

    Null pass_id, household, holder and person (all but its counts) of the events older than
    DAYS in a pulled copy (a SQLite file or the office's PostgreSQL), by the gates' own rule;
    hash, prev_hash, personal_digest and seq are never changed, so verify-log --against
    still matches. Prints one JSON line. A wall clock that is not synchronised, or set back
    behind the copy's last pull, purges nothing: exit 1.

    Examples:
      kiosk fleet purge central.db --older-than 30     # the file kiosk pull --into filled
      kiosk fleet purge --config /etc/kiosk/collect.toml"""
    from drivers import clocksync
    from kiosk.config.fleet import CollectorConfig
    from kiosk.retention import MAX_DAYS
    from office.pg import PgError
    from office.retention import ClockNotTrusted, CopyError, open_copy, purge_copy

    config = _collector_config(args.config)
    days = args.older_than
    if days is None:
        default = CollectorConfig.model_fields["retention_days"].default
        days = config.retention_days if config else int(default)
    if not 0 <= days <= MAX_DAYS:
        raise UsageError(f"--older-than must be between 0 and {MAX_DAYS} days")
    target = args.target or _dsn_from(config.database_dsn_env if config else "KIOSK_FLEET_DSN")
    clock = clocksync.system_clock()
    try:
        copy = open_copy(target)
    except CopyError as exc:
        raise UsageError(str(exc)) from None
    except PgError as exc:
        raise CliError(str(exc)) from None
    except sqlite3.Error as exc:  # e.g. a folder it may not write its -shm into
        raise CliError(f"cannot purge {target}: {exc}") from None
    try:
        result = purge_copy(
            copy,
            days,
            clock.now(),
            clock_synced=clock.synced(),
            trust_unsynced_clock=args.trust_clock,
        )
    except ClockNotTrusted as exc:
        then = clock_advice(exc.reason)
        raise CliError(f"nothing was purged: {exc}; {then}") from None
    except (PgError, sqlite3.Error) as exc:
        raise CliError(f"purge failed (what was purged stays purged): {exc}") from None
    finally:
        copy.close()
    print(json.dumps(result.as_dict()))
    return 0


def forget_run(args: argparse.Namespace) -> int:
    """empty in a pulled copy the events a gate forgot (kiosk person forget)

    Null pass_id, household, holder and person (all but its counts) of the gate's events
    --seqs in a pulled copy (a SQLite file or the office's PostgreSQL), as the office's purge
    does; hash, prev_hash, personal_digest and seq are never changed, so verify-log --against
    still matches. Prints one JSON line: events_forgotten.

    Examples:
      kiosk fleet forget central.db --kiosk gate-1 --seqs 1-4,9
      kiosk fleet forget --config /etc/kiosk/collect.toml --kiosk gate-1 --seqs 17,230-231"""
    from drivers import clocksync
    from office.people import forget_in_copy, parse_seqs
    from office.pg import PgError, is_pg_dsn, redact_dsn
    from office.retention import CopyError, open_copy

    try:
        ranges = parse_seqs(args.seqs)
    except ValueError as exc:
        raise UsageError(f"--seqs: {exc}") from None
    config = _collector_config(args.config)
    target = args.target or _dsn_from(config.database_dsn_env if config else "KIOSK_FLEET_DSN")
    try:
        copy = open_copy(target)
    except CopyError as exc:
        raise UsageError(str(exc)) from None
    except (PgError, sqlite3.Error) as exc:
        # A DSN's password is never printed (the other fleet verbs' rule).
        shown = redact_dsn(target) if is_pg_dsn(target) else target
        raise CliError(f"cannot open {shown}: {exc}") from None
    try:
        done = forget_in_copy(copy, args.kiosk, ranges, clocksync.system_clock().now())
    except (PgError, sqlite3.Error) as exc:
        raise CliError(f"forget failed (what was emptied stays so): {exc}") from None
    finally:
        copy.close()
    print(json.dumps({"kiosk_id": args.kiosk, "events_forgotten": done}))
    return 0
