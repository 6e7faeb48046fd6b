"""The generator Lambda with a stub SQS client: failed entries are retried, counted, never dropped."""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any

import pydantic
import pytest

from keyfan.departments import DepartmentRegistry
from keyfan.exceptions import ConfigError
from keyfan.generation import generate_events
from keyfan.sqs import OutgoingMessage, SqsQueue
from lambda_generator import handler as handler_module
from lambda_generator.context import LocalLambdaContext
from lambda_generator.handler import Dependencies, make_handler

REGISTRY = DepartmentRegistry.from_mapping(
    {
        "department": [
            {"name": "sales", "partitions": [0, 1, 2], "key_alias": "alias/s", "consumer_identity": "s"},
            {"name": "finance", "partitions": [3, 4, 5], "key_alias": "alias/f", "consumer_identity": "f"},
        ]
    }
)


class StubSqs:
    """Records every batch; fails entries by (call number, position) as scripted."""

    def __init__(
        self, fail: dict[int, list[tuple[int, str, bool]]] | None = None, raise_on: set[int] | None = None
    ):
        self.fail = fail or {}
        self.raise_on = raise_on or set()
        self.calls: list[list[dict[str, Any]]] = []
        self.delivered: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        call = len(self.calls)
        self.calls.append(Entries)
        assert len(Entries) <= 10
        if call in self.raise_on:
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url="http://sqs")
        failing = {pos: (code, sender) for pos, code, sender in self.fail.get(call, [])}
        failed = [
            {"Id": entry["Id"], "Code": failing[pos][0], "SenderFault": failing[pos][1], "Message": "x"}
            for pos, entry in enumerate(Entries)
            if pos in failing
        ]
        ok = [entry for pos, entry in enumerate(Entries) if pos not in failing]
        self.delivered += [entry["MessageBody"] for entry in ok]
        return {"Successful": [{"Id": e["Id"], "MessageId": "m"} for e in ok], "Failed": failed}


def _queue(stub: StubSqs, **kwargs: Any) -> SqsQueue:
    return SqsQueue(stub, "https://sqs/q", sleep=lambda _s: None, **kwargs)


def _run(stub: StubSqs, event: dict[str, Any], **queue_kwargs: Any) -> dict[str, Any]:
    handler = make_handler(lambda: Dependencies(queue=_queue(stub, **queue_kwargs), registry=REGISTRY))
    return handler(event, LocalLambdaContext())  # type: ignore[arg-type]


def test_sends_in_batches_of_ten_and_counts_per_department():
    stub = StubSqs()
    result = _run(stub, {"count": 25, "seed": 1})
    assert [len(c) for c in stub.calls] == [10, 10, 5]
    assert result["sent"] == 25 and result["failed"] == 0
    assert result["by_department"] == {"sales": 13, "finance": 12}
    assert len(stub.delivered) == 25


def test_only_failed_entries_are_retried_and_then_delivered():
    # Given: the first call fails entries 2 and 7 (throttled, not the sender's fault)
    stub = StubSqs(fail={0: [(2, "ThrottlingException", False), (7, "InternalError", False)]})
    # When
    result = _run(stub, {"count": 12, "seed": 2})
    # Then: call 3 re-sends exactly those two entries, and everything arrives once
    assert [len(c) for c in stub.calls] == [10, 2, 2]
    assert [e["Id"] for e in stub.calls[2]] == ["2", "7"]
    assert result["sent"] == 12 and result["failed"] == 0 and result["retried_entries"] == 2
    expected = [
        json.loads(m) for m in [e.model_dump_json() for e in generate_events(12, ["sales", "finance"], 2)]
    ]
    assert sorted(json.loads(b)["event_id"] for b in stub.delivered) == sorted(
        e["event_id"] for e in expected
    )


def test_entries_that_keep_failing_are_reported_not_dropped():
    fail_always = {call: [(0, "InternalError", False)] for call in range(20)}
    stub = StubSqs(fail=fail_always)
    result = _run(stub, {"count": 3, "departments": ["finance"], "seed": 3}, max_attempts=3)
    assert len(stub.calls) == 3  # bounded
    assert result["sent"] == 2 and result["failed"] == 1
    assert result["failed_by_department"] == {"finance": 1}


def test_sender_faults_are_not_retried():
    stub = StubSqs(fail={0: [(1, "InvalidMessageContents", True)]})
    result = _run(stub, {"count": 4, "seed": 4})
    assert len(stub.calls) == 1
    assert result["failed"] == 1 and result["sent"] == 3


def test_a_whole_call_failing_is_retried_for_its_entries():
    stub = StubSqs(raise_on={0})
    result = _run(stub, {"count": 5, "seed": 5})
    assert [len(c) for c in stub.calls] == [5, 5]
    assert result["sent"] == 5


def test_messages_carry_department_and_correlation_attributes():
    stub = StubSqs()
    handler = make_handler(lambda: Dependencies(queue=_queue(stub), registry=REGISTRY))
    context = LocalLambdaContext()
    handler({"count": 2, "seed": 6}, context)  # type: ignore[arg-type]
    attrs = [e["MessageAttributes"] for e in stub.calls[0]]
    assert [a["department"]["StringValue"] for a in attrs] == ["sales", "finance"]
    assert {a["correlation_id"]["StringValue"] for a in attrs} == {context.aws_request_id}


def test_same_seed_sends_the_same_bodies():
    first, second = StubSqs(), StubSqs()
    _run(first, {"count": 15, "seed": 8})
    _run(second, {"count": 15, "seed": 8})
    assert first.delivered == second.delivered


def test_department_filter_and_unknown_department():
    stub = StubSqs()
    result = _run(stub, {"count": 4, "departments": ["sales"], "seed": 1})
    assert result["by_department"] == {"sales": 4}
    with pytest.raises(ConfigError):
        _run(StubSqs(), {"count": 1, "departments": ["marketing"]})


@pytest.mark.parametrize("event", [{"count": -1}, {"count": "many"}, {}, {"count": 1, "colour": "red"}])
def test_invalid_input_is_rejected_before_anything_is_sent(event):
    stub = StubSqs()
    with pytest.raises(pydantic.ValidationError):
        _run(stub, event)
    assert stub.calls == []


def test_dependencies_are_built_once_and_only_when_invoked():
    built: list[int] = []

    def factory() -> Dependencies:
        built.append(1)
        return Dependencies(queue=_queue(StubSqs()), registry=REGISTRY)

    handler = make_handler(factory)
    assert built == []
    handler({"count": 1, "seed": 1}, LocalLambdaContext())  # type: ignore[arg-type]
    handler({"count": 1, "seed": 1}, LocalLambdaContext())  # type: ignore[arg-type]
    assert built == [1]


def test_logs_and_metrics_never_contain_payload_values(capsys, monkeypatch):
    logs = io.StringIO()
    monkeypatch.setattr(handler_module.logger.logger_handler, "stream", logs)
    stub = StubSqs(fail={0: [(0, "InternalError", False)]})
    _run(stub, {"count": 10, "seed": 9}, max_attempts=1)
    out = capsys.readouterr()
    emitted = out.out + out.err + logs.getvalue()
    assert "events sent" in logs.getvalue() and "entries not sent" in logs.getvalue()
    emf = [json.loads(line) for line in out.out.splitlines() if line.startswith('{"_aws"')]
    per_dept: Counter[str] = Counter()
    for blob in emf:
        if "department" in blob:
            value = blob["events"]
            per_dept[blob["department"]] += sum(value) if isinstance(value, list) else value
    assert per_dept == {"sales": 4, "finance": 5}
    for event in generate_events(10, ["sales", "finance"], seed=9):
        for value in ("email", "customer_name", "card_number", "iban"):
            if value in event.data:
                assert event.data[value] not in emitted


def test_send_batch_directly_with_no_messages():
    result = _queue(StubSqs()).send_batch([])
    assert result.sent == 0 and result.calls == 0 and result.failed == ()
    assert _queue(StubSqs()).send_batch([OutgoingMessage("{}")]).sent == 1


def test_one_denial_for_every_entry_is_one_log_line_not_one_per_entry(monkeypatch):
    # Given a role without sqs:SendMessage: SQS fails every entry of every batch the same way
    logs = io.StringIO()
    monkeypatch.setattr(handler_module.logger.logger_handler, "stream", logs)
    denied = [(pos, "AccessDenied", True) for pos in range(10)]
    stub = StubSqs(fail={0: denied, 1: denied})

    result = _run(stub, {"count": 20, "seed": 3}, max_attempts=1)

    # Then every event is reported failed, and the log says so once, with a count
    assert result["failed"] == 20
    lines = [json.loads(line) for line in logs.getvalue().splitlines() if "entries not sent" in line]
    assert len(lines) == 1
    assert lines[0]["code"] == "AccessDenied" and lines[0]["count"] == 20
    assert lines[0]["first_indexes"] == [0, 1, 2, 3, 4]
