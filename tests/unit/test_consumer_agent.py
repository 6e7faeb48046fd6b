"""The Faust agent path with ``agent.test_context()``: no broker, a fake decryptor, the real app factory."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from keyfan.consumer import ConsumerApp, RawRecord, create_consumer_app
from keyfan.exceptions import ConfigError
from keyfan.generation import generate_events
from keyfan.settings import ConsumerSettings
from sales_consumer import SalesHandler
from tests.factories import (
    FakeDecryptor,
    ListAudit,
    ListDeadLetters,
    fake_key_arn,
    fake_record,
    routed_partition,
)

REPO = Path(__file__).resolve().parents[2]


def _settings(tmp_path: Path) -> ConsumerSettings:
    return ConsumerSettings(department="sales", departments_file=REPO / "departments.toml", data_dir=tmp_path)


def test_handler_must_match_department(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        create_consumer_app(
            _settings(tmp_path).model_copy(update={"department": "finance"}),
            SalesHandler(),
            decryptors=(FakeDecryptor(),),
        )


def _app(tmp_path: Path, audit: ListAudit, **settings: object) -> ConsumerApp:
    app = create_consumer_app(
        _settings(tmp_path).model_copy(update=settings),
        SalesHandler(),
        decryptors=(FakeDecryptor(denied={fake_key_arn("finance")}),),
        principal="p",
        audit=audit,
        dead_letters=ListDeadLetters(),
    )
    app.finalize()
    app.flow_control.resume()
    return app


async def _put(agent_ctx: Any, record: RawRecord) -> None:
    agent_ctx.sent_offset = record.offset  # the test agent numbers messages with this counter
    await agent_ctx.put(
        key=record.key, value=record.value, headers=record.headers, partition=record.partition
    )


def _in_order(events: list[Any]) -> list[RawRecord]:
    """Each event on its routed partition, at that partition's next offset."""
    offsets: Counter[int] = Counter()
    records = []
    for event in events:
        partition = routed_partition(event)
        records.append(fake_record(event, partition=partition, offset=offsets[partition]))
        offsets[partition] += 1
    return records


async def test_agent_decrypts_and_denies(tmp_path: Path) -> None:
    audit = ListAudit()
    app = _app(tmp_path, audit)
    app.runtime.positions_restored()  # what the seek after an assignment does
    events = generate_events(4, ["sales", "finance"], seed=3)
    async with app.agents["sales-records"].test_context() as agent_ctx:
        for record in _in_order(events):
            await _put(agent_ctx, record)
        outcomes = list(agent_ctx.results.values())
    assert outcomes == ["decrypted", "access_denied", "decrypted", "access_denied"]
    state = app.runtime.state()
    assert state["aggregates"]["orders"] == 2
    assert state["counters"]["decrypted"] == 2 and state["counters"]["access_denied"] == 2
    assert state["outcomes"] == {"access_denied": 2, "decrypted": 2}
    assert [a.outcome.value for a in audit.records] == outcomes


async def test_nothing_is_processed_before_positions_are_restored(tmp_path: Path) -> None:
    # given a worker whose assignment has not been sought to the table's positions yet
    audit = ListAudit()
    app = _app(tmp_path, audit)
    [record] = _in_order(generate_events(1, ["sales"], seed=4))
    async with app.agents["sales-records"].test_context() as agent_ctx:
        await _put(agent_ctx, record)
        # then the record is left alone (it is fetched again after the seek), with no outcome
        assert list(agent_ctx.results.values()) == ["ignored"]
        # and once the positions are restored, records are processed
        app.runtime.positions_restored()
        await _put(agent_ctx, record)
        assert list(agent_ctx.results.values())[-1] == "decrypted"
    assert app.runtime.state()["counters"]["ignored_until_restored"] == 1
    assert len(audit.records) == 1


async def test_a_rebalance_stops_processing_until_positions_are_restored_again(tmp_path: Path) -> None:
    app = _app(tmp_path, ListAudit())
    app.runtime.positions_restored()
    app.on_rebalance_start()
    [record] = _in_order(generate_events(1, ["sales"], seed=6))
    async with app.agents["sales-records"].test_context() as agent_ctx:
        await _put(agent_ctx, record)
        assert list(agent_ctx.results.values()) == ["ignored"]


async def test_a_gap_sends_the_consumer_back_and_processes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "keyfan.consumer")
    audit = ListAudit()
    app = _app(tmp_path, audit)
    app.runtime.positions_restored()
    [event] = generate_events(1, ["sales"], seed=7)
    async with app.agents["sales-records"].test_context() as agent_ctx:
        # given offset 3 arrives first on a partition where nothing was processed
        await _put(agent_ctx, fake_record(event, partition=routed_partition(event), offset=3))
        assert list(agent_ctx.results.values()) == ["gap"]
    # then nothing was counted and a seek back to offset 0 was asked for
    assert audit.records == [] and app.runtime.state()["outcomes"] == {}
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "position_gap_reseek"]
    assert (line.expected, line.offset) == (0, 3)  # type: ignore[attr-defined]


async def test_own_partitions_filters_other_departments_ranges(tmp_path: Path) -> None:
    # given a sales consumer limited to its own partitions (0-2)
    audit = ListAudit()
    app = _app(tmp_path, audit, own_partitions=True)
    app.runtime.positions_restored()
    events = generate_events(4, ["sales", "finance"], seed=5)
    async with app.agents["sales-records"].test_context() as agent_ctx:
        for record in _in_order(events):
            await _put(agent_ctx, record)
    # then only its own partitions' records reach the pipeline; the others are skipped without an outcome
    state = app.runtime.state()
    assert state["counters"]["decrypted"] == 2
    assert state["counters"]["skipped_foreign_partitions"] == 2
    assert {a.partition for a in audit.records} <= {0, 1, 2} and len(audit.records) == 2
