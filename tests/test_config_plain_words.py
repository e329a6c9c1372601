"""Config problems in plain words where pydantic's showed through: a value that does not
have the form a key takes says that form in words (never the regular expression it is
checked with), and a problem with the whole config names its keys (never ``(root):``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from test_config_messages import _models, _placed
from test_config_types import problems_of

from kiosk.config import KioskConfig, validation_problems
from kiosk.config.fleet import CollectorConfig
from kiosk.config.problems import PATTERNS

#: A value no pattern of a config takes (a space, lower and upper case, a symbol).
UNFIT = "no Such value!"


def _pattern(annotation: object, metadata: tuple[object, ...] = ()) -> str | None:
    """The pattern a field is checked with: on the field, or on a type it is annotated with
    (``EnvName | None``), however deep."""
    for item in metadata:
        found = getattr(item, "pattern", None) or _pattern(None, getattr(item, "metadata", ()))
        if isinstance(found, str):
            return found
    for arg in getattr(annotation, "__args__", ()):
        found = _pattern(arg, getattr(arg, "__metadata__", ()))
        if found:
            return found
    return None


def _pattern_fields(
    model: type[BaseModel], path: list[tuple[str, dict[str, Any], bool]]
) -> Iterator[tuple[str, str, object]]:
    """(the key, its pattern, a config giving it ``UNFIT``) for every key a pattern checks,
    in ``model`` and every model under it, whatever the union or array it is in."""
    for key, field in model.model_fields.items():
        pattern = _pattern(field.annotation, tuple(field.metadata))
        if pattern:
            yield ".".join([*(p[0] for p in path), key]), pattern, _placed(path, key, UNFIT)
        for sub, needs, in_array in _models(field.annotation):
            if len(path) < 6:
                yield from _pattern_fields(sub, [*path, (key, needs, in_array)])


FIELDS = [
    (model, *found)
    for model in (KioskConfig, CollectorConfig)
    for found in _pattern_fields(model, [])
]


def test_the_walk_finds_the_pattern_checked_keys():
    keys = {key for _model, key, _pattern, _data in FIELDS}
    assert {"site.kiosk_id", "kiosks.token_env", "database_dsn_env"} <= keys, keys


@pytest.mark.parametrize(("model", "key", "pattern", "data"), FIELDS, ids=[f[1] for f in FIELDS])
def test_a_value_of_the_wrong_form_is_said_in_words_not_as_a_regular_expression(
    model, key, pattern, data
):
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    problems = validation_problems(info.value)
    [said] = [p for p in problems if re.sub(r"\[\d+\]", "", p.split(": ")[0]) == key]
    assert pattern not in said and "pattern" not in said, said
    assert said == f'{said.split(": ")[0]}: should be {PATTERNS[pattern]} (got "{UNFIT}")'


def test_a_problem_with_the_whole_config_names_its_keys_not_the_root():
    """Was: ``(root): readers.sources: policy.mode 'full' checks passes: …``."""
    problems = problems_of("[readers]\nsources = []")
    assert problems == [
        "readers.sources: policy.mode 'full' checks passes: name at least one code reader"
        " (or mode 'temperature_only')"
    ]


def test_a_config_that_is_not_a_table_says_so_in_toml_words():
    """Was: ``(root): should be a table (got an array)``."""
    with pytest.raises(ValidationError) as info:
        KioskConfig.model_validate([1])
    assert validation_problems(info.value) == ["the whole config: should be a table (got an array)"]
