"""The generator Lambda: generate department events and send them to the owner's SQS queue.

Powertools for logs (JSON, correlation id = the request id), metrics (EMF, one ``events`` metric per
department) and tracing; the input is parsed with a pydantic model. Dependencies (the SQS adapter and the
registry) are built lazily on first use, never at import, and ``make_handler`` takes a factory for them so
tests run this very handler with their own. ``run_locally`` runs it outside Lambda: the ``keyfan generate``
command finds it through the ``keyfan.generators`` entry point (``keyfan.plugins``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from keyfan.aws import session_for
from keyfan.departments import DepartmentRegistry
from keyfan.exceptions import ConfigError
from keyfan.generation import generate_events, to_message_body
from keyfan.settings import GeneratorSettings
from keyfan.sqs import ATTR_CORRELATION_ID, ATTR_DEPARTMENT, OutgoingMessage, SqsQueue
from lambda_generator.context import LocalLambdaContext

SERVICE = "keyfan-generator"
MAX_COUNT = 100_000

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="Keyfan", service=SERVICE)
tracer = Tracer(service=SERVICE)


class GenerateRequest(BaseModel):
    """The invocation event."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=0, le=MAX_COUNT)
    departments: list[str] | None = Field(default=None, min_length=1)
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Dependencies:
    queue: SqsQueue
    registry: DepartmentRegistry


def default_dependencies(settings: GeneratorSettings | None = None) -> Dependencies:
    """Real dependencies from the environment, under the generator's own role."""
    settings = settings or GeneratorSettings()  # type: ignore[call-arg]  # queue_url comes from the env
    session = session_for(settings)
    return Dependencies(
        queue=SqsQueue(session.client("sqs"), settings.queue_url), registry=settings.registry()
    )


def generate_and_send(request: GenerateRequest, deps: Dependencies, correlation_id: str) -> dict[str, Any]:
    """Generate, send in batches of 10, and count per department what was sent and what failed."""
    departments = request.departments or list(deps.registry.names)
    unknown = [name for name in departments if name not in deps.registry]
    if unknown:
        raise ConfigError(f"unknown department(s) {unknown} (known: {', '.join(deps.registry.names)})")
    events = generate_events(request.count, departments, request.seed)
    messages = [
        OutgoingMessage(
            body=to_message_body(event),
            attributes={ATTR_DEPARTMENT: event.department, ATTR_CORRELATION_ID: correlation_id},
        )
        for event in events
    ]
    with tracer.provider.in_subsegment("## send_batch") as subsegment:
        result = deps.queue.send_batch(messages)
        subsegment.put_annotation("failed", str(len(result.failed)))
    failed_by_department = Counter(events[entry.index].department for entry in result.failed)
    sent_by_department = Counter(event.department for event in events) - failed_by_department
    for department in departments:
        # One EMF blob per department so that ``department`` is a dimension of ``events``.
        with single_metric(
            name="events",
            unit=MetricUnit.Count,
            value=sent_by_department[department],
            namespace="Keyfan",
            default_dimensions={"service": SERVICE},
        ) as metric:
            metric.add_dimension(name="department", value=department)
    metrics.add_metric(name="events_failed", unit=MetricUnit.Count, value=len(result.failed))
    metrics.add_metric(name="sqs_retried_entries", unit=MetricUnit.Count, value=result.retried_entries)
    # One line per distinct failure (a missing permission fails every entry the same way), with indexes
    # and error codes only: the body is the payload.
    by_failure: dict[tuple[str, bool], list[int]] = {}
    for entry in result.failed:
        by_failure.setdefault((entry.code, entry.sender_fault), []).append(entry.index)
    for (code, sender_fault), indexes in by_failure.items():
        logger.error(
            "entries not sent",
            extra={
                "code": code,
                "sender_fault": sender_fault,
                "count": len(indexes),
                "first_indexes": indexes[:5],
            },
        )
    summary = {
        "requested": request.count,
        "sent": result.sent,
        "failed": len(result.failed),
        "by_department": {department: sent_by_department[department] for department in departments},
        "failed_by_department": {d: n for d, n in failed_by_department.items() if n},
        "retried_entries": result.retried_entries,
        "sqs_calls": result.calls,
        "seed": request.seed,
    }
    logger.info("events sent", extra=summary)
    return summary


def make_handler(
    dependencies: Callable[[], Dependencies] = default_dependencies,
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """A Lambda handler whose dependencies come from ``dependencies()``, called once, on first use."""
    lazy = functools.cache(dependencies)

    @logger.inject_lambda_context(log_event=False, clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        request = parse(event=event, model=GenerateRequest)
        logger.set_correlation_id(context.aws_request_id)
        tracer.put_annotation(key="count", value=str(request.count))
        return generate_and_send(request, lazy(), context.aws_request_id)

    return handler


# The Lambda entry point (``lambda_generator.handler.lambda_handler``); builds nothing until invoked.
lambda_handler = make_handler()


def run_locally(event: Mapping[str, Any], settings: GeneratorSettings) -> dict[str, Any]:
    """This handler outside Lambda, under ``settings`` (queue and role), with a Lambda-like context.

    stdout stays the caller's (``keyfan generate`` prints the result there): Powertools' JSON logs and EMF
    metrics go to stderr.
    """
    cast(logging.StreamHandler[Any], logger.logger_handler).setStream(sys.stderr)
    handler = make_handler(lambda: default_dependencies(settings))
    with contextlib.redirect_stdout(sys.stderr):
        return handler(dict(event), LocalLambdaContext())  # type: ignore[arg-type]
