"""The functions of the project's own JavaScript (``ui/static/*.js``) and their lengths, for
the architecture rule (``tests/test_architecture.py``): no npm, a small scanner that reads
these files well enough. It skips comments, strings, template literals (the code inside
``${...}`` is read) and regular expression literals, matches braces, and names a function at
each body it opens: ``function name(...) {``, an arrow's block ``=> {``, a method
``name(...) {`` (its name computed, ``[Symbol.iterator](...) {``, or a string,
``'render'(...) {``). An arrow's expression body (``x => x + 1``) is part of its parent. A
``{`` after ``if (...)``, ``for (...)`` and the like opens a block, not a function.

``top_level_code`` is the script's code outside every function (the lines that carry it):
shared state and the calls that start the page, a top-level block's included, which the rule
holds to the same length as one function; a function's declaration is the function's."""

from __future__ import annotations

import re
from typing import NamedTuple

#: Words after which a ``/`` starts a regular expression, not a division.
REGEX_AFTER_WORDS = frozenset(
    {"return", "typeof", "case", "do", "else", "in", "of", "new", "delete", "void", "throw"}
    | {"instanceof", "yield", "await"}
)
#: Words before ``(...) {`` that open a block, not a method.
BLOCK_WORDS = frozenset(["if", "for", "while", "switch", "catch", "with"])

_TOKEN = re.compile(r"[A-Za-z_$][\w$]*|\d[\w.]*|=>|\.\.\.|[^\s]")


class JsFunction(NamedTuple):
    """One function: its name (``<anonymous>``, ``<arrow>`` when it has none), the lines
    of its first and last line (1-based)."""

    name: str
    first: int
    last: int

    @property
    def lines(self) -> int:
        return self.last - self.first + 1


class _Token(NamedTuple):
    text: str
    line: int


class JsScanError(ValueError):
    """The text could not be read (an unclosed string, comment or brace)."""


def _skip_string(text: str, i: int, quote: str) -> int:
    """The index after the string literal that starts at ``i``."""
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == quote:
            return i + 1
        if c == "\n":
            break
        i += 1
    raise JsScanError(f"unclosed string at offset {i}")


def _skip_regex(text: str, i: int) -> int:
    """The index after the regular expression literal that starts at ``i`` (its flags too)."""
    i += 1
    in_class = False
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "\n":
            break
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        elif c == "/" and not in_class:
            i += 1
            while i < len(text) and (text[i].isalnum() or text[i] in "_$"):
                i += 1
            return i
        i += 1
    raise JsScanError(f"unclosed regular expression at offset {i}")


def _regex_may_start(before: _Token | None) -> bool:
    """Whether a ``/`` after ``before`` (the last token) starts a regular expression."""
    if before is None:
        return True
    word = before.text
    if word[0] in "'\"":  # a string: a value, divided
        return False
    if word[0].isalnum() or word[0] in "_$":
        return word in REGEX_AFTER_WORDS
    return word not in (")", "]", "}")


def tokens(text: str) -> list[_Token]:
    """The code's tokens (identifiers, numbers, ``=>``, single punctuation characters) with
    their lines: comments, strings, regular expressions and the text of template literals
    left out, the braces of ``${...}`` kept as ``{`` and ``}``."""
    out: list[_Token] = []
    # Where each open template literal's ``${`` was: the brace depth at which it closes.
    templates: list[int] = []
    depth = 0
    i, line = 0, 1
    n = len(text)
    while i < n:
        c = text[i]
        start = i
        if c == "\n":
            line += 1
            i += 1
            continue
        if c.isspace():
            i += 1
            continue
        if text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise JsScanError(f"unclosed comment at line {line}")
            i = end + 2
        elif c in "'\"":
            i = _skip_string(text, i, c)
            out.append(_Token(text[start:i], line))  # a value: a method's name, perhaps
        elif c == "`" or (c == "}" and templates and templates[-1] == depth):
            if c == "}":
                templates.pop()
            i, opened = _template_part(text, i + 1)
            if opened:
                templates.append(depth)
        elif c == "/" and _regex_may_start(out[-1] if out else None):
            i = _skip_regex(text, i)
        else:
            m = _TOKEN.match(text, i)
            assert m is not None
            out.append(_Token(m.group(), line))
            depth += {"{": 1, "}": -1}.get(m.group(), 0)
            i = m.end()
        line += text.count("\n", start, i)
    if templates:
        raise JsScanError("unclosed template literal")
    return out


def _template_part(text: str, i: int) -> tuple[int, bool]:
    """Read a template literal's text from ``i`` to its end (``False``) or to a ``${``
    (``True``, the code after it read as code): the index after it."""
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "`":
            return i + 1, False
        if text.startswith("${", i):
            return i + 2, True
        i += 1
    raise JsScanError("unclosed template literal")


def _opener(toks: list[_Token], k: int, partner: dict[int, int]) -> tuple[str, int] | None:
    """The function whose body the ``{`` at ``toks[k]`` opens (its name and first line), or
    none for a block or an object literal."""
    before = toks[k - 1] if k else None
    if before is None:
        return None
    if before.text == "=>":
        return "<arrow>", before.line
    if before.text != ")":
        return None
    opened = partner[k - 1]
    head = toks[opened - 1] if opened else None
    if head is None:
        return None
    if head.text == "function":
        return "<anonymous>", head.line
    if head.text[0] in "'\"":  # a method named by a string: 'render'(...) {
        return head.text, head.line
    if head.text == "]":  # a computed method name: [Symbol.iterator](...) {
        start = partner[opened - 1]
        return "[" + "".join(t.text for t in toks[start + 1 : opened - 1]) + "]", toks[start].line
    if not (head.text[0].isalpha() or head.text[0] in "_$") or head.text in BLOCK_WORDS:
        return None
    return head.text, head.line


def functions(text: str) -> list[JsFunction]:
    """Every function of a script, in the order they open."""
    return _functions(tokens(text))


def top_level_code(text: str) -> list[int]:
    """The lines that carry code outside every function of a script (``top_level_lines``)."""
    toks = tokens(text)
    inside = set()
    for f in _functions(toks):
        inside.update(range(f.first, f.last + 1))
    return sorted({t.line for t in toks} - inside)


def top_level_lines(text: str) -> int:
    """How many lines of a script carry code outside every function."""
    return len(top_level_code(text))


def _functions(toks: list[_Token]) -> list[JsFunction]:
    partner: dict[int, int] = {}
    stack: list[int] = []
    for k, tok in enumerate(toks):
        if tok.text in "([{":
            stack.append(k)
        elif tok.text in ")]}":
            if not stack or toks[stack[-1]].text != "([{"[")]}".index(tok.text)]:
                raise JsScanError(f"unmatched {tok.text!r} at line {tok.line}")
            partner[k] = stack.pop()
            partner[partner[k]] = k
    if stack:
        raise JsScanError(f"unclosed {toks[stack[-1]].text!r} at line {toks[stack[-1]].line}")
    found = []
    for k, tok in enumerate(toks):
        if tok.text == "{":
            head = _opener(toks, k, partner)
            if head is not None:
                found.append(JsFunction(head[0], head[1], toks[partner[k]].line))
    return found
