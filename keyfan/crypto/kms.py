"""Wire v1, the AWS Encryption SDK adapter: strict encryption for the owner, discovery decryption for consumers.

Written when the owner runs with ``KEYFAN_WIRE=esdk`` (one standard SDK message per record); read forever.

The names state the trust posture. ``StrictKmsEncryptor`` encrypts only under the department keys it is
given. ``DiscoveryKmsDecryptor`` lists no keys at all: it asks KMS to decrypt whatever key a message names
(within a discovery filter of accounts), so IAM alone decides what a consumer can read, and a new grant
works without a restart or redeploy.

Every foreign error leaves this module only as ``AccessDenied``, ``KeyServiceUnavailable``,
``CorruptMessage`` or ``TamperedMessage`` (all translated by ``_translate``): an untranslated exception
would make a consumer retry the record forever. The SDK hides KMS's answer behind "Unable to decrypt any
data key", so a ``KmsObserver`` hooked into the botocore session records each KMS call and the last
failure per thread.
"""

from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

import aws_encryption_sdk
import botocore.session
from aws_encryption_sdk.caches.local import LocalCryptoMaterialsCache
from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError
from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy
from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header
from aws_encryption_sdk.key_providers.kms import (
    DiscoveryAwsKmsMasterKeyProvider,
    DiscoveryFilter,
    StrictAwsKmsMasterKeyProvider,
)
from aws_encryption_sdk.materials_managers.base import CryptoMaterialsManager
from aws_encryption_sdk.materials_managers.caching import CachingCryptoMaterialsManager
from aws_encryption_sdk.materials_managers.default import DefaultCryptoMaterialsManager
from botocore.exceptions import BotoCoreError, ClientError, InvalidRegionError, ParamValidationError
from cryptography.exceptions import InvalidSignature, InvalidTag

from keyfan.crypto.errors import KmsFailure, classify_kms_failure
from keyfan.crypto.ports import Decrypted, Encrypted
from keyfan.envelope import CONTENT_ESDK, Binding
from keyfan.exceptions import (
    ConfigError,
    CorruptMessage,
    CryptoError,
    KeyServiceUnavailable,
    TamperedMessage,
)
from keyfan.settings import SuiteName

SUITES: dict[str, Algorithm] = {
    # Signed: a consumer holding the data key still cannot forge a message (encryptors and decryptors
    # are different parties). Costs an ECDSA P-384 sign per encrypt and a verify per decrypt.
    "signed": Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
    # Unsigned: about 3-4x faster, but anyone who can decrypt could also produce a valid message.
    "unsigned": Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
}
# A message naming more keys than this is rejected before any KMS call (denial-of-service guard).
MAX_ENCRYPTED_DATA_KEYS = 4


class KmsObserver:
    """Counts KMS API calls and remembers the last failure of each thread, via botocore events."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._local = threading.local()

    def attach(self, session: botocore.session.Session) -> None:
        """Hook into ``session``'s KMS calls (clients created later only). Attaching the same observer to a
        session again is a no-op: botocore would otherwise run, and count, each hook once per attach (v1's
        encryptor and v2's data keys may share one session and one observer)."""
        tag = f"keyfan-kms-observer-{id(self)}"
        session.register("before-call.kms", self._before_call, unique_id=f"{tag}-before")
        session.register("after-call.kms", self._after_call, unique_id=f"{tag}-after")
        session.register("after-call-error.kms", self._after_call_error, unique_id=f"{tag}-error")

    @property
    def total_calls(self) -> int:
        with self._lock:
            return sum(self.calls.values())

    def reset_failure(self) -> None:
        self._local.failure = None

    @property
    def last_failure(self) -> KmsFailure | None:
        return getattr(self._local, "failure", None)

    def _before_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def _after_call(self, http_response: Any, parsed: Mapping[str, Any], model: Any, **_: Any) -> None:
        status = getattr(http_response, "status_code", 200)
        if status < 300:
            return
        error = parsed.get("Error", {}) if isinstance(parsed, Mapping) else {}
        self._local.failure = KmsFailure(
            operation=model.name,
            code=str(error.get("Code") or status),
            message=str(error.get("Message", "")),
            status=status,
        )

    def _after_call_error(self, exception: Exception, event_name: str, **_: Any) -> None:
        # No HTTP answer at all (refused, timed out): botocore names the operation only in the event name.
        self._local.failure = KmsFailure(
            operation=event_name.rsplit(".", 1)[-1], code=None, message=type(exception).__name__, status=None
        )


def _materials_manager(
    provider: StrictAwsKmsMasterKeyProvider | DiscoveryAwsKmsMasterKeyProvider,
    *,
    cache_capacity: int,
    max_age: float,
    max_messages: int,
    enabled: bool,
) -> CryptoMaterialsManager:
    if not enabled:
        return DefaultCryptoMaterialsManager(master_key_provider=provider)
    return CachingCryptoMaterialsManager(
        master_key_provider=provider,
        cache=LocalCryptoMaterialsCache(capacity=cache_capacity),
        max_age=float(max_age),
        max_messages_encrypted=max_messages,
    )


def _client() -> aws_encryption_sdk.EncryptionSDKClient:
    return aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
        max_encrypted_data_keys=MAX_ENCRYPTED_DATA_KEYS,
    )


def _in_chain(exc: BaseException, kinds: type[BaseException] | tuple[type[BaseException], ...]) -> bool:
    """Whether ``exc`` or an exception it was raised from or while handling is one of ``kinds``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kinds):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _translate(
    exc: BaseException,
    failure: KmsFailure | None,
    key_arn: str | None,
    *,
    corrupt_reason: str = "undecryptable",
) -> CryptoError:
    """The one place where foreign errors (SDK, botocore, cryptography, parsing) become Keyfan errors.

    ``failure`` is the ``KmsObserver``'s record of the last failed KMS call of this operation (None: no KMS
    call failed). In this order:

    1. An integrity check failed (the AES-GCM tag of the header or of a frame, the ECDSA signature of the
       message): ``TamperedMessage``. These checks run only once a data key is in hand, so no KMS failure
       can explain them, and retrying cannot help.
    2. A KMS call failed: KMS's answer (or its silence) decides: outage, denial or rejected ciphertext.
    3. botocore raised without a failed KMS call: an outage, unless the message itself made the request
       impossible (its key ARN names a region that is not a region, or breaks KMS's parameter limits).
    4. Anything else that parsing or decrypting the bytes raised: ``CorruptMessage(corrupt_reason)``.
    """
    if _in_chain(exc, InvalidSignature):
        return TamperedMessage("bad_signature", f"message signature does not verify: {_describe(exc)}")
    if _in_chain(exc, InvalidTag):
        return TamperedMessage("bad_tag", f"authentication tag does not verify: {_describe(exc)}")
    if failure is not None:
        return classify_kms_failure(failure, key_arn=key_arn)
    if isinstance(exc, InvalidRegionError):
        return CorruptMessage("bad_key_arn", f"the message's key ARN names no valid region: {_describe(exc)}")
    if isinstance(exc, ParamValidationError):
        # The request built from the message cannot be sent (a key id over KMS's limits): no retry helps.
        return CorruptMessage(
            "bad_key_arn", f"the message's key reference is not a valid KMS request: {_describe(exc)}"
        )
    if isinstance(exc, BotoCoreError):
        return KeyServiceUnavailable(f"KMS unreachable: {type(exc).__name__}")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return classify_kms_failure(KmsFailure(exc.operation_name, code, str(exc), status), key_arn=key_arn)
    return CorruptMessage(corrupt_reason, _describe(exc))


class StrictKmsEncryptor:
    """Encrypts each department's events under that department's key, and only that key."""

    def __init__(
        self,
        key_ids: Mapping[str, str],
        *,
        botocore_session: botocore.session.Session,
        suite: SuiteName = "signed",
        cache_enabled: bool = True,
        cache_capacity: int = 100,
        cache_max_age_seconds: float = 300.0,
        cache_max_messages: int = 1_000_000,
        observer: KmsObserver | None = None,
    ) -> None:
        if not key_ids:
            raise ConfigError("StrictKmsEncryptor needs at least one department key")
        self.observer = observer or KmsObserver()
        self.observer.attach(botocore_session)
        self._algorithm = SUITES[suite]
        self._client = _client()
        self._managers: dict[str, CryptoMaterialsManager] = {
            department: _materials_manager(
                StrictAwsKmsMasterKeyProvider(key_ids=[key_id], botocore_session=botocore_session),
                cache_capacity=cache_capacity,
                max_age=cache_max_age_seconds,
                max_messages=cache_max_messages,
                enabled=cache_enabled,
            )
            for department, key_id in key_ids.items()
        }
        self._key_ids = dict(key_ids)

    content = CONTENT_ESDK

    def encrypt_cached(self, binding: Binding, plaintext: bytes) -> Encrypted | None:
        """Always ``None``: an SDK message costs 0.2-0.9 ms of CPU (more than a thread hop) even cached."""
        return None

    def encrypt(self, binding: Binding, plaintext: bytes) -> Encrypted:
        department = binding.department
        context = binding.encryption_context()
        try:
            manager = self._managers[department]
        except KeyError:
            raise ConfigError(f"no key configured for department {department!r}") from None
        self.observer.reset_failure()
        try:
            ciphertext, header = self._client.encrypt(
                source=plaintext,
                materials_manager=manager,
                encryption_context=dict(context),
                algorithm=self._algorithm,
            )
        except (AWSEncryptionSDKClientError, BotoCoreError, ClientError) as exc:
            raise _translate(exc, self.observer.last_failure, self._key_ids[department]) from exc
        key_arn = next(iter(header.encrypted_data_keys)).key_provider.key_info.decode("utf-8")
        return Encrypted(ciphertext=ciphertext, key_arn=key_arn)


class DiscoveryKmsDecryptor:
    """Decrypts whatever IAM lets this identity decrypt; keys are discovered from each message."""

    content = CONTENT_ESDK

    def __init__(
        self,
        *,
        botocore_session: botocore.session.Session,
        account_ids: tuple[str, ...],
        partition: str = "aws",
        cache_enabled: bool = True,
        cache_capacity: int = 100,
        cache_max_age_seconds: float = 300.0,
        observer: KmsObserver | None = None,
    ) -> None:
        if not account_ids:
            raise ConfigError("a discovery decryptor needs the account ids whose keys it may use")
        self.observer = observer or KmsObserver()
        self.observer.attach(botocore_session)
        provider = DiscoveryAwsKmsMasterKeyProvider(
            botocore_session=botocore_session,
            discovery_filter=DiscoveryFilter(account_ids=list(account_ids), partition=partition),
        )
        self._manager = _materials_manager(
            provider,
            cache_capacity=cache_capacity,
            max_age=cache_max_age_seconds,
            max_messages=1,  # decrypt-side entries are not limited by message count
            enabled=cache_enabled,
        )
        self._client = _client()

    def key_arns(self, ciphertext: bytes) -> tuple[str, ...]:
        try:
            header = deserialize_header(io.BytesIO(ciphertext), MAX_ENCRYPTED_DATA_KEYS)[0]
            return tuple(edk.key_provider.key_info.decode("utf-8") for edk in header.encrypted_data_keys)
        except Exception as exc:  # any parse failure means the bytes are not an SDK message; no KMS call
            raise _translate(exc, None, None, corrupt_reason="bad_ciphertext") from exc

    def decrypt_cached(self, ciphertext: bytes, binding: Binding) -> Decrypted | None:
        """Always ``None``: an SDK message costs 0.2-0.9 ms of CPU (more than a thread hop) even cached."""
        return None

    def decrypt(self, ciphertext: bytes, binding: Binding) -> Decrypted:
        """``binding`` is not needed here: the pipeline checks the context and the event id afterwards."""
        key_arns = self.key_arns(ciphertext)
        self.observer.reset_failure()
        try:
            plaintext, header = self._client.decrypt(source=ciphertext, materials_manager=self._manager)
        except Exception as exc:  # every foreign error is translated: none may escape and stall a consumer
            raise _translate(exc, self.observer.last_failure, key_arns[0] if key_arns else None) from exc
        return Decrypted(
            plaintext=plaintext,
            encryption_context=dict(header.encryption_context),
            key_arn=key_arns[0],
        )
