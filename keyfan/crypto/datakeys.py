"""The KMS edge of wire v2: data keys for the owner, unwrapped data keys for consumers.

Built and tested, **not yet used by the services** (they speak v1 through ``keyfan.crypto.kms``).

* ``SessionDataKeys`` (owner): one current data key per department, from KMS ``GenerateDataKey`` under the
  department's key with the encryption context ``{"department": <department>}`` (what the IaC's
  ``kms:EncryptionContext:department`` condition checks), rotated by record count and by age.
* ``DataKeyCache`` (consumer): unwrapped data keys, asked of KMS ``Decrypt`` with the key ARN the record
  names and the department it claims. Discovery, as v1's decryptor: no key is named in client config, so
  IAM and KMS alone decide what a consumer reads. The only guard is v1's discovery filter (the key's account
  and partition).

Every KMS or botocore error leaves as a Keyfan error through v1's machinery (``KmsObserver`` records the
failed call, ``keyfan.crypto.kms._translate`` and ``classify_kms_failure`` decide): ``AccessDenied``,
``KeyServiceUnavailable`` or ``CorruptMessage``, never confused. The same observer counts the calls, so the
KMS metrics of v1 and v2 compare. Plaintext data keys are never stored (``wire2.DataKey`` keeps only its
derivations), logged or shown in a ``repr``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    InvalidRegionError,
    NoRegionError,
    ParamValidationError,
)

from keyfan.crypto import wire2
from keyfan.crypto.kms import KmsObserver, _translate
from keyfan.envelope import CTX_DEPARTMENT
from keyfan.exceptions import ConfigError, CorruptMessage

log = logging.getLogger("keyfan.crypto")

Clock = Callable[[], float]

# Owner-side rotation. A data key seals at most DEFAULT_MAX_RECORDS records, and lives at most
# DEFAULT_MAX_AGE_SECONDS, whichever comes first.
#
# * Nonces: each record has a random 96-bit nonce. NIST SP 800-38D caps a key at 2^32 random-nonce messages
#   (nonce collision probability at most 2^-32). 10^6 records is about 2^20: the chance that two of them share
#   a nonce is about n^2 / 2^97 = 2^-57, and the count stays 4,000 times inside the cap.
# * KMS budget (at most 1 call per 10,000 records, steady state): by count, one GenerateDataKey per 10^6
#   records (100x inside). By age, one per 300 s per department: inside the budget from about 33 records/s
#   per department, and below that rate the calls are few anyway (288 a day per department).
# * 300 s is also v1's encrypt-side cache age (``DataKeyCacheSettings.cache_max_age_seconds``): removing the
#   owner's kms:GenerateDataKey grant stops new records within the same time as under v1.
DEFAULT_MAX_RECORDS = 1_000_000
DEFAULT_MAX_AGE_SECONDS = 300.0

# Consumer-side cache. The age is the revocation bound (as ``KEYFAN_DECRYPT_CACHE_MAX_AGE_SECONDS``, whose
# default it shares): after an IAM revoke, the next record past this age asks KMS and is denied. It costs one
# Decrypt per data key per age: at 1,000 records/s, one per 30,000 records. The size bounds memory (an entry
# is a few hundred bytes) and how many live data keys a consumer holds: the owner has one per department at
# a time, so 1,000 covers a large registry and a long rotation backlog.
DEFAULT_CACHE_ENTRIES = 1_000
DEFAULT_CACHE_MAX_AGE_SECONDS = 30.0


def _region_of(key_id: str, default: str | None) -> str | None:
    parts = key_id.split(":")
    if key_id.startswith("arn:") and len(parts) >= 6 and parts[3]:
        return parts[3]
    return default


def _fingerprint(wrapped_key: bytes) -> str:
    """A short, public name for a data key in logs: the start of its wrapped blob's SHA-256."""
    return hashlib.sha256(wrapped_key).hexdigest()[:12]


class _KmsClients:
    """One KMS client per region, from one botocore session: clients are thread-safe, creating them is not.

    Created lazily (a client resolves credentials when built), always after the observer is attached: a
    client copies the session's event hooks when it is created.
    """

    def __init__(self, session: botocore.session.Session) -> None:
        self._session = session
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def for_region(self, region: str | None) -> Any:
        if region is None:
            raise NoRegionError()
        with self._lock:
            client = self._clients.get(region)
            if client is None:
                client = self._session.create_client("kms", region_name=region)
                self._clients[region] = client
            return client


@dataclass(slots=True)
class _Current:
    key: wire2.DataKey
    born: float
    used: int = 0


class SessionDataKeys:
    """The owner's data keys: one current key per department, generated by KMS under that department's key.

    Strict, as v1's ``StrictKmsEncryptor``: only the department keys given here are ever used. Thread-safe.
    Each department has its own lock, held across the KMS call, so concurrent first uses (or uses at a
    rotation) make one ``GenerateDataKey``, not one each; other departments are not held up. A key past its
    count or its age is never used again, even if KMS is then down: the caller gets
    ``KeyServiceUnavailable`` and retries, as with v1.
    """

    def __init__(
        self,
        key_ids: Mapping[str, str],
        *,
        botocore_session: botocore.session.Session,
        max_records: int = DEFAULT_MAX_RECORDS,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Clock = time.monotonic,
        observer: KmsObserver | None = None,
    ) -> None:
        if not key_ids:
            raise ConfigError("SessionDataKeys needs at least one department key")
        if max_records < 1 or max_records > 2**32:
            raise ConfigError("max_records must be between 1 and 2^32 (the random-nonce bound of AES-GCM)")
        if max_age_seconds <= 0:
            raise ConfigError("max_age_seconds must be > 0")
        self.observer = observer or KmsObserver()
        self.observer.attach(botocore_session)
        self._default_region = botocore_session.get_config_variable("region")
        self._clients = _KmsClients(botocore_session)
        self._key_ids = dict(key_ids)
        self._max_records = max_records
        self._max_age = max_age_seconds
        self._clock = clock
        self._locks = {department: threading.Lock() for department in key_ids}
        self._current: dict[str, _Current] = {}

    def __repr__(self) -> str:
        return f"SessionDataKeys(departments={sorted(self._key_ids)}, max_records={self._max_records}, max_age_seconds={self._max_age})"

    def data_key(self, department: str) -> wire2.DataKey:
        """The department's current data key, counting one record sealed under it; rotates first if due."""
        try:
            lock = self._locks[department]
        except KeyError:
            raise ConfigError(f"no key configured for department {department!r}") from None
        with lock:
            current = self._current.get(department)
            if current is None or self._due(current):
                current = self._generate(department)
                self._current[department] = current
            current.used += 1
            return current.key

    def seal(self, binding: wire2.Binding, plaintext: bytes) -> bytes:
        """One record's v2 value, under ``binding.department``'s current data key."""
        return wire2.seal(self.data_key(binding.department), binding, plaintext)

    def _due(self, current: _Current) -> bool:
        return current.used >= self._max_records or self._clock() - current.born >= self._max_age

    def _generate(self, department: str) -> _Current:
        key_id = self._key_ids[department]
        self.observer.reset_failure()
        try:
            client = self._clients.for_region(_region_of(key_id, self._default_region))
            response = client.generate_data_key(
                KeyId=key_id, KeySpec="AES_256", EncryptionContext={CTX_DEPARTMENT: department}
            )
        except (InvalidRegionError, NoRegionError, ParamValidationError) as exc:
            # Nothing KMS said: our configuration cannot even make the request.
            raise ConfigError(f"cannot call KMS for {department!r} with key {key_id!r}: {exc}") from exc
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, self.observer.last_failure, key_id) from exc
        try:
            key = wire2.DataKey(
                response["Plaintext"], key_arn=response["KeyId"], wrapped_key=response["CiphertextBlob"]
            )
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"KMS key {key_id!r} gave a data key that does not fit wire v2: {exc}") from exc
        del response  # the plaintext data key lives on only inside the derivations
        log.info(
            "new data key",
            extra={
                "department": department,
                "key_arn": key.key_arn,
                "data_key": _fingerprint(key.wrapped_key),
            },
        )
        return _Current(key=key, born=self._clock())


CacheKey = tuple[bytes, str, str]  # wrapped key, key ARN, department


class DataKeyCache:
    """A consumer's unwrapped data keys, bounded in entries (least recently used goes first) and in age.

    Discovery: each record names its key; KMS ``Decrypt`` is asked with that ARN, the record's wrapped key and
    the department it claims, and IAM decides. An entry is keyed by the wrapped-key bytes *and* the key ARN
    and department it was asked with: it stands for exactly one answer KMS gave, so a record that re-labels a
    known blob with another ARN or department asks KMS (and is refused there) rather than being served.
    Thread-safe; concurrent misses for one entry make one KMS call and share its outcome.
    """

    def __init__(
        self,
        *,
        botocore_session: botocore.session.Session,
        account_ids: tuple[str, ...],
        partition: str = "aws",
        max_entries: int = DEFAULT_CACHE_ENTRIES,
        max_age_seconds: float = DEFAULT_CACHE_MAX_AGE_SECONDS,
        clock: Clock = time.monotonic,
        observer: KmsObserver | None = None,
    ) -> None:
        if not account_ids:
            raise ConfigError("a data-key cache needs the account ids whose keys it may use")
        if max_entries < 1:
            raise ConfigError("max_entries must be >= 1")
        if max_age_seconds <= 0:
            raise ConfigError("max_age_seconds must be > 0 (it is the revocation bound)")
        self.observer = observer or KmsObserver()
        self.observer.attach(botocore_session)
        self._clients = _KmsClients(botocore_session)
        self._accounts = frozenset(account_ids)
        self._partition = partition
        self._max_entries = max_entries
        self._max_age = max_age_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[CacheKey, tuple[wire2.DataKey, float]] = OrderedDict()
        self._inflight: dict[CacheKey, Future[wire2.DataKey]] = {}

    def __repr__(self) -> str:
        return (
            f"DataKeyCache(accounts={sorted(self._accounts)}, partition={self._partition!r}, "
            f"entries={len(self._entries)}/{self._max_entries}, max_age_seconds={self._max_age})"
        )

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def open(self, value: bytes, binding: wire2.Binding) -> bytes:
        """The plaintext of one v2 value; raises ``CryptoError`` subclasses only."""
        envelope = wire2.parse(value)
        return wire2.open_envelope(self.data_key(envelope, binding.department), envelope, binding)

    def data_key(self, envelope: wire2.Envelope, department: str) -> wire2.DataKey:
        """The data key ``envelope`` names, from the cache or from KMS."""
        cache_key: CacheKey = (envelope.wrapped_key, envelope.key_arn, department)
        with self._lock:
            cached = self._fresh(cache_key)
            if cached is not None:
                return cached  # its key ARN passed the discovery filter when it was cached
            flight = self._inflight.get(cache_key)
            leader = flight is None
            if flight is None:
                flight = self._inflight[cache_key] = Future()
        if not leader:
            return flight.result()
        try:
            self._check_discovery_filter(envelope.key_arn)
            key = self._unwrap(envelope, department)
        except BaseException as exc:
            with self._lock:
                del self._inflight[cache_key]
            flight.set_exception(exc)
            raise
        with self._lock:
            self._entries[cache_key] = (key, self._clock())
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
            del self._inflight[cache_key]
        flight.set_result(key)
        return key

    def _fresh(self, cache_key: CacheKey) -> wire2.DataKey | None:
        entry = self._entries.get(cache_key)
        if entry is None:
            return None
        key, born = entry
        if self._clock() - born >= self._max_age:
            del self._entries[cache_key]  # the revocation bound: past it, KMS decides again
            return None
        self._entries.move_to_end(cache_key)
        return key

    def _check_discovery_filter(self, key_arn: str) -> None:
        """v1's discovery filter: keys of the configured accounts in the configured partition only."""
        match = wire2.KMS_KEY_ARN.fullmatch(key_arn)
        if match is None or match["partition"] != self._partition or match["account"] not in self._accounts:
            raise CorruptMessage(
                "key_not_allowed", f"key {key_arn!r} is outside this consumer's discovery filter"
            )

    def _unwrap(self, envelope: wire2.Envelope, department: str) -> wire2.DataKey:
        key_arn = envelope.key_arn
        self.observer.reset_failure()
        try:
            client = self._clients.for_region(_region_of(key_arn, None))
            response = client.decrypt(
                CiphertextBlob=envelope.wrapped_key,
                EncryptionContext={CTX_DEPARTMENT: department},
                KeyId=key_arn,
            )
        except ParamValidationError as exc:
            # The record's bytes made a request KMS would refuse unseen; botocore's error is no outage.
            raise CorruptMessage("bad_key_reference", f"KMS request malformed: {exc}"[:300]) from exc
        except Exception as exc:  # every foreign error is translated: none may escape and stall a consumer
            raise _translate(exc, self.observer.last_failure, key_arn) from exc
        answered_arn = response.get("KeyId", key_arn)
        if answered_arn != key_arn:
            raise CorruptMessage("key_arn_mismatch", f"KMS unwrapped under {answered_arn!r}, not {key_arn!r}")
        try:
            key = wire2.DataKey(response["Plaintext"], key_arn=key_arn, wrapped_key=envelope.wrapped_key)
        except (KeyError, ValueError) as exc:
            raise CorruptMessage("bad_data_key", "the wrapped key does not hold a 256-bit data key") from exc
        del response
        log.debug(
            "data key unwrapped",
            extra={"department": department, "key_arn": key_arn, "data_key": _fingerprint(key.wrapped_key)},
        )
        return key
