"""The clerks' sheets through the daemon's own edge (``checkpoint.server.server_config``): the
body limit in front of every route, then the console's import (docs/community.md, *Imports*).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from guard_support import BASE, edge_client

from ui.guard.community.imports import MAX_UPLOAD


@pytest.fixture
def edge(data_dir, clock, monkeypatch):
    with edge_client(data_dir, clock, monkeypatch) as client:
        yield client


def upload(client: TestClient, data: bytes):
    return client.post(
        "/guard/community/imports/preview",
        data={"csrf": client.csrf, "kind": "compound"},
        files={"file": ("map.csv", data)},
        headers={"Origin": BASE},
        follow_redirects=False,
    )


def big_map(size: int) -> bytes:
    """A compound map of 5,000 dwellings, each line padded to ``size`` in all by the spaces a
    spreadsheet program leaves after a cell's text."""
    lines = ["building,unit,floor,household"]
    pad = " " * (size // 5_000)
    for i in range(5_000):
        building, rest = divmod(i, 400)
        lines.append(f"{building + 1},1,{rest // 4 + 1},{building + 1}-1-{rest:03d}{pad}")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.slow
def test_a_sheet_under_the_imports_5_mb_reaches_the_import_through_the_edge(edge):
    # The import takes sheets of up to 5 MB (a big compound's list with names and notes),
    # but the edge in front of it cut every body at web.max_body_bytes (1 MiB): the admin's
    # 2 MB list was a bare '{"detail":"request body too large"}', not the console's answer.
    data = big_map(2 * 1024 * 1024)
    assert 1024 * 1024 < len(data) < MAX_UPLOAD
    answer = upload(edge, data)
    assert answer.status_code != 413, answer.text
    assert answer.status_code == 200 and 'data-key="added">5000<' in answer.text


def test_a_body_past_the_imports_bound_is_still_refused_before_it_is_read(edge):
    answer = upload(edge, b"x" * (MAX_UPLOAD + 256 * 1024))
    assert answer.status_code == 413
    # Any other route keeps web.max_body_bytes.
    other = edge.post(
        "/guard/calibration",
        data={"csrf": edge.csrf, "clinical_c": "x" * (1024 * 1024 + 10)},
        headers={"Origin": BASE},
        follow_redirects=False,
    )
    assert other.status_code == 413
