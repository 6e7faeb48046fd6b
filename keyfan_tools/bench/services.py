"""Peak resident memory of the real services: ``python -m owner_service``, ``sales_consumer`` and
``finance_consumer`` as subprocesses (``keyfan_tools.local.services``), each under its own identity, with their
default settings (wire v2, data-key cache on), fed through SQS like production.

VmHWM is read from ``/proc/<pid>/status`` while the process is still alive, after every record has reached
its outcome. KMS calls come from the services' own endpoints (owner ``/metrics``, consumer ``/state``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from keyfan_tools.bench.context import BenchContext, BenchError
from keyfan_tools.bench.host import status_kb
from keyfan_tools.bench.paths.broker import create_topics
from keyfan_tools.bench.paths.queues import fill_queue
from keyfan_tools.bench.payloads import sized_events
from keyfan_tools.bench.samples import MemorySample
from keyfan_tools.local.services import ServiceProcess, start_service

CONSUMERS = ("sales", "finance")
DEADLINE_SECONDS = 180.0


def owner_figures(metrics_text: str) -> tuple[int, int]:
    """(published, KMS calls) from the owner's Prometheus text."""
    published = calls = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "keyfan_owner_published_total":
                published += sample.value
            elif sample.name == "keyfan_kms_calls_total":
                calls += sample.value
    return int(published), int(calls)


def consumer_outcomes(state: dict[str, Any]) -> dict[str, int]:
    counters = state.get("counters", {})
    return {k: int(counters.get(k, 0)) for k in ("decrypted", "access_denied", "dead_lettered")}


def _json(service: ServiceProcess, path: str) -> dict[str, Any]:
    try:
        return dict(service.get_json(path, timeout=3))
    except (OSError, ValueError):
        return {}


def measure_services(
    ctx: BenchContext, records: int, size: int, progress: Callable[[str], None]
) -> list[MemorySample]:
    """Run the three services on fresh topics until each has handled ``records`` events; their peak RSS."""
    suffix = uuid.uuid4().hex[:6]
    topics = {"events": f"keyfan.bench.rss.{suffix}", "audit": f"keyfan.bench.rss.audit.{suffix}"}
    topics["dlq"] = f"keyfan.bench.rss.dlq.{suffix}"
    asyncio.run(
        create_topics(
            ctx.bootstrap_servers,
            {topics["events"]: ctx.registry.partition_count, topics["audit"]: 1, topics["dlq"]: 1},
        )
    )
    env = {
        "KEYFAN_TOPIC": topics["events"],
        "KEYFAN_AUDIT_TOPIC": topics["audit"],
        "KEYFAN_DLQ_TOPIC": topics["dlq"],
        "KEYFAN_LOG_LEVEL": "WARNING",
    }
    started: dict[str, ServiceProcess] = {}
    try:
        started["owner_service"] = start_service(
            ctx.stack, module="owner_service", identity="owner", name=f"bench-owner-{suffix}", extra_env=env
        )
        for department in CONSUMERS:
            started[f"{department}_consumer"] = start_service(
                ctx.stack,
                module=f"{department}_consumer",
                identity=department,
                name=f"bench-{department}-{suffix}",
                extra_env={**env, "KEYFAN_GROUP_ID": f"keyfan-bench-{department}-{suffix}"},
            )
        progress(f"real services started: {', '.join(f'{n} pid {s.pid}' for n, s in started.items())}")
        events = sized_events(records, ctx.registry.names, size, 4242)
        began = time.monotonic()
        fill_queue(ctx.queue("generator"), events)
        deadline = began + DEADLINE_SECONDS
        consumers = {name: s for name, s in started.items() if name.endswith("_consumer")}
        while True:
            states = {name: _json(s, "/state") for name, s in consumers.items()}
            done = all(sum(consumer_outcomes(st).values()) >= records for st in states.values())
            if done:
                break
            for name, service in started.items():
                if not service.running():
                    raise BenchError(f"{name} exited during the memory run:\n{service.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(
                    f"services did not handle {records} records in {DEADLINE_SECONDS:.0f}s: {states}"
                )
            time.sleep(0.25)
        seconds = time.monotonic() - began
        published, owner_calls = owner_figures(started["owner_service"].get("/metrics"))
        found = [
            MemorySample(
                process="owner_service",
                pid=started["owner_service"].pid,
                vmhwm_kb=status_kb(started["owner_service"].pid, "VmHWM"),
                vmrss_kb=status_kb(started["owner_service"].pid, "VmRSS"),
                records=published,
                kms_calls=owner_calls,
                seconds=seconds,
            )
        ]
        for name, service in consumers.items():
            state = states[name]
            found.append(
                MemorySample(
                    process=name,
                    pid=service.pid,
                    vmhwm_kb=status_kb(service.pid, "VmHWM"),
                    vmrss_kb=status_kb(service.pid, "VmRSS"),
                    records=sum(consumer_outcomes(state).values()),
                    kms_calls=int(state.get("counters", {}).get("kms_calls", 0)),
                    outcomes=consumer_outcomes(state),
                    seconds=seconds,
                )
            )
        return found
    finally:
        for service in started.values():
            service.stop()
