"""The unit suite's routes compiled once per process (``tests/app_routes.py``): every app
still answers from its own state, and an app with dependency overrides has them."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.testclient import TestClient
from support import need


def whose() -> str:
    return "real"


router = APIRouter(prefix="/t")


@router.get("/who/{n}")
def who(n: int, request: Request, dep: str = Depends(whose)) -> dict[str, object]:
    return {"n": n, "app": request.app.state.name, "dep": dep}


@pytest.fixture
def routes(_routes_compiled_once_per_process):
    """The process's compiled routes; these tests are about sharing them, so they skip, saying
    why, where this FastAPI's hook is not the one ``app_routes`` knows (the suite then runs
    with each app compiling its own, as FastAPI does), and fail in CI, whose FastAPI is the
    pinned one (``support.need``)."""
    routes = _routes_compiled_once_per_process
    need(not routes.not_installed, f"routes compiled once ({routes.not_installed})")
    return routes


def app_named(name: str) -> FastAPI:
    app = FastAPI()
    app.state.name = name
    app.include_router(router)
    return app


def test_apps_of_one_router_share_its_compiled_routes_and_answer_from_their_own_state(routes):
    with TestClient(app_named("first")) as first:
        assert first.get("/t/who/1").json() == {"n": 1, "app": "first", "dep": "real"}
    compiled, shared = routes.compiled, routes.shared
    with TestClient(app_named("second")) as second:
        assert second.get("/t/who/2").json() == {"n": 2, "app": "second", "dep": "real"}
        assert second.get("/t/who/x").status_code == 422  # its parameters still validated
    assert (routes.compiled, routes.shared) == (compiled, shared + 1)


def test_an_app_with_dependency_overrides_compiles_its_own_routes_and_has_them(routes):
    with TestClient(app_named("plain")) as plain:
        plain.get("/t/who/1")
    app = app_named("overridden")
    app.dependency_overrides[whose] = lambda: "override"
    compiled = routes.compiled
    with TestClient(app) as client:
        assert client.get("/t/who/3").json() == {"n": 3, "app": "overridden", "dep": "override"}
    assert routes.compiled == compiled  # FastAPI's own, for this app alone
    with TestClient(app_named("plain again")) as plain:
        assert plain.get("/t/who/4").json()["dep"] == "real"


def test_a_route_changed_since_it_was_compiled_is_compiled_again_as_it_is(
    _routes_compiled_once_per_process,
):
    with TestClient(app_named("first")) as first:
        first.get("/t/who/1")
    assert "/t/who/{n}" in app_named("shown").openapi()["paths"]
    (route,) = router.routes
    route.include_in_schema = False  # as a test hides a route from its schema for a while
    try:
        assert "/t/who/{n}" not in app_named("hidden").openapi()["paths"]
    finally:
        route.include_in_schema = True
    assert "/t/who/{n}" in app_named("shown again").openapi()["paths"]


def test_a_fastapi_without_the_hook_is_left_as_it_is_and_says_why(monkeypatch):
    """A FastAPI release that compiles routes another way (here: no include context of the
    shape this knows): nothing is patched, so each app compiles its own, as FastAPI does, and
    the reason names the file to update."""
    from app_routes import CompiledRoutes
    from fastapi import routing

    hook = routing._EffectiveRouteContext.from_api_route
    monkeypatch.delattr(routing, "_RouterIncludeContext")
    routes, patch = CompiledRoutes(), pytest.MonkeyPatch()
    routes.install(patch)
    assert routes.not_installed and "tests/app_routes.py" in routes.not_installed
    assert routing._EffectiveRouteContext.from_api_route == hook  # nothing patched
    assert (routes.compiled, routes.shared) == (0, 0)
