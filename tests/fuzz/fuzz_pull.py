"""Fuzz the office's pull of a gate's log (office/pull.py ``Puller.pull``), the answer being
anything a host on the LAN can send: a fuzzed status and body, or a page of events that
chain and hash as they should (a chain is no secret) with one field's value fuzzed.

Only ``PullError`` (``ChainError``, ``PinError``, ``PageTooLarge``) may come out; a page that
is taken must be what the target then holds.
"""

from __future__ import annotations

import contextlib
import json
import os

import atheris
import httpx
from _fuzz import instrumented, run, scratch

with instrumented():
    from kiosk.export import COLUMNS
    from kiosk.hashchain import GENESIS, event_hash
    from office.pull import Puller, PullError

_DIR = scratch()
#: The gate's answer to the next request: (status, body). One client for every input (an
#: httpx.Client builds an SSL context: ~20 ms each).
_ANSWER: list[tuple[int, bytes]] = [(200, b"")]
_CLIENT = httpx.Client(
    transport=httpx.MockTransport(
        lambda request: httpx.Response(_ANSWER[0][0], content=_ANSWER[0][1])
    )
)
_FIELDS = [c for c in COLUMNS if c not in ("hash", "prev_hash")]


def _rows(fdp: atheris.FuzzedDataProvider) -> bytes:
    rows, prev = [], GENESIS
    for seq in range(1, fdp.ConsumeIntInRange(1, 3) + 1):
        row = dict.fromkeys(COLUMNS) | {"kiosk_id": "gate-x", "seq": seq, "prev_hash": prev}
        row |= {"id": f"e{seq}", "decision": "pass", "reasons": [], "flags": [], "boot_id": "b"}
        row |= {"mono_ns": seq, "ts": "2026-03-02T08:30:00.000000Z"}
        text = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40))
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            value = text
        row[fdp.PickValueInList(_FIELDS)] = value
        try:
            row["hash"] = prev = event_hash(row)
        except Exception:  # noqa: BLE001 - a value the chain cannot hash: the gate sends it anyway
            row["hash"] = prev = "0" * 64
        rows.append(row)
    return json.dumps({"events": rows, "last": len(rows)}).encode()


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        status, body = 200, _rows(fdp)
    else:
        status = fdp.PickValueInList([200, 200, 200, 301, 401, 404, 422, 500])
        body = fdp.ConsumeBytes(fdp.remaining_bytes())
    _ANSWER[0] = (status, body)
    path = _DIR / "pulled.db"
    try:
        with Puller(path, client=_CLIENT, attempts=1, sleep=lambda s: None) as puller:
            puller.pull("http://gate-x", "t" * 32)
    except PullError:
        pass
    finally:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}{suffix}")


if __name__ == "__main__":
    run(one_input)
