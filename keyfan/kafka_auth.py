"""Broker authentication: none for the embedded stack and docker-compose, IAM (SASL/OAUTHBEARER over TLS) for MSK.

On MSK each service authenticates as the same role it uses for KMS and SQS, so topic and consumer-group
permissions (``kafka-cluster:*`` in ``iac/``) are granted to exactly the identities that hold the keys.
Tokens are signed by AWS's ``aws-msk-iam-sasl-signer-python`` from the process's botocore session.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import botocore.session
from aiokafka.abc import AbstractTokenProvider
from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
from botocore.credentials import CredentialProvider
from faust.auth import OAuthCredentials

from keyfan.settings import KafkaSettings


class _SessionCredentials(CredentialProvider):
    """Hands the signer the credentials of an existing (role-assumed, auto-refreshing) session."""

    METHOD = "keyfan-session"

    def __init__(self, session: botocore.session.Session) -> None:
        super().__init__()
        self._session = session

    def load(self) -> Any:
        return self._session.get_credentials()


class MskIamTokenProvider(AbstractTokenProvider):
    """A fresh signed token per (re)authentication; signing is local, no network call."""

    def __init__(self, region: str, session: botocore.session.Session) -> None:
        self._region = region
        self._credentials = _SessionCredentials(session)

    async def token(self) -> str:
        token, _expiry_ms = await asyncio.to_thread(
            MSKAuthTokenProvider.generate_auth_token_from_credentials_provider,
            self._region,
            self._credentials,
        )
        return str(token)


def broker_credentials(
    settings: KafkaSettings, session: botocore.session.Session | None
) -> OAuthCredentials | None:
    """What a Faust app passes as ``broker_credentials``: None on a plaintext local broker."""
    if settings.kafka_auth == "none":
        return None
    if session is None:
        raise ValueError("MSK IAM authentication needs the service's botocore session")
    return OAuthCredentials(
        oauth_cb=MskIamTokenProvider(settings.region, session), ssl_context=ssl.create_default_context()
    )


def aiokafka_options(settings: KafkaSettings, session: botocore.session.Session | None) -> dict[str, Any]:
    """Connection options of a plain aiokafka client (not Faust) for the same broker and authentication."""
    options: dict[str, Any] = {"bootstrap_servers": settings.bootstrap_servers.split(",")}
    if settings.kafka_auth == "none":
        return options
    if session is None:
        raise ValueError("MSK IAM authentication needs the caller's botocore session")
    return {
        **options,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "OAUTHBEARER",
        "sasl_oauth_token_provider": MskIamTokenProvider(settings.region, session),
        "ssl_context": ssl.create_default_context(),
    }
