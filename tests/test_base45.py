from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk import base45
from kiosk.base45 import ALPHABET, Base45Error


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        # The examples of RFC 9285 section 4.
        (b"AB", "BB8"),
        (b"Hello!!", "%69 VD92EX0"),
        (b"base-45", "UJCLQE7W581"),
        (b"ietf!", "QED8WEX0"),
        (b"", ""),
    ],
)
def test_rfc_9285_examples_round_trip(raw, text):
    assert base45.encode(raw) == text
    assert base45.decode(text) == raw


@given(st.binary(max_size=200))
def test_any_bytes_round_trip_and_stay_in_the_qr_alphanumeric_set(data):
    text = base45.encode(data)
    assert set(text) <= set(ALPHABET)
    assert len(text) == base45.encoded_length(len(data))
    assert base45.decode(text) == data


@given(st.binary(min_size=1, max_size=120))
def test_encoded_text_never_ends_in_whitespace_a_reader_could_strip(data):
    assert not base45.encode(data).endswith(" ")


@given(st.text(max_size=60))
def test_decoding_any_text_either_is_canonical_or_raises_base45_error(text):
    try:
        data = base45.decode(text)
    except Base45Error:
        return
    assert base45.encode(data) == text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("GGW", "overflows"),  # 16 + 16*45 + 32*2025 = 65536
        (":::", "overflows"),
        ("::", "overflows"),
        ("A", "single character"),
        ("BB8A", "single character"),
        ("bb8", "not in the Base45 alphabet"),
        ("BB\n", "not in the Base45 alphabet"),
    ],
)
def test_non_canonical_or_foreign_text_is_rejected(text, why):
    with pytest.raises(Base45Error, match=why):
        base45.decode(text)


def test_largest_values_still_decode():
    assert base45.decode(base45.encode(b"\xff\xff\xff")) == b"\xff\xff\xff"
    assert base45.encode(b"\xff\xff") == "FGW"
