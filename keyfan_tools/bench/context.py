"""What the benchmark needs from a running local stack, and the codecs it builds on it.

Every identity is the real one: the owner encrypts as the owner role, the sales consumer decrypts as the
sales role, the generator sends as the generator role (each assumed from the runner, as in the services).
For the field-level suite each side also gets its subject keys (``subject_keys_from``), on the same session
as its data keys, as in the services.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

import botocore.session
from botocore.exceptions import ClientError

from keyfan.consumer.identity import consumer_decryptors
from keyfan.crypto import KmsObserver
from keyfan.crypto.ports import Decryptor, Encryptor
from keyfan.crypto.subjectkeys import subject_keys_from
from keyfan.departments import DepartmentRegistry
from keyfan.envelope import CONTENT_ESDK, CONTENT_V2
from keyfan.exceptions import KeyfanError
from keyfan.owner import key_arns_for, owner_encryptor
from keyfan.settings import ConsumerSettings, OwnerSettings
from keyfan.sqs import SqsQueue
from keyfan_tools.bench.codecs import PlaintextDecryptor, PlaintextEncryptor
from keyfan_tools.bench.samples import FIELDS_SUITE
from keyfan_tools.bench.timing import TimedDecryptor, TimedEncryptor, TimedSubjectKeys
from keyfan_tools.local import LocalStack

Codec = Literal["encrypted", "plaintext"]
CODECS: tuple[Codec, ...] = ("plaintext", "encrypted")
# What the owner writes: wire v2 under the department key only; wire v2 with each event's personal fields
# sealed apart under its subject's key (``fields``: crypto-shredding, what the services run by default); or
# wire v1 with the Encryption SDK's signed or unsigned suite.
Suite = Literal["v2", "fields", "signed", "unsigned"]
SUITES: tuple[Suite, ...] = ("v2", "fields", "signed", "unsigned")
FIELDS: Suite = FIELDS_SUITE


def seals_fields(suite: str) -> bool:
    """Whether ``suite`` seals personal fields under subject keys (the owner) and opens them (a consumer)."""
    return suite == FIELDS


class BenchError(KeyfanError):
    """The benchmark could not complete a measurement (a path stalled, the stack is not up)."""


@dataclass(frozen=True)
class BenchContext:
    stack: LocalStack
    registry: DepartmentRegistry
    account: str
    region: str
    bootstrap_servers: str
    queue_url: str
    dlq_url: str
    subject_key_table: str = ""

    @classmethod
    def from_stack(cls, stack: LocalStack) -> BenchContext:
        state = stack.state
        if state.account_id is None or state.platform is None:
            raise BenchError("the local stack is not provisioned")
        return cls(
            stack=stack,
            registry=DepartmentRegistry.load(state.departments_file),
            account=state.account_id,
            region=state.region,
            bootstrap_servers=stack.bootstrap_servers,
            queue_url=stack.queue_url,
            dlq_url=stack.dlq_url,
            subject_key_table=state.platform.subject_key_table,
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

    def encryptor(
        self,
        codec: Codec,
        suite: Suite,
        *,
        cache_enabled: bool = True,
        botocore_session: botocore.session.Session | None = None,
    ) -> Encryptor:
        """The owner service's own encryptor (``owner_encryptor``) with its default settings."""
        if codec == "plaintext":
            return PlaintextEncryptor(self.key_arns())
        # The services' own defaults, not tuned for the benchmark (no environment read: model_construct).
        settings = OwnerSettings.model_construct(
            wire="esdk" if suite in ("signed", "unsigned") else "v2",
            algorithm_suite="unsigned" if suite == "unsigned" else "signed",
            cache_enabled=cache_enabled,
        )
        return owner_encryptor(
            settings,
            self.key_arns(),
            botocore_session=botocore_session or self.botocore_session("owner"),
            observer=KmsObserver(),
        )

    def decryptor(
        self,
        department: str,
        codec: Codec,
        suite: Suite,
        *,
        cache_enabled: bool = True,
        botocore_session: botocore.session.Session | None = None,
    ) -> Decryptor:
        """The consumer service's own decryptor (``consumer_decryptors``) for what ``suite`` writes."""
        if codec == "plaintext":
            return PlaintextDecryptor()
        settings = ConsumerSettings.model_construct(department=department, cache_enabled=cache_enabled)
        built = consumer_decryptors(
            settings, (self.account,), botocore_session=botocore_session or self.botocore_session(department)
        )
        content = CONTENT_ESDK if suite in ("signed", "unsigned") else CONTENT_V2
        return next(decryptor for decryptor in built if decryptor.content == content)

    def owner_codec(self, codec: Codec, suite: Suite, *, cache_enabled: bool = True) -> TimedEncryptor:
        """What the owner seals and encrypts with for ``suite``: its encryptor and, for the field-level suite
        (never for the plaintext twin), its subject keys, made by ``subject_keys_from`` on the encryptor's
        session as the owner service does (so one KMS observer counts the wrapping keys' calls too)."""
        session = self.botocore_session("owner")
        encryptor = self.encryptor(codec, suite, cache_enabled=cache_enabled, botocore_session=session)
        keys = None
        if codec == "encrypted" and seals_fields(suite):
            settings = OwnerSettings.model_construct(
                region=self.region, subject_key_table=self._subject_key_table()
            )
            keys = TimedSubjectKeys(
                subject_keys_from(settings, botocore_session=session, key_ids=self.key_arns())
            )
        return TimedEncryptor(encryptor, subject_keys=keys)

    def consumer_codec(
        self, department: str, codec: Codec, suite: Suite, *, cache_enabled: bool = True
    ) -> TimedDecryptor:
        """What ``department``'s consumer decrypts with for ``suite``: its decryptor and, for the field-level
        suite, its subject keys (no key ids: a reader), on one session of its role as the service does."""
        session = self.botocore_session(department)
        decryptor = self.decryptor(
            department, codec, suite, cache_enabled=cache_enabled, botocore_session=session
        )
        keys = None
        if codec == "encrypted" and seals_fields(suite):
            settings = ConsumerSettings.model_construct(
                department=department, region=self.region, subject_key_table=self._subject_key_table()
            )
            keys = TimedSubjectKeys(subject_keys_from(settings, botocore_session=session))
        return TimedDecryptor(decryptor, subject_keys=keys)

    def _subject_key_table(self) -> str:
        if not self.subject_key_table:
            raise BenchError(
                "the local stack has no subject-key table (provisioned before crypto-shredding?)"
            )
        return self.subject_key_table

    def principal(self, department: str) -> str | None:
        return self.stack.role_arn(department)
