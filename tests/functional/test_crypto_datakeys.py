"""Wire v2's KMS edge against moto's KMS (in-process), with IAM authorization on and scoped to key ARNs.

The owner identity may only ``GenerateDataKey`` on the two department keys; each reader may only ``Decrypt``
with its own department's key; one reader may use both. Proves: one KMS call per department per rotation (also
under concurrent first use), rotation by count and by age, the consumer cache's size and age bounds, and the
denial / outage / corrupt split of v1 for every way a record can name the wrong key.

moto authorizes KMS calls against ``"*"`` unless taught the key's ARN; the fixture applies, for each test only,
``keyfan_tools.local.moto_patches.determine_kms_resource`` (what the local stack's moto server runs).
moto does not evaluate ``kms:EncryptionContext:*`` conditions, but it does bind the context into its blobs, so a
wrong department fails Decrypt as ``InvalidCiphertextException``, as on AWS.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from keyfan.crypto import wire2
from keyfan.crypto.datakeys import DataKeyCache, SessionDataKeys
from keyfan.crypto.wire2 import Binding
from keyfan.exceptions import (
    AccessDenied,
    ConfigError,
    CorruptMessage,
    KeyServiceUnavailable,
    TamperedMessage,
)
from tests.factories import FakeClock
from tests.functional.moto_iam import enforce_iam_after, user_session

pytestmark = pytest.mark.functional

REGION = "us-east-1"
ACCOUNT = "123456789012"
SALES = Binding("keyfan.events", "sales", "order.created", 1, "6f1c2d3e-0000-4000-8000-000000000001")
FINANCE = Binding("keyfan.events", "finance", "payment.settled", 1, "6f1c2d3e-0000-4000-8000-000000000002")
BODY = b'{"event_id":"x","data":{"amount":"12.34","pad":"' + b"x" * 900 + b'"}}'


@dataclass
class Kms:
    sales_arn: str
    finance_arn: str
    aliases: dict[str, str]  # department -> alias ARN (what the owner is configured with)
    owner: boto3.Session  # GenerateDataKey on both keys, no Decrypt
    sales_reader: boto3.Session  # Decrypt on the sales key
    finance_reader: boto3.Session  # Decrypt on the finance key
    both_reader: boto3.Session  # Decrypt on both


def _user_session(iam: Any, name: str, actions: list[str], resources: list[str]) -> boto3.Session:
    return user_session(iam, name, [{"Action": actions, "Resource": resources}])


@pytest.fixture
def kms(monkeypatch: pytest.MonkeyPatch) -> Iterator[Kms]:
    # The first 16 calls provision without auth (numbered below); every later call is authorized by IAM.
    enforce_iam_after(monkeypatch, 16)
    with mock_aws():
        client = boto3.client("kms", region_name=REGION)
        arns: dict[str, str] = {}
        for department in ("sales", "finance"):
            arns[department] = client.create_key()["KeyMetadata"]["Arn"]  # 1, 3
            client.create_alias(AliasName=f"alias/keyfan-{department}", TargetKeyId=arns[department])  # 2, 4
        iam = boto3.client("iam", region_name=REGION)
        both = [arns["sales"], arns["finance"]]
        yield Kms(
            sales_arn=arns["sales"],
            finance_arn=arns["finance"],
            aliases={d: f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/keyfan-{d}" for d in ("sales", "finance")},
            owner=_user_session(iam, "owner", ["kms:GenerateDataKey"], both),  # 5-7
            sales_reader=_user_session(iam, "sales-reader", ["kms:Decrypt"], [arns["sales"]]),  # 8-10
            finance_reader=_user_session(iam, "finance-reader", ["kms:Decrypt"], [arns["finance"]]),  # 11-13
            both_reader=_user_session(iam, "both-reader", ["kms:Decrypt"], both),  # 14-16
        )


def _botocore(session: boto3.Session, **config: Any) -> botocore.session.Session:
    """A fresh botocore session with the same identity: each owner or consumer counts its own KMS calls."""
    creds = session.get_credentials()
    core = boto3.Session(
        aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key, region_name=REGION
    )._session
    if config:
        core.set_default_client_config(Config(**config))
    return core


def _owner(kms: Kms, **kwargs: Any) -> SessionDataKeys:
    return SessionDataKeys(kms.aliases, botocore_session=_botocore(kms.owner), **kwargs)


def _reader(session: boto3.Session, **kwargs: Any) -> DataKeyCache:
    return DataKeyCache(botocore_session=_botocore(session), account_ids=(ACCOUNT,), **kwargs)


def _relabel(value: bytes, *, arn: str, wrapped: bytes) -> bytes:
    return dataclasses.replace(wire2.parse(value), key_arn=arn, wrapped_key=wrapped).to_bytes()


def _closed_port() -> int:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return int(closed.getsockname()[1])


# ---------------------------------------------------------------------------------------------- the owner
def test_owner_gets_one_data_key_per_department_and_readers_open_its_records(kms: Kms) -> None:
    owner = _owner(kms)
    sales = [owner.seal(replace(SALES, event_id=f"s{i}"), BODY) for i in range(100)]
    finance = [owner.seal(replace(FINANCE, event_id=f"f{i}"), BODY) for i in range(100)]

    assert dict(owner.observer.calls) == {"GenerateDataKey": 2}
    # the record names the key ARN KMS answered with, not the alias the owner was configured with
    assert {wire2.parse(v).key_arn for v in sales} == {kms.sales_arn}
    assert {wire2.parse(v).key_arn for v in finance} == {kms.finance_arn}
    assert len({wire2.parse(v).wrapped_key for v in sales + finance}) == 2

    reader = _reader(kms.sales_reader)
    assert all(reader.open(v, replace(SALES, event_id=f"s{i}")) == BODY for i, v in enumerate(sales))
    assert dict(reader.observer.calls) == {"Decrypt": 1}


def test_concurrent_first_uses_make_one_kms_call(kms: Kms) -> None:
    owner = _owner(kms)
    barrier = threading.Barrier(8)
    keys: list[wire2.DataKey] = []

    def first_use() -> None:
        barrier.wait()
        keys.append(owner.data_key("sales"))

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(keys) == 8 and len({id(key) for key in keys}) == 1
    assert dict(owner.observer.calls) == {"GenerateDataKey": 1}


def test_rotation_by_record_count(kms: Kms) -> None:
    owner = _owner(kms, max_records=10)
    values = [owner.seal(SALES, BODY) for _ in range(25)]

    wrapped = [wire2.parse(v).wrapped_key for v in values]
    assert owner.observer.calls["GenerateDataKey"] == 3
    assert [len(set(wrapped[i : i + 10])) for i in (0, 10, 20)] == [1, 1, 1]
    assert len(set(wrapped)) == 3
    reader = _reader(kms.sales_reader)
    assert all(reader.open(v, SALES) == BODY for v in values)
    assert reader.observer.calls["Decrypt"] == 3


def test_rotation_by_age(kms: Kms) -> None:
    clock = FakeClock(1000.0)
    owner = _owner(kms, max_age_seconds=300, clock=clock)
    first = owner.data_key("sales")

    clock.now += 299.9
    assert owner.data_key("sales") is first
    clock.now += 0.1
    second = owner.data_key("sales")

    assert second is not first and second.wrapped_key != first.wrapped_key
    assert owner.observer.calls["GenerateDataKey"] == 2
    # departments rotate independently
    owner.data_key("finance")
    clock.now += 200
    owner.data_key("finance")
    owner.data_key("sales")
    assert owner.observer.calls["GenerateDataKey"] == 3


def test_the_owner_cached_key_never_blocks_and_counts_towards_rotation(kms: Kms) -> None:
    """``cached_key`` is what the owner calls on its event loop: a key at hand, or ``None`` (go to a thread)."""
    clock = FakeClock(1000.0)
    owner = _owner(kms, max_records=3, max_age_seconds=300, clock=clock)
    assert owner.cached_key("sales") is None  # no key yet: a KMS call is due
    first = owner.data_key("sales")
    assert owner.cached_key("sales") is first and owner.cached_key("sales") is first
    assert owner.cached_key("sales") is None  # three records sealed under it: rotation is due
    second = owner.data_key("sales")
    assert second is not first and owner.cached_key("sales") is second
    clock.now += 300
    assert owner.cached_key("sales") is None  # too old: rotation is due
    # another thread holding the department's lock (maybe across a KMS call): None rather than waiting
    owner._locks["sales"].acquire()
    try:
        assert owner.cached_key("sales") is None
    finally:
        owner._locks["sales"].release()
    assert owner.cached_key("nobody") is None
    assert owner.observer.calls["GenerateDataKey"] == 2


def test_the_reader_cached_key_answers_from_the_cache_only(kms: Kms) -> None:
    value = _owner(kms).seal(SALES, BODY)
    envelope = wire2.parse(value)
    clock = FakeClock(1000.0)
    reader = _reader(kms.sales_reader, max_age_seconds=30, clock=clock)
    assert reader.cached_key(envelope, "sales") is None
    key = reader.data_key(envelope, "sales")
    assert reader.cached_key(envelope, "sales") is key
    assert reader.cached_key(envelope, "finance") is None  # the same blob claimed by another department
    clock.now += 30
    assert reader.cached_key(envelope, "sales") is None  # past the revocation bound: KMS decides again
    assert reader.observer.calls["Decrypt"] == 1


def test_an_expired_key_is_not_used_while_kms_is_down(kms: Kms) -> None:
    clock = FakeClock(1000.0)
    outage = threading.Event()
    core = _botocore(kms.owner, retries={"max_attempts": 1})

    def refuse(**_: Any) -> None:
        if outage.is_set():
            raise EndpointConnectionError(endpoint_url="https://kms.us-east-1.amazonaws.com")

    core.register("before-send.kms", refuse)
    owner = SessionDataKeys(kms.aliases, botocore_session=core, max_age_seconds=300, clock=clock)
    owner.data_key("sales")
    outage.set()
    clock.now += 300

    with pytest.raises(KeyServiceUnavailable):
        owner.data_key("sales")
    outage.clear()  # KMS is back: the next use rotates
    assert owner.data_key("sales") is not None
    assert owner.observer.calls["GenerateDataKey"] == 3


def test_owner_unreachable_kms_is_an_outage(kms: Kms, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", f"http://127.0.0.1:{_closed_port()}")
    owner = SessionDataKeys(
        kms.aliases, botocore_session=_botocore(kms.owner, retries={"max_attempts": 1}), max_records=10
    )

    with pytest.raises(KeyServiceUnavailable) as outage:
        owner.seal(SALES, BODY)

    assert not isinstance(outage.value, AccessDenied)
    assert owner.observer.calls["GenerateDataKey"] == 1


def test_owner_without_grant_is_denied_and_owner_cannot_decrypt(kms: Kms) -> None:
    with pytest.raises(AccessDenied):
        SessionDataKeys(kms.aliases, botocore_session=_botocore(kms.sales_reader)).data_key("sales")
    value = _owner(kms).seal(SALES, BODY)
    with pytest.raises(AccessDenied) as denied:
        _reader(kms.owner).open(value, SALES)
    assert denied.value.key_arn == kms.sales_arn


def test_an_unknown_department_is_a_config_error(kms: Kms) -> None:
    with pytest.raises(ConfigError):
        _owner(kms).data_key("marketing")


# -------------------------------------------------------------------------------------------- the readers
def test_a_reader_is_denied_another_departments_key_not_told_of_an_outage(kms: Kms) -> None:
    owner = _owner(kms)
    value = owner.seal(FINANCE, BODY)
    reader = _reader(kms.sales_reader)

    with pytest.raises(AccessDenied) as denied:
        reader.open(value, FINANCE)

    assert type(denied.value) is AccessDenied
    assert denied.value.key_arn == kms.finance_arn
    assert "sales-reader" in (denied.value.principal or str(denied.value))
    # a denial is not cached: the next record asks KMS again (the pipeline's denial memory decides when)
    with pytest.raises(AccessDenied):
        reader.open(value, FINANCE)
    assert reader.observer.calls["Decrypt"] == 2
    assert _reader(kms.finance_reader).open(value, FINANCE) == BODY


def test_reader_unreachable_kms_is_an_outage(kms: Kms, monkeypatch: pytest.MonkeyPatch) -> None:
    value = _owner(kms).seal(SALES, BODY)
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", f"http://127.0.0.1:{_closed_port()}")
    reader = DataKeyCache(
        botocore_session=_botocore(kms.sales_reader, retries={"max_attempts": 1}), account_ids=(ACCOUNT,)
    )

    with pytest.raises(KeyServiceUnavailable) as outage:
        reader.open(value, SALES)

    assert not isinstance(outage.value, AccessDenied | CorruptMessage)
    assert reader.observer.calls["Decrypt"] == 1


def test_the_cache_serves_repeats_and_asks_again_after_its_max_age(kms: Kms) -> None:
    value = _owner(kms).seal(SALES, BODY)
    clock = FakeClock(1000.0)
    reader = _reader(kms.sales_reader, max_age_seconds=30, clock=clock)

    for _ in range(50):
        reader.open(value, SALES)
    clock.now += 29.9
    reader.open(value, SALES)
    assert reader.observer.calls["Decrypt"] == 1
    clock.now += 0.1
    reader.open(value, SALES)
    assert reader.observer.calls["Decrypt"] == 2


def test_a_disabled_cache_asks_kms_for_every_record(kms: Kms) -> None:
    value = _owner(kms).seal(SALES, BODY)
    reader = _reader(kms.sales_reader, enabled=False)
    for _ in range(3):
        assert reader.open(value, SALES) == BODY
    assert reader.observer.calls["Decrypt"] == 3 and len(reader) == 0


def test_the_cache_is_bounded_least_recently_used_first(kms: Kms) -> None:
    owner = _owner(kms, max_records=1)  # a new data key per record
    a, b, c = (owner.seal(SALES, BODY) for _ in range(3))
    reader = _reader(kms.sales_reader, max_entries=2)

    for value in (a, b, a, c):  # c evicts b, the least recently used
        reader.open(value, SALES)
    assert len(reader) == 2 and reader.observer.calls["Decrypt"] == 3
    reader.open(a, SALES)
    assert reader.observer.calls["Decrypt"] == 3
    reader.open(b, SALES)
    assert reader.observer.calls["Decrypt"] == 4


def test_concurrent_misses_make_one_kms_call(kms: Kms) -> None:
    value = _owner(kms).seal(SALES, BODY)
    reader = _reader(kms.sales_reader)
    barrier = threading.Barrier(8)
    opened: list[bytes] = []

    def open_it() -> None:
        barrier.wait()
        opened.append(reader.open(value, SALES))

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert opened == [BODY] * 8
    assert reader.observer.calls["Decrypt"] == 1


# --------------------------------------------------------------------- records that name the wrong key
def test_swapped_wrapped_keys_between_departments_are_refused(kms: Kms) -> None:
    owner = _owner(kms)
    sales_value, finance_value = owner.seal(SALES, BODY), owner.seal(FINANCE, BODY)
    finance_ref = wire2.parse(finance_value)
    sales_ref = wire2.parse(sales_value)
    sales_record_with_finance_ref = _relabel(
        sales_value, arn=finance_ref.key_arn, wrapped=finance_ref.wrapped_key
    )
    both = _reader(kms.both_reader)

    # A sales reader is sent to finance's key: IAM refuses (a denial, never decrypted).
    with pytest.raises(AccessDenied):
        _reader(kms.sales_reader).open(sales_record_with_finance_ref, SALES)
    # A reader allowed both, the record still claiming sales: KMS unwraps nothing, the blob was made for the
    # context {department: finance}.
    with pytest.raises(CorruptMessage) as corrupt:
        both.open(sales_record_with_finance_ref, SALES)
    assert (type(corrupt.value), corrupt.value.reason) == (CorruptMessage, "invalid_ciphertext")
    # ... and claiming finance: KMS unwraps finance's key, which the record is not committed to.
    with pytest.raises(TamperedMessage) as tampered:
        both.open(sales_record_with_finance_ref, replace(SALES, department="finance"))
    assert tampered.value.reason == "bad_commitment"
    # A sales blob presented as finance's (headers say finance): the context does not match the blob.
    with pytest.raises(CorruptMessage) as corrupt:
        both.open(sales_value, replace(SALES, department="finance"))
    assert (type(corrupt.value), corrupt.value.reason) == (CorruptMessage, "invalid_ciphertext")
    # The sales blob under finance's ARN: moto answers AccessDeniedException for a KeyId that is not the blob's
    # key (AWS answers IncorrectKeyException, which is CorruptMessage("invalid_ciphertext")); refused either way.
    with pytest.raises(AccessDenied):
        both.open(_relabel(sales_value, arn=kms.finance_arn, wrapped=sales_ref.wrapped_key), SALES)
    # Nothing KMS refused reached the cache: it holds finance's key (KMS did unwrap it, for the right context)
    # and, now, sales's
    assert both.open(sales_value, SALES) == BODY and len(both) == 2


def test_a_key_outside_the_discovery_filter_is_refused_without_kms(kms: Kms) -> None:
    value = _owner(kms).seal(SALES, BODY)
    ref = wire2.parse(value)
    reader = _reader(kms.sales_reader)

    for arn in (
        kms.sales_arn.replace(ACCOUNT, "999999999999"),
        kms.sales_arn.replace("arn:aws:", "arn:aws-cn:"),
    ):
        with pytest.raises(CorruptMessage) as corrupt:
            reader.open(_relabel(value, arn=arn, wrapped=ref.wrapped_key), SALES)
        assert (type(corrupt.value), corrupt.value.reason) == (CorruptMessage, "key_not_allowed")
    assert reader.observer.total_calls == 0


def test_a_key_arn_naming_an_impossible_region_is_bad_key_arn(kms: Kms) -> None:
    value = _owner(kms).seal(SALES, BODY)
    reader = _reader(kms.sales_reader)
    arn = kms.sales_arn.replace(
        REGION, "us-east-1-"
    )  # the ARN pattern allows it; botocore's region rule does not

    with pytest.raises(CorruptMessage) as corrupt:
        reader.open(_relabel(value, arn=arn, wrapped=wire2.parse(value).wrapped_key), SALES)

    assert corrupt.value.reason == "bad_key_arn"


def test_every_byte_of_the_wrapped_key_flipped_is_refused_by_kms(kms: Kms) -> None:
    value = _owner(kms).seal(SALES, BODY)
    ref = wire2.parse(value)
    reader = _reader(kms.sales_reader)
    seen: set[tuple[str, str]] = set()
    for index in range(len(ref.wrapped_key)):
        wrapped = bytearray(ref.wrapped_key)
        wrapped[index] ^= 0x01
        try:
            reader.open(_relabel(value, arn=ref.key_arn, wrapped=bytes(wrapped)), SALES)
        except (AccessDenied, CorruptMessage) as exc:
            seen.add((type(exc).__name__, getattr(exc, "reason", "")))
        else:
            raise AssertionError(f"a flip in byte {index} of the wrapped key still opens")
    # moto's blob starts with its key id: a flip there names another key, which IAM denies; elsewhere KMS
    # finds the blob invalid
    assert seen == {("AccessDenied", ""), ("CorruptMessage", "invalid_ciphertext")}
    assert len(reader) == 0


def test_plaintext_data_keys_reach_no_log_and_no_repr(kms: Kms, caplog: pytest.LogCaptureFixture) -> None:
    # Given the plaintext data keys KMS hands out, seen on the wire by a botocore hook
    plaintexts: list[bytes] = []
    core = _botocore(kms.owner)
    core.register("after-call.kms", lambda parsed, **_: plaintexts.append(parsed.get("Plaintext", b"")))
    caplog.set_level(logging.DEBUG, logger="keyfan")
    owner = SessionDataKeys(kms.aliases, botocore_session=core, max_records=2)
    values = [owner.seal(SALES, BODY) for _ in range(4)]
    reader = _reader(kms.sales_reader)
    keys = [reader.data_key(wire2.parse(v), "sales") for v in values]

    shown = " ".join([repr(owner), repr(reader), *map(repr, keys), *map(str, keys), caplog.text])
    assert len(plaintexts) == 2 and all(len(p) == 32 for p in plaintexts)
    assert "new data key" in caplog.text
    for plaintext in plaintexts:
        for form in (plaintext.hex(), repr(plaintext), plaintext.decode("latin-1")):
            assert form not in shown
