"""Keyfan: one shared Kafka topic, per-department KMS keys; each team decrypts only what IAM permits.

Import public names from here, not from submodules. The crypto adapter (boto3 and the Encryption SDK,
about 0.4 s to import) is loaded on first use, so the ``keyfan`` command starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keyfan.departments import Department, DepartmentRegistry
from keyfan.envelope import (
    Binding,
    Body,
    RecordMetadata,
    SealedPersonal,
    check_context,
    encryption_context,
    open_body,
    seal,
)
from keyfan.exceptions import (
    AccessDenied,
    ConfigError,
    CorruptMessage,
    CryptoError,
    Interrupted,
    InvalidEvent,
    KeyfanError,
    KeyServiceUnavailable,
    LocalStackError,
    PublishFailed,
    RecordTooLarge,
    TamperedMessage,
)
from keyfan.masking import mask_card, mask_email, mask_iban, mask_name, mask_phone
from keyfan.models import DepartmentEvent, FinancePayment, SalesOrder
from keyfan.routing import partition_for, record_key
from keyfan.settings import ConsumerSettings, GeneratorSettings, KafkaSettings, KeyfanSettings, OwnerSettings
from keyfan.validation import parse_event

if TYPE_CHECKING:
    from keyfan.crypto import (
        Decrypted,
        Decryptor,
        DiscoveryKmsDecryptor,
        Encrypted,
        Encryptor,
        StrictKmsEncryptor,
    )

__version__ = "0.1.0"

_LAZY = {
    "Decrypted": "keyfan.crypto",
    "Decryptor": "keyfan.crypto",
    "DiscoveryKmsDecryptor": "keyfan.crypto",
    "Encrypted": "keyfan.crypto",
    "Encryptor": "keyfan.crypto",
    "StrictKmsEncryptor": "keyfan.crypto",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keyfan' has no attribute {name!r}")


__all__ = [
    "AccessDenied",
    "Binding",
    "Body",
    "ConfigError",
    "ConsumerSettings",
    "CorruptMessage",
    "CryptoError",
    "Decrypted",
    "Decryptor",
    "Department",
    "DepartmentEvent",
    "DepartmentRegistry",
    "DiscoveryKmsDecryptor",
    "Encrypted",
    "Encryptor",
    "FinancePayment",
    "GeneratorSettings",
    "Interrupted",
    "InvalidEvent",
    "KafkaSettings",
    "KeyServiceUnavailable",
    "KeyfanError",
    "KeyfanSettings",
    "LocalStackError",
    "OwnerSettings",
    "PublishFailed",
    "RecordMetadata",
    "RecordTooLarge",
    "SalesOrder",
    "SealedPersonal",
    "StrictKmsEncryptor",
    "TamperedMessage",
    "__version__",
    "check_context",
    "encryption_context",
    "mask_card",
    "mask_email",
    "mask_iban",
    "mask_name",
    "mask_phone",
    "open_body",
    "parse_event",
    "partition_for",
    "record_key",
    "seal",
]
