"""pyproject's dependencies split by role: a gate installs what a gate needs, no more."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower() for r in requirements}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_gate_install_carries_no_office_or_unused_packages():
    gate = _names(_project()["dependencies"])
    # psycopg: only the office's collector; no armv7 wheel (32-bit Pi OS could not install).
    # adafruit-circuitpython-mlx90614: never imported (its read has no PEC check).
    assert "psycopg" not in gate and "adafruit-circuitpython-mlx90614" not in gate
    assert {"pyserial", "smbus2", "gpiozero", "opencv-python-headless"} <= gate


def test_optional_parts_are_extras_and_the_tests_pull_them_in():
    extras = _project()["optional-dependencies"]
    assert "psycopg" in _names(extras["office"])
    assert "simplejpeg" in _names(extras["picamera"])
    assert "adafruit-blinka" in _names(extras["blinka"])
    assert any(r.startswith("checkpoint-kiosk[") and "office" in r for r in extras["test"])
    every = set().union(*(_names(v) for v in extras.values()))
    assert "adafruit-circuitpython-mlx90614" not in every


def test_the_project_metadata_builds_with_setuptools_old_and_new():
    """``license = { text = ... }`` made every build of the release warn that setuptools
    refuses it in builds from 2027-02-18 (a gate's update would stop building), and the SPDX
    string that replaces it needs setuptools>=77, newer than the Debian setuptools an offline
    install builds with. The project carries neither form."""
    project = _project()
    assert "license" not in project and "license-files" not in project
