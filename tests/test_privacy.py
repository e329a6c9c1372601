"""Masking of personal data: what the API, the CSV export and the guard screen show."""

from __future__ import annotations

import json
import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.privacy import (
    FIELD_NAMES,
    mask_event,
    mask_id_number,
    mask_name,
    mask_phone,
    normalise_fields,
    scrub_text,
)
from kiosk.spelling import same_text_spans

PHONE_RE = re.compile(r"\b1[3-9]\d{9}\b")
ID_RE = re.compile(r"\b\d{17}[\dXx]\b")

EVENT = {
    "seq": 7,
    "kiosk_id": "gate-1",
    "decision": "pass",
    "pass_id": "P-2026-000123",
    "household": "B3-1201",
    "holder": "Zhang Wei",
    "person": {
        "name": "李小龙",
        "phone": "13800138000",
        "id_number": "11010519491231002X",
        "unit": "B3-1201",
        "plate": "京A12345",
        "occupants": 2,
        "note": "call 13912345678 or ID 110105194912310021 at the gate",
    },
    "hash": "ab" * 32,
}


def test_phone_keeps_prefix_and_last_four():
    assert mask_phone("13800138000") == "138****8000"
    assert mask_phone("+86 138-0013-8000") == "138****8000"


def test_resident_id_keeps_three_and_two():
    assert mask_id_number("11010519491231002X") == "110*************2X"
    assert mask_id_number("110105491231002") == "110**********02"


def test_other_id_documents_keep_last_two_only():
    assert mask_id_number("E12345678") == "*******78"


def test_names_become_initials():
    assert mask_name("Zhang Wei") == "Z."
    assert mask_name("张伟") == "张*"
    assert mask_name("  ") == ""


def test_free_text_numbers_are_masked_but_hashes_are_not():
    text = "tel 13800138000, id 11010519491231002X, hash 13800138000ab"
    out = scrub_text(text)
    assert "13800138000," not in out and "138****8000" in out
    assert "110*************2X" in out
    assert out.endswith("13800138000ab")


def test_mask_event_masks_every_personal_field_by_default():
    out = mask_event(EVENT)
    assert out["pass_id"] == "***********23"
    assert out["household"] == "*****01"
    assert out["holder"] == "Z."
    assert out["person"]["name"] == "李*"
    assert out["person"]["occupants"] == 2
    text = json.dumps(out, ensure_ascii=False)
    assert not PHONE_RE.search(text)
    assert not ID_RE.search(text)
    assert out["hash"] == EVENT["hash"] and out["seq"] == 7


def test_mask_event_leaves_allowed_fields_clear_and_input_untouched():
    before = json.dumps(EVENT, ensure_ascii=False)
    out = mask_event(EVENT, {"holder", "person.phone"})
    assert out["holder"] == "Zhang Wei"
    assert out["person"]["phone"] == "13800138000"
    assert out["person"]["id_number"] == "110*************2X"
    assert json.dumps(EVENT, ensure_ascii=False) == before


def test_person_stored_as_json_text_is_decoded_before_masking():
    event = dict(EVENT, person=json.dumps(EVENT["person"], ensure_ascii=False))
    out = mask_event(event)
    assert out["person"]["name"] == "李*"
    assert out["person"]["phone"] == "138****8000"


def test_whole_person_allowed_keeps_it_clear():
    assert mask_event(EVENT, {"person"})["person"] == EVENT["person"]


def test_unknown_field_names_are_refused():
    assert normalise_fields(["holder", " person.phone", ""]) == {"holder", "person.phone"}
    with pytest.raises(ValueError, match="unknown field 'password'"):
        normalise_fields(["password"])
    assert "person.id_number" in FIELD_NAMES


@settings(max_examples=40, deadline=None)
@given(st.from_regex(r"1[3-9]\d{9}", fullmatch=True), st.sampled_from([" ", ", ", ":", "/"]))
def test_no_phone_survives_scrubbing(phone, sep):
    out = scrub_text(f"call{sep}{phone}{sep}now")
    assert phone not in out
    assert not PHONE_RE.search(out)


@settings(max_examples=40, deadline=None)
@given(st.from_regex(r"\d{17}[\dX]", fullmatch=True))
def test_no_resident_id_survives_masking(idn):
    masked = mask_id_number(idn)
    assert not ID_RE.search(masked)
    assert masked[:3] == idn[:3] and masked[-2:] == idn[-2:]


def test_a_note_hides_a_name_typed_as_the_gate_compares_names():
    """A guard's input method typed the holder ``欧阳娜娜`` with a space and the passenger
    ``Wang Fang`` in full width: the note kept both in clear for a caller without notes."""
    event = {
        "holder": "欧阳娜娜",
        "person": {
            "passengers": [{"name": "Wang Fang", "temp_c": 36.5}],
            "note": "欧阳 娜娜 忘带卡，乘客Ｗａｎｇ　 Ｆａｎｇ同行。wangfang 另一人",
        },
    }
    note = mask_event(event)["person"]["note"]
    assert note == "欧* 忘带卡，乘客W.同行。wangfang 另一人"


def test_a_note_masks_only_what_repeats_a_hidden_value():
    event = {
        "holder": "Ann Li",
        "person": {"note": "ＡＮＮ\u3000LI met Annli and Ann Lin; ann  li again", "phone": "x"},
    }
    note = mask_event(event)["person"]["note"]
    assert note == "A. met Annli and Ann Lin; A. again"


def test_a_note_masks_a_latin_name_or_a_code_only_as_a_whole_word():
    """A holder ``Li`` was masked inside ``Lily``, the unit ``12`` inside ``512`` and
    ``2012``, the household ``3-2-701`` inside ``3-2-7011``. A Latin letter or digit beside a
    name or code typed in them makes it another word; Han beside it does not (``乘客Li``), and
    a Han name has no word boundaries: ``王芳`` stays masked inside ``王芳芳``."""
    event = {
        "holder": "Li",
        "person": {"unit": "12", "note": "Lily and police deliver; Li, 乘客Li同行, li"},
    }
    assert mask_event(event)["person"]["note"] == "Lily and police deliver; L., 乘客L.同行, L."
    event = {"holder": "Li", "person": {"unit": "12", "note": "room 512, 2012, 123; unit 12."}}
    assert mask_event(event)["person"]["note"] == "room 512, 2012, 123; unit *2."
    event = {"household": "3-2-701", "person": {"note": "3-2-7011 13-2-701 (3-2-701)"}}
    note = mask_event(event)["person"]["note"]
    assert note.startswith("3-2-7011 13-2-701 (") and "3-2-701)" not in note
    event = {"holder": "王芳", "person": {"note": "王芳芳来过"}}
    assert "王芳" not in mask_event(event)["person"]["note"]


@pytest.mark.parametrize(
    ("text", "values", "spans"),
    [
        ("Wang Fang2次未刷卡", ["Wang Fang"], [(0, 9, "Wang Fang")]),
        ("乘客Li2人同行", ["Li"], [(2, 4, "Li")]),
        ("Li1号门出", ["Li"], [(0, 2, "Li")]),
        ("12号楼Ann Li3次", ["Ann Li", "12"], [(0, 2, "12"), (4, 10, "Ann Li")]),
        ("Lily 2Li", ["Li"], [(6, 8, "Li")]),
        ("512 12", ["12"], [(4, 6, "12")]),
    ],
)
def test_a_name_touching_a_count_is_still_found(text, values, spans):
    """A guard writes a count right after a name (``Wang Fang2次未刷卡``, ``乘客Li2人同行``):
    a letter and a digit were one word, so the name stayed in clear. A letter beside a key
    ending (beginning) in a letter makes it another word, a digit beside one ending in a
    digit another number: ``Li`` is still not in ``Lily``, nor the unit ``12`` in ``512``."""
    assert same_text_spans(text, values) == spans


def test_a_note_masks_a_name_typed_with_combining_marks_or_conjoining_jamo():
    """A keyboard that types ``José`` as ``e`` and a combining acute (NFD), or the Hangul
    ``김민`` as its conjoining jamo, repeats the holder: the note must not keep it in clear."""
    event = {"holder": "José", "person": {"note": "Jose\u0301 came; José too"}}
    assert mask_event(event)["person"]["note"] == "J. came; J. too"
    jamo = "\u1100\u1175\u11b7\u1106\u1175\u11ab"  # 김민, decomposed
    assert unicodedata.normalize("NFC", jamo) == "김민"
    event = {"holder": "김민", "person": {"note": f"{jamo} 왔다, 김민"}}
    masked = mask_event({**event, "person": {"note": "김민 왔다, 김민"}})["person"]["note"]
    assert "김민" not in masked
    assert mask_event(event)["person"]["note"] == masked


def test_a_long_note_is_searched_whole():
    """A note of long runs of spaces and of many repeats (each run's next character was found
    by copying the rest of the note, each repeat compared with every span found before it)."""
    assert same_text_spans("a " * 8000 + "Ann  Li", ["Ann Li"]) == [(16000, 16007, "Ann Li")]
    spans = same_text_spans("Ann Li, Li " * 2000, ["Li", "Ann Li"])
    assert spans[:3] == [(0, 6, "Ann Li"), (8, 10, "Li"), (11, 17, "Ann Li")]
    assert len(spans) == 4000 and spans[-1] == (21997, 21999, "Li")
