"""Helpers for the consuming-side e2e tests: fresh topics, producing raw records, consumers as real
subprocesses under their own roles, and reading their ``/state``."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from keyfan.crypto import Encryptor
from keyfan.crypto.subjectkeys import SubjectKeys
from keyfan.departments import DepartmentRegistry
from keyfan.models import DepartmentEvent
from keyfan_tools.local import LocalStack
from keyfan_tools.local.services import ServiceProcess, start_service
from tests.factories import OwnerRecord, owner_record

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 6
CONSUMER_ENV = {
    "KEYFAN_BROKER_SESSION_TIMEOUT": "2",
    "KEYFAN_BROKER_HEARTBEAT_INTERVAL": "0.5",
    "KEYFAN_RETRY_INITIAL_SECONDS": "0.2",
    "KEYFAN_RETRY_MAX_SECONDS": "1.0",
}


@dataclass(frozen=True)
class Topics:
    events: str
    audit: str
    dlq: str

    def env(self) -> dict[str, str]:
        return {"KEYFAN_TOPIC": self.events, "KEYFAN_AUDIT_TOPIC": self.audit, "KEYFAN_DLQ_TOPIC": self.dlq}


def fresh_topics(bootstrap: str, label: str) -> Topics:
    suffix = f"{label}-{uuid.uuid4().hex[:6]}"
    topics = Topics(f"t.events.{suffix}", f"t.audit.{suffix}", f"t.dlq.{suffix}")

    async def _create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [
                    NewTopic(topics.events, PARTITIONS, 1),
                    NewTopic(topics.audit, 1, 1),
                    NewTopic(topics.dlq, 1, 1),
                ]
            )
        finally:
            await admin.close()

    asyncio.run(_create())
    return topics


Raw = tuple[int, bytes | None, bytes, list[tuple[str, bytes]]]


def produce(bootstrap: str, topic: str, records: list[Raw], max_request_size: int = 1048576) -> None:
    async def _send() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=False,
            max_request_size=max_request_size,
        )
        await producer.start()
        try:
            futures = [
                await producer.send(topic, value=value, key=key, partition=partition, headers=headers)
                for partition, key, value, headers in records
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(_send())


def raw(record: OwnerRecord) -> Raw:
    return (record.partition, record.key, record.value, list(record.headers))


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    async def _committed() -> dict[int, int | None]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
        finally:
            await consumer.stop()

    return asyncio.run(_committed())


def start_consumer(
    stack: LocalStack, department: str, topics: Topics, group: str, name: str | None = None, **extra: str
) -> ServiceProcess:
    return start_service(
        stack,
        module=f"{department}_consumer",
        identity=department,
        name=name or group,
        extra_env={**CONSUMER_ENV, **topics.env(), "KEYFAN_GROUP_ID": group, **extra},
    )


def state(service: ServiceProcess) -> dict[str, Any]:
    try:
        return dict(service.get_json("/state", timeout=3))
    except OSError:
        return {}


def finished(service: ServiceProcess) -> int:
    counters = state(service).get("counters", {})
    return sum(int(counters.get(k, 0)) for k in ("decrypted", "access_denied", "dead_lettered"))


def caught_up(service: ServiceProcess, ends: Counter[int]) -> bool:
    """Every partition's stored position is its last offset (``ends``: records per partition)."""
    positions = state(service).get("positions", {})
    return all(int(positions.get(str(p), -1)) == ends[p] - 1 for p in range(PARTITIONS) if ends[p])


def wait_for(condition: Callable[[], bool], timeout: float, what: str, *services: ServiceProcess) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        for service in services:
            assert service.running(), f"{service.name} died:\n{service.log_tail(40)}"
        time.sleep(0.25)
    tails = "\n".join(f"--- {s.name}\n{s.log_tail(30)}\n{state(s)}" for s in services)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")


def log_lines(service: ServiceProcess) -> list[dict[str, Any]]:
    lines = []
    for line in service.log.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


@dataclass
class World:
    stack: LocalStack
    registry: DepartmentRegistry
    encryptor: Encryptor
    bootstrap: str
    # The owner's subject keys: personal fields sealed apart, as the owner service seals them.
    subject_keys: SubjectKeys | None = None

    def records(self, events: list[DepartmentEvent], topic: str) -> list[OwnerRecord]:
        return [
            owner_record(self.encryptor, self.registry, event, topic, self.subject_keys) for event in events
        ]


def wait_committed(
    bootstrap: str, group: str, topic: str, ends: Counter[int], timeout: float, service: ServiceProcess
) -> float:
    """Wait until the group's committed offset of every partition is its end (every record moved past)."""
    want = {p: ends.get(p) for p in range(PARTITIONS)}
    seen: list[dict[int, int | None]] = [{}]

    def all_committed() -> bool:
        seen.append(committed_offsets(bootstrap, group, topic))
        return seen[-1] == want

    try:
        return wait_for(all_committed, timeout, "every record committed", service)
    except AssertionError as exc:
        raise AssertionError(
            f"want {want} committed {seen[-1]} state {state(service).get('counters')}"
        ) from exc


@dataclass(frozen=True)
class FinanceGrant:
    """An out-of-band IAM policy letting the sales consumer's role decrypt under the finance key."""

    iam: Any
    role: str
    document: str
    name: str = "test-grant-finance"

    @classmethod
    def for_stack(cls, stack: LocalStack, name: str = "test-grant-finance") -> FinanceGrant:
        env = stack.env()
        statement = {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": env["KEYFAN_FINANCE_KEY_ARN"]}
        return cls(
            iam=stack.admin_session().client("iam"),
            role=env["KEYFAN_SALES_ROLE_ARN"].rsplit("/", 1)[1],
            document=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
            name=name,
        )

    def grant(self) -> None:
        self.iam.put_role_policy(RoleName=self.role, PolicyName=self.name, PolicyDocument=self.document)

    def revoke(self) -> None:
        self.iam.delete_role_policy(RoleName=self.role, PolicyName=self.name)
