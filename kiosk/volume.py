"""Where the data dir lives: a file system that keeps it across a reboot, or RAM.

Raspberry Pi OS's "Overlay File System" (raspi-config) puts every write to ``/`` in a tmpfs,
and a data dir on tmpfs or ramfs is in RAM outright: the event log, the keys and the trust
list are then lost at every reboot, silently. The composition root reads the data dir's file
system once at start (``checkpoint.volume``: the platform's mount table) and hands the core a
``DataVolume``; ``Core.health`` reports it and a volatile one is a warning the guard's devices
page and ``/api/v1/health`` show (``docs/operations.md`` says what to do).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DataVolume"]


@dataclass(frozen=True)
class DataVolume:
    """The data dir's file system: its type (``ext4``, ``tmpfs``, ``overlay``...), where it is
    mounted, and whether what is written there is lost at a reboot (``volatile``; for an
    overlay, ``upper_type`` is the file system its writes go to, ``None`` when it could not be
    found: then it counts as volatile, as a container's or raspi-config's overlay is)."""

    fs_type: str
    mount_point: str
    volatile: bool
    upper_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
