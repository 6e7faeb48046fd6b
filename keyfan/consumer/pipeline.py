"""The per-record pipeline: one raw record in, exactly one final outcome out.

Pure of Faust: the agent in ``keyfan.consumer.app`` hands each record to ``RecordPipeline.process``. The
partition's stored position (``keyfan.consumer.position``) decides first whether the record is the next
one; only then is it processed, and its outcome, the new position and the handler's state are written as
one table value. Tests drive this class directly with a fake decryptor and in-memory sinks.

Order of checks, cheapest first (and no KMS call for a record that cannot be decrypted anyway)::

    position (redelivered -> audit, done; gap -> back to the agent) -> headers -> a decryptor for the
    record's content -> partition belongs to the record's department -> key ARNs of the value (no KMS)
    -> remembered denial? -> decrypt (inline under a cached data key; KMS in a thread) -> encryption
    context vs headers -> event id inside vs headers -> personal fields (under the subject's key: open,
    shredded or withheld) -> entity routes to this partition -> event id already applied elsewhere
    (duplicate)? -> handler -> audit -> event id + slot

Retries: an outage (KMS, broker) is retried in place without bound; anything unexpected is retried
``RetryPolicy.max_unexpected_attempts`` times, then dead-lettered as ``unexpected_<Type>``. A rebalance or
shutdown interrupts a retry (``interrupt``): the record is left without an outcome, to be read again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from functools import partial
from typing import Any, Protocol, TypeVar

from keyfan.consumer.audit import AuditRecord, AuditSink
from keyfan.consumer.dedupe import EventWindow, capacity_per_partition
from keyfan.consumer.denials import DenialMemory
from keyfan.consumer.handler import DomainHandler
from keyfan.consumer.interruption import Interruption
from keyfan.consumer.logfields import log_event, outcome_fields
from keyfan.consumer.metrics import ConsumerMetrics
from keyfan.consumer.outcomes import Classification, Outcome, classify, unexpected_reason
from keyfan.consumer.position import OUTCOMES, POSITION, STATE, Arrival, Gap, advanced, arrival, new_slot
from keyfan.consumer.records import DeadLetterSink, RawRecord
from keyfan.crypto.ports import Decryptor
from keyfan.crypto.subjectkeys import Access, Personal, SubjectKeys
from keyfan.departments import DepartmentRegistry
from keyfan.envelope import Binding, RecordMetadata, SealedPersonal, check_context, open_body
from keyfan.exceptions import (
    AccessDenied,
    CorruptMessage,
    Interrupted,
    InvalidEvent,
    KeyfanError,
    KeyServiceUnavailable,
    PublishFailed,
    TamperedMessage,
)
from keyfan.models import entity_key_of
from keyfan.retry import RetryPolicy
from keyfan.routing import check_entity_routing, check_partition_owner

logger = logging.getLogger("keyfan.consumer")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class RunBlocking(Protocol):
    """Runs a blocking call off the event loop (a thread in the services; inline in some unit tests)."""

    def __call__(self, fn: Callable[[], T], /) -> Awaitable[T]: ...


# Outages retried in place without a count limit (the record must not be skipped), no jitter (one agent).
DEFAULT_RETRY = RetryPolicy(initial_seconds=0.2, max_seconds=5.0)

REDELIVERED = Classification(Outcome.DUPLICATE, "redelivered")
DUPLICATE_EVENT = Classification(Outcome.DUPLICATE, "duplicate_event")
# A record whose personal fields the handler got as markers: applied and counted, its reason says why.
PERSONAL_VERDICTS = {
    Access.OPEN: classify(None),
    Access.SHREDDED: Classification(Outcome.DECRYPTED, "subject_shredded"),
    Access.WITHHELD: Classification(Outcome.DECRYPTED, "personal_withheld"),
}


class _RememberedDenial(AccessDenied):
    """A denial answered from the denial memory, without calling KMS."""


async def _to_thread(fn: Callable[[], T]) -> T:
    # KMS calls, key-table reads and SDK messages block; keep the event loop (heartbeats, web, commits) responsive.
    return await asyncio.to_thread(fn)


class RecordPipeline:
    """Decrypt, check, classify and apply one record at a time (see the module docstring)."""

    def __init__(
        self,
        *,
        department: str,
        consumer_group: str,
        principal: str | None,
        registry: DepartmentRegistry,
        decryptors: Sequence[Decryptor],
        handler: DomainHandler,
        store: MutableMapping[str, Any],
        audit: AuditSink,
        dead_letters: DeadLetterSink,
        denials: DenialMemory,
        metrics: ConsumerMetrics,
        retry: RetryPolicy | None = None,
        dedupe_window_events: int = 100_000,
        sleep: Sleep = asyncio.sleep,
        run_blocking: RunBlocking = _to_thread,
        subject_keys: SubjectKeys | None = None,
    ) -> None:
        """``subject_keys``: where personal fields sealed apart are opened; ``None`` (no key table) gives
        the handler every such field as ``WITHHELD``."""
        self.department = department
        self.consumer_group = consumer_group
        self.principal = principal
        self.registry = registry
        # By the ``keyfan-content`` each reads: the services read wire v2 and v1; the benchmark's twin, plaintext.
        self.decryptors = {decryptor.content: decryptor for decryptor in decryptors}
        self.handler = handler
        self.store = store
        self.audit = audit
        self.dead_letters = dead_letters
        self.denials = denials
        self.metrics = metrics
        self.retry = retry or DEFAULT_RETRY
        self.events = EventWindow(store, lambda p: _window_share(registry, p, dedupe_window_events))
        # Lowest offset that still exists per partition (the log start), learnt when the consumer seeks.
        self.log_start: dict[int, int] = {}
        self._sleep = sleep
        self._run_blocking = run_blocking
        self.subject_keys = subject_keys
        # Records waiting behind the current one (the agent sets this; none in unit tests by default).
        self.lookahead: Callable[[], Sequence[RawRecord]] = tuple
        self._interruption = Interruption()

    # -- lifecycle ------------------------------------------------------------------------------
    def interrupt(self) -> None:
        """Abandon the record in progress (rebalance or shutdown); ``process`` raises ``Interrupted``."""
        self._interruption.set()

    def resume(self) -> None:
        self._interruption.clear()
        self.events.invalidate()

    # -- the batch ------------------------------------------------------------------------------
    async def settle(self) -> None:
        """Wait for the acknowledgement of every audit record published so far: an outcome's position may
        reach the table only after its audit record is on the broker. An unreachable broker is retried
        without bound; a rebalance or shutdown raises ``Interrupted`` (the batch is then abandoned)."""
        attempt = 0
        while True:
            self._interruption.check()
            try:
                await self._interruption.race(self.audit.flush())
                return
            except PublishFailed as exc:
                attempt += 1
                delay = self.retry.delay(attempt)
                self.metrics.retry("publish_failed")
                log_event(
                    logger,
                    logging.WARNING,
                    "audit_flush_retry",
                    department=self.department,
                    attempt=attempt,
                    delay_seconds=round(delay, 3),
                    error=type(exc).__name__,
                )
                await self._interruption.race(self._sleep(delay))

    # -- the record -----------------------------------------------------------------------------
    def expected_offset(self, partition: int) -> int:
        """The next offset this partition must deliver: after its position, and not below its log start."""
        return max(self._slot(partition)[POSITION] + 1, self.log_start.get(partition, 0))

    async def process(self, record: RawRecord) -> Classification | Gap:
        """A final outcome for the next record of its partition; ``Gap`` if records before it are missing.

        Raises ``Interrupted`` if a rebalance or shutdown cut a retry short (the record stays unprocessed).
        """
        slot = self._slot(record.partition)  # nothing else moves this partition while we are on it
        expected = max(slot[POSITION] + 1, self.log_start.get(record.partition, 0))
        where = arrival(expected - 1, record.offset)
        if where is Arrival.GAP:
            return Gap(record.partition, expected, record.offset)
        if where is Arrival.REDELIVERED:
            return await self._redelivered(record)
        if record.offset > slot[POSITION] + 1:
            log_event(
                logger,
                logging.ERROR,
                "records_expired",
                department=self.department,
                partition=record.partition,
                first_offset=slot[POSITION] + 1,
                log_start=record.offset,
            )
        attempt = unexpected = 0
        while True:
            self._interruption.check()
            try:
                return await self._process_once(record, slot)
            except (KeyServiceUnavailable, PublishFailed) as exc:
                error: Exception = exc
                level = logging.WARNING
            except Interrupted:
                raise
            except Exception as exc:
                error, level = exc, logging.ERROR
                unexpected += 1
                if unexpected >= self.retry.max_unexpected_attempts:
                    return await self._give_up(record, exc)
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
            await self._interruption.race(self._sleep(delay))

    async def _process_once(self, record: RawRecord, slot: dict[str, Any]) -> Classification:
        metadata: RecordMetadata | None = None
        key_arns: tuple[str, ...] = ()
        try:
            metadata = RecordMetadata.from_headers(record.headers)
            decryptor = self.decryptors.get(metadata.content)
            if decryptor is None:
                raise CorruptMessage("unsupported_content", f"content {metadata.content!r} is not accepted")
            check_partition_owner(self.registry, metadata.department, record.partition)
            if not record.value:
                raise CorruptMessage("empty_value", "record has no value")
            key_arns = decryptor.key_arns(record.value)
            if metadata.key_arn not in key_arns:
                raise TamperedMessage("key_arn_mismatch", "key ARN header is not a key of the ciphertext")
            remembered = self.denials.lookup(key_arns)
            if remembered is not None:
                raise _RememberedDenial(
                    "denial remembered", key_arn=remembered.key_arn, principal=remembered.principal
                )
            binding = metadata.binding(record.topic)
            decrypted = decryptor.decrypt_cached(record.value, binding)
            if decrypted is None:  # a KMS call (or an SDK message): off the event loop
                decrypted = await self._interruption.race(
                    self._run_blocking(partial(decryptor.decrypt, record.value, binding))
                )
            check_context(metadata, record.topic, decrypted.encryption_context)
            body = open_body(decrypted.plaintext, metadata)
            data, verdict = body.data, PERSONAL_VERDICTS[Access.OPEN]
            if body.personal is not None:
                personal = await self._personal(binding, body.personal)
                data, verdict = personal.merged(metadata.department, data), PERSONAL_VERDICTS[personal.access]
            check_entity_routing(
                self.registry.get(metadata.department),
                entity_key_of(metadata.department, data, metadata.event_id),
                record.partition,
            )
            first = self.events.first_seen(metadata.event_id)
            if first is not None and first != (record.partition, record.offset):
                return await self._finish(record, slot, metadata, decrypted.key_arn, DUPLICATE_EVENT)
            new_state = self.handler.apply(slot[STATE], metadata, data)
        except AccessDenied as exc:
            return await self._denied(record, slot, metadata, key_arns, exc)
        except (CorruptMessage, InvalidEvent) as exc:
            key_arn = metadata.key_arn if metadata else (key_arns[0] if key_arns else None)
            return await self._dead_letter(record, slot, metadata, key_arn, classify(exc), exc)
        await self._audit(record, metadata, decrypted.key_arn, verdict, self.principal)
        self.events.remember(metadata.event_id, record.partition, record.offset)  # before the slot
        self.store[str(record.partition)] = advanced(slot, record.offset, verdict.outcome.value, new_state)
        self.metrics.outcome(verdict.outcome, verdict.reason)
        if logger.isEnabledFor(logging.DEBUG):  # the masked hint costs more than the rest of the line
            hint = self.handler.hint(metadata, data)
            where = {"partition": record.partition, "offset": record.offset, "event_id": metadata.event_id}
            log_event(logger, logging.DEBUG, "record_decrypted", **where, **hint)
        return verdict

    async def _personal(self, binding: Binding, sealed: SealedPersonal) -> Personal:
        """The record's personal fields: inline when the subject's key is cached, else from the key table
        in a thread (an outage there is retried like a KMS outage)."""
        keys = self.subject_keys
        if keys is None:
            return Personal(Access.WITHHELD)
        opened = keys.open_cached(binding, sealed)
        if opened is None:
            upcoming = [(binding.department, sealed), *self._upcoming_personal()]
            opened = await self._interruption.race(
                self._run_blocking(partial(_prefetch_then_open, keys, binding, sealed, upcoming))
            )
        return opened

    def _upcoming_personal(self) -> list[tuple[str, SealedPersonal]]:
        """The sealed personal fields of the records waiting behind this one, where their data keys are at
        hand (no KMS call here): their subjects' keys are loaded with this record's, in one table call.
        A record that does not open here is skipped; what is wrong with it is found in its turn."""
        found: list[tuple[str, SealedPersonal]] = []
        for record in self.lookahead():
            try:
                metadata = RecordMetadata.from_headers(record.headers)
                decryptor = self.decryptors.get(metadata.content)
                if decryptor is None or not record.value:
                    continue
                decrypted = decryptor.decrypt_cached(record.value, metadata.binding(record.topic))
                if decrypted is None:
                    continue
                body = open_body(decrypted.plaintext, metadata)
            except KeyfanError:
                continue
            if body.personal is not None:
                found.append((metadata.department, body.personal))
        return found

    # -- outcomes -------------------------------------------------------------------------------
    async def _redelivered(self, record: RawRecord) -> Classification:
        """Already has its outcome (a redelivery after a crash or rebalance): audited, not counted."""
        metadata = _metadata_or_none(record)
        await self._audit(
            record, metadata, metadata.key_arn if metadata else None, REDELIVERED, self.principal
        )
        self.metrics.redelivery()
        log_event(
            logger,
            logging.DEBUG,
            "record_redelivered",
            partition=record.partition,
            offset=record.offset,
            event_id=metadata.event_id if metadata else None,
        )
        return REDELIVERED

    async def _finish(
        self,
        record: RawRecord,
        slot: dict[str, Any],
        metadata: RecordMetadata | None,
        key_arn: str | None,
        verdict: Classification,
        principal: str | None = None,
    ) -> Classification:
        """Audit a final outcome that leaves the handler's state alone, then move the position past it."""
        await self._audit(record, metadata, key_arn, verdict, principal or self.principal)
        self.store[str(record.partition)] = advanced(slot, record.offset, verdict.outcome.value)
        self.metrics.outcome(verdict.outcome, verdict.reason)
        return verdict

    async def _denied(
        self,
        record: RawRecord,
        slot: dict[str, Any],
        metadata: RecordMetadata | None,
        key_arns: tuple[str, ...],
        exc: AccessDenied,
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
        await self._finish(record, slot, metadata, key_arn, verdict, principal)
        log_event(
            logger,
            logging.WARNING,
            "record_access_denied",
            **outcome_fields(self.department, record, metadata, key_arn, verdict),
            principal=principal,
        )
        return verdict

    async def _dead_letter(
        self,
        record: RawRecord,
        slot: dict[str, Any],
        metadata: RecordMetadata | None,
        key_arn: str | None,
        verdict: Classification,
        exc: BaseException,
        level: int = logging.WARNING,
    ) -> Classification:
        await self.dead_letters.publish(record, verdict.reason)
        await self._finish(record, slot, metadata, key_arn, verdict)
        log_event(
            logger,
            level,
            "record_dead_lettered",
            **outcome_fields(self.department, record, metadata, key_arn, verdict),
            error=type(exc).__name__,
        )
        return verdict

    async def _give_up(self, record: RawRecord, exc: Exception) -> Classification:
        """An unexpected error survived its bounded retries: dead-letter the record with its type."""
        verdict = Classification(Outcome.DEAD_LETTER, unexpected_reason(exc))
        metadata = _metadata_or_none(record)
        key_arn = metadata.key_arn if metadata else None
        while True:  # the DLQ itself may be unreachable: that is an outage, retried without bound
            self._interruption.check()
            try:
                return await self._dead_letter(
                    record, self._slot(record.partition), metadata, key_arn, verdict, exc, logging.ERROR
                )
            except PublishFailed:
                self.metrics.retry("publish_failed")
                await self._interruption.race(self._sleep(self.retry.max_seconds))

    async def _audit(
        self,
        record: RawRecord,
        metadata: RecordMetadata | None,
        key_arn: str | None,
        verdict: Classification,
        principal: str | None,
    ) -> None:
        await self.audit.publish(
            AuditRecord.of_outcome(
                self.department, self.consumer_group, record, metadata, key_arn, verdict, principal
            )
        )

    # -- plumbing -------------------------------------------------------------------------------
    def _slot(self, partition: int) -> dict[str, Any]:
        slot = self.store.get(str(partition))
        if slot is None:
            return new_slot(self.handler.initial_state())
        return {POSITION: slot[POSITION], STATE: slot[STATE], OUTCOMES: slot.get(OUTCOMES, {})}


def _prefetch_then_open(
    keys: SubjectKeys, binding: Binding, sealed: SealedPersonal, upcoming: list[tuple[str, SealedPersonal]]
) -> Personal:
    if len(upcoming) > 1:
        keys.prefetch(upcoming)
    return keys.open(binding, sealed)


def _metadata_or_none(record: RawRecord) -> RecordMetadata | None:
    try:
        return RecordMetadata.from_headers(record.headers)
    except CorruptMessage:
        return None


def _window_share(registry: DepartmentRegistry, partition: int, window_events: int) -> int:
    owner = registry.owner_of(partition)
    return capacity_per_partition(window_events, len(owner.partitions) if owner else 1)
