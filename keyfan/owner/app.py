"""The owner's Faust app factory: wiring only (settings -> adapters -> ``keyfan.owner.pipeline``).

The app consumes nothing (``producer_only``); it is a Faust worker so that it shares the producer, the web
server (for ``/metrics``), signal handling and lifecycle of every other Keyfan service. SQS polling runs as a Faust
service: started once the producer is up, stopped (drained) before the producer closes.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import boto3
import botocore.session
import faust
import mode
from aiokafka.errors import KafkaError
from botocore.config import Config
from faust.exceptions import ProducerSendError

from keyfan.aws import botocore_session_for
from keyfan.crypto import Encryptor, KmsObserver, SessionDataKeys, SessionKeyEncryptor, StrictKmsEncryptor
from keyfan.crypto.subjectkeys import SubjectKeys, subject_keys_from
from keyfan.departments import DepartmentRegistry
from keyfan.envelope import Headers
from keyfan.exceptions import PublishFailed
from keyfan.kafka_auth import broker_credentials
from keyfan.metrics import expose_metrics
from keyfan.owner.metrics import OwnerMetrics
from keyfan.owner.pipeline import OwnerPipeline, key_arns_for
from keyfan.owner.ports import DeadLetterQueue, Publisher, WorkQueue
from keyfan.owner.runner import OwnerRunner
from keyfan.retry import RetryPolicy
from keyfan.settings import OwnerSettings
from keyfan.sqs import SqsQueue

log = logging.getLogger("keyfan.owner_service")

APP_ID = "keyfan-owner"
# Short timeouts so an outage surfaces as a retryable error quickly instead of hanging a thread.
AWS_CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=10,
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=64,  # pollers, deletes and encrypts share clients across many threads
)


class FaustPublisher:
    """Publishes through the Faust app's producer and waits for the broker's acknowledgement."""

    def __init__(self, app: faust.App, timeout: float) -> None:
        self._app = app
        self._timeout = timeout

    async def publish(self, *, topic: str, partition: int, key: bytes, value: bytes, headers: Headers) -> int:
        try:
            async with asyncio.timeout(self._timeout):
                pending = await self._app.producer.send(topic, key, value, partition, None, headers)
                metadata = await pending
        except (TimeoutError, KafkaError, ProducerSendError) as exc:
            raise PublishFailed(f"broker did not acknowledge: {type(exc).__name__}") from exc
        return int(metadata.offset)


def owner_encryptor(
    settings: OwnerSettings,
    key_arns: dict[str, str],
    *,
    botocore_session: botocore.session.Session,
    observer: KmsObserver | None = None,
) -> Encryptor:
    """The owner's encryptor for ``settings.wire``: the one wiring the service and the benchmark share.

    Both read the same four data-key settings: v2 rotates its session key by them, v1 caches by them.
    """
    if settings.wire == "v2":
        keys = SessionDataKeys(
            key_arns,
            botocore_session=botocore_session,
            max_records=settings.cache_max_messages if settings.cache_enabled else 1,
            max_age_seconds=settings.cache_max_age_seconds,
            observer=observer,
        )
        return SessionKeyEncryptor(keys)
    return StrictKmsEncryptor(
        key_arns,
        botocore_session=botocore_session,
        suite=settings.algorithm_suite,
        cache_enabled=settings.cache_enabled,
        cache_capacity=settings.cache_capacity,
        cache_max_age_seconds=settings.cache_max_age_seconds,
        cache_max_messages=settings.cache_max_messages,
        observer=observer,
    )


def owner_runner(
    settings: OwnerSettings,
    *,
    registry: DepartmentRegistry,
    encryptor: Encryptor,
    publisher: Publisher,
    queue: WorkQueue,
    dead_letters: DeadLetterQueue,
    metrics: OwnerMetrics,
    subject_keys: SubjectKeys | None,
) -> OwnerRunner:
    """The owner's pipeline and pollers wired from its settings: the one wiring the service and the
    benchmark share (the benchmark passes its own encryptor, publisher and queues, and no subject keys for
    its plaintext twin)."""
    pipeline = OwnerPipeline(
        registry=registry,
        encryptor=encryptor,
        publisher=publisher,
        queue=queue,
        dead_letters=dead_letters,
        topic=settings.topic,
        max_body_bytes=settings.max_body_bytes,
        visibility_timeout=settings.visibility_timeout_seconds,
        retry=RetryPolicy(
            initial_seconds=settings.retry_initial_seconds,
            max_seconds=settings.retry_max_seconds,
            max_unexpected_attempts=settings.unexpected_max_attempts,
            jitter=True,
        ),
        metrics=metrics,
        subject_keys=subject_keys,
    )
    return OwnerRunner(
        pipeline,
        queue,
        concurrency=settings.poll_concurrency,
        wait_seconds=settings.poll_wait_seconds,
        visibility_timeout=settings.visibility_timeout_seconds,
    )


class OwnerService(mode.Service):
    """Builds the AWS-side adapters at start (never at import) and runs the SQS pollers."""

    def __init__(
        self,
        app: faust.App,
        settings: OwnerSettings,
        metrics: OwnerMetrics,
        core: botocore.session.Session,
        **kwargs: Any,
    ) -> None:
        self.app = app
        self.core = core
        self.settings = settings
        self.metrics = metrics
        self.runner: OwnerRunner | None = None
        super().__init__(**kwargs)

    def _build(self) -> OwnerRunner:
        """Blocking: assumes the owner role, resolves the account and builds clients and the encryptor."""
        settings = self.settings
        registry = settings.registry()
        core = self.core
        session = boto3.Session(botocore_session=core, region_name=settings.region)
        identity = session.client("sts").get_caller_identity()
        key_arns = key_arns_for(registry, region=settings.region, account=str(identity["Account"]))
        observer = KmsObserver()
        self.metrics.watch_kms(observer)
        encryptor = owner_encryptor(settings, key_arns, botocore_session=core, observer=observer)
        sqs = session.client("sqs")
        queue = SqsQueue(sqs, settings.queue_url)
        log.info(
            "owner ready",
            extra={
                "principal": identity["Arn"],
                "departments": list(registry.names),
                "topic": settings.topic,
                "wire": settings.wire,
                "subject_key_table": settings.subject_key_table,
            },
        )
        return owner_runner(
            settings,
            registry=registry,
            encryptor=encryptor,
            publisher=FaustPublisher(self.app, settings.publish_timeout_seconds),
            queue=queue,
            dead_letters=SqsQueue(sqs, settings.dlq_url),
            metrics=self.metrics,
            subject_keys=subject_keys_from(settings, botocore_session=core, key_ids=key_arns),
        )

    async def on_start(self) -> None:
        # Pollers, encrypts and SQS calls all run in threads: size the pool for them.
        workers = self.settings.poll_concurrency * 11 + 4
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=workers))
        self.runner = await asyncio.to_thread(self._build)

    async def on_started(self) -> None:
        assert self.runner is not None
        self.runner.start()
        log.info("polling SQS", extra={"pollers": self.settings.poll_concurrency})

    async def on_stop(self) -> None:
        if self.runner is None:
            return
        log.info("stopping: draining in-flight messages")
        finished = await self.runner.drain(self.settings.shutdown_timeout_seconds)
        log.info("owner stopped", extra={"drained": finished, **self.metrics.snapshot()})


def create_owner_app(settings: OwnerSettings, *, metrics: OwnerMetrics | None = None) -> faust.App:
    """The owner's Faust app. No I/O here: AWS clients are built when the worker starts."""
    # One identity for KMS, SQS and (on MSK) the broker; the role is assumed lazily, on first use.
    core = botocore_session_for(settings, session_name=None)
    core.set_default_client_config(AWS_CLIENT_CONFIG)
    app = faust.App(
        APP_ID,
        broker=settings.faust_broker,
        datadir=str(settings.data_dir),
        producer_acks=-1,  # acks=all; idempotence stays off (Tansu cannot do it): at-least-once
        producer_request_timeout=settings.publish_timeout_seconds,
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        topic_disable_leader=True,
        topic_allow_declare=False,
        topic_replication_factor=settings.replication_factor,
        broker_credentials=broker_credentials(settings, core),
        web_port=settings.web_port,
    )
    # Nothing to consume: producer and web server only (no consumer group to join, fast start).
    app.producer_only = True
    metrics = metrics or OwnerMetrics()
    expose_metrics(app, metrics.registry)
    service = OwnerService(app, settings, metrics, core)
    app.service(cast(Any, service))
    return app
