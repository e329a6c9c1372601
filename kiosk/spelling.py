"""How a name or a household code is compared wherever one is matched against another: the
gate's lists, a forget's keys, an alarm's person, the names a masked note must not repeat
(``same_text``), and where one occurs in a longer text typed as loosely (``same_text_spans``;
a phone or a document's number there by its letters and digits alone).
Depends on nothing of the kiosk's: every module that compares names can import it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence

#: Dots typed for the separator of a Uyghur or Kazakh name (尼格买提·热合曼), which is U+00B7
#: (民委发〔2016〕33号): input methods and fonts give a bullet, a katakana middle dot (the
#: half-width one is this after NFKC), a bullet or dot operator, a hyphenation point (Taiwan's
#: fonts) or a black circle instead. Compared as the one dot; stored as typed.
_NAME_DOTS = str.maketrans(dict.fromkeys("\u2022\u30fb\u2219\u22c5\u2027\u25cf", "\u00b7"))


#: The characters of the scripts written without a space between words (Han, kana,
#: bopomofo, Hangul) and the name's separator dot: a space beside one is no part of a name.
_UNSPACED = (
    "\u00b7\u1100-\u11ff\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3038-\u303b"
    "\u3040-\u30ff\u3100-\u312f\u3131-\u318e\u31a0-\u31bf\u31f0-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\U00020000-\U0003ffff"
)
#: One space (a run is made one first: ``\\s+`` beside such a character was quadratic in a run
#: of spaces, 16,000 of them 2.3 s) beside a character of ``_UNSPACED``.
_SPACE_BESIDE_UNSPACED = re.compile(f"(?<=[{_UNSPACED}]) | (?=[{_UNSPACED}])")
_SPACES = re.compile(r"\s+")
_UNSPACED_RE = re.compile(f"[{_UNSPACED}]")


def same_text(text: str) -> str:
    """How a household code or a name is compared between a pass and a list: Unicode NFKC
    (a Chinese input method's full-width ５－７０２ is 5-702), outer spaces and case ignored,
    a name's separator dot typed as any of ``_NAME_DOTS`` the standard ``·``, no space beside
    a character of a script written without spaces (``_UNSPACED``: ``欧阳 娜娜``, the
    console's space for an input method's full-width one, is ``欧阳娜娜``), a run of spaces
    elsewhere one (``Zhang  San`` is ``Zhang San``, never ``ZhangSan``: ``Ann Li`` and
    ``Annli`` stay two people, for a forget and an alarm's person as for the gate)."""
    folded = unicodedata.normalize("NFKC", text).strip().casefold().translate(_NAME_DOTS)
    if " " not in folded and folded.isprintable():  # no space of any kind: the usual code
        return folded
    return _SPACE_BESIDE_UNSPACED.sub("", _SPACES.sub(" ", folded))


#: A number this long (letters and digits) is found in a note even inside a longer one: no
#: count or room number is, and a phone typed with its country code joined on must be found.
LONG_NUMBER = 6


def same_text_spans(
    text: str, values: Iterable[str], numbers: Iterable[str] = ()
) -> list[tuple[int, int, str]]:
    """Where each of ``values`` occurs in ``text`` compared as ``same_text`` compares (a
    guard's note ``欧阳 娜娜 忘带卡`` or ``乘客Ｗａｎｇ Ｆａｎｇ同行`` repeats the holder
    ``欧阳娜娜``, the passenger ``Wang Fang``), and each of ``numbers`` (a phone, a
    document's number) by its letters and digits alone, whatever is typed between them
    (``+852 9876 5432`` is in ``tel 852-9876-5432``): ``(start, end, value)`` in ``text`` as
    typed, numbers first, then longest value first, none overlapping one found before it,
    none inside a longer word (``_whole_word``: ``Li`` is not found in ``Lily``) but a
    number of ``LONG_NUMBER`` letters and digits or more (``98765432`` is in ``+85298765432``,
    typed with its country code). One fold of ``text``, then a plain search per value:
    linear in ``text`` for each value."""
    folded, origin = _folded_with_origin(text)
    kept = [i for i, char in enumerate(folded) if char.isalnum()]
    found = [
        *_occurrences(folded, "".join(folded[i] for i in kept), kept, numbers, _letters_digits),
        *_occurrences(folded, folded, range(len(folded)), values, same_text, loose=False),
    ]
    taken: list[tuple[int, int, str]] = []
    masked = bytearray(len(text))  # 1 where a span taken covers ``text``
    for first, last, value in found:
        start, end = origin[first][0], origin[last][1]
        if 1 not in masked[start:end]:
            taken.append((start, end, value))
            masked[start:end] = b"\1" * (end - start)
    return sorted(taken)


def _letters_digits(text: str) -> str:
    """``text`` as ``same_text`` folds it, its letters and digits only."""
    return "".join(char for char in same_text(text) if char.isalnum())


def _occurrences(
    folded: str,
    searched: str,
    places: Sequence[int],
    values: Iterable[str],
    key_of: Callable[[str], str],
    *,
    loose: bool = True,
) -> Iterator[tuple[int, int, str]]:
    """Each whole-word occurrence (``loose``: any, for a key of ``LONG_NUMBER`` characters or
    more) of each of ``values`` (as ``key_of`` folds it, longest first) in ``searched``, whose
    characters are ``folded``'s at ``places``: its first and last character's index in
    ``folded``, and the value."""
    keys = sorted(((key_of(v), v) for v in values), key=lambda kv: len(kv[0]), reverse=True)
    for key, value in keys:
        anywhere = loose and len(key) >= LONG_NUMBER
        at = searched.find(key) if key else -1
        while at >= 0:
            first, last = places[at], places[at + len(key) - 1]
            if anywhere or _whole_word(folded, first, last, key):
                yield first, last, value
                at = searched.find(key, at + len(key))
            else:  # ``Li`` in ``Lily``, ``12`` in ``512``
                at = searched.find(key, at + 1)


def _whole_word(folded: str, first: int, last: int, key: str) -> bool:
    """Whether ``key`` found from ``first`` to ``last`` in ``folded`` is no part of a longer
    word: a key that begins (ends) with a letter of a spaced script needs no such letter
    before (after) it, one that begins (ends) with a digit no digit (``Li`` is not in
    ``Lily``, ``12`` not in ``512``, but ``Wang Fang`` is in ``Wang Fang2次``: a guard writes
    a count after a name). Han, kana and Hangul have no word boundaries: ``王芳`` in
    ``王芳芳`` is found."""
    before = first > 0 and _joined(key[0], folded[first - 1])
    after = last + 1 < len(folded) and _joined(key[-1], folded[last + 1])
    return not (before or after)


def _joined(edge: str, beside: str) -> bool:
    """Whether ``beside`` continues the word ``edge`` is in: both letters, or both digits."""
    kind = _word_kind(edge)
    return kind != "" and kind == _word_kind(beside)


def _word_kind(char: str) -> str:
    """``a`` for a letter, ``0`` for a digit of a script written with spaces between words,
    else ``""`` (``_UNSPACED`` aside: ``乘客Li`` is the word ``Li`` after Han)."""
    if not char.isalnum() or _UNSPACED_RE.match(char):
        return ""
    return "a" if char.isalpha() else "0"


def _folded_with_origin(text: str) -> tuple[str, list[tuple[int, int]]]:
    """``text`` folded as ``same_text`` folds it (its outer spaces aside), with, for each
    folded character, the span of ``text`` it comes from. A character is normalised with the
    combining marks (and conjoining Hangul vowels and finals) that follow it."""
    chars: list[tuple[str, int, int]] = []
    start = 0
    for end in range(1, len(text) + 1):
        if end < len(text) and _joins_previous(text[end]):
            continue
        piece = unicodedata.normalize("NFKC", text[start:end]).casefold().translate(_NAME_DOTS)
        chars.extend((c, start, end) for c in piece)
        start = end
    after = [""] * len(chars)  # the first character after each that is no space
    for i in range(len(chars) - 2, -1, -1):
        after[i] = after[i + 1] if chars[i + 1][0].isspace() else chars[i + 1][0]
    folded: list[str] = []
    origin: list[tuple[int, int]] = []
    for i, (c, start, end) in enumerate(chars):
        if not c.isspace():
            folded.append(c)
            origin.append((start, end))
        elif not (i and chars[i - 1][0].isspace()):  # a run of spaces: one, or none beside
            beside = after[i] + (folded[-1] if folded else "")  # an unspaced character
            if not _UNSPACED_RE.search(beside):
                folded.append(" ")
                origin.append((start, end))
    return "".join(folded), origin


def _joins_previous(char: str) -> bool:
    return unicodedata.combining(char) != 0 or "\u1160" <= char <= "\u11ff"
