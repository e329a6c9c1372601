"""constraints.txt pins every dependency pyproject names, at a version pyproject allows.

Every install (``scripts/install`` on the Pi, ``kiosk_venv`` for the tests, the demo and CI)
takes its versions from constraints.txt, so a gate installed today runs what the suite passed
on (docs/install.md, Pinned versions). A dependency added to pyproject without a pin would be
whatever PyPI has on the day; a pin outside pyproject's range would make pip refuse to install.
Checked for each Python and machine a gate or CI runs on: a pin may differ by environment
marker, but exactly one must apply in each.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "checkpoint-kiosk"
#: Raspberry Pi OS Bookworm (3.11) and Trixie (3.13), 64- and 32-bit; CI and developers on x86-64.
PYTHONS = ("3.11.2", "3.12.3", "3.13.5")
MACHINES = ("aarch64", "armv7l", "x86_64")
_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;]+)\s*(?:;(?P<marker>.+))?$"
)


def environments() -> list[dict[str, str]]:
    return [
        {
            "python_version": ".".join(full.split(".")[:2]),
            "python_full_version": full,
            "platform_machine": machine,
            "sys_platform": "linux",
            "platform_system": "Linux",
            "os_name": "posix",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "extra": "",
        }
        for full in PYTHONS
        for machine in MACHINES
    ]


def parse_constraints(text: str) -> tuple[dict[str, list[tuple[str, Marker | None]]], list[str]]:
    """({name: [(version, marker)]}, lines that are not an exact pin)."""
    pins: dict[str, list[tuple[str, Marker | None]]] = {}
    bad = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _PIN.match(stripped)
        if match is None:
            bad.append(stripped)
            continue
        marker = Marker(match["marker"]) if match["marker"] else None
        pins.setdefault(canonicalize_name(match["name"]), []).append((match["version"], marker))
    return pins, bad


def requirements(pyproject: str) -> list[tuple[str, Requirement]]:
    """(extra or "", requirement) for every dependency pyproject names, the project's own
    extras (``checkpoint-kiosk[office]`` in ``test``) left out."""
    project = tomllib.loads(pyproject)["project"]
    found = [("", Requirement(r)) for r in project["dependencies"]]
    for extra, reqs in project.get("optional-dependencies", {}).items():
        found += [(extra, Requirement(r)) for r in reqs]
    return [(extra, r) for extra, r in found if canonicalize_name(r.name) != PROJECT]


def problems(pyproject: str, constraints: str) -> list[str]:
    """What is wrong between the two files, one line each (empty: nothing)."""
    pins, bad = parse_constraints(constraints)
    found = [f"not an exact pin (name==version): {line}" for line in bad]
    for extra, req in requirements(pyproject):
        name = canonicalize_name(req.name)
        where = f"{req}" + (f" (extra {extra})" if extra else "")
        if name not in pins:
            found.append(f"{where}: not pinned")
            continue
        for env in environments():
            env = {**env, "extra": extra}
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            applying = [v for v, m in pins[name] if m is None or m.evaluate(env)]
            at = f"Python {env['python_full_version']} on {env['platform_machine']}"
            if len(applying) != 1:
                found.append(f"{where}: {len(applying)} pins apply on {at}, not one")
            elif not req.specifier.contains(applying[0], prereleases=True):
                found.append(f"{where}: pinned {applying[0]} on {at}, outside its range")
    return found


PYPROJECT = """
[project]
name = "checkpoint-kiosk"
dependencies = ["numpy>=1.24", "fastapi>=0.110"]
[project.optional-dependencies]
gpio = ["lgpio>=0.2; python_version < '3.13'"]
test = ["checkpoint-kiosk[gpio]", "hypothesis==6.170.27"]
"""
GOOD = """\
# generated
numpy==2.4.6
    # via checkpoint-kiosk (pyproject.toml)
fastapi==0.165.0
lgpio==0.2.2.0 ; python_full_version < '3.13'
hypothesis==6.170.27
starlette==1.10.0
"""


def test_the_repositorys_constraints_pin_every_dependency_within_pyprojects_range():
    found = problems(
        (ROOT / "pyproject.toml").read_text(encoding="utf-8"),
        (ROOT / "constraints.txt").read_text(encoding="utf-8"),
    )
    assert found == [], "\n".join(found) + "\n(regenerate: scripts/constraints, docs/install.md)"


def test_matching_files_have_no_problem():
    assert problems(PYPROJECT, GOOD) == []


def test_a_dependency_without_a_pin_is_named():
    text = GOOD.replace("fastapi==0.165.0\n", "")
    assert problems(PYPROJECT, text) == ["fastapi>=0.110: not pinned"]


def test_a_dependency_of_an_extra_without_a_pin_is_named():
    text = GOOD.replace("hypothesis==6.170.27\n", "")
    assert problems(PYPROJECT, text) == ["hypothesis==6.170.27 (extra test): not pinned"]


@pytest.mark.parametrize(
    ("pin", "expected"),
    [
        (
            "numpy==1.23.5",
            "numpy>=1.24: pinned 1.23.5 on Python 3.11.2 on aarch64, outside its range",
        ),
        ("hypothesis==6.171.0", "hypothesis==6.170.27 (extra test): pinned 6.171.0 on Python"),
    ],
)
def test_a_pin_outside_pyprojects_range_is_named(pin, expected):
    name = pin.split("==")[0]
    text = re.sub(rf"^{name}==\S+$", pin, GOOD, flags=re.M)
    found = problems(PYPROJECT, text)
    assert found and all(p.startswith(expected.split(" on ")[0]) for p in found)
    assert expected in "\n".join(found)
    assert len(found) == len(environments())  # every Python and machine


def test_a_pin_for_some_pythons_only_is_named_for_the_others():
    text = GOOD.replace("numpy==2.4.6", "numpy==2.4.6 ; python_full_version < '3.13'")
    found = problems(PYPROJECT, text)
    assert found == [
        f"numpy>=1.24: 0 pins apply on Python 3.13.5 on {m}, not one" for m in MACHINES
    ]


def test_two_pins_that_apply_together_are_named():
    text = GOOD + "numpy==2.2.6 ; platform_machine == 'armv7l'\n"
    found = problems(PYPROJECT, text)
    assert found == [f"numpy>=1.24: 2 pins apply on Python {p} on armv7l, not one" for p in PYTHONS]


def test_a_marker_split_pin_covering_every_environment_passes():
    text = GOOD.replace(
        "numpy==2.4.6",
        "numpy==2.2.6 ; python_full_version < '3.12'\nnumpy==2.4.6 ; python_full_version >= '3.12'",
    )
    assert problems(PYPROJECT, text) == []


def test_a_requirement_not_pinned_exactly_is_named():
    text = GOOD.replace("starlette==1.10.0", "starlette>=1.10")
    assert problems(PYPROJECT, text) == ["not an exact pin (name==version): starlette>=1.10"]


def test_an_extras_marker_skips_the_pythons_it_excludes():
    # lgpio is asked for below 3.13 only: no pin needed (nor checked) on 3.13.
    text = GOOD.replace(
        "lgpio==0.2.2.0 ; python_full_version < '3.13'",
        "lgpio==0.2.2.0 ; python_full_version < '3.12'",
    )
    found = problems(PYPROJECT, text)
    lgpio = 'lgpio>=0.2; python_version < "3.13" (extra gpio)'
    assert found == [f"{lgpio}: 0 pins apply on Python 3.12.3 on {m}, not one" for m in MACHINES]
