"""What the benchmark needs from a running local stack, and the codecs it builds on it.

Every identity is the real one: the owner encrypts as the owner role, the sales consumer decrypts as the
sales role, the generator sends as the generator role (each assumed from the runner, as in the services).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

import botocore.session
from botocore.exceptions import ClientError

from keyfan.crypto import DiscoveryKmsDecryptor, KmsObserver, StrictKmsEncryptor, SuiteName
from keyfan.crypto.ports import Decryptor, Encryptor
from keyfan.departments import DepartmentRegistry
from keyfan.exceptions import KeyfanError
from keyfan.owner import key_arns_for
from keyfan.settings import ConsumerSettings, DataKeyCacheSettings
from keyfan.sqs import SqsQueue
from keyfan_tools.bench.codecs import PlaintextDecryptor, PlaintextEncryptor
from keyfan_tools.local import LocalStack

Codec = Literal["encrypted", "plaintext"]
CODECS: tuple[Codec, ...] = ("plaintext", "encrypted")


class BenchError(KeyfanError):
    """The benchmark could not complete a measurement (a path stalled, the stack is not up)."""


def _cache_defaults() -> DataKeyCacheSettings:
    # The services' own defaults, not tuned for the benchmark (no environment read: model_construct).
    return DataKeyCacheSettings.model_construct()


@dataclass(frozen=True)
class BenchContext:
    stack: LocalStack
    registry: DepartmentRegistry
    account: str
    region: str
    bootstrap_servers: str
    queue_url: str
    dlq_url: str

    @classmethod
    def from_stack(cls, stack: LocalStack) -> BenchContext:
        state = stack.state
        if state.account_id is None:
            raise BenchError("the local stack is not provisioned")
        return cls(
            stack=stack,
            registry=DepartmentRegistry.load(state.departments_file),
            account=state.account_id,
            region=state.region,
            bootstrap_servers=stack.bootstrap_servers,
            queue_url=stack.queue_url,
            dlq_url=stack.dlq_url,
        )

    def botocore_session(self, identity: str) -> botocore.session.Session:
        """A fresh botocore session of ``identity`` (fresh, so KMS observers never see another run's calls)."""
        session: botocore.session.Session = self.stack.session_for(identity)._session
        return session

    def queue(self, identity: str, *, dead_letters: bool = False) -> SqsQueue:
        client = self.botocore_session(identity).create_client("sqs", region_name=self.region)
        return SqsQueue(client, self.dlq_url if dead_letters else self.queue_url)

    def purge_queue(self) -> None:
        """Empty the work queue (as the admin) so that no earlier message reaches a measured phase."""
        sqs = self.stack.admin_session().client("sqs")
        with contextlib.suppress(ClientError):
            sqs.purge_queue(QueueUrl=self.queue_url)

    def key_arns(self) -> dict[str, str]:
        return key_arns_for(self.registry, region=self.region, account=self.account)

    def encryptor(self, codec: Codec, suite: SuiteName, *, cache_enabled: bool = True) -> Encryptor:
        if codec == "plaintext":
            return PlaintextEncryptor(self.key_arns())
        cache = _cache_defaults()
        return StrictKmsEncryptor(
            self.key_arns(),
            botocore_session=self.botocore_session("owner"),
            suite=suite,
            cache_enabled=cache_enabled,
            cache_capacity=cache.cache_capacity,
            cache_max_age_seconds=cache.cache_max_age_seconds,
            cache_max_messages=cache.cache_max_messages,
            observer=KmsObserver(),
        )

    def decryptor(self, department: str, codec: Codec, *, cache_enabled: bool = True) -> Decryptor:
        if codec == "plaintext":
            return PlaintextDecryptor()
        cache = _cache_defaults()
        return DiscoveryKmsDecryptor(
            botocore_session=self.botocore_session(department),
            account_ids=(self.account,),
            cache_enabled=cache_enabled,
            cache_capacity=cache.cache_capacity,
            # The consumers' own default (the revocation bound), not the owner's encrypt-side age.
            cache_max_age_seconds=ConsumerSettings.model_fields["decrypt_cache_max_age_seconds"].default,
            observer=KmsObserver(),
        )

    def principal(self, department: str) -> str | None:
        return self.stack.role_arn(department)
