"""Each route of an included router compiled once per test process (installed by conftest).

FastAPI compiles a route afresh for every app that includes its router, at the app's first
request (``fastapi.routing._EffectiveRouteContext.from_api_route``: its parameters' pydantic
models, its dependencies, its handler): ~0.5 ms a route, and the console has ~200. A daemon
builds one app; the unit suite builds one a test, ~20,000 compilations a run (~10 s of CPU).
The routers are the modules' own, the same for every app, and what FastAPI compiles from them
(the route, its router's prefix, tags, dependencies, responses, limits...) is too, but for one
thing: the app whose ``dependency_overrides`` it reads. So a route is compiled once per
inclusion (the same route, as it is now, of the same router in the same context) and the
compiled route shared by the apps after the first; it reads overrides from no app. A route
changed since (a test hiding it from the schema for a while) is compiled again as it is. An
app that has overrides when its routes are compiled (at its first request) has its own
compiled, as FastAPI does; one given overrides only after its first request would not see
them (no test does).

Every request still runs the real compiled route: its dependencies, validation, the handler;
the app (``request.app``: its state, its core) is the request's own.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from typing import Any

#: What FastAPI reads of a route when it compiles it for an inclusion (``from_api_route`` and
#: ``get_route_handler``): a route whose values differ from the ones it was compiled with is
#: compiled again.
ROUTE_FIELDS = (
    "path", "endpoint", "response_model", "status_code", "tags", "dependencies", "summary",
    "description", "response_description", "responses", "deprecated", "methods",
    "operation_id", "response_model_include", "response_model_exclude",
    "response_model_by_alias", "response_model_exclude_unset",
    "response_model_exclude_defaults", "response_model_exclude_none", "include_in_schema",
    "response_class", "name", "callbacks", "openapi_extra", "generate_unique_id_function",
    "strict_content_type", "stream_item_type", "max_body_size", "form_limits",
)  # fmt: skip


def route_as_it_is(route: Any) -> tuple[Any, ...]:
    """The values of ``route`` FastAPI compiles (containers copied: a later change in place
    is seen as a change)."""
    values = (getattr(route, name, None) for name in ROUTE_FIELDS)
    return tuple(copy.deepcopy(v) if isinstance(v, (list, dict, set, tuple)) else v for v in values)


def _same(x: Any, y: Any) -> bool:
    return x is y or bool(x == y)


def unchanged(was: tuple[Any, ...], route: Any) -> bool:
    """``route``'s values are still ``was`` (``route_as_it_is`` then): compared as they are,
    not copied first (copying every route's containers cost each app ~1 ms more than the
    comparison), with the same answer, as a copy compares equal where its original does."""
    pairs = zip(was, ROUTE_FIELDS, strict=True)
    return all(_same(x, getattr(route, name, None)) for x, name in pairs)


class _NoOverrides:
    """The app a shared compiled route reads its dependency overrides from: none."""

    dependency_overrides: dict[Any, Any] = {}  # noqa: RUF012 - read only, and empty


def _same_inclusion(a: Any, b: Any) -> bool:
    """The two include contexts compile a route alike: the same router (by identity: a
    router's ``==`` compares its routes) and equal settings, whatever app each is for."""
    for field in dataclasses.fields(a):
        if field.name == "dependency_overrides_provider":
            continue
        x, y = getattr(a, field.name), getattr(b, field.name)
        if field.name == "included_router" and x is not y:
            return False
        if not _same(x, y):
            return False
    return True


class CompiledRoutes:
    """The routes compiled in this process, by route and inclusion."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # a route's callbacks are compiled inside it
        #: id(route) -> (route, [(route as it was, include context, compiled)]): the route is
        #: kept alive, so its id is not reused.
        self._compiled: dict[int, tuple[Any, list[tuple[Any, Any, Any]]]] = {}
        self.compiled = 0
        self.shared = 0
        #: Why the routes are compiled per app after all (FastAPI's internals are not the ones
        #: this knows), or None once installed.
        self.not_installed: str | None = "not installed yet"

    def install(self, patch: Any) -> None:
        """Share compiled routes, where this FastAPI compiles them the way this knows (a
        private hook): a release that changed it leaves every app compiling its own, slower
        and as correct, and ``not_installed`` says why."""
        import inspect

        from fastapi import routing

        real = getattr(getattr(routing, "_EffectiveRouteContext", None), "from_api_route", None)
        params = set(inspect.signature(real).parameters) if callable(real) else set()
        include = getattr(routing, "_RouterIncludeContext", None)
        fields = (
            {f.name for f in dataclasses.fields(include)}
            if isinstance(include, type) and dataclasses.is_dataclass(include)
            else set()
        )
        if (
            not {"original_route", "include_context"} <= params
            or not {
                "included_router",
                "dependency_overrides_provider",
            }
            <= fields
        ):
            self.not_installed = (
                "this FastAPI compiles routes through another hook than"
                " _EffectiveRouteContext.from_api_route(original_route, include_context) of a"
                " _RouterIncludeContext:"
                " tests/app_routes.py must learn it (each app compiles its own meanwhile)"
            )
            return
        self.not_installed = None
        no_overrides = _NoOverrides()

        def from_api_route(cls: Any, *, original_route: Any, include_context: Any) -> Any:
            provider = include_context.dependency_overrides_provider
            if getattr(provider, "dependency_overrides", None):
                return real(original_route=original_route, include_context=include_context)
            with self._lock:
                _, built = self._compiled.setdefault(id(original_route), (original_route, []))
                for was, context, compiled in built:
                    if _same_inclusion(context, include_context) and unchanged(was, original_route):
                        self.shared += 1
                        return compiled
                now = route_as_it_is(original_route)
                context = dataclasses.replace(
                    include_context, dependency_overrides_provider=no_overrides
                )
                compiled = real(original_route=original_route, include_context=context)
                built.append((now, context, compiled))
                self.compiled += 1
                return compiled

        patch.setattr(routing._EffectiveRouteContext, "from_api_route", classmethod(from_api_route))
