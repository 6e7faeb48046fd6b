"""The subject-key table for crypto-shredding: DynamoDB below, ``subjects`` above, ``subjectkeys`` (the
caches the services use) on top.

One table holds, per department:

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
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from keyfan.crypto.subjects import WrappingKey
from keyfan.envelope import CTX_DEPARTMENT, CTX_PURPOSE, PURPOSE_SUBJECT_KEYS
from keyfan.exceptions import AccessDenied, ConfigError, CorruptMessage, KeyServiceUnavailable

Clock = Callable[[], float]
WRAPPING = "wrapping"
BATCH_GET_MAX_KEYS = 100  # DynamoDB's limit per BatchGetItem
BATCH_GET_ROUNDS = 3  # rounds for keys DynamoDB leaves unprocessed, before leaving them to single reads
DEFAULT_MAX_AGE_SECONDS = 30.0  # as the decrypt-side data-key cache: a revoke or a forget within 30 s

_DENIED = {"AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "403"}
_OUTAGE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}


def _wrapping_context(department: str) -> dict[str, str]:
    """A wrapping key's encryption context: the department (what consumers' grants check) and its purpose
    (what the owner's Decrypt grant checks, so the owner can unwrap wrapping keys but not records' keys)."""
    return {CTX_DEPARTMENT: department, CTX_PURPOSE: PURPOSE_SUBJECT_KEYS}


def _translate(exc: Exception, what: str) -> Exception:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code"))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _DENIED or status == 403:
            return AccessDenied(f"{what} denied ({code})")
        if code == "ResourceNotFoundException":
            # A wrong KEYFAN_SUBJECT_KEY_TABLE (or a table not yet created) is fixed by an operator: wait for
            # it like an outage, so no record is dead-lettered or shredded over a configuration slip.
            return KeyServiceUnavailable(f"{what}: the subject-key table does not exist")
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
        self._loaders: dict[str, threading.Lock] = {}
        self._calls: Counter[str] = Counter()  # table calls by operation (what keys cost in DynamoDB)

    def table_calls(self) -> dict[str, int]:
        """DynamoDB calls made so far, by operation (``GetItem``, ``PutItem``, ``DeleteItem``)."""
        with self._lock:
            return dict(self._calls)

    def _count(self, operation: str) -> None:
        with self._lock:
            self._calls[operation] += 1

    # -- wrapping keys (one KMS call per department per cache age) ------------------------------
    def cached_wrapping_key(self, department: str) -> WrappingKey | None:
        """The department's wrapping key if this process holds it, fresh; ``None``: ``wrapping_key`` must
        ask the table and KMS (it blocks)."""
        with self._lock:
            cached = self._wrapping.get(department)
            if cached is not None and self._clock() - cached[1] < self._max_age:
                return cached[0]
        return None

    def wrapping_key(self, department: str) -> WrappingKey:
        """The department's wrapping key, made on first use (by the owner: it alone has ``key_ids``)."""
        cached = self.cached_wrapping_key(department)
        if cached is not None:
            return cached
        with self._loading(department):  # concurrent first uses make one KMS call, not one each
            cached = self.cached_wrapping_key(department)
            if cached is not None:
                return cached
            blob = self._get(f"{department}#{WRAPPING}")
            key = (
                self._create_wrapping_key(department)
                if blob is None
                else self._unwrap_with_kms(department, blob)
            )
            return self._cached_as_wrapping(department, key)

    def _existing_wrapping_key(self, department: str) -> WrappingKey | None:
        """A reader's ``wrapping_key``: ``None`` if the department has none (nothing to read under it)."""
        cached = self.cached_wrapping_key(department)
        if cached is not None:
            return cached
        with self._loading(department):
            cached = self.cached_wrapping_key(department)
            if cached is not None:
                return cached
            blob = self._get(f"{department}#{WRAPPING}")
            return (
                None
                if blob is None
                else self._cached_as_wrapping(department, self._unwrap_with_kms(department, blob))
            )

    def _loading(self, department: str) -> threading.Lock:
        """The department's lock, held across the table and KMS calls that load its wrapping key."""
        with self._lock:
            return self._loaders.setdefault(department, threading.Lock())

    def _cached_as_wrapping(self, department: str, key: WrappingKey) -> WrappingKey:
        with self._lock:
            self._wrapping[department] = (key, self._clock())
        return key

    def _create_wrapping_key(self, department: str) -> WrappingKey:
        """A new wrapping key, stored KMS-wrapped; if another owner stored one first, that one (unwrapped)."""
        key_id = self._key_ids.get(department)
        if key_id is None:
            raise ConfigError(f"no wrapping key for {department!r}, and this store may not create one")
        try:
            made = self._kms.generate_data_key(
                KeyId=key_id, KeySpec="AES_256", EncryptionContext=_wrapping_context(department)
            )
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, "KMS GenerateDataKey") from exc
        blob = bytes(made["CiphertextBlob"])
        try:
            mine = WrappingKey(bytes(made["Plaintext"]), department=department)
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"KMS key {key_id!r} gave a wrapping key that is not 256 bits") from exc
        del made  # the plaintext lives on only inside WrappingKey's derivations
        stored = self._put_new(f"{department}#{WRAPPING}", blob)
        return mine if stored == blob else self._unwrap_with_kms(department, stored)

    def _unwrap_with_kms(self, department: str, blob: bytes) -> WrappingKey:
        try:
            answer = self._kms.decrypt(CiphertextBlob=blob, EncryptionContext=_wrapping_context(department))
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, "KMS Decrypt of the wrapping key") from exc
        try:
            return WrappingKey(bytes(answer["Plaintext"]), department=department)
        except (KeyError, ValueError) as exc:
            raise CorruptMessage("bad_wrapping_key", "the wrapping key is not a 256-bit key") from exc

    # -- subject keys (no KMS call) -------------------------------------------------------------
    def subject_key(self, department: str, subject: str, *, create: bool = False) -> bytes | None:
        """The subject's key; ``None`` if it has none (forgotten, or never seen) and ``create`` is false."""
        return self.key_of_pseudonym(
            department, self.wrapping_key(department).pseudonym(subject), create=create
        )

    def key_of_pseudonym(self, department: str, who: str, *, create: bool = False) -> bytes | None:
        """``subject_key`` by the subject's pseudonym: what a consumer has (records carry no subject id).

        A reader asks the table first: a forgotten subject then costs no KMS call. A department whose
        wrapping key is gone has no readable subject key at all (``None``: all of it is shredded)."""
        wrapped = self._get(f"{department}#{who}")
        if not create:
            reading = None if wrapped is None else self._existing_wrapping_key(department)
            return None if wrapped is None or reading is None else reading.unwrap(who, wrapped)
        wrapping = self.wrapping_key(department)
        if wrapped is None:
            wrapped = self._put_new(f"{department}#{who}", wrapping.wrap(who, wrapping.new_subject_key()))
        return wrapping.unwrap(who, wrapped)

    def keys_of_pseudonyms(self, department: str, whos: Sequence[str]) -> dict[str, bytes | None]:
        """``key_of_pseudonym`` for many subjects at once (a reader's look-ahead): ``BatchGetItem`` calls of
        up to 100 keys. A subject missing from the answer has no key (``None``). Best effort on
        throttling: keys DynamoDB leaves unprocessed after a few rounds are left out of the answer (the
        caller asks for those one by one). An entry that does not unwrap is left out too."""
        unique = list(dict.fromkeys(whos))
        wrapped: dict[str, bytes] = {}
        answered: set[str] = set()
        for start in range(0, len(unique), BATCH_GET_MAX_KEYS):
            chunk = unique[start : start + BATCH_GET_MAX_KEYS]
            request: dict[str, Any] = {
                self._table: {
                    "Keys": [{"pk": {"S": f"{department}#{w}"}} for w in chunk],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(BATCH_GET_ROUNDS):
                self._count("BatchGetItem")
                try:
                    answer = self._dynamodb.batch_get_item(RequestItems=request)
                except (BotoCoreError, ClientError) as exc:
                    raise _translate(exc, "DynamoDB BatchGetItem") from exc
                for item in answer.get("Responses", {}).get(self._table, []):
                    wrapped[item["pk"]["S"].partition("#")[2]] = bytes(item["key"]["B"])
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    answered.update(chunk)
                    break
                time.sleep(0.05 * (attempt + 1))
            else:
                left = {k["pk"]["S"].partition("#")[2] for k in request.get(self._table, {}).get("Keys", [])}
                answered.update(w for w in chunk if w not in left)
        found: dict[str, bytes | None] = {who: None for who in unique if who in answered}
        wrapping = self._existing_wrapping_key(department) if wrapped else None
        for who, blob in wrapped.items():
            if wrapping is None:
                break  # the department's wrapping key is gone: nothing under it opens (None, as for one)
            try:
                found[who] = wrapping.unwrap(who, blob)
            except CorruptMessage:  # TamperedMessage included: left for ``key_of_pseudonym`` to report
                found.pop(who, None)
        return found

    def forget(self, department: str, subject: str) -> bool:
        """Delete the subject's key; whether it had one. Its personal fields are unreadable from then on
        (after consumers' cache age), in every record, past and future."""
        who = self.wrapping_key(department).pseudonym(subject)
        self._count("DeleteItem")
        try:
            gone = self._dynamodb.delete_item(
                TableName=self._table, Key={"pk": {"S": f"{department}#{who}"}}, ReturnValues="ALL_OLD"
            )
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, "DynamoDB DeleteItem") from exc
        return bool(gone.get("Attributes"))

    # -- the table --------------------------------------------------------------------------------
    def _get(self, pk: str) -> bytes | None:
        self._count("GetItem")
        try:
            item = self._dynamodb.get_item(
                TableName=self._table, Key={"pk": {"S": pk}}, ConsistentRead=True
            ).get("Item")
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, "DynamoDB GetItem") from exc
        return None if item is None else bytes(item["key"]["B"])

    def _put_new(self, pk: str, value: bytes) -> bytes:
        """Store ``value`` unless an entry exists; the entry that won either way."""
        self._count("PutItem")
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
