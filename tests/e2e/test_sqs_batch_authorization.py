"""SQS batch APIs are authorized as their single-message IAM actions, as in AWS (moto patch 3)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from keyfan_tools.local.stack import LocalStack

pytestmark = pytest.mark.e2e


def test_generator_may_batch_send_but_not_batch_delete(local_stack: LocalStack) -> None:
    # Given the generator role, whose policy allows only sqs:SendMessage on the queue
    sqs = local_stack.session_for("generator").client("sqs")
    queue = local_stack.queue_url

    # When it sends a batch, AWS authorizes it as sqs:SendMessage
    sent = sqs.send_message_batch(
        QueueUrl=queue, Entries=[{"Id": "a", "MessageBody": "{}"}, {"Id": "b", "MessageBody": "{}"}]
    )

    # Then both entries are accepted
    assert len(sent.get("Successful", [])) == 2
    assert not sent.get("Failed")

    # And a batch delete (sqs:DeleteMessage) is still denied
    with pytest.raises(ClientError) as denied:
        sqs.delete_message_batch(QueueUrl=queue, Entries=[{"Id": "a", "ReceiptHandle": "x"}])
    assert "not authorized" in str(denied.value) or "AccessDenied" in str(denied.value)

    # Clean up for the other tests: the owner may receive and batch-delete
    owner = local_stack.session_for("owner").client("sqs")
    received = owner.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    entries = [
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
        for i, m in enumerate(received.get("Messages", []))
    ]
    if entries:
        deleted = owner.delete_message_batch(QueueUrl=queue, Entries=entries)
        assert not deleted.get("Failed")
