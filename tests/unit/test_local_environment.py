"""`keyfan local env`: exactly the names the services read, and shell-safe output."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from keyfan.exceptions import LocalStackError
from keyfan.settings import ConsumerSettings, OwnerSettings
from keyfan_tools.local.environment import (
    department_var,
    identities,
    identity_env,
    render_exports,
    role_arn_for,
    stack_env,
)
from keyfan_tools.local.state import StackState
from tests.unit.test_local_state import make_state


@pytest.fixture
def state(tmp_path: Path) -> StackState:
    return make_state(tmp_path)


def test_stack_env_has_the_production_names(state: StackState) -> None:
    env = stack_env(state)
    assert set(env) == {
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "KEYFAN_BOOTSTRAP_SERVERS",
        "KEYFAN_TOPIC",
        "KEYFAN_AUDIT_TOPIC",
        "KEYFAN_DLQ_TOPIC",
        "KEYFAN_QUEUE_URL",
        "KEYFAN_DLQ_URL",
        "KEYFAN_DEPARTMENTS_FILE",
        "KEYFAN_OWNER_ROLE_ARN",
        "KEYFAN_GENERATOR_ROLE_ARN",
        "KEYFAN_SUBJECT_KEY_TABLE",
        "KEYFAN_SALES_ROLE_ARN",
        "KEYFAN_SALES_KEY_ARN",
    }
    assert env["AWS_ACCESS_KEY_ID"] == "AKIARUNNER"  # the runner: it can only assume roles
    assert env["KEYFAN_BOOTSTRAP_SERVERS"] == "127.0.0.1:9093"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5001"
    assert env["KEYFAN_TOPIC"] == "keyfan.events"
    assert env["KEYFAN_SUBJECT_KEY_TABLE"] == "keyfan-subject-keys"
    assert Path(env["KEYFAN_DEPARTMENTS_FILE"]).is_absolute()


def test_a_state_from_before_the_subject_key_table_exports_no_table(state: StackState) -> None:
    assert state.platform is not None
    older = state.model_copy(update={"platform": state.platform.model_copy(update={"subject_key_table": ""})})
    assert "KEYFAN_SUBJECT_KEY_TABLE" not in stack_env(older)


def test_settings_read_the_rendered_env(state: StackState, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in identity_env(state, "sales").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KEYFAN_DEPARTMENTS_FILE", "departments.toml")
    consumer = ConsumerSettings()  # type: ignore[call-arg]
    assert consumer.department == "sales"
    assert consumer.role_arn == state.departments["sales"].role_arn
    assert consumer.bootstrap_servers == "127.0.0.1:9093"
    for name, value in identity_env(state, "owner").items():
        monkeypatch.setenv(name, value)
    owner = OwnerSettings()  # type: ignore[call-arg]
    assert owner.queue_url == "https://sqs/q" and owner.dlq_url == "https://sqs/dlq"
    assert owner.role_arn == "arn:aws:iam::123456789012:role/keyfan-owner"


@pytest.mark.parametrize(
    ("department", "expected"), [("hr", "KEYFAN_HR_KEY_ARN"), ("cust-care", "KEYFAN_CUST_CARE_KEY_ARN")]
)
def test_department_variable_names(department: str, expected: str) -> None:
    assert department_var(department, "KEY_ARN") == expected


def test_identities_and_their_roles(state: StackState) -> None:
    assert identities(state) == ("owner", "generator", "sales", "runner")
    assert role_arn_for(state, "generator") == "arn:aws:iam::123456789012:role/keyfan-generator"
    assert role_arn_for(state, "runner") is None
    assert "KEYFAN_ROLE_ARN" not in identity_env(state, "runner")
    assert "KEYFAN_DEPARTMENT" not in identity_env(state, "owner")
    with pytest.raises(LocalStackError, match="unknown identity 'payroll'"):
        role_arn_for(state, "payroll")


def test_env_of_a_stack_that_is_not_up_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LocalStackError, match="not up"):
        stack_env(StackState(region="us-east-1", departments_file=tmp_path / "d.toml"))


def test_exports_evaluate_in_bash_even_with_awkward_values() -> None:
    env = {"KEYFAN_A": "with space", "KEYFAN_B": "it's $HOME `x`", "AWS_REGION": "eu-west-1"}
    script = (
        render_exports(env)
        + 'printf "%s|%s|%s|%s" "$KEYFAN_A" "$KEYFAN_B" "$AWS_REGION" "${AWS_PROFILE-unset}"'
    )
    out = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env={"AWS_PROFILE": "prod"}, check=True
    ).stdout
    assert out == "with space|it's $HOME `x`|eu-west-1|unset"
