"""In-process moto with IAM authorization on: the setup the functional crypto tests share."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import settings as moto_settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.dynamodb.responses import DynamoHandler
from moto.kms.responses import KmsResponse

from keyfan_tools.local.moto_patches import determine_dynamodb_resource, determine_kms_resource

REGION = "us-east-1"


def enforce_iam_after(
    monkeypatch: pytest.MonkeyPatch,
    provisioning_calls: int,
    *,
    key_scoped_kms: bool = True,
    table_scoped_dynamodb: bool = True,
) -> None:
    """Test credentials, no endpoint override, and IAM deciding every call after the first
    ``provisioning_calls`` (what moto's ``set_initial_no_auth_action_count`` does, as a fixture step).
    ``key_scoped_kms`` and ``table_scoped_dynamodb`` teach moto the KMS key ARN and the DynamoDB table ARN of
    each call, as the local stack's moto server has them."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    if key_scoped_kms:
        monkeypatch.setattr(KmsResponse, "_determine_resource", determine_kms_resource, raising=False)
    if table_scoped_dynamodb:
        monkeypatch.setattr(DynamoHandler, "_determine_resource", determine_dynamodb_resource, raising=False)
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", provisioning_calls)
    monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)


def user_session(iam: Any, name: str, statements: list[dict[str, Any]] | None) -> boto3.Session:
    """An IAM user allowed ``statements`` (none: no policy at all), as a boto3 session. Three provisioning
    calls (two without statements)."""
    iam.create_user(UserName=name)
    if statements is not None:
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **s} for s in statements]}
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return boto3.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=REGION
    )
