"""Encryption and decryption: the ports, wire v2 (the default) and wire v1 (the Encryption SDK).

``wire2`` is v2's pure codec, ``datakeys`` its KMS edge and ``v2`` its ports adapters; ``kms`` is v1's
adapter and the KMS observer both share; ``errors`` classifies every KMS failure for both.
"""

from keyfan.crypto.datakeys import DataKeyCache, SessionDataKeys
from keyfan.crypto.kms import SUITES, DiscoveryKmsDecryptor, KmsObserver, StrictKmsEncryptor
from keyfan.crypto.ports import Decrypted, Decryptor, Encrypted, Encryptor
from keyfan.crypto.v2 import DataKeyDecryptor, SessionKeyEncryptor
from keyfan.envelope import Binding
from keyfan.settings import SuiteName

__all__ = [
    "SUITES",
    "Binding",
    "DataKeyCache",
    "DataKeyDecryptor",
    "Decrypted",
    "Decryptor",
    "DiscoveryKmsDecryptor",
    "Encrypted",
    "Encryptor",
    "KmsObserver",
    "SessionDataKeys",
    "SessionKeyEncryptor",
    "StrictKmsEncryptor",
    "SuiteName",
]
