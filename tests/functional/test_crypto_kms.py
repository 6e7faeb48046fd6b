"""The Encryption SDK adapter against moto's KMS (in-process), with IAM authorization switched on.

Proves the three-way translation that the consumer relies on: a denial is ``AccessDenied``, an unreachable
KMS is ``KeyServiceUnavailable``, bad bytes are ``CorruptMessage`` (``TamperedMessage`` when an integrity
check fails); that no foreign exception escapes (a consumer would retry it forever); and that caching keeps
KMS out of the per-message path.
"""

from __future__ import annotations

import io
import random
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header
from cryptography.exceptions import InvalidSignature, InvalidTag
from moto import mock_aws

from keyfan.crypto import DiscoveryKmsDecryptor, StrictKmsEncryptor
from keyfan.envelope import Binding, RecordMetadata, check_context
from keyfan.exceptions import AccessDenied, CorruptMessage, KeyServiceUnavailable, TamperedMessage
from tests.functional.moto_iam import enforce_iam_after, user_session

pytestmark = pytest.mark.functional

REGION = "us-east-1"
ACCOUNT = "123456789012"
BINDING = Binding("keyfan.events", "sales", "order.created", 1, "6f1c2d3e-0000-4000-8000-000000000001")
CONTEXT = BINDING.encryption_context()


@dataclass
class Kms:
    key_arn: str
    alias_arn: str
    reader: boto3.Session  # may decrypt
    outsider: boto3.Session  # authenticated, no KMS grant


@pytest.fixture
def kms(monkeypatch: pytest.MonkeyPatch) -> Iterator[Kms]:
    # The first 8 calls provision without auth; every later call is authorized by IAM. Stock moto's KMS
    # authorization (Resource "*"): these tests give or deny all of KMS.
    enforce_iam_after(monkeypatch, 8, key_scoped_kms=False)
    with mock_aws():
        client = boto3.client("kms", region_name=REGION)
        key_arn = client.create_key()["KeyMetadata"]["Arn"]  # 1
        client.create_alias(AliasName="alias/keyfan-sales", TargetKeyId=key_arn)  # 2
        iam = boto3.client("iam", region_name=REGION)
        reader = user_session(iam, "reader", [{"Action": "kms:*", "Resource": "*"}])  # 3, 4, 5
        outsider = user_session(iam, "outsider", None)  # 6, 7
        yield Kms(key_arn, f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/keyfan-sales", reader, outsider)


def _own_session(session: boto3.Session) -> boto3.Session:
    """A fresh session with the same identity: the KMS observer counts per session, as in production
    where the owner and each consumer are separate processes."""
    creds = session.get_credentials()
    return boto3.Session(
        aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key, region_name=REGION
    )


def _encryptor(session: boto3.Session, kms: Kms, **kwargs: object) -> StrictKmsEncryptor:
    botocore_session = _own_session(session)._session
    return StrictKmsEncryptor({"sales": kms.alias_arn}, botocore_session=botocore_session, **kwargs)  # type: ignore[arg-type]


def _decryptor(session: boto3.Session, **kwargs: object) -> DiscoveryKmsDecryptor:
    botocore_session = _own_session(session)._session
    return DiscoveryKmsDecryptor(botocore_session=botocore_session, account_ids=(ACCOUNT,), **kwargs)  # type: ignore[arg-type]


def test_round_trip_with_cached_data_keys(kms: Kms) -> None:
    encryptor = _encryptor(kms.reader, kms)
    decryptor = _decryptor(kms.reader)

    sealed = [encryptor.encrypt(BINDING, f'{{"n":{i}}}'.encode()) for i in range(100)]
    opened = [decryptor.decrypt(item.ciphertext, BINDING) for item in sealed]

    assert [o.plaintext for o in opened] == [f'{{"n":{i}}}'.encode() for i in range(100)]
    assert {item.key_arn for item in sealed} == {kms.key_arn}
    assert decryptor.key_arns(sealed[0].ciphertext) == (kms.key_arn,)
    assert opened[0].encryption_context["department"] == "sales"
    # One data key for 100 messages, unwrapped once: KMS is not on the per-message path.
    assert dict(encryptor.observer.calls) == {"GenerateDataKey": 1}
    assert dict(decryptor.observer.calls) == {"Decrypt": 1}


def test_without_cache_every_message_calls_kms(kms: Kms) -> None:
    encryptor = _encryptor(kms.reader, kms, cache_enabled=False)
    for _ in range(5):
        encryptor.encrypt(BINDING, b"{}")
    assert encryptor.observer.calls["GenerateDataKey"] == 5


def test_identity_without_grant_gets_access_denied(kms: Kms) -> None:
    ciphertext = _encryptor(kms.reader, kms).encrypt(BINDING, b"{}").ciphertext

    with pytest.raises(AccessDenied) as denied:
        _decryptor(kms.outsider).decrypt(ciphertext, BINDING)

    assert denied.value.key_arn == kms.key_arn
    assert "outsider" in (denied.value.principal or str(denied.value))


def test_unreachable_kms_is_an_outage_not_a_denial(kms: Kms, monkeypatch: pytest.MonkeyPatch) -> None:
    ciphertext = _encryptor(kms.reader, kms).encrypt(BINDING, b"{}").ciphertext
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", f"http://127.0.0.1:{port}")
    decryptor = _decryptor(kms.reader)

    with pytest.raises(KeyServiceUnavailable) as outage:
        decryptor.decrypt(ciphertext, BINDING)

    assert not isinstance(outage.value, AccessDenied)
    assert decryptor.observer.calls["Decrypt"] == 1


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        pytest.param(lambda b: b"", "bad_ciphertext", id="empty"),
        pytest.param(lambda b: b"not an sdk message", "bad_ciphertext", id="not-sdk"),
        pytest.param(lambda b: random.Random(7).randbytes(len(b)), "bad_ciphertext", id="random"),
        pytest.param(lambda b: b"\x02" + random.Random(8).randbytes(300), "bad_ciphertext", id="random-v2"),
        pytest.param(lambda b: b[:30], "bad_ciphertext", id="cut-in-header"),
        pytest.param(lambda b: b[: _layout(b).body - 1], "undecryptable", id="cut-in-header-auth"),
        pytest.param(lambda b: b[: _layout(b).body + 10], "undecryptable", id="cut-in-body"),
        pytest.param(lambda b: b[:-20], "undecryptable", id="cut-in-signature"),
    ],
)
def test_corrupt_ciphertext_is_corrupt(kms: Kms, mangle: object, reason: str) -> None:
    ciphertext = _encryptor(kms.reader, kms, suite="signed").encrypt(BINDING, PLAINTEXT).ciphertext
    with pytest.raises(CorruptMessage) as corrupt:
        _decryptor(kms.reader).decrypt(mangle(ciphertext), BINDING)  # type: ignore[operator]

    assert type(corrupt.value) is CorruptMessage
    assert corrupt.value.reason == reason
    assert corrupt.value.__cause__ is not None  # raised from the original


# ------------------------------------------------------------------ single bit flips in a signed message
PLAINTEXT = b'{"amount": "12.34", "pad": "' + b"x" * 64 + b'"}'


@dataclass(frozen=True)
class Layout:
    """Where the parts of a one-frame, signed, committing (v2) Encryption SDK message are."""

    body: int  # first byte of the body (after the 16-byte header authentication tag)
    frame_ciphertext: int  # first byte of the final frame's ciphertext
    frame_ciphertext_length: int
    signature: int  # first byte of the signature (after its 2-byte length)


def _layout(message: bytes) -> Layout:
    stream = io.BytesIO(message)
    header = deserialize_header(stream, 4)[0]
    assert header.version.value == 2 and header.algorithm.is_signing()
    body = stream.tell() + 16
    # final frame: end marker, sequence number, 12-byte IV, 4-byte content length, ciphertext, 16-byte tag
    assert message[body : body + 8] == b"\xff\xff\xff\xff\x00\x00\x00\x01", "expected one final frame"
    length = int.from_bytes(message[body + 20 : body + 24], "big")
    frame_ciphertext = body + 24
    footer = frame_ciphertext + length + 16
    assert int.from_bytes(message[footer : footer + 2], "big") == len(message) - footer - 2
    return Layout(body, frame_ciphertext, length, footer + 2)


def _flip(message: bytes, index: int, bit: int = 0) -> bytes:
    flipped = bytearray(message)
    flipped[index] ^= 1 << bit
    return bytes(flipped)


@pytest.mark.parametrize("cached", [True, False], ids=["data-key-cached", "data-key-from-kms"])
def test_bit_flipped_in_body_ciphertext_is_tampered_bad_tag(kms: Kms, cached: bool) -> None:
    ciphertext = _encryptor(kms.reader, kms, suite="signed").encrypt(BINDING, PLAINTEXT).ciphertext
    layout = _layout(ciphertext)
    assert layout.frame_ciphertext_length == len(PLAINTEXT)
    decryptor = _decryptor(kms.reader)
    if cached:
        decryptor.decrypt(ciphertext, BINDING)  # the data key is now cached: the flip is found without KMS

    with pytest.raises(TamperedMessage) as tampered:
        decryptor.decrypt(_flip(ciphertext, layout.frame_ciphertext + len(PLAINTEXT) // 2), BINDING)

    assert type(tampered.value) is TamperedMessage
    assert tampered.value.reason == "bad_tag"
    assert isinstance(tampered.value.__cause__, InvalidTag)
    assert dict(decryptor.observer.calls) == {"Decrypt": 1}


def test_bit_flipped_in_signature_is_tampered_bad_signature(kms: Kms) -> None:
    ciphertext = _encryptor(kms.reader, kms, suite="signed").encrypt(BINDING, PLAINTEXT).ciphertext
    layout = _layout(ciphertext)

    with pytest.raises(TamperedMessage) as tampered:
        _decryptor(kms.reader).decrypt(_flip(ciphertext, len(ciphertext) - 1), BINDING)

    assert layout.signature < len(ciphertext) - 1
    assert type(tampered.value) is TamperedMessage
    assert tampered.value.reason == "bad_signature"
    assert isinstance(tampered.value.__cause__, InvalidSignature)


def test_bit_flipped_in_header_authentication_tag_is_tampered_bad_tag(kms: Kms) -> None:
    ciphertext = _encryptor(kms.reader, kms, suite="signed").encrypt(BINDING, PLAINTEXT).ciphertext
    layout = _layout(ciphertext)

    with pytest.raises(TamperedMessage) as tampered:
        _decryptor(kms.reader).decrypt(_flip(ciphertext, layout.body - 1), BINDING)

    assert type(tampered.value) is TamperedMessage
    assert tampered.value.reason == "bad_tag"


@pytest.mark.parametrize("offset", [0, 20, 40, -1])
def test_high_bit_flipped_in_header_key_arn_is_corrupt_bad_ciphertext(kms: Kms, offset: int) -> None:
    ciphertext = _encryptor(kms.reader, kms, suite="signed").encrypt(BINDING, PLAINTEXT).ciphertext
    at = ciphertext.index(kms.key_arn.encode())
    index = at + offset % len(kms.key_arn)
    flipped = _flip(ciphertext, index, bit=7)
    decryptor = _decryptor(kms.reader)

    for call in (decryptor.key_arns, lambda value: decryptor.decrypt(value, BINDING)):
        with pytest.raises(CorruptMessage) as corrupt:
            call(flipped)
        assert type(corrupt.value) is CorruptMessage
        assert corrupt.value.reason == "bad_ciphertext"
        assert isinstance(corrupt.value.__cause__, UnicodeDecodeError)
    assert decryptor.observer.total_calls == 0  # refused before any KMS call


def test_every_byte_with_a_bit_flipped_is_translated(kms: Kms) -> None:
    """Flip the low and the high bit of each byte of a real signed message (the high bit breaks UTF-8 in the
    header's strings): every outcome is a Keyfan error, never a foreign one.

    (Flips inside the key ARN that still make a well-formed ARN send KMS elsewhere: another key id is a
    denial, another account fails the discovery filter.)
    """
    ciphertext = _encryptor(kms.reader, kms, suite="signed").encrypt(BINDING, PLAINTEXT).ciphertext
    layout = _layout(ciphertext)
    arn_at = ciphertext.index(kms.key_arn.encode())
    region_at = arn_at + kms.key_arn.index(REGION)
    decryptor = _decryptor(kms.reader)
    decryptor.decrypt(ciphertext, BINDING)
    seen: dict[str, set[str]] = {}
    for index in range(len(ciphertext)):
        if region_at <= index < region_at + len(REGION):
            # A well-formed made-up region has no KMS endpoint: that is a network error, an outage (moto
            # answers with an internal error); a malformed one is bad_key_arn (tests/unit).
            continue
        for bit in (0, 7):
            try:
                decryptor.decrypt(_flip(ciphertext, index, bit), BINDING)
            except (CorruptMessage, AccessDenied) as exc:
                seen.setdefault(type(exc).__name__, set()).add(getattr(exc, "reason", ""))
                # frame ciphertext and tag, signature (not its length field): an integrity check fails
                if layout.frame_ciphertext <= index < layout.signature - 2 or index >= layout.signature:
                    assert type(exc) is TamperedMessage, (index, bit, exc)
            else:
                raise AssertionError(f"flipping bit {bit} of byte {index} still decrypts")
    assert seen["TamperedMessage"] == {"bad_tag", "bad_signature"}
    assert {"bad_ciphertext", "undecryptable", "invalid_ciphertext"} <= seen["CorruptMessage"]


def test_tampered_message_while_kms_is_down_is_an_outage(kms: Kms, monkeypatch: pytest.MonkeyPatch) -> None:
    # the data key cannot be had, so nothing says yet that the bytes are bad: retry, do not dead-letter
    ciphertext = _encryptor(kms.reader, kms, suite="signed").encrypt(BINDING, PLAINTEXT).ciphertext
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", f"http://127.0.0.1:{port}")

    with pytest.raises(KeyServiceUnavailable):
        _decryptor(kms.reader).decrypt(_flip(ciphertext, _layout(ciphertext).frame_ciphertext), BINDING)


def test_ciphertext_replayed_under_other_metadata_is_tampering(kms: Kms) -> None:
    ciphertext = _encryptor(kms.reader, kms).encrypt(BINDING, b"{}").ciphertext
    decrypted = _decryptor(kms.reader).decrypt(ciphertext, BINDING)
    claims_refund = RecordMetadata(
        event_id="e1",
        department="sales",
        event_type="order.refunded",
        schema_version=1,
        occurred_at="2026-01-01T00:00:00+00:00",  # type: ignore[arg-type]
        key_arn=kms.key_arn,
    )

    with pytest.raises(TamperedMessage, match="event_type"):
        check_context(claims_refund, "keyfan.events", decrypted.encryption_context)
