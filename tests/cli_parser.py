"""One ``kiosk`` parser for the CLI verbs a test process runs (installed by ``tests/conftest.py``).

``checkpoint.cli.main`` builds the whole parser (every verb, ~230 arguments) at each call:
~5 ms of CPU, for each of the many verbs the tests run in-process. A real ``kiosk`` runs one
verb per process, so building it once there is all it does; here ``main`` is handed the
parser built before, as long as nothing it was built from can have changed since:

- the environment variables building it read (``--config`` defaults to ``$KIOSK_CONFIG``
  when the parser is built): their values, read through ``os.environ`` while it is built
  (a build that went through the whole environment depends on all of it, but the name of
  the test pytest keeps in it). Tests set others at every turn (``CREDENTIALS_DIRECTORY``,
  ``KIOSK_DATA``, a DSN's variable), which no parser is built from: about a quarter of the
  verbs a run's tests call built it again for them;
- any attribute of a ``checkpoint.cli`` module (a test that patches a verb's function, a
  ``type``, a constant its arguments are built from gets a parser built with the patch);
- the defaults of every parser and argument (a verb that changed a default list in place).

Anything else builds it again, as ``main`` always did. A test that calls ``build_parser``
itself (imported by name) builds its own, as before.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any


def _parsers(root: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``root`` and every parser below it (the verbs, a verb's actions)."""
    found, todo = [], [root]
    while todo:
        parser = todo.pop()
        found.append(parser)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
    return found


def _defaults(parsers: list[argparse.ArgumentParser]) -> list[Any]:
    return [(p._defaults, [a.default for a in p._actions]) for p in parsers]


#: The one variable pytest changes at every test (its name and phase): no parser reads it.
_PYTEST_SETS = "PYTEST_CURRENT_TEST"


def _attributes() -> tuple[int, ...]:
    """The identity of every attribute of every ``checkpoint.cli`` module."""
    modules = [
        m
        for name, m in list(sys.modules.items())
        if m is not None and (name == "checkpoint.cli" or name.startswith("checkpoint.cli."))
    ]
    return tuple(id(value) for m in modules for value in list(vars(m).values()))


class _ReadingEnvironment(MutableMapping[str, str]):
    """``os.environ`` while a parser is built: the same variables, the names looked up kept
    (``get``, ``[]`` and ``in`` all come through ``__getitem__``/``__contains__``). Going
    through all of them (a copy, iterating) or changing any counts as reading everything."""

    def __init__(self, real: MutableMapping[str, str]) -> None:
        self.real = real
        self.names: set[str] = set()
        self.everything = False

    def __getitem__(self, name: str) -> str:
        self.names.add(name)
        return self.real[name]

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self.names.add(name)
        return name in self.real

    def __iter__(self) -> Iterator[str]:
        self.everything = True
        return iter(self.real)

    def __len__(self) -> int:
        self.everything = True
        return len(self.real)

    def __setitem__(self, name: str, value: str) -> None:
        self.everything = True
        self.real[name] = value

    def __delitem__(self, name: str) -> None:
        self.everything = True
        del self.real[name]

    def copy(self) -> dict[str, str]:
        self.everything = True
        return dict(self.real)


def _environment(names: frozenset[str] | None) -> tuple[tuple[str, str | None], ...]:
    """The values of ``names`` now (None: of every variable, but the test's name)."""
    if names is None:
        return tuple(sorted(item for item in os.environ.items() if item[0] != _PYTEST_SETS))
    return tuple((name, os.environ.get(name)) for name in sorted(names))


class SharedParser:
    """``checkpoint.cli.build_parser`` for ``main``: the last parser built, while it is the
    one building it again would make."""

    def __init__(self) -> None:
        import checkpoint.cli

        self._cli = checkpoint.cli
        self._build = checkpoint.cli.build_parser
        self._parser: argparse.ArgumentParser | None = None
        self._parsers: list[argparse.ArgumentParser] = []
        self._attributes: tuple[int, ...] = ()
        self._names: frozenset[str] | None = None
        self._environment: tuple[tuple[str, str | None], ...] = ()
        self._defaults: list[Any] = []
        #: Parsers built (what a test of the sharing counts).
        self.built = 0

    def install(self, patch: Any) -> None:
        patch.setattr(self._cli, "build_parser", self.parser)

    def parser(self) -> argparse.ArgumentParser:
        if (
            self._parser is None
            or _attributes() != self._attributes
            or _environment(self._names) != self._environment
            or _defaults(self._parsers) != self._defaults
        ):
            self._parser, self._names = self._build_reading_the_environment()
            self._parsers = _parsers(self._parser)
            self._attributes = _attributes()
            self._environment = _environment(self._names)
            self._defaults = copy.deepcopy(_defaults(self._parsers))
            self.built += 1
        return self._parser

    def _build_reading_the_environment(
        self,
    ) -> tuple[argparse.ArgumentParser, frozenset[str] | None]:
        """A parser built as ``main`` builds it, and the variables it read (None: all)."""
        real = os.environ
        reading = _ReadingEnvironment(real)
        # Replaced, not cleared (the variables stay the process's); os.getenv reads it too.
        os.environ = reading  # type: ignore[assignment]  # noqa: B003
        try:
            parser = self._build()
        finally:
            os.environ = real  # noqa: B003
        return parser, None if reading.everything else frozenset(reading.names)
