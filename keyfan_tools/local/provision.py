"""Provision the stack as its admin: the real CloudFormation templates from ``iac/`` into moto, the runner's
AssumeRole grant on the roles they output, and the Kafka topics (``provision_stack``).

Deliberately the same templates as production, so a policy change in ``iac/`` changes what the local tests
enforce. moto's CloudFormation skips what it cannot emulate (MSK, and compute: the local stack passes
``DeployCompute=false``); Kafka topics are created by ``topics.py`` instead.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from keyfan.departments import Department, DepartmentRegistry
from keyfan.exceptions import LocalStackError
from keyfan_tools.local import identities, sessions, topics
from keyfan_tools.local.config import StackConfig
from keyfan_tools.local.state import DepartmentResources, PlatformResources, StackState, save_state

PLATFORM_TEMPLATE = "platform.yaml"
DEPARTMENT_TEMPLATE = "department.yaml"
_CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
_DONE = ("_COMPLETE", "_FAILED")


def platform_stack_name(prefix: str) -> str:
    return f"{prefix}-platform"


def department_stack_name(prefix: str, department: str) -> str:
    return f"{prefix}-dept-{department}"


def platform_parameters(prefix: str, local_principals: list[str]) -> dict[str, str]:
    return {"NamePrefix": prefix, "LocalPrincipalArns": ",".join(local_principals), "DeployCompute": "false"}


def department_parameters(
    department: Department,
    *,
    prefix: str,
    owner_role_name: str,
    subject_key_table: str,
    local_principals: list[str],
) -> dict[str, str]:
    return {
        "DepartmentName": department.name,
        "KeyAlias": department.key_alias,
        "ConsumerRoleName": department.consumer_identity,
        "OwnerRoleName": owner_role_name,
        "SubjectKeyTableName": subject_key_table,
        "NamePrefix": prefix,
        "LocalPrincipalArns": ",".join(local_principals),
        "DeployCompute": "false",
    }


def read_template(iac_dir: Path, name: str) -> str:
    path = iac_dir / name
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LocalStackError(f"CloudFormation template missing: {path}") from None


def deploy_stack(
    cfn: Any, name: str, template: str, parameters: Mapping[str, str], timeout: float = 60
) -> dict[str, str]:
    """Create the stack, or update it if its template or parameters changed; return its outputs.

    An unchanged stack is left alone: moto's update path may replace resources (a new KMS key would orphan
    every ciphertext already on the topic), so we only update when something really changed.
    """
    params = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    existing = _describe(cfn, name)
    try:
        if existing is None or existing["StackStatus"] in ("ROLLBACK_COMPLETE", "DELETE_COMPLETE"):
            if existing is not None and existing["StackStatus"] == "ROLLBACK_COMPLETE":
                cfn.delete_stack(StackName=name)
            cfn.create_stack(
                StackName=name, TemplateBody=template, Parameters=params, Capabilities=_CAPABILITIES
            )
        elif _changed(cfn, name, existing, template, parameters):
            cfn.update_stack(
                StackName=name, TemplateBody=template, Parameters=params, Capabilities=_CAPABILITIES
            )
    except ClientError as exc:
        if "No updates are to be performed" not in str(exc):
            raise LocalStackError(f"CloudFormation stack {name}: {exc}") from exc
    stack = _wait(cfn, name, timeout)
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _describe(cfn: Any, name: str) -> dict[str, Any] | None:
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise LocalStackError(f"CloudFormation stack {name}: {exc}") from exc
    return stacks[0] if stacks else None


def _changed(
    cfn: Any, name: str, existing: dict[str, Any], template: str, parameters: Mapping[str, str]
) -> bool:
    current = {p["ParameterKey"]: p.get("ParameterValue", "") for p in existing.get("Parameters", [])}
    if any(current.get(k) != v for k, v in parameters.items()):
        return True
    body = cfn.get_template(StackName=name).get("TemplateBody")
    return not isinstance(body, str) or body.strip() != template.strip()


def _wait(cfn: Any, name: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stack = _describe(cfn, name)
        if stack is None:
            raise LocalStackError(f"CloudFormation stack {name} vanished while deploying")
        status: str = stack["StackStatus"]
        if status.endswith(_DONE) and not status.endswith("IN_PROGRESS"):
            if "ROLLBACK" in status or status.endswith("FAILED"):
                reason = stack.get("StackStatusReason", "")
                raise LocalStackError(f"CloudFormation stack {name} ended in {status} {reason}".strip())
            return stack
        if time.monotonic() > deadline:
            raise LocalStackError(f"CloudFormation stack {name} still {status} after {timeout:.0f}s")
        time.sleep(0.1)


def _output(outputs: Mapping[str, str], key: str, stack: str) -> str:
    try:
        return outputs[key]
    except KeyError:
        raise LocalStackError(
            f"CloudFormation stack {stack} has no output {key!r} (outputs: {sorted(outputs)}): "
            "check the template against the contract in docs/local-stack.md"
        ) from None


def deploy_platform(
    cfn: Any, iac_dir: Path, *, prefix: str, local_principals: list[str]
) -> PlatformResources:
    name = platform_stack_name(prefix)
    out = deploy_stack(
        cfn, name, read_template(iac_dir, PLATFORM_TEMPLATE), platform_parameters(prefix, local_principals)
    )
    return PlatformResources(
        stack_name=name,
        queue_url=_output(out, "QueueUrl", name),
        queue_arn=_output(out, "QueueArn", name),
        dlq_url=_output(out, "DeadLetterQueueUrl", name),
        dlq_arn=_output(out, "DeadLetterQueueArn", name),
        owner_role_arn=_output(out, "OwnerRoleArn", name),
        owner_role_name=_output(out, "OwnerRoleName", name),
        generator_role_arn=_output(out, "GeneratorRoleArn", name),
        subject_key_table=_output(out, "SubjectKeyTableName", name),
    )


def deploy_departments(
    cfn: Any,
    iac_dir: Path,
    registry: DepartmentRegistry,
    *,
    prefix: str,
    owner_role_name: str,
    subject_key_table: str,
    local_principals: list[str],
) -> dict[str, DepartmentResources]:
    template = read_template(iac_dir, DEPARTMENT_TEMPLATE)
    deployed: dict[str, DepartmentResources] = {}
    for department in registry:
        name = department_stack_name(prefix, department.name)
        params = department_parameters(
            department,
            prefix=prefix,
            owner_role_name=owner_role_name,
            subject_key_table=subject_key_table,
            local_principals=local_principals,
        )
        out = deploy_stack(cfn, name, template, params)
        deployed[department.name] = DepartmentResources(
            name=department.name,
            partitions=department.partitions,
            key_arn=_output(out, "KeyArn", name),
            key_alias=out.get("KeyAlias", department.key_alias),
            role_arn=_output(out, "ConsumerRoleArn", name),
            stack_name=name,
        )
    return deployed


class Provisioned(NamedTuple):
    state: StackState
    notes: list[str]  # what was done beyond CloudFormation (topics created or re-created), for the CLI


def provision_stack(
    config: StackConfig, state: StackState, registry: DepartmentRegistry | None = None
) -> Provisioned:
    """As the admin: deploy the templates, grant the runner AssumeRole on their roles, create or grow the
    topics; save and return the provisioned state. Idempotent."""
    registry = registry or config.registry()
    if state.runner is None:
        raise LocalStackError("the local stack has no runner identity")
    admin = sessions.admin_session(config)
    cfn = admin.client("cloudformation")
    principals = [state.runner.user_arn]
    platform = deploy_platform(cfn, config.iac_dir, prefix=config.name_prefix, local_principals=principals)
    departments = deploy_departments(
        cfn,
        config.iac_dir,
        registry,
        prefix=config.name_prefix,
        owner_role_name=platform.owner_role_name,
        subject_key_table=platform.subject_key_table,
        local_principals=principals,
    )
    roles = [
        platform.owner_role_arn,
        platform.generator_role_arn,
        *(d.role_arn for d in departments.values()),
    ]
    identities.grant_runner(admin.client("iam"), config.name_prefix, roles)
    wanted = state.topics.model_copy(update={"partitions": registry.partition_count})
    if state.bootstrap_servers is None:
        raise LocalStackError("the local stack has no broker")
    notes = topics.run_sync(topics.ensure_topics(state.bootstrap_servers, topics.topic_partitions(wanted)))
    state = state.model_copy(
        update={
            "platform": platform,
            "departments": departments,
            "topics": wanted,
            "departments_file": config.departments_file,
            "provisioned_at": datetime.now(UTC),
        }
    )
    save_state(config.state_dir, state)
    return Provisioned(state, notes)
