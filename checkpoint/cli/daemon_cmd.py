"""``kiosk demo`` and ``kiosk run``: the daemon."""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import functools
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from kiosk.logs import setup_logging

from .errors import CliError, UsageError, refuse_root_over
from .parsers import Verbs, add_verb, path_arg, path_of

if TYPE_CHECKING:
    import asyncio

    from checkpoint.app import ExitAfterStop
    from checkpoint.standby import Held
    from kiosk.config import KioskConfig
    from kiosk.core import Core
    from kiosk.devices import Gate
    from kiosk.store import StoreFault
    from kiosk.tlscert import TlsCertificate

DEFAULT_DATA = "/var/lib/kiosk"
T = TypeVar("T")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def register(sub: Verbs) -> None:
    demo = add_verb(sub, "demo", run_demo)
    demo.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    demo.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    demo.add_argument(
        "--data",
        type=path_of,
        help="keep data in DIR (new, empty or an earlier demo's) instead of a temp folder",
    )
    demo.add_argument(
        "--kiosk-id",
        help="the demo gate's site.kiosk_id (default: demo-gate); two demos on one machine with"
        " two ids answer as two gates",
    )
    _log_level(demo, "warning")

    run = add_verb(sub, "run", run_daemon)
    run.add_argument("--config", required=True, type=path_arg, help="the TOML config file")
    run.add_argument(
        "--data", type=path_of, help=f"state directory (default: $KIOSK_DATA, else {DEFAULT_DATA})"
    )
    run.add_argument(
        "--lock-gate",
        action="store_true",
        help="only command the configured relay as a stopped kiosk leaves it, then exit:"
        " locked, or released for a maglock on NO or a strike on NC (no event log, no server,"
        " nothing written; kiosk.service's ExecStopPost, after a crash): exit 1 when it did"
        " not obey",
    )
    _log_level(run, "info")


def _log_level(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        default=default,
        metavar="LOG_LEVEL",
        help=f"{', '.join(LOG_LEVELS)} (default {default})",
    )


#: Marks a folder as a demo's data (``kiosk demo --data``), so a later demo may use it again.
DEMO_MARK = ".kiosk-demo"


def demo_data_dir(path: Path) -> Path:
    """``--data`` of the demo: a new or empty folder, or an earlier demo's (marked). Never a
    kiosk's own: the demo writes simulated passages into its event log, its key into the trust
    folder, and guard accounts and an API token into its database."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"--data {path} is not a folder")
    if path.is_dir() and any(path.iterdir()) and not (path / DEMO_MARK).is_file():
        raise UsageError(
            f"--data {path} holds other data (a kiosk's?); the demo writes simulated passages,"
            " accounts and a token: give a new or empty folder, or an earlier demo's"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path / DEMO_MARK).write_text("kiosk demo data: simulated passages, demo accounts\n")
    except OSError as exc:
        raise CliError(f"cannot use {path}: {exc.strerror or exc}") from None
    return path


def _port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise UsageError(f"--port {value}: expected 0-65535")
    return value


def _host(value: str) -> None:
    """``--host`` as the demo's config takes it (``web.host``)."""
    from pydantic import ValidationError

    from kiosk.config import validation_problems
    from kiosk.config.web import WebSection

    try:
        WebSection(host=value)
    except ValidationError as exc:
        raise UsageError(f"--host {value!r}: {'; '.join(validation_problems(exc))}") from None


def _port_in_use(host: str, port: int) -> bool:
    """Whether ``host:port`` cannot be bound now (another demo or server has it)."""
    if port == 0:
        return False
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except OSError:
        return False  # an unusable host is reported by the server itself
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def _busy_port_error(host: str, port: int) -> CliError:
    """A busy port names one that is free now, so the next try works."""
    for candidate in range(port + 1, min(port + 50, 65536)):
        if not _port_in_use(host, candidate):
            return CliError(
                f"port {port} is already in use on {host}; try: kiosk demo --port {candidate}"
            )
    return CliError(f"port {port} is already in use on {host}; choose another with --port")


def _kiosk_id(text: str | None) -> str | None:
    """``--kiosk-id`` checked as the config checks ``site.kiosk_id``, in its words."""
    if text is None:
        return None
    from pydantic import ValidationError

    from kiosk.config.problems import validation_problems
    from kiosk.config.site import SiteConfig

    try:
        return SiteConfig(kiosk_id=text).kiosk_id
    except ValidationError as exc:
        raise UsageError(f"--{'; '.join(validation_problems(exc)).replace('_', '-', 1)}") from None


def run_demo(args: argparse.Namespace) -> int:
    """the whole kiosk on simulated devices with scripted visitors

    Run the real daemon (engine, event log, screens, API) on emulated devices fed by a
    scripted stream of visitors. Prints the kiosk, guard and API URLs and a demo guard login.
    Data goes to a temporary folder unless --data is given.

    Examples:
      kiosk demo                          # then open the printed URLs in a browser
      kiosk demo --port 8080 --data ~/kiosk-demo
      kiosk demo --port 8001 --kiosk-id gate-2   # a second gate beside the first"""
    from checkpoint import malloc

    malloc.tune()  # the daemon's process, before its first threads: docs/memory.md
    from checkpoint.app import ForeignLog
    from checkpoint.demo import run_demo_process as demo

    port = _port(args.port)
    _host(args.host)
    kiosk_id = _kiosk_id(args.kiosk_id)
    if _port_in_use(args.host, port):
        raise _busy_port_error(args.host, port)
    data = demo_data_dir(args.data) if args.data is not None else None
    lock = hold_data_dir(data) if data is not None else None
    setup_logging(args.log_level)
    try:
        return demo(port, data, args.host, kiosk_id=kiosk_id, leaving=_leaving(args))
    except ForeignLog as exc:  # an earlier demo's --data, run as another gate (no config)
        raise UsageError(
            f"--data {data} holds the demo log of kiosk {exc.owner!r}: run it with --kiosk-id"
            f" {exc.owner}, or give another --data"
        ) from None
    except OSError as exc:
        raise CliError(f"cannot start: {_os_error(exc)}") from None
    finally:
        if lock is not None:
            lock.close()


def run_daemon(args: argparse.Namespace) -> int:
    """the daemon on the devices named in the config

    Run the kiosk daemon with the devices named in the config. Data dir: --data, else
    $KIOSK_DATA, else /var/lib/kiosk. Speaks the systemd notify protocol when
    $NOTIFY_SOCKET is set. Stops cleanly on SIGTERM/SIGINT, also one that comes while it starts.

    Examples:
      sudo systemctl start kiosk              # as installed: kiosk.service runs it
      # in the foreground, as the service's user (never plain sudo: root-owned files):
      sudo systemctl stop kiosk
      sudo kiosk-admin run --config /etc/kiosk/kiosk.toml --log-level debug
      # the gate as a stopped kiosk leaves it, now (locked; released for a maglock on NO):
      sudo kiosk-admin run --config /etc/kiosk/kiosk.toml --lock-gate"""
    from checkpoint import malloc

    malloc.tune()  # the daemon's process, before its first threads: docs/memory.md
    from kiosk.config import (
        ConfigError,
        check_environment,
        check_paths,
        load_config,
        store_folder_missing,
        store_folder_problem,
    )

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise UsageError(f"{exc.source}: {'; '.join(exc.problems)}") from None
    if args.lock_gate:  # writes nothing: no data dir, so no root's files to refuse
        return lock_gate_only(config, args.log_level)
    data = args.data or Path(os.environ.get("KIOSK_DATA", DEFAULT_DATA))
    refuse_root_over(data, f"run --config {args.config}")
    _refuse_restore_cut_off(data)
    problems = check_paths(config, data=data) + check_environment(config, os.environ)
    unmounted = store_folder_missing(config, data=data)
    if unmounted:  # a disk that did not mount (yet): exit 1, so kiosk.service tries again
        problems.remove(store_folder_problem(config))
    if problems:
        raise UsageError(f"{args.config}: {'; '.join(problems)}")
    _refuse_credentials()
    if unmounted:
        raise CliError(f"cannot start: {store_folder_problem(config)}")
    setup_logging(args.log_level)
    _warn_credentials()
    emulated = emulated_devices(config)
    if emulated:
        logging.getLogger("checkpoint.run").warning(
            "emulated devices (not a real gate): name the real ones in the config",
            extra={"devices": ", ".join(emulated), "example": "systemd/kiosk.toml.example"},
        )
    lanes = unread_lanes(config)
    if lanes:
        logging.getLogger("checkpoint.run").warning(lanes)
    from checkpoint.server import raise_open_file_limit

    raise_open_file_limit()
    lock = DataDirLock(data)
    try:
        return _run(args, config, lock)
    finally:
        lock.close()


#: What mends a credential ``kiosk run`` refuses (``kiosk.credentials``), after its line.
CREDENTIAL_MEND = (
    "put it right where kiosk.service is handed it from (/etc/kiosk/credentials/), then"
    " `sudo systemctl restart kiosk` (no restart mends it by itself: the unit stays stopped)"
)


def _refuse_credentials() -> None:
    """The credentials the daemon reads as it starts, checked before anything is opened (as
    ``check-config`` checks them): one it cannot use is exit 2 (kiosk.service's
    ``RestartPreventExitStatus``), never a start to try again. It was exit 1 once the log had
    opened, and systemd started the daemon again every 3 s for ever with the same line, the
    gate locked."""
    from kiosk.credentials import credential_problems

    problems = credential_problems(os.environ)
    if problems:
        raise UsageError(f"cannot start: {'; '.join(problems)}; {CREDENTIAL_MEND}")


def _warn_credentials() -> None:
    """A credential the daemon takes but would rather not (a short token_pepper), in the
    journal at each start: ``kiosk.credentials.credential_warnings``."""
    from kiosk.credentials import credential_warnings

    for warning in credential_warnings(os.environ):
        logging.getLogger("checkpoint.run").warning(warning)


def _refuse_restore_cut_off(data: Path) -> None:
    """A restore cut off part way in ``data`` (``kiosk.backup.restore_cut_off``): no kiosk.db
    there, or the archive's beside this Pi's keys. Exit 2, before the log is opened or a new
    one begun (kiosk.service's ``RestartPreventExitStatus``: no restart mends it)."""
    from kiosk.backup import restore_cut_off

    why = restore_cut_off(data)
    if why is not None:
        raise UsageError(f"cannot start: {why}")


def served_certificate(config: KioskConfig) -> TlsCertificate | None:
    """The validity of the certificate the API serves (``web.tls``), for health; None
    without TLS or its files (the server's start says what is missing)."""
    from checkpoint.server import certificate_validity, tls_files

    try:
        files = tls_files(config.web)
    except OSError:
        return None
    return None if files is None else certificate_validity(files[0])


def locked_gate_first(config: KioskConfig) -> tuple[Gate, bool]:
    """The configured relay, commanded locked (``drivers.gate.lock_at_start``): the first
    device ``kiosk run`` touches, before the event log opens or may keep it standing by;
    and whether it obeyed."""
    from drivers.clocksync import system_clock
    from drivers.gate import build_gate, lock_at_start

    gate = build_gate(config.gate, system_clock())
    return gate, lock_at_start(gate, config.engine.device_deadline_ms / 1000)


def lock_gate_only(config: KioskConfig, log_level: str) -> int:
    """``kiosk run --lock-gate``: the configured relay commanded as a stopped kiosk leaves it,
    and nothing else: locked, or released where the wiring wants the gate released with no
    kiosk (a maglock on NO, a strike on NC: ``drivers.gate.released_when_stopped``).

    kiosk.service runs it as ``ExecStopPost=-``, once the daemon's process is gone: a daemon
    killed during a pass's pulse (SIGKILL, the OOM killer, the watchdog) left a USB board
    energised or a persisted GPIO line high, the gate released with nobody deciding for
    ``RestartSec`` and the next start (or for good, the unit stopped); one killed while
    holding a maglock on NO locked kept it locked. No event log, no web server, nothing
    written; the command bounded by ``engine.device_deadline_ms``, the relay then closed as
    long at most (``close_gate``: a wedged one is said and left to the exit). Closing a GPIO
    relay lets go of its line still driven where the kernel keeps it
    (``GpioRelayGate.close``), as the daemon's own stop does."""
    from drivers.clocksync import system_clock
    from drivers.gate import build_gate, release_at_stop
    from kiosk.config.gate import released_when_stopped

    setup_logging(log_level)
    if released_when_stopped(config.gate.wiring, config.gate.fail_mode):
        state = "released"
        gate = build_gate(config.gate, system_clock(), initial_open=True)
        obeyed = release_at_stop(gate, config.engine.device_deadline_ms / 1000)
    else:
        state = "locked"
        gate, obeyed = locked_gate_first(config)
    close_gate(gate, config)
    if not obeyed:
        raise CliError(
            f"the gate ({gate.name}) could not be commanded {state}: its state is unknown;"
            " check the gate (the journal has the relay's error)"
        )
    return 0


def close_gate(gate: Gate, config: KioskConfig) -> bool:
    """The relay ``kiosk run`` built first closed, bounded by ``engine.device_deadline_ms``
    (``kiosk.deadline.close_within``, the daemon's stop's bounded close): ``--lock-gate``,
    and ``kiosk run``'s end when its start failed or its standby ended, before the exit's
    timer is armed (a bare ``close()`` of a relay stuck in its driver held the exit past
    systemd's ``TimeoutStopSec``). Whether it closed; the journal says when it did not."""
    from kiosk.deadline import close_within

    return close_within("gate", gate.close, config.engine.device_deadline_ms / 1000)


def _run(args: argparse.Namespace, config: KioskConfig, lock: DataDirLock) -> int:
    """The daemon's life, on the data dir ``lock`` takes with the first try of the log."""
    import asyncio
    from datetime import UTC, datetime

    from checkpoint.app import build_core, mark_stopped, stop_on_signals
    from checkpoint.notify import LongStart, Notifier
    from checkpoint.standby import Held, core_or_standby
    from drivers.gate import lock_at_start, release_at_stop
    from kiosk.config.gate import manual_release, stop_releases

    async def main() -> int:
        stopping, loop = asyncio.Event(), asyncio.get_running_loop()
        asked: list[float] = []  # when a stop was asked while starting: the budget's start

        def ask_stop() -> None:
            asked.append(loop.time())
            stopping.set()

        stop_on_signals(ask_stop)  # first: a SIGTERM while starting stops it cleanly
        # Then the relay locked, before the log: a daemon killed mid-pulse left it released.
        gate, locked = await asyncio.to_thread(locked_gate_first, config)
        manual = manual_release(config.gate)
        if manual is not None:  # the one that works for this lock: wiring.md
            logging.getLogger("checkpoint.run").info(manual)
        deadline_s, releases = config.engine.device_deadline_ms / 1000, stop_releases(config.gate)
        long = LongStart(Notifier.from_env())  # a long migration: systemd told, not killing it
        # A card fault the start met (a full card reading the history): standing by as for
        # the log's open, and trying both again; one standby across the starts tried again.
        failed: Exception | None = None
        held = Held()
        while True:
            try:
                # A card that keeps the log from opening: standing by until it opens.
                core = await core_or_standby(
                    lambda: lock.then(
                        lambda: build_core(
                            config, lock.data, gate=gate, on_migrating=long.migrating
                        )
                    ),
                    config,
                    stopping,
                    gate_locked=locked,
                    relock=lambda: lock_at_start(gate, deadline_s),
                    # Standing by, no kiosk decides: the coil off, as a stopped kiosk leaves it.
                    release=(lambda: release_at_stop(gate, deadline_s)) if releases else None,
                    failed=failed,
                    held=held,
                )
            except BaseException:
                close_gate(gate, config)
                raise
            if core is None:
                if held.last_stop == "clean":  # the marker a failed start took, given back
                    mark_stopped(lock.data, datetime.now(UTC))
                close_gate(gate, config)
                return 0
            try:  # the start tried with the standby serving: it ends it once it runs
                failed = await _serve(core, stopping, asked, args, lock.data, leaving, held)
            except BaseException:
                await held.end()
                raise
            if failed is None:
                return 0

    leaving = _leaving(args)
    try:
        return asyncio.run(main())
    except BaseException as exc:
        said = _start_failure(exc, args, lock.data)
        if said is None:
            raise
        raise said from None
    finally:
        if leaving is not None:
            leaving.settle()  # the threads of the run have ended: the process ends by itself


async def _serve(
    core: Core,
    stopping: asyncio.Event,
    asked: list[float],
    args: argparse.Namespace,
    data: Path,
    leaving: ExitAfterStop | None,
    held: Held,
) -> Exception | None:
    """The daemon on ``core`` until a stop: None once it stopped; the card failure its start
    met (``checkpoint.standby.start_or_card_failure``: the core closed but its relay), for
    ``kiosk run`` to stand by with. ``held``: the standby held across the starts tried
    again, and how the run before ended (``Held.last_stop``: the marker its first start
    took; no row is written for a start that fails, the one that runs says it and the
    standby, once: ``checkpoint.app.record_start``)."""
    import asyncio
    import sys

    from checkpoint.app import Daemon, take_stop_marker
    from checkpoint.standby import start_or_card_failure
    from checkpoint.volume import data_volume, warn_if_volatile

    core.data_volume = data_volume(data)  # a data dir in RAM: said in health and the log
    warn_if_volatile(core.data_volume, data)
    core.tls_certificate = served_certificate(core.config)  # runs out: health warns ahead
    refusal = no_trusted_key(core)
    if refusal:
        await asyncio.to_thread(core.close)
        raise UsageError(f"cannot start: {refusal}")
    daemon = Daemon(core, stopping=stopping)
    failed: Exception | None = None
    try:
        # A card failure once the web server is up is raised (stopped below): standing by
        # then met the daemon's own server on the port.

        async def start() -> None:
            if held.last_stop is None:  # the first start's: a crash from here reads unclean
                held.last_stop = await asyncio.to_thread(take_stop_marker, core)
            await daemon.start_deciding(held.last_stop, held.said())

        failed = await start_or_card_failure(start, core, held)
        if failed is None:
            await daemon.start_serving()
            await daemon.run_until_signal()
    finally:
        if failed is None:
            daemon.stop_asked_at = asked[0] if asked else None  # systemd counts from it
            await daemon.stop()
            if leaving is not None:  # a thread stuck on a stalled card: the process ends
                failure = sys.exc_info()[1]  # with the code the command would have said
                leaving.arm(0 if failure is None else _exit_code(failure, args, data))
    return failed


def _leaving(args: argparse.Namespace) -> ExitAfterStop | None:
    """``kiosk run``'s and ``kiosk demo``'s end in the program's own process
    (``args.owns_process``); none for a caller of ``main(argv)``, whose process goes on."""
    from checkpoint.app import ExitAfterStop

    return ExitAfterStop() if getattr(args, "owns_process", False) else None


def _exit_code(exc: BaseException, args: argparse.Namespace, data: Path) -> int:
    """The code ``kiosk run`` ends with for ``exc`` (``checkpoint.cli.main``'s): 2 where no
    restart mends it (kiosk.service's ``RestartPreventExitStatus``), else 1."""
    said = _start_failure(exc, args, data) or exc
    return said.exit_code if isinstance(said, CliError) else 1


def _start_failure(exc: BaseException, args: argparse.Namespace, data: Path) -> CliError | None:
    """What ``kiosk run`` says of a failure to start or run (None: raised as it is). What
    ``check-config`` calls a problem of the configuration (the TLS credentials missing or not
    a pair, a trust folder's key file that is no key, a credential the daemon cannot use) is
    exit 2, as a bad config is: no restart mends it, and systemd started it again every 3 s
    for ever."""
    import ssl

    from kiosk.config import ConfigError
    from kiosk.credentials import CredentialError
    from kiosk.passes import TrustListError
    from kiosk.secrets import TLS_MISSING, TLS_NOT_A_PAIR
    from kiosk.tlscert import EncryptedKey

    if isinstance(exc, ConfigError):  # found building the devices (a fake thermometer's trace)
        return UsageError(f"{args.config}: {exc}")
    if isinstance(exc, EncryptedKey):
        return UsageError(f"cannot start: web.tls: {exc}")
    if isinstance(exc, ssl.SSLError):  # only the web server loads a certificate
        return UsageError(f"cannot start: web.tls: {TLS_NOT_A_PAIR} ({exc})")
    if isinstance(exc, OSError) and TLS_MISSING in str(exc):
        return UsageError(f"cannot start: {_os_error(exc)}")
    if isinstance(exc, TrustListError) and not _refused_access(str(exc)):
        return UsageError(f"cannot start: {exc}")
    if isinstance(exc, CredentialError):  # checked first (``_refuse_credentials``) as a rule
        return UsageError(f"cannot start: {exc}; {CREDENTIAL_MEND}")
    if isinstance(exc, OSError):
        return _not_ours_or(data, f"cannot start: {_os_error(exc)}")
    if isinstance(exc, _unmendable()):
        where = " (docs/install.md, Going back)" if "newer version" in exc.detail else ""
        return UsageError(
            f"cannot start: {exc.detail or exc}{where}; then `sudo systemctl restart kiosk`"
            " (no restart mends it by itself: the unit stays stopped until then)"
        )
    if isinstance(exc, _startup_errors()):
        return _not_ours_or(data, f"cannot start: {exc}")
    return None


#: In the data dir, locked (``flock``) by the daemon for its life; it holds the daemon's pid.
LOCK_FILE = "kiosk.lock"


class DataDirLock:
    """The data dir's lock for ``kiosk run``, taken with its first try of the event log, so
    that a lock file this user may not open (``kiosk.lock`` left root's by a ``sudo kiosk
    run`` by hand) stands the daemon by (``kiosk.standby``, as a root-owned ``kiosk.db``
    does) and it starts by itself once the file is given back: it exited 1 and systemd
    started it again every 3 s for ever, the screens dark."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self._fd: DataDirHold | None = None

    def take(self) -> None:
        """Hold the lock (once); a ``StoreFault`` naming the file, its owner and the
        ``chown`` when this user may not open it; ``CliError`` as ``hold_data_dir``."""
        if self._fd is None:
            self._fd = hold_data_dir(self.data, foreign=_not_ours)

    def then(self, build: Callable[[], T]) -> T:
        self.take()
        return build()

    def close(self) -> None:
        if self._fd is not None:
            self._fd.close()
            self._fd = None


def _not_ours(path: Path) -> Exception:
    """A lock file this user may not open: what the standby says, and what mends it."""
    from kiosk.store import StoreFault

    try:
        owner = f"owner uid {path.stat().st_uid}"
    except OSError:
        owner = "owner unknown"
    return StoreFault(
        "store_fault",
        f"cannot lock the data dir: {path} is not writable by this user ({owner}), left by a"
        f" kiosk run as root; give it back: sudo chown -R {_user()} {path.parent}",
    )


def _user() -> str:
    """``user:group`` of this process, as ``chown`` takes it."""
    import grp
    import pwd

    try:
        return f"{pwd.getpwuid(os.geteuid()).pw_name}:{grp.getgrgid(os.getegid()).gr_name}"
    except KeyError:
        return f"{os.geteuid()}:{os.getegid()}"


class DataDirHold:
    """A daemon's hold on its data dir (``hold_data_dir``): its ``kiosk.lock`` (``file``,
    exclusive) and the data dir itself (``folder``, shared; None where it locks nothing),
    both let go by ``close`` (or by the kernel when the process ends, a crash too)."""

    def __init__(self, file: int, folder: int | None) -> None:
        self.file = file
        self.folder = folder

    def fileno(self) -> int:
        return self.file

    def close(self) -> None:
        os.close(self.file)
        if self.folder is not None:
            os.close(self.folder)
            self.folder = None


def hold_data_dir(data: Path, foreign: Callable[[Path], Exception] | None = None) -> DataDirHold:
    """Lock the data dir for this daemon, to hold while it runs. A second ``kiosk run`` on the
    same data dir (another port, a manual run beside the service) started, and two daemons
    wrote one event log and drove one relay and thermometer: it is refused, exit 1, so that
    kiosk.service tries again once the other has stopped. A lock file this user may not open
    raises ``foreign(path)`` when given (``DataDirLock``: stand by).

    The data dir itself is held shared first (``lock_folder``, as a verb that writes holds
    it), so that a restore, which holds it exclusive for its whole run, and a daemon refuse
    each other whatever becomes of ``kiosk.lock``: a link to /run/kiosk/kiosk.lock loses its
    file each time systemd stops the unit (``RuntimeDirectory=kiosk``), and a daemon restarted
    under a restore made a new one and started on the files half put back."""
    try:
        data.mkdir(parents=True, exist_ok=True)
        folder = lock_folder(data, exclusive=False)
    except BlockingIOError:
        raise CliError(
            f"cannot start: a restore is under way in the data dir {data} (kiosk restore);"
            " the daemon starts once it has finished"
        ) from None
    except OSError as exc:
        raise CliError(f"cannot start: {_os_error(exc)}") from None
    try:
        return DataDirHold(_hold_lock_file(data, foreign), folder)
    except BaseException:
        if folder is not None:
            os.close(folder)
        raise


def _hold_lock_file(data: Path, foreign: Callable[[Path], Exception] | None) -> int:
    """``DATA/kiosk.lock`` locked for ``hold_data_dir``: its open descriptor, the pid in it."""
    path = data / LOCK_FILE
    try:
        fd, owner = locked_file(path, _lock_file)
    except PermissionError as exc:
        if foreign is not None and exc.filename is not None and Path(exc.filename) == path:
            raise foreign(path) from None
        raise CliError(f"cannot start: {_os_error(exc)}") from None
    except OSError as exc:  # a file system without locks too
        if exc.filename is None:
            raise CliError(f"cannot start: cannot lock {path}: {exc.strerror or exc}") from None
        raise CliError(f"cannot start: {_os_error(exc)}") from None
    if owner is not None:
        os.close(fd)
        raise CliError(
            f"cannot start: another kiosk daemon (pid {owner}) runs on the data dir {data};"
            " one daemon per data dir: stop it first (`sudo systemctl stop kiosk`)"
        ) from None
    with contextlib.suppress(OSError):  # a card mounted read-only: locked, the pid unsaid
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def locked_file(
    path: Path,
    opening: Callable[[Path], int],
    taking: Callable[[int], str | None] | None = None,
) -> tuple[int, str | None]:
    """``path`` opened (``opening``) and locked exclusive without waiting: its descriptor, and
    None, or the pid of the daemon holding it (``lock_holder``; the descriptor is then the
    caller's to close). ``taking``: another lock than that (``lock_folder``'s). A file removed
    while it was being taken (a refused restore removes the lock file and the folders it
    made, holding them) is opened and taken again: a lock held on a file no longer there
    would leave the next run free to make and take another."""
    take = taking or functools.partial(lock_holder, exclusive=True)
    for _ in range(_RETAKES):
        fd = opening(path)
        try:
            owner = take(fd)
            if owner is not None or _is_there(fd, path):
                return fd, owner
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise CliError(f"cannot lock {path}: it is removed and made again as it is taken")


#: How many times ``locked_file`` takes a lock file removed under it before it gives up.
_RETAKES = 5


def _is_there(fd: int, path: Path) -> bool:
    """Whether the file open as ``fd`` is still the one at ``path``, as opening ``path``
    finds it: through a link too (``kiosk.lock`` a link to /run/kiosk/kiosk.lock on a card
    kept read-only), as the open that gave ``fd`` followed it."""
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    return os.path.samestat(os.fstat(fd), there)


def lock_holder(fd: int, *, exclusive: bool) -> str | None:
    """Lock ``kiosk.lock`` (open as ``fd``) without waiting, ``exclusive`` or shared: None
    when it is taken; when a daemon holds it, that daemon's pid as ``hold_data_dir`` wrote it
    (``unknown``: unsaid). Any other ``OSError`` (a file system without locks) is raised."""
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
    return None


def lock_folder(data: Path, *, exclusive: bool) -> int | None:
    """The data dir itself locked (``flock`` on the folder, not on ``kiosk.lock``, which the
    daemon holds exclusive for its life), without waiting: exclusive by a restore for its
    whole run, shared by each maintenance verb that writes in the data dir for as long as it
    writes, so that verbs go on beside one another and beside the daemon, and a restore and a
    verb that writes refuse each other. The open descriptor, to close to let go; the lock is
    on the folder at ``data`` when it is taken (``locked_file``: one removed and made again
    meanwhile is taken again). ``BlockingIOError`` when the other side holds it.

    A verb's shared lock is None where there is nothing to lock (no such folder, one this user
    may not open, a file system that locks nothing: some NFS and FUSE mounts): no restore can
    hold such a data dir, so the verb has none to wait for. A restore's exclusive lock that
    cannot be taken for any other reason than the other side's is refused (``CliError``: on
    a file system that locks nothing, ``unlockable`` names it), never gone on without."""
    how = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    try:
        fd, _ = locked_file(data, _folder, lambda fd: fcntl.flock(fd, how))
    except BlockingIOError:
        raise
    except OSError as exc:
        if not exclusive:
            return None
        if exc.filename is None and exc.errno in NOT_LOCKABLE:
            raise CliError(unlockable(data, exc)) from None
        raise CliError(_not_held(data, exc)) from None
    return fd


def _folder(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


#: What ``flock`` fails with on a file system that locks nothing (some NFS, FUSE mounts).
NOT_LOCKABLE = (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF)

#: Why a restore needs the data dir's lock.
_WHY_HELD = (
    "a restore holds the data dir against the daemon and the maintenance commands, and without"
    " that lock it could be written over under it"
)


def unlockable(data: Path, exc: OSError) -> str:
    """Why a restore is refused on a data dir whose file system locks nothing, naming it."""
    from checkpoint.volume import data_volume

    volume = data_volume(data)
    on = "unknown" if volume is None else f"{volume.fs_type}, mounted at {volume.mount_point}"
    return (
        f"cannot lock the data dir {data}: its file system ({on}) does not lock files"
        f" (flock: {exc.strerror or exc}); {_WHY_HELD}: restore onto a local file system (the"
        " card's; a drill into a local folder); nothing was changed"
    )


def _not_held(data: Path, exc: OSError) -> str:
    """Why a restore is refused whose data dir's lock failed otherwise (``flock``: a security
    module's denial, EPERM, ENOSYS; the folder not openable)."""
    step = "flock" if exc.filename is None else "open"
    return (
        f"cannot lock the data dir {data} ({step}: {exc.strerror or exc}); {_WHY_HELD};"
        " nothing was changed"
    )


def _lock_file(path: Path) -> int:
    """The lock file opened for ``flock``: for writing (its pid), or on a card mounted
    read-only, as it is (``flock`` needs no write access), so the daemon gets as far as
    standing by (``kiosk.standby``) instead of ending at its lock."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    except OSError as exc:
        if exc.errno != errno.EROFS:
            raise
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def emulated_devices(config: KioskConfig) -> list[str]:
    """The devices of ``config`` that are emulators (the demo's defaults, which a config that
    leaves out a device section gets): fine on a bench, never at a real gate."""
    found = []
    if config.policy.mode != "pass_only" and config.thermometer.driver.type == "fake":
        found.append("thermometer.driver")
    if config.gate.driver.type == "fake":
        found.append("gate.driver")
    if config.policy.mode != "temperature_only":
        found += [
            f"readers.sources[{i}]"
            for i, source in enumerate(config.readers.sources)
            if source.type in ("fake_camera", "fake_hid")
        ]
    if config.pi_health.driver.type == "fake":  # a real under-voltage would go unseen
        found.append("pi_health.driver")
    return found


def unread_lanes(config: KioskConfig) -> str | None:
    """The readers' lane ``direction``s a config sets and never reads (they decide only with
    ``site.direction_from = 'readers'`` on a two-way kiosk), said as a warning; else None."""
    site = config.site
    if site.direction == "both" and site.direction_from == "readers":
        return None
    keys = [
        f"readers.sources[{i}].direction"
        for i, source in enumerate(config.readers.sources)
        if source.direction is not None
    ]
    if not keys:
        return None
    return (
        f"{', '.join(keys)} not read: a reader's lane decides the direction only with"
        " site.direction = 'both' and site.direction_from = 'readers'"
    )


def _os_error(exc: OSError) -> str:
    """What went wrong and with which file ("File exists" alone does not say it is --data)."""
    what = exc.strerror or str(exc)
    return f"{exc.filename}: {what}" if exc.filename and exc.strerror else what


def no_trusted_key(core: object) -> str | None:
    """Why a kiosk that checks passes must not start: it trusts no issuer key (every pass
    would be denied as ``pass_unknown_key`` while the kiosk said it was deciding)."""
    from kiosk.config import trust_dir
    from kiosk.core import Core

    assert isinstance(core, Core)
    if core.config.policy.mode == "temperature_only" or core.trust.names:
        return None
    return no_trusted_key_in(trust_dir(core.config, core.data_dir))


def no_trusted_key_in(folder: Path) -> str:
    """The refusal of a pass-checking kiosk whose trust folder holds no key, and its mend: a
    configuration error (exit 2, ``kiosk run`` and ``check-config`` alike), never a start to try
    again (systemd restarted it every 3 s for ever)."""
    return (
        f"no trusted issuer key (*.pub) in {folder}: `kiosk keys new --dir DIR --name NAME`"
        f" makes a pair (the .key stays with the office), and its NAME.pub goes into {folder};"
        " or set policy.mode = 'temperature_only'"
    )


def _not_ours_or(data: Path, message: str) -> CliError:
    """A start failure, exit 1 (kiosk.service tries again); or, when files of the data dir
    belong to another user than this one and the failure is a refusal to this user (a trust
    key copied in with plain ``sudo cp``, 0600), the failure, those files and the ``chown``
    that gives them back, exit 2: no restart mends it, and systemd started it again every 3 s
    for ever. A busy port or a missing device stays exit 1 whoever owns what."""
    foreign = _foreign_files(data) if _refused_access(message) else []
    if not foreign:
        return CliError(message)
    return UsageError(
        f"{message}; files of {data} another user owns: {', '.join(foreign)} (left by a kiosk"
        f" verb run with plain sudo?): sudo chown -R {_user()} {data}, then `sudo systemctl"
        " restart kiosk`"
    )


def _refused_access(message: str) -> bool:
    return os.strerror(errno.EACCES) in message or os.strerror(errno.EPERM) in message


def _foreign_files(data: Path, most: int = 3) -> list[str]:
    """Up to ``most`` files of ``data`` (and of its folders) another user owns, with their
    owner, for the message; the data dir's own folders are few and small (keys, trust)."""
    me, found = os.geteuid(), []
    with contextlib.suppress(OSError):
        for folder, folders, files in os.walk(data):
            for name in sorted(set(folders + files) - {"lost+found"}):  # a disk's own
                path = Path(folder, name)
                with contextlib.suppress(OSError):
                    owner = path.lstat().st_uid
                    if owner != me:
                        found.append(f"{path.relative_to(data)} (owner uid {owner})")
                if len(found) >= most:
                    return found
            if Path(folder).relative_to(data).parts:
                folders[:] = []  # two levels: DATA/* and DATA/*/*
    return found


def _unmendable() -> tuple[type[StoreFault], ...]:
    """A log this program must not write however often it is started (another kiosk's, a
    newer release's: a backup put back from another gate or a later version): exit 2, so that
    kiosk.service stops (``RestartPreventExitStatus=2``) with the line in ``systemctl status``
    instead of starting again every 3 s for ever, the same line into the journal each time."""
    from checkpoint.app import ForeignLog
    from kiosk.store import NewerSchema

    return (ForeignLog, NewerSchema)


def _startup_errors() -> tuple[type[BaseException], ...]:
    """Problems an operator can fix (a trust folder this user may not read, an unusable
    database, a missing decoder library, a calibration file): one line on stderr, exit 1, no
    traceback. A credential the daemon cannot use is exit 2 (``_start_failure``)."""
    from drivers.decoders import DecoderUnavailable
    from kiosk.calibration import CalibrationError
    from kiosk.passes import TrustListError
    from kiosk.store import StoreFault
    from kiosk.tokens import TokenError

    return (TrustListError, StoreFault, DecoderUnavailable, CalibrationError, TokenError)
