"""The producing side end to end: `keyfan generate` (generator role) -> SQS -> `python -m owner_service`
(owner role) -> encrypted records in each department's partitions of the shared topic, on the real Tansu
broker and the real moto server with IAM on. Failure cases use a TCP proxy the test can close and reopen.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from keyfan.departments import DepartmentRegistry
from keyfan.envelope import H_DEPARTMENT, H_EVENT_ID
from keyfan.generation import generate_events
from keyfan_tools.local import LocalStack
from keyfan_tools.local.broker import broker_argv, broker_env
from keyfan_tools.local.processes import free_port, port_open
from keyfan_tools.local.services import ServiceProcess, start_service
from tests.e2e.proxy import TcpProxy
from tests.e2e.topic_reader import read_topic

REPO = Path(__file__).resolve().parents[2]
KEYFAN = str(Path(sys.executable).parent / "keyfan")
# Fast worker start on Tansu, short retries so outages resolve quickly in a test.
OWNER_ENV = {
    "KEYFAN_BROKER_SESSION_TIMEOUT": "2",
    "KEYFAN_BROKER_HEARTBEAT_INTERVAL": "0.5",
    "KEYFAN_POLL_WAIT_SECONDS": "1",
    "KEYFAN_RETRY_INITIAL_SECONDS": "0.3",
    "KEYFAN_RETRY_MAX_SECONDS": "1.5",
    "KEYFAN_PUBLISH_TIMEOUT_SECONDS": "3",
    "KEYFAN_MAX_BODY_BYTES": str(64 * 1024),
    "KEYFAN_LOG_LEVEL": "INFO",
}


# ------------------------------------------------------------------------------------------- helpers
def generate(stack: LocalStack, count: int, seed: int, *args: str) -> dict[str, Any]:
    """`keyfan generate` as a user runs it, under the generator's role."""
    env = {**os.environ, **stack.env_for("generator")}
    done = subprocess.run(
        [KEYFAN, "generate", "--count", str(count), "--seed", str(seed), "--json", *args],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return dict(json.loads(done.stdout))


def start_owner(stack: LocalStack, name: str, **extra: str) -> ServiceProcess:
    return start_service(
        stack, module="owner_service", identity="owner", name=name, extra_env={**OWNER_ENV, **extra}
    )


def metric(owner: ServiceProcess, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in owner.get("/metrics").splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


def queue_depth(stack: LocalStack, url: str) -> int:
    attrs = (
        stack.admin_session()
        .client("sqs")
        .get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
    )
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, owner: ServiceProcess | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if owner is not None and not owner.running():
            raise AssertionError(
                f"{owner.name} exited ({owner.popen.returncode}) while waiting for {what}\n{owner.log_tail(40)}"
            )
        if condition():
            return
        time.sleep(0.25)
    tail = owner.log_tail(30) if owner else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tail}")


def drain_dlq(stack: LocalStack) -> list[dict[str, Any]]:
    sqs = stack.admin_session().client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=stack.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return found
        for message in batch:
            found.append(message)
            sqs.delete_message(QueueUrl=stack.dlq_url, ReceiptHandle=message["ReceiptHandle"])


def records_for(records: list[Any], event_ids: set[str]) -> list[Any]:
    return [r for r in records if dict(r.headers).get(H_EVENT_ID, b"").decode() in event_ids]


@pytest.fixture(scope="module")
def registry(local_stack: LocalStack) -> DepartmentRegistry:
    return DepartmentRegistry.load(REPO / "departments.toml")


@pytest.fixture
def owners(local_stack: LocalStack) -> Iterator[Callable[..., ServiceProcess]]:
    """Start owner workers; every one is stopped (SIGTERM, then SIGKILL) at teardown."""
    started: list[ServiceProcess] = []

    def _start(name: str, **extra: str) -> ServiceProcess:
        owner = start_owner(local_stack, name, **extra)
        started.append(owner)
        return owner

    yield _start
    for owner in started:
        owner.stop(timeout=15)


@pytest.fixture(autouse=True)
def empty_queues(local_stack: LocalStack) -> Iterator[None]:
    """Each scenario starts with empty queues, whatever an earlier (failed) scenario left behind."""
    drain_dlq(local_stack)
    if queue_depth(local_stack, local_stack.queue_url):
        local_stack.admin_session().client("sqs").purge_queue(QueueUrl=local_stack.queue_url)
    yield


# --------------------------------------------------------------------------------------------- tests
def test_generated_events_are_published_encrypted_into_their_departments_partitions(
    local_stack: LocalStack, registry: DepartmentRegistry, owners: Callable[..., ServiceProcess]
) -> None:
    # Given: 200 events on the queue, sent by `keyfan generate` under the generator role
    result = generate(local_stack, 200, seed=101)
    assert result["sent"] == 200 and result["failed"] == 0
    events = generate_events(200, list(registry.names), seed=101)
    ids = {str(e.event_id) for e in events}
    # When: one owner runs
    began = time.monotonic()
    owner = owners("owner-main")
    wait_for(lambda: metric(owner, "keyfan_owner_published_total") >= 200, 90, "200 published", owner)
    elapsed = time.monotonic() - began
    wait_for(lambda: queue_depth(local_stack, local_stack.queue_url) == 0, 30, "queue empty", owner)
    # Then: every event is on the topic once, in its department's partitions
    records = records_for(read_topic(local_stack.bootstrap_servers, local_stack.topics.events), ids)
    assert {dict(r.headers)[H_EVENT_ID].decode() for r in records} == ids
    per_partition = Counter(r.partition for r in records)
    for dept in registry:
        mine = [r for r in records if dict(r.headers)[H_DEPARTMENT].decode() == dept.name]
        assert {r.partition for r in mine} <= set(dept.partitions)
        assert len({dict(r.headers)[H_EVENT_ID] for r in mine}) == result["by_department"][dept.name]
    # ... and no plaintext payload value travels on the topic (value, key or headers)
    raw = b"\n".join(r.value + (r.key or b"") + b"".join(v for _, v in r.headers) for r in records)
    for event in events:
        for field in ("email", "customer_name", "phone", "card_number", "iban", "customer_id", "account_id"):
            if field in event.data:
                assert event.data[field].encode() not in raw, field
    # ... and KMS was called at most once per department per 1,000 records (data-key cache), plus once per
    # department for the subject-key table's wrapping key (unwrapped once per process and cache age)
    kms_calls = metric(owner, "keyfan_kms_calls_total")
    kms_lines = [line for line in owner.get("/metrics").splitlines() if line.startswith("keyfan_kms")]
    assert 1 <= kms_calls <= len(registry) * (max(1, len(records) // 1000) + 1), kms_lines
    assert metric(owner, "keyfan_owner_dead_lettered_total") == 0
    print(
        f"\nowner: 200 events in {elapsed:.1f}s (incl. start), per partition {dict(sorted(per_partition.items()))},"
        f" KMS calls {kms_calls:.0f}"
    )


def test_invalid_messages_are_dead_lettered_with_their_reason_and_never_published(
    local_stack: LocalStack, registry: DepartmentRegistry, owners: Callable[..., ServiceProcess]
) -> None:
    # Given: five bad messages, sent straight to the queue
    sales, finance = generate_events(2, ["sales", "finance"], seed=505)
    good = json.loads(sales.model_dump_json())
    bad = {
        "invalid_json": "{not json",
        "unknown_field": json.dumps({**good, "extra": "x"}),
        "wrong_type": json.dumps({**json.loads(finance.model_dump_json()), "schema_version": "one"}),
        "unknown_department": json.dumps({**good, "department": "marketing"}),
        "oversize": json.dumps({**good, "data": {**good["data"], "customer_name": "x" * 100_000}}),
    }
    expected_reason = {
        "invalid_json": "invalid_json",
        "unknown_field": "schema",
        "wrong_type": "schema",
        "unknown_department": "unknown_department",
        "oversize": "too_large",
    }
    sqs = local_stack.admin_session().client("sqs")
    sent = {
        sqs.send_message(QueueUrl=local_stack.queue_url, MessageBody=body)["MessageId"]: name
        for name, body in bad.items()
    }
    # When
    owner = owners("owner-invalid")
    wait_for(lambda: metric(owner, "keyfan_owner_dead_lettered_total") >= 5, 30, "5 dead-lettered", owner)
    wait_for(lambda: queue_depth(local_stack, local_stack.queue_url) == 0, 30, "queue empty", owner)
    # Then: each is in the DLQ, whole, with its reason and original message id
    dead = drain_dlq(local_stack)
    assert len(dead) == 5
    for message in dead:
        attrs = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
        name = sent[attrs["source_message_id"]]
        assert attrs["reason"] == expected_reason[name]
        assert message["Body"] == bad[name]
    assert metric(owner, "keyfan_owner_published_total") == 0
    ids = {str(sales.event_id), str(finance.event_id)}
    assert records_for(read_topic(local_stack.bootstrap_servers, local_stack.topics.events), ids) == []
    # ... and the logs name the reason and message id, never the body
    log = owner.log.read_text()
    assert "x" * 1000 not in log and sales.data["email"] not in log
    assert all(message_id in log for message_id in sent)


def test_kms_outage_keeps_messages_in_sqs_until_kms_is_back_then_publishes_them_all(
    local_stack: LocalStack, registry: DepartmentRegistry, owners: Callable[..., ServiceProcess]
) -> None:
    # Given: an owner whose KMS endpoint is a proxy to moto that is closed (KMS unreachable)
    moto_port = int(local_stack.endpoint_url.rsplit(":", 1)[1])
    proxy = TcpProxy(moto_port)
    owner = owners("owner-kms", AWS_ENDPOINT_URL_KMS=f"http://127.0.0.1:{proxy.port}")
    try:
        assert generate(local_stack, 60, seed=202)["sent"] == 60
        ids = {str(e.event_id) for e in generate_events(60, list(registry.names), seed=202)}
        # When: KMS stays down for a while
        wait_for(lambda: metric(owner, "keyfan_owner_in_flight") > 0, 20, "messages in flight", owner)
        time.sleep(4)
        # Then: nothing is published, nothing deleted or dead-lettered
        assert metric(owner, "keyfan_owner_published_total") == 0
        assert metric(owner, "keyfan_owner_dead_lettered_total") == 0
        assert queue_depth(local_stack, local_stack.queue_url) == 60
        # When: KMS comes back
        proxy.open()
        wait_for(lambda: queue_depth(local_stack, local_stack.queue_url) == 0, 60, "queue empty", owner)
    finally:
        proxy.close()
    # Then: every event was published, none lost or dead-lettered
    records = records_for(read_topic(local_stack.bootstrap_servers, local_stack.topics.events), ids)
    assert {dict(r.headers)[H_EVENT_ID].decode() for r in records} == ids
    assert drain_dlq(local_stack) == []
    assert metric(owner, "keyfan_owner_released_total") == 0  # retried in-process, visibility extended


def test_broker_outage_keeps_messages_in_sqs_until_the_broker_is_back_then_publishes_them_all(
    local_stack: LocalStack,
    registry: DepartmentRegistry,
    owners: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    # Given: a broker of our own, reached (and advertised) through a proxy we can cut
    broker_port, proxy = free_port(), TcpProxy(0)
    proxy.target_port = broker_port
    argv = broker_argv(broker_port)
    argv[argv.index("--advertised-listener-url") + 1] = f"tcp://127.0.0.1:{proxy.port}"
    with (tmp_path / "broker.log").open("wb") as sink:
        broker = subprocess.Popen(
            argv, env=broker_env(dict(os.environ)), stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_for(lambda: port_open(broker_port), 10, "broker port")
        proxy.open()
        bootstrap = f"127.0.0.1:{proxy.port}"
        asyncio.run(_create_topic(bootstrap, local_stack.topics.events, registry.partition_count))
        owner = owners("owner-broker", KEYFAN_BOOTSTRAP_SERVERS=bootstrap)
        # When: the broker becomes unreachable and events arrive
        proxy.close()
        assert generate(local_stack, 40, seed=303)["sent"] == 40
        ids = {str(e.event_id) for e in generate_events(40, list(registry.names), seed=303)}
        wait_for(lambda: metric(owner, "keyfan_owner_in_flight") > 0, 20, "messages in flight", owner)
        time.sleep(4)
        # Then: nothing is deleted while unacknowledged
        assert metric(owner, "keyfan_owner_published_total") == 0
        assert queue_depth(local_stack, local_stack.queue_url) == 40
        # When: the broker is back
        proxy.open()
        wait_for(lambda: queue_depth(local_stack, local_stack.queue_url) == 0, 60, "queue empty", owner)
        # Then: all 40 are on the topic (duplicates allowed: at-least-once), none dead-lettered
        records = records_for(read_topic(bootstrap, local_stack.topics.events), ids)
        assert {dict(r.headers)[H_EVENT_ID].decode() for r in records} == ids
        assert drain_dlq(local_stack) == []
    finally:
        proxy.close()
        broker.kill()
        broker.wait()


async def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


def test_sigterm_mid_stream_exits_cleanly_and_the_next_worker_delivers_the_rest(
    local_stack: LocalStack, registry: DepartmentRegistry, owners: Callable[..., ServiceProcess]
) -> None:
    # Given: 400 events and a first owner working through them
    assert generate(local_stack, 400, seed=404)["sent"] == 400
    ids = {str(e.event_id) for e in generate_events(400, list(registry.names), seed=404)}
    first = owners("owner-first")
    wait_for(lambda: metric(first, "keyfan_owner_published_total") >= 40, 60, "first records", first)
    # When: it gets SIGTERM mid-stream
    first.popen.send_signal(signal.SIGTERM)
    code = first.popen.wait(30)
    # Then: it exits cleanly, having finished (or released) what it had in flight
    assert code == 0, first.log_tail()
    stopped = [json.loads(line) for line in first.log.read_text().splitlines() if '"owner stopped"' in line]
    assert stopped and stopped[-1]["drained"] is True and stopped[-1]["in_flight"] == 0
    assert stopped[-1]["published"] < 400, "the first worker finished everything: stop it earlier"
    # When: the next worker starts
    second = owners("owner-second")
    wait_for(lambda: queue_depth(local_stack, local_stack.queue_url) == 0, 90, "queue empty", second)
    # Then: every event is on the topic, none dead-lettered (duplicates only as at-least-once redeliveries)
    records = records_for(read_topic(local_stack.bootstrap_servers, local_stack.topics.events), ids)
    assert {dict(r.headers)[H_EVENT_ID].decode() for r in records} == ids
    assert drain_dlq(local_stack) == []
    published = stopped[-1]["published"] + metric(second, "keyfan_owner_published_total")
    assert published >= 400


def test_generate_under_a_role_without_send_permission_reports_every_event_as_failed(
    local_stack: LocalStack,
) -> None:
    # Given: the sales consumer's role, which may not send to the owner's queue
    env = {**os.environ, **local_stack.env_for("sales")}
    # When
    done = subprocess.run(
        [KEYFAN, "generate", "--count", "15", "--seed", "1", "--json"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    # Then: nothing is sent, everything is reported (not retried: a denial is final), exit code 1
    assert done.returncode == 1
    summary = json.loads(done.stdout)
    assert summary["sent"] == 0 and summary["failed"] == 15 and summary["retried_entries"] == 0
    assert queue_depth(local_stack, local_stack.queue_url) == 0
