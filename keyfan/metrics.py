"""Prometheus counters, and the helper that serves a registry at ``/metrics`` from a Faust web server.

Each service builds its counters on its own ``CollectorRegistry`` (not the global default), so tests and
several apps in one process never collide. Labels are low-cardinality only: department, partition,
reason, operation. Never an event id, never a value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from keyfan.crypto import KmsObserver


def expose_metrics(app: faust.App, registry: CollectorRegistry, path: str = "/metrics") -> None:
    """Serve ``registry`` in the Prometheus text format at ``path`` on ``app``'s web server."""

    async def metrics(view: View, request: Request) -> Response:
        return view.bytes(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    metrics.__name__ = "keyfan_metrics"
    app.page(path)(metrics)


class KmsCallsCollector(Collector):
    """Exports a ``KmsObserver``'s per-operation call counts at scrape time (no double bookkeeping)."""

    def __init__(self, observer: KmsObserver, prefix: str = "keyfan") -> None:
        self._observer = observer
        self._name = f"{prefix}_kms_calls"

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self._name, "KMS API calls made, by operation", labels=["operation"])
        for operation, count in sorted(dict(self._observer.calls).items()):
            family.add_metric([operation], count)
        yield family


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
        self.registry.register(KmsCallsCollector(observer))

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
