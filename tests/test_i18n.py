"""Both languages, every string: keys, reason codes, placeholders, templates."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from ui import i18n

ROOT = Path(__file__).resolve().parent.parent
#: The reason codes of the event record (docs/event-log.md, docs/policy.md).
REASON_CODES = [
    "ok", "fever", "temp_implausible", "no_temperature", "sensor_fault", "reader_fault",
    "pass_malformed", "pass_bad_signature", "pass_unknown_key", "pass_expired",
    "pass_not_yet_valid", "pass_revoked", "quarantined", "quota_exceeded", "passback",
    "outside_hours", "store_fault", "guard_override", "no_guard_on_duty", "under_observation",
    "quarantine_unconfirmed",
]  # fmt: skip


def _fields(text: str) -> set[str]:
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", i18n.keys())
def test_every_string_exists_in_both_languages_with_the_same_placeholders(key):
    zh, en = i18n._S[key]
    assert zh.strip() and en.strip()
    assert _fields(zh) == _fields(en)


def test_chinese_strings_are_actually_chinese():
    untranslated = [k for k, (zh, en) in i18n._S.items() if zh == en and re.search("[a-z]{3}", en)]
    assert untranslated == []


@pytest.mark.parametrize("code", REASON_CODES)
def test_every_contract_reason_code_has_plain_words_in_both_languages(code):
    assert i18n.reason_text("zh-CN", code) != code
    assert i18n.reason_text("en", code) != code
    assert "_" not in i18n.reason_text("en", code)


def test_unknown_reason_code_is_shown_as_itself_not_hidden():
    assert i18n.reason_text("en", "brand_new_rule") == "brand_new_rule"


def test_engine_prompts_are_all_translated():
    from kiosk.engine import PROMPTS

    for prompt in PROMPTS:
        assert i18n.has(f"prompt.{prompt}"), prompt


def test_pick_lang_falls_back_to_the_configured_default():
    assert i18n.pick_lang("en", "zh-CN") == "en"
    assert i18n.pick_lang("en-US", "zh-CN") == "en"
    assert i18n.pick_lang("zh", "en") == "zh-CN"
    assert i18n.pick_lang("fr", "en") == "en"
    assert i18n.pick_lang(None, "zh-CN") == "zh-CN"


def test_reasons_text_joins_failed_rules_and_skips_ok():
    assert i18n.reasons_text("en", ["ok"]) == "All checks passed"
    assert i18n.reasons_text("en", ["fever", "pass_expired"]) == (
        "Temperature too high; Pass has expired"
    )
    assert "；" in i18n.reasons_text("zh-CN", ["fever", "pass_expired"])


def test_every_key_used_by_a_template_or_module_exists():
    used: set[str] = set()
    for path in (ROOT / "ui" / "templates").glob("*.html"):
        used |= set(
            re.findall(r'_\(\s*["\']([a-z_]+\.[a-z_.]*[a-z_])["\']', path.read_text("utf-8"))
        )
    for path in (ROOT / "ui").glob("*.py"):
        text = path.read_text("utf-8")
        used |= set(re.findall(r'i18n\.t\(\s*\w+,\s*"([a-z_]+\.[a-z_.]+)"', text))
        used |= set(re.findall(r'BadInput\(\s*"([a-z_]+\.[a-z_.]+)"', text))
        used |= set(re.findall(r'field="([a-z_]+\.[a-z_.]+)"', text))
        used |= set(
            re.findall(r'_(?:clean|float|int|choice|date_field)\([^)]*?"([a-z]+\.[a-z_]+)"', text)
        )
    missing = sorted(k for k in used if not i18n.has(k))
    assert missing == []
    assert len(used) > 100


#: The keys the code builds rather than names: (the keys, how the code builds them). Each
#: builder must be in the code, so a family whose builder is gone is caught too.
BUILT_KEYS = [
    (r"prompt\.", 'f"prompt.{'), (r"result\.", 'f"result.{'),
    (r"kiosk\.rescan\.", 'f"kiosk.rescan.{'), (r"kiosk\.dir\.", '"kiosk.dir." +'),
    (r"device\.", 'f"device.{'), (r"health\.", 'f"health.{'), (r"role\.", 'f"role.{'),
    (r"alarm\.", 'f"alarm.{'), (r"alarm\.todo\.", 'f"alarm.todo.{'),
    (r"standby\.fix\.", 'f"standby.fix.{'), (r"resolution\.", '"resolution." +'),
    (r"(manual|reg)\.fever_refused", 'f"{key}.fever_refused"'),
    (r"evac\.cause\.", '"evac.cause." +'), (r"dir\.", 'f"dir.{'),
    (r"reg\.\w+_confirm", 'f"reg.{h}_confirm"'), (r"reg\.", '"reg." + form'),
    (r"pass\.role\.", 'f"pass.role.{'), (r"pass\.status\.", 'f"pass.status.{'),
    (r"confirm\.", 'f"confirm.{'), (r"lists\.", '"lists." + list'),
    (r"lists\.source\.", 'f"lists.source.{'), (r"export\.kind\.", 'f"export.kind.{'),
    (r"export\.pi_", 'f"export.pi_{'), (r"dev\.", 'f"dev.{'), (r"decision\.", 'f"decision.{'),
    (r"kind\.", 'f"kind.{'),
    (r"core\.(?!word\.)", 'k.startswith("core.")'), (r"core\.word\.", 'f"core.word.{'),
    (r"people\.key\.", 'f"people.key.{'), (r"people\.err\.", 'f"people.err.{'),
    (r"people\.st\.", '"people.st." +'), (r"people\.do\.", '"people.do." +'),
    (r"session\.act\.", 'f"session.act.{'), (r"session\.box\.", '"session.box."'),
    (r"err\.required\.", 'f"{self.key}.{'),
]  # fmt: skip


def _code() -> str:
    return "\n".join(
        path.read_text("utf-8")
        for top in ("ui", "kiosk", "checkpoint")
        for path in sorted((ROOT / top).rglob("*"))
        if path.suffix in (".py", ".js", ".html")
    )


def test_every_key_is_named_or_built_by_the_code():
    """A key nothing says (err.forbidden, pass.issued_by...) reads to a newcomer as a screen
    that exists: each key is named in ui/, kiosk/ or checkpoint/, or built there."""
    code = _code()
    assert [builder for _keys, builder in BUILT_KEYS if builder not in code] == []
    built = re.compile("|".join(f"(?:{keys})" for keys, _builder in BUILT_KEYS))
    named = set(re.findall(r"[\"'`]([a-z_]+(?:\.[a-z_0-9]+)+)[\"'`]", code))
    every = i18n.keys()
    unsaid = [k for k in every if k not in named and not built.match(k)]
    assert unsaid == []


def test_templates_have_no_untranslated_words_between_tags():
    # Text nodes must come from _(), variables or symbols; never literal English words.
    for path in (ROOT / "ui" / "templates").glob("*.html"):
        text = re.sub(r"{[{%#].*?[}%#]}", "", path.read_text("utf-8"), flags=re.S)
        text = re.sub(r"<(script|style|svg)\b.*?</\1>", "", text, flags=re.S)
        words = [w.strip() for w in re.findall(r">([^<>]+)<", text) if w.strip()]
        stray = [w for w in words if re.search(r"[A-Za-z]{3}", w) and w not in ("English",)]
        assert stray == [], f"{path.name}: {stray}"


def test_every_pass_role_and_direction_has_words():
    from kiosk.passes import ROLES

    for role in ROLES:
        assert i18n.has(f"pass.role.{role}")
    for d in ("in", "out"):
        assert i18n.has(f"dir.{d}") and i18n.has(f"kiosk.dir.{d}")
