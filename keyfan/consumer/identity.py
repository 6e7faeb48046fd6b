"""Who this consumer is and what it may decrypt: its role session and a discovery decryptor.

Discovery mode on purpose: the decryptor names no key, KMS and IAM decide per message, so granting this
role another department's key is an IAM change that works without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass

import boto3
import botocore.session
from botocore.config import Config

from keyfan.aws import botocore_session_for
from keyfan.crypto import DiscoveryKmsDecryptor
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
    decryptor: DiscoveryKmsDecryptor
    botocore_session: botocore.session.Session  # also signs MSK IAM broker tokens


def consumer_identity(settings: ConsumerSettings) -> ConsumerIdentity:
    """Assume the consumer's role (when set), ask STS who we are, build the discovery decryptor."""
    core = botocore_session_for(settings)
    core.set_default_client_config(_KMS_CLIENT_CONFIG)
    caller = boto3.Session(botocore_session=core, region_name=settings.region).client("sts")
    who = caller.get_caller_identity()
    accounts = settings.discovery_accounts or (str(who["Account"]),)
    decryptor = DiscoveryKmsDecryptor(
        botocore_session=core,
        account_ids=tuple(accounts),
        partition=settings.aws_partition,
        cache_enabled=settings.cache_enabled,
        cache_capacity=settings.cache_capacity,
        # the revocation bound: a revoked grant stops decrypting within this age
        cache_max_age_seconds=settings.decrypt_cache_max_age_seconds,
    )
    return ConsumerIdentity(
        principal=str(who["Arn"]), account=str(who["Account"]), decryptor=decryptor, botocore_session=core
    )
