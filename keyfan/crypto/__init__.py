"""Encryption and decryption: ports, the Encryption SDK adapter (wire v1), and error classification.

Wire v2's codec (``wire2``) and its KMS edge (``datakeys``) are built and tested but not yet used by the
services.
"""

from keyfan.crypto.datakeys import DataKeyCache, SessionDataKeys
from keyfan.crypto.kms import SUITES, DiscoveryKmsDecryptor, KmsObserver, StrictKmsEncryptor
from keyfan.crypto.ports import Decrypted, Decryptor, Encrypted, Encryptor
from keyfan.crypto.wire2 import Binding
from keyfan.settings import SuiteName

__all__ = [
    "SUITES",
    "Binding",
    "DataKeyCache",
    "Decrypted",
    "Decryptor",
    "DiscoveryKmsDecryptor",
    "Encrypted",
    "Encryptor",
    "KmsObserver",
    "SessionDataKeys",
    "StrictKmsEncryptor",
    "SuiteName",
]
