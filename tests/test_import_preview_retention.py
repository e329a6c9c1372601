"""An import previewed at the console and never applied: the sheet (households, plates, a
quarantine list's names and notes) is held in the daemon's memory for ``PENDING_S`` (15
minutes) to be applied. It was dropped only when someone previewed another import, so a
preview nobody followed stayed in memory for weeks, past every retention purge; the daemon's
hourly purge now drops every expired preview (docs/privacy.md, the daemon's memory)."""

from __future__ import annotations

from guard_support import ADMIN_PW, BASE, make_app, signed_in

from checkpoint.app import Daemon
from ui.guard.community.common import PENDING_S

SHEET = b"building,floor,household\n3,7,3-2-701\n"


def test_an_expired_preview_leaves_the_daemons_memory_at_the_next_purge(guard_core, clock):
    app = make_app(guard_core)
    with signed_in(app, "root", ADMIN_PW) as admin:
        shown = admin.post(
            "/guard/community/imports/preview",
            data={"csrf": admin.csrf, "kind": "compound"},
            files={"file": ("map.csv", SHEET)},
            headers={"Origin": BASE},
        )
    assert shown.status_code == 200
    waiting = app.state.community_imports
    assert len(waiting) == 1
    daemon = Daemon(guard_core)
    daemon.previews = waiting  # as Daemon.start hands it the console's
    daemon.purge_once()
    assert len(waiting) == 1  # still to be applied
    clock.advance(PENDING_S + 1)
    daemon.purge_once()
    assert len(waiting) == 0
