"""A guard's manual decision says "done" only once its event is committed; a storage that
fails (or does not answer within ``engine.store_deadline_ms``) says ``err.store``, never a
false "done" and never a 5xx."""

from __future__ import annotations

import asyncio
import html
from urllib.parse import parse_qs, urlsplit

import pytest
from guard_support import close_core, make_app, make_core, post, signed_in
from support import storage_failing

from kiosk.config import parse_config
from kiosk.store import StoreFault
from ui import i18n

FORMS = {
    "/guard/manual": {"decision": "pass", "reason": "known resident", "subject": "none"},
    "/guard/register/person": {
        "name": "Wang Fang", "unit": "3-402", "reason": "visiting mother",
        "temp_c": "36.6", "direction": "in", "decision": "pass",
    },
}  # fmt: skip


@pytest.fixture
def guard_core(data_dir, clock, monkeypatch):
    config = parse_config({"engine": {"store_deadline_ms": 50}})
    core = make_core(data_dir, clock, monkeypatch, config)
    yield core
    close_core(core)


@pytest.fixture
def alice(guard_core):
    with signed_in(make_app(guard_core), raise_server_exceptions=False) as client:
        yield client


def _error_of(response) -> str | None:
    assert response.status_code == 303, response.text[:300]
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return query.get("err", [None])[0]


def _store_words() -> set[str]:
    return {i18n.t(lang, "err.store") for lang in i18n.LANGS}


def _says_not_saved(response) -> None:
    """``err.store``: back to the live page, or the registration form again as typed."""
    if response.status_code == 303:
        assert "msg=ok.done" not in response.headers["location"]
        assert _error_of(response) in _store_words()
    else:
        assert response.status_code == 400, response.text[:300]
        page = html.unescape(response.text)
        assert any(words in page for words in _store_words())
        assert 'value="Wang Fang"' in page  # nothing typed is lost


@pytest.mark.parametrize("where", ["audit", "commit"])
@pytest.mark.parametrize("path", FORMS)
def test_a_decision_the_storage_refuses_says_err_store_not_done(guard_core, alice, path, where):
    with storage_failing(guard_core.store, where):
        response = post(alice, path, alice.csrf, **FORMS[path])
    _says_not_saved(response)


@pytest.mark.parametrize("path", FORMS)
def test_a_decision_whose_commit_misses_its_deadline_says_err_store(guard_core, alice, path):
    never = asyncio.Event()
    real = guard_core.store.append_async

    async def stuck(draft):
        await never.wait()  # the SD card hangs
        raise StoreFault("store_fault", "gave up")

    guard_core.store.append_async = stuck
    try:
        response = post(alice, path, alice.csrf, **FORMS[path])
    finally:
        guard_core.store.append_async = real
        alice.portal.call(lambda: asyncio.sleep(0, never.set()))
    _says_not_saved(response)
    assert guard_core.store.last_seq == 0


@pytest.mark.parametrize("path", FORMS)
def test_done_is_said_once_the_event_is_in_the_log(guard_core, alice, path):
    response = post(alice, path, alice.csrf, **FORMS[path])
    assert _error_of(response) is None and "msg=ok.done" in response.headers["location"]
    # No waiting here: the answer came after the commit.
    assert [e["decision"] for e in guard_core.store.events()] == ["manual_pass"]
