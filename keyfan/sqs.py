"""The SQS adapter, for both sides: the generator's batch send and the owner's receive/delete/dead-letter.

Synchronous boto3 calls (the owner runs them with ``asyncio.to_thread``). botocore errors leave this module
only as ``QueueUnavailable``. ``send_batch`` retries exactly the entries SQS reports as failed, with bounded
exponential backoff, and returns whatever still failed: nothing is dropped silently.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from keyfan.exceptions import QueueUnavailable

MAX_BATCH = 10  # SQS's limit per SendMessageBatch call
ATTR_REASON = "reason"
ATTR_SOURCE_MESSAGE_ID = "source_message_id"
ATTR_DEPARTMENT = "department"
ATTR_CORRELATION_ID = "correlation_id"
# Whole-call failures that retrying cannot fix: this identity may not send to this queue.
_FINAL_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "403",
        "InvalidClientTokenId",
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
    }
)


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """One received message; ``body`` is the payload and must never be logged."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    body: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FailedEntry:
    """An entry SQS still refused after the last attempt; ``index`` is its position in the input."""

    index: int
    code: str
    sender_fault: bool


@dataclass(frozen=True, slots=True)
class BatchSendResult:
    sent: int
    failed: tuple[FailedEntry, ...]
    calls: int
    retried_entries: int


def _chunks(indexes: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(indexes), size):
        yield indexes[start : start + size]


def _string_attributes(attributes: Mapping[str, str]) -> dict[str, dict[str, str]]:
    return {name: {"DataType": "String", "StringValue": value} for name, value in attributes.items() if value}


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


class SqsQueue:
    """One queue, by URL, through an injected boto3 SQS client."""

    def __init__(
        self,
        client: Any,
        queue_url: str,
        *,
        max_attempts: int = 4,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self.url = queue_url
        self._max_attempts = max(1, max_attempts)
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, operation)(QueueUrl=self.url, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            code = _error_code(exc)
            raise QueueUnavailable(f"SQS {operation} failed: {code}", code=code) from exc

    # --- owner side -------------------------------------------------------------------------------
    def receive(
        self, *, max_messages: int = 10, wait_seconds: int = 2, visibility_timeout: int | None = None
    ) -> list[QueueMessage]:
        """Long-poll for up to ``max_messages``."""
        kwargs: dict[str, Any] = {
            "MaxNumberOfMessages": max(1, min(max_messages, MAX_BATCH)),
            "WaitTimeSeconds": wait_seconds,
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
            "MessageAttributeNames": ["All"],
        }
        if visibility_timeout is not None:
            kwargs["VisibilityTimeout"] = visibility_timeout
        response = self._call("receive_message", **kwargs)
        return [
            QueueMessage(
                message_id=raw["MessageId"],
                receipt_handle=raw["ReceiptHandle"],
                body=raw.get("Body", ""),
                receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                attributes={
                    name: value.get("StringValue", "")
                    for name, value in raw.get("MessageAttributes", {}).items()
                },
            )
            for raw in response.get("Messages", [])
        ]

    def delete(self, message: QueueMessage) -> None:
        self._call("delete_message", ReceiptHandle=message.receipt_handle)

    def delete_batch(self, messages: Sequence[QueueMessage]) -> dict[str, str]:
        """Delete up to 10 messages in one call; the ids of those SQS refused, with the error code."""
        if not messages:
            return {}
        if len(messages) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} messages per DeleteMessageBatch")
        entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(messages)]
        response = self._call("delete_message_batch", Entries=entries)
        return {
            messages[int(item["Id"])].message_id: str(item.get("Code", "Unknown"))
            for item in response.get("Failed", [])
        }

    def change_visibility(self, message: QueueMessage, seconds: int) -> None:
        """Hide the message for ``seconds`` more (0: make it visible again now)."""
        self._call(
            "change_message_visibility",
            ReceiptHandle=message.receipt_handle,
            VisibilityTimeout=max(0, min(int(seconds), 43_200)),
        )

    def send(self, body: str, attributes: Mapping[str, str] | None = None) -> str:
        response = self._call(
            "send_message", MessageBody=body, MessageAttributes=_string_attributes(attributes or {})
        )
        return str(response["MessageId"])

    def send_dead_letter(self, message: QueueMessage, *, reason: str) -> str:
        """Copy ``message`` to this (dead-letter) queue, with the reason and the original message id."""
        return self.send(
            message.body,
            {**message.attributes, ATTR_REASON: reason, ATTR_SOURCE_MESSAGE_ID: message.message_id},
        )

    # --- generator side ---------------------------------------------------------------------------
    def send_batch(self, messages: Sequence[OutgoingMessage]) -> BatchSendResult:
        """Send in batches of 10; re-send only failed entries (not sender faults) with backoff."""
        pending = list(range(len(messages)))
        last_error: dict[int, FailedEntry] = {}
        calls = retried = 0
        for attempt in range(self._max_attempts):
            if attempt:
                retried += len(pending)
                delay = min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
                self._sleep(delay * (0.5 + random.random() / 2))
            still_failing: list[int] = []
            for chunk in _chunks(pending, MAX_BATCH):
                calls += 1
                for index, failure in self._send_chunk(messages, chunk).items():
                    last_error[index] = failure
                    if not failure.sender_fault:
                        still_failing.append(index)
            pending = still_failing
            if not pending:
                break
        failed = tuple(
            entry
            for index, entry in sorted(last_error.items())
            if index in set(pending) or entry.sender_fault
        )
        return BatchSendResult(
            sent=len(messages) - len(failed), failed=failed, calls=calls, retried_entries=retried
        )

    def _send_chunk(
        self, messages: Sequence[OutgoingMessage], chunk: Sequence[int]
    ) -> dict[int, FailedEntry]:
        entries = [
            {
                "Id": str(index),
                "MessageBody": messages[index].body,
                "MessageAttributes": _string_attributes(messages[index].attributes),
            }
            for index in chunk
        ]
        try:
            response = self._client.send_message_batch(QueueUrl=self.url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            # The whole call failed: an outage or throttling is retried, a denial is not.
            code = _error_code(exc)
            final = code in _FINAL_CODES
            return {index: FailedEntry(index, code, sender_fault=final) for index in chunk}
        return {
            int(item["Id"]): FailedEntry(
                int(item["Id"]), str(item.get("Code", "Unknown")), bool(item.get("SenderFault"))
            )
            for item in response.get("Failed", [])
        }
