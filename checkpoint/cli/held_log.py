"""The event log a maintenance verb writes, with the data dir's lock held shared while it is
open (``store_args.open_store``): a restore is refused meanwhile, and it is let go when the
log is closed, however the verb ends."""

from __future__ import annotations

import os

from kiosk.store import EventLog


class FolderHold:
    """The descriptor ``daemon_cmd.lock_folder`` gave (None: nothing held), let go once."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class HeldLog(EventLog):
    """An ``EventLog`` that lets go of ``hold`` when it is closed."""

    hold = FolderHold(None)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.hold.release()
