"""Pure classification of KMS and Encryption SDK failures into Keyfan's three crypto errors.

An access denial is final for the identity that got it; an outage must be retried; corrupt bytes are
dead-lettered. Confusing the first two would either drop data (outage treated as denial) or spin forever
(denial treated as outage), so every path into a Keyfan error goes through ``classify``.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyfan.exceptions import AccessDenied, CorruptMessage, CryptoError, KeyServiceUnavailable

# KMS error codes that mean "this identity may not use this key" (or the key is unusable for everyone,
# which a consumer must treat the same way until someone fixes the key).
DENIED_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "403",  # stock moto, before the local stack's patch (keyfan_tools.local.moto_patches) aligns it with AWS
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "DisabledException",
        "KMSInvalidStateException",
        "NotFoundException",
    }
)
# Codes that mean "try again later".
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "LimitExceededException",
        "KMSInternalException",
        "DependencyTimeoutException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "RequestTimeout",
    }
)
# Codes that mean the ciphertext itself is bad.
CORRUPT_CODES = frozenset({"InvalidCiphertextException", "IncorrectKeyException", "InvalidKeyUsageException"})


@dataclass(frozen=True, slots=True)
class KmsFailure:
    """What the KMS observer saw go wrong in the last call of this thread."""

    operation: str
    code: str | None  # None: no HTTP answer at all (connection refused, timeout)
    message: str
    status: int | None


def classify_kms_failure(failure: KmsFailure, *, key_arn: str | None) -> CryptoError:
    code = failure.code
    if code is None or code in TRANSIENT_CODES or (failure.status or 0) >= 500:
        return KeyServiceUnavailable(f"KMS {failure.operation} unavailable: {code or failure.message}")
    if code in DENIED_CODES or failure.status == 403:
        return AccessDenied(
            f"KMS {failure.operation} denied ({code})", key_arn=key_arn, principal=_principal(failure.message)
        )
    if code in CORRUPT_CODES:
        return CorruptMessage("invalid_ciphertext", f"KMS {failure.operation} rejected the data key ({code})")
    # An unknown 4xx: assume our request is wrong for this message rather than spin on it.
    return CorruptMessage("kms_rejected", f"KMS {failure.operation} failed with {code}")


def _principal(message: str) -> str | None:
    """AWS puts the caller in the message: 'User: arn:aws:sts::1:assumed-role/x/y is not authorized ...'."""
    marker = "User: "
    start = message.find(marker)
    if start < 0:
        return None
    rest = message[start + len(marker) :]
    return rest.split()[0] if rest else None
