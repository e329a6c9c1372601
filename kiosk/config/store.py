"""Event log and retention (see docs/event-log.md)."""

from os import PathLike
from pathlib import Path
from typing import Literal

from pydantic import Field

from ._base import FilePath, Section


class StoreSection(Section):
    path: FilePath = "kiosk.db"
    """SQLite file; relative paths are under the data dir. An absolute path's folder outside the
    data dir must exist: the kiosk never makes it, so a log in a folder on a USB disk
    (/mnt/ssd/kiosk/kiosk.db) is not begun anew on the card when the disk did not mount. An
    absolute path outside the data dir is read-only to the installed kiosk.service
    (ProtectSystem=strict) until a drop-in adds its folder to ReadWritePaths= (and to
    kiosk-purge.service's)."""
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    """FULL: a committed decision survives a power cut (see docs)."""
    retention_days: int = Field(30, ge=1, le=3650)
    """Personal data older than this is purged daily."""
    min_free_mb: int = Field(50, ge=1, le=100000)
    """Below this free space the store reports degraded."""
    busy_timeout_ms: int = Field(5000, ge=100, le=60000)
    """How long a write waits for another process's lock (a CLI purge) before it counts as a store
    fault."""

    def file_in(self, data_dir: str | PathLike[str]) -> Path:
        """The event log's file as the daemon opens it (``EventLog.from_config``): ``path``, a
        relative one under ``data_dir``. The verbs that find the log by the config (``kiosk
        backup``, ``kiosk restore``, ``verify-log``) ask here too."""
        path = Path(self.path)
        return path if path.is_absolute() else Path(data_dir) / path
