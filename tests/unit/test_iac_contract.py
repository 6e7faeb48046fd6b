"""The CloudFormation templates, read as data: the local-stack contract and least privilege, structurally.

No AWS and no moto here: the templates are parsed with cfn-lint's YAML loader (which understands the short
intrinsic tags) and every policy statement is checked by who it is attached to.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from keyfan.envelope import CTX_PURPOSE, PURPOSE_SUBJECT_KEYS

IAC = Path(__file__).resolve().parents[2] / "iac"
CONTEXT_KEYS = {"department", "event_type", "schema_version", "topic"}

SUBJECT_KEY_TABLE_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${SubjectKeyTableName}"
}

PLATFORM_PARAMETERS = {
    "NamePrefix",
    "LocalPrincipalArns",
    "DeployCompute",
    "VpcId",
    "SubnetIds",
    "MaxReceiveCount",
}
PLATFORM_OUTPUTS = {
    "QueueUrl",
    "QueueArn",
    "DeadLetterQueueUrl",
    "DeadLetterQueueArn",
    "OwnerRoleArn",
    "OwnerRoleName",
    "GeneratorRoleArn",
    "SubjectKeyTableName",
    "SubjectKeyTableArn",
}
DEPARTMENT_PARAMETERS = {
    "DepartmentName",
    "KeyAlias",
    "ConsumerRoleName",
    "OwnerRoleName",
    "SubjectKeyTableName",
    "NamePrefix",
    "LocalPrincipalArns",
    "DeployCompute",
}
DEPARTMENT_OUTPUTS = {"KeyArn", "KeyAlias", "ConsumerRoleArn"}


@cache
def template(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(IAC / name))
    return loaded


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _resources(tpl: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in tpl["Resources"].items() if v["Type"] == kind}


def _role_of(tpl_name: str, ref: Any) -> str:
    """Who a policy's ``Roles`` entry designates: owner, generator, consumer or execution."""
    target = str(ref.get("Ref") if isinstance(ref, dict) else ref)
    mapping = {
        ("platform.yaml", "OwnerRole"): "owner",
        ("platform.yaml", "GeneratorRole"): "generator",
        ("department.yaml", "ConsumerRole"): "consumer",
        ("department.yaml", "OwnerRoleName"): "owner",
    }
    return mapping[(tpl_name, target)]


def attached_statements() -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(template, policy logical id, role kind, statement) for every identity-policy statement."""
    for name in ("platform.yaml", "department.yaml"):
        tpl = template(name)
        for logical, res in _resources(tpl, "AWS::IAM::Policy").items():
            props = res["Properties"]
            for role in props["Roles"]:
                for statement in _as_list(props["PolicyDocument"]["Statement"]):
                    yield name, logical, _role_of(name, role), statement


def key_policy() -> dict[str, Any]:
    raw = template("department.yaml")["Resources"]["DepartmentKey"]["Properties"]["KeyPolicy"]
    assert isinstance(raw, dict) and "Fn::Sub" in raw, (
        "KeyPolicy must be a !Sub of a JSON string (moto quirk)"
    )
    body = raw["Fn::Sub"][0] if isinstance(raw["Fn::Sub"], list) else raw["Fn::Sub"]
    assert isinstance(body, str)
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def every_statement() -> Iterator[dict[str, Any]]:
    yield from (s for *_, s in attached_statements())
    yield from key_policy()["Statement"]
    for name in ("platform.yaml", "department.yaml"):
        for res in _resources(template(name), "AWS::IAM::Role").values():
            yield from _as_list(res["Properties"]["AssumeRolePolicyDocument"]["Statement"])


def actions(statement: dict[str, Any]) -> set[str]:
    return {str(a) for a in _as_list(statement.get("Action", []))}


# ---------------------------------------------------------------------------------------------- the contract


@pytest.mark.parametrize(
    ("name", "parameters", "outputs"),
    [
        ("platform.yaml", PLATFORM_PARAMETERS, PLATFORM_OUTPUTS),
        ("department.yaml", DEPARTMENT_PARAMETERS, DEPARTMENT_OUTPUTS),
    ],
)
def test_contract_names_exist_and_are_documented(name: str, parameters: set[str], outputs: set[str]) -> None:
    tpl = template(name)
    assert parameters <= set(tpl["Parameters"])
    assert outputs <= set(tpl["Outputs"])
    for section in ("Parameters", "Outputs"):
        for key, value in tpl[section].items():
            assert value.get("Description"), f"{name}: {section}.{key} has no Description"


def test_local_stack_parameters_have_the_agreed_types_and_defaults() -> None:
    for name in ("platform.yaml", "department.yaml"):
        params = template(name)["Parameters"]
        assert params["NamePrefix"]["Default"] == "keyfan"
        assert params["LocalPrincipalArns"]["Type"] == "CommaDelimitedList"
        assert params["LocalPrincipalArns"]["Default"] == ""
        assert params["DeployCompute"]["Default"] == "true"
        assert set(params["DeployCompute"]["AllowedValues"]) == {"true", "false"}
    # a DeployCompute=false deploy needs no parameter but the department's own names
    platform_required = {k for k, v in template("platform.yaml")["Parameters"].items() if "Default" not in v}
    assert platform_required == set()
    department_required = {
        k for k, v in template("department.yaml")["Parameters"].items() if "Default" not in v
    }
    assert department_required == {"DepartmentName", "KeyAlias", "ConsumerRoleName"}


def test_resource_names_follow_the_contract() -> None:
    platform = template("platform.yaml")["Resources"]
    assert platform["OwnerRole"]["Properties"]["RoleName"] == {"Fn::Sub": "${NamePrefix}-owner"}
    assert platform["GeneratorRole"]["Properties"]["RoleName"] == {"Fn::Sub": "${NamePrefix}-generator"}
    assert platform["EventQueue"]["Properties"]["QueueName"] == {"Fn::Sub": "${NamePrefix}-events"}
    assert platform["DeadLetterQueue"]["Properties"]["QueueName"] == {"Fn::Sub": "${NamePrefix}-events-dlq"}
    redrive = platform["EventQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    department = template("department.yaml")["Resources"]
    assert department["ConsumerRole"]["Properties"]["RoleName"] == {"Ref": "ConsumerRoleName"}
    assert department["DepartmentKeyAlias"]["Properties"]["AliasName"] == {"Ref": "KeyAlias"}
    assert department["DepartmentKey"]["Properties"]["EnableKeyRotation"] is True


def test_subject_key_table_is_the_one_keystore_reads_and_cannot_be_restored() -> None:
    table = template("platform.yaml")["Resources"]["SubjectKeyTable"]
    props = table["Properties"]
    assert props["TableName"] == {"Fn::Sub": "${NamePrefix}-subject-keys"}
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"] == {"SSEEnabled": True}
    # no point-in-time recovery: a restore would bring forgotten subjects' keys back
    assert props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled", False) is False
    assert table["DeletionPolicy"] == "Delete"
    assert "Condition" not in table  # the local stack (DeployCompute=false) has it too
    outputs = template("platform.yaml")["Outputs"]
    assert outputs["SubjectKeyTableName"]["Value"] == {"Ref": "SubjectKeyTable"}
    assert outputs["SubjectKeyTableArn"]["Value"] == {"Fn::GetAtt": ["SubjectKeyTable", "Arn"]}
    # the department stack's default is the platform's name under the default prefix
    parameter = template("department.yaml")["Parameters"]["SubjectKeyTableName"]
    assert parameter["Default"] == "keyfan-subject-keys"


def test_everything_that_needs_a_network_is_conditional_on_compute() -> None:
    compute_only = {
        "AWS::MSK::Cluster",
        "AWS::MSK::Configuration",
        "AWS::ECS::Cluster",
        "AWS::ECS::Service",
        "AWS::ECS::TaskDefinition",
        "AWS::Lambda::Function",
        "AWS::Lambda::Permission",
        "AWS::Events::Rule",
        "AWS::Logs::LogGroup",
        "AWS::EC2::SecurityGroup",
    }
    for name in ("platform.yaml", "department.yaml"):
        tpl = template(name)
        assert tpl["Conditions"]["Compute"] == {"Fn::Equals": [{"Ref": "DeployCompute"}, "true"]}
        for logical, res in tpl["Resources"].items():
            if res["Type"] in compute_only:
                assert res.get("Condition") == "Compute", f"{name}: {logical} must have Condition: Compute"


def test_moto_quirks_are_respected() -> None:
    # no inline role policies (moto breaks authorization for them) and no role relies on managed policies,
    # except ECS execution roles, which moto never uses
    for name in ("platform.yaml", "department.yaml"):
        for logical, res in _resources(template(name), "AWS::IAM::Role").items():
            assert "Policies" not in res["Properties"], f"{name}: {logical} has inline Policies"
            if "ManagedPolicyArns" in res["Properties"]:
                assert logical.endswith("ExecutionRole"), logical
    key_policy()  # a JSON string under !Sub, not a YAML object


def test_task_definitions_run_the_agreed_modules_as_the_right_roles() -> None:
    owner = template("platform.yaml")["Resources"]["OwnerTaskDefinition"]["Properties"]
    assert owner["TaskRoleArn"] == {"Fn::GetAtt": ["OwnerRole", "Arn"]}
    assert owner["ContainerDefinitions"][0]["Command"] == ["python", "-m", "owner_service"]
    consumer = template("department.yaml")["Resources"]["ConsumerTaskDefinition"]["Properties"]
    assert consumer["TaskRoleArn"] == {"Fn::GetAtt": ["ConsumerRole", "Arn"]}
    assert consumer["ContainerDefinitions"][0]["Command"][:2] == ["python", "-m"]


# ---------------------------------------------------------------------------------------------- least privilege


def test_no_wildcard_action_and_no_not_action_anywhere() -> None:
    for statement in every_statement():
        assert "NotAction" not in statement, statement
        assert "*" not in actions(statement), statement
        # "kms:*" only for the account root in the key policy: that is what delegates the key to IAM
        if statement.get("Sid") != "AccountRootAdministersAndDelegatesToIam":
            assert not any(a.endswith(":*") for a in actions(statement)), statement


def test_decrypt_is_only_for_the_own_key_in_the_own_context() -> None:
    decrypting = [
        (tpl, logical, kind, s)
        for tpl, logical, kind, s in attached_statements()
        if "kms:Decrypt" in actions(s)
    ]
    assert {kind for *_, kind, _ in decrypting} == {"consumer", "owner"}
    for tpl, logical, kind, statement in decrypting:
        assert tpl == "department.yaml", f"{tpl}: {logical} grants kms:Decrypt to the {kind}"
        assert statement["Effect"] == "Allow"
        assert statement["Resource"] == {"Fn::GetAtt": ["DepartmentKey", "Arn"]}
        condition = statement["Condition"]["StringEquals"]
        assert condition["kms:EncryptionContext:department"] == {"Ref": "DepartmentName"}
        if kind == "owner":  # the subject-key table's wrapping keys only, never a record's data key
            assert actions(statement) == {"kms:Decrypt"}
            assert condition["kms:EncryptionContext:purpose"] == PURPOSE_SUBJECT_KEYS


def test_owner_encrypts_per_department_and_decrypts_only_wrapping_keys() -> None:
    owner = [(tpl, s) for tpl, _, kind, s in attached_statements() if kind == "owner"]
    kms = [(tpl, s) for tpl, s in owner if any(a.startswith("kms:") for a in actions(s))]
    assert kms, "the department stack must grant the owner its encrypt rights"
    encrypting = [s for _, s in kms if "kms:Decrypt" not in actions(s)]
    assert len(encrypting) == 1 and len(kms) == 2
    for tpl, statement in kms:
        assert tpl == "department.yaml", "the platform stack must not grant the owner any KMS right"
        assert statement["Resource"] == {"Fn::GetAtt": ["DepartmentKey", "Arn"]}
        assert statement["Condition"]["StringEquals"]["kms:EncryptionContext:department"] == {
            "Ref": "DepartmentName"
        }
    (statement,) = encrypting
    assert actions(statement) == {"kms:Encrypt", "kms:GenerateDataKey"}
    allowed_keys = set(statement["Condition"]["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"])
    assert allowed_keys >= {*CONTEXT_KEYS, CTX_PURPOSE}  # records' contexts, and the wrapping key's
    sqs = {a for _, s in owner for a in actions(s) if a.startswith("sqs:")}
    assert sqs == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:SendMessage",
    }
    for _, statement in owner:
        if "sqs:SendMessage" in actions(statement):
            assert actions(statement) == {"sqs:SendMessage"}
            assert statement["Resource"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


def test_subject_key_table_access() -> None:
    dynamodb = [
        (tpl, logical, kind, s)
        for tpl, logical, kind, s in attached_statements()
        if any(a.startswith("dynamodb:") for a in actions(s))
    ]
    by_kind = {kind: (tpl, s) for tpl, _, kind, s in dynamodb}
    assert len(dynamodb) == len(by_kind) == 2, dynamodb
    # the owner creates, reads and forgets (DeleteItem) keys of every department
    tpl, owner = by_kind["owner"]
    assert tpl == "platform.yaml"
    assert actions(owner) == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"}
    assert owner["Resource"] == {"Fn::GetAtt": ["SubjectKeyTable", "Arn"]}
    # a consumer only reads, and on AWS only its own department's entries
    tpl, consumer = by_kind["consumer"]
    assert tpl == "department.yaml"
    assert actions(consumer) == {"dynamodb:GetItem", "dynamodb:BatchGetItem"}
    assert consumer["Resource"] == SUBJECT_KEY_TABLE_ARN
    assert consumer["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [{"Fn::Sub": "${DepartmentName}#*"}]}
    }


def test_owner_writes_the_shared_topic_and_the_audit_topic() -> None:
    written = {
        resource["Fn::Sub"].rsplit("/", 1)[1]
        for _, _, kind, s in attached_statements()
        if kind == "owner" and "kafka-cluster:WriteData" in actions(s)
        for resource in _as_list(s["Resource"])
    }
    assert written == {"${EventsTopic}", "${AuditTopic}", "${OwnerGroupId}-*"}


def test_generator_only_sends_to_the_queue() -> None:
    generator = [s for _, _, kind, s in attached_statements() if kind == "generator"]
    assert generator
    for statement in generator:
        assert not any(a.startswith(("kms:", "kafka-cluster:", "dynamodb:")) for a in actions(statement)), (
            statement
        )
        if any(a.startswith("sqs:") for a in actions(statement)):
            assert actions(statement) == {"sqs:SendMessage"}
            assert statement["Resource"] == {"Fn::GetAtt": ["EventQueue", "Arn"]}
        else:
            assert actions(statement) <= {
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
            }


def test_kafka_access_is_scoped_to_the_cluster_topics_and_groups() -> None:
    for tpl, logical, kind, statement in attached_statements():
        kafka = {a for a in actions(statement) if a.startswith("kafka-cluster:")}
        if not kafka:
            continue
        for resource in _as_list(statement["Resource"]):
            sub = resource["Fn::Sub"]
            arn = sub[0] if isinstance(sub, list) else sub
            assert ":kafka:" in arn and "/${NamePrefix}-msk/" in arn, (tpl, logical, arn)
            kind_of_arn = arn.split(":")[-1].split("/")[0]
            assert kind_of_arn in {"cluster", "topic", "group"}, arn
            if kind_of_arn != "cluster":
                assert not arn.endswith("/*"), f"{tpl}: {logical} ({kind}) grants every {kind_of_arn}"


def test_key_policy_lets_only_the_consumer_decrypt_and_the_owner_encrypt() -> None:
    statements = {s["Sid"]: s for s in key_policy()["Statement"]}
    consumer = statements["ConsumerDecryptsOwnDepartment"]
    assert consumer["Principal"] == {"AWS": "${ConsumerArn}"}
    assert actions(consumer) == {"kms:Decrypt"}
    assert consumer["Condition"]["StringEquals"] == {"kms:EncryptionContext:department": "${DepartmentName}"}
    owner = statements["OwnerEncryptsForDepartment"]
    assert owner["Principal"]["AWS"].endswith(":role/${OwnerRoleName}")
    assert actions(owner) == {"kms:Encrypt", "kms:GenerateDataKey"}
    assert owner["Condition"]["StringEquals"] == {"kms:EncryptionContext:department": "${DepartmentName}"}
    unwrap = statements["OwnerUnwrapsWrappingKey"]
    assert unwrap["Principal"] == owner["Principal"]
    assert actions(unwrap) == {"kms:Decrypt"}
    assert unwrap["Condition"] == {
        "StringEquals": {
            "kms:EncryptionContext:department": "${DepartmentName}",
            "kms:EncryptionContext:purpose": PURPOSE_SUBJECT_KEYS,
        },
    }
    root = statements["AccountRootAdministersAndDelegatesToIam"]
    assert root["Principal"]["AWS"].endswith(":root")
    # every other principal named in the key policy is the consumer or the owner
    assert set(statements) == {
        "AccountRootAdministersAndDelegatesToIam",
        "ConsumerDecryptsOwnDepartment",
        "OwnerEncryptsForDepartment",
        "OwnerUnwrapsWrappingKey",
    }


def test_every_role_trusts_its_service_and_the_local_principals_only() -> None:
    expected = {
        ("platform.yaml", "OwnerRole"): "ecs-tasks.amazonaws.com",
        ("platform.yaml", "GeneratorRole"): "lambda.amazonaws.com",
        ("department.yaml", "ConsumerRole"): "ecs-tasks.amazonaws.com",
    }
    for (name, logical), service in expected.items():
        trust = template(name)["Resources"][logical]["Properties"]["AssumeRolePolicyDocument"]
        (statement,) = _as_list(trust["Statement"])
        assert actions(statement) == {"sts:AssumeRole"}
        with_local, without_local = statement["Principal"]["Fn::If"][1:]
        assert statement["Principal"]["Fn::If"][0] == "HasLocalPrincipals"
        assert with_local == {"Service": service, "AWS": {"Ref": "LocalPrincipalArns"}}
        assert without_local == {"Service": service}


def test_docs_list_every_parameter_and_output() -> None:
    docs = (IAC.parent / "docs" / "deploy.md").read_text(encoding="utf-8")
    for name in ("platform.yaml", "department.yaml"):
        for section in ("Parameters", "Outputs"):
            for key in template(name)[section]:
                assert f"`{key}`" in docs, f"docs/deploy.md does not document {name} {section}.{key}"


def test_task_environments_use_variables_the_settings_read() -> None:
    from tests.unit.test_compose import settings_env_names

    readable = settings_env_names()
    definitions = [
        template("platform.yaml")["Resources"]["OwnerTaskDefinition"],
        template("department.yaml")["Resources"]["ConsumerTaskDefinition"],
    ]
    for definition in definitions:
        for container in definition["Properties"]["ContainerDefinitions"]:
            names = {str(variable["Name"]) for variable in container["Environment"]}
            assert "KEYFAN_SUBJECT_KEY_TABLE" in names, container["Name"]
            for variable in container["Environment"]:
                name = str(variable["Name"])
                assert name in readable, (
                    f"{container['Name']}: {name} is read by no class in keyfan/settings.py"
                )
    lambda_env = template("platform.yaml")["Resources"]["GeneratorFunction"]["Properties"]["Environment"]
    for name in lambda_env["Variables"]:
        assert not name.startswith("KEYFAN_") or name in readable, name
