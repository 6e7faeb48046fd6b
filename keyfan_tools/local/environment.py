"""Render the stack's state as the environment variables the services read in production.

Pure functions of ``StackState``: no I/O, so the exact names are unit-tested. The names are the ones
``keyfan.settings`` reads (prefix ``KEYFAN_``) plus the standard AWS ones boto3 reads itself.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from keyfan.exceptions import LocalStackError
from keyfan_tools.local.state import StackState

# Variables a user's shell may hold that would silently change who the runner's keys are.
SHADOWING_AWS_VARS = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")
PLATFORM_IDENTITIES = ("owner", "generator")
RUNNER = "runner"


def department_var(department: str, suffix: str) -> str:
    return f"KEYFAN_{department.upper().replace('-', '_')}_{suffix}"


def stack_env(state: StackState) -> dict[str, str]:
    """The shared environment: runner credentials (they can only assume roles), endpoints, topics, ARNs."""
    endpoint, bootstrap = state.endpoint_url, state.bootstrap_servers
    if state.runner is None or state.platform is None or endpoint is None or bootstrap is None:
        raise LocalStackError("the local stack is not up (run `keyfan local up`)")
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": state.region,
        "AWS_DEFAULT_REGION": state.region,
        "AWS_ACCESS_KEY_ID": state.runner.access_key_id,
        "AWS_SECRET_ACCESS_KEY": state.runner.secret_access_key.get_secret_value(),
        "KEYFAN_BOOTSTRAP_SERVERS": bootstrap,
        "KEYFAN_TOPIC": state.topics.events,
        "KEYFAN_AUDIT_TOPIC": state.topics.audit,
        "KEYFAN_DLQ_TOPIC": state.topics.dlq,
        "KEYFAN_QUEUE_URL": state.platform.queue_url,
        "KEYFAN_DLQ_URL": state.platform.dlq_url,
        "KEYFAN_DEPARTMENTS_FILE": str(state.departments_file.resolve()),
        "KEYFAN_OWNER_ROLE_ARN": state.platform.owner_role_arn,
        "KEYFAN_GENERATOR_ROLE_ARN": state.platform.generator_role_arn,
    }
    if state.platform.subject_key_table:  # empty only in a state saved before the table existed
        env["KEYFAN_SUBJECT_KEY_TABLE"] = state.platform.subject_key_table
    for name, dept in sorted(state.departments.items()):
        env[department_var(name, "ROLE_ARN")] = dept.role_arn
        env[department_var(name, "KEY_ARN")] = dept.key_arn
    return env


def identities(state: StackState) -> tuple[str, ...]:
    return (*PLATFORM_IDENTITIES, *sorted(state.departments), RUNNER)


def role_arn_for(state: StackState, identity: str) -> str | None:
    """The role a service running as ``identity`` assumes; None for the runner (it has no role)."""
    if state.platform is None:
        raise LocalStackError("the local stack is not provisioned (run `keyfan local up`)")
    if identity == RUNNER:
        return None
    if identity == "owner":
        return state.platform.owner_role_arn
    if identity == "generator":
        return state.platform.generator_role_arn
    if identity in state.departments:
        return state.departments[identity].role_arn
    raise LocalStackError(f"unknown identity {identity!r} (known: {', '.join(identities(state))})")


def identity_env(state: StackState, identity: str) -> dict[str, str]:
    """The environment a service process starts with: the shared one plus its own role (and department)."""
    env = stack_env(state)
    role = role_arn_for(state, identity)
    if role is not None:
        env["KEYFAN_ROLE_ARN"] = role
    if identity in state.departments:
        env["KEYFAN_DEPARTMENT"] = identity
    return env


def render_exports(env: Mapping[str, str]) -> str:
    """``export`` lines for ``eval "$(keyfan local env)"``, first clearing variables that would shadow them."""
    lines = [f"unset {' '.join(SHADOWING_AWS_VARS)}"]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    return "\n".join(lines) + "\n"
