"""Helpers shared by test modules (imported as ``from support import ...``)."""

from __future__ import annotations

import os

import pytest


def need(available: bool, what: str) -> None:
    """A tool a test needs: skipped on a developer machine without it, a failure in CI,
    where ``.ci/run`` installs everything and a silently skipped suite would hide a gap."""
    if available:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required in CI (.ci/run installs it)", pytrace=False)
    pytest.skip(f"{what} is not installed")
