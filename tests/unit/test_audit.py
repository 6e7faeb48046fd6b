"""The audit record carries metadata only."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from keyfan.consumer.audit import AuditRecord
from keyfan.consumer.outcomes import Outcome

FIELDS = {
    "schema_version",
    "time",
    "consumer_department",
    "consumer_group",
    "record_department",
    "principal",
    "event_id",
    "topic",
    "partition",
    "offset",
    "key_arn",
    "outcome",
    "reason",
}


def _record(**overrides: object) -> AuditRecord:
    values: dict[str, object] = {
        "consumer_department": "sales",
        "consumer_group": "keyfan-sales",
        "record_department": "finance",
        "principal": "arn:aws:sts::1:assumed-role/keyfan-sales-consumer/p",
        "event_id": "e1",
        "topic": "keyfan.events",
        "partition": 3,
        "offset": 7,
        "key_arn": "arn:aws:kms:us-east-1:1:key/f",
        "outcome": Outcome.ACCESS_DENIED,
        "reason": "kms_access_denied",
    }
    values.update(overrides)
    return AuditRecord.model_validate(values)


def test_fields_are_metadata_only() -> None:
    assert set(AuditRecord.model_fields) == FIELDS


def test_no_payload_field_can_be_added() -> None:
    with pytest.raises(ValidationError):
        _record(data={"card_number": "4111111111111111"})


def test_serialises_as_json() -> None:
    body = json.loads(_record().to_bytes())
    assert body["outcome"] == "access_denied"
    assert body["partition"] == 3
    assert set(body) == FIELDS
