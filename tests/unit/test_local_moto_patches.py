"""The KMS and DynamoDB authorization patches' decisions, as pure functions (no moto server, moto left unpatched)."""

from __future__ import annotations

import base64
import json
import warnings

import pytest

from keyfan.exceptions import LocalStackError
from keyfan_tools.local.moto_patches import (
    SUPPORTED_MOTO,
    _check_dynamodb_shapes,
    _check_shapes,
    _json_params,
    access_denied_message,
    decode_kms_params,
    dynamodb_resource_arn,
    key_id_from_ciphertext,
    kms_resource_arn,
)

KEY = "0bd2d5a4-1c7e-4a7c-9f3e-5a1c2b3d4e5f"
OTHER = "11111111-2222-3333-4444-555555555555"
PREFIX = "arn:aws:kms:eu-west-1:123456789012"
ALIASES = {"alias/keyfan-sales": KEY}


def resource(action: str, **params: object) -> str:
    return kms_resource_arn(
        action, params, region="eu-west-1", account="123456789012", alias_to_key_id=ALIASES.get
    )


def moto_blob(key_id: str) -> bytes:
    """The layout moto writes (moto/kms/utils.py): key id, 12-byte IV, 16-byte tag, ciphertext."""
    from moto.kms.utils import Ciphertext, _serialize_ciphertext_blob

    return _serialize_ciphertext_blob(
        Ciphertext(key_id=key_id, iv=b"i" * 12, ciphertext=b"secret", tag=b"t" * 16)
    )


def test_key_id_is_read_from_a_moto_ciphertext() -> None:
    assert key_id_from_ciphertext(moto_blob(KEY)) == KEY


@pytest.mark.parametrize("blob", [b"", b"short", b"\xff" * 80, b"x" * 36 + b"\0" * 28])
def test_foreign_bytes_name_no_key(blob: bytes) -> None:
    assert key_id_from_ciphertext(blob) is None


@pytest.mark.parametrize(
    "key_ref",
    [KEY, f"{PREFIX}:key/{KEY}", "alias/keyfan-sales", f"{PREFIX}:alias/keyfan-sales"],
)
def test_every_way_to_name_a_key_resolves_to_its_arn(key_ref: str) -> None:
    assert resource("Encrypt", KeyId=key_ref) == f"{PREFIX}:key/{KEY}"
    assert resource("GenerateDataKey", KeyId=key_ref) == f"{PREFIX}:key/{KEY}"


def test_unknown_alias_stays_an_alias_arn() -> None:
    # The call then fails NotFound after authorization, as on AWS; it must not fall back to "*".
    assert resource("Encrypt", KeyId="alias/nope") == f"{PREFIX}:alias/nope"


def test_decrypt_is_authorized_against_the_key_in_the_ciphertext() -> None:
    assert resource("Decrypt", CiphertextBlob=moto_blob(KEY)) == f"{PREFIX}:key/{KEY}"
    # A KeyId naming another key does not let a caller choose which key IAM checks
    assert resource("Decrypt", CiphertextBlob=moto_blob(KEY), KeyId=OTHER) == f"{PREFIX}:key/{KEY}"
    assert (
        resource("ReEncrypt", CiphertextBlob=moto_blob(KEY), DestinationKeyId=OTHER) == f"{PREFIX}:key/{KEY}"
    )


def test_decrypt_of_foreign_bytes_falls_back_to_key_id_then_star() -> None:
    assert resource("Decrypt", CiphertextBlob=b"garbage", KeyId=OTHER) == f"{PREFIX}:key/{OTHER}"
    assert resource("Decrypt", CiphertextBlob=b"garbage") == "*"


def test_calls_without_a_key_are_checked_against_star() -> None:
    assert resource("ListKeys") == "*"
    assert resource("CreateKey", Description="x") == "*"


def test_alias_calls_use_the_target_key() -> None:
    assert resource("CreateAlias", AliasName="alias/new", TargetKeyId=KEY) == f"{PREFIX}:key/{KEY}"


def test_request_body_is_decoded_like_moto_does() -> None:
    blob = moto_blob(KEY)
    body = json.dumps({"CiphertextBlob": base64.b64encode(blob).decode(), "KeyId": "k"})
    assert decode_kms_params(body) == {"CiphertextBlob": blob, "KeyId": "k"}
    assert decode_kms_params(body.encode()) == {"CiphertextBlob": blob, "KeyId": "k"}
    assert decode_kms_params(json.dumps({"CiphertextBlob": "!!not base64"}))["CiphertextBlob"] == b""
    for junk in (None, b"", "not json", "[1, 2]"):
        assert decode_kms_params(junk) == {}


def test_denial_message_reads_like_aws() -> None:
    who = "arn:aws:sts::123456789012:assumed-role/keyfan-sales-consumer/s"
    key = f"{PREFIX}:key/{KEY}"
    assert access_denied_message(who, "kms:Decrypt", key, explicit_deny=False) == (
        f"User: {who} is not authorized to perform: kms:Decrypt on resource: {key} "
        "because no identity-based policy allows the kms:Decrypt action"
    )
    assert access_denied_message(who, "kms:Decrypt", key, explicit_deny=True).endswith(
        "with an explicit deny in an identity-based policy"
    )


class _KmsLike:
    _authenticate_and_authorize_action = _authenticate_and_authorize_normal_action = _get_action = None
    kms_backend = None


class _IamLike:
    check_action_permitted = _raise_access_denied = None


def test_shape_check_accepts_the_supported_moto() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _check_shapes(SUPPORTED_MOTO, _KmsLike, _IamLike)


def test_shape_check_warns_on_another_version_with_the_same_shapes() -> None:
    with pytest.warns(RuntimeWarning, match="re-run"):
        _check_shapes("9.9.9", _KmsLike, _IamLike)


def test_shape_check_refuses_a_moto_it_does_not_know() -> None:
    class NoHook:
        pass

    with pytest.raises(LocalStackError, match="missing"):
        _check_shapes("9.9.9", NoHook, _IamLike)

    class Native(_KmsLike):
        _determine_resource = None

    with pytest.raises(LocalStackError, match="native _determine_resource: True"):
        _check_shapes(SUPPORTED_MOTO, Native, _IamLike)


def test_installed_moto_has_the_shapes_the_patch_needs() -> None:
    from moto.iam.access_control import IAMRequest
    from moto.kms.responses import KmsResponse

    from keyfan_tools.local import moto_patches

    if moto_patches._applied:
        pytest.skip("another test applied the patch in this process")
    _check_shapes(SUPPORTED_MOTO, KmsResponse, IAMRequest)


# ---------------------------------------------------------------------------------------------- DynamoDB

TABLE_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/keyfan-subject-keys"


def table_resource(action: str, **params: object) -> str:
    return dynamodb_resource_arn(action, params, region="eu-west-1", account="123456789012")


@pytest.mark.parametrize("action", ["GetItem", "PutItem", "DeleteItem", "UpdateItem", "DescribeTable"])
def test_item_calls_are_authorized_against_their_table(action: str) -> None:
    assert table_resource(action, TableName="keyfan-subject-keys", Key={"pk": {"S": "sales#x"}}) == TABLE_ARN


def test_a_table_named_by_its_arn_is_kept() -> None:
    assert table_resource("GetItem", TableName=TABLE_ARN) == TABLE_ARN


def test_index_reads_are_authorized_against_the_index() -> None:
    assert (
        table_resource("Query", TableName="keyfan-subject-keys", IndexName="by-age")
        == f"{TABLE_ARN}/index/by-age"
    )
    assert (
        table_resource("Scan", TableName="keyfan-subject-keys", IndexName="by-age")
        == f"{TABLE_ARN}/index/by-age"
    )
    assert table_resource("GetItem", TableName="keyfan-subject-keys", IndexName="ignored") == TABLE_ARN


def test_a_batch_names_its_table_only_if_it_has_one() -> None:
    one = {"keyfan-subject-keys": {"Keys": [{"pk": {"S": "a"}}]}}
    assert table_resource("BatchGetItem", RequestItems=one) == TABLE_ARN
    two = {**one, "other": {"Keys": [{"pk": {"S": "a"}}]}}
    assert (
        table_resource("BatchGetItem", RequestItems=two) == "*"
    )  # stricter than AWS: see the module docstring


def test_calls_without_a_table_are_checked_against_star_or_their_resource_arn() -> None:
    assert table_resource("ListTables") == "*"
    assert table_resource("ListTagsOfResource", ResourceArn=TABLE_ARN) == TABLE_ARN
    assert table_resource("GetItem", TableName="") == "*"


def test_partition_is_part_of_the_arn() -> None:
    arn = dynamodb_resource_arn(
        "GetItem", {"TableName": "t"}, region="cn-north-1", account="123456789012", partition="aws-cn"
    )
    assert arn == "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/t"


def test_dynamodb_body_is_read_parsed_or_raw() -> None:
    assert _json_params({"TableName": "t"}) == {"TableName": "t"}  # moto swaps in its parsed parameters
    assert _json_params(json.dumps({"TableName": "t"})) == {"TableName": "t"}
    assert _json_params(json.dumps({"TableName": "t"}).encode()) == {"TableName": "t"}
    for junk in (None, b"", "not json", "[1, 2]"):
        assert _json_params(junk) == {}


class _DynamoLike:
    _authenticate_and_authorize_action = _authenticate_and_authorize_normal_action = _get_action = None
    call_action = None


def test_dynamodb_shape_check_accepts_the_supported_moto_and_refuses_others() -> None:
    _check_dynamodb_shapes(SUPPORTED_MOTO, _DynamoLike)

    class NoHook:
        pass

    with pytest.raises(LocalStackError, match=r"DynamoDB.*missing"):
        _check_dynamodb_shapes("9.9.9", NoHook)

    class Native(_DynamoLike):
        _determine_resource = None

    with pytest.raises(LocalStackError, match="native _determine_resource: True"):
        _check_dynamodb_shapes(SUPPORTED_MOTO, Native)


def test_installed_moto_has_the_dynamodb_shapes_the_patch_needs() -> None:
    from moto.dynamodb.responses import DynamoHandler

    from keyfan_tools.local import moto_patches

    if moto_patches._applied:
        pytest.skip("another test applied the patch in this process")
    _check_dynamodb_shapes(SUPPORTED_MOTO, DynamoHandler)
