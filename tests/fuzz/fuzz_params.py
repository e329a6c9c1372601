"""Fuzz the parameter parsing of the kiosk's API and guard console, called directly (a
``TestClient`` per input is ~1,000 times slower): ``ui.api.parse_day``,
``prefers_ndjson`` (``Accept``), ``allowed_fields`` (``?fields=``), the guard's ``day``,
``date_field`` and ``safe_next``, and the handover form's local time.

Each may only refuse with its own error (an ``HTTPException`` of 400 or 403, ``BadInput``,
``CommunityError``); ``safe_next`` must only ever give a local guard path.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import atheris
from _fuzz import instrumented, run

with instrumented():
    from fastapi import HTTPException

    from kiosk.community import CommunityError
    from ui.api import allowed_fields, parse_day, prefers_ndjson
    from ui.guard.community.handover import local
    from ui.guard.forms import BadInput, date_field, day, safe_next

_TODAY = date(2026, 3, 2)
_TZ = ZoneInfo("Asia/Shanghai")


class _Token:
    def __init__(self, personal: bool) -> None:
        self.personal = personal

    def allows(self, scope: str) -> bool:
        return self.personal or scope != "logs:personal"


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    which = fdp.ConsumeIntInRange(0, 6)
    text = fdp.ConsumeUnicode(fdp.remaining_bytes())
    try:
        if which == 0:
            parse_day(text)
        elif which == 1:
            prefers_ndjson(text)
        elif which == 2:
            allowed_fields(_Token(len(text) % 2 == 0), text)  # type: ignore[arg-type]
        elif which == 3:
            day(text, _TODAY)
        elif which == 4:
            date_field(text, "quarantine.from")
        elif which == 5:
            local(text, _TZ)
        else:
            target = safe_next(text)
            if not target.startswith("/guard") or target.startswith("//") or "\\" in target:
                raise AssertionError(f"safe_next({text!r}) = {target!r}")
    except HTTPException as exc:
        if exc.status_code not in (400, 403):
            raise
    except (BadInput, CommunityError):
        pass


if __name__ == "__main__":
    run(one_input)
