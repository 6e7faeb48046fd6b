"""The owner's pipeline: one SQS message -> validated event -> encrypted record -> broker ack -> delete.

Pure async logic behind small seams (queue, dead-letter queue, encryptor, publisher), so unit tests drive
it with fakes and the Faust service only wires real adapters. Blocking calls (boto3, KMS, the Encryption
SDK) run in threads so one slow call never stalls the event loop; sealing under a cached v2 data key takes
a few microseconds and runs inline (a thread hop would cost more).

Outcomes, and what happens to the SQS message:

    invalid body (any reason)        -> copied to the DLQ with a ``reason`` attribute, then deleted
    published (broker acknowledged)  -> deleted (only now: at-least-once)
    KMS unavailable / publish failed -> kept; retried in-process with backoff while its visibility is
                                        extended; on shutdown released for the next worker
    KMS AccessDenied                 -> kept; released after a backoff; SQS's redrive dead-letters it
                                        after maxReceiveCount (the owner role is misconfigured)
    unexpected exception (a bug)     -> retried in-process ``max_unexpected_attempts`` times with backoff,
                                        then copied to the DLQ with reason ``unexpected_<ExceptionType>``
                                        and deleted; logged at ERROR (message id, reason, error type)

Only outages (KMS unavailable, publish failed, SQS or the DLQ unavailable) keep a message without bound.

Counting, at every moment: received = published + dead-lettered + released + in flight.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from enum import StrEnum

from keyfan.crypto import Encrypted, Encryptor
from keyfan.crypto.subjectkeys import SubjectKeys
from keyfan.departments import DepartmentRegistry
from keyfan.envelope import Binding, RecordMetadata, seal
from keyfan.exceptions import (
    AccessDenied,
    InvalidEvent,
    KeyServiceUnavailable,
    PublishFailed,
    QueueUnavailable,
)
from keyfan.models import DepartmentEvent, entity_key
from keyfan.owner.deletes import DeleteBatcher
from keyfan.owner.metrics import OwnerMetrics
from keyfan.owner.ports import DeadLetterQueue, Publisher, WorkQueue
from keyfan.retry import RetryPolicy
from keyfan.routing import partition_for, record_key
from keyfan.sqs import QueueMessage
from keyfan.validation import parse_event

log = logging.getLogger("keyfan.owner")

# Pollers retry with jitter so that many of them do not wake together.
DEFAULT_RETRY = RetryPolicy(initial_seconds=0.5, max_seconds=15.0, jitter=True)


class MessageOutcome(StrEnum):
    """What became of one SQS message in this worker."""

    PUBLISHED = "published"
    DEAD_LETTERED = "dead_lettered"
    RELEASED = "released"  # left in SQS for a later retry (transient failure, denial or shutdown)


def key_arns_for(
    registry: DepartmentRegistry, *, region: str, account: str, partition: str = "aws"
) -> dict[str, str]:
    """Each department's key as the ARN of its alias (what the strict encryptor and IAM policies name)."""
    return {dept.name: f"arn:{partition}:kms:{region}:{account}:{dept.key_alias}" for dept in registry}


class OwnerPipeline:
    """Processes one message at a time per call; safe to call concurrently."""

    def __init__(
        self,
        *,
        registry: DepartmentRegistry,
        encryptor: Encryptor,
        publisher: Publisher,
        queue: WorkQueue,
        dead_letters: DeadLetterQueue,
        topic: str,
        max_body_bytes: int,
        visibility_timeout: int = 30,
        retry: RetryPolicy | None = None,
        metrics: OwnerMetrics | None = None,
        subject_keys: SubjectKeys | None = None,
    ) -> None:
        """``subject_keys``: personal fields are sealed apart under their subject's key (crypto-shredding);
        ``None`` keeps the whole payload under the department key (unit tests, the plaintext benchmark)."""
        self.registry = registry
        self.encryptor = encryptor
        self.subject_keys = subject_keys
        self.publisher = publisher
        self.queue = queue
        self.dead_letters = dead_letters
        self.topic = topic
        self.max_body_bytes = max_body_bytes
        self.visibility_timeout = visibility_timeout
        self.retry = retry or DEFAULT_RETRY
        self.metrics = metrics or OwnerMetrics()
        self._stopping = asyncio.Event()
        # One encrypt at a time per department: concurrent encrypts on a cold (or expired) data-key cache
        # would each call KMS; serialized, the first one fills the cache and the rest reuse its data key.
        self._encrypt_locks = {name: asyncio.Lock() for name in registry.names}
        self._deleter = DeleteBatcher(queue)

    def stop(self) -> None:
        """Stop retrying: messages waiting for a retry are released to SQS for the next worker."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def handle(self, message: QueueMessage) -> MessageOutcome:
        """Take one message to a final outcome for this worker; never raises."""
        m = self.metrics
        m.received.inc()
        if message.receive_count > 1:
            m.redelivered.inc()
        m.in_flight.inc()
        started = time.monotonic()
        outcome = MessageOutcome.RELEASED
        try:
            outcome = await self._handle_bounded(message)
        except Exception as exc:  # last resort (dead-lettering it failed too): it stays in SQS
            log.error(
                "unexpected failure, message released",
                extra={"message_id": message.message_id, **_error_metadata(exc)},
            )
            await self._release(message, "error", self.retry.delay(message.receive_count))
        finally:
            m.in_flight.dec()
            m.latency.labels(outcome.value).observe(time.monotonic() - started)
        return outcome

    async def _handle_bounded(self, message: QueueMessage) -> MessageOutcome:
        """``_handle``, with an unexpected exception retried in-process a bounded number of times.

        Outages are Keyfan errors handled (without bound) inside ``_handle``; anything else escaping it is
        a bug that would fail the same way on every redelivery: after ``max_unexpected_attempts`` the
        message goes to the DLQ with reason ``unexpected_<ExceptionType>`` instead of cycling through SQS.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._handle(message)
            except Exception as exc:
                failure = exc
            # Metadata only: an exception's text may quote the payload, so only its type and location.
            metadata = {"message_id": message.message_id, "attempt": attempt, **_error_metadata(failure)}
            if attempt >= self.retry.max_unexpected_attempts:
                reason = f"unexpected_{type(failure).__name__}"
                log.error("unexpected failure, message dead-lettered", extra={**metadata, "reason": reason})
                return await self._dead_letter(message, reason)
            delay = self.retry.delay(attempt)
            log.error(
                "unexpected failure, will retry", extra={**metadata, "retry_in_seconds": round(delay, 2)}
            )
            if self.stopping or not await self._wait_extending(message, delay):
                await self._release(message, "error", 0)
                return MessageOutcome.RELEASED

    async def _encrypt(self, binding: Binding, plaintext: bytes) -> Encrypted:
        """Inline when the data key is at hand (microseconds); in a thread when KMS must be asked."""
        encrypted = self.encryptor.encrypt_cached(binding, plaintext)
        if encrypted is not None:
            return encrypted
        async with self._encrypt_locks[binding.department]:
            return await asyncio.to_thread(self.encryptor.encrypt, binding, plaintext)

    async def _plaintext(self, event: DepartmentEvent, binding: Binding) -> bytes:
        """The body to encrypt, its personal fields first sealed apart under the subject's key: inline when
        the key is at hand, in a thread when the key table (or KMS, for the wrapping key) must be asked."""
        keys = self.subject_keys
        if keys is None:
            return seal(event)
        body = keys.seal_body_cached(event, binding)
        return body if body is not None else await asyncio.to_thread(keys.seal_body, event, binding)

    async def _handle(self, message: QueueMessage) -> MessageOutcome:
        try:
            event = parse_event(message.body, self.registry, max_bytes=self.max_body_bytes)
        except InvalidEvent as exc:
            # The reason and the message id only: the body goes to the DLQ, never to the logs.
            log.warning(
                "invalid message dead-lettered",
                extra={"message_id": message.message_id, "reason": exc.reason, "detail": str(exc)},
            )
            return await self._dead_letter(message, exc.reason)
        department = self.registry.get(event.department)
        entity = entity_key(event)
        partition = partition_for(department, entity)
        key = record_key(department, entity)
        binding = Binding.of_event(event, self.topic)
        attempt = 0
        while True:
            attempt += 1
            try:
                plaintext = await self._plaintext(event, binding)
                encrypted = await self._encrypt(binding, plaintext)
                headers = RecordMetadata.for_event(
                    event, key_arn=encrypted.key_arn, produced_at=time.time(), content=encrypted.content
                ).to_headers()
                offset = await self.publisher.publish(
                    topic=self.topic,
                    partition=partition,
                    key=key,
                    value=encrypted.ciphertext,
                    headers=headers,
                )
                break
            except AccessDenied as exc:
                # Not a payload problem: the owner role cannot use this key (or the subject-key table).
                # Leave it to SQS's redrive.
                log.error(
                    "KMS or the key table denied the owner: check the owner role's permissions",
                    extra={
                        "message_id": message.message_id,
                        "department": department.name,
                        "key_arn": exc.key_arn,
                        "principal": exc.principal,
                        "receive_count": message.receive_count,
                    },
                )
                await self._release(message, "access_denied", self.retry.delay(message.receive_count))
                return MessageOutcome.RELEASED
            except (KeyServiceUnavailable, PublishFailed) as exc:
                cause = "kms_unavailable" if isinstance(exc, KeyServiceUnavailable) else "publish_failed"
                exhausted = self.retry.max_attempts is not None and attempt >= self.retry.max_attempts
                delay = self.retry.delay(attempt)
                log.warning(
                    "transient failure, will retry",
                    extra={
                        "message_id": message.message_id,
                        "cause": cause,
                        "error": str(exc),
                        "attempt": attempt,
                        "retry_in_seconds": round(delay, 2),
                    },
                )
                if exhausted or self.stopping:
                    await self._release(message, cause, 0 if self.stopping else delay)
                    return MessageOutcome.RELEASED
                if not await self._wait_extending(message, delay):
                    await self._release(message, cause, 0)
                    return MessageOutcome.RELEASED
        # Published but not deleted: SQS will redeliver it and it will be published twice (at-least-once).
        await self._delete_final(message, "publish")
        self.metrics.published.labels(department.name, str(partition)).inc()
        log.debug(
            "published",
            extra={
                "message_id": message.message_id,
                "department": department.name,
                "partition": partition,
                "offset": offset,
            },
        )
        return MessageOutcome.PUBLISHED

    async def _wait_extending(self, message: QueueMessage, delay: float) -> bool:
        """Sleep ``delay`` (interrupted by stop) after extending the message's visibility past it.

        False if the service is stopping (the caller releases the message).
        """
        try:
            await asyncio.to_thread(
                self.queue.change_visibility, message, int(delay) + self.visibility_timeout
            )
        except QueueUnavailable as exc:
            log.warning(
                "could not extend visibility", extra={"message_id": message.message_id, "error": str(exc)}
            )
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        except TimeoutError:
            return True
        return False

    async def _dead_letter(self, message: QueueMessage, reason: str) -> MessageOutcome:
        """Copy the message to the DLQ with ``reason``, then delete it (the caller logs why)."""
        try:
            await asyncio.to_thread(self.dead_letters.send_dead_letter, message, reason=reason)
        except QueueUnavailable as error:
            log.error("DLQ send failed", extra={"message_id": message.message_id, "error": str(error)})
            await self._release(message, "dlq_unavailable", self.retry.delay(message.receive_count))
            return MessageOutcome.RELEASED
        await self._delete_final(message, "dead-letter")
        self.metrics.dead_lettered.labels(reason).inc()
        return MessageOutcome.DEAD_LETTERED

    async def _delete_final(self, message: QueueMessage, after: str) -> None:
        """Delete a message whose outcome is final; never raises. Undeleted, SQS redelivers it."""
        try:
            await self._deleter.delete(message)
        except QueueUnavailable as error:
            self.metrics.delete_failures.inc()
            log.warning(
                f"delete after {after} failed", extra={"message_id": message.message_id, "error": str(error)}
            )
        except Exception as error:  # a bug in the delete path must not undo (or repeat) a final outcome
            self.metrics.delete_failures.inc()
            log.error(
                f"delete after {after} failed unexpectedly",
                extra={"message_id": message.message_id, **_error_metadata(error)},
            )

    async def _release(self, message: QueueMessage, cause: str, delay: float) -> None:
        """Leave the message in SQS, visible again after ``delay`` seconds; never raises."""
        self.metrics.released.labels(cause).inc()
        # If this fails, its visibility timeout expires anyway: it comes back either way.
        try:
            await asyncio.to_thread(self.queue.change_visibility, message, int(delay))
        except QueueUnavailable:
            pass
        except Exception as error:
            log.error(
                "release failed unexpectedly",
                extra={"message_id": message.message_id, **_error_metadata(error)},
            )


def _error_metadata(exc: BaseException) -> dict[str, str]:
    """An exception for the logs without its text (which may quote a payload): its type and where."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else "unknown"
    return {"error_type": type(exc).__name__, "where": where}
