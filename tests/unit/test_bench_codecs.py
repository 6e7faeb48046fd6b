"""The plaintext twins satisfy the crypto ports, carry key and context, and say "plaintext" on the wire."""

from __future__ import annotations

import pytest

from keyfan.crypto.ports import Decryptor, Encrypted, Encryptor
from keyfan.envelope import CONTENT_ESDK, CONTENT_PLAINTEXT, Binding
from keyfan.exceptions import ConfigError, CorruptMessage
from keyfan_tools.bench.codecs import PlaintextDecryptor, PlaintextEncryptor, frame, unframe

ARN = "arn:aws:kms:us-east-1:123456789012:alias/keyfan-sales"
CONTEXT = {"department": "sales", "event_type": "order.created", "schema_version": "1", "topic": "t"}
BINDING = Binding("t", "sales", "order.created", 1, "x")


def test_twins_round_trip_the_plaintext_key_and_context():
    encryptor: Encryptor = PlaintextEncryptor({"sales": ARN})
    decryptor: Decryptor = PlaintextDecryptor()
    encrypted = encryptor.encrypt(BINDING, b'{"event_id":"x"}')
    assert encrypted.key_arn == ARN
    assert decryptor.key_arns(encrypted.ciphertext) == (ARN,)
    decrypted = decryptor.decrypt(encrypted.ciphertext, BINDING)
    assert decrypted.plaintext == b'{"event_id":"x"}'
    assert dict(decrypted.encryption_context) == CONTEXT
    assert decrypted.key_arn == ARN
    # the twins never block, as v2 under a cached key: the pipelines call them inline
    assert encryptor.encrypt_cached(BINDING, b"y") is not None
    assert decryptor.decrypt_cached(encrypted.ciphertext, BINDING) == decrypted


def test_unknown_department_is_a_config_error():
    with pytest.raises(ConfigError):
        PlaintextEncryptor({"sales": ARN}).encrypt(Binding("t", "finance", "payment.created", 1, "x"), b"x")
    with pytest.raises(ConfigError):
        PlaintextEncryptor({})


@pytest.mark.parametrize("value", [b"", b"KFPT", b"NOPE\x01\x00\x02{}", frame(ARN, CONTEXT, b"x")[:-20]])
def test_anything_else_is_corrupt(value):
    with pytest.raises(CorruptMessage):
        unframe(value)


def test_the_twin_says_plaintext():
    assert PlaintextEncryptor({"sales": ARN}).encrypt(BINDING, b"x").content == CONTENT_PLAINTEXT
    assert Encrypted(ciphertext=b"c", key_arn=ARN).content == CONTENT_ESDK
    assert PlaintextDecryptor().content == CONTENT_PLAINTEXT
