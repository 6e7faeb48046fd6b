"""Encryption and decryption: ports, the Encryption SDK adapter, and error classification."""

from keyfan.crypto.kms import SUITES, DiscoveryKmsDecryptor, KmsObserver, StrictKmsEncryptor
from keyfan.crypto.ports import Decrypted, Decryptor, Encrypted, Encryptor
from keyfan.settings import SuiteName

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
