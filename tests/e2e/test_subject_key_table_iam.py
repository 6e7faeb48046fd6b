"""The subject-key table as provisioned from iac/, against the real moto server with IAM on (patched moto).

The owner creates, reads and forgets entries; a department consumer only reads; other identities and other
tables are refused, with DynamoDB's own error (400 ``AccessDeniedException``). ``dynamodb:LeadingKeys`` is not
evaluated by moto: a consumer reading another department's entry is refused on AWS only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from keyfan_tools.local import LocalStack

pytestmark = pytest.mark.e2e


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def assert_denied(call: Callable[[], Any], action: str, resource: str) -> None:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert error["Code"] == "AccessDeniedException", error
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert f"is not authorized to perform: {action} on resource: {resource}" in error["Message"]


@pytest.fixture(scope="module")
def table(local_stack: LocalStack) -> str:
    env = local_stack.env()
    assert env["KEYFAN_SUBJECT_KEY_TABLE"] == "keyfan-subject-keys"
    return env["KEYFAN_SUBJECT_KEY_TABLE"]


def test_owner_creates_reads_and_forgets(local_stack: LocalStack, table: str) -> None:
    owner = local_stack.session_for("owner").client("dynamodb")
    owner.put_item(
        TableName=table,
        Item={**key("sales#e2e-owner"), "key": {"B": b"k" * 32}},
        ConditionExpression="attribute_not_exists(pk)",
    )
    got = owner.get_item(TableName=table, Key=key("sales#e2e-owner"), ConsistentRead=True)
    assert got["Item"]["key"]["B"] == b"k" * 32
    gone = owner.delete_item(TableName=table, Key=key("sales#e2e-owner"), ReturnValues="ALL_OLD")
    assert gone["Attributes"]
    assert "Item" not in owner.get_item(TableName=table, Key=key("sales#e2e-owner"))


def test_consumer_reads_and_cannot_write_or_forget(local_stack: LocalStack, table: str) -> None:
    admin = local_stack.admin_session().client("dynamodb")
    admin.put_item(TableName=table, Item={**key("sales#e2e-read"), "key": {"B": b"s"}})
    admin.put_item(TableName=table, Item={**key("finance#e2e-read"), "key": {"B": b"f"}})
    arn = admin.describe_table(TableName=table)["Table"]["TableArn"]
    try:
        sales = local_stack.session_for("sales").client("dynamodb")
        assert sales.get_item(TableName=table, Key=key("sales#e2e-read"))["Item"]["key"]["B"] == b"s"
        assert_denied(
            lambda: sales.put_item(TableName=table, Item=key("sales#e2e-new")), "dynamodb:PutItem", arn
        )
        assert_denied(
            lambda: sales.delete_item(TableName=table, Key=key("sales#e2e-read")), "dynamodb:DeleteItem", arn
        )
        # moto limitation: the LeadingKeys condition ("sales#*") is not evaluated; AWS refuses this read
        assert sales.get_item(TableName=table, Key=key("finance#e2e-read"))["Item"]
    finally:
        admin.delete_item(TableName=table, Key=key("sales#e2e-read"))
        admin.delete_item(TableName=table, Key=key("finance#e2e-read"))


def test_other_identities_and_tables_are_refused(local_stack: LocalStack, table: str) -> None:
    admin = local_stack.admin_session().client("dynamodb")
    other = admin.create_table(
        TableName="e2e-not-keyfan",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )["TableDescription"]["TableArn"]
    arn = admin.describe_table(TableName=table)["Table"]["TableArn"]
    try:
        owner = local_stack.session_for("owner").client("dynamodb")
        assert_denied(
            lambda: owner.get_item(TableName="e2e-not-keyfan", Key=key("x")), "dynamodb:GetItem", other
        )
        for identity in ("generator", "runner"):
            client = local_stack.session_for(identity).client("dynamodb")
            assert_denied(
                lambda c=client: c.get_item(TableName=table, Key=key("sales#x")), "dynamodb:GetItem", arn
            )
    finally:
        admin.delete_table(TableName="e2e-not-keyfan")
