"""Pure validation of an incoming message body into a ``DepartmentEvent``.

Every failure is an ``InvalidEvent`` whose ``reason`` becomes the DLQ reason attribute, whatever the body:
foreign errors of the parser and of pydantic (too deep, integers too long, dates out of range) are
translated here, where they enter. Messages never quote payload values: pydantic's ``input`` is dropped
from the error text, and a foreign error is named by its type only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from keyfan.departments import DepartmentRegistry
from keyfan.exceptions import InvalidEvent
from keyfan.models import PAYLOAD_MODELS, DepartmentEvent

ModelT = TypeVar("ModelT", bound=BaseModel)

REASON_TOO_LARGE = "too_large"
REASON_INVALID_JSON = "invalid_json"
REASON_SCHEMA = "schema"
REASON_UNKNOWN_DEPARTMENT = "unknown_department"
REASON_PAYLOAD = "invalid_payload"

# Deepest nesting of arrays and objects a body may have (the event object itself is level 1). Far above
# any payload model's needs, and far below what ``json`` and pydantic's serializer recurse through:
# deeper data would validate, then fail in ``envelope.seal``.
MAX_DEPTH = 64

DLQ_REASONS = (
    REASON_TOO_LARGE,
    REASON_INVALID_JSON,
    REASON_SCHEMA,
    REASON_UNKNOWN_DEPARTMENT,
    REASON_PAYLOAD,
)


def _describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())


def _depth_exceeds(document: object, limit: int) -> bool:
    """Whether arrays and objects nest deeper than ``limit`` levels (iterative: no recursion limit)."""
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Iterable[object] = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _validate(model: type[ModelT], document: object, reason: str, prefix: str = "") -> ModelT:
    """``model.model_validate``, with every failure (pydantic's or a foreign one) as ``InvalidEvent``."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise InvalidEvent(reason, prefix + _describe(exc)) from None
    except (RecursionError, OverflowError, ValueError) as exc:
        # Raised by pydantic or a validator rather than reported: e.g. a timestamp at the edge of the
        # calendar that overflows when moved to UTC, or nesting past pydantic's own recursion guard.
        raise InvalidEvent(reason, f"{prefix}validation failed: {exc.__class__.__name__}") from None


def parse_event(body: str | bytes, registry: DepartmentRegistry, *, max_bytes: int) -> DepartmentEvent:
    """Validate one SQS message body against the contract and the registry."""
    try:
        raw = body.encode("utf-8") if isinstance(body, str) else body
    except UnicodeEncodeError:  # a str with lone surrogates: no JSON text encodes to it
        raise InvalidEvent(REASON_INVALID_JSON, "body is not UTF-8 text") from None
    if len(raw) > max_bytes:
        raise InvalidEvent(REASON_TOO_LARGE, f"body is {len(raw)} bytes, over the {max_bytes}-byte maximum")
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        # ValueError: not UTF-8, not JSON, or an integer past Python's int-string conversion limit;
        # RecursionError: nested deeper than the parser recurses.
        raise InvalidEvent(REASON_INVALID_JSON, f"body is not JSON: {exc.__class__.__name__}") from None
    if _depth_exceeds(document, MAX_DEPTH):
        raise InvalidEvent(REASON_SCHEMA, f"body nests deeper than {MAX_DEPTH} levels")
    event = _validate(DepartmentEvent, document, REASON_SCHEMA)
    if event.department not in registry:
        raise InvalidEvent(REASON_UNKNOWN_DEPARTMENT, f"unknown department {event.department!r}")
    model = PAYLOAD_MODELS.get(event.department)
    if model is not None:
        _validate(model, event.data, REASON_PAYLOAD, f"{event.department} payload: ")
    return event
