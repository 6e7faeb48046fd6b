"""Every error Keyfan raises, under one root.

Foreign errors (botocore, the Encryption SDK, aiokafka) are translated at the edge that calls them and
re-raised ``from`` the original, so callers branch on Keyfan types only::

    KeyfanError
    ├── ConfigError                 bad registry or settings; fatal at start-up
    ├── InvalidEvent                an event fails the contract; dead-lettered, never retried
    ├── CryptoError
    │   ├── AccessDenied            KMS/IAM refused this identity; final for this consumer
    │   ├── KeyServiceUnavailable   KMS outage, throttling or unreachable; retry with backoff
    │   └── CorruptMessage          truncated, malformed or undecryptable bytes; dead-lettered
    │       └── TamperedMessage     an integrity check failed (tag, signature), or the context or
    │                               event id disagree with the metadata
    ├── PublishFailed               the broker did not acknowledge; retry
    │   └── RecordTooLarge          the broker or client refuses the record's size; never retried as is
    ├── Interrupted                 a rebalance or shutdown abandoned a record: no outcome, read again
    ├── QueueUnavailable            an SQS call failed (outage, throttling, denial); retry later
    └── LocalStackError             the embedded stack could not start, stop or provision
"""

from __future__ import annotations


class KeyfanError(Exception):
    """Root of every Keyfan error."""


class ConfigError(KeyfanError):
    """The department registry or the settings are invalid."""


class InvalidEvent(KeyfanError):
    """An incoming event violates the contract.

    ``reason`` is a short machine-readable slug (it becomes the DLQ reason attribute); the message is
    for people and never carries payload values.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class CryptoError(KeyfanError):
    """Base for encryption and decryption failures."""


class AccessDenied(CryptoError):
    """KMS refused the call for this identity: final, do not retry."""

    def __init__(self, message: str, *, key_arn: str | None = None, principal: str | None = None) -> None:
        super().__init__(message)
        self.key_arn = key_arn
        self.principal = principal


class KeyServiceUnavailable(CryptoError):
    """KMS is down, throttling or unreachable: transient, retry with backoff."""


class CorruptMessage(CryptoError):
    """The bytes are not a valid Keyfan envelope or Encryption SDK message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TamperedMessage(CorruptMessage):
    """An integrity check failed (an AES-GCM tag or the message signature does not verify), or the
    ciphertext decrypts but is bound to other metadata than the record carries."""


class PublishFailed(KeyfanError):
    """The broker did not acknowledge a record."""


class RecordTooLarge(PublishFailed):
    """The record is over the producer's or the topic's size limit: sending it again cannot succeed."""


class Interrupted(KeyfanError):
    """Processing of a record was abandoned for a rebalance or a shutdown.

    The record has no outcome and its partition's position did not move, so it is read again (by this
    worker after the rebalance, or by whichever worker owns the partition next).
    """


class QueueUnavailable(KeyfanError):
    """An SQS call failed; the message stays (or reappears) in the queue."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class LocalStackError(KeyfanError):
    """The embedded local stack failed to start, stop or provision."""
