"""The stack's two IAM users, standing in for what AWS gives for free.

* The **runner** plays the ECS agent: its only permission is ``sts:AssumeRole`` on the keyfan roles, and every
  role's trust policy names its ARN (moto compares principal ARNs literally, ``:root`` admits no user). Every
  local service starts with its keys and assumes its own role, so what a service may do is exactly what its
  role allows.
* The **admin** provisions (CloudFormation into moto) and gives tests a ground truth. Its keys never leave
  the state directory's ``admin.json``.

Both are created while moto's auth is still off; the stack switches auth on right after.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import SecretStr

from keyfan_tools.local.state import AccessKey

RUNNER_POLICY = "keyfan-local-assume-roles"
ADMIN_POLICY = "keyfan-local-administrator"


def runner_user_name(prefix: str) -> str:
    return f"{prefix}-local-runner"


def admin_user_name(prefix: str) -> str:
    return f"{prefix}-local-admin"


def administrator_policy() -> dict[str, Any]:
    """AdministratorAccess, inline: moto does not load AWS-managed policies into a fresh account."""
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def runner_policy(role_arns: Iterable[str]) -> dict[str, Any]:
    """Only AssumeRole, only on the roles the stack provisioned (rewritten on every provision)."""
    arns = sorted(set(role_arns))
    if not arns:
        return {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arns}],
    }


def _create_user_with_key(iam: Any, name: str) -> AccessKey:
    user = iam.create_user(UserName=name)["User"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return AccessKey(
        user_arn=user["Arn"],
        access_key_id=key["AccessKeyId"],
        secret_access_key=SecretStr(key["SecretAccessKey"]),
    )


def create_admin(iam: Any, prefix: str) -> AccessKey:
    admin = _create_user_with_key(iam, admin_user_name(prefix))
    iam.put_user_policy(
        UserName=admin_user_name(prefix),
        PolicyName=ADMIN_POLICY,
        PolicyDocument=json.dumps(administrator_policy()),
    )
    return admin


def create_runner(iam: Any, prefix: str) -> AccessKey:
    runner = _create_user_with_key(iam, runner_user_name(prefix))
    grant_runner(iam, prefix, ())
    return runner


def grant_runner(iam: Any, prefix: str, role_arns: Iterable[str]) -> None:
    iam.put_user_policy(
        UserName=runner_user_name(prefix),
        PolicyName=RUNNER_POLICY,
        PolicyDocument=json.dumps(runner_policy(role_arns)),
    )
