"""The ledgers around the gate, bundled for the composition root and the CLI.

``MIGRATIONS`` are the sets to open the event log with (after the lists'); ``Ledgers.build``
makes every ledger on one log, clock and site config, the returnee ledger's fever threshold
taken from the thermometry config so a returnee's fever is the gate's fever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from . import compound, observation, peers, roster, services, vehicles
from .clock import Clock, ClockReading
from .community import LogLike
from .compound import CompoundMap
from .observation import ObservationLedger
from .roster import DEFAULT_RETENTION, Roster
from .services import ServiceDesk
from .vehicles import VehicleList

__all__ = ["MIGRATIONS", "Ledgers", "purge_ledgers"]

MIGRATIONS: tuple[Any, ...] = tuple(
    ledger.MIGRATIONS for ledger in (observation, services, compound, vehicles, roster)
)


@dataclass(frozen=True)
class Ledgers:
    observation: ObservationLedger
    services: ServiceDesk
    compound: CompoundMap
    vehicles: VehicleList
    roster: Roster

    @classmethod
    def build(
        cls,
        log: LogLike,
        clock: Clock,
        tz: ZoneInfo | str,
        fever_threshold_c: float,
        *,
        retention_days: int = DEFAULT_RETENTION.days,
    ) -> Ledgers:
        """``retention_days``: the store's (``store.retention_days``), how far ahead the
        roster takes a shift (``Roster.reach``)."""
        ledger = ObservationLedger(log, clock, tz, fever_threshold_c=fever_threshold_c)
        return cls(
            observation=ledger,
            services=ServiceDesk(log, clock, tz),
            compound=CompoundMap(log, clock),
            vehicles=VehicleList(log, clock),
            roster=Roster(
                log, clock, open_alarms=ledger.alarms, retention=timedelta(days=retention_days)
            ),
        )


def purge_ledgers(
    db: sqlite_utils.Database,
    cutoff: datetime,
    cutoff_day: date,
    purged_at: datetime,
    now: ClockReading | None = None,
    boot_id: str = "",
    hold: datetime | None = None,
    release: datetime | None = None,
) -> dict[str, int]:
    """Retention for the ledgers (run through ``EventLog.submit``): returnees whose
    observation ended before ``cutoff_day`` (the cutoff's local date in the site's zone:
    observation dates are local) and service requests closed before ``cutoff`` lose their
    personal fields; the other gates' passages held here (``kiosk.peers``) stamped before it
    go (``hold``: the passing exits of the quota's look-back keep their household,
    ``peers.purge``; those held stamped before ``release``, the look-back's start, go).
    The compound map, the vehicle list and the roster hold what the compound is,
    not what happened to a person, and are replaced by their imports instead. ``now`` (the
    log's clock) and ``boot_id`` (this boot's) date a request closed before NTP set the
    clock (``kiosk.queries.held_dated``)."""
    return {
        "returnees": observation.purge(db, cutoff_day, purged_at),
        "service_requests": services.purge(db, cutoff, purged_at, now, boot_id),
        "peer_passages": peers.purge(db, cutoff, hold, release, purged_at),
    }
