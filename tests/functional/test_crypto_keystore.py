"""The subject-key table (crypto-shredding, started) against moto's DynamoDB and KMS with IAM on.

The owner creates a department's wrapping key once (one KMS call) and any number of subject keys (none);
a reader unwraps the wrapping key with its own KMS grant and reads the same subject keys; another
department's reader is denied; ``forget`` leaves no key material for the subject and nobody can read its key
again, while other subjects are untouched. The ``world`` grants the table permission on ``"*"`` and tests its
absence; with the local stack's table resolver (``moto_patches.determine_dynamodb_resource``) a grant naming one
table ARN allows that table and denies the others, as on AWS.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.responses import DynamoHandler

from keyfan.crypto.keystore import SubjectKeyStore
from keyfan.exceptions import AccessDenied, ConfigError, KeyServiceUnavailable
from keyfan_tools.local.moto_patches import authorize_with_json_denial
from tests.functional.moto_iam import enforce_iam_after, user_session

pytestmark = pytest.mark.functional

REGION = "us-east-1"
TABLE = "keyfan-subject-keys"


class CountingKms:
    """A KMS client that counts its calls by operation."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: Counter[str] = Counter()

    def generate_data_key(self, **kwargs: Any) -> Any:
        self.calls["GenerateDataKey"] += 1
        return self._client.generate_data_key(**kwargs)

    def decrypt(self, **kwargs: Any) -> Any:
        self.calls["Decrypt"] += 1
        return self._client.decrypt(**kwargs)


@dataclass
class World:
    keys: dict[str, str]
    sessions: dict[str, boto3.Session]

    def store(self, who: str, *, owner: bool = False, table: str = TABLE) -> SubjectKeyStore:
        session = self.sessions[who]
        return SubjectKeyStore(
            dynamodb=session.client("dynamodb"),
            kms=CountingKms(session.client("kms")),
            table=table,
            key_ids=self.keys if owner else None,
        )


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    enforce_iam_after(monkeypatch, 18)  # provisioning (3 + 3 per user), then IAM decides
    with mock_aws():
        kms = boto3.client("kms", region_name=REGION)
        keys = {d: kms.create_key()["KeyMetadata"]["Arn"] for d in ("sales", "finance")}  # 1-2
        boto3.client("dynamodb", region_name=REGION).create_table(  # 3
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        iam = boto3.client("iam", region_name=REGION)
        table = {"Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"], "Resource": "*"}
        read = {"Action": ["dynamodb:GetItem", "dynamodb:BatchGetItem"], "Resource": "*"}
        both = list(keys.values())
        sessions = {  # 3 calls each
            "owner": user_session(
                iam, "owner", [table, {"Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": both}]
            ),
            "sales": user_session(
                iam, "sales", [read, {"Action": ["kms:Decrypt"], "Resource": [keys["sales"]]}]
            ),
            "finance": user_session(
                iam, "finance", [read, {"Action": ["kms:Decrypt"], "Resource": [keys["finance"]]}]
            ),
            "no-table": user_session(iam, "no-table", [{"Action": ["kms:Decrypt"], "Resource": both}]),
            "auditor": user_session(iam, "auditor", [{"Action": ["dynamodb:Scan"], "Resource": "*"}]),
        }
        yield World(keys=keys, sessions=sessions)


def _items(world: World) -> list[dict[str, Any]]:
    """Everything in the table, read by an auditor."""
    return list(world.sessions["auditor"].client("dynamodb").scan(TableName=TABLE)["Items"])


def test_one_kms_call_per_department_then_subject_keys_without_kms(world: World) -> None:
    owner = world.store("owner", owner=True)
    keys = {s: owner.subject_key("sales", s, create=True) for s in (f"C-{n}" for n in range(50))}
    assert all(k is not None and len(k) == 32 for k in keys.values()) and len(set(keys.values())) == 50
    assert owner._kms.calls == {"GenerateDataKey": 1}  # type: ignore[attr-defined]
    # asking again finds the same keys, still without KMS
    assert owner.subject_key("sales", "C-7") == keys["C-7"]
    assert owner._kms.calls == {"GenerateDataKey": 1}  # type: ignore[attr-defined]
    # a reader of the department unwraps the wrapping key with its own grant and reads the same keys
    sales = world.store("sales")
    assert sales.subject_key("sales", "C-7") == keys["C-7"]
    assert sales.subject_key("sales", "nobody") is None  # never seen: no key, none made by a reader
    # the table holds pseudonyms, never the subject ids
    assert not any("C-" in item["pk"]["S"] for item in _items(world))


def test_a_reader_loads_many_subjects_with_batch_gets_under_the_same_grants(world: World) -> None:
    owner = world.store("owner", owner=True)
    wrapping = owner.wrapping_key("sales")
    made = {}
    for n in range(120):
        who = wrapping.pseudonym(f"C-{n}")
        made[who] = owner.key_of_pseudonym("sales", who, create=True)
    unknown = [wrapping.pseudonym(f"nobody-{n}") for n in range(5)]
    found = world.store("sales").keys_of_pseudonyms("sales", [*made, *unknown])
    assert {who: key for who, key in found.items() if who in made} == made  # two batches (100 + 20)
    assert [found[who] for who in unknown] == [None] * 5
    with pytest.raises(AccessDenied):  # BatchGetItem needs the table grant as GetItem does
        world.store("no-table").keys_of_pseudonyms("sales", list(made)[:3])
    with pytest.raises(AccessDenied):  # and the entries still open only under the department's KMS key
        world.store("finance").keys_of_pseudonyms("sales", list(made)[:3])


def test_another_departments_reader_and_a_reader_without_the_table_are_denied(world: World) -> None:
    world.store("owner", owner=True).subject_key("sales", "C-1", create=True)
    with pytest.raises(AccessDenied):
        world.store("finance").subject_key("sales", "C-1")  # KMS: not its department's key
    with pytest.raises(AccessDenied):
        world.store("no-table").subject_key("sales", "C-1")  # DynamoDB: no table permission
    with pytest.raises(ConfigError):
        world.store("sales").subject_key("finance", "C-1")  # no wrapping key yet, and a reader makes none
    with pytest.raises(KeyServiceUnavailable, match="does not exist"):  # waited for, never shredded
        world.store("owner", owner=True, table="missing").subject_key("sales", "C-1", create=True)


def test_forget_leaves_no_key_material_and_other_subjects_untouched(world: World) -> None:
    owner = world.store("owner", owner=True)
    kept, forgotten = (owner.subject_key("sales", s, create=True) for s in ("C-1", "C-2"))
    assert owner.forget("sales", "C-2") is True
    assert owner.forget("sales", "C-2") is False  # already gone
    sales = world.store("sales")
    assert sales.subject_key("sales", "C-2") is None and owner.subject_key("sales", "C-2") is None
    assert sales.subject_key("sales", "C-1") == kept
    who = owner.wrapping_key("sales").pseudonym("C-2")
    assert not [item for item in _items(world) if who in item["pk"]["S"]]
    # sealing a new event about the subject makes a new key, which opens nothing of the old records
    assert owner.subject_key("sales", "C-2", create=True) not in (None, forgotten)


def test_concurrent_first_uses_agree_on_one_key(world: World) -> None:
    stores = [world.store("owner", owner=True) for _ in range(4)]
    found: list[bytes | None] = []
    start = threading.Barrier(len(stores))

    def create(store: SubjectKeyStore) -> None:
        start.wait()
        found.append(store.subject_key("sales", "C-9", create=True))

    threads = [threading.Thread(target=create, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(found) == 4 and len(set(found)) == 1


def test_an_unreachable_table_is_an_outage(world: World) -> None:
    session = world.sessions["owner"]
    store = SubjectKeyStore(
        dynamodb=session.client("dynamodb", endpoint_url="http://127.0.0.1:9", config=_fast()),
        kms=session.client("kms"),
        table=TABLE,
        key_ids=world.keys,
    )
    with pytest.raises(KeyServiceUnavailable):
        store.subject_key("sales", "C-1", create=True)


def _fast() -> Any:
    from botocore.config import Config

    return Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 1})


def _create_table(name: str) -> None:
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def test_a_grant_on_one_table_arn_allows_that_table_and_denies_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    enforce_iam_after(monkeypatch, 6)  # a key, two tables, one user (3), then IAM decides
    # and denials shaped as the local stack's moto server shapes them (moto_patches, patch 2)
    monkeypatch.setattr(
        DynamoHandler, "_authenticate_and_authorize_normal_action", authorize_with_json_denial
    )
    with mock_aws():
        key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
        _create_table(TABLE)
        _create_table("other")
        table_arn = f"arn:aws:dynamodb:{REGION}:123456789012:table/{TABLE}"
        session = user_session(
            boto3.client("iam", region_name=REGION),
            "owner",
            [
                {
                    "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
                    "Resource": table_arn,
                },
                {"Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key},
            ],
        )

        def store(table: str) -> SubjectKeyStore:
            return SubjectKeyStore(
                dynamodb=session.client("dynamodb"),
                kms=session.client("kms"),
                table=table,
                key_ids={"sales": key},
            )

        # the granted table: create, read, forget
        granted = store(TABLE)
        made = granted.subject_key("sales", "C-1", create=True)
        assert made is not None and granted.subject_key("sales", "C-1") == made
        assert granted.forget("sales", "C-1") is True
        # another table: denied, as AWS words it
        with pytest.raises(AccessDenied) as caught:
            store("other").subject_key("sales", "C-1", create=True)
        cause = caught.value.__cause__
        assert isinstance(cause, ClientError)
        assert cause.response["Error"]["Code"] == "AccessDeniedException"
        assert cause.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "dynamodb:GetItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/other" in str(
            cause.response["Error"]["Message"]
        )
