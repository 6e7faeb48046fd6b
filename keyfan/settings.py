"""Settings: frozen pydantic-settings objects, read from the environment by entrypoints only.

Every service reads the same variable names locally and in production (``keyfan local env`` prints them).
Standard AWS variables (``AWS_REGION``, ``AWS_ENDPOINT_URL``, credentials) are left to boto3, except the
region which we also need for ARNs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, PositiveInt, create_model, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from keyfan.departments import DepartmentRegistry

# The Encryption SDK algorithm suite by name (``keyfan.crypto.SUITES`` maps it); defined here, not in the
# crypto package, so reading settings never imports boto3 or the Encryption SDK.
SuiteName = Literal["signed", "unsigned"]
# What the owner writes: "v2" (AES-256-GCM under a session data key, the default) or "esdk" (wire v1, one
# Encryption SDK message per record, in ``algorithm_suite``). Consumers read both, whatever this says.
WireName = Literal["v2", "esdk"]
KafkaAuth = Literal["none", "msk_iam"]


class KeyfanSettings(BaseSettings):
    """What every Keyfan process needs."""

    model_config = SettingsConfigDict(env_prefix="KEYFAN_", frozen=True, extra="ignore")

    departments_file: Path = Path("departments.toml")
    region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION", "KEYFAN_REGION"),
    )
    # Role to assume at start. Locally each process assumes its own role, the way ECS hands a task its
    # task role; on ECS leave it unset and the task role's credentials are used as they are.
    role_arn: str | None = None

    def registry(self) -> DepartmentRegistry:
        return DepartmentRegistry.load(self.departments_file)


class KafkaSettings(KeyfanSettings):
    """Broker and topics."""

    log_level: str = "INFO"  # the service's own log level (KEYFAN_LOG_LEVEL); a flag may override it
    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "keyfan.events"
    audit_topic: str = "keyfan.audit"
    dlq_topic: str = "keyfan.dlq"
    # "msk_iam": SASL/OAUTHBEARER over TLS with the service's role (MSK); "none": plaintext (local, compose).
    kafka_auth: KafkaAuth = "none"
    # Replication of the topics Faust creates itself (Table changelogs): 1 locally, 3 on MSK.
    replication_factor: PositiveInt = 1
    # Faust worker tuning; Tansu needs a short session timeout (see docs/architecture.md).
    broker_session_timeout: float = 6.0
    broker_heartbeat_interval: float = 1.5
    web_port: int = 6066
    data_dir: Path = Path(".keyfan/faust")

    @field_validator("bootstrap_servers")
    @classmethod
    def _strip_scheme(cls, value: str) -> str:
        return ",".join(s.strip().removeprefix("kafka://") for s in value.split(",") if s.strip())

    @property
    def faust_broker(self) -> str:
        return ";".join(f"kafka://{s}" for s in self.bootstrap_servers.split(","))


class DataKeyCacheSettings(KeyfanSettings):
    """Data-key reuse: how long and for how many records one data key may be used.

    On the owner, wire v2 rotates its session data key at ``cache_max_messages`` records or
    ``cache_max_age_seconds``, whichever comes first (``cache_enabled = false``: a new key per record);
    wire v1 gives the same four to the Encryption SDK's caching materials manager.
    """

    cache_enabled: bool = True
    cache_capacity: PositiveInt = 100
    cache_max_age_seconds: float = 300.0
    cache_max_messages: PositiveInt = 1_000_000


class SubjectKeySettings(KeyfanSettings):
    """The subject-key table of crypto-shredding (docs/architecture.md, "Crypto-shredding")."""

    subject_key_table: str = "keyfan-subject-keys"
    # How long a process keeps a subject key (or its absence): the forget bound. After ``keyfan forget``
    # no owner seals and no consumer opens the subject's fields with the old key past this age.
    subject_key_max_age_seconds: float = Field(default=30.0, gt=0)
    subject_key_cache_entries: PositiveInt = 100_000


class ErasureSettings(KafkaSettings, SubjectKeySettings):
    """``keyfan forget``: the key table, and the audit topic its record goes to."""


class GeneratorSettings(KeyfanSettings):
    """The generator Lambda."""

    queue_url: str


class OwnerSettings(KafkaSettings, DataKeyCacheSettings, SubjectKeySettings):
    """The owner service."""

    queue_url: str
    dlq_url: str
    poll_concurrency: PositiveInt = 4
    poll_wait_seconds: int = Field(default=2, ge=0, le=20)
    visibility_timeout_seconds: int = Field(default=30, ge=1)
    max_body_bytes: PositiveInt = 256 * 1024
    wire: WireName = "v2"
    # The Encryption SDK suite, for ``wire = "esdk"`` only.
    algorithm_suite: SuiteName = "signed"
    # Transient failures (KMS or broker down) are retried in-process with this backoff, extending the
    # message's visibility, so an outage does not burn SQS receive counts towards the redrive.
    retry_initial_seconds: float = Field(default=0.5, gt=0)
    retry_max_seconds: float = Field(default=15.0, gt=0)
    # A message whose handling raises something unexpected (a bug, not an outage) is tried this many times
    # in-process, then dead-lettered with reason ``unexpected_<ExceptionType>``.
    unexpected_max_attempts: PositiveInt = 3
    publish_timeout_seconds: float = Field(default=10.0, gt=0)
    shutdown_timeout_seconds: float = Field(default=20.0, gt=0)


class ConsumerSettings(KafkaSettings, DataKeyCacheSettings, SubjectKeySettings):
    """A department consumer."""

    department: str
    group_id: str | None = None
    own_partitions: bool = False
    # Accounts (and partition) whose KMS keys a discovery decryptor may call; empty means the caller's own.
    discovery_accounts: tuple[str, ...] = ()
    aws_partition: str = "aws"
    denial_ttl_seconds: float = 30.0
    # Max age of a cached (unwrapped) data key on the decrypt side: the revocation bound. After an IAM revoke
    # the next decrypt past this age asks KMS and is denied. Costs about one KMS Decrypt per data key per age.
    decrypt_cache_max_age_seconds: float = Field(default=30.0, gt=0)
    retry_initial_seconds: float = 0.2
    retry_max_seconds: float = 5.0
    # An unexpected error (a bug, not an outage) is retried this many times in all, then dead-lettered.
    unexpected_max_attempts: PositiveInt = 3
    # Event ids remembered for deduplication, per department (split over its partitions).
    dedupe_window_events: PositiveInt = 100_000
    # Records whose outcomes reach the state table (and whose audit records are acknowledged) together. A
    # batch ends sooner when no more records are waiting, so this bounds catch-up work, not latency.
    batch_max_records: PositiveInt = 500

    @classmethod
    def for_app(cls, default_department: str, **overrides: Any) -> ConsumerSettings:
        """Settings for a department's app: ``KEYFAN_DEPARTMENT`` (if set) or the app's own department;
        explicit ``overrides`` (flags) win over both."""
        app_settings = create_model(cls.__name__, __base__=cls, department=(str, default_department))
        return app_settings(**overrides)

    @property
    def consumer_group(self) -> str:
        return self.group_id or f"keyfan-{self.department}"
