"""The subject-key table for crypto-shredding (issue 12, started): DynamoDB below, ``subjects`` above.

Built and tested against moto with IAM on; **not yet used by the services** (the owner does not seal
personal fields yet). One table holds, per department:

    pk = "<department>#wrapping"      key = the department's wrapping key, as KMS's CiphertextBlob
    pk = "<department>#<pseudonym>"   key = a subject key wrapped under the wrapping key (``subjects``)

The wrapping key comes from KMS ``GenerateDataKey`` under the department's key with the encryption context
``{"department": <department>}`` (what the IaC's ``kms:EncryptionContext:department`` condition checks), the
first time any owner needs one, and is unwrapped by ``Decrypt`` once per process and per cache age. So a
subject key costs no KMS call, and reading one needs both ``dynamodb:GetItem`` on the table and
``kms:Decrypt`` on the department key: IAM decides, as for records.

Creation races are settled by conditional puts: the first writer wins and the loser reads the winner's
entry. ``forget`` deletes a subject's entry; a forgotten subject has no key, so ``subject_key`` returns
``None`` for it and its personal fields read as shredded (a new key is made only when the owner seals a new
event about it). Every foreign error leaves as ``AccessDenied``, ``KeyServiceUnavailable``,
``CorruptMessage`` or ``ConfigError``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from keyfan.crypto.subjects import WrappingKey
from keyfan.envelope import CTX_DEPARTMENT
from keyfan.exceptions import AccessDenied, ConfigError, CorruptMessage, KeyServiceUnavailable

Clock = Callable[[], float]
WRAPPING = "wrapping"
DEFAULT_MAX_AGE_SECONDS = 30.0  # as the decrypt-side data-key cache: a revoke or a forget within 30 s

_DENIED = {"AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "403"}
_OUTAGE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}


def _translate(exc: Exception, what: str) -> Exception:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code"))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _DENIED or status == 403:
            return AccessDenied(f"{what} denied ({code})")
        if code == "ResourceNotFoundException":
            return ConfigError(f"{what}: the subject-key table does not exist")
        if code in _OUTAGE or status >= 500:
            return KeyServiceUnavailable(f"{what} unavailable: {code}")
        return CorruptMessage("key_store_rejected", f"{what} failed with {code}")
    return KeyServiceUnavailable(f"{what} unavailable: {type(exc).__name__}")  # no answer at all


class SubjectKeyStore:
    """Wrapping keys and subject keys of the departments, in one DynamoDB table. Thread-safe."""

    def __init__(
        self,
        *,
        dynamodb: Any,
        kms: Any,
        table: str,
        key_ids: dict[str, str] | None = None,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Clock = time.monotonic,
    ) -> None:
        """``key_ids`` (department -> KMS key) is the owner's: only it may create wrapping keys. A reader
        passes none and unwraps whatever the table holds, if IAM lets it."""
        self._dynamodb = dynamodb
        self._kms = kms
        self._table = table
        self._key_ids = dict(key_ids or {})
        self._max_age = max_age_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._wrapping: dict[str, tuple[WrappingKey, float]] = {}

    # -- wrapping keys (one KMS call per department per cache age) ------------------------------
    def wrapping_key(self, department: str) -> WrappingKey:
        with self._lock:
            cached = self._wrapping.get(department)
            if cached is not None and self._clock() - cached[1] < self._max_age:
                return cached[0]
        blob = self._get(f"{department}#{WRAPPING}")
        if blob is None:
            blob = self._create_wrapping_key(department)
        key = self._unwrap_with_kms(department, blob)
        with self._lock:
            self._wrapping[department] = (key, self._clock())
        return key

    def _create_wrapping_key(self, department: str) -> bytes:
        key_id = self._key_ids.get(department)
        if key_id is None:
            raise ConfigError(f"no wrapping key for {department!r}, and this store may not create one")
        try:
            made = self._kms.generate_data_key(
                KeyId=key_id, KeySpec="AES_256", EncryptionContext={CTX_DEPARTMENT: department}
            )
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, "KMS GenerateDataKey") from exc
        blob = bytes(made["CiphertextBlob"])
        del made  # the plaintext lives on only once unwrapped, inside WrappingKey's derivations
        return self._put_new(f"{department}#{WRAPPING}", blob)

    def _unwrap_with_kms(self, department: str, blob: bytes) -> WrappingKey:
        try:
            answer = self._kms.decrypt(CiphertextBlob=blob, EncryptionContext={CTX_DEPARTMENT: department})
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, "KMS Decrypt of the wrapping key") from exc
        try:
            return WrappingKey(bytes(answer["Plaintext"]), department=department)
        except (KeyError, ValueError) as exc:
            raise CorruptMessage("bad_wrapping_key", "the wrapping key is not a 256-bit key") from exc

    # -- subject keys (no KMS call) -------------------------------------------------------------
    def subject_key(self, department: str, subject: str, *, create: bool = False) -> bytes | None:
        """The subject's key; ``None`` if it has none (forgotten, or never seen) and ``create`` is false."""
        wrapping = self.wrapping_key(department)
        who = wrapping.pseudonym(subject)
        wrapped = self._get(f"{department}#{who}")
        if wrapped is None:
            if not create:
                return None
            wrapped = self._put_new(f"{department}#{who}", wrapping.wrap(who, wrapping.new_subject_key()))
        return wrapping.unwrap(who, wrapped)

    def forget(self, department: str, subject: str) -> bool:
        """Delete the subject's key; whether it had one. Its personal fields are unreadable from then on
        (after consumers' cache age), in every record, past and future."""
        who = self.wrapping_key(department).pseudonym(subject)
        try:
            gone = self._dynamodb.delete_item(
                TableName=self._table, Key={"pk": {"S": f"{department}#{who}"}}, ReturnValues="ALL_OLD"
            )
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, "DynamoDB DeleteItem") from exc
        return bool(gone.get("Attributes"))

    # -- the table --------------------------------------------------------------------------------
    def _get(self, pk: str) -> bytes | None:
        try:
            item = self._dynamodb.get_item(
                TableName=self._table, Key={"pk": {"S": pk}}, ConsistentRead=True
            ).get("Item")
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, "DynamoDB GetItem") from exc
        return None if item is None else bytes(item["key"]["B"])

    def _put_new(self, pk: str, value: bytes) -> bytes:
        """Store ``value`` unless an entry exists; the entry that won either way."""
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={"pk": {"S": pk}, "key": {"B": value}, "created_at": {"N": str(int(time.time()))}},
                ConditionExpression="attribute_not_exists(pk)",
            )
            return value
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise _translate(exc, "DynamoDB PutItem") from exc
        except BotoCoreError as exc:
            raise _translate(exc, "DynamoDB PutItem") from exc
        winner = self._get(pk)
        if winner is None:  # created and deleted in between: a forget won the race
            raise KeyServiceUnavailable("the subject key changed while it was created; try again")
        return winner
