"""A gate's config from an older release, read by this one: no setting it names may vanish and
no setting it leaves out may change meaning without the update guide saying so.

``tests/data/config_defaults.json`` holds every key of the config with its default as the
releases so far have them (the schema's ``default``; one changed: ``policy.passback.mode``,
docs/install.md, Settings). A key removed or renamed makes the older configs that name it
refused; a default changed changes every gate whose config leaves it out, silently. Either
is a decision to write down in docs/install.md (Settings) and in the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kiosk.config import KioskConfig

RECORDED = Path(__file__).parent / "data" / "config_defaults.json"


def defaults() -> dict[str, Any]:
    """Every key path of the config (``a.b``, ``a[].b`` in lists) and its default (None: none)."""
    schema = KioskConfig.model_json_schema()
    defs = schema.get("$defs", {})
    out: dict[str, Any] = {}

    def walk(node: dict[str, Any], path: str, depth: int = 0) -> None:
        if depth > 12:
            return
        if path and "default" in node:
            out[path] = node["default"]
        if "$ref" in node:
            walk(defs[node["$ref"].split("/")[-1]], path, depth + 1)
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key, []):
                walk(sub, path, depth + 1)
        if node.get("type") == "array" and isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]", depth + 1)
        for name, sub in node.get("properties", {}).items():
            key = f"{path}.{name}" if path else name
            out.setdefault(key, None)
            walk(sub, key, depth + 1)

    walk(schema, "")
    return out


def test_no_config_key_an_older_release_wrote_is_gone():
    gone = sorted(set(json.loads(RECORDED.read_text())) - set(defaults()))
    assert gone == [], (
        f"{gone}: a config of an earlier release naming these is now refused; say in"
        " docs/install.md (Settings) what to write instead, and in kiosk/config/problems.py's"
        " message for them, then update tests/data/config_defaults.json"
    )


def test_no_default_changed_without_the_update_guide_saying_so():
    recorded = json.loads(RECORDED.read_text())
    now = defaults()
    changed = sorted(k for k in recorded if k in now and now[k] != recorded[k])
    assert changed == [], (
        f"{changed}: every gate whose config leaves these out behaves otherwise after the"
        " update; say so in docs/install.md (Settings), then update"
        " tests/data/config_defaults.json"
    )
