"""Form bodies through the daemon's edge (``checkpoint.server.BodyLimit``): a form is parsed
on the event loop, so its body is bounded by ``FORM_BODY_BYTES`` before any route reads it
(docs/network.md, *Limits*)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from guard_support import BASE, edge_client
from starlette.requests import Request as StarletteRequest

from checkpoint.server import FORM_BODY_BYTES, BodyLimit
from ui.guard.community.people import KEYS, MAX_FIELD, SEVERAL

URLENCODED = "application/x-www-form-urlencoded"
MIB = 1024 * 1024


@pytest.fixture
def edge(data_dir, clock, monkeypatch):
    with edge_client(data_dir, clock, monkeypatch) as client:
        yield client


@pytest.fixture
def parsed(monkeypatch) -> list[str]:
    """The paths whose form a route (or a dependency) parsed, from here on."""
    seen: list[str] = []
    real = StarletteRequest.form

    def form(self, *args, **kwargs):
        seen.append(self.url.path)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(StarletteRequest, "form", form)
    return seen


def test_a_megabyte_of_escapes_to_the_sign_in_form_is_413_and_never_parsed(edge, parsed):
    # Starlette percent-decodes a field in one blocking step on the event loop: 1 MiB of
    # `%41` sent to the sign-in form (no account, no token needed) held the loop 0.25 s here,
    # 2-3 s on a Pi, and was only a 403; the gate's runner and every screen waited.
    body = b"%41" * (MIB // 3)
    answer = edge.post(
        "/guard/login",
        content=body,
        headers={"Content-Type": URLENCODED, "Origin": BASE},
        follow_redirects=False,
    )
    assert answer.status_code == 413
    assert answer.json() == {"detail": "request body too large"}
    assert parsed == []


def test_a_multipart_form_past_the_bound_is_413_too_unless_its_route_takes_a_file(edge, parsed):
    field = b"%41\r\n--" * (MIB // 8)
    body = b'--x\r\nContent-Disposition: form-data; name="name"\r\n\r\n' + field + b"\r\n--x--\r\n"
    headers = {"Content-Type": "multipart/form-data; boundary=x", "Origin": BASE}
    answer = edge.post("/guard/login", content=body, headers=headers, follow_redirects=False)
    assert answer.status_code == 413
    # The import's own larger bound is for its file (multipart): a urlencoded body there is
    # a form like any other.
    answer = edge.post(
        "/guard/community/imports/preview",
        content=b"csrf=" + b"%41" * (FORM_BODY_BYTES // 3),
        headers={"Content-Type": URLENCODED, "Origin": BASE},
        follow_redirects=False,
    )
    assert answer.status_code == 413
    assert parsed == []


def largest_people_form(csrf: str) -> dict[str, str]:
    """The console's largest form: the people page's keys (``community_people.html``), each
    at the length its field takes, typed in Chinese (each character 9 bytes once sent)."""
    fields = {k: "字" * (MAX_FIELD if k in SEVERAL else 64) for k in KEYS}
    return {"csrf": csrf, **fields, "as": "json"}


def test_the_largest_console_form_still_reaches_its_route(edge, parsed):
    fields = largest_people_form(edge.csrf)
    size = len(urlencode(fields))
    assert size > 20_000 and size * 1.4 < FORM_BODY_BYTES  # the bound's margin (docs/network.md)
    answer = edge.post(
        "/guard/community/people/show",
        data=fields,
        headers={"Origin": BASE},
        follow_redirects=False,
    )
    assert answer.status_code != 413, answer.text
    assert "/guard/community/people/show" in parsed
    assert answer.status_code == 400  # the route's own answer: no such keys


def _counting_app(received: list[int]) -> FastAPI:
    app = FastAPI()

    @app.post("/form")
    async def form(request: Request) -> dict:
        async for chunk in request.stream():
            received.append(len(chunk))
        return {"n": sum(received)}

    return app


@pytest.mark.parametrize(
    "content_type",
    [
        URLENCODED,
        "Application/X-WWW-Form-URLEncoded; charset=utf-8",
        "multipart/form-data; boundary=x",
    ],
)
def test_form_bodies_have_the_form_bound_other_bodies_the_body_limit(content_type):
    received: list[int] = []
    client = TestClient(BodyLimit(_counting_app(received), MIB))
    at_bound = b"a" * FORM_BODY_BYTES
    answer = client.post("/form", content=at_bound, headers={"Content-Type": content_type})
    assert answer.json() == {"n": FORM_BODY_BYTES}
    received.clear()
    over = at_bound + b"a"
    answer = client.post("/form", content=over, headers={"Content-Type": content_type})
    assert answer.status_code == 413 and received == []

    def chunks():  # no Content-Length: cut as soon as it passes the bound
        for _ in range(MIB // 4096):
            yield b"a" * 4096

    answer = client.post("/form", content=chunks(), headers={"Content-Type": content_type})
    assert answer.status_code == 413
    assert sum(received) <= FORM_BODY_BYTES
    # A JSON body (the API's) keeps web.max_body_bytes: it is not percent-decoded.
    received.clear()
    answer = client.post("/form", content=b"1" * MIB, headers={"Content-Type": "application/json"})
    assert answer.json() == {"n": MIB}


def test_a_second_content_type_naming_a_form_has_the_form_bound():
    received: list[int] = []
    client = TestClient(BodyLimit(_counting_app(received), MIB))
    headers = [("Content-Type", "text/plain"), ("Content-Type", URLENCODED)]
    answer = client.post("/form", content=b"a" * (FORM_BODY_BYTES + 1), headers=headers)
    assert answer.status_code == 413 and received == []


def test_the_form_bound_is_never_above_the_body_limit():
    received: list[int] = []
    client = TestClient(BodyLimit(_counting_app(received), 1024))
    answer = client.post("/form", content=b"a" * 1025, headers={"Content-Type": URLENCODED})
    assert answer.status_code == 413


BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_a_guards_oversized_form_gets_a_page_in_the_consoles_language_not_json():
    """Before: a guard's browser posting a form over the bound showed the edge's JSON
    ``{"detail":"request body too large"}``. Now a page in the console's language says the
    form was too large and nothing was saved; the API (no text/html) keeps its JSON."""
    received: list[int] = []
    client = TestClient(BodyLimit(_counting_app(received), MIB))
    marker = "<script>alert('mark')</script>"
    over = urlencode({"note": marker + "a" * FORM_BODY_BYTES}).encode()
    form = {"Content-Type": URLENCODED, "Accept": BROWSER}
    answer = client.post("/form", content=over, headers=form)
    assert answer.status_code == 413 and received == []
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["content-security-policy"] == "default-src 'none'"
    page = answer.text
    assert "表单太大" in page and "未保存任何内容" in page and "32 KB" in page
    assert "mark" not in page and "note" not in page and len(page) < 1000  # nothing reflected
    client.cookies.set("kiosk_lang", "en")
    answer = client.post("/form", content=over, headers=form)
    assert "nothing was saved" in answer.text and '<html lang="en">' in answer.text
    client.cookies.clear()
    answer = client.post("/form?lang=en", content=over, headers=form)
    assert "nothing was saved" in answer.text
    english_site = TestClient(BodyLimit(_counting_app(received), MIB, lang="en"))
    assert "nothing was saved" in english_site.post("/form", content=over, headers=form).text
    # The API's answer, and a body that is not a form, keep the JSON.
    for headers in (
        {"Content-Type": URLENCODED, "Accept": "application/json"},
        {"Content-Type": URLENCODED},
        {"Content-Type": "application/json", "Accept": BROWSER},
    ):
        answer = client.post("/form", content=b"1" * (MIB + 1), headers=headers)
        assert answer.status_code == 413
        assert answer.json() == {"detail": "request body too large"}


def test_a_chunked_oversized_form_from_a_browser_gets_the_page_too():
    received: list[int] = []
    client = TestClient(BodyLimit(_counting_app(received), MIB))

    def chunks():
        for _ in range(MIB // 4096):
            yield b"a" * 4096

    answer = client.post(
        "/form", content=chunks(), headers={"Content-Type": URLENCODED, "Accept": BROWSER}
    )
    assert answer.status_code == 413 and "表单太大" in answer.text
    assert sum(received) <= FORM_BODY_BYTES
