"""What an operator reads when a config is wrong: TOML's words (a table, an array, a string,
an integer, a decimal number, true or false, a time of day, one of the choices), the key, the
bound or the choices; never pydantic's (``Input should be a valid dictionary or instance of
ReadersSection``, ``a valid tuple``, ``valid path for <class 'pathlib.Path'>``)."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from test_config_types import problems_of

from kiosk.config import KioskConfig, validation_problems
from kiosk.config.fleet import CollectorConfig

#: One value of every TOML type, and the edge values of the common ones.
WRONG_VALUES: tuple[object, ...] = (
    "x",
    "",
    "3000",
    "x" * 5000,
    5,
    -(10**9),
    10**12,
    2.5,
    1e300,
    True,
    [1],
    ["x"] * 600,
    [],
    {"a": 1},
    {},
    time(8, 30),
    date(2026, 3, 2),
    datetime(2026, 3, 2, 9, 0),
)

#: What a Python programmer reads, not an operator (``lists_stale_after_h`` is a key).
PYTHON_WORDS = re.compile(
    r"Section|Config\b|<class|instance of|\b(tuple|dict|list|float|str|NoneType)\b"
    r"|Input should|Value error|isoformat|pydantic"
)


def _models(annotation: object) -> Iterator[tuple[type[BaseModel], dict[str, Any], bool]]:
    """The models a field's annotation holds: (model, the keys an entry needs to pick it
    (a discriminated union's `type`), whether it is an array's entry)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        tag = annotation.model_fields.get("type")
        yield annotation, ({"type": tag.default} if tag and tag.default else {}), False
    elif origin is list:
        for model, needs, _ in _models(args[0]):
            yield model, needs, True
    elif origin in (typing.Union, types.UnionType, typing.Annotated):
        for arg in args:
            yield from _models(arg)


def _placed(path: list[tuple[str, dict[str, Any], bool]], key: str, value: object) -> object:
    """``{section: {key: value}}`` down ``path``, an array's entry as a one-entry array."""
    data: object = {key: value}
    for name, needs, in_array in reversed(path):
        entry = {**needs, **typing.cast(dict[str, Any], data)}
        data = {name: [entry] if in_array else entry}
    return data


def _wrong_configs(
    model: type[BaseModel], path: list[tuple[str, dict[str, Any], bool]]
) -> Iterator[tuple[str, object]]:
    """Every field of ``model`` and the models under it, given each wrong value in turn; and
    a key it does not have."""
    yield ".".join([*(p[0] for p in path), "colour"]), _placed(path, "colour", 1)
    for key, field in model.model_fields.items():
        for value in WRONG_VALUES:
            yield ".".join([*(p[0] for p in path), key]), _placed(path, key, value)
        for sub, needs, in_array in _models(field.annotation):
            if len(path) < 6:
                yield from _wrong_configs(sub, [*path, (key, needs, in_array)])


def _problems(model: type[BaseModel]) -> Iterator[tuple[str, set[str], list[str]]]:
    """(the key given a wrong value, pydantic's error types, the problems reported)."""
    for where, data in _wrong_configs(model, []):
        try:
            model.model_validate(data)
        except ValidationError as exc:
            yield where, {err["type"] for err in exc.errors()}, validation_problems(exc)


@pytest.mark.slow
@pytest.mark.parametrize("model", [KioskConfig, CollectorConfig], ids=lambda m: m.__name__)
def test_no_message_a_config_can_get_speaks_python(model):
    seen: set[str] = set()
    bad = set()
    for where, kinds, problems in _problems(model):
        seen |= kinds
        bad |= {f"{where} -> {p}" for p in problems if PYTHON_WORDS.search(p)}
    assert sorted(bad) == []
    # The walk reached every kind of mistake (so it is not vacuous).
    assert {"string_type", "int_type", "extra_forbidden", "less_than_equal"} <= seen
    if model is KioskConfig:
        assert {"model_type", "tuple_type", "time_type", "bool_type", "literal_error"} <= seen
        assert {"union_tag_invalid", "float_type", "string_too_long", "too_long"} <= seen
    else:
        assert {"path_type", "list_type", "string_pattern_mismatch"} <= seen


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        (  # the commonest: quotes around a number
            '[gate]\npulse_ms = "3000"',
            "gate.pulse_ms: should be an integer (got a string: write 3000 without the quotes)",
        ),
        (
            "[gate]\npulse_ms = 3000.0",
            "gate.pulse_ms: should be an integer (got a decimal number: write 3000)",
        ),
        (
            '[thermometer.thermometry]\nfever_threshold_c = "37.5"',
            "thermometer.thermometry.fever_threshold_c: should be a decimal number"
            " (got a string: write 37.5 without the quotes)",
        ),
        (
            "[thermometer.thermometry]\nfever_threshold_c = 45",
            "thermometer.thermometry.fever_threshold_c: should be at most 40 (got 45)",
        ),
        (
            '[web]\nmask_personal = "false"',
            "web.mask_personal: should be true or false"
            " (got a string: write false without the quotes)",
        ),
        (  # was: Input should be a valid tuple
            '[web]\nscreen_addresses = "10.0.0.5"',
            "web.screen_addresses: should be an array (got a string)",
        ),
        (  # was: Input should be a valid dictionary or instance of ReadersSection
            'readers = "camera"',
            "readers: should be a table (got a string)",
        ),
        (
            '[policy]\nmode = "ful"',
            'policy.mode: should be one of "full", "temperature_only", "pass_only" (got "ful")',
        ),
        (  # was: Input tag 'mlx' found using 'type' does not match any of the expected tags
            '[thermometer.driver]\ntype = "mlx"',
            'thermometer.driver.type: should be one of "mlx90614", "fake" (got "mlx")',
        ),
        (
            '[sitee]\nkiosk_id = "gate-7"',
            "sitee: unknown key (check its spelling and the table it is in)",
        ),
        (  # was: Value error, Invalid isoformat string: '8h30'
            '[policy.hours]\nenabled = true\nopen_at = "8h30"',
            'policy.hours.open_at: should be a time of day (08:30:00 or "08:30") (got "8h30")',
        ),
        (
            "[policy.hours]\nenabled = true\nopen_at = 30600",
            'policy.hours.open_at: should be a time of day (08:30:00 or "08:30") (got an integer)',
        ),
        ('[store]\npath = ""', "store.path: should not be empty"),
        ("[web]\nport = 70000", "web.port: should be at most 65535 (got 70000)"),
    ],
)
def test_a_common_mistake_reads_as_what_to_write(toml, problem):
    assert problem in problems_of(toml)


def test_a_setting_of_either_type_is_one_line():
    """Readers' ``device`` takes an integer or a string: one line saying so, not one per type
    tried (``device.int: ...``, ``device.str: ...``)."""
    assert problems_of('[[readers.sources]]\ntype = "camera"\ndevice = 2.5') == [
        "readers.sources[0].device: should be an integer or a string (got a decimal number)"
    ]


def test_the_collector_config_reads_the_same():
    """Was: ``Input is not a valid path for <class 'pathlib.Path'>``."""
    with pytest.raises(ValidationError) as info:
        CollectorConfig.model_validate({"kiosks": [{"url": "http://g.lan", "token_file": 5}]})
    assert validation_problems(info.value) == [
        "kiosks[0].token_file: should be a path (a string) (got an integer)"
    ]


def test_an_empty_array_says_how_many_entries():
    """Was: ``List should have at least 1 item after validation, not 0``."""
    with pytest.raises(ValidationError) as info:
        CollectorConfig.model_validate({"kiosks": []})
    assert validation_problems(info.value) == ["kiosks: should have at least 1 entry"]
