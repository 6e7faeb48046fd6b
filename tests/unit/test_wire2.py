"""Wire v2's codec, pure: fixed data keys, no KMS.

Every byte of a record, each bit flipped, gives exactly the Keyfan error its region calls for (never a foreign
exception); every bound field changed gives ``bad_tag``; a record re-labelled with another data key's reference
gives ``bad_commitment``; a value cut inside its layout gives ``bad_envelope``. The same records through real KMS
(moto) are in tests/functional/test_crypto_datakeys.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import struct

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keyfan.crypto import wire2
from keyfan.crypto.wire2 import Binding, DataKey
from keyfan.exceptions import CorruptMessage, TamperedMessage

SALES_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
FINANCE_ARN = "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321"
SALES_PLAINTEXT_KEY = bytes(range(32))
FINANCE_PLAINTEXT_KEY = bytes(range(100, 132))
# Stand-ins for KMS CiphertextBlobs (184 bytes, as KMS returns for a 256-bit data key with a short context).
SALES_WRAPPED = random.Random(1).randbytes(184)
FINANCE_WRAPPED = random.Random(2).randbytes(184)
BINDING = Binding(
    topic="keyfan.events",
    department="sales",
    event_type="order.created",
    schema_version=1,
    event_id="0b6e3c1e-4f7a-4a43-9a52-2f1d9c7e4b10",
)
BODY = (
    b'{"event_id":"0b6e3c1e-4f7a-4a43-9a52-2f1d9c7e4b10","data":{"amount":"12.34","note":"'
    + b"x" * 40
    + b'"}}'
)


@pytest.fixture(scope="module")
def sales_key() -> DataKey:
    return DataKey(SALES_PLAINTEXT_KEY, key_arn=SALES_ARN, wrapped_key=SALES_WRAPPED)


@pytest.fixture(scope="module")
def finance_key() -> DataKey:
    return DataKey(FINANCE_PLAINTEXT_KEY, key_arn=FINANCE_ARN, wrapped_key=FINANCE_WRAPPED)


def _open(key: DataKey, value: bytes, binding: Binding = BINDING) -> bytes:
    return wire2.open_envelope(key, wire2.parse(value), binding)


def _error(key: DataKey, value: bytes, binding: Binding = BINDING) -> tuple[str, str]:
    """The Keyfan error opening ``value`` gives, as (type, reason); anything else fails the test."""
    try:
        _open(key, value, binding)
    except CorruptMessage as exc:  # TamperedMessage is one
        return type(exc).__name__, exc.reason
    raise AssertionError("the value still opens")


# ------------------------------------------------------------------------------------------- round trip
def test_round_trip(sales_key: DataKey) -> None:
    value = wire2.seal(sales_key, BINDING, BODY)

    assert _open(sales_key, value) == BODY
    envelope = wire2.parse(value)
    assert (envelope.key_arn, envelope.wrapped_key) == (SALES_ARN, SALES_WRAPPED)
    assert envelope.commitment == sales_key.commitment


def test_empty_and_unicode_plaintexts_and_fields_round_trip(sales_key: DataKey) -> None:
    binding = dataclasses.replace(BINDING, department="ventes-été", event_type="commande.créée")
    for plaintext in (b"", "€ and ✓".encode()):
        assert _open(sales_key, wire2.seal(sales_key, binding, plaintext), binding) == plaintext


def test_every_record_has_its_own_nonce(sales_key: DataKey) -> None:
    nonces = {wire2.parse(wire2.seal(sales_key, BINDING, BODY)).nonce for _ in range(1000)}
    assert len(nonces) == 1000


def test_the_documented_layout_byte_for_byte(sales_key: DataKey) -> None:
    """Built from docs/architecture.md alone (cryptography's primitives, struct): what another language does."""

    def hkdf(info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA512(), length=32, salt=b"keyfan/wire-v2", info=info).derive(
            SALES_PLAINTEXT_KEY
        )

    def field(text: str) -> bytes:
        return struct.pack(">I", len(text.encode())) + text.encode()

    nonce = bytes(range(12))
    commitment = hkdf(b"keyfan/wire-v2/kind-1/commitment")
    aad = (
        b"\x02\x01"
        + b"".join(field(f) for f in ("keyfan.events", "sales", "order.created", "1", BINDING.event_id))
        + field(SALES_ARN)
        + hashlib.sha256(SALES_WRAPPED).digest()
    )
    expected = (
        b"\x02\x01"
        + struct.pack(">H", len(SALES_ARN))
        + SALES_ARN.encode()
        + struct.pack(">H", len(SALES_WRAPPED))
        + SALES_WRAPPED
        + commitment
        + nonce
        + AESGCM(hkdf(b"keyfan/wire-v2/kind-1/aes-256-gcm-key")).encrypt(nonce, BODY, aad)
    )

    assert wire2._seal(sales_key, BINDING, BODY, nonce) == expected
    assert wire2.aad(BINDING, key_arn=SALES_ARN, wrapped_key=SALES_WRAPPED) == aad
    assert len(expected) == 2 + 2 + len(SALES_ARN) + 2 + 184 + 32 + 12 + len(BODY) + 16


# ------------------------------------------------------------------------------------ bit flips, every byte
def _regions(value: bytes) -> list[tuple[str, int, int]]:
    arn_length = int.from_bytes(value[2:4], "big")
    at = 4 + arn_length
    wrapped_length = int.from_bytes(value[at : at + 2], "big")
    commitment = at + 2 + wrapped_length
    return [
        ("version", 0, 1),
        ("kind", 1, 2),
        ("arn_length", 2, 4),
        ("arn", 4, at),
        ("wrapped_length", at, at + 2),
        ("wrapped_key", at + 2, commitment),
        ("commitment", commitment, commitment + 32),
        ("nonce", commitment + 32, commitment + 44),
        ("ciphertext", commitment + 44, len(value) - 16),
        ("tag", len(value) - 16, len(value)),
    ]


def _expected(region: str, flipped: bytes) -> tuple[str, str]:
    """What opening with the record's own data key must give (as if KMS had unwrapped the right key)."""
    if region in ("version", "kind", "arn_length"):
        # an unknown version or kind; an ARN length that makes the ARN swallow the binary length after it, or
        # cuts it short so the wrapped-key length is read from ARN text (>= 0x2d00, over KMS's 6144)
        return ("CorruptMessage", "bad_envelope")
    if region == "arn":
        arn = flipped[4 : 4 + len(SALES_ARN)]
        try:
            well_formed = wire2.KMS_KEY_ARN.fullmatch(arn.decode("utf-8")) is not None
        except UnicodeDecodeError:
            well_formed = False
        # a well-formed other ARN parses, and the AAD (which binds the ARN) refuses it
        return ("TamperedMessage", "bad_tag") if well_formed else ("CorruptMessage", "bad_envelope")
    if region == "wrapped_length":
        at = 4 + len(SALES_ARN)
        length = int.from_bytes(flipped[at : at + 2], "big")
        fits = 0 < length <= 6144 and len(flipped) - (at + 2 + length) >= 32 + 12 + 16
        # a length that still fits shifts every later part: the commitment is read from other bytes
        return ("TamperedMessage", "bad_commitment") if fits else ("CorruptMessage", "bad_envelope")
    if region == "wrapped_key":
        # the commitment names the data key, not its blob; the AAD binds the blob's digest
        return ("TamperedMessage", "bad_tag")
    if region == "commitment":
        return ("TamperedMessage", "bad_commitment")
    return ("TamperedMessage", "bad_tag")  # nonce, ciphertext, tag


def _flip(value: bytes, index: int, bit: int) -> bytes:
    flipped = bytearray(value)
    flipped[index] ^= 1 << bit
    return bytes(flipped)


def test_every_bit_of_every_byte_flipped_gives_its_regions_error(sales_key: DataKey) -> None:
    value = wire2.seal(sales_key, BINDING, BODY)
    seen: dict[str, set[tuple[str, str]]] = {}
    for region, start, end in _regions(value):
        assert end > start, region
        for index in range(start, end):
            for bit in range(8):
                flipped = _flip(value, index, bit)
                expected = _expected(region, flipped)
                assert _error(sales_key, flipped) == expected, (region, index, bit)
                seen.setdefault(region, set()).add(expected)
    # both outcomes of the data-dependent regions were exercised
    assert seen["arn"] == {("TamperedMessage", "bad_tag"), ("CorruptMessage", "bad_envelope")}
    assert seen["wrapped_length"] == {
        ("TamperedMessage", "bad_commitment"),
        ("CorruptMessage", "bad_envelope"),
    }


@pytest.mark.parametrize("region", ["nonce", "ciphertext", "tag"])
def test_a_failed_tag_is_raised_from_invalid_tag(sales_key: DataKey, region: str) -> None:
    value = wire2.seal(sales_key, BINDING, BODY)
    start = dict((name, first) for name, first, _ in _regions(value))[region]

    with pytest.raises(TamperedMessage) as tampered:
        _open(sales_key, _flip(value, start, 3))

    assert tampered.value.reason == "bad_tag"
    assert isinstance(tampered.value.__cause__, InvalidTag)


def test_a_non_utf8_arn_is_bad_envelope_raised_from_the_decode_error(sales_key: DataKey) -> None:
    value = wire2.seal(sales_key, BINDING, BODY)

    with pytest.raises(CorruptMessage) as corrupt:
        wire2.parse(_flip(value, 10, 7))

    assert corrupt.value.reason == "bad_envelope"
    assert isinstance(corrupt.value.__cause__, UnicodeDecodeError)


# ---------------------------------------------------------------------------------------------- AAD swaps
@pytest.mark.parametrize(
    "change",
    [
        {"event_id": "5d1f7c0a-0000-4000-8000-000000000000"},
        {"topic": "keyfan.events.replay"},
        {"department": "finance"},
        {"event_type": "order.refunded"},
        {"schema_version": 2},
    ],
    ids=lambda change: next(iter(change)),
)
def test_a_record_read_under_other_metadata_is_bad_tag(sales_key: DataKey, change: dict[str, object]) -> None:
    value = wire2.seal(sales_key, BINDING, BODY)

    assert _error(sales_key, value, dataclasses.replace(BINDING, **change)) == ("TamperedMessage", "bad_tag")  # type: ignore[arg-type]


def test_fields_cannot_run_into_each_other(sales_key: DataKey) -> None:
    # Given two bindings whose fields concatenate to the same text
    a = dataclasses.replace(BINDING, department="sales", event_type="order.created")
    b = dataclasses.replace(BINDING, department="salesorder", event_type=".created")
    # Then their AADs differ (each field is length-prefixed), and a record for one does not open as the other
    assert wire2.aad(a, key_arn=SALES_ARN, wrapped_key=SALES_WRAPPED) != wire2.aad(
        b, key_arn=SALES_ARN, wrapped_key=SALES_WRAPPED
    )
    assert _error(sales_key, wire2.seal(sales_key, a, BODY), b) == ("TamperedMessage", "bad_tag")


# --------------------------------------------------------------------------------- re-labelled key references
def _relabel(value: bytes, arn: str, wrapped: bytes, commitment: bytes | None = None) -> bytes:
    envelope = wire2.parse(value)
    return dataclasses.replace(
        envelope, key_arn=arn, wrapped_key=wrapped, commitment=commitment or envelope.commitment
    ).to_bytes()


def test_a_record_relabelled_with_another_data_keys_reference_is_bad_commitment(
    sales_key: DataKey, finance_key: DataKey
) -> None:
    # Given a sales record whose key reference now names finance's data key. The KMS step then unwraps
    # finance's key (for an identity allowed both; any other is denied there, see the functional tests).
    value = _relabel(wire2.seal(sales_key, BINDING, BODY), FINANCE_ARN, FINANCE_WRAPPED)
    finance = dataclasses.replace(BINDING, department="finance")

    for binding in (BINDING, finance):
        assert _error(finance_key, value, binding) == ("TamperedMessage", "bad_commitment")


def test_a_copied_commitment_does_not_help(sales_key: DataKey, finance_key: DataKey) -> None:
    # the commitment is finance's, the ciphertext sales's: the commitment passes, the AES key is wrong
    value = _relabel(
        wire2.seal(sales_key, BINDING, BODY), FINANCE_ARN, FINANCE_WRAPPED, finance_key.commitment
    )
    assert _error(finance_key, value) == ("TamperedMessage", "bad_tag")


def test_a_record_opened_with_the_wrong_data_key_is_bad_commitment(
    sales_key: DataKey, finance_key: DataKey
) -> None:
    assert _error(finance_key, wire2.seal(sales_key, BINDING, BODY)) == ("TamperedMessage", "bad_commitment")


def test_a_second_blob_wrapping_the_same_data_key_is_refused_by_the_aad(sales_key: DataKey) -> None:
    # Someone holding the plaintext data key wraps it again (kms:Encrypt): same key, same commitment, but the
    # record names another blob, whose digest the AAD binds
    other_blob = random.Random(3).randbytes(184)
    rewrapped = DataKey(SALES_PLAINTEXT_KEY, key_arn=SALES_ARN, wrapped_key=other_blob)
    value = _relabel(wire2.seal(sales_key, BINDING, BODY), SALES_ARN, other_blob)

    assert rewrapped.commitment == sales_key.commitment
    assert _error(rewrapped, value) == ("TamperedMessage", "bad_tag")


# ------------------------------------------------------------------------------------- truncated and empty
def test_empty_and_truncated_values(sales_key: DataKey) -> None:
    value = wire2.seal(sales_key, BINDING, BODY)
    ciphertext_at = len(value) - len(BODY) - 16

    assert _error(sales_key, b"") == ("CorruptMessage", "bad_envelope")
    for cut in range(len(value)):
        # Cut before the smallest tag: the layout says so. Cut inside the ciphertext: the layout cannot (the
        # ciphertext's length is implied), the tag does.
        expected = "bad_envelope" if cut < ciphertext_at + 16 else "bad_tag"
        assert _error(sales_key, value[:cut])[1] == expected, cut
    assert _error(sales_key, value + b"\x00") == ("TamperedMessage", "bad_tag")


@pytest.mark.parametrize(
    "value",
    [
        b"\x02",
        b"\x02\x01",
        b"\x01" + bytes(400),
        b"\x02\x02" + bytes(400),
        b"\x02\x01" + bytes(400),
        bytes(range(256)),
    ],
    ids=repr,
)
def test_short_or_foreign_bytes_are_bad_envelope(value: bytes) -> None:
    with pytest.raises(CorruptMessage) as corrupt:
        wire2.parse(value)
    assert type(corrupt.value) is CorruptMessage
    assert corrupt.value.reason == "bad_envelope"


# ------------------------------------------------------------------------------------------- data keys
def test_a_data_key_shows_no_secret(sales_key: DataKey) -> None:
    shown = repr(sales_key) + str(sales_key)
    assert SALES_ARN in shown
    encryption_key = HKDF(
        algorithm=hashes.SHA512(), length=32, salt=wire2.HKDF_SALT, info=wire2.INFO_ENCRYPTION_KEY
    ).derive(SALES_PLAINTEXT_KEY)
    for secret in (SALES_PLAINTEXT_KEY, encryption_key, sales_key.commitment):
        assert secret.hex() not in shown and repr(secret) not in shown


@pytest.mark.parametrize(
    ("plaintext_key", "arn", "wrapped"),
    [
        (bytes(16), SALES_ARN, SALES_WRAPPED),
        (bytes(32), "alias/keyfan-sales", SALES_WRAPPED),
        (bytes(32), SALES_ARN, b""),
        (bytes(32), SALES_ARN, bytes(6145)),
    ],
    ids=["aes-128", "alias", "empty-blob", "blob-over-kms-limit"],
)
def test_a_data_key_that_does_not_fit_the_layout_is_refused(
    plaintext_key: bytes, arn: str, wrapped: bytes
) -> None:
    with pytest.raises(ValueError):
        DataKey(plaintext_key, key_arn=arn, wrapped_key=wrapped)
