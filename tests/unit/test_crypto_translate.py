"""The decrypt adapter's one translation point: every foreign error becomes a Keyfan error, and an
integrity failure, a KMS outage, a KMS denial and unreadable bytes are never confused.

Pure: exceptions are built by hand, no KMS. Real messages with flipped bits are in
tests/functional/test_crypto_kms.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import botocore.session
import pytest
from aws_encryption_sdk.exceptions import DecryptKeyError, MasterKeyProviderError, SerializationError
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    InvalidRegionError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.hooks import HierarchicalEmitter
from cryptography.exceptions import InvalidSignature, InvalidTag

from keyfan.crypto.errors import KmsFailure
from keyfan.crypto.kms import DiscoveryKmsDecryptor, KmsObserver, _translate
from keyfan.envelope import Binding
from keyfan.exceptions import (
    AccessDenied,
    CorruptMessage,
    CryptoError,
    KeyServiceUnavailable,
)

ARN = "arn:aws:kms:us-east-1:123456789012:key/abc"
DENIED = KmsFailure("Decrypt", "AccessDeniedException", "User: arn:aws:iam::1:user/x is not authorized", 400)
DOWN = KmsFailure("Decrypt", None, "EndpointConnectionError", None)


def _raised_while_handling(outer: Exception, inner: Exception) -> Exception:
    """What the SDK does: ``except InvalidTag: raise SerializationError(...)`` (implicit context)."""
    try:
        try:
            raise inner
        except type(inner):
            raise outer  # noqa: B904 - the implicit __context__ is the point
    except type(outer) as exc:
        return exc


def _kind(error: CryptoError) -> tuple[str, str | None]:
    return type(error).__name__, getattr(error, "reason", None)


@pytest.mark.parametrize(
    ("exc", "failure", "expected"),
    [
        # integrity checks failed: tampered, whatever a KMS call did before (a data key was in hand)
        (InvalidTag(), None, ("TamperedMessage", "bad_tag")),
        (InvalidTag(), DOWN, ("TamperedMessage", "bad_tag")),
        (
            _raised_while_handling(SerializationError("Header authorization failed"), InvalidTag()),
            None,
            ("TamperedMessage", "bad_tag"),
        ),
        (InvalidSignature(), None, ("TamperedMessage", "bad_signature")),
        (InvalidSignature(), DENIED, ("TamperedMessage", "bad_signature")),
        # a KMS call failed: the observer's record is the authority
        (DecryptKeyError("Unable to decrypt any data key"), DOWN, ("KeyServiceUnavailable", None)),
        (DecryptKeyError("Unable to decrypt any data key"), DENIED, ("AccessDenied", None)),
        (SerializationError("anything"), DOWN, ("KeyServiceUnavailable", None)),
        (
            DecryptKeyError("x"),
            KmsFailure("Decrypt", "InvalidCiphertextException", "", 400),
            ("CorruptMessage", "invalid_ciphertext"),
        ),
        # botocore without a recorded KMS answer
        (EndpointConnectionError(endpoint_url="http://kms"), None, ("KeyServiceUnavailable", None)),
        (ReadTimeoutError(endpoint_url="http://kms"), None, ("KeyServiceUnavailable", None)),
        (InvalidRegionError(region_name="us,east-1"), None, ("CorruptMessage", "bad_key_arn")),
        # a key id over KMS's limits makes the request impossible: no retry helps (it used to spin forever)
        (
            ParamValidationError(report="Invalid length for parameter KeyId"),
            None,
            ("CorruptMessage", "bad_key_arn"),
        ),
        (
            ClientError({"Error": {"Code": "AccessDeniedException"}}, "Decrypt"),
            None,
            ("AccessDenied", None),
        ),
        (
            ClientError(
                {"Error": {"Code": "ThrottlingException"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
                "Decrypt",
            ),
            None,
            ("KeyServiceUnavailable", None),
        ),
        # no KMS call failed: the bytes are bad
        (DecryptKeyError("Unable to decrypt any data key"), None, ("CorruptMessage", "undecryptable")),
        (MasterKeyProviderError("Key not allowed"), None, ("CorruptMessage", "undecryptable")),
        (SerializationError("Footer not read"), None, ("CorruptMessage", "undecryptable")),
        (
            UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
            None,
            ("CorruptMessage", "undecryptable"),
        ),
        (ValueError("odd"), None, ("CorruptMessage", "undecryptable")),
    ],
)
def test_translation(exc: Exception, failure: KmsFailure | None, expected: tuple[str, str | None]) -> None:
    error = _translate(exc, failure, ARN)

    assert _kind(error) == expected
    if isinstance(error, AccessDenied):
        assert error.key_arn == ARN


def test_parse_failures_carry_the_callers_reason() -> None:
    error = _translate(
        UnicodeDecodeError("utf-8", b"\xe1", 0, 1, "x"), None, None, corrupt_reason="bad_ciphertext"
    )

    assert type(error) is CorruptMessage and error.reason == "bad_ciphertext"


def test_tampered_is_corrupt_so_it_is_dead_lettered() -> None:
    assert isinstance(_translate(InvalidTag(), None, ARN), CorruptMessage)
    assert not isinstance(_translate(InvalidTag(), DOWN, ARN), KeyServiceUnavailable)


@pytest.fixture
def decryptor() -> DiscoveryKmsDecryptor:
    # constructing it calls no AWS API; key_arns only parses
    return DiscoveryKmsDecryptor(botocore_session=botocore.session.Session(), account_ids=("123456789012",))


@pytest.mark.parametrize(
    "value", [b"", b"\x01", b"\x02", b"garbage that is no SDK message", bytes(range(256)) * 2], ids=repr
)
def test_unparseable_bytes_are_bad_ciphertext_before_any_kms_call(
    decryptor: DiscoveryKmsDecryptor, value: bytes
) -> None:
    binding = Binding("t", "sales", "order.created", 1, "e")
    for call in (decryptor.key_arns, lambda v: decryptor.decrypt(v, binding)):
        with pytest.raises(CorruptMessage) as corrupt:
            call(value)
        assert type(corrupt.value) is CorruptMessage
        assert corrupt.value.reason == "bad_ciphertext"
        assert corrupt.value.__cause__ is not None
    assert decryptor.observer.total_calls == 0


def test_a_stale_kms_failure_does_not_leak_into_parsing(decryptor: DiscoveryKmsDecryptor) -> None:
    decryptor.observer._local.failure = DOWN  # left over from an earlier decrypt on this thread

    with pytest.raises(CorruptMessage) as corrupt:
        decryptor.key_arns(b"garbage")

    assert corrupt.value.reason == "bad_ciphertext"


def test_an_observer_attached_twice_counts_each_kms_call_once() -> None:
    # v1's encryptor and v2's data keys may share one botocore session and one observer
    emitter = HierarchicalEmitter()  # what a botocore session registers its hooks on
    session = SimpleNamespace(register=emitter.register)
    observer = KmsObserver()
    observer.attach(session)
    observer.attach(session)

    emitter.emit("before-call.kms.Decrypt", model=SimpleNamespace(name="Decrypt"))

    assert dict(observer.calls) == {"Decrypt": 1}
