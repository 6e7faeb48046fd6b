"""The Faust agent path with ``agent.test_context()``: no broker, a fake decryptor, the real app factory."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyfan.consumer import create_consumer_app
from keyfan.exceptions import ConfigError
from keyfan.generation import generate_events
from keyfan.settings import ConsumerSettings
from sales_consumer import SalesHandler
from tests.factories import FakeDecryptor, ListAudit, ListDeadLetters, fake_key_arn, fake_record

REPO = Path(__file__).resolve().parents[2]


def _settings(tmp_path: Path) -> ConsumerSettings:
    return ConsumerSettings(department="sales", departments_file=REPO / "departments.toml", data_dir=tmp_path)


def test_handler_must_match_department(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        create_consumer_app(
            _settings(tmp_path).model_copy(update={"department": "finance"}),
            SalesHandler(),
            decryptor=FakeDecryptor(),
        )


async def test_agent_decrypts_and_denies(tmp_path: Path) -> None:
    audit, dlq = ListAudit(), ListDeadLetters()
    app = create_consumer_app(
        _settings(tmp_path),
        SalesHandler(),
        decryptor=FakeDecryptor(denied={fake_key_arn("finance")}),
        principal="p",
        audit=audit,
        dead_letters=dlq,
    )
    app.finalize()
    app.flow_control.resume()
    agent = app.agents["sales-records"]
    events = generate_events(4, ["sales", "finance"], seed=3)
    async with agent.test_context() as agent_ctx:
        outcomes = []
        for offset, event in enumerate(events):
            record = fake_record(event, offset=offset)
            await agent_ctx.put(key=record.key, value=record.value, headers=record.headers, partition=0)
        outcomes = list(agent_ctx.results.values())
    assert outcomes == ["decrypted", "access_denied", "decrypted", "access_denied"]
    state = app.runtime.state()
    assert state["aggregates"]["orders"] == 2
    assert state["counters"]["decrypted"] == 2 and state["counters"]["access_denied"] == 2
    assert [a.outcome.value for a in audit.records] == outcomes
    assert dlq.records == []


async def test_own_partitions_filters_other_departments_ranges(tmp_path: Path) -> None:
    # given a sales consumer limited to its own partitions (0-2)
    audit = ListAudit()
    settings = _settings(tmp_path).model_copy(update={"own_partitions": True})
    app = create_consumer_app(
        settings,
        SalesHandler(),
        decryptor=FakeDecryptor(),
        principal="p",
        audit=audit,
        dead_letters=ListDeadLetters(),
    )
    app.finalize()
    app.flow_control.resume()
    events = generate_events(4, ["sales", "finance"], seed=5)
    async with app.agents["sales-records"].test_context() as agent_ctx:
        for offset, event in enumerate(events):
            partition = 0 if event.department == "sales" else 3
            record = fake_record(event, offset=offset, partition=partition)
            await agent_ctx.put(
                key=record.key, value=record.value, headers=record.headers, partition=partition
            )
    # then only partition-0 records reach the pipeline; the others are skipped without an outcome
    state = app.runtime.state()
    assert state["counters"]["decrypted"] == 2
    assert state["counters"]["skipped_foreign_partitions"] == 2
    assert [a.partition for a in audit.records] == [0, 0]
