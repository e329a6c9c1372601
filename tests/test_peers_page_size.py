"""A peer's whole page as its gate serves it is within what this gate reads: a full page of
passages (a backlog after an outage) with its guards' whole set of revocations was refused
as "more values than a page of passages has", at every poll, the peer stale for good."""

from __future__ import annotations

import json

import httpx
from test_compound_gates import NOW, Gate, peer_entry

from kiosk.peers import MAX_PAGE_REVOCATIONS
from kiosk.store import format_ts


def full_page() -> str:
    """The largest answer a gate serves in the normal course: ``PAGE_ROWS`` passages and
    ``MAX_PAGE_REVOCATIONS`` revocations, each as ``kiosk.peers`` writes them."""
    from checkpoint.peers import PAGE_ROWS

    stamp = format_ts(NOW)
    passages = [
        {"kiosk_id": "gate-north", "seq": seq, "pass_id": f"{seq:012x}",
         "household": f"{seq % 40}-{seq % 9}01", "direction": "out", "decision": "pass",
         "ts": stamp, "flags": ["quota_exempt"] if seq % 7 == 0 else []}
        for seq in range(1, PAGE_ROWS + 1)
    ]  # fmt: skip
    revocations = [
        {"pass_id": f"{i:012x}", "revoked_at": stamp, "actor": "guard 王秀英"}
        for i in range(MAX_PAGE_REVOCATIONS)
    ]
    return json.dumps(
        {"kiosk_id": "gate-north", "passages": passages, "next": PAGE_ROWS,
         "last": PAGE_ROWS, "origin": None, "unsynced_from": None, "now": stamp,
         "compound": None, "revocations": revocations},
        ensure_ascii=False,
    )  # fmt: skip


def test_a_full_backlog_page_with_every_revocation_is_read(tmp_path, clock, monkeypatch):
    from checkpoint.peers import PAGE_ROWS

    south = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north")])
    try:
        body = full_page()
        monkeypatch.setenv("PEER_TOKEN_GATE_NORTH", "t")
        transport = httpx.MockTransport(lambda r: httpx.Response(200, text=body))
        from checkpoint.peers import PeerSync

        sync = PeerSync(south.core, south.config.compound, client=httpx.Client(transport=transport))
        south.sync = sync
        got = sync.fetch(south.config.compound.peers[0])
        assert sync.states["gate-north"].last_error is None
        assert got >= PAGE_ROWS
        assert len(south.core.lists.current.peer_revocations) == MAX_PAGE_REVOCATIONS
    finally:
        south.close()
