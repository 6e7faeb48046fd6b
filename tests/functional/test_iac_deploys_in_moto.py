"""The CloudFormation templates deploy in moto 5.2.5, in-process, and grant what the contract says.

What moto does with them (measured here, asserted below so an upgrade that changes it is noticed):
- DeployCompute=false: every resource is created (queues with redrive, roles, policies, keys, aliases).
- DeployCompute=true: also created (ECS cluster, task definitions, services, log groups, security groups, the
  S3-code Lambda, the EventBridge rule); ``AWS::MSK::Cluster`` and ``AWS::MSK::Configuration`` are skipped with a
  warning, and outputs that reference them are dropped, yet the stack reports CREATE_COMPLETE. Task definitions
  keep their containers but lose TaskRoleArn, ExecutionRoleArn, NetworkMode and RequiresCompatibilities.
- IAM conditions: moto passes only ``sts:ExternalId`` as a condition value, and a condition key with no incoming
  value counts as satisfied. A ``kms:EncryptionContext:department`` Allow therefore acts as an unconditional
  Allow (even with a value that would never match). Real AWS evaluates it; the local stack cannot.
- KMS resources: moto authorizes KMS calls against resource ``"*"`` (its KMS response has no
  ``_determine_resource``), so a policy scoped to a key ARN denies even its own key. With a resource resolver
  patched in (as the local stack does), key-scoped Allow works and other keys are denied.
- DynamoDB: the same (resource ``"*"``, so the table-scoped grants deny the subject-key table itself) until
  ``moto_patches.determine_dynamodb_resource`` is patched in. ``dynamodb:LeadingKeys`` is not evaluated: a
  consumer reads other departments' entries locally. moto's CloudFormation creates the table without its
  ``SSESpecification`` (it reads ``Enabled``, CloudFormation says ``SSEEnabled``); point-in-time recovery is off.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count
from moto.dynamodb.responses import DynamoHandler
from moto.kms.responses import KmsResponse

from keyfan_tools.local.moto_patches import determine_dynamodb_resource

pytestmark = pytest.mark.functional

REGION = "us-east-1"
IAC = Path(__file__).resolve().parents[2] / "iac"
DEPARTMENTS = ("sales", "finance")
LOCAL_USER = "keyfan-local"


def _params(**values: str) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def _outputs(cf: Any, stack: str) -> dict[str, str]:
    described = cf.describe_stacks(StackName=stack)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE", described.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def _deploy(
    local_principal: str = "", compute: dict[str, str] | None = None
) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Deploy the platform stack and one stack per department; return their outputs."""
    cf = boto3.client("cloudformation", region_name=REGION)
    common = {"LocalPrincipalArns": local_principal, "DeployCompute": "false" if compute is None else "true"}
    platform_extra = {k: v for k, v in (compute or {}).items() if k in {"VpcId", "SubnetIds"}}
    platform_extra |= {k: v for k, v in (compute or {}).items() if k.startswith("Generator")}
    cf.create_stack(
        StackName="keyfan-platform",
        TemplateBody=(IAC / "platform.yaml").read_text(),
        Parameters=_params(**common, **platform_extra),
    )
    platform = _outputs(cf, "keyfan-platform")
    departments = {}
    for name in DEPARTMENTS:
        dept_extra: dict[str, str] = {}
        if compute is not None:
            dept_extra = {
                "EcsClusterName": platform["EcsClusterName"],
                "SubnetIds": compute["SubnetIds"],
                "SecurityGroupIds": platform["TaskSecurityGroupId"],
            }
        cf.create_stack(
            StackName=f"keyfan-{name}",
            TemplateBody=(IAC / "department.yaml").read_text(),
            Parameters=_params(
                **common,
                **dept_extra,
                DepartmentName=name,
                KeyAlias=f"alias/keyfan-{name}",
                ConsumerRoleName=f"keyfan-{name}-consumer",
                OwnerRoleName=platform["OwnerRoleName"],
                SubjectKeyTableName=platform["SubjectKeyTableName"],
            ),
        )
        departments[name] = _outputs(cf, f"keyfan-{name}")
    return platform, departments


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


def test_contract_deploy_without_compute(aws: None) -> None:
    # Given the local stack's parameters (DeployCompute=false, a local principal)
    user_arn = boto3.client("iam", region_name=REGION).create_user(UserName=LOCAL_USER)["User"]["Arn"]

    # When both templates are deployed
    platform, departments = _deploy(local_principal=user_arn)

    # Then the contract's outputs and names exist
    for key in (
        "QueueUrl",
        "QueueArn",
        "DeadLetterQueueUrl",
        "DeadLetterQueueArn",
        "OwnerRoleArn",
        "OwnerRoleName",
        "GeneratorRoleArn",
        "SubjectKeyTableName",
        "SubjectKeyTableArn",
    ):
        assert platform[key], key
    assert platform["OwnerRoleName"] == "keyfan-owner"
    assert platform["GeneratorRoleArn"].endswith(":role/keyfan-generator")
    assert platform["QueueUrl"].endswith("/keyfan-events")
    assert platform["DeadLetterQueueUrl"].endswith("/keyfan-events-dlq")
    assert "EcsClusterName" not in platform

    # and the subject-key table is the one keyfan/crypto/keystore.py reads, with no point-in-time recovery
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    table = dynamodb.describe_table(TableName=platform["SubjectKeyTableName"])["Table"]
    assert platform["SubjectKeyTableName"] == "keyfan-subject-keys"
    assert table["TableArn"] == platform["SubjectKeyTableArn"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    backups = dynamodb.describe_continuous_backups(TableName=platform["SubjectKeyTableName"])
    pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "DISABLED"

    # and the event queue redrives to the DLQ
    sqs = boto3.client("sqs", region_name=REGION)
    attrs = sqs.get_queue_attributes(QueueUrl=platform["QueueUrl"], AttributeNames=["RedrivePolicy"])
    redrive = json.loads(attrs["Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == platform["DeadLetterQueueArn"]
    assert int(redrive["maxReceiveCount"]) == 5

    kms = boto3.client("kms", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    owner_docs = [
        iam.get_role_policy(RoleName="keyfan-owner", PolicyName=n)["PolicyDocument"]
        for n in iam.list_role_policies(RoleName="keyfan-owner")["PolicyNames"]
    ]
    owner_kms = [
        s
        for doc in owner_docs
        for s in doc["Statement"]
        if any(str(a).startswith("kms:") for a in _as_list(s["Action"]))
    ]
    for name, out in departments.items():
        assert set(out) >= {"KeyArn", "KeyAlias", "ConsumerRoleArn"}
        assert out["KeyAlias"] == f"alias/keyfan-{name}"
        assert out["ConsumerRoleArn"].endswith(f":role/keyfan-{name}-consumer")
        # the key rotates, its alias exists, its policy parses (a JSON string, see FIELD-NOTES)
        meta = kms.describe_key(KeyId=out["KeyArn"])["KeyMetadata"]
        assert meta["Enabled"]
        assert kms.get_key_rotation_status(KeyId=out["KeyArn"])["KeyRotationEnabled"]
        assert aliases[f"alias/keyfan-{name}"] == meta["KeyId"]
        key_policy = json.loads(kms.get_key_policy(KeyId=out["KeyArn"], PolicyName="default")["Policy"])
        assert {s["Sid"] for s in key_policy["Statement"]} >= {
            "ConsumerDecryptsOwnDepartment",
            "OwnerEncryptsForDepartment",
        }
        # the owner was granted Encrypt/GenerateDataKey on this key by the department stack, and Decrypt
        # Decrypt only with the context {department, purpose: subject-keys} (the wrapping keys)
        grants = [s for s in owner_kms if s["Resource"] == out["KeyArn"]]
        assert {frozenset(_as_list(s["Action"])) for s in grants} == {
            frozenset({"kms:Encrypt", "kms:GenerateDataKey"}),
            frozenset({"kms:Decrypt"}),
        }, f"owner grants on the {name} key"
        for s in grants:
            assert s["Condition"]["StringEquals"]["kms:EncryptionContext:department"] == name
            if "kms:Decrypt" in _as_list(s["Action"]):  # wrapping keys only, never a record's data key
                assert s["Condition"]["StringEquals"]["kms:EncryptionContext:purpose"] == "subject-keys"
    assert len(owner_kms) == 2 * len(departments)

    # the consumers read the subject-key table, their own department's entries only (on AWS)
    for name in departments:
        docs = [
            iam.get_role_policy(RoleName=f"keyfan-{name}-consumer", PolicyName=n)["PolicyDocument"]
            for n in iam.list_role_policies(RoleName=f"keyfan-{name}-consumer")["PolicyNames"]
        ]
        (table_grant,) = [s for doc in docs for s in doc["Statement"] if "dynamodb:" in str(s["Action"])]
        assert table_grant["Action"] == ["dynamodb:GetItem", "dynamodb:BatchGetItem"]
        assert table_grant["Resource"] == platform["SubjectKeyTableArn"]
        assert table_grant["Condition"] == {
            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{name}#*"]}
        }

    # and every role trusts the local principal, literally (moto compares ARNs as strings)
    for role in ("keyfan-owner", "keyfan-generator", "keyfan-sales-consumer", "keyfan-finance-consumer"):
        trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        assert user_arn in _as_list(trust["Statement"][0]["Principal"]["AWS"])


def test_contract_deploy_with_compute(aws: None) -> None:
    # Given a VPC, subnets and the generator zip in S3
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"] for i in range(3)
    ]
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="keyfan-code")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("lambda_generator/handler.py", "def handler(event, context):\n    return event\n")
    s3.put_object(Bucket="keyfan-code", Key="lambda/keyfan-generator.zip", Body=buf.getvalue())

    # When both templates are deployed with DeployCompute=true
    platform, departments = _deploy(
        compute={"VpcId": vpc, "SubnetIds": ",".join(subnets), "GeneratorCodeS3Bucket": "keyfan-code"}
    )

    # Then ECS, Lambda and the schedule exist (MSK is skipped by moto; see the module docstring)
    assert platform["EcsClusterName"] == "keyfan"
    assert platform["GeneratorFunctionArn"].endswith(":function:keyfan-generator")
    ecs = boto3.client("ecs", region_name=REGION)
    services = ecs.list_services(cluster="keyfan")["serviceArns"]
    assert {s.rsplit("/", 1)[1] for s in services} == {
        "keyfan-owner",
        "keyfan-sales-consumer",
        "keyfan-finance-consumer",
    }
    # (moto's CloudFormation keeps the container definitions but drops TaskRoleArn, ExecutionRoleArn,
    # NetworkMode and RequiresCompatibilities; the unit contract test checks those in the template)
    owner_task = ecs.describe_task_definition(taskDefinition="keyfan-owner")["taskDefinition"]
    owner_container = owner_task["containerDefinitions"][0]
    assert owner_container["command"] == ["python", "-m", "owner_service"]
    assert {e["name"]: e["value"] for e in owner_container["environment"]}["KEYFAN_QUEUE_URL"] == platform[
        "QueueUrl"
    ]
    sales_task = ecs.describe_task_definition(taskDefinition="keyfan-sales-consumer")["taskDefinition"]
    sales_container = sales_task["containerDefinitions"][0]
    assert sales_container["command"] == ["python", "-m", "sales_consumer"]
    sales_env = {e["name"]: e["value"] for e in sales_container["environment"]}
    assert sales_env["KEYFAN_DEPARTMENT"] == "sales"
    owner_env = {e["name"]: e["value"] for e in owner_container["environment"]}
    assert (
        owner_env["KEYFAN_SUBJECT_KEY_TABLE"]
        == sales_env["KEYFAN_SUBJECT_KEY_TABLE"]
        == "keyfan-subject-keys"
    )
    assert departments["sales"]["ConsumerRoleArn"].endswith(":role/keyfan-sales-consumer")
    rules = boto3.client("events", region_name=REGION).list_rules()["Rules"]
    assert [r["ScheduleExpression"] for r in rules if r["Name"] == "keyfan-generator-schedule"]
    groups = {
        g["logGroupName"] for g in boto3.client("logs", region_name=REGION).describe_log_groups()["logGroups"]
    }
    assert {"/ecs/keyfan/owner", "/ecs/keyfan/sales-consumer", "/aws/lambda/keyfan-generator"} <= groups
    # moto skips AWS::MSK::Cluster and drops the output that references it
    assert "KafkaClusterArn" not in platform


# ---------------------------------------------------------------------------------------------- IAM in moto


def _kms_resource(self: KmsResponse) -> str:
    """Resolve a KMS request to its key ARN (moto 5.2.5 has no resolver and authorizes against "*")."""
    try:
        params = json.loads(self.body or "{}")
    except ValueError:
        return "*"
    key_id = params.get("KeyId") or params.get("DestinationKeyId")
    if not key_id and "CiphertextBlob" in params:
        key_id = base64.b64decode(params["CiphertextBlob"])[:36].decode("utf-8", "replace")
    if not key_id:
        return "*"
    try:
        return str(self.kms_backend.describe_key(key_id).arn)
    except Exception:
        return "*"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class _Principals:
    """Clients acting as the roles, reached the local way: an IAM user assuming each role."""

    def __init__(self) -> None:
        iam = boto3.client("iam", region_name=REGION)
        self.user_arn = iam.create_user(UserName=LOCAL_USER)["User"]["Arn"]
        key = iam.create_access_key(UserName=LOCAL_USER)["AccessKey"]
        iam.put_user_policy(
            UserName=LOCAL_USER,
            PolicyName="assume-keyfan-roles",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
                }
            ),
        )
        self._user = {
            "aws_access_key_id": key["AccessKeyId"],
            "aws_secret_access_key": key["SecretAccessKey"],
        }

    def kms_as(self, role: str) -> Any:
        return self.client_as(role, "kms")

    def client_as(self, role: str, service: str) -> Any:
        sts = boto3.client("sts", region_name=REGION, **self._user)
        creds = sts.assume_role(
            RoleArn=f"arn:aws:iam::123456789012:role/{role}", RoleSessionName="keyfan-test"
        )["Credentials"]
        return boto3.client(
            service,
            region_name=REGION,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )


def _denied(call: Any, **kwargs: Any) -> bool:
    try:
        call(**kwargs)
    except ClientError as exc:
        if "AccessDenied" in str(exc) or exc.response["Error"]["Code"] in {"403", "AccessDeniedException"}:
            return True
        raise
    return False


def _context(department: str) -> dict[str, str]:
    return {"department": department, "event_type": "order", "schema_version": "1", "topic": "keyfan.events"}


@pytest.fixture
def deployed_with_auth_setup(aws: None) -> tuple[_Principals, dict[str, dict[str, str]], dict[str, bytes]]:
    principals = _Principals()
    _, departments = _deploy(local_principal=principals.user_arn)
    kms = boto3.client("kms", region_name=REGION)
    blobs = {
        name: kms.encrypt(KeyId=out["KeyArn"], Plaintext=b"secret", EncryptionContext=_context(name))[
            "CiphertextBlob"
        ]
        for name, out in departments.items()
    }
    return principals, departments, blobs


def test_moto_denies_key_scoped_kms_policies_without_a_resource_resolver(
    deployed_with_auth_setup: tuple[_Principals, dict[str, dict[str, str]], dict[str, bytes]],
) -> None:
    principals, departments, blobs = deployed_with_auth_setup

    @set_initial_no_auth_action_count(0)
    def check() -> None:
        # moto checks KMS calls against resource "*": a key-ARN-scoped Allow never matches, own key included
        sales = principals.kms_as("keyfan-sales-consumer")
        assert _denied(
            sales.decrypt,
            CiphertextBlob=blobs["sales"],
            EncryptionContext=_context("sales"),
            KeyId=departments["sales"]["KeyArn"],
        )

    check()


def test_moto_treats_encryption_context_conditions_as_satisfied(
    deployed_with_auth_setup: tuple[_Principals, dict[str, dict[str, str]], dict[str, bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    principals, departments, blobs = deployed_with_auth_setup
    # Given the key-ARN resolver the local stack adds to moto
    monkeypatch.setattr(KmsResponse, "_determine_resource", _kms_resource, raising=False)
    sales_key, finance_key = departments["sales"]["KeyArn"], departments["finance"]["KeyArn"]
    # and a probe role whose only Decrypt grant carries a context condition that can never match
    iam = boto3.client("iam", region_name=REGION)
    iam.create_role(
        RoleName="probe",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": principals.user_arn}}
                ],
            }
        ),
    )
    iam.put_role_policy(
        RoleName="probe",
        PolicyName="never-matching-context",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "kms:Decrypt",
                        "Resource": sales_key,
                        "Condition": {"StringEquals": {"kms:EncryptionContext:department": "nobody"}},
                    }
                ],
            }
        ),
    )

    @set_initial_no_auth_action_count(0)
    def check() -> None:
        sales = principals.kms_as("keyfan-sales-consumer")
        owner = principals.kms_as("keyfan-owner")
        generator = principals.kms_as("keyfan-generator")
        probe = principals.kms_as("probe")
        sales_blob = {"CiphertextBlob": blobs["sales"], "EncryptionContext": _context("sales")}
        finance_blob = {"CiphertextBlob": blobs["finance"], "EncryptionContext": _context("finance")}

        # Then the conditional Allow lets the consumer decrypt its own department (condition kept in the IaC)
        assert sales.decrypt(KeyId=sales_key, **sales_blob)["Plaintext"] == b"secret"
        # and the key scope still holds: another department's key is denied
        assert _denied(sales.decrypt, KeyId=finance_key, **finance_blob)
        assert _denied(sales.decrypt, **finance_blob)  # KeyId resolved from moto's blob
        # the owner encrypts for a department; the generator has no KMS at all
        assert owner.generate_data_key(
            KeyId="alias/keyfan-sales", KeySpec="AES_256", EncryptionContext=_context("sales")
        )
        # the owner's Decrypt is for wrapping keys (context keys [department] only): real KMS refuses it a
        # record's context, moto lets it through (another condition it does not evaluate)
        assert owner.decrypt(KeyId=sales_key, **sales_blob)["Plaintext"] == b"secret"
        assert _denied(
            generator.encrypt, KeyId=sales_key, Plaintext=b"x", EncryptionContext=_context("sales")
        )

        # moto limitation: conditions are not evaluated. A value that cannot match still allows...
        assert probe.decrypt(KeyId=sales_key, **sales_blob)["Plaintext"] == b"secret"
        # ...and the owner may encrypt under the sales key with the finance context (real KMS denies this)
        assert owner.encrypt(KeyId=sales_key, Plaintext=b"x", EncryptionContext=_context("finance"))

    check()


def test_queue_permissions_are_enforced_by_moto(
    deployed_with_auth_setup: tuple[_Principals, dict[str, dict[str, str]], dict[str, bytes]],
) -> None:
    principals, _, _ = deployed_with_auth_setup
    queue = boto3.client("sqs", region_name=REGION).get_queue_url(QueueName="keyfan-events")["QueueUrl"]
    dlq = boto3.client("sqs", region_name=REGION).get_queue_url(QueueName="keyfan-events-dlq")["QueueUrl"]

    @set_initial_no_auth_action_count(0)
    def check() -> None:
        generator = principals.client_as("keyfan-generator", "sqs")
        owner = principals.client_as("keyfan-owner", "sqs")
        sales = principals.client_as("keyfan-sales-consumer", "sqs")
        # the generator only sends to the event queue
        assert generator.send_message(QueueUrl=queue, MessageBody="{}")["MessageId"]
        assert _denied(generator.receive_message, QueueUrl=queue)
        assert _denied(generator.send_message, QueueUrl=dlq, MessageBody="{}")
        # the owner receives, changes visibility and deletes on the queue, and only sends to the DLQ
        (message,) = owner.receive_message(QueueUrl=queue, WaitTimeSeconds=0)["Messages"]
        owner.change_message_visibility(
            QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=5
        )
        assert owner.send_message(QueueUrl=dlq, MessageBody=message["Body"])["MessageId"]
        owner.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        assert _denied(owner.send_message, QueueUrl=queue, MessageBody="{}")
        assert _denied(owner.receive_message, QueueUrl=dlq)
        # a consumer has no queue access at all
        assert _denied(sales.receive_message, QueueUrl=queue)

    check()


def test_subject_key_table_permissions_are_enforced_by_moto(
    deployed_with_auth_setup: tuple[_Principals, dict[str, dict[str, str]], dict[str, bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    principals, _, _ = deployed_with_auth_setup
    table = "keyfan-subject-keys"
    boto3.client("dynamodb", region_name=REGION).create_table(  # a second table, granted to nobody
        TableName="other",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def key(pk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}}

    @set_initial_no_auth_action_count(0)
    def check(resolved: bool) -> None:
        owner = principals.client_as("keyfan-owner", "dynamodb")
        sales = principals.client_as("keyfan-sales-consumer", "dynamodb")
        generator = principals.client_as("keyfan-generator", "dynamodb")
        if not resolved:
            # stock moto checks DynamoDB calls against "*": the table-scoped grant denies its own table
            assert _denied(owner.get_item, TableName=table, Key=key("sales#wrapping"))
            return
        # the owner creates, reads and forgets entries of any department
        owner.put_item(TableName=table, Item={**key("sales#s1"), "key": {"B": b"k"}})
        owner.put_item(TableName=table, Item={**key("finance#f1"), "key": {"B": b"k"}})
        assert owner.get_item(TableName=table, Key=key("sales#s1"))["Item"]["key"]["B"] == b"k"
        assert owner.delete_item(TableName=table, Key=key("sales#s1"), ReturnValues="ALL_OLD")["Attributes"]
        # a consumer reads, never writes or deletes; no one reaches another table
        assert "Item" not in sales.get_item(TableName=table, Key=key("sales#s1"))
        assert _denied(sales.put_item, TableName=table, Item=key("sales#s2"))
        assert _denied(sales.delete_item, TableName=table, Key=key("finance#f1"))
        assert _denied(owner.get_item, TableName="other", Key=key("sales#s1"))
        assert _denied(generator.get_item, TableName=table, Key=key("sales#s1"))
        # moto limitation: dynamodb:LeadingKeys is not evaluated, so sales reads a finance entry (AWS denies)
        assert sales.get_item(TableName=table, Key=key("finance#f1"))["Item"]

    check(resolved=False)
    monkeypatch.setattr(DynamoHandler, "_determine_resource", determine_dynamodb_resource, raising=False)
    check(resolved=True)
