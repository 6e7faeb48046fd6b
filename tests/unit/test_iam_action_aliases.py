"""Batch APIs are authorized as their single-message IAM action, as in AWS."""

from __future__ import annotations

from keyfan_tools.local.moto_patches import iam_action


def test_sqs_batch_apis_map_to_their_iam_action() -> None:
    assert iam_action("sqs:SendMessageBatch") == "sqs:SendMessage"
    assert iam_action("sqs:DeleteMessageBatch") == "sqs:DeleteMessage"
    assert iam_action("sqs:ChangeMessageVisibilityBatch") == "sqs:ChangeMessageVisibility"


def test_other_actions_are_unchanged() -> None:
    assert iam_action("sqs:SendMessage") == "sqs:SendMessage"
    assert iam_action("kms:Decrypt") == "kms:Decrypt"
