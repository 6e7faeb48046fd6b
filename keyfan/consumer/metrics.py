"""The consumer's counters: prometheus-client for ``/metrics``, and the same figures as a plain dict for
``/state`` and for tests (reading prometheus samples back is clumsy)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import Counter as PromCounter

from keyfan.consumer.outcomes import Outcome
from keyfan.metrics import KmsCallsCollector


class ConsumerMetrics:
    """Outcome, retry and redelivery counters of one department consumer."""

    def __init__(self, department: str, registry: CollectorRegistry | None = None) -> None:
        self.department = department
        self.registry = registry or CollectorRegistry()
        self._records = PromCounter(
            "keyfan_consumer_records",
            "Records that reached a final outcome",
            ["department", "outcome", "reason"],
            registry=self.registry,
        )
        self._retries = PromCounter(
            "keyfan_consumer_retries",
            "In-place retries of a record (KMS or broker unavailable)",
            ["department", "reason"],
            registry=self.registry,
        )
        self._duplicates = PromCounter(
            "keyfan_consumer_redelivered",
            "Records delivered again at or below the partition's position (already have an outcome)",
            ["department"],
            registry=self.registry,
        )
        self.outcomes: Counter[str] = Counter({o.value: 0 for o in Outcome if o.final})
        self.reasons: Counter[str] = Counter()
        self.retries = 0
        self.redelivered = 0
        self._kms_calls: Callable[[], Mapping[str, int]] = dict
        self._key_store_calls: Callable[[], Mapping[str, int]] = dict

    def watch(self, kms_calls: Callable[[], Mapping[str, int]], denied_keys: Callable[[], int]) -> None:
        """Expose figures owned elsewhere (the decryptor's KMS observer, the denial memory), read at
        scrape time."""
        self._kms_calls = kms_calls
        self.registry.register(
            KmsCallsCollector(
                kms_calls,
                name="keyfan_consumer_kms_calls",
                documentation="KMS API calls made by this consumer",
                labels={"department": self.department},
            )
        )
        Gauge(
            "keyfan_consumer_denied_keys",
            "KMS keys currently remembered as denied",
            ["department"],
            registry=self.registry,
        ).labels(self.department).set_function(denied_keys)

    def watch_key_store(self, calls: Callable[[], Mapping[str, int]]) -> None:
        """Expose the subject-key table's calls (``SubjectKeyStore.table_calls``), read at scrape time."""
        self._key_store_calls = calls
        self.registry.register(
            KmsCallsCollector(
                calls,
                name="keyfan_consumer_key_store_calls",
                documentation="Subject-key table (DynamoDB) calls made by this consumer",
                labels={"department": self.department},
            )
        )

    def outcome(self, outcome: Outcome, reason: str) -> None:
        self._records.labels(self.department, outcome.value, reason).inc()
        self.outcomes[outcome.value] += 1
        self.reasons[f"{outcome.value}:{reason}"] += 1

    def retry(self, reason: str) -> None:
        self._retries.labels(self.department, reason).inc()
        self.retries += 1

    def redelivery(self) -> None:
        self._duplicates.labels(self.department).inc()
        self.redelivered += 1

    @property
    def kms_calls(self) -> int:
        return sum(self._kms_calls().values())

    def snapshot(self) -> dict[str, object]:
        return {
            "decrypted": self.outcomes[Outcome.DECRYPTED.value],
            "access_denied": self.outcomes[Outcome.ACCESS_DENIED.value],
            "dead_lettered": self.outcomes[Outcome.DEAD_LETTER.value],
            "duplicate_events": self.outcomes[Outcome.DUPLICATE.value],
            "retries": self.retries,
            "redelivered": self.redelivered,
            "kms_calls": self.kms_calls,
            "key_store_calls": sum(self._key_store_calls().values()),
            "reasons": dict(sorted(self.reasons.items())),
        }
