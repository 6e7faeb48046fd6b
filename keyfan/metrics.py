"""What both services share for Prometheus: serving a registry at ``/metrics`` from a Faust web server,
and exporting a ``KmsObserver``'s calls at scrape time.

Each service builds its counters on its own ``CollectorRegistry`` (not the global default), so tests and
several apps in one process never collide. Labels are low-cardinality only: department, partition,
reason, operation. Never an event id, never a value. The owner's counters are in
``keyfan.owner.metrics``, the consumer's in ``keyfan.consumer.metrics``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import faust
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

__all__ = ["KmsCallsCollector", "expose_metrics"]


def expose_metrics(app: faust.App, registry: CollectorRegistry, path: str = "/metrics") -> None:
    """Serve ``registry`` in the Prometheus text format at ``path`` on ``app``'s web server."""

    async def metrics(view: View, request: Request) -> Response:
        return view.bytes(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    metrics.__name__ = "keyfan_metrics"
    app.page(path)(metrics)


class KmsCallsCollector(Collector):
    """Exports KMS call counts per operation, read at scrape time (no double bookkeeping).

    ``calls`` returns the counts of the process's ``KmsObserver``; ``labels`` are constant labels put
    before ``operation`` (a consumer adds its ``department``).
    """

    def __init__(
        self,
        calls: Callable[[], Mapping[str, int]],
        *,
        name: str = "keyfan_kms_calls",
        documentation: str = "KMS API calls made, by operation",
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self._calls = calls
        self._name = name
        self._documentation = documentation
        self._labels = dict(labels or {})

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self._name, self._documentation, labels=[*self._labels, "operation"])
        for operation, count in sorted(self._calls().items()):
            family.add_metric([*self._labels.values(), operation], count)
        yield family
