"""The per-record pipeline: one raw record in, exactly one final outcome out.

Pure of Faust: the agent in ``keyfan.consumer.app`` hands each record to ``RecordPipeline.process`` and
moves on only when it returns. That is the whole commit story: Faust commits an offset only after the
agent has moved past the record, so a record that is being retried (KMS down) is never committed and
never skipped. Tests drive this class directly with a fake decryptor and in-memory sinks.

Order of checks, cheapest first (and no KMS call for a record that cannot be decrypted anyway)::

    headers -> already applied (audit "duplicate", done)? -> EDK key ARNs (no KMS) -> remembered denial? -> KMS decrypt
            -> encryption context vs headers -> event id inside vs headers -> handler -> audit -> state
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from keyfan.consumer.audit import AuditRecord, AuditSink
from keyfan.consumer.denials import DenialMemory
from keyfan.consumer.handler import DomainHandler
from keyfan.consumer.logfields import log_event
from keyfan.consumer.metrics import ConsumerMetrics
from keyfan.consumer.outcomes import Classification, Outcome, classify
from keyfan.crypto.ports import Decrypted, Decryptor
from keyfan.envelope import CONTENT_ESDK, RecordMetadata, check_context, open_sealed
from keyfan.exceptions import (
    AccessDenied,
    CorruptMessage,
    InvalidEvent,
    KeyServiceUnavailable,
    PublishFailed,
    TamperedMessage,
)

logger = logging.getLogger("keyfan.consumer")

T = TypeVar("T")
Headers = Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None
Sleep = Callable[[float], Awaitable[None]]
RunBlocking = Callable[[Callable[[bytes], Decrypted], bytes], Awaitable[Decrypted]]

# Per-partition slot stored in the state table: the handler's state and the last applied offset, in ONE
# value, so that one changelog record persists both (a crash can never keep one without the other).
APPLIED_OFFSET = "applied_offset"
STATE = "state"


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record as read from the shared topic, before anything is trusted."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers


class _RememberedDenial(AccessDenied):
    """A denial answered from the denial memory, without calling KMS."""


class DeadLetterSink(Protocol):
    async def publish(self, record: RawRecord, reason: str) -> None:
        """Send the raw record to the DLQ with metadata headers; raises ``PublishFailed`` on failure."""
        ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff for in-place retries; unbounded in count (the record must not be skipped)."""

    initial_seconds: float = 0.2
    max_seconds: float = 5.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_seconds, self.initial_seconds * 2 ** max(0, attempt - 1)))


async def _to_thread(fn: Callable[[bytes], Decrypted], value: bytes) -> Decrypted:
    # boto3/ESDK are blocking; keep the event loop (heartbeats, web, commits) responsive.
    return await asyncio.to_thread(fn, value)


class RecordPipeline:
    """Decrypt, check, classify and apply one record at a time (see the module docstring)."""

    def __init__(
        self,
        *,
        department: str,
        consumer_group: str,
        principal: str | None,
        decryptor: Decryptor,
        handler: DomainHandler,
        store: MutableMapping[str, Any],
        audit: AuditSink,
        dead_letters: DeadLetterSink,
        denials: DenialMemory,
        metrics: ConsumerMetrics,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        run_blocking: RunBlocking = _to_thread,
        accepted_contents: frozenset[str] = frozenset({CONTENT_ESDK}),
    ) -> None:
        self.department = department
        self.consumer_group = consumer_group
        self.principal = principal
        self.decryptor = decryptor
        self.handler = handler
        self.store = store
        self.audit = audit
        self.dead_letters = dead_letters
        self.denials = denials
        self.metrics = metrics
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._run_blocking = run_blocking
        # Services read Encryption SDK messages only; the benchmark's plaintext twin passes its own.
        self.accepted_contents = accepted_contents

    async def process(self, record: RawRecord) -> Classification:
        """Return only with a final outcome; while KMS (or the broker) is down, retry in place."""
        attempt = 0
        while True:
            try:
                return await self._process_once(record)
            except (KeyServiceUnavailable, PublishFailed) as exc:
                error: Exception = exc
                level = logging.WARNING
            except Exception as exc:
                # A bug must not drop or dead-letter data: stay on the record, loudly.
                error = exc
                level = logging.ERROR
            attempt += 1
            verdict = classify(error)
            delay = self.retry.delay(attempt)
            self.metrics.retry(verdict.reason)
            log_event(
                logger,
                level,
                "record_retry",
                department=self.department,
                partition=record.partition,
                offset=record.offset,
                attempt=attempt,
                delay_seconds=round(delay, 3),
                reason=verdict.reason,
                error=type(error).__name__,
            )
            await self._sleep(delay)

    async def _process_once(self, record: RawRecord) -> Classification:
        metadata: RecordMetadata | None = None
        key_arns: tuple[str, ...] = ()
        try:
            metadata = RecordMetadata.from_headers(record.headers)
            if metadata.content not in self.accepted_contents:
                raise CorruptMessage("unsupported_content", f"content {metadata.content!r} is not accepted")
            if not record.value:
                raise CorruptMessage("empty_value", "record has no value")
            slot = self._slot(record.partition)
            if record.offset <= slot[APPLIED_OFFSET]:
                # Applied before a crash or rebalance: not counted again, but audited as a redelivery so
                # that the audit trail covers every delivery even if the first audit record was lost.
                duplicate = Classification(Outcome.DECRYPTED, "duplicate")
                await self._audit(record, metadata, metadata.key_arn, duplicate, self.principal)
                self.metrics.duplicate()
                log_event(
                    logger,
                    logging.DEBUG,
                    "record_duplicate",
                    partition=record.partition,
                    offset=record.offset,
                    event_id=metadata.event_id,
                )
                return duplicate
            key_arns = self.decryptor.key_arns(record.value)
            if metadata.key_arn not in key_arns:
                raise TamperedMessage("key_arn_mismatch", "key ARN header is not a key of the ciphertext")
            remembered = self.denials.lookup(key_arns)
            if remembered is not None:
                raise _RememberedDenial(
                    "denial remembered", key_arn=remembered.key_arn, principal=remembered.principal
                )
            decrypted = await self._run_blocking(self.decryptor.decrypt, record.value)
            check_context(metadata, record.topic, decrypted.encryption_context)
            data = open_sealed(decrypted.plaintext, metadata)
            new_state = self.handler.apply(slot[STATE], metadata, data)
        except AccessDenied as exc:
            return await self._denied(record, metadata, key_arns, exc)
        except (CorruptMessage, InvalidEvent) as exc:
            return await self._dead_letter(record, metadata, key_arns, exc)
        verdict = classify(None)
        await self._audit(record, metadata, decrypted.key_arn, verdict, self.principal)
        self.store[str(record.partition)] = {APPLIED_OFFSET: record.offset, STATE: new_state}
        self.metrics.outcome(verdict.outcome, verdict.reason)
        log_event(
            logger,
            logging.DEBUG,
            "record_decrypted",
            partition=record.partition,
            offset=record.offset,
            event_id=metadata.event_id,
            **self.handler.hint(metadata, data),
        )
        return verdict

    def _slot(self, partition: int) -> dict[str, Any]:
        slot = self.store.get(str(partition))
        if slot is None:
            return {APPLIED_OFFSET: -1, STATE: self.handler.initial_state()}
        return dict(slot)

    async def _denied(
        self, record: RawRecord, metadata: RecordMetadata | None, key_arns: tuple[str, ...], exc: AccessDenied
    ) -> Classification:
        remembered = isinstance(exc, _RememberedDenial)
        verdict = Classification(
            Outcome.ACCESS_DENIED, "denial_remembered" if remembered else "kms_access_denied"
        )
        key_arn = exc.key_arn or (key_arns[0] if key_arns else None)
        principal = exc.principal or self.principal
        if not remembered:
            for arn in key_arns or ((key_arn,) if key_arn else ()):
                self.denials.remember(arn, principal)
        await self._audit(record, metadata, key_arn, verdict, principal)
        self.metrics.outcome(verdict.outcome, verdict.reason)
        log_event(
            logger,
            logging.WARNING,
            "record_access_denied",
            department=self.department,
            record_department=metadata.department if metadata else None,
            event_id=metadata.event_id if metadata else None,
            partition=record.partition,
            offset=record.offset,
            key_arn=key_arn,
            principal=principal,
            reason=verdict.reason,
        )
        return verdict

    async def _dead_letter(
        self,
        record: RawRecord,
        metadata: RecordMetadata | None,
        key_arns: tuple[str, ...],
        exc: CorruptMessage | InvalidEvent,
    ) -> Classification:
        verdict = classify(exc)
        await self.dead_letters.publish(record, verdict.reason)
        key_arn = metadata.key_arn if metadata else (key_arns[0] if key_arns else None)
        await self._audit(record, metadata, key_arn, verdict, self.principal)
        self.metrics.outcome(verdict.outcome, verdict.reason)
        log_event(
            logger,
            logging.WARNING,
            "record_dead_lettered",
            department=self.department,
            record_department=metadata.department if metadata else None,
            event_id=metadata.event_id if metadata else None,
            partition=record.partition,
            offset=record.offset,
            key_arn=key_arn,
            reason=verdict.reason,
            error=type(exc).__name__,
        )
        return verdict

    async def _audit(
        self,
        record: RawRecord,
        metadata: RecordMetadata | None,
        key_arn: str | None,
        verdict: Classification,
        principal: str | None,
    ) -> None:
        await self.audit.publish(
            AuditRecord(
                consumer_department=self.department,
                consumer_group=self.consumer_group,
                record_department=metadata.department if metadata else None,
                principal=principal,
                event_id=metadata.event_id if metadata else None,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key_arn=key_arn,
                outcome=verdict.outcome,
                reason=verdict.reason,
            )
        )
