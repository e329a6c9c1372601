"""A browser's download of a CSV export the card cut mid-way fails as a download, never
saved as a whole file (Debian's Chromium; tests/test_export_cut.py for curl and httpx)."""

from __future__ import annotations

import pytest
from card_support import damage_leaf
from test_export_cut import paged_core, serving  # noqa: F401

from ui.app import create_app

pytestmark = pytest.mark.browser


def _download(browser, port: int, token: str):
    context = browser.new_context(
        accept_downloads=True, extra_http_headers={"Authorization": f"Bearer {token}"}
    )
    try:
        page = context.new_page()
        with page.expect_download() as info:
            try:
                page.goto(f"http://127.0.0.1:{port}/api/v1/events.csv?after=0")
            except Exception:  # noqa: BLE001 - a navigation that turns into a download aborts
                pass
        download = info.value
        return download.failure()
    finally:
        context.close()


def test_a_cut_csv_export_is_a_failed_download_in_the_browser(browser, paged_core):  # noqa: F811
    """The rows before the damaged page were sent; Chromium reports the download failed."""
    _, token = paged_core.tokens.create(["logs:read"])
    with serving(create_app(paged_core)) as port:
        whole = _download(browser, port, token)
        damage_leaf(paged_core, -3)
        failure = _download(browser, port, token)
    assert whole is None  # the sound export downloads
    assert failure is not None, "a cut export was saved as a whole file"
