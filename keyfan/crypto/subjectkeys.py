"""Subject keys at hand: a bounded cache over the key table, and sealing and opening personal fields with them.

The owner seals each event's personal fields under its subject's key (``seal``: found or created in the
table), a consumer opens them (``open``: found or not). Both keep keys for at most ``max_age_seconds`` (the
forget bound: after a ``keyfan forget``, no process uses the subject's key past this age) and at most
``max_entries`` subjects (least recently used go first). As with data keys, each side has a never-blocking
``*_cached`` call and one that may block on the table or KMS, for a thread. A consumer that misses also
``prefetch``-es the subjects of the records waiting behind the current one, 100 per table call.

What a consumer gets for a record's personal fields (``Personal``):

    open       the fields
    shredded   the subject's key is gone (forgotten), or is not the key that sealed them (forgotten, then
               made again for a later event): the fields are unreadable for good
    withheld   this consumer may not read the subject key (the table or KMS said AccessDenied): an IAM
               decision, like a record it may not decrypt; remembered per department for the cache age

An outage (``KeyServiceUnavailable``) is raised, for the caller to retry without bound; tampering is raised
as ``TamperedMessage``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import botocore.session

from keyfan import envelope
from keyfan.crypto import fields
from keyfan.crypto.fields import SubjectKey
from keyfan.crypto.keystore import Clock, SubjectKeyStore
from keyfan.envelope import Binding, SealedPersonal
from keyfan.exceptions import AccessDenied, ConfigError, CorruptMessage, KeyfanError
from keyfan.models import DepartmentEvent
from keyfan.personal_data import SHREDDED, WITHHELD, Split, merge, split
from keyfan.settings import SubjectKeySettings

log = logging.getLogger("keyfan.crypto")

DEFAULT_MAX_AGE_SECONDS = 30.0
DEFAULT_MAX_ENTRIES = 100_000
PSEUDONYM = re.compile(r"[0-9a-f]{64}")  # ``subjects.WrappingKey.pseudonym``: HMAC-SHA-256, hex


class Access(StrEnum):
    OPEN = "open"
    SHREDDED = "shredded"
    WITHHELD = "withheld"


@dataclass(frozen=True, slots=True)
class Personal:
    """A record's personal fields as this consumer can see them (``fields`` only when ``OPEN``)."""

    access: Access
    fields: Mapping[str, Any] | None = None

    def merged(self, department: str, rest: Mapping[str, Any]) -> dict[str, Any]:
        """The payload a handler gets: ``rest`` with the personal fields, or with their markers."""
        marker = WITHHELD if self.access is Access.WITHHELD else SHREDDED
        return merge(department, rest, self.fields if self.access is Access.OPEN else None, marker)


_ABSENT: Final = object()  # cached: the table has no key for this subject
# A cached subject: its key (or ``_ABSENT``), when the table said so, and the commitments of keys the table
# was found not to hold after their records were seen (records under them are shredded for good). Any other
# commitment may be the subject's *new* key (forgotten, then seen again): the table is asked, not the cache.
_Entry = tuple[SubjectKey | object, float, frozenset[bytes]]


class SubjectKeys:
    """Subject keys of the departments, cached. Thread-safe; the lock never spans a table or KMS call."""

    def __init__(
        self,
        store: SubjectKeyStore,
        *,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_age_seconds <= 0:
            raise ConfigError("the subject-key cache age must be > 0 (it is the forget bound)")
        if max_entries < 1:
            raise ConfigError("the subject-key cache needs room for at least one key")
        self.store = store
        self._max_age = max_age_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._denied: dict[str, float] = {}

    def __repr__(self) -> str:
        return (
            f"SubjectKeys(entries={len(self._entries)}/{self._max_entries}, max_age_seconds={self._max_age})"
        )

    # -- the owner --------------------------------------------------------------------------------
    def seal_body_cached(self, event: DepartmentEvent, binding: Binding) -> bytes | None:
        """``seal_body`` without blocking, or ``None`` if the subject's key is not at hand."""
        data, part = _parts(event)
        if part.subject is None or not part.personal:
            return envelope.seal(event, data=data)
        sealed = self.seal_cached(binding, part.subject, part.personal)
        return None if sealed is None else envelope.seal(event, data=part.rest, personal=sealed)

    def seal_body(self, event: DepartmentEvent, binding: Binding) -> bytes:
        """The body the owner encrypts under the department key: the payload without its personal fields,
        and those sealed apart under the subject's key (``envelope.seal``). May block."""
        data, part = _parts(event)
        if part.subject is None or not part.personal:
            return envelope.seal(event, data=data)
        return envelope.seal(event, data=part.rest, personal=self.seal(binding, part.subject, part.personal))

    def seal_cached(
        self, binding: Binding, subject: str, personal: Mapping[str, Any]
    ) -> SealedPersonal | None:
        """``seal`` if the wrapping key and the subject's key are at hand; ``None`` if it would block."""
        wrapping = self.store.cached_wrapping_key(binding.department)
        if wrapping is None:
            return None
        key = self._cached(binding.department, wrapping.pseudonym(subject))
        if not isinstance(key, SubjectKey):
            return None
        return SealedPersonal(key.pseudonym, fields.seal(key, binding, personal))

    def seal(self, binding: Binding, subject: str, personal: Mapping[str, Any]) -> SealedPersonal:
        """The personal fields of one event under its subject's key, made on first sight. May block."""
        department = binding.department
        who = self.store.wrapping_key(department).pseudonym(subject)
        key = self._cached(department, who)
        if not isinstance(key, SubjectKey):
            raw = self.store.key_of_pseudonym(department, who, create=True)
            assert raw is not None  # create=True makes one or raises
            key = self._remember(department, who, SubjectKey(raw, department=department, pseudonym=who))
        return SealedPersonal(who, fields.seal(key, binding, personal))

    # -- a consumer -------------------------------------------------------------------------------
    def open_cached(self, binding: Binding, sealed: SealedPersonal) -> Personal | None:
        """``open`` from the cache; ``None`` if the table must be asked (it blocks)."""
        department = binding.department
        if self._denied_now(department):
            return Personal(Access.WITHHELD)
        entry = self._entry(department, _checked(sealed.subject))
        return _opened(entry[0], binding, sealed) if entry and _settled(entry, sealed) else None

    def open(self, binding: Binding, sealed: SealedPersonal) -> Personal:
        """The record's personal fields, shredded or withheld. May block (the table, and KMS once per
        department and cache age for the wrapping key)."""
        department, who = binding.department, _checked(sealed.subject)
        if self._denied_now(department):
            return Personal(Access.WITHHELD)
        entry = self._entry(department, who)
        if entry is None or not _settled(entry, sealed):
            try:
                raw = self.store.key_of_pseudonym(department, who)
            except AccessDenied as exc:
                with self._lock:
                    self._denied[department] = self._clock()
                log.warning(
                    "subject keys withheld",  # once per department and cache age: metadata only
                    extra={"department": department, "error": str(exc), "for_seconds": self._max_age},
                )
                return Personal(Access.WITHHELD)
            return _opened(self._learn(department, who, raw, [sealed], entry), binding, sealed)
        return _opened(entry[0], binding, sealed)

    def prefetch(self, wanted: Iterable[tuple[str, SealedPersonal]]) -> int:
        """Load the keys of the subjects of records about to be opened (department, sealed fields) that the
        cache cannot answer, in batches: a consumer catching up on many subjects then makes one table
        call per hundred of them instead of one each. Best effort: what fails here is left to ``open``,
        which reports it. Returns the number of subjects asked for. Blocks."""
        asked: dict[str, dict[str, list[SealedPersonal]]] = {}
        for department, sealed in wanted:
            if not PSEUDONYM.fullmatch(sealed.subject) or self._denied_now(department):
                continue
            entry = self._entry(department, sealed.subject)
            if entry is None or not _settled(entry, sealed):
                asked.setdefault(department, {}).setdefault(sealed.subject, []).append(sealed)
        for department, subjects in asked.items():
            try:
                found = self.store.keys_of_pseudonyms(department, list(subjects))
            except KeyfanError:
                continue
            for who, raw in found.items():
                try:
                    self._learn(department, who, raw, subjects[who], self._entry(department, who))
                except KeyfanError:
                    continue
        return sum(len(subjects) for subjects in asked.values())

    def forget(self, department: str, subject: str) -> bool:
        """Delete the subject's key (``SubjectKeyStore.forget``) and drop it here; whether it had one."""
        who = self.store.wrapping_key(department).pseudonym(subject)
        with self._lock:
            self._entries.pop((department, who), None)
        return self.store.forget(department, subject)

    # -- the cache --------------------------------------------------------------------------------
    def _cached(self, department: str, who: str) -> SubjectKey | object | None:
        entry = self._entry(department, who)
        return None if entry is None else entry[0]

    def _entry(self, department: str, who: str) -> _Entry | None:
        with self._lock:
            entry = self._entries.get((department, who))
            if entry is None:
                return None
            if self._clock() - entry[1] >= self._max_age:
                del self._entries[(department, who)]  # the forget bound: past it, the table decides again
                return None
            self._entries.move_to_end((department, who))
            return entry

    def _learn(
        self, department: str, who: str, raw: bytes | None, seen: list[SealedPersonal], entry: _Entry | None
    ) -> SubjectKey | object:
        """Cache what the table said of a subject, with the keys of ``seen`` records known to be gone."""
        key = _ABSENT if raw is None else SubjectKey(raw, department=department, pseudonym=who)
        gone = entry[2] if entry else frozenset()
        for sealed in seen:
            if not (isinstance(key, SubjectKey) and fields.sealed_by(key, sealed.ciphertext)):
                gone |= {fields.commitment_of(sealed.ciphertext)}
        return self._remember(department, who, key, gone)

    def _remember(self, department: str, who: str, value: Any, gone: frozenset[bytes] = frozenset()) -> Any:
        with self._lock:
            self._entries[(department, who)] = (value, self._clock(), gone)
            self._entries.move_to_end((department, who))
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return value

    def _denied_now(self, department: str) -> bool:
        with self._lock:
            since = self._denied.get(department)
            if since is None:
                return False
            if self._clock() - since >= self._max_age:
                del self._denied[department]
                return False
            return True


def _parts(event: DepartmentEvent) -> tuple[dict[str, Any], Split]:
    data: dict[str, Any] = event.model_dump(mode="json")["data"]
    return data, split(event.department, data)


def _checked(pseudonym: str) -> str:
    if not PSEUDONYM.fullmatch(pseudonym):
        raise CorruptMessage("bad_personal", "the subject reference is not a pseudonym")
    return pseudonym


def _settled(entry: _Entry, sealed: SealedPersonal) -> bool:
    """Whether the cache knows the key that sealed ``sealed``: the subject's, or one known gone."""
    key, _, gone = entry
    if isinstance(key, SubjectKey) and fields.sealed_by(key, sealed.ciphertext):
        return True
    return fields.commitment_of(sealed.ciphertext) in gone


def _opened(entry: SubjectKey | object, binding: Binding, sealed: SealedPersonal) -> Personal:
    if not isinstance(entry, SubjectKey) or not fields.sealed_by(entry, sealed.ciphertext):
        fields.commitment_of(sealed.ciphertext)  # a shredded record must still be well-formed
        return Personal(Access.SHREDDED)
    return Personal(Access.OPEN, fields.open_fields(entry, binding, sealed.ciphertext))


def subject_keys_from(
    settings: SubjectKeySettings,
    *,
    botocore_session: botocore.session.Session,
    key_ids: Mapping[str, str] | None = None,
) -> SubjectKeys:
    """The services' subject keys: the one wiring the owner, consumers, ``keyfan forget`` and the benchmark
    share. ``key_ids`` (department -> KMS key) is the owner's, who may create wrapping keys; readers pass
    none."""
    store = SubjectKeyStore(
        dynamodb=botocore_session.create_client("dynamodb", region_name=settings.region),
        kms=botocore_session.create_client("kms", region_name=settings.region),
        table=settings.subject_key_table,
        key_ids=dict(key_ids or {}),
        max_age_seconds=settings.subject_key_max_age_seconds,
    )
    return SubjectKeys(
        store,
        max_age_seconds=settings.subject_key_max_age_seconds,
        max_entries=settings.subject_key_cache_entries,
    )
