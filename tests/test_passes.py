from __future__ import annotations

import dataclasses
import re
import stat
import struct
from datetime import UTC, datetime, timedelta

import pytest
import segno
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk import base45
from kiosk.passes import (
    MAX_TEXT_BYTES,
    MAX_VALID_HOURS,
    PREFIX,
    KeyFileError,
    Pass,
    PassError,
    TrustList,
    TrustListError,
    encode_pass,
    issue_pass,
    key_id_of,
    load_private_key,
    new_key_pair,
)

NOW = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
ISSUER = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_ISSUER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
TRUST = TrustList([("office", ISSUER.public_key()), ("office-2025", OTHER_ISSUER.public_key())])
PAYLOAD, PASS = issue_pass(ISSUER, "12-3-0502", "王小明", "resident", 30, now=NOW)


def _sign_raw(key: Ed25519PrivateKey, body: bytes) -> str:
    return PREFIX + base45.encode(body + key.sign(PREFIX.encode() + body))


def _body(key_id: bytes, role_flags: int = 0, hours: int = 24, texts: bytes = b"\x01Ab") -> bytes:
    return struct.pack(">2s6sIHB", key_id, b"\x01" * 6, 1_770_000_000, hours, role_flags) + texts


def test_issued_pass_verifies_with_every_field_intact():
    got = TRUST.verify(PAYLOAD)
    assert got == PASS
    assert got.household == "12-3-0502" and got.holder == "王小明" and got.role == "resident"
    assert got.valid_from == NOW and got.valid_until == NOW + timedelta(days=30)
    assert got.key_id == key_id_of(ISSUER.public_key()) and len(got.pass_id) == 12


def test_flags_and_roles_survive_the_round_trip():
    payload, issued = issue_pass(
        ISSUER, "7-1", "L", "delivery", 0.5, now=NOW, flags=["escort", "gate_issued"]
    )
    got = TRUST.verify(payload)
    assert got.role == "delivery"
    assert got.flags == ("gate_issued", "escort") == issued.flags
    assert got.valid_until - got.valid_from == timedelta(hours=12)


def test_largest_pass_fits_qr_version_8_at_error_correction_q():
    payload, _ = issue_pass(ISSUER, "A" * 10, "王" * 4, "visitor", 2730, now=NOW)
    assert len("A" * 10) + len("王" * 4 * 3) == MAX_TEXT_BYTES
    qr = segno.make(payload, error="q", version=8, boost_error=False)
    assert qr.designator == "8-Q" and qr.mode == "alphanumeric"
    assert TRUST.verify(payload).holder == "王王王王"


def test_texts_too_long_for_the_qr_are_refused_with_a_clear_reason():
    with pytest.raises(ValueError, match="room for 22"):
        issue_pass(ISSUER, "A" * 11, "王" * 4, "resident", 1, now=NOW)


@pytest.mark.parametrize(
    ("household", "holder", "role", "days", "message"),
    [
        ("", "Li", "resident", 1, "household must not be empty"),
        # spaces around are trimmed (kiosk.typed; tests/test_typed_codes.py): only spaces is empty
        (" \u3000 ", "Li", "resident", 1, "household must not be empty"),
        ("1-1", "Li\nWang", "resident", 1, "printable text on one line"),
        ("1-1", "Li", "landlord", 1, "role must be one of"),
        ("1-1", "Li", "resident", 0, "days must give"),
        ("1-1", "Li", "resident", 3000, "days must give"),
    ],
)
def test_bad_issue_input_is_refused(household, holder, role, days, message):
    with pytest.raises(ValueError, match=message):
        issue_pass(ISSUER, household, holder, role, days, now=NOW)


@pytest.mark.parametrize("hours", [1, MAX_VALID_HOURS])
def test_a_pass_of_one_hour_and_of_the_most_hours_is_issued_and_verifies(hours):
    text, issued = issue_pass(ISSUER, "1-1", "Li", "resident", hours / 24, now=NOW)
    assert issued.valid_until - issued.valid_from == timedelta(hours=hours)
    assert TRUST.verify(text).valid_until == issued.valid_until
    again = dataclasses.replace(PASS, valid_until=PASS.valid_from + timedelta(hours=hours))
    assert TRUST.verify(encode_pass(ISSUER, again)).valid_until == again.valid_until


@pytest.mark.parametrize("hours", [0, MAX_VALID_HOURS + 1])
def test_a_pass_of_no_hours_or_more_than_the_most_is_refused(hours):
    with pytest.raises(ValueError, match=f"days must give 1 to {MAX_VALID_HOURS} hours"):
        issue_pass(ISSUER, "1-1", "Li", "resident", hours / 24, now=NOW)
    wrong = dataclasses.replace(PASS, valid_until=PASS.valid_from + timedelta(hours=hours))
    with pytest.raises(ValueError, match=f"validity must be 1 to {MAX_VALID_HOURS} hours"):
        encode_pass(ISSUER, wrong)


def test_issue_needs_an_aware_now_from_the_clock():
    with pytest.raises(ValueError, match="now"):
        issue_pass(ISSUER, "1-1", "Li", "resident", 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        issue_pass(ISSUER, "1-1", "Li", "resident", 1, now=datetime(2026, 1, 1))


def test_pass_from_a_key_not_on_the_trust_list_is_unknown_key():
    stranger = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
    assert key_id_of(stranger.public_key()) not in {PASS.key_id, TRUST.verify(PAYLOAD).key_id}
    payload, _ = issue_pass(stranger, "1-1", "Li", "resident", 1, now=NOW)
    with pytest.raises(PassError) as info:
        TRUST.verify(payload)
    assert info.value.reason == "pass_unknown_key"


def test_trusted_key_id_with_a_forged_signature_is_bad_signature():
    record = base45.decode(PAYLOAD[len(PREFIX) :])
    forged = PREFIX + base45.encode(record[:-64] + bytes(64))
    with pytest.raises(PassError) as info:
        TRUST.verify(forged)
    assert info.value.reason == "pass_bad_signature"


def test_changed_household_with_the_original_signature_is_bad_signature():
    record = bytearray(base45.decode(PAYLOAD[len(PREFIX) :]))
    record[16] = ord("9")  # first household byte
    with pytest.raises(PassError) as info:
        TRUST.verify(PREFIX + base45.encode(bytes(record)))
    assert info.value.reason == "pass_bad_signature"


def test_rotated_keys_both_verify_while_both_are_trusted():
    old_payload, _ = issue_pass(OTHER_ISSUER, "1-1", "Li", "staff", 1, now=NOW)
    assert TRUST.verify(old_payload).role == "staff"
    only_new = TrustList([("office", ISSUER.public_key())])
    with pytest.raises(PassError) as info:
        only_new.verify(old_payload)
    assert info.value.reason == "pass_unknown_key"


@pytest.mark.parametrize(
    ("role_flags", "hours", "texts", "why"),
    [
        (0b1000_0000, 24, b"\x01Ab", "reserved flag bits"),
        (0, 0, b"\x01Ab", "empty validity window"),
        (0, 24, b"\x01A\xff", "bad text field"),
        (0, 24, b"\x01A\n", "bad text field"),
        (0, 24, b"\x02Ab", "household length"),
        (0, 24, b"\x00Ab", "household length"),
    ],
)
def test_badly_formed_record_is_malformed_even_when_signed_by_a_trusted_key(
    role_flags, hours, texts, why
):
    key_id = bytes.fromhex(key_id_of(ISSUER.public_key()))
    with pytest.raises(PassError) as info:
        TRUST.verify(_sign_raw(ISSUER, _body(key_id, role_flags, hours, texts)))
    assert info.value.reason == "pass_malformed"
    assert why in info.value.detail


@pytest.mark.parametrize(
    "text",
    ["", "KP1:", "KP1:bb8", "kp1:" + PAYLOAD[4:], "https://example.com/", PAYLOAD + "0", None, 42],
)
def test_garbage_is_malformed(text):
    with pytest.raises(PassError) as info:
        TRUST.verify(text)
    assert info.value.reason == "pass_malformed"


def test_payload_given_as_ascii_bytes_verifies():
    assert TRUST.verify(PAYLOAD.encode()) == PASS


@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_decoder(data):
    with pytest.raises(PassError) as info:
        TRUST.verify(data)
    assert info.value.reason == "pass_malformed"


@given(st.text(alphabet=base45.ALPHABET, max_size=160))
def test_random_base45_after_the_prefix_never_verifies(tail):
    with pytest.raises(PassError) as info:
        TRUST.verify(PREFIX + tail)
    assert info.value.reason in {"pass_malformed", "pass_unknown_key", "pass_bad_signature"}


_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P")), min_size=1, max_size=2
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.binary(min_size=32, max_size=32),
    household=_TEXT,
    holder=_TEXT,
    role=st.sampled_from(["resident", "staff", "delivery", "visitor"]),
)
def test_no_payload_signed_by_an_untrusted_key_ever_verifies(seed, household, holder, role):
    untrusted = Ed25519PrivateKey.from_private_bytes(seed)
    trusted_raw = {
        k.public_key().public_bytes_raw() for k in (ISSUER, OTHER_ISSUER)
    }  # the seed could in theory be one of ours
    if untrusted.public_key().public_bytes_raw() in trusted_raw:
        return
    payload, _ = issue_pass(untrusted, household, holder, role, 1, now=NOW)
    with pytest.raises(PassError) as info:
        TRUST.verify(payload)
    # A 2-byte key id can collide with a trusted one: then the signature must fail.
    assert info.value.reason in {"pass_unknown_key", "pass_bad_signature"}


_ANY_CHAR = st.one_of(st.sampled_from(base45.ALPHABET), st.characters())


@settings(max_examples=400)
@given(index=st.integers(0, len(PAYLOAD) - 1), char=_ANY_CHAR)
def test_changing_any_one_character_never_verifies(index, char):
    if PAYLOAD[index] == char:
        return
    changed = PAYLOAD[:index] + char + PAYLOAD[index + 1 :]
    with pytest.raises(PassError):
        TRUST.verify(changed)


@settings(max_examples=200)
@given(index=st.integers(0, len(PAYLOAD)), char=_ANY_CHAR)
def test_inserting_or_deleting_one_character_never_verifies(index, char):
    with pytest.raises(PassError):
        TRUST.verify(PAYLOAD[:index] + char + PAYLOAD[index:])
    if index < len(PAYLOAD):
        with pytest.raises(PassError):
            TRUST.verify(PAYLOAD[:index] + PAYLOAD[index + 1 :])


@pytest.mark.slow  # an exhaustive sweep: with the slow tests (CI runs them all)
def test_every_single_character_substitution_is_rejected_exhaustively():
    """The property test samples; this walks every alphabet character, and the look-alikes a
    lenient decoder might fold onto them (lower case, control and non-ASCII), everywhere."""
    candidates = base45.ALPHABET + base45.ALPHABET.lower() + "\n\t\x00é０"
    for index, original in enumerate(PAYLOAD):
        for char in dict.fromkeys(candidates):
            if char == original:
                continue
            with pytest.raises(PassError):
                TRUST.verify(PAYLOAD[:index] + char + PAYLOAD[index + 1 :])


def test_encode_refuses_a_pass_whose_key_id_is_not_the_signers():
    wrong = _replace(PASS, key_id="0000")
    with pytest.raises(ValueError, match="key_id"):
        encode_pass(ISSUER, wrong)


def _fields(p: Pass) -> dict:
    return {name: getattr(p, name) for name in Pass.__dataclass_fields__}


def _replace(p: Pass, **changes) -> Pass:
    return Pass(**{**_fields(p), **changes})


# ------------------------------------------------------------------ key files and trust dir


def test_new_key_pair_writes_a_private_key_only_the_owner_can_read(tmp_path):
    key_path, pub_path = new_key_pair(tmp_path / "keys", "office")
    assert key_path.name == "office.key" and pub_path.name == "office.pub"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = load_private_key(key_path)
    trust = TrustList.from_dir(tmp_path / "keys")
    assert trust.names == ("office",)
    payload, _ = issue_pass(key, "1-1", "Li", "resident", 1, now=NOW)
    assert trust.verify(payload).household == "1-1"


def test_new_key_pair_never_overwrites_an_existing_key(tmp_path):
    key_path, _ = new_key_pair(tmp_path, "office")
    before = key_path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        new_key_pair(tmp_path, "office")
    assert key_path.read_bytes() == before


def test_trust_dir_with_a_broken_pub_file_is_an_error_naming_it(tmp_path):
    new_key_pair(tmp_path, "office")
    (tmp_path / "old.pub").write_text("not a key")
    with pytest.raises(TrustListError, match="old.pub"):
        TrustList.from_dir(tmp_path)


def test_missing_trust_dir_is_an_error(tmp_path):
    with pytest.raises(TrustListError, match="does not exist"):
        TrustList.from_dir(tmp_path / "nope")


def test_a_trust_dir_that_names_a_file_says_so_not_that_it_does_not_exist(tmp_path):
    """`policy.trust_dir` (or `--trust`) set to the .pub itself, not its folder: the error
    said the path "does not exist" while the operator could see it did."""
    _, pub = new_key_pair(tmp_path, "office")
    with pytest.raises(TrustListError, match="is a file, not a folder") as refused:
        TrustList.from_dir(pub)
    assert "does not exist" not in str(refused.value)


def test_private_key_file_that_is_not_a_key_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.key"
    bad.write_text("hello")
    with pytest.raises(KeyFileError, match="not an unencrypted PEM private key"):
        load_private_key(bad)


@pytest.mark.parametrize(
    ("holder", "where"),
    [
        ("王\u200b小明", "character 2 is U+200B"),  # a zero-width space pasted from a chat
        ("张\ue000", "character 2 is U+E000"),  # a rare character an old system typed as PUA
    ],
)
def test_a_character_no_card_can_show_is_named_where_it_is(holder, where):
    """Before: a name that looks whole on one line (a zero-width space pasted from a chat
    message, a rare character an old household system exported as a private-use code) was
    refused as "holder must be printable text on one line", and the clerk could not see
    what was wrong with it. The refusal names the character and where it is, in the guard's
    language too."""
    from ui import core_words

    with pytest.raises(ValueError, match=re.escape(where)) as refused:
        issue_pass(ISSUER, "1-1", holder, "resident", 1, now=NOW)
    said = core_words.refusal_text("zh-CN", str(refused.value))
    assert "第 2 个字符" in said and where.split()[-1] in said


@pytest.mark.parametrize("household", [101, None, b"1-1"])
def test_a_field_that_is_not_text_is_refused_with_a_clear_error(household):
    """``check_fields`` (what ``encode_pass`` and the verifier check texts with) refuses a
    value that is not text as it refuses an empty one: a ``ValueError`` naming the field,
    never an ``AttributeError`` from deep inside."""
    from kiosk.passes import check_fields

    with pytest.raises(ValueError, match="household must not be empty"):
        check_fields(household, "Li")
    with pytest.raises(ValueError, match="household must not be empty"):
        encode_pass(ISSUER, dataclasses.replace(PASS, household=household))


def test_the_trust_list_names_and_trusts_only_its_own_keys():
    """``trusts`` (the guard console's check of its own issuing key) and ``named`` (a
    compound peer's pinned key): each key by its own name, no other."""
    stranger = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32).public_key()
    raw = [k.public_bytes_raw() for k in (ISSUER.public_key(), OTHER_ISSUER.public_key())]
    assert TRUST.trusts(ISSUER.public_key()) and TRUST.trusts(OTHER_ISSUER.public_key())
    assert not TRUST.trusts(stranger)
    office, older = TRUST.named("office"), TRUST.named("office-2025")
    assert office is not None and older is not None
    assert [office.public_bytes_raw(), older.public_bytes_raw()] == raw
    assert TRUST.named("office-2024") is None


def test_a_trust_folder_gone_is_logged_once_not_at_every_check(tmp_path, caplog):
    """The folder removed under a running kiosk: the keys in force stay, ``problem`` says
    why, and the error is logged once, not at each of the many passes checked after."""
    folder = tmp_path / "trust"
    folder.mkdir()
    (folder / "office.pub").write_bytes(
        ISSUER.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    trust = TrustList.from_dir(folder)
    (folder / "office.pub").unlink()
    folder.rmdir()
    with caplog.at_level("ERROR", logger="kiosk.passes"):
        for _ in range(3):
            assert trust.verify(PAYLOAD).holder == "王小明"
    assert "does not exist" in (trust.problem or "")
    assert len([r for r in caplog.records if "trust list not re-read" in r.message]) == 1
