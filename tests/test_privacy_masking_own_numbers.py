"""A person's own phone or document number repeated in a note is masked as its field is.

``scrub_text`` finds the mainland's shapes only (a mobile, a landline, a resident ID): a
Hong Kong phone (``+852 9876 5432``) or a passport number (``E12345678``) typed into a note
stayed in clear on the guard's export and the masked API's CSV, while the ``phone`` and
``id_number`` fields beside it were masked. Property tests: the event's own number, laid out
with any separators, with or without a phone's country code, never survives in the note."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.community import mask_record
from kiosk.privacy import mask_event, mask_id_number, mask_phone
from ui.guard.display import GUARD_CLEAR_FIELDS

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
SEPARATORS = [" ", ".", "-", "/", "\u3000", " - ", "(", ")"]

#: Hong Kong and Macau mobiles (8 digits from 5, 6 or 9), with the country code.
foreign_phones = st.tuples(
    st.sampled_from(["852", "853"]),
    st.builds(
        lambda a, b: a + b, st.sampled_from("569"), st.text("0123456789", min_size=7, max_size=7)
    ),
)
#: Passports and Mainland travel permits: a letter or two, then 7 or 8 digits.
documents = st.builds(
    lambda head, body: head + body,
    st.sampled_from(["E", "G", "C", "H", "K", "PE"]),
    st.text("0123456789", min_size=7, max_size=8),
)
#: Text beside the number: no digits, and no Latin letter right next to it.
filler = st.text(st.characters(blacklist_categories=("Nd", "Cs")), max_size=12)
edges = st.sampled_from([" ", ": ", "：", "电话", "护照", ", ", "("])


def laid_out(draw: st.DrawFn, number: str) -> str:
    cuts = sorted(draw(st.sets(st.integers(1, len(number) - 1), max_size=3)))
    parts = [number[a:b] for a, b in zip([0, *cuts], [*cuts, len(number)], strict=True)]
    seps = [draw(st.sampled_from(SEPARATORS)) for _ in parts[1:]]
    text = parts[0] + "".join(sep + part for sep, part in zip(seps, parts[1:], strict=True))
    return text.translate(FULL_WIDTH) if draw(st.booleans()) else text


def bare(text: str) -> str:
    """Letters and ASCII digits only, full-width ones made ASCII, upper case."""
    return re.sub(
        r"[^0-9A-Z]",
        "",
        text.translate(str.maketrans("０１２３４５６７８９", "0123456789")).upper(),
    )


def note_of(event: dict, allowed=()) -> str:
    return mask_event(event, allowed)["person"]["note"]


@pytest.mark.slow
@settings(max_examples=200, deadline=None, database=None)
@given(st.data(), foreign_phones, filler, edges, edges, filler)
def test_a_persons_own_foreign_phone_never_survives_in_the_note(
    data, phone, before, left, right, after
):
    code, national = phone
    field = data.draw(st.sampled_from([f"+{code} {national}", f"+{code}{national}", national]))
    typed = laid_out(data.draw, data.draw(st.sampled_from([code + national, national])))
    if data.draw(st.booleans()):
        typed = "+" + typed
    note = before + left + typed + right + after
    event = {"person": {"name": "John Smith", "phone": field, "note": note}}
    for allowed in (GUARD_CLEAR_FIELDS, ()):
        out = note_of(event, allowed)
        assert national not in bare(out), (field, note, out)
        assert mask_phone(field) in out


@pytest.mark.slow
@settings(max_examples=200, deadline=None, database=None)
@given(st.data(), documents, filler, edges, edges, filler)
def test_a_persons_own_document_number_never_survives_in_the_note(
    data, number, before, left, right, after
):
    typed = laid_out(data.draw, number)
    if data.draw(st.booleans()):
        typed = typed.lower()
    note = before + left + typed + right + after
    event = {"person": {"name": "John Smith", "id_number": number, "note": note}}
    for allowed in (GUARD_CLEAR_FIELDS, ()):
        out = note_of(event, allowed)
        assert number not in bare(out), (note, out)
        assert mask_id_number(number) in out


def test_the_reviews_example_is_masked_for_the_guard_and_the_masked_api():
    person = {
        "name": "John Smith",
        "phone": "+852 9876 5432",
        "id_number": "E12345678",
        "unit": "3-2-701",
        "note": "passport E12345678, tel +852 9876 5432",
    }
    for allowed in (GUARD_CLEAR_FIELDS, ()):
        assert note_of({"person": person}, allowed) == "passport *******78, tel +*******5432"
    assert note_of({"person": person}, {"person.note"}) == person["note"]
    assert note_of({"person": person}, {"person.phone", "person.id_number"}) == person["note"]


def test_a_short_number_is_found_whole_a_long_one_inside_a_longer_run_too():
    """A number of 6 letters and digits or more is the person's wherever it is: typed with
    its country code joined on (``+85298765432`` for ``98765432``) or a character more. A
    shorter one only as a whole (``512`` is no room ``12``)."""
    event = {"person": {"phone": "98765432", "id_number": "E1234567", "note": "+85298765432"}}
    assert note_of(event) == "+852****5432"
    event["person"]["note"] = "passport E12345678"
    assert note_of(event) == "passport ******678"
    event = {"person": {"phone": "12345", "id_number": "A1", "note": "512345, A12; 12345, a1"}}
    assert note_of(event) == "512345, A12; *2345, *1"


@pytest.mark.parametrize(
    ("stored", "local"),
    [
        ("852-9876-5432", "98765432"),
        ("85298765432", "98765432"),
        ("86 138-1234-5678", "13812345678"),
    ],
)
def test_a_phone_stored_with_its_country_code_but_no_plus_is_found_without_it(stored, local):
    """``852-9876-5432`` (the country code, no ``+`` nor ``00``) was searched for only as it
    is: ``tel 9876 5432`` in the note stayed in clear."""
    spaced = f"{local[:-4]} {local[-4:]}"
    event = {"person": {"phone": stored, "note": f"tel {spaced}, again {local}"}}
    out = note_of(event)
    assert local not in bare(out) and spaced not in out
    assert out.startswith("tel ") and local[-4:] in out


def test_a_returnees_own_foreign_phone_in_the_note_is_masked_for_the_guard():
    record = {
        "name": "John Smith",
        "phone": "+852 9876 5432",
        "note": "call 852-98765432 or 9876 5432",
    }
    guard = mask_record(record, "guard")
    assert guard["note"] == "call *******5432 or *******5432"
    assert mask_record(record, "admin")["note"] == record["note"]
    assert mask_record(record, "office")["note"] == "*"
