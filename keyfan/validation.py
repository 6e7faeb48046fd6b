"""Pure validation of an incoming message body into a ``DepartmentEvent``.

Every failure is an ``InvalidEvent`` whose ``reason`` becomes the DLQ reason attribute. Messages never
quote payload values: pydantic's ``input`` is dropped from the error text.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from keyfan.departments import DepartmentRegistry
from keyfan.exceptions import InvalidEvent
from keyfan.models import PAYLOAD_MODELS, DepartmentEvent

REASON_TOO_LARGE = "too_large"
REASON_INVALID_JSON = "invalid_json"
REASON_SCHEMA = "schema"
REASON_UNKNOWN_DEPARTMENT = "unknown_department"
REASON_PAYLOAD = "invalid_payload"

DLQ_REASONS = (
    REASON_TOO_LARGE,
    REASON_INVALID_JSON,
    REASON_SCHEMA,
    REASON_UNKNOWN_DEPARTMENT,
    REASON_PAYLOAD,
)


def _describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())


def parse_event(body: str | bytes, registry: DepartmentRegistry, *, max_bytes: int) -> DepartmentEvent:
    """Validate one SQS message body against the contract and the registry."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if len(raw) > max_bytes:
        raise InvalidEvent(REASON_TOO_LARGE, f"body is {len(raw)} bytes, over the {max_bytes}-byte maximum")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent(REASON_INVALID_JSON, f"body is not JSON: {exc.__class__.__name__}") from None
    try:
        event = DepartmentEvent.model_validate(document)
    except ValidationError as exc:
        raise InvalidEvent(REASON_SCHEMA, _describe(exc)) from None
    if event.department not in registry:
        raise InvalidEvent(REASON_UNKNOWN_DEPARTMENT, f"unknown department {event.department!r}")
    model = PAYLOAD_MODELS.get(event.department)
    if model is not None:
        try:
            model.model_validate(event.data)
        except ValidationError as exc:
            raise InvalidEvent(REASON_PAYLOAD, f"{event.department} payload: {_describe(exc)}") from None
    return event
