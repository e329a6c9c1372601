"""What a person types, in the one spelling the gate stores and compares.

A Chinese input method in full-width mode types ``１-１０１``, ``Ａ１２３４５``,
``１３８００１３８０００``, and its space bar gives the ideographic space U+3000. ``typed`` is
applied by the core's own validators (``kiosk.community.clean_text``, the list models of
``kiosk.lists``, the codes and names of a guard's record in ``kiosk.engine.Engine.manual``),
so every entry point (console forms, CSV/xlsx imports, the CLI, the API) stores ``1-101``
whichever way it was typed:

* a character whose compatibility form (NFKC) is plain ASCII becomes that ASCII
  (full-width letters, digits and punctuation); every other character is kept as typed, so
  Chinese names and a plate's province character never change;
* any space (U+3000, a no-break space) is a plain space; runs of them are one; none at either end.

Case is left alone: each identifier keeps its own rule (a plate is upper case, a pass id lower).

``unseen`` says whether a text holds a character nobody sees (the rule every typed field and
every household a peer gate sends is refused by).

``visible`` is the other way round: text from elsewhere (a sheet's cell, another machine's
answer) as it may be printed, every character nobody sees escaped.

``whole_number`` reads a count or a sequence number written as machines write them (a header,
a flag, a path's seq, a stored mark): ASCII digits only.
"""

from __future__ import annotations

import unicodedata

__all__ = ["typed", "unseen", "visible", "whole_number"]


def _fold(ch: str) -> str:
    if ch.isascii():
        return ch
    if unicodedata.category(ch) == "Zs":
        return " "
    folded = unicodedata.normalize("NFKC", ch)
    return folded if folded.isascii() and folded.isprintable() else ch


def typed(text: str) -> str:
    """``text`` width-folded to ASCII where it has an ASCII form, spaces collapsed and trimmed."""
    return " ".join(part for part in "".join(_fold(ch) for ch in text).split(" ") if part)


def unseen(text: str) -> bool:
    """Whether ``text`` holds a character nobody sees: a control or format character (a
    zero-width space or joiner, a right-to-left override, a soft hyphen, DEL, a C1 control),
    a surrogate, a private or unassigned code point, a line or paragraph separator. A space of
    any width is seen (``typed`` makes it a space). Such a text looks like another on every
    screen and matches no pass at the gate."""
    return any(
        unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp")
        for ch in text
    )


#: What ``visible`` escapes: control and format characters, surrogates, line and paragraph
#: separators. Any other character is seen (a Chinese name, an ideographic space).
_UNSEEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def visible(text: str, keep: str = "") -> str:
    """``text`` to be printed or shown where it did not come from: every character nobody
    sees escaped as Python spells it (``\\x1b``, ``\\u202e``, ``\\r``), but those of
    ``keep`` (a message's own ``"\\n\\t"``). Raw, a terminal escape quoted from a sheet's
    cell or a hostile answer would retitle or rewrite the operator's terminal, a line break
    forge a line of its own, a right-to-left override reorder a status page's words."""
    return "".join(
        ch
        if ch in keep or ch.isprintable() or unicodedata.category(ch) not in _UNSEEN
        else repr(ch)[1:-1]
        for ch in text
    )


def whole_number(text: str, most_digits: int = 18) -> int | None:
    """``text`` as a whole number when it is 1 to ``most_digits`` ASCII digits, else None.
    ``str.isdigit`` alone is not a number's test: ``²``, ``①`` and ``᧚`` are digits to it
    and no number to ``int``, which raised (a 500 from a request's field, a failed pull
    from a hostile gate's header)."""
    if not (text.isascii() and text.isdigit()) or len(text) > most_digits:
        return None
    return int(text)
