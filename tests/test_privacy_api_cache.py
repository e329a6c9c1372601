"""The office API's exports of passages are not kept by a cache on the way.

docs/api.md says every export of passages answers ``Cache-Control: no-store``, as the guard
pages do; the API's did not say it. A response without it may be stored by whatever sits
between (a caching reverse proxy in front of the gate, a browser's cache where an office PC
opened the CSV link with its token), and served from there: names and dwellings (clear, for a
``logs:personal`` token) kept past every purge, to whoever asks the same address."""

from __future__ import annotations

import pytest

from kiosk.store import EventDraft


@pytest.mark.parametrize(
    ("path", "accept", "scopes"),
    [
        ("/api/v1/events", "application/json", ("logs:read",)),
        ("/api/v1/events", "application/x-ndjson", ("logs:read",)),
        ("/api/v1/events?fields=holder,household", "application/json",
         ("logs:read", "logs:personal")),
        ("/api/v1/events.csv", "text/csv", ("logs:read",)),
        ("/api/v1/events.csv?fields=holder", "text/csv", ("logs:read", "logs:personal")),
        ("/api/v1/passages", "application/json", ("passages:peer",)),
    ],
)  # fmt: skip
def test_an_export_of_passages_is_never_stored_by_a_cache(core, client, path, accept, scopes):
    core.store.append(
        EventDraft(direction="out", decision="pass", pass_id="a1b2c3d4e5f6", household="3-402",
                   holder="Wang Xiuying", person={"name": "Wang Xiuying"})
    )  # fmt: skip
    _, token = core.tokens.create(list(scopes), "office")
    headers = {"Authorization": f"Bearer {token}", "Accept": accept}
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers.get("cache-control", ""), path
