"""The consumer's counters: prometheus-client for ``/metrics``, and the same figures as a plain dict for
``/state`` and for tests (reading prometheus samples back is clumsy)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from keyfan.consumer.outcomes import Outcome


class _LiveCollector(Collector):
    """KMS calls and remembered denials are owned by other objects; read them at scrape time."""

    def __init__(
        self,
        department: str,
        kms_calls: Callable[[], Mapping[str, int]],
        denied_keys: Callable[[], int],
    ) -> None:
        self._department = department
        self._kms_calls = kms_calls
        self._denied_keys = denied_keys

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        calls = CounterMetricFamily(
            "keyfan_consumer_kms_calls",
            "KMS API calls made by this consumer",
            labels=["department", "operation"],
        )
        for operation, count in sorted(self._kms_calls().items()):
            calls.add_metric([self._department, operation], count)
        yield calls
        denied = GaugeMetricFamily(
            "keyfan_consumer_denied_keys", "KMS keys currently remembered as denied", labels=["department"]
        )
        denied.add_metric([self._department], self._denied_keys())
        yield denied


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

    def watch(self, kms_calls: Callable[[], Mapping[str, int]], denied_keys: Callable[[], int]) -> None:
        """Expose figures owned elsewhere (the decryptor's KMS observer, the denial memory)."""
        self._kms_calls = kms_calls
        self.registry.register(_LiveCollector(self.department, kms_calls, denied_keys))

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
            "reasons": dict(sorted(self.reasons.items())),
        }
