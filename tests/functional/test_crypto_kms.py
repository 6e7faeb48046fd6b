"""The Encryption SDK adapter against moto's KMS (in-process), with IAM authorization switched on.

Proves the three-way translation that the consumer relies on: a denial is ``AccessDenied``, an unreachable
KMS is ``KeyServiceUnavailable``, bad bytes are ``CorruptMessage``; and that caching keeps KMS out of the
per-message path.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws
from moto import settings as moto_settings
from moto.core.authorization import ActionAuthenticatorMixin

from keyfan.crypto import DiscoveryKmsDecryptor, StrictKmsEncryptor
from keyfan.envelope import RecordMetadata, check_context, encryption_context
from keyfan.exceptions import AccessDenied, CorruptMessage, KeyServiceUnavailable, TamperedMessage

pytestmark = pytest.mark.functional

REGION = "us-east-1"
ACCOUNT = "123456789012"
CONTEXT = encryption_context("sales", "order.created", 1, "keyfan.events")


@dataclass
class Kms:
    key_arn: str
    alias_arn: str
    reader: boto3.Session  # may decrypt
    outsider: boto3.Session  # authenticated, no KMS grant


def _user_session(iam: object, name: str, policy: dict[str, object] | None) -> boto3.Session:
    iam.create_user(UserName=name)  # type: ignore[attr-defined]
    if policy is not None:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))  # type: ignore[attr-defined]
    key = iam.create_access_key(UserName=name)["AccessKey"]  # type: ignore[attr-defined]
    return boto3.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=REGION
    )


@pytest.fixture
def kms(monkeypatch: pytest.MonkeyPatch) -> Iterator[Kms]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # The first 8 calls provision without auth; every later call is authorized by IAM
    # (what moto's set_initial_no_auth_action_count decorator does, as a fixture).
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 8)
    monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)
    with mock_aws():
        client = boto3.client("kms", region_name=REGION)
        key_arn = client.create_key()["KeyMetadata"]["Arn"]  # 1
        client.create_alias(AliasName="alias/keyfan-sales", TargetKeyId=key_arn)  # 2
        iam = boto3.client("iam", region_name=REGION)
        allow_all_kms: dict[str, object] = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}],
        }
        reader = _user_session(iam, "reader", allow_all_kms)  # 3, 4, 5
        outsider = _user_session(iam, "outsider", None)  # 6, 7
        yield Kms(key_arn, f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/keyfan-sales", reader, outsider)


def _own_session(session: boto3.Session) -> boto3.Session:
    """A fresh session with the same identity: the KMS observer counts per session, as in production
    where the owner and each consumer are separate processes."""
    creds = session.get_credentials()
    return boto3.Session(
        aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key, region_name=REGION
    )


def _encryptor(session: boto3.Session, kms: Kms, **kwargs: object) -> StrictKmsEncryptor:
    botocore_session = _own_session(session)._session
    return StrictKmsEncryptor({"sales": kms.alias_arn}, botocore_session=botocore_session, **kwargs)  # type: ignore[arg-type]


def _decryptor(session: boto3.Session, **kwargs: object) -> DiscoveryKmsDecryptor:
    botocore_session = _own_session(session)._session
    return DiscoveryKmsDecryptor(botocore_session=botocore_session, account_ids=(ACCOUNT,), **kwargs)  # type: ignore[arg-type]


def test_round_trip_with_cached_data_keys(kms: Kms) -> None:
    encryptor = _encryptor(kms.reader, kms)
    decryptor = _decryptor(kms.reader)

    sealed = [encryptor.encrypt("sales", f'{{"n":{i}}}'.encode(), CONTEXT) for i in range(100)]
    opened = [decryptor.decrypt(item.ciphertext) for item in sealed]

    assert [o.plaintext for o in opened] == [f'{{"n":{i}}}'.encode() for i in range(100)]
    assert {item.key_arn for item in sealed} == {kms.key_arn}
    assert decryptor.key_arns(sealed[0].ciphertext) == (kms.key_arn,)
    assert opened[0].encryption_context["department"] == "sales"
    # One data key for 100 messages, unwrapped once: KMS is not on the per-message path.
    assert dict(encryptor.observer.calls) == {"GenerateDataKey": 1}
    assert dict(decryptor.observer.calls) == {"Decrypt": 1}


def test_without_cache_every_message_calls_kms(kms: Kms) -> None:
    encryptor = _encryptor(kms.reader, kms, cache_enabled=False)
    for _ in range(5):
        encryptor.encrypt("sales", b"{}", CONTEXT)
    assert encryptor.observer.calls["GenerateDataKey"] == 5


def test_identity_without_grant_gets_access_denied(kms: Kms) -> None:
    ciphertext = _encryptor(kms.reader, kms).encrypt("sales", b"{}", CONTEXT).ciphertext

    with pytest.raises(AccessDenied) as denied:
        _decryptor(kms.outsider).decrypt(ciphertext)

    assert denied.value.key_arn == kms.key_arn
    assert "outsider" in (denied.value.principal or str(denied.value))


def test_unreachable_kms_is_an_outage_not_a_denial(kms: Kms, monkeypatch: pytest.MonkeyPatch) -> None:
    ciphertext = _encryptor(kms.reader, kms).encrypt("sales", b"{}", CONTEXT).ciphertext
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", f"http://127.0.0.1:{port}")
    decryptor = _decryptor(kms.reader)

    with pytest.raises(KeyServiceUnavailable) as outage:
        decryptor.decrypt(ciphertext)

    assert not isinstance(outage.value, AccessDenied)
    assert decryptor.observer.calls["Decrypt"] == 1


@pytest.mark.parametrize("mangle", [lambda b: b[:-20], lambda b: b"not an sdk message", lambda b: b[:30]])
def test_corrupt_ciphertext_is_corrupt(kms: Kms, mangle: object) -> None:
    ciphertext = _encryptor(kms.reader, kms).encrypt("sales", b"{}", CONTEXT).ciphertext
    with pytest.raises(CorruptMessage):
        _decryptor(kms.reader).decrypt(mangle(ciphertext))  # type: ignore[operator]


def test_ciphertext_replayed_under_other_metadata_is_tampering(kms: Kms) -> None:
    ciphertext = _encryptor(kms.reader, kms).encrypt("sales", b"{}", CONTEXT).ciphertext
    decrypted = _decryptor(kms.reader).decrypt(ciphertext)
    claims_refund = RecordMetadata(
        event_id="e1",
        department="sales",
        event_type="order.refunded",
        schema_version=1,
        occurred_at="2026-01-01T00:00:00+00:00",  # type: ignore[arg-type]
        key_arn=kms.key_arn,
    )

    with pytest.raises(TamperedMessage, match="event_type"):
        check_context(claims_refund, "keyfan.events", decrypted.encryption_context)
