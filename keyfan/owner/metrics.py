"""The owner service's Prometheus counters (served at ``/metrics`` by ``keyfan.metrics.expose_metrics``)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from keyfan.crypto import KmsObserver
from keyfan.metrics import KmsCallsCollector


class OwnerMetrics:
    """The owner service's counters. At every moment:
    ``received = published + dead_lettered + released + in_flight`` (released: left in SQS for a retry).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "keyfan_owner_received", "SQS messages received (redeliveries included)", registry=r
        )
        self.redelivered = Counter(
            "keyfan_owner_redelivered", "Received messages that SQS had delivered before", registry=r
        )
        self.published = Counter(
            "keyfan_owner_published",
            "Records acknowledged by the broker, then deleted from SQS",
            ["department", "partition"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "keyfan_owner_dead_lettered", "Messages moved to the DLQ, by reason", ["reason"], registry=r
        )
        self.released = Counter(
            "keyfan_owner_released",
            "Messages left in SQS to be retried after a backoff, by cause",
            ["cause"],
            registry=r,
        )
        self.in_flight = Gauge("keyfan_owner_in_flight", "Messages being processed now", registry=r)
        self.delete_failures = Counter(
            "keyfan_owner_delete_failures",
            "Published messages whose SQS delete failed (they will be redelivered: a duplicate)",
            registry=r,
        )
        self.poll_errors = Counter("keyfan_owner_poll_errors", "Failed SQS receive calls", registry=r)
        self.receive_latency = Histogram(
            "keyfan_owner_receive_seconds",
            "SQS ReceiveMessage call duration (long polls included)",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0),
            registry=r,
        )
        self.latency = Histogram(
            "keyfan_owner_message_seconds",
            "Time from receive to outcome, per message",
            ["outcome"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )

    def watch_kms(self, observer: KmsObserver) -> None:
        """Expose the encryptor's KMS calls as ``keyfan_kms_calls_total{operation}``."""
        self.registry.register(KmsCallsCollector(lambda: dict(observer.calls)))

    def _sum(self, name: str) -> float:
        total = 0.0
        for metric in self.registry.collect():
            for sample in metric.samples:
                if sample.name == name:
                    total += sample.value
        return total

    def snapshot(self) -> dict[str, Any]:
        """Totals for the accounting identity and for logs at shutdown."""
        return {
            "received": int(self._sum("keyfan_owner_received_total")),
            "published": int(self._sum("keyfan_owner_published_total")),
            "dead_lettered": int(self._sum("keyfan_owner_dead_lettered_total")),
            "released": int(self._sum("keyfan_owner_released_total")),
            "in_flight": int(self._sum("keyfan_owner_in_flight")),
            "kms_calls": int(self._sum("keyfan_kms_calls_total")),
        }
