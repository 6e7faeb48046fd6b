"""Subject keys at hand (crypto-shredding): the owner seals, a reader opens, forget shreds within the cache
age, denials are withheld and remembered, outages are raised, and KMS stays off the per-subject path.

Over in-memory fakes of DynamoDB and KMS (``tests.factories``); the real clients are in
``tests/functional/test_crypto_keystore.py``."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest

from keyfan.crypto.keystore import SubjectKeyStore
from keyfan.crypto.subjectkeys import Access, Personal, SubjectKeys
from keyfan.envelope import Binding, SealedPersonal
from keyfan.exceptions import CorruptMessage, KeyServiceUnavailable, TamperedMessage
from keyfan.generation import generate_events
from keyfan.models import DepartmentEvent
from keyfan.personal_data import SHREDDED, WITHHELD, personal_fields, split
from tests.factories import OWNER_KEY_IDS, FakeClock, FakeDynamoDB, FakeKms, client_error, fake_subject_keys

TOPIC = "keyfan.events"
AGE = 30.0
EVENTS = generate_events(40, ["sales", "finance"], seed=21)
SALES = [e for e in EVENTS if e.department == "sales"]
FINANCE = [e for e in EVENTS if e.department == "finance"]


class World:
    """One owner and one reader over the same fake table and KMS, on one fake clock."""

    def __init__(self, *, max_entries: int = 100_000) -> None:
        self.clock = FakeClock(1000.0)
        self.table = FakeDynamoDB()
        self.kms = FakeKms()
        self.owner = self.keys(key_ids=OWNER_KEY_IDS, max_entries=max_entries)
        self.reader = self.keys()

    def keys(self, **kwargs: Any) -> SubjectKeys:
        return fake_subject_keys(
            dynamodb=self.table, kms=self.kms, clock=self.clock, max_age_seconds=AGE, **kwargs
        )

    def seal(self, event: DepartmentEvent) -> tuple[Binding, SealedPersonal]:
        binding, subject, personal = parts(event)
        return binding, self.owner.seal(binding, subject, personal)

    def later(self, seconds: float) -> None:
        self.clock.now += seconds


def parts(event: DepartmentEvent) -> tuple[Binding, str, dict[str, Any]]:
    part = split(event.department, event.model_dump(mode="json")["data"])
    assert part.subject is not None
    return Binding.of_event(event, TOPIC), part.subject, part.personal


def subject_of(event: DepartmentEvent) -> str:
    return parts(event)[1]


def another_event_of(event: DepartmentEvent, n: int = 1) -> DepartmentEvent:
    """A later event about the same subject (a new event id)."""
    source = FINANCE if event.department == "finance" else SALES
    template = next(e for e in source if subject_of(e) != subject_of(event))
    data = dict(template.data)
    subject_field = "account_id" if event.department == "finance" else "customer_id"
    data[subject_field] = subject_of(event)
    return template.model_copy(update={"data": data, "event_id": template.event_id.__class__(int=n)})


@pytest.fixture
def w() -> World:
    return World()


def test_the_owner_makes_a_subjects_key_on_first_sight_and_a_reader_opens_the_exact_fields(w: World) -> None:
    binding, subject, personal = parts(SALES[0])
    sealed = w.owner.seal(binding, subject, personal)
    # the first seal made the department's wrapping key (KMS, once) and the subject's key (the table)
    assert w.kms.calls == {"GenerateDataKey": 1}  # the wrapping key made, used as KMS gave it
    assert w.table.calls == {"GetItem": 2, "PutItem": 2}
    assert set(w.table.items) == {"sales#wrapping", f"sales#{sealed.subject}"}
    assert subject not in sealed.subject and len(sealed.subject) == 64  # a pseudonym, never the id
    opened = w.reader.open(binding, sealed)
    assert opened == Personal(Access.OPEN, personal)
    assert set(personal) == personal_fields("sales")


def test_seal_cached_is_none_cold_then_seals_inline_without_any_call(w: World) -> None:
    binding, subject, personal = parts(SALES[0])
    assert w.owner.seal_cached(binding, subject, personal) is None
    assert w.table.calls == {} and w.kms.calls == {}
    first = w.owner.seal(binding, subject, personal)
    table, kms = dict(w.table.calls), dict(w.kms.calls)
    later = another_event_of(SALES[0])
    later_binding, _, later_personal = parts(later)
    inline = w.owner.seal_cached(later_binding, subject, later_personal)
    assert inline is not None and inline.subject == first.subject
    assert (dict(w.table.calls), dict(w.kms.calls)) == (table, kms)
    assert w.reader.open(later_binding, inline) == Personal(Access.OPEN, later_personal)
    # a subject not yet seen still needs the table
    other_binding, other_subject, other_personal = parts(SALES[1])
    assert w.owner.seal_cached(other_binding, other_subject, other_personal) is None


def test_a_reader_opens_from_its_cache_once_it_has_the_key(w: World) -> None:
    binding, sealed = w.seal(SALES[0])
    assert w.reader.open_cached(binding, sealed) is None  # cold: the table must be asked
    assert w.reader.open(binding, sealed).access is Access.OPEN
    calls = dict(w.table.calls)
    cached = w.reader.open_cached(binding, sealed)
    assert cached is not None and cached.access is Access.OPEN and dict(w.table.calls) == calls


def test_forget_shreds_for_a_reader_once_its_cache_age_passes_and_not_before(w: World) -> None:
    binding, sealed = w.seal(SALES[0])
    assert w.reader.open(binding, sealed).access is Access.OPEN  # cached by the reader at t0
    w.later(5)
    assert w.owner.forget("sales", subject_of(SALES[0])) is True
    assert f"sales#{sealed.subject}" not in w.table.items
    # within the age the reader still holds the key: the documented bound, honest in both directions
    w.later(AGE - 5 - 0.001)
    assert w.reader.open(binding, sealed).access is Access.OPEN
    # past it, the table decides again: nothing there, so shredded, for this and any other reader
    w.later(0.001)
    assert w.reader.open(binding, sealed) == Personal(Access.SHREDDED)
    assert w.keys().open(binding, sealed) == Personal(Access.SHREDDED)
    assert w.owner.forget("sales", subject_of(SALES[0])) is False  # nothing left to forget


def test_a_forgotten_subject_seen_again_gets_a_new_key_old_records_stay_shredded(w: World) -> None:
    old_binding, old = w.seal(SALES[0])
    w.owner.forget("sales", subject_of(SALES[0]))
    new_binding, new = w.seal(another_event_of(SALES[0]))
    assert new.subject == old.subject  # the same subject, the same pseudonym ...
    assert new.ciphertext[1:33] != old.ciphertext[1:33]  # ... but another key (its commitment)
    reader = w.keys()
    assert reader.open(old_binding, old) == Personal(Access.SHREDDED)
    assert reader.open(new_binding, new).access is Access.OPEN
    assert reader.open_cached(old_binding, old) == Personal(Access.SHREDDED)  # from the cache, in any order


def test_a_reader_that_cached_the_old_key_reads_new_records_of_a_returning_subject(w: World) -> None:
    old_binding, old = w.seal(SALES[0])
    assert w.reader.open(old_binding, old).access is Access.OPEN  # the reader caches the old key
    w.owner.forget("sales", subject_of(SALES[0]))
    new_binding, new = w.seal(another_event_of(SALES[0]))
    # a record sealed under the subject's new key is readable: shredded is for good, so it must not be
    # concluded from a stale cache entry (the new record's commitment is not the old key's)
    assert w.reader.open(new_binding, new).access is Access.OPEN
    w.later(AGE)
    assert w.reader.open(old_binding, old) == Personal(Access.SHREDDED)
    assert w.reader.open(new_binding, new).access is Access.OPEN


def test_a_reader_that_saw_the_subject_forgotten_reads_new_records_when_it_comes_back(w: World) -> None:
    old_binding, old = w.seal(SALES[0])
    w.owner.forget("sales", subject_of(SALES[0]))
    assert w.reader.open(old_binding, old) == Personal(Access.SHREDDED)  # the reader caches "no key"
    new_binding, new = w.seal(another_event_of(SALES[0]))
    assert w.reader.open(new_binding, new).access is Access.OPEN
    assert w.reader.open(old_binding, old) == Personal(Access.SHREDDED)
    # once the table showed the old key gone, more old records are answered from the cache
    calls = w.table.calls["GetItem"]
    assert w.reader.open_cached(old_binding, old) == Personal(Access.SHREDDED)
    assert [w.reader.open(old_binding, old).access for _ in range(5)] == [Access.SHREDDED] * 5
    assert w.table.calls["GetItem"] == calls


def test_forget_leaves_other_subjects_alone(w: World) -> None:
    sealed = [w.seal(event) for event in SALES[:4]]
    w.owner.forget("sales", subject_of(SALES[0]))
    w.later(AGE)
    reader = w.keys()
    assert [reader.open(b, s).access for b, s in sealed] == [Access.SHREDDED] + [Access.OPEN] * 3


def test_table_access_denied_is_withheld_remembered_for_the_age_then_asked_again(
    w: World, caplog: pytest.LogCaptureFixture
) -> None:
    sealed = [w.seal(event) for event in SALES[:3]]
    finance = w.seal(FINANCE[0])
    w.table.denied = True
    with caplog.at_level(logging.WARNING, logger="keyfan.crypto"):
        assert w.reader.open(*sealed[0]) == Personal(Access.WITHHELD)
    # surfaced once, metadata only
    (line,) = [r for r in caplog.records if r.getMessage() == "subject keys withheld"]
    assert line.department == "sales" and "AccessDenied" in line.error  # type: ignore[attr-defined]
    calls = w.table.calls["GetItem"]
    # remembered for the department: no further table call, blocking or not, whatever the subject
    assert w.reader.open(*sealed[1]) == Personal(Access.WITHHELD)
    assert w.reader.open_cached(*sealed[2]) == Personal(Access.WITHHELD)
    assert w.table.calls["GetItem"] == calls
    # but only for its department: finance is asked on its own (and denied too, here)
    assert w.reader.open(*finance) == Personal(Access.WITHHELD)
    assert w.table.calls["GetItem"] == calls + 1
    # once the age passes, the table is asked again (IAM may have granted it)
    w.table.denied = False
    w.later(AGE)
    assert w.reader.open(*sealed[1]).access is Access.OPEN


def test_kms_access_denied_on_the_wrapping_key_is_withheld_too(w: World) -> None:
    binding, sealed = w.seal(SALES[0])
    w.kms.denied = True
    assert w.reader.open(binding, sealed) == Personal(Access.WITHHELD)
    assert w.kms.calls["Decrypt"] == 1  # the reader's, refused (the owner used the key it made)


@pytest.mark.parametrize("service", ["table", "kms"])
def test_an_outage_is_raised_and_not_remembered(w: World, service: str) -> None:
    binding, sealed = w.seal(SALES[0])
    fake = w.table if service == "table" else w.kms
    fake.down = True
    with pytest.raises(KeyServiceUnavailable):
        w.reader.open(binding, sealed)
    with pytest.raises(KeyServiceUnavailable):
        w.reader.open(binding, sealed)  # asked again: neither a denial nor a key was cached
    fake.down = False
    assert w.reader.open(binding, sealed).access is Access.OPEN


def test_an_outage_reaches_the_owner_as_well(w: World) -> None:
    w.table.down = True
    with pytest.raises(KeyServiceUnavailable):
        w.seal(SALES[0])
    w.table.down = False
    w.seal(SALES[0])


@pytest.mark.parametrize("subject", ["", "AB" * 32, "ab" * 31, "zz" * 32, "ab" * 32 + "\n", "C-1001"])
def test_a_subject_reference_that_is_not_a_pseudonym_is_corrupt(w: World, subject: str) -> None:
    binding, sealed = w.seal(SALES[0])
    forged = SealedPersonal(subject, sealed.ciphertext)
    for opener in (w.reader.open, w.reader.open_cached):
        with pytest.raises(CorruptMessage) as caught:
            opener(binding, forged)
        assert caught.value.reason == "bad_personal"
    assert w.table.calls["GetItem"] == 2  # only the owner's: a bad reference never reaches the table


def test_a_record_moved_to_another_subject_or_event_is_refused(w: World) -> None:
    binding, sealed = w.seal(SALES[0])
    _, other = w.seal(SALES[1])
    # under another subject's reference the commitment is not its key's: that reads as shredded
    assert w.reader.open(binding, SealedPersonal(other.subject, sealed.ciphertext)).access is Access.SHREDDED
    # under the right subject but another record's binding, the tag fails: tampering
    moved = dataclasses.replace(binding, event_id=str(SALES[1].event_id))
    with pytest.raises(TamperedMessage) as caught:
        w.reader.open(moved, sealed)
    assert caught.value.reason == "personal_bad_tag"


def test_a_shredded_record_must_still_be_well_formed(w: World) -> None:
    binding, sealed = w.seal(SALES[0])
    w.owner.forget("sales", subject_of(SALES[0]))
    with pytest.raises(CorruptMessage):
        w.keys().open(binding, SealedPersonal(sealed.subject, b"\x01short"))


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    w = World(max_entries=2)
    a, b, c = (parts(event) for event in SALES[:3])
    for binding, subject, personal in (a, b):
        w.owner.seal(binding, subject, personal)
    assert w.owner.seal_cached(*a) is not None  # a is now the most recently used
    w.owner.seal(*c)  # evicts b
    assert w.owner.seal_cached(*b) is None
    assert w.owner.seal_cached(*a) is not None and w.owner.seal_cached(*c) is not None
    assert "entries=2/2" in repr(w.owner)


def test_the_cache_needs_a_positive_age_and_room() -> None:
    from keyfan.exceptions import ConfigError

    with pytest.raises(ConfigError):
        fake_subject_keys(max_age_seconds=0)
    with pytest.raises(ConfigError):
        fake_subject_keys(max_entries=0)


def test_kms_stays_off_the_per_subject_path() -> None:
    w = World()
    (template,) = SALES[:1]
    binding, _, personal = parts(template)
    for n in range(1000):
        w.owner.seal(binding, f"C-{n:06d}", personal)
    # one GenerateDataKey and one Decrypt for the wrapping key, whatever the number of subjects
    assert w.kms.calls == {"GenerateDataKey": 1}  # the wrapping key made, used as KMS gave it
    # and about two table calls per new subject (a read that misses, a conditional put)
    assert w.table.calls == {"GetItem": 1001, "PutItem": 1001}
    assert len(w.table.items) == 1001


def test_a_lost_creation_race_takes_the_winners_key(w: World) -> None:
    binding, subject, personal = parts(SALES[0])
    rival = w.keys(key_ids=OWNER_KEY_IDS)
    first = rival.seal(binding, subject, personal)
    # the owner's read missed (simulated: its put finds the entry the rival made in between)
    real_get = w.table.get_item
    misses = iter([True])

    def get_item(**kwargs: Any) -> dict[str, Any]:
        if kwargs["Key"]["pk"]["S"].endswith(first.subject) and next(misses, False):
            w.table.calls["GetItem"] += 1
            return {}
        return real_get(**kwargs)

    w.table.get_item = get_item  # type: ignore[method-assign]
    second = w.owner.seal(binding, subject, personal)
    assert second.ciphertext[1:33] == first.ciphertext[1:33]  # one key per subject
    assert w.table.calls["PutItem"] == 3  # wrapping, the rival's subject key, the owner's refused one


@pytest.mark.parametrize(
    ("access", "marker"), [(Access.SHREDDED, SHREDDED), (Access.WITHHELD, WITHHELD)], ids=str
)
def test_merged_gives_the_handler_markers_in_place_of_the_personal_fields(
    access: Access, marker: str
) -> None:
    data = FINANCE[0].model_dump(mode="json")["data"]
    part = split("finance", data)
    merged = Personal(access).merged("finance", part.rest)
    assert {k: merged[k] for k in personal_fields("finance")} == {"card_number": marker, "iban": marker}
    assert {k: v for k, v in merged.items() if k not in personal_fields("finance")} == part.rest
    assert Personal(Access.OPEN, part.personal).merged("finance", part.rest) == data


def test_kms_denied_on_the_owner_reaches_it_as_access_denied() -> None:
    from keyfan.exceptions import AccessDenied

    kms = FakeKms()
    kms.denied = True
    owner = fake_subject_keys(kms=kms, key_ids=OWNER_KEY_IDS)
    with pytest.raises(AccessDenied):
        owner.seal(*parts(SALES[0]))


def test_a_missing_table_is_waited_for_like_an_outage_never_shredded() -> None:
    """A wrong KEYFAN_SUBJECT_KEY_TABLE must not dead-letter or shred records: it is retried until fixed."""
    store = SubjectKeyStore(dynamodb=_MissingTable(), kms=FakeKms(), table="wrong", key_ids=OWNER_KEY_IDS)
    with pytest.raises(KeyServiceUnavailable, match="does not exist"):
        store.key_of_pseudonym("sales", "ab" * 32)


class _MissingTable:
    def get_item(self, **_: object) -> object:
        raise client_error("ResourceNotFoundException", "GetItem")


def _many_subjects(w: World, n: int) -> list[tuple[Binding, SealedPersonal]]:
    """``n`` sales events about ``n`` different customers, sealed by the owner."""
    events = [
        e.model_copy(update={"data": {**e.data, "customer_id": f"C-{i:08d}"}})
        for i, e in enumerate(generate_events(n, ["sales"], seed=77))
    ]
    sealed = [w.seal(e) for e in events]
    assert len({s.subject for _, s in sealed}) == n
    return sealed


def test_prefetch_loads_many_subjects_in_batches_of_a_hundred_then_opens_without_the_table(w: World) -> None:
    records = _many_subjects(w, 250)
    w.table.calls.clear()
    asked = w.reader.prefetch((b.department, s) for b, s in records)
    assert asked == 250
    # three batches of at most 100, and the wrapping key once
    assert dict(w.table.calls) == {"BatchGetItem": 3, "GetItem": 1}
    opened = [w.reader.open_cached(b, s) for b, s in records]
    assert all(p is not None and p.access is Access.OPEN for p in opened)
    assert dict(w.table.calls) == {"BatchGetItem": 3, "GetItem": 1}  # the cache answered every record


def test_prefetch_learns_forgotten_subjects_as_gone_and_asks_again_for_nothing_known(w: World) -> None:
    records = _many_subjects(w, 30)
    forgotten = records[:10]
    for binding, sealed in forgotten:
        w.table.items.pop(f"{binding.department}#{sealed.subject}")
    w.reader.prefetch((b.department, s) for b, s in records)
    w.table.calls.clear()
    assert [w.reader.open(b, s).access for b, s in forgotten] == [Access.SHREDDED] * 10
    assert [w.reader.open(b, s).access for b, s in records[10:]] == [Access.OPEN] * 20
    assert not w.table.calls  # shredded and open alike came from the cache
    assert w.reader.prefetch((b.department, s) for b, s in records) == 0


def test_keys_dynamodb_leaves_unprocessed_are_asked_again(w: World) -> None:
    records = _many_subjects(w, 40)
    w.table.unprocessed_after = 15
    w.table.calls.clear()
    w.reader.prefetch((b.department, s) for b, s in records)
    assert w.table.calls["BatchGetItem"] == 3  # 15 + 15 + 10
    assert all(w.reader.open_cached(b, s) is not None for b, s in records)


@pytest.mark.parametrize("switch", ["denied", "down"])
def test_a_failing_prefetch_leaves_each_record_to_open_which_reports_it(w: World, switch: str) -> None:
    records = _many_subjects(w, 5)
    setattr(w.table, switch, True)
    assert w.reader.prefetch((b.department, s) for b, s in records) == 5  # asked, nothing learnt
    binding, sealed = records[0]
    assert w.reader.open_cached(binding, sealed) is None
    if switch == "denied":
        assert w.reader.open(binding, sealed).access is Access.WITHHELD
    else:
        with pytest.raises(KeyServiceUnavailable):
            w.reader.open(binding, sealed)
