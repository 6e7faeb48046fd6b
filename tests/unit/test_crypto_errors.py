"""A denial, an outage and a corrupt message are never confused."""

from __future__ import annotations

import pytest

from keyfan.crypto.errors import KmsFailure, classify_kms_failure
from keyfan.exceptions import AccessDenied, CorruptMessage, KeyServiceUnavailable

ARN = "arn:aws:kms:us-east-1:123456789012:key/abc"
DENIED_MESSAGE = (
    "User: arn:aws:sts::123456789012:assumed-role/keyfan-sales-consumer/s1 is not authorized to perform: "
    f"kms:Decrypt on resource: {ARN}"
)


def test_access_denied_carries_key_and_principal() -> None:
    error = classify_kms_failure(
        KmsFailure("Decrypt", "AccessDeniedException", DENIED_MESSAGE, 400), key_arn=ARN
    )

    assert isinstance(error, AccessDenied)
    assert error.key_arn == ARN
    assert error.principal == "arn:aws:sts::123456789012:assumed-role/keyfan-sales-consumer/s1"


@pytest.mark.parametrize(
    "failure",
    [
        KmsFailure("Decrypt", None, "EndpointConnectionError", None),
        KmsFailure("Decrypt", "ThrottlingException", "slow down", 400),
        KmsFailure("Decrypt", "KMSInternalException", "oops", 500),
        KmsFailure("Decrypt", "SomethingNew", "bad gateway", 502),
    ],
)
def test_outages_are_retryable(failure: KmsFailure) -> None:
    assert isinstance(classify_kms_failure(failure, key_arn=ARN), KeyServiceUnavailable)


@pytest.mark.parametrize(
    "code", ["AccessDeniedException", "403", "DisabledException", "KMSInvalidStateException"]
)
def test_denials_are_final(code: str) -> None:
    assert isinstance(classify_kms_failure(KmsFailure("Decrypt", code, "", 400), key_arn=ARN), AccessDenied)


def test_invalid_ciphertext_is_corrupt() -> None:
    error = classify_kms_failure(KmsFailure("Decrypt", "InvalidCiphertextException", "", 400), key_arn=ARN)

    assert isinstance(error, CorruptMessage)
    assert error.reason == "invalid_ciphertext"
