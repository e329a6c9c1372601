"""No inline style in the pages (``style-src`` without ``'unsafe-inline'``): the templates
hold no ``style=""``, and the one computed style, the charts' aspect ratios, comes in a
``<style>`` with the response's own nonce. The browser's side: test_csp_browser.py."""

from __future__ import annotations

import re
from pathlib import Path

from guard_support import login

from ui import views

TEMPLATES = Path(views.__file__).parent / "templates"


def test_no_template_has_an_inline_style():
    found = [
        f"{p.name}:{n}"
        for p in sorted(TEMPLATES.glob("*.html"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"\sstyle\s*=", line)
    ]
    assert found == []


def test_the_policy_allows_no_inline_style_and_a_nonce_only_per_page(guard_client):
    assert "'unsafe-inline'" not in views.CSP and "style-src 'self';" in views.CSP
    login(guard_client)
    nonces = []
    for _ in range(2):
        answer = guard_client.get("/guard/stats")
        policy = answer.headers["content-security-policy"]
        nonce = re.search(r"style-src 'self' 'nonce-([A-Za-z0-9_-]+)';", policy).group(1)
        styles = re.findall(r'<style nonce="([^"]+)">([^<]*)</style>', answer.text)
        assert [n for n, _ in styles] == [nonce]
        # Digits and the ratio classes only: nothing of a chart's text reaches the style.
        assert re.fullmatch(
            r"(svg\.chart\.ratio-[\dx-]+ \{ --wide: \d+ / \d+; --phone: \d+ / \d+; \})+",
            styles[0][1],
        )
        assert " style=" not in answer.text
        nonces.append(nonce)
    assert nonces[0] != nonces[1]
    assert views.csp(None) == views.CSP  # the kiosk screen's and the login page's
