"""One ``kiosk`` parser for the CLI verbs a test process runs (installed by ``tests/conftest.py``).

``checkpoint.cli.main`` builds the whole parser (every verb, ~230 arguments) at each call:
~5 ms of CPU, for each of the many verbs the tests run in-process. A real ``kiosk`` runs one
verb per process, so building it once there is all it does; here ``main`` is handed the
parser built before, as long as nothing it was built from can have changed since:

- the environment (``--config`` defaults to ``$KIOSK_CONFIG`` when the parser is built),
  but for the name of the test pytest keeps in it;
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


def _sources() -> tuple[Any, ...]:
    """What a parser is built from, besides its defaults: the environment, and the identity
    of every attribute of every ``checkpoint.cli`` module."""
    modules = [
        m
        for name, m in list(sys.modules.items())
        if m is not None and (name == "checkpoint.cli" or name.startswith("checkpoint.cli."))
    ]
    attributes = tuple(id(value) for m in modules for value in list(vars(m).values()))
    environment = sorted(item for item in os.environ.items() if item[0] != _PYTEST_SETS)
    return (tuple(environment), attributes)


class SharedParser:
    """``checkpoint.cli.build_parser`` for ``main``: the last parser built, while it is the
    one building it again would make."""

    def __init__(self) -> None:
        import checkpoint.cli

        self._cli = checkpoint.cli
        self._build = checkpoint.cli.build_parser
        self._parser: argparse.ArgumentParser | None = None
        self._parsers: list[argparse.ArgumentParser] = []
        self._sources: tuple[Any, ...] = ()
        self._defaults: list[Any] = []
        #: Parsers built (what a test of the sharing counts).
        self.built = 0

    def install(self, patch: Any) -> None:
        patch.setattr(self._cli, "build_parser", self.parser)

    def parser(self) -> argparse.ArgumentParser:
        sources = _sources()
        if (
            self._parser is None
            or sources != self._sources
            or _defaults(self._parsers) != self._defaults
        ):
            self._parser = self._build()
            self._parsers = _parsers(self._parser)
            self._sources = _sources()
            self._defaults = copy.deepcopy(_defaults(self._parsers))
            self.built += 1
        return self._parser
