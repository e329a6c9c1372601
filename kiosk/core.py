"""The core objects, bundled: what the screens and the API are handed.

``Core`` holds only core objects (the event log, lists, trust, history, tokens, accounts,
calibration, the ledgers around the gate, the engine runner) plus the devices behind their
protocols. The composition root (``checkpoint.app.build_core``) builds it; ``ui`` receives
it and calls into it.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import kiosk
from kiosk.accounts import AccountStore
from kiosk.bus import EventBus
from kiosk.calibration import CalibrationStore
from kiosk.clock import Clock
from kiosk.config import KioskConfig
from kiosk.deadline import LogUses, close_within
from kiosk.devices import CodeReader, Gate, Thermometer
from kiosk.export import InProcessPages, PageSource
from kiosk.history import PassageHistory
from kiosk.ledgers import Ledgers
from kiosk.lists import ListStore
from kiosk.passes import TrustList
from kiosk.pihealth import PowerWatch
from kiosk.ports import ListsSyncStatus, Peers
from kiosk.retention import (
    REFUSED_KEY,
    STEP_CAUSES,
    STEP_FAILED_KEY,
    WIPE_STEP,
    last_run,
    overdue,
    recorded,
    refused_seconds,
)
from kiosk.runner import EngineRunner
from kiosk.store import EventLog, StoreFault
from kiosk.tlscert import TlsCertificate
from kiosk.tokens import UNBOUND_PEER, TokenStore
from kiosk.volume import DataVolume
from kiosk.wipe import owed_for

log = logging.getLogger(__name__)

#: The loop's heartbeat must be younger than this for the kiosk to count as deciding.
HEARTBEAT_MAX_AGE_S = 5.0


#: The most ``Devices.close`` waits for the relay's close, and for the thermometer's, each.
DEVICE_CLOSE_S = 2.0


@dataclass
class Devices:
    thermometer: Thermometer | None
    readers: list[CodeReader]
    gate: Gate

    def close(self, timeout_s: float = DEVICE_CLOSE_S, *, keep_gate: bool = False) -> None:
        """Every caller's order (``Core.close``: the demo, replay, the bench, the verbs): the
        relay closed first (its close commands it locked), then the thermometer
        (``close_outputs``), then the readers stopped (each worker's stop is bounded by
        itself): a reader stuck in its driver never keeps the relay open. ``keep_gate``: the
        relay left open, as it is (``Core.close_keeping_gate``)."""
        self.close_outputs(timeout_s, keep_gate=keep_gate)
        for reader in self.readers:
            with contextlib.suppress(Exception):
                reader.stop()

    def close_outputs(self, timeout_s: float = DEVICE_CLOSE_S, *, keep_gate: bool = False) -> None:
        """The relay, then the thermometer, closed, each in a daemon thread waited for
        ``timeout_s`` at most (a relay whose command is stuck in its driver holds its own
        lock): the daemon's stop, whose engine stopped the readers already, and ``close``.
        ``keep_gate``: the thermometer only."""
        for kind, device in (("gate", self.gate), ("thermometer", self.thermometer)):
            if device is not None and not (keep_gate and kind == "gate"):
                close_within(kind, device.close, timeout_s)


@dataclass
class Core:
    """The core objects the screens and the API are handed; routes call these, nothing else."""

    config: KioskConfig
    clock: Clock
    data_dir: Path
    store: EventLog
    bus: EventBus
    lists: ListStore
    trust: TrustList
    history: PassageHistory
    tokens: TokenStore
    accounts: AccountStore
    calibration: CalibrationStore
    devices: Devices
    runner: EngineRunner
    #: the returnees, household services, compound map, resident vehicles, roster
    ledgers: Ledgers
    issuer_key: Ed25519PrivateKey | None = None
    #: why the key ``issuer_key_path`` names could not be used (damaged on the card), or None
    issuer_key_problem: str | None = None
    version: str = kiosk.__version__
    #: builds `/api/v1/events` pages; the daemon hands in one that uses a helper process
    pages: PageSource = field(default_factory=InProcessPages)
    #: the data dir's file system, read at start by the daemon (in RAM: a warning)
    data_volume: DataVolume | None = None
    #: the API's TLS certificate's validity, read by the daemon at start (``web.tls``)
    tls_certificate: TlsCertificate | None = None
    #: the Pi's power and heat, polled by the daemon (``kiosk.pihealth``)
    pi_power: PowerWatch | None = None
    #: the office's list-bundle sync, run by the daemon when ``fleet.lists_url`` is set
    lists_sync: ListsSyncStatus | None = None
    #: the compound's other gates, polled by the daemon when ``compound.peers`` is set
    peers: Peers | None = None
    #: the daemon's purges refused in a row (``kiosk.retention.note_refused``'s record, held
    #: here too for a card that refuses to write it); None: the last purge ran, or none was
    #: tried since the start (health then reads the record the log keeps: ``_retention``)
    purge_refused: dict[str, Any] | None = None
    #: A step after the daemon's purges' commits failing in a row (``STEP_FAILED_KEY``; None
    #: as for ``purge_refused``).
    purge_step_failed: dict[str, Any] | None = None
    #: the console's actions' uses of the event log (``ui.guard.deps``), from the request's
    #: start to its record: the daemon's stop closes the log under none of them (their reads,
    #: in whichever thread, are the log's own uses besides: ``EventLog.reader``)
    web_uses: LogUses = field(default_factory=LogUses)

    def close(self) -> None:
        """Release what ``build_core`` opened, for a core that was never run as a daemon."""
        self.runner.close()
        self.devices.close()
        self.store.close()

    def close_keeping_gate(self) -> None:
        """``close``, the relay left open and as it was: a start the card refused
        (``checkpoint.standby``), whose relay ``kiosk run`` built first and drives while it
        stands by, and hands the next try of the log."""
        self.runner.close()
        self.devices.close(keep_gate=True)
        self.store.close()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.config.site.timezone)

    def deciding(self, runner_health: dict[str, Any] | None = None) -> bool:
        """The loop is alive, the engine is not blocked and the event log can commit."""
        runner_health = runner_health if runner_health is not None else self.runner.health()
        return (
            bool(runner_health.get("deciding"))
            and self.runner.loop_healthy(HEARTBEAT_MAX_AGE_S)
            and self.store.health().state != "fault"
        )

    def health(self) -> dict[str, Any]:
        """The `/api/v1/health` report: devices, store, clock, lists, disk, version."""
        report = dict(self.runner.health())
        try:
            usage = shutil.disk_usage(self.data_dir)
            report["disk_free_mb"] = round(usage.free / 2**20, 1)
        except OSError:
            report["disk_free_mb"] = None
        report["clock"] = {"synced": self.clock.synced(), "now": self.clock.now().isoformat()}
        model = self.calibration.get()
        # An unfitted model reads some wrists half a degree off, more than the early margin:
        # every site is calibrated before service (docs/thermometer.md); until then, say so.
        # A file that cannot be read (damaged on the card): the model in use stays, and the
        # guard is told, never left to read "not fitted" for a site that was fitted.
        report["calibration"] = {
            "fitted": not model.is_default,
            "fitted_at": model.fitted_at,
            "problem": self.calibration.problem,
        }
        # A key file added to the trust folder that cannot be read: the keys in force stay,
        # and the guard is told why that issuer's passes are refused (not only the log).
        report["trust"] = {"problem": self.trust.problem}
        current = self.lists.current
        report["lists"] = current.freshness.to_dict(
            self.clock.now(), self.config.policy.lists_stale_after_h
        ) | {"households_sharing_a_key": current.households_sharing_a_key()}
        report["last_seq"] = self.store.last_seq
        report["retention"] = self._retention()
        report["kiosk_id"] = self.config.site.kiosk_id
        if self.lists_sync is not None:
            report["lists_sync"] = self.lists_sync.status()
        if self.peers is not None:  # the compound's other gates (checkpoint.peers.PeerSync)
            report["peers"] = self.peers.status()
            report["peer_tokens"] = self._peer_tokens()
        report["version"] = self.version
        if self.data_volume is not None:
            report["data_volume"] = self.data_volume.to_dict()
        if self.tls_certificate is not None:
            report["tls_certificate"] = self.tls_certificate.to_dict(self.clock.now())
        if self.pi_power is not None:
            report["pi_power"] = self.pi_power.status()
        report["deciding"] = self.deciding(report)
        return report

    def _peer_tokens(self) -> dict[str, Any]:
        """How many active ``passages:peer`` tokens speak for any gate (issued before
        ``--for``), and what that allows; None unread."""
        try:
            unbound = sum(1 for t in self.tokens.list() if t.active and t.unbound_peer)
        except (sqlite3.Error, StoreFault):  # StoreFault: no reader opens (the card gone)
            return {"unbound": None, "note": None}
        return {"unbound": unbound, "note": UNBOUND_PEER if unbound else None}

    def _retention(self) -> dict[str, Any]:
        """The purge's last run, and whether it is overdue (``kiosk.retention.overdue``): by
        that run's time, by how long the purges have been refused (the daemon's
        ``purge_refused``, kept across restarts and reboots: ``refused_seconds``), and by how
        long a step after their commits has failed (``purge_step_failed``, the same way); a
        daemon that holds neither (restarted since) by the records its purges left in the log,
        so a card stands from the start, not from the next purge's failure."""
        last = self._last_purge()
        refused = self.purge_refused or self._recorded(REFUSED_KEY)
        mono = self.clock.monotonic_ns()
        refused_s = refused_seconds(refused, self.store.boot_id, mono)
        cause = refused.get("cause") if refused_s is not None else None
        step = self.purge_step_failed or self._recorded(STEP_FAILED_KEY)
        said = str(step.get("cause")) if isinstance(step, dict) else ""  # a damaged record: ""
        failing = (refused_seconds(step, self.store.boot_id, mono), said)
        now = self.clock.now()
        owed = self._wipe_owed(now)  # held up by a reader: no step failed, the wipe still owed
        if owed is not None and owed > (failing[0] or 0.0):
            failing = (owed, STEP_CAUSES[WIPE_STEP])
        late = overdue(last, now, refused_s, cause, failing)
        return {"last_run": last, "overdue": late}

    def _recorded(self, key: str) -> Any:
        """What the purges recorded in the log under ``key`` (``kiosk.retention.recorded``),
        for a daemon that holds nothing in memory (it restarted since); None unread."""
        try:
            return recorded(self.store.reader(), key)
        except (sqlite3.Error, StoreFault):
            return None

    def _wipe_owed(self, now: datetime) -> float | None:
        """How long a WAL wipe has been owed (``kiosk.wipe.owed_for``); None unread."""
        try:
            return owed_for(self.store.reader(), now)
        except (sqlite3.Error, StoreFault):
            return None

    def _last_purge(self) -> dict[str, Any] | None:
        """The retention purge's last run (``kiosk.retention.last_run``): a purge that changed
        nothing writes no audit row, so this is what shows it still runs. None unread."""
        try:
            return last_run(self.store.reader())
        except (sqlite3.Error, StoreFault):  # the store's own health names a failing file
            return None
