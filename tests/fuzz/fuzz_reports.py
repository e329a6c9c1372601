"""Fuzz the office's reader of a gate's daily reports (office/gatereports.py
``collect_reports``): any status and body, or a report of the right shape with one value
fuzzed (its day, zone, community counts, list counts, clock). Only ``PullError`` may come
out, and nothing is kept from a report whose day is not the office's.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import atheris
import httpx
from _fuzz import instrumented, run

with instrumented():
    from office.gatereports import collect_reports
    from office.pull import PullError

_NOW = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)
_ANSWER: list[tuple[int, bytes]] = [(200, b"")]
_CLIENT = httpx.Client(
    transport=httpx.MockTransport(
        lambda request: httpx.Response(_ANSWER[0][0], content=_ANSWER[0][1])
    )
)
_PLACES = ["day", "timezone", "community", "community.returnees", "community.fevers",
           "quarantine_lists", "clock", "clock.unsynced"]  # fmt: skip


class _Kept:
    def write_gate_report(
        self, kiosk_id: str, day: date, timezone: str, ledgers: object, final: bool
    ) -> None:
        if day != date(2026, 3, 3) and not final:
            raise AssertionError(f"kept {day} of a gate whose today is not the office's")

    def final_report_days(self, kiosk_id: str, since: date) -> set[date]:
        return set()


def _report(fdp: atheris.FuzzedDataProvider) -> bytes:
    report: dict[str, object] = {
        "day": "2026-03-03",
        "timezone": "Asia/Shanghai",
        "community": {"returnees": {"new": 1}, "fevers": {"returnee_checks": 0}},
        "quarantine_lists": None,
        "clock": {"unsynced": 0},
    }
    text = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 60))
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = text
    place = fdp.PickValueInList(_PLACES).split(".")
    holder = report
    for key in place[:-1]:
        holder = holder[key]  # type: ignore[assignment]
    holder[place[-1]] = value
    return json.dumps(report).encode()


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        _ANSWER[0] = (200, _report(fdp))
    else:
        status = fdp.PickValueInList([200, 200, 302, 401, 500])
        _ANSWER[0] = (status, fdp.ConsumeBytes(fdp.remaining_bytes()))
    try:
        collect_reports(_CLIENT, _Kept(), "http://gate-1", "gate-1", "t" * 20, now=_NOW)
    except PullError:
        pass


if __name__ == "__main__":
    run(one_input)
