"""``keyfan demo``: the whole pipeline on the embedded stack, then a report of who could read what.

Real parts only: the Tansu broker, the moto server with IAM on, the generator's handler under the
generator role, the owner service and one consumer per department as separate processes, each under its
own role. The demo uses its own state directory and always tears its stack down.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from keyfan.consumer.handler import DomainHandler
from keyfan.consumer.identity import consumer_decryptors
from keyfan.crypto.subjectkeys import subject_keys_from
from keyfan.departments import DepartmentRegistry
from keyfan.envelope import RecordMetadata, check_context, open_body
from keyfan.exceptions import AccessDenied, KeyfanError
from keyfan.logs import configure_logging
from keyfan.masking import mask_id
from keyfan.personal_data import SHREDDED, subject_of
from keyfan.settings import ConsumerSettings
from keyfan_tools.demo.report import ConsumerCounts, DemoReport, Sample, account, settled
from keyfan_tools.local.services import ServiceProcess, start_service
from keyfan_tools.local.stack import LocalStack

Progress = Callable[[str], None]


def consumer_handler(department: str) -> DomainHandler | None:
    """The department's domain handler, by convention exported from ``<department>_consumer``."""
    try:
        module = importlib.import_module(f"{department}_consumer")
    except ModuleNotFoundError:
        return None
    for name in getattr(module, "__all__", ()):
        candidate = getattr(module, name)
        if getattr(candidate, "department", None) == department:
            handler: DomainHandler = candidate()
            return handler
    return None


@contextmanager
def _services(
    stack: LocalStack, registry: DepartmentRegistry, progress: Progress
) -> Iterator[dict[str, Any]]:
    with ExitStack() as cleanup:
        consumers: dict[str, ServiceProcess] = {}
        for department in registry:
            if consumer_handler(department.name) is None:
                progress(f"no consumer app for {department.name} (no {department.name}_consumer package)")
                continue
            progress(f"starting the {department.name} consumer under its own role")
            service = start_service(stack, module=f"{department.name}_consumer", identity=department.name)
            cleanup.callback(service.stop)
            consumers[department.name] = service
        progress("starting the owner service under the owner role")
        owner = start_service(stack, module="owner_service", identity="owner")
        cleanup.callback(owner.stop)
        yield {"owner": owner, "consumers": consumers}


def _generate(stack: LocalStack, count: int, seed: int) -> dict[str, int]:
    env = {**stack.env_for("generator")}
    command = [
        sys.executable,
        "-m",
        "keyfan_tools",
        "generate",
        "--count",
        str(count),
        "--seed",
        str(seed),
        "--json",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise KeyfanError(f"keyfan generate failed ({done.returncode}): {done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    return {name: int(n) for name, n in result["by_department"].items()}


def _owner_counts(owner: ServiceProcess) -> tuple[dict[str, int], dict[str, list[int]], int]:
    published: dict[str, int] = {}
    partitions: dict[str, set[int]] = {}
    dead_lettered = 0
    for family in text_string_to_metric_families(owner.get("/metrics")):
        for sample in family.samples:
            if sample.name == "keyfan_owner_published_total" and sample.value:
                department = sample.labels["department"]
                published[department] = published.get(department, 0) + int(sample.value)
                partitions.setdefault(department, set()).add(int(sample.labels["partition"]))
            elif sample.name == "keyfan_owner_dead_lettered_total":
                dead_lettered += int(sample.value)
    return published, {d: sorted(p) for d, p in partitions.items()}, dead_lettered


def _consumer_counts(service: ServiceProcess) -> ConsumerCounts:
    counters = service.get_json("/state")["counters"]
    return ConsumerCounts(
        decrypted=counters["decrypted"],
        access_denied=counters["access_denied"],
        dead_lettered=counters["dead_lettered"],
    )


async def _first_record(bootstrap: str, topic: str, partitions: tuple[int, ...]) -> Any:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=1)
            for records in batch.values():
                if records:
                    return records[0]
        return None
    finally:
        await consumer.stop()


def _sample(
    stack: LocalStack, registry: DepartmentRegistry, department: str, partition: int | None = None
) -> tuple[Sample, str | None] | None:
    """Read one of ``department``'s records (the first of ``partition``, if given) and let every department
    try to decrypt it; also the record's subject (for the erasure step; never rendered)."""
    topic = stack.topics.events
    partitions = registry.get(department).partitions if partition is None else (partition,)
    record = asyncio.run(_first_record(stack.bootstrap_servers, topic, partitions))
    if record is None:
        return None
    metadata = RecordMetadata.from_headers(record.headers)
    views: dict[str, dict[str, str]] = {}
    denied: dict[str, str] = {}
    subject: str | None = None
    for reader in registry:
        session = stack.session_for(reader.name)
        account_id = str(session.client("sts").get_caller_identity()["Account"])
        settings = ConsumerSettings.model_construct(
            department=reader.name, subject_key_table=stack.env()["KEYFAN_SUBJECT_KEY_TABLE"]
        )
        decryptors = consumer_decryptors(settings, (account_id,), botocore_session=session._session)
        decryptor = next(d for d in decryptors if d.content == metadata.content)
        try:
            decrypted = decryptor.decrypt(record.value, metadata.binding(topic))
        except AccessDenied as exc:
            denied[reader.name] = f"{exc} for {exc.principal or reader.name} on {exc.key_arn}"
            continue
        check_context(metadata, topic, decrypted.encryption_context)
        body = open_body(decrypted.plaintext, metadata)
        data = body.data
        if body.personal is not None:
            keys = subject_keys_from(settings, botocore_session=session._session)
            personal = keys.open(metadata.binding(topic), body.personal)
            data = personal.merged(metadata.department, data)
        if reader.name == department:
            subject = subject_of(department, data)
        handler = consumer_handler(reader.name)
        views[reader.name] = dict(handler.hint(metadata, data)) if handler else {"decrypted": "yes"}
    sample = Sample(
        department=department,
        partition=record.partition,
        offset=record.offset,
        event_id=metadata.event_id,
        ciphertext_bytes=len(record.value),
        ciphertext_preview=record.value[:24].hex(),
        key_arn=metadata.key_arn,
        owner_view=views.get(department, {}),
        denied=denied,
    )
    return sample, subject


def _forget(stack: LocalStack, department: str, subject: str) -> None:
    """``keyfan forget`` as the owner role, as an operator would run it."""
    command = [
        sys.executable,
        "-m",
        "keyfan_tools",
        "forget",
        "--department",
        department,
        "--subject",
        subject,
    ]
    done = subprocess.run(
        command, env=stack.env_for("owner"), capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise KeyfanError(f"keyfan forget failed ({done.returncode}): {done.stderr[-2000:]}")


def _sample_and_erasure(stack: LocalStack, registry: DepartmentRegistry, department: str) -> Sample | None:
    """The sample record, then its subject forgotten and the same record read again by its department."""
    first = _sample(stack, registry, department)
    if first is None:
        return None
    sample, subject = first
    if subject is None:  # a department without personal fields: nothing to erase
        return sample
    _forget(stack, department, subject)
    again = _sample(stack, registry, department, sample.partition)  # the same record: its partition's first
    if again is None or (again[0].partition, again[0].offset) != (sample.partition, sample.offset):
        raise KeyfanError("the sample record could not be read again after the forget")
    after = again[0].owner_view
    return sample.model_copy(update={"forgotten": mask_id(subject), "after_forget": after})


def run_demo(
    *, count: int, seed: int, state_dir: Path, timeout: float, progress: Progress, with_sample: bool = True
) -> DemoReport:
    # Our own logs (and the Encryption SDK's noisy ones, quieted) go to stderr: stdout is the report.
    configure_logging("keyfan-demo", "WARNING", stream="ext://sys.stderr")
    stack = LocalStack(state_dir)
    progress(f"starting the local stack in {stack.state_dir} (Tansu broker, moto server with IAM on)")
    stack.up()
    try:
        registry = DepartmentRegistry.load(stack.departments_file)
        with _services(stack, registry, progress) as running:
            owner: ServiceProcess = running["owner"]
            consumers: dict[str, ServiceProcess] = running["consumers"]
            progress(f"generating {count} events under the generator role (seed {seed})")
            sent = _generate(stack, count, seed)
            generated = {d.name: sent.get(d.name, 0) for d in registry}  # registry order for the report
            progress("waiting until every event is accounted for")
            deadline = time.monotonic() + timeout
            while True:
                published, partitions, owner_dlq = _owner_counts(owner)
                counts = {name: _consumer_counts(service) for name, service in consumers.items()}
                if settled(generated, published, owner_dlq, counts) or time.monotonic() > deadline:
                    break
                for name, service in {"owner": owner, **consumers}.items():
                    if not service.running():
                        raise KeyfanError(f"{name} exited early:\n{service.log_tail()}")
                time.sleep(0.5)
            unaccounted, problems = account(generated, published, owner_dlq, counts)
            report = DemoReport(
                generated=generated,
                published=published,
                partitions=partitions,
                dead_lettered=owner_dlq,
                consumers=counts,
                unaccounted=unaccounted,
                problems=problems,
            )
            if with_sample:
                first = next((name for name, n in generated.items() if n), None)
                progress("reading one record as every department, then forgetting its subject")
                report.sample = _sample_and_erasure(stack, registry, first) if first else None
                erased = report.sample
                if erased and erased.forgotten and SHREDDED not in erased.after_forget.values():
                    report.problems.append("the forgotten subject's personal fields are still readable")
            progress("stopping the services")
        return report
    finally:
        progress("tearing the local stack down")
        stack.down()
