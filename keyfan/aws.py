"""The one place that builds AWS sessions.

On ECS a task simply uses its task role (``role_arn`` unset: the default credential chain). Locally every
process starts with the runner's keys, which can do nothing but ``sts:AssumeRole``, and assumes its own role
here, exactly like the ECS agent hands a task its role. The returned session then holds *only* the role's
credentials, refreshed before they expire, so a service can never fall back to the runner's identity.

The endpoint is never passed in code: boto3 honours ``AWS_ENDPOINT_URL`` (or ``endpoint_url`` in the
config file) on its own, which is how the same code reaches moto locally and AWS in production.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import botocore.session
from botocore.credentials import CredentialProvider, CredentialResolver, DeferredRefreshableCredentials

from keyfan.settings import KeyfanSettings

_SESSION_SECONDS = 3600


class _AssumedRoleProvider(CredentialProvider):
    """Credentials of one role, fetched lazily from STS with the ambient identity and auto-refreshed."""

    METHOD = "keyfan-assume-role"
    CANONICAL_NAME = "KeyfanAssumeRole"

    def __init__(self, role_arn: str, session_name: str, base: botocore.session.Session, region: str) -> None:
        super().__init__()
        self._role_arn = role_arn
        self._session_name = session_name
        self._base = base
        self._region = region

    def _fetch(self) -> dict[str, Any]:
        sts = self._base.create_client("sts", region_name=self._region)
        creds = sts.assume_role(
            RoleArn=self._role_arn, RoleSessionName=self._session_name, DurationSeconds=_SESSION_SECONDS
        )["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    def load(self) -> DeferredRefreshableCredentials:
        return DeferredRefreshableCredentials(refresh_using=self._fetch, method=self.METHOD)


def default_session_name(role_arn: str) -> str:
    """Role session names show up in every denial and CloudTrail line: make them say who and which pid."""
    role = role_arn.rsplit("/", 1)[-1]
    return f"{role}-{os.getpid()}"[:64]


def botocore_session_for(
    settings: KeyfanSettings,
    *,
    base: botocore.session.Session | None = None,
    session_name: str | None = None,
) -> botocore.session.Session:
    """A botocore session (what the Encryption SDK takes as ``botocore_session=``) for this process's identity.

    ``base`` supplies the ambient credentials and config (default: the standard chain); it is used only to
    call STS when ``settings.role_arn`` is set.
    """
    if base is None:
        base = botocore.session.get_session()
        base.set_config_variable("region", settings.region)
    if not settings.role_arn:
        return base
    role_session = botocore.session.Session()
    # Same config file (endpoint, retries) and profile as the ambient session, other credentials.
    role_session.set_config_variable("config_file", base.get_config_variable("config_file"))
    if base.profile is not None:
        role_session.set_config_variable("profile", base.profile)
    role_session.set_config_variable("region", settings.region)
    provider = _AssumedRoleProvider(
        settings.role_arn, session_name or default_session_name(settings.role_arn), base, settings.region
    )
    role_session.register_component("credential_provider", CredentialResolver(providers=[provider]))
    return role_session


def session_for(
    settings: KeyfanSettings,
    *,
    base: botocore.session.Session | None = None,
    session_name: str | None = None,
) -> boto3.Session:
    """The boto3 session every Keyfan process uses (see the module docstring for the identity rules)."""
    core = botocore_session_for(settings, base=base, session_name=session_name)
    return boto3.Session(botocore_session=core, region_name=settings.region)


def caller_arn(session: boto3.Session) -> str:
    """Who this session really is (STS GetCallerIdentity is always allowed, even under an explicit Deny)."""
    return str(session.client("sts").get_caller_identity()["Arn"])
