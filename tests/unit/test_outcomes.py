"""Outcome classification: a denial and an outage must never be confused."""

from __future__ import annotations

import pytest

from keyfan.consumer.outcomes import Outcome, classify
from keyfan.exceptions import (
    AccessDenied,
    CorruptMessage,
    InvalidEvent,
    KeyServiceUnavailable,
    PublishFailed,
    TamperedMessage,
)


@pytest.mark.parametrize(
    ("error", "outcome", "reason"),
    [
        (None, Outcome.DECRYPTED, "ok"),
        (AccessDenied("denied", key_arn="arn"), Outcome.ACCESS_DENIED, "kms_access_denied"),
        (KeyServiceUnavailable("down"), Outcome.RETRY, "kms_unavailable"),
        (PublishFailed("no ack"), Outcome.RETRY, "publish_failed"),
        (CorruptMessage("bad_ciphertext", "x"), Outcome.DEAD_LETTER, "bad_ciphertext"),
        (TamperedMessage("context_mismatch", "x"), Outcome.DEAD_LETTER, "context_mismatch"),
        (InvalidEvent("invalid_payload", "x"), Outcome.DEAD_LETTER, "invalid_payload"),
        (RuntimeError("bug"), Outcome.RETRY, "unexpected_RuntimeError"),
    ],
)
def test_classify(error: BaseException | None, outcome: Outcome, reason: str) -> None:
    verdict = classify(error)
    assert verdict.outcome is outcome
    assert verdict.reason == reason


def test_only_retry_is_not_final() -> None:
    assert [o for o in Outcome if not o.final] == [Outcome.RETRY]


def test_denial_and_outage_differ() -> None:
    assert classify(AccessDenied("x")).outcome.final
    assert not classify(KeyServiceUnavailable("x")).outcome.final
