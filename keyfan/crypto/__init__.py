"""Encryption and decryption: ports, the Encryption SDK adapter, and error classification."""

from keyfan.crypto.kms import SUITES, DiscoveryKmsDecryptor, KmsObserver, StrictKmsEncryptor, SuiteName
from keyfan.crypto.ports import Decrypted, Decryptor, Encrypted, Encryptor

__all__ = [
    "SUITES",
    "Decrypted",
    "Decryptor",
    "DiscoveryKmsDecryptor",
    "Encrypted",
    "Encryptor",
    "KmsObserver",
    "StrictKmsEncryptor",
    "SuiteName",
]
