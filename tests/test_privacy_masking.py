"""Phone and ID numbers typed into free text are masked however they are written (issue 15).

Property tests: a generated mobile number or resident ID, laid out with any separators, a
prefix, full-width digits, inside arbitrary text without digits, never survives masking."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.privacy import mask_event, scrub_text

FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
SEPARATORS = [" ", ".", "-", "/", "_", "\u3000", " - ", "·"]

mobiles = st.builds(
    lambda second, rest: "1" + second + rest,
    st.sampled_from("3456789"),
    st.text("0123456789", min_size=9, max_size=9),
)
resident_ids = st.builds(
    lambda body, check: body + check,
    st.text("0123456789", min_size=17, max_size=17),
    st.sampled_from("0123456789X"),
)
#: Text around the number: anything but digits (and no X/x next to an ID's end).
filler = st.text(
    st.characters(blacklist_categories=("Nd", "Cs"), blacklist_characters="Xxｘ+"), max_size=12
)


@st.composite
def laid_out(draw: st.DrawFn, numbers: st.SearchStrategy[str]) -> tuple[str, str]:
    """(number, the number written with random group cuts and separators)."""
    number = draw(numbers)
    cuts = sorted(draw(st.sets(st.integers(1, len(number) - 1), max_size=4)))
    parts = [number[a:b] for a, b in zip([0, *cuts], [*cuts, len(number)], strict=True)]
    seps = [draw(st.sampled_from(SEPARATORS)) for _ in parts[1:]]
    text = parts[0] + "".join(sep + part for sep, part in zip(seps, parts[1:], strict=True))
    if draw(st.booleans()):
        text = text.translate(FULL_WIDTH)
    prefix = draw(st.sampled_from(["", "tel", "Tel:", "ID ", "电话", "+86 ", "身份证"]))
    return number, prefix + text


def digits_of(text: str) -> str:
    return re.sub(r"[^0-9Xx]", "", text)


def assert_hidden(number: str, note: str) -> None:
    out = scrub_text(note)
    assert number not in digits_of(out), (note, out)
    assert "*" in out


@pytest.mark.slow
@settings(max_examples=300, deadline=None, database=None)
@given(laid_out(mobiles), filler, filler)
def test_a_mobile_number_never_survives_in_free_text(number_text, before, after):
    number, text = number_text
    assert_hidden(number, f"{before} {text} {after}")


@pytest.mark.slow
@settings(max_examples=300, deadline=None, database=None)
@given(laid_out(resident_ids), filler, filler)
def test_a_resident_id_never_survives_in_free_text(number_text, before, after):
    number, text = number_text
    assert_hidden(number.upper(), f"{before} {text} {after}".upper())


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(st.characters(blacklist_categories=("Nd", "Cs")), max_size=60))
def test_text_without_digits_is_left_as_it_is(text):
    assert scrub_text(text) == text


@settings(max_examples=200, deadline=None, database=None)
@given(laid_out(mobiles), filler)
def test_masking_is_idempotent(number_text, around):
    _, text = number_text
    once = scrub_text(around + text + around)
    assert scrub_text(once) == once


@settings(database=None)
@given(st.integers(0, 999_999), filler)
def test_short_numbers_are_not_personal_and_stay(number, words):
    note = f"{words} room {number}"
    assert scrub_text(note) == note


def test_the_issue_examples_are_masked():
    for note, number in [
        ("tel13900139000", "13900139000"),
        ("1390 013 9000", "13900139000"),
        ("139.0013.9000", "13900139000"),
        ("１３９００１３９０００", "13900139000"),
        ("ID 110105 19491231 003X", "11010519491231003X"),
    ]:
        out = scrub_text(note)
        assert number not in digits_of(out) and out.count("*") >= 4, out
    assert scrub_text("call 1390 013 9000 at gate 3") == "call 139****9000 at gate 3"


def test_every_free_text_field_of_an_event_is_masked_unless_notes_are_allowed():
    event = {
        "seq": 1,
        "operator": "guard Li 13900139000",
        "reasons": ["guard_override", "told ID 110105 19491231 003X"],
        "flags": ["tel139.0013.9000"],
        "holder": "Wang Fang",
        "person": {"note": "１３９００１３９０００", "name": "Zhang Wei"},
    }
    masked = mask_event(event)
    texts = (masked["operator"], *masked["reasons"], *masked["flags"], masked["person"]["note"])
    for value in texts:
        assert "0013" not in digits_of(value) and "19491231" not in digits_of(value), value
    assert masked["reasons"][0] == "guard_override"
    assert masked["holder"] == "W."
    clear = mask_event(event, {"person.note"})
    assert clear["operator"] == event["operator"]
    assert clear["person"]["note"] == "１３９００１３９０００"
