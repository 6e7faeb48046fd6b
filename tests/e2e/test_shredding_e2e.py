"""Crypto-shredding end to end: real Tansu, real moto with IAM on, the key table provisioned from ``iac/``.

Records are sealed as the owner seals them (personal fields under each subject's key, the rest under the
department's session key), one customer and one account are forgotten with ``keyfan forget`` (a real
subprocess, as the owner role), and the topic is replayed from the start by fresh consumer groups.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from typing import Any

from keyfan.consumer.identity import consumer_decryptors
from keyfan.crypto.subjectkeys import Access, subject_keys_from
from keyfan.envelope import RecordMetadata, open_body
from keyfan.generation import generate_events
from keyfan.models import DepartmentEvent
from keyfan.personal_data import SHREDDED, personal_fields, subject_of
from keyfan.settings import ConsumerSettings
from keyfan_tools.local.services import ServiceProcess
from tests.e2e.consumer_kit import (
    Topics,
    World,
    finished,
    fresh_topics,
    log_lines,
    produce,
    raw,
    start_consumer,
    state,
    wait_for,
)
from tests.e2e.topic_reader import read_topic
from tests.factories import ground_truth, same_money


def _secrets(events: list[DepartmentEvent]) -> set[str]:
    """Every personal value of the events, as text (nested ones too, e.g. the address's street)."""
    found: set[str] = set()
    for event in events:
        for name in personal_fields(event.department):
            value = event.data[name]
            found.update(str(v) for v in value.values()) if isinstance(value, dict) else found.add(str(value))
    return {s for s in found if len(s) >= 6}  # short ones (a country code) would match by chance


def _forget(world: World, topics: Topics, department: str, subject: str) -> dict[str, Any]:
    env = {**os.environ, **world.stack.env_for("owner"), **topics.env()}
    done = subprocess.run(
        [sys.executable, "-m", "keyfan_tools", "forget", "--department", department, "--subject", subject],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    record: dict[str, Any] = json.loads(done.stdout)
    return record


def _read_as(world: World, department: str, topic: str) -> dict[str, dict[str, Any]]:
    """Every record of ``department`` on ``topic``, opened with the library as that department's consumer
    role: event id -> payload as its handler would get it."""
    stack = world.stack
    env = stack.env()
    session = stack.session_for(department)
    settings = ConsumerSettings.model_construct(
        department=department, subject_key_table=env["KEYFAN_SUBJECT_KEY_TABLE"]
    )
    account = str(session.client("sts").get_caller_identity()["Account"])
    decryptors = {
        d.content: d for d in consumer_decryptors(settings, (account,), botocore_session=session._session)
    }
    keys = subject_keys_from(settings, botocore_session=session._session)
    seen: dict[str, dict[str, Any]] = {}
    for record in read_topic(world.bootstrap, topic):
        metadata = RecordMetadata.from_headers(record.headers)
        if metadata.department != department:
            continue
        binding = metadata.binding(topic)
        body = open_body(decryptors[metadata.content].decrypt(record.value, binding).plaintext, metadata)
        assert body.personal is not None  # every typed event has a subject: its personal part is sealed apart
        assert not personal_fields(department) & set(body.data)  # and none of its fields is in the rest
        personal = keys.open(binding, body.personal)
        assert personal.access in (Access.OPEN, Access.SHREDDED)
        seen[metadata.event_id] = personal.merged(department, body.data)
    return seen


def test_a_forgotten_subject_is_unreadable_in_every_replay_and_everyone_else_is_untouched(
    world: World, services: list[ServiceProcess]
) -> None:
    # given 60 sales and 60 finance events about a pool of customers and accounts, sealed as the owner seals
    topics = fresh_topics(world.bootstrap, "shred")
    events = generate_events(120, ["sales", "finance"], seed=1212)
    produce(world.bootstrap, topics.events, [raw(r) for r in world.records(events, topics.events)])
    subjects = Counter((e.department, subject_of(e.department, e.data)) for e in events)
    (_, customer), _n = next(((d, s), n) for (d, s), n in subjects.most_common() if d == "sales")
    (_, account), _m = next(((d, s), n) for (d, s), n in subjects.most_common() if d == "finance")
    assert customer and account
    forgotten = {("sales", customer), ("finance", account)}
    about = {str(e.event_id): (e.department, subject_of(e.department, e.data)) for e in events}
    shredded_ids = {eid for eid, who in about.items() if who in forgotten}
    assert (
        len(shredded_ids) >= 3 and len(subjects) >= 10
    )  # several subjects, a few events for each forgotten one
    keys = world.subject_keys
    assert keys is not None
    pseudonyms = {(d, keys.store.wrapping_key(d).pseudonym(s)) for d, s in forgotten}

    # when the customer and the account are forgotten with `keyfan forget`, as the owner role
    erasures = [_forget(world, topics, "sales", customer), _forget(world, topics, "finance", account)]
    assert all(e["key_deleted"] for e in erasures)
    assert {(e["department"], e["subject"]) for e in erasures} == pseudonyms
    assert customer not in json.dumps(erasures) and account not in json.dumps(erasures)
    again = _forget(world, topics, "sales", customer)  # forgetting twice is harmless, and says so
    assert again["key_deleted"] is False

    # and the topic is replayed from the start by fresh consumer groups (no key in any cache)
    sales = start_consumer(world.stack, "sales", topics, f"sales-{topics.events}", KEYFAN_LOG_LEVEL="DEBUG")
    finance = start_consumer(world.stack, "finance", topics, f"finance-{topics.events}")
    services += [sales, finance]
    wait_for(lambda: finished(sales) == 120 and finished(finance) == 120, 120, "all outcomes", sales, finance)

    # then every record was decrypted and counted: aggregates over non-personal fields go on
    s, f = state(sales), state(finance)
    assert (s["counters"]["decrypted"], s["counters"]["dead_lettered"], s["counters"]["retries"]) == (
        60,
        0,
        0,
    )
    assert (f["counters"]["decrypted"], f["counters"]["dead_lettered"], f["counters"]["retries"]) == (
        60,
        0,
        0,
    )
    # and the subject keys came in batches: a miss loads the keys of the records waiting behind it
    sales_subjects = sum(1 for d, _ in subjects if d == "sales")
    assert 1 <= s["counters"]["key_store_calls"] <= sales_subjects // 2, (s["counters"], sales_subjects)
    truth = ground_truth(events)
    assert same_money({k: s["aggregates"][k] for k in truth["sales"]}, truth["sales"])
    assert same_money({k: f["aggregates"][k] for k in truth["finance"]}, truth["finance"])

    # and the outcome of each record says whether its subject's fields were shredded: exactly the
    # forgotten subjects' records, for both departments
    audit = [json.loads(r.value) for r in read_topic(world.bootstrap, topics.audit)]
    outcomes = [a for a in audit if "outcome" in a and a["outcome"] == "decrypted"]
    shredded = {a["event_id"] for a in outcomes if a["reason"] == "subject_shredded"}
    assert shredded == shredded_ids
    assert {a["reason"] for a in outcomes if a["event_id"] not in shredded_ids} == {"ok"}
    erasure_records = [a for a in audit if a.get("kind") == "subject_forgotten"]
    assert len(erasure_records) == 3 and all(customer not in json.dumps(a) for a in erasure_records)

    # and the handler got the forgotten customer's fields as markers (its masked DEBUG hints)
    hints = {
        line["event_id"]: line["customer"]
        for line in log_lines(sales)
        if line.get("message") == "record_decrypted"
    }
    sales_ids = {eid for eid, (d, _) in about.items() if d == "sales"}
    assert set(hints) == sales_ids
    assert {hints[eid] for eid in shredded_ids & sales_ids} == {SHREDDED}
    assert SHREDDED not in {hints[eid] for eid in sales_ids - shredded_ids}

    # and, opened with the library as each consumer role: the forgotten subjects' personal fields read
    # as shredded, everyone else's are exactly what was sent
    by_id = {str(e.event_id): e for e in events}
    for department in ("sales", "finance"):
        for event_id, payload in _read_as(world, department, topics.events).items():
            original = by_id[event_id].data
            if event_id in shredded_ids:
                assert {payload[n] for n in personal_fields(department)} == {SHREDDED}
                assert {k: v for k, v in payload.items() if k not in personal_fields(department)} == {
                    k: v for k, v in original.items() if k not in personal_fields(department)
                }
            else:
                assert payload == json.loads(json.dumps(original))

    # and the key table holds no key material for them, and still one key for every other subject
    table = world.stack.env()["KEYFAN_SUBJECT_KEY_TABLE"]
    items = world.stack.admin_session().client("dynamodb").scan(TableName=table)["Items"]
    pks = {item["pk"]["S"] for item in items}
    assert not {f"{d}#{p}" for d, p in pseudonyms} & pks
    for department, subject in subjects:
        if (department, subject) not in forgotten:
            assert f"{department}#{keys.store.wrapping_key(department).pseudonym(str(subject))}" in pks

    # and no personal value is in the raw topic, the audit topic, the DLQ or the consumers' logs
    secrets = _secrets(events)
    raw_bytes = b"".join(
        r.value + b"".join(v for _, v in r.headers)
        for t in (topics.events, topics.audit, topics.dlq)
        for r in read_topic(world.bootstrap, t)
    )
    assert not [x for x in secrets if x.encode() in raw_bytes]
    logs = sales.log.read_text() + finance.log.read_text()
    assert not [x for x in secrets if x in logs]
    assert sales.stop() == 0 and finance.stop() == 0
