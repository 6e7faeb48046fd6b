"""``python -m keyfan_tools.bench.workers.bare``: a bare Faust agent that only counts the records of a topic.

It is the framework's own ceiling on this broker: the consumer service's Faust settings that matter to a
drain (broker, group, session timeout, ``earliest``, raw bytes key and value, ``stream.events()``), with no
pipeline, no table and no audit. Settings come from the same ``KEYFAN_*`` variables as a consumer's.

``/state`` says how many records it has handled and when it saw the first and the last one (wall clock,
taken in the agent itself), so the benchmark measures the drain without its start-up and group join.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import faust
from faust.web import Request, Response, View

from keyfan.consumer.app import source_topic
from keyfan.kafka_auth import broker_credentials
from keyfan.logs import logging_config
from keyfan.settings import ConsumerSettings
from keyfan.worker import run_worker
from keyfan_tools.bench.paths.consumer import READER


@dataclass
class Tally:
    """What the agent has seen: records, and the wall time of the first and of the last one."""

    handled: int = 0
    first_at: float | None = None
    last_at: float | None = None

    def saw(self, now: float) -> None:
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        self.handled += 1

    def state(self) -> dict[str, Any]:
        return {"counters": {"handled": self.handled}, "first_at": self.first_at, "last_at": self.last_at}


def create_bare_app(settings: ConsumerSettings, *, topic_partitions: int | None = None) -> faust.App:
    """A ``faust.App`` configured as ``keyfan.consumer.app.create_consumer_app`` configures the consumer's
    (same group semantics, session timeout, offset reset, serializers), with one counting agent."""
    tally = Tally()
    app = faust.App(
        settings.consumer_group,
        broker=settings.faust_broker,
        store="memory://",
        autodiscover=False,
        topic_partitions=topic_partitions or settings.registry().partition_count,
        topic_replication_factor=settings.replication_factor,
        broker_credentials=broker_credentials(settings, None),
        topic_disable_leader=True,
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        consumer_auto_offset_reset="earliest",
        web_port=settings.web_port,
        datadir=str(settings.data_dir / settings.consumer_group),
        table_standby_replicas=0,
    )
    source = source_topic(app, settings)  # the consumer's own declaration of the shared topic

    @app.agent(source, name="bare-records")
    async def records(stream: faust.StreamT[bytes]) -> None:
        async for _event in stream.events():
            tally.saw(time.time())

    async def state_view(view: View, request: Request) -> Response:
        return view.json(tally.state())

    app.page("/state")(state_view)
    app.tally = tally  # type: ignore[attr-defined]  # for tests
    return app


def main() -> None:
    settings = ConsumerSettings.for_app(READER)  # the measured consumer's settings
    run_worker(
        create_bare_app(settings),
        data_dir=settings.data_dir / settings.consumer_group,
        loglevel=settings.log_level,
        logging_config=logging_config("faust-bare", settings.log_level),
    )


if __name__ == "__main__":
    main()
