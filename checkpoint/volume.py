"""The data dir's file system, read from the kernel's mount table (``/proc/self/mountinfo``)
at start: is the event log written to the card, or to RAM (``kiosk.volume.DataVolume``)?

* ``tmpfs``, ``ramfs``: RAM; lost at every reboot.
* ``overlay``: writes go to its upper layer (``upperdir=``). Raspberry Pi OS's "Overlay File
  System" (raspi-config, the ``overlayroot`` package) puts that layer on a tmpfs
  (``/media/root-rw``): RAM. An upper layer on a card's file system keeps what is written; one
  that cannot be found here (a container's, on the host) counts as lost too.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from kiosk.volume import DataVolume

log = logging.getLogger(__name__)

MOUNTINFO = Path("/proc/self/mountinfo")
#: File systems whose content lives in RAM.
IN_RAM = frozenset({"tmpfs", "ramfs"})
#: The mount table is a few KB; a bound on what is read all the same.
MAX_MOUNTINFO_BYTES = 4 * 2**20

Mount = tuple[str, str, dict[str, str]]  # mount point, file system type, super options


def _unescape(field: str) -> str:
    """Mount points in mountinfo escape space, tab, newline and backslash as ``\\ooo``."""
    out, i = [], 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and all(c in "01234567" for c in code):
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of a mountinfo text, in the kernel's order (a later one over an earlier one
    at the same point); malformed lines are skipped."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        if "-" not in fields[6:]:
            continue
        dash = fields.index("-", 6)
        if len(fields) < dash + 4 or len(fields) < 5:
            continue
        options = {}
        for option in fields[dash + 3].split(","):
            key, _, value = option.partition("=")
            options[key] = value
        mounts.append((_unescape(fields[4]), fields[dash + 1], options))
    return mounts


def _inside(path: str, mount_point: str) -> bool:
    return mount_point == "/" or path == mount_point or path.startswith(mount_point + "/")


def mount_of(path: str, mounts: list[Mount]) -> Mount | None:
    """The mount ``path`` is on: the deepest mount point above it, the last of equals."""
    best: Mount | None = None
    for mount in mounts:
        if _inside(path, mount[0]) and (best is None or len(mount[0]) >= len(best[0])):
            best = mount
    return best


def data_volume(data_dir: Path, mountinfo: Path = MOUNTINFO) -> DataVolume | None:
    """What ``data_dir`` is on; None when the mount table cannot be read (not Linux)."""
    try:
        with mountinfo.open("rb") as f:
            text = f.read(MAX_MOUNTINFO_BYTES).decode("utf-8", "replace")
    except OSError:
        return None
    mounts = parse_mountinfo(text)
    path = os.path.realpath(data_dir)
    found = mount_of(path, mounts)
    if found is None:
        return None
    point, fs_type, options = found
    if fs_type != "overlay":
        return DataVolume(fs_type, point, fs_type in IN_RAM)
    upper = options.get("upperdir", "")
    below = mount_of(upper, [m for m in mounts if m is not found]) if upper else None
    if below is None or not os.path.isdir(upper):
        return DataVolume(fs_type, point, True)
    return DataVolume(fs_type, point, below[1] in IN_RAM, upper_type=below[1])


def warn_if_volatile(volume: DataVolume | None, data_dir: Path) -> None:
    """The log line of a data dir in RAM (once, at start)."""
    if volume is None or not volume.volatile:
        return
    on = volume.fs_type if volume.upper_type is None else f"overlay on {volume.upper_type}"
    log.warning(
        "the data dir is in RAM (%s): the event log, keys and trust list are lost at every"
        " reboot; put it on the card (docs/operations.md, 'Data dir in RAM')",
        on,
        extra={"data_dir": str(data_dir), "mount_point": volume.mount_point},
    )
