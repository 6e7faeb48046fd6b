"""What the stack passes to the iac/ templates and grants its two local users."""

from __future__ import annotations

from typing import Any

import pytest

from keyfan.departments import Department
from keyfan.exceptions import LocalStackError
from keyfan_tools.local import identities, provision

RUNNER = "arn:aws:iam::123456789012:user/keyfan-local-runner"


def test_platform_parameters_follow_the_contract() -> None:
    assert provision.platform_parameters("keyfan", [RUNNER]) == {
        "NamePrefix": "keyfan",
        "LocalPrincipalArns": RUNNER,
        "DeployCompute": "false",
    }
    assert provision.platform_stack_name("keyfan") == "keyfan-platform"


def test_department_parameters_come_from_the_registry() -> None:
    hr = Department(
        name="hr", partitions=(6,), key_alias="alias/keyfan-hr", consumer_identity="keyfan-hr-consumer"
    )
    assert provision.department_parameters(
        hr,
        prefix="kf",
        owner_role_name="kf-owner",
        subject_key_table="kf-subject-keys",
        local_principals=[RUNNER],
    ) == {
        "DepartmentName": "hr",
        "KeyAlias": "alias/keyfan-hr",
        "ConsumerRoleName": "keyfan-hr-consumer",
        "OwnerRoleName": "kf-owner",
        "SubjectKeyTableName": "kf-subject-keys",
        "NamePrefix": "kf",
        "LocalPrincipalArns": RUNNER,
        "DeployCompute": "false",
    }
    assert provision.department_stack_name("kf", "hr") == "kf-dept-hr"


def test_runner_may_only_assume_the_listed_roles() -> None:
    policy = identities.runner_policy(["arn:role/b", "arn:role/a", "arn:role/a"])
    assert policy["Statement"] == [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ["arn:role/a", "arn:role/b"]}
    ]
    assert identities.runner_policy([])["Statement"][0]["Effect"] == "Deny"


def test_admin_is_administrator() -> None:
    assert identities.administrator_policy()["Statement"] == [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}
    ]


class FakeCfn:
    """Just enough CloudFormation to check create/skip/update decisions without moto."""

    def __init__(self) -> None:
        self.stacks: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        if StackName not in self.stacks:
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "ValidationError", "Message": "Stack x does not exist"}}, "Describe"
            )
        return {"Stacks": [self.stacks[StackName]]}

    def get_template(self, StackName: str) -> dict[str, Any]:
        return {"TemplateBody": self.stacks[StackName]["_body"]}

    def _put(
        self, verb: str, StackName: str, TemplateBody: str, Parameters: list[dict[str, str]], **_: Any
    ) -> None:
        self.calls.append(verb)
        self.stacks[StackName] = {
            "StackStatus": f"{verb}_COMPLETE",
            "Parameters": Parameters,
            "Outputs": [{"OutputKey": "KeyArn", "OutputValue": f"arn:{len(self.calls)}"}],
            "_body": TemplateBody,
        }

    def create_stack(self, **kw: Any) -> None:
        self._put("CREATE", **kw)

    def update_stack(self, **kw: Any) -> None:
        self._put("UPDATE", **kw)


def test_deploy_creates_then_leaves_an_unchanged_stack_alone() -> None:
    cfn = FakeCfn()
    assert provision.deploy_stack(cfn, "s", "body", {"A": "1"}) == {"KeyArn": "arn:1"}
    assert provision.deploy_stack(cfn, "s", "body\n", {"A": "1"}) == {"KeyArn": "arn:1"}
    assert cfn.calls == ["CREATE"]
    provision.deploy_stack(cfn, "s", "body", {"A": "2"})
    provision.deploy_stack(cfn, "s", "new body", {"A": "2"})
    assert cfn.calls == ["CREATE", "UPDATE", "UPDATE"]


def test_failed_stack_is_reported() -> None:
    cfn = FakeCfn()
    cfn.stacks["s"] = {"StackStatus": "UPDATE_ROLLBACK_COMPLETE", "Parameters": [], "_body": "b"}
    with pytest.raises(LocalStackError, match="UPDATE_ROLLBACK_COMPLETE"):
        provision.deploy_stack(cfn, "s", "b", {})


def test_missing_output_names_the_contract() -> None:
    with pytest.raises(LocalStackError, match="no output 'QueueUrl'"):
        provision._output({}, "QueueUrl", "keyfan-platform")
