"""Which payload fields are personal data, and a payload split into those and the rest. Pure, no I/O.

Crypto-shredding: the owner seals an event's personal fields under the key of its *subject* (the person the
event is about, ``SUBJECT_FIELD`` of the payload model) and the rest under the department's key, so that
deleting the subject's key makes its personal fields unreadable in every record, past and future, while
everything else stays readable. This module is the contract half: the tags on the event models
(``keyfan.models.PERSONAL``) read once per model, the split the owner seals and the merge a consumer hands
its handler. Nothing here encrypts (``keyfan.crypto.fields`` does); the key hierarchy and the wire are in
docs/architecture.md ("Crypto-shredding").

A department without a typed payload model (a new ``hr`` in the registry only) has no tagged fields: its
whole payload stays under the department key, as today.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, TypeVar

from pydantic import BaseModel, create_model

from keyfan.models import PAYLOAD_MODELS, PersonalData

# What a handler receives in place of a personal field whose subject was forgotten: a string, so that
# masking helpers and JSON logs take it as they take the value it replaces.
SHREDDED: Final = "[shredded]"
# In place of a personal field this consumer may not read (IAM lets it read the record, not the subject key).
WITHHELD: Final = "[withheld]"
UNREADABLE: Final = frozenset({SHREDDED, WITHHELD})

Model = TypeVar("Model", bound=BaseModel)


def is_marker(value: object) -> bool:
    """Whether a field's value is ``SHREDDED`` or ``WITHHELD`` rather than its own."""
    return isinstance(value, str) and value in UNREADABLE


def personal_fields(department: str) -> frozenset[str]:
    """The top-level payload fields tagged as personal data in the department's model."""
    model = PAYLOAD_MODELS.get(department)
    return frozenset() if model is None else tagged_fields(model)


@cache
def tagged_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields of ``model`` tagged ``PERSONAL``."""
    return frozenset(
        name
        for name, field in model.model_fields.items()
        if any(isinstance(mark, PersonalData) for mark in field.metadata)
    )


def readable_model(model: type[Model], data: Mapping[str, Any]) -> type[Model]:
    """The model to validate ``data`` with: ``model`` itself, or, where personal fields arrive as
    ``SHREDDED`` or ``WITHHELD``, a subclass that takes those fields as the marker strings (every other
    field is checked as strictly as before, so aggregates over them go on)."""
    unreadable = frozenset(name for name in tagged_fields(model) if is_marker(data.get(name)))
    return _with_markers(model, unreadable) if unreadable else model


@cache
def _with_markers(model: type[Model], names: frozenset[str]) -> type[Model]:
    fields: dict[str, Any] = {name: (str, ...) for name in sorted(names)}
    return create_model(f"{model.__name__}WithUnreadable", __base__=model, **fields)


def subject_of(department: str, data: Mapping[str, Any]) -> str | None:
    """The subject's id in a payload (None: the department has no personal fields, or no subject given)."""
    model = PAYLOAD_MODELS.get(department)
    if model is None or not personal_fields(department):
        return None
    value = data.get(model.SUBJECT_FIELD)
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Split:
    """A payload in two parts: ``personal`` (sealed under the subject's key) and ``rest`` (the department's)."""

    subject: str | None
    personal: dict[str, Any]
    rest: dict[str, Any]


def split(department: str, data: Mapping[str, Any]) -> Split:
    """Separate the tagged fields from the rest. Without a subject nothing is separated: there is no key to
    seal personal fields under, so they stay under the department key (the validator requires the subject
    field of a typed model, so that happens only for untyped departments)."""
    subject = subject_of(department, data)
    tagged = personal_fields(department) if subject is not None else frozenset()
    return Split(
        subject=subject,
        personal={k: v for k, v in data.items() if k in tagged},
        rest={k: v for k, v in data.items() if k not in tagged},
    )


def merge(
    department: str,
    rest: Mapping[str, Any],
    personal: Mapping[str, Any] | None,
    marker: str = SHREDDED,
) -> dict[str, Any]:
    """The payload again. ``personal=None`` means the fields cannot be read (the subject's key is gone, or
    this reader may not have it): each tagged field of the model reads as ``marker``, and every other field
    is the record's own."""
    merged = dict(rest)
    if personal is None:
        merged.update({name: marker for name in sorted(personal_fields(department))})
    else:
        merged.update(personal)
    return merged
