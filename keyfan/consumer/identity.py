"""Who this consumer is and what it may decrypt: its role session, discovery decryptors (v2 and v1) and
subject keys (personal fields: the key table and KMS decide, as for records).

Discovery mode on purpose: the decryptors name no key, KMS and IAM decide per data key, so granting this
role another department's key is an IAM change that works without a restart. Both cache unwrapped data
keys for ``decrypt_cache_max_age_seconds``, the revocation bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import boto3
import botocore.session
from botocore.config import Config

from keyfan.aws import botocore_session_for
from keyfan.crypto import DataKeyCache, DataKeyDecryptor, Decryptor, DiscoveryKmsDecryptor, KmsObserver
from keyfan.crypto.subjectkeys import SubjectKeys, subject_keys_from
from keyfan.settings import ConsumerSettings

# Our own loop retries an unavailable KMS in place, forever, with backoff; botocore should fail fast
# and let it (a stuck 60 s read would stall the worker between attempts).
_KMS_CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"}
)


@dataclass(frozen=True, slots=True)
class ConsumerIdentity:
    principal: str
    account: str
    decryptors: tuple[Decryptor, ...]
    subject_keys: SubjectKeys
    botocore_session: botocore.session.Session  # also signs MSK IAM broker tokens


def consumer_identity(settings: ConsumerSettings) -> ConsumerIdentity:
    """Assume the consumer's role (when set), ask STS who we are, build the discovery decryptors."""
    core = botocore_session_for(settings)
    core.set_default_client_config(_KMS_CLIENT_CONFIG)
    caller = boto3.Session(botocore_session=core, region_name=settings.region).client("sts")
    who = caller.get_caller_identity()
    accounts = settings.discovery_accounts or (str(who["Account"]),)
    return ConsumerIdentity(
        principal=str(who["Arn"]),
        account=str(who["Account"]),
        decryptors=consumer_decryptors(settings, tuple(accounts), botocore_session=core),
        subject_keys=subject_keys_from(settings, botocore_session=core),
        botocore_session=core,
    )


def consumer_decryptors(
    settings: ConsumerSettings, account_ids: tuple[str, ...], *, botocore_session: botocore.session.Session
) -> tuple[Decryptor, ...]:
    """Wire v2's and v1's decryptors, sharing one KMS observer: the one wiring the service and the
    benchmark share. Both keep unwrapped data keys at most ``decrypt_cache_max_age_seconds`` (the revocation
    bound: a revoked grant stops decrypting within this age)."""
    observer = KmsObserver()
    v2 = DataKeyCache(
        botocore_session=botocore_session,
        account_ids=account_ids,
        partition=settings.aws_partition,
        max_age_seconds=settings.decrypt_cache_max_age_seconds,
        enabled=settings.cache_enabled,
        observer=observer,
    )
    v1 = DiscoveryKmsDecryptor(
        botocore_session=botocore_session,
        account_ids=account_ids,
        partition=settings.aws_partition,
        cache_enabled=settings.cache_enabled,
        cache_capacity=settings.cache_capacity,
        cache_max_age_seconds=settings.decrypt_cache_max_age_seconds,
        observer=observer,
    )
    return (DataKeyDecryptor(v2), v1)
