"""Which payload fields are personal data, and a payload split into those and the rest. Pure, no I/O.

Crypto-shredding (issue 12, started): the owner is to seal an event's personal fields under the key of its
*subject* (the person the event is about, ``SUBJECT_FIELD`` of the payload model) and the rest under the
department's session key, so that deleting the subject's key makes its personal fields unreadable in every
record, past and future, while everything else stays readable. This module is the contract half: the tags
on the event models (``keyfan.models.PERSONAL``) read once per model, and the split and merge the two
seals will need. Nothing here encrypts; the key hierarchy and the wire are in docs/architecture.md
("Crypto-shredding").

A department without a typed payload model (a new ``hr`` in the registry only) has no tagged fields: its
whole payload stays under the department key, as today.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from keyfan.models import PAYLOAD_MODELS, PersonalData

# What a handler receives in place of a personal field whose subject was forgotten: a string, so that
# masking helpers and JSON logs take it as they take the value it replaces.
SHREDDED: Final = "[shredded]"


@cache
def personal_fields(department: str) -> frozenset[str]:
    """The top-level payload fields tagged as personal data in the department's model."""
    model = PAYLOAD_MODELS.get(department)
    if model is None:
        return frozenset()
    return frozenset(
        name
        for name, field in model.model_fields.items()
        if any(isinstance(mark, PersonalData) for mark in field.metadata)
    )


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


def merge(department: str, rest: Mapping[str, Any], personal: Mapping[str, Any] | None) -> dict[str, Any]:
    """The payload again. ``personal=None`` means the subject's key is gone: each tagged field present in
    the model reads as ``SHREDDED``, and every other field is the record's own."""
    merged = dict(rest)
    if personal is None:
        merged.update({name: SHREDDED for name in sorted(personal_fields(department))})
    else:
        merged.update(personal)
    return merged
