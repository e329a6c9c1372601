"""In-memory tables that grow per request must stay bounded for weeks of use."""

from __future__ import annotations

import pytest

from kiosk.community import CommunityError
from ui.guard.community.common import PENDING_KEPT, Pending


def test_previewed_imports_held_in_memory_are_bounded_in_number():
    """Each preview of an upload (up to 5 MB, 20,000 rows, parsed into a plan) is held for
    15 minutes for its apply; an operator fixing a spreadsheet and previewing it again and
    again, or a script, would otherwise hold one parsed plan per preview. The oldest goes
    first, and its apply says to upload again."""
    pending = Pending()
    now = 1000.0  # the monotonic clock, seconds
    tokens = [pending.put("admin", "residents", object(), now) for _ in range(50)]
    assert len(pending._items) == PENDING_KEPT
    with pytest.raises(CommunityError, match="expired: upload the file again"):
        pending.take(tokens[0], "admin", now)
    kind, _plan = pending.take(tokens[-1], "admin", now)  # the latest is applied as before
    assert kind == "residents"
