"""IAM really decides who may use which key: against the real moto server with auth on, policies from iac/.

Plain boto3 KMS calls, so a failure here points at the policies or the moto patch, not at Keyfan code.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from keyfan_tools.local import LocalStack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]

DEPARTMENTS = ("sales", "finance")


@pytest.fixture(scope="module")
def ciphertexts(local_stack: LocalStack) -> dict[str, bytes]:
    """One ciphertext per department key, made by the admin (ground truth, not the code under test)."""
    kms = local_stack.admin_session().client("kms")
    return {
        dept: kms.encrypt(
            KeyId=local_stack.state.departments[dept].key_arn,
            Plaintext=f"for {dept}".encode(),
            EncryptionContext={"department": dept},
        )["CiphertextBlob"]
        for dept in DEPARTMENTS
    }


def assert_denied(call: Callable[[], Any], action: str, resource: str | None = None) -> None:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert error["Code"] == "AccessDeniedException", error
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert f"is not authorized to perform: {action}" in error["Message"]
    if resource is not None:
        assert f"on resource: {resource}" in error["Message"]


@pytest.mark.parametrize(("reader", "other"), [("sales", "finance"), ("finance", "sales")])
def test_department_decrypts_own_key_only(
    local_stack: LocalStack, ciphertexts: dict[str, bytes], reader: str, other: str
) -> None:
    # Given the department's consumer identity, as its service would hold it (runner -> AssumeRole)
    kms = local_stack.session_for(reader).client("kms")
    keys = local_stack.state.departments

    # When it decrypts its own department's ciphertext, then it gets the plaintext
    own = kms.decrypt(CiphertextBlob=ciphertexts[reader], EncryptionContext={"department": reader})
    assert own["Plaintext"] == f"for {reader}".encode()
    assert own["KeyId"] == keys[reader].key_arn

    # When it decrypts the other department's ciphertext, then KMS denies it, naming the other key
    assert_denied(
        lambda: kms.decrypt(CiphertextBlob=ciphertexts[other], EncryptionContext={"department": other}),
        "kms:Decrypt",
        keys[other].key_arn,
    )
    # Naming the key explicitly changes nothing
    assert_denied(
        lambda: kms.decrypt(CiphertextBlob=ciphertexts[other], KeyId=keys[other].key_arn), "kms:Decrypt"
    )


def test_department_cannot_encrypt(local_stack: LocalStack) -> None:
    # Consumers read; only the owner writes.
    kms = local_stack.session_for("sales").client("kms")
    key = local_stack.state.departments["sales"].key_arn
    assert_denied(lambda: kms.generate_data_key(KeyId=key, KeySpec="AES_256"), "kms:GenerateDataKey")


def test_runner_has_no_kms_grant(local_stack: LocalStack, ciphertexts: dict[str, bytes]) -> None:
    kms = local_stack.session_for("runner").client("kms")
    for dept in DEPARTMENTS:
        assert_denied(partial(kms.decrypt, CiphertextBlob=ciphertexts[dept]), "kms:Decrypt")


def test_runner_assumes_only_keyfan_roles(local_stack: LocalStack) -> None:
    # Given a role outside the stack whose trust policy does admit the runner
    runner = local_stack.state.runner
    assert runner is not None
    iam = local_stack.admin_session().client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": runner.user_arn}, "Action": "sts:AssumeRole"}],
    }
    stranger = iam.create_role(RoleName="not-keyfan", AssumeRolePolicyDocument=json.dumps(trust))["Role"][
        "Arn"
    ]
    try:
        # When the runner assumes it, then its own policy (AssumeRole on keyfan roles only) refuses
        sts = local_stack.session_for("runner").client("sts")
        with pytest.raises(ClientError) as caught:
            sts.assume_role(RoleArn=stranger, RoleSessionName="nope")
        assert "AccessDenied" in caught.value.response["Error"]["Code"]
        # And it can assume a keyfan role
        owner = local_stack.state.platform
        assert owner is not None
        assert sts.assume_role(RoleArn=owner.owner_role_arn, RoleSessionName="ok")["Credentials"]
    finally:
        iam.delete_role(RoleName="not-keyfan")


def test_generator_has_no_kms_but_can_send(local_stack: LocalStack, ciphertexts: dict[str, bytes]) -> None:
    session = local_stack.session_for("generator")
    kms = session.client("kms")
    key = local_stack.state.departments["sales"].key_arn
    assert_denied(lambda: kms.encrypt(KeyId=key, Plaintext=b"x"), "kms:Encrypt")
    assert_denied(lambda: kms.generate_data_key(KeyId=key, KeySpec="AES_256"), "kms:GenerateDataKey")
    assert_denied(lambda: kms.decrypt(CiphertextBlob=ciphertexts["sales"]), "kms:Decrypt")

    sent = session.client("sqs").send_message(QueueUrl=local_stack.queue_url, MessageBody='{"probe": true}')
    assert sent["MessageId"]
    # Ground truth: the message is there (read and delete it with the admin so other tests see a clean queue)
    sqs = local_stack.admin_session().client("sqs")
    got = sqs.receive_message(QueueUrl=local_stack.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    probes = [m for m in got.get("Messages", []) if m["Body"] == '{"probe": true}']
    assert probes
    for message in probes:
        sqs.delete_message(QueueUrl=local_stack.queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_owner_encrypts_under_every_key_and_unwraps_only_department_keys(local_stack: LocalStack) -> None:
    kms = local_stack.session_for("owner").client("kms")
    for dept, resources in local_stack.state.departments.items():
        data_key = kms.generate_data_key(
            KeyId=resources.key_arn, KeySpec="AES_256", EncryptionContext={"department": dept}
        )
        assert data_key["KeyId"] == resources.key_arn
        # The alias works too (the owner encrypts by alias from the registry)
        sealed = kms.encrypt(
            KeyId=resources.key_alias, Plaintext=b"x", EncryptionContext={"department": dept}
        )
        assert sealed["KeyId"] == resources.key_arn
        # The owner unwraps a wrapping key of the subject-key table (context {department}, iac/department.yaml).
        # On AWS its Decrypt admits no other context key; moto does not evaluate that condition.
        unwrapped = kms.decrypt(
            CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext={"department": dept}
        )
        assert unwrapped["Plaintext"] == data_key["Plaintext"]
    # but only under the department keys: a key the stacks did not create is refused
    stray = local_stack.admin_session().client("kms")
    made = stray.create_key(Description="not a keyfan department key")["KeyMetadata"]
    stray_key = made["Arn"]
    try:
        blob = stray.encrypt(KeyId=stray_key, Plaintext=b"x", EncryptionContext={"department": "sales"})
        assert_denied(
            partial(
                kms.decrypt, CiphertextBlob=blob["CiphertextBlob"], EncryptionContext={"department": "sales"}
            ),
            "kms:Decrypt",
            stray_key,
        )
    finally:
        stray.schedule_key_deletion(KeyId=made["KeyId"], PendingWindowInDays=7)  # (moto 500s on an ARN)


def test_a_policy_change_in_iac_changes_what_is_enforced(tmp_path: Path) -> None:
    # Given a private stack deployed from a copy of iac/
    iac = tmp_path / "iac"
    shutil.copytree(REPO / "iac", iac)
    stack = LocalStack(tmp_path / "state", departments_file=REPO / "departments.toml", iac_dir=iac)
    try:
        stack.up()
        blob = (
            stack.admin_session()
            .client("kms")
            .encrypt(KeyId="alias/keyfan-sales", Plaintext=b"x", EncryptionContext={"department": "sales"})[
                "CiphertextBlob"
            ]
        )
        sales = stack.session_for("sales").client("kms")
        assert (
            sales.decrypt(CiphertextBlob=blob, EncryptionContext={"department": "sales"})["Plaintext"] == b"x"
        )

        # When the consumer's KMS grant is edited in the template and the stack re-provisioned
        template = iac / "department.yaml"
        edited = template.read_text().replace("Action: kms:Decrypt\n", "Action: kms:DescribeKey\n")
        assert edited != template.read_text(), (
            "department.yaml no longer grants kms:Decrypt as this test expects"
        )
        template.write_text(edited)
        stack.provision()

        # Then the same identity is now refused, and the key (and its ciphertexts) survived the update
        assert_denied(
            partial(sales.decrypt, CiphertextBlob=blob, EncryptionContext={"department": "sales"}),
            "kms:Decrypt",
        )
        admin_kms = stack.admin_session().client("kms")
        assert (
            admin_kms.decrypt(CiphertextBlob=blob, EncryptionContext={"department": "sales"})["Plaintext"]
            == b"x"
        )
    finally:
        stack.down()
