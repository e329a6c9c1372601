"""What the core says when it refuses a guard's change (the calibration file, the lists, a
pass, the community ledgers and imports, a manual decision), in the guard's language.

The core writes one plain English sentence (the CLI prints it as it is). The console matches
it whole against the English of ``ui/messages.toml``'s ``core.*`` keys, which repeats the
core's wording with its parts as ``{name}``, and says it again in the page's language. Parts
are carried over as they came (numbers, codes, what was typed), except a part that is a
field or a state the core names (``core.word.*``: ``household``, ``observing``), said in
the page's language, and a part named ``inner`` (or ``many``: problems joined by "; "): a
sentence of its own, said the same way.
A text in no known form is shown as it came: never hidden, never guessed at.
"""

from __future__ import annotations

import re
import string

from ui import i18n

#: The forms, most specific first (a form whose parts are all open, ``{field}: {inner}``,
#: comes after every form it would also match).
_ALL_KEYS = i18n.keys()
KEYS = tuple(k for k in _ALL_KEYS if k.startswith("core.") and not k.startswith("core.word."))
#: How deep sentences inside sentences are said (an import's "…; nothing imported" of a
#: line's field's problem is six).
MAX_DEPTH = 8
#: Longer texts are not matched (the console shows 300 characters of a problem at most).
MAX_CHARS = 2000


#: What some parts can be (others: any text): a count or a line number is digits, a field
#: a name (a sentence that is not a field is not said as "field: reason").
_PARTS = dict.fromkeys(("n", "line", "first", "total", "room", "hours", "mb", "max"), r"\d+")
_PARTS["field"] = r"[\w.\[\]]+"
#: A sentence inside a sentence is one problem (several are joined by "; "), except the
#: part ``many`` of a sentence that wraps the problems joined ("…; nothing imported").
_PARTS["inner"] = r"(?:(?!; ).)+?"
#: Any other part (a value, a name) is one item: it holds no ": " or "; " (which separate a
#: line's field from its problem, and problems), so a form that begins with a part cannot
#: take a line's "line 2: from: " for its part. An error's own text (``err``) holds anything.
_PARTS["err"] = _PARTS["many"] = ".+?"
_ITEM = r"(?:(?!: |; ).)+?"


def _form(english: str) -> re.Pattern[str]:
    """The regular expression of one English template: its text literally, each part lazily."""
    parts = []
    for text, name, _spec, _conv in string.Formatter().parse(english):
        parts.append(re.escape(text))
        if name is not None:
            parts.append(f"(?P<{name}>{_PARTS.get(name, _ITEM)})")
    return re.compile("".join(parts), re.DOTALL)


FORMS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((k, _form(i18n.t("en", k))) for k in KEYS)


def _part(lang: str, name: str, value: str, depth: int) -> str:
    if name in ("inner", "many"):
        return refusal_text(lang, value, depth + 1)
    word = f"core.word.{value.strip(chr(39))}"
    return i18n.t(lang, word) if i18n.has(word) else value


def refusal_text(lang: str, text: str, depth: int = 0) -> str:
    """``text`` (the core's refusal) in ``lang``; as it came when it is in no known form."""
    if depth > MAX_DEPTH or len(text) > MAX_CHARS:
        return text
    for key, form in FORMS:
        found = form.fullmatch(text)
        if found is not None:
            parts = {k: _part(lang, k, v, depth) for k, v in found.groupdict().items()}
            return i18n.t(lang, key, **parts)
    if "; " in text:  # several problems in one sentence (a list import's first three)
        said = [refusal_text(lang, part, depth + 1) for part in text.split("; ")]
        return ("；" if lang == "zh-CN" else "; ").join(said)
    return text
