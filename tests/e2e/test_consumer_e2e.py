"""The consuming side end to end: real Tansu, real moto with IAM on, consumers as real subprocesses
(``python -m sales_consumer`` / ``python -m finance_consumer``) under their own roles.

Records are written exactly as the owner writes them (``tests.factories.owner_record`` with the owner's
own ``owner_encryptor``, wire v2 by default, under the owner's role) to a fresh topic per test, so these
tests do not depend on what other e2e tests leave on the shared ``keyfan.events``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter

from keyfan.envelope import RecordMetadata
from keyfan.generation import generate_events
from keyfan.models import DepartmentEvent
from keyfan_tools.local.services import ServiceProcess
from tests.e2e.consumer_kit import (
    FinanceGrant,
    Raw,
    World,
    caught_up,
    committed_offsets,
    finished,
    fresh_topics,
    log_lines,
    produce,
    raw,
    start_consumer,
    state,
    wait_committed,
    wait_for,
)
from tests.e2e.proxy import TcpProxy
from tests.e2e.topic_reader import read_topic
from tests.factories import ground_truth, same_money


def _secrets(events: list[DepartmentEvent]) -> list[str]:
    keys = ("card_number", "iban", "email", "customer_name", "phone")
    return [str(e.data[k]) for e in events for k in keys if k in e.data]


# ------------------------------------------------------------------------------------------ tests
def test_each_department_decrypts_exactly_its_own_and_audits_every_record(
    world: World, services: list[ServiceProcess]
) -> None:
    # given 40 sales and 40 finance records, one truncated inside its header, one tampered (sales key,
    # headers naming another event id)
    topics = fresh_topics(world.bootstrap, "split")
    events = generate_events(80, ["sales", "finance"], seed=101)
    good = world.records(events, topics.events)
    sales_rec = next(r for r in good if r.event.department == "sales")
    truncated: Raw = (sales_rec.partition, b"t", sales_rec.value[:40], list(sales_rec.headers))
    other = next(r for r in good if r.event.department == "sales" and r is not sales_rec)
    swapped = (
        RecordMetadata.from_headers(other.headers)
        .model_copy(update={"event_id": str(uuid.uuid4())})
        .to_headers()
    )
    tampered: Raw = (other.partition, b"x", other.value, swapped)
    produce(world.bootstrap, topics.events, [raw(r) for r in good] + [truncated, tampered])
    total = len(good) + 2
    started = time.monotonic()

    # when both department consumers read the whole topic, each under its own role and group
    sales = start_consumer(world.stack, "sales", topics, f"sales-{topics.events}")
    finance = start_consumer(world.stack, "finance", topics, f"finance-{topics.events}")
    services += [sales, finance]
    wait_for(
        lambda: finished(sales) == total and finished(finance) == total, 90, "all outcomes", sales, finance
    )
    elapsed = time.monotonic() - started

    # then sales decrypted exactly the sales records and was denied exactly the finance ones
    s, f = state(sales), state(finance)
    assert (s["counters"]["decrypted"], s["counters"]["access_denied"], s["counters"]["dead_lettered"]) == (
        40,
        40,
        2,
    )
    # the tampered record is under the sales key: finance cannot even open it, so it is a denial there
    assert (f["counters"]["decrypted"], f["counters"]["access_denied"], f["counters"]["dead_lettered"]) == (
        40,
        41,
        1,
    )
    assert s["counters"]["retries"] == 0 and f["counters"]["retries"] == 0
    truth = ground_truth(events)
    assert same_money({k: s["aggregates"][k] for k in truth["sales"]}, truth["sales"])
    assert same_money({k: f["aggregates"][k] for k in truth["finance"]}, truth["finance"])
    # data keys are cached and denials remembered: a handful of KMS calls for 82 records
    assert s["counters"]["kms_calls"] <= 4 and f["counters"]["kms_calls"] <= 4, (s["counters"], f["counters"])
    assert s["denied_keys"] == [world.stack.env()["KEYFAN_FINANCE_KEY_ARN"]]
    metrics = sales.get("/metrics")
    assert (
        'keyfan_consumer_records_total{department="sales",outcome="access_denied",reason="kms_access_denied"} 1.0'
        in metrics
    )
    assert 'keyfan_consumer_kms_calls_total{department="sales",operation="Decrypt"}' in metrics

    # and the audit topic holds one record per record per consumer, metadata only
    audit = [json.loads(r.value) for r in read_topic(world.bootstrap, topics.audit)]
    assert len(audit) == total * 2
    by_consumer = Counter((a["consumer_department"], a["outcome"]) for a in audit)
    assert by_consumer == {
        ("sales", "decrypted"): 40,
        ("sales", "access_denied"): 40,
        ("sales", "dead_letter"): 2,
        ("finance", "decrypted"): 40,
        ("finance", "access_denied"): 41,
        ("finance", "dead_letter"): 1,
    }
    denial = next(a for a in audit if a["consumer_department"] == "sales" and a["outcome"] == "access_denied")
    assert "keyfan-sales-consumer" in denial["principal"] and denial["record_department"] == "finance"
    # the DLQ holds the raw records with the reason and source coordinates in headers
    dlq = read_topic(world.bootstrap, topics.dlq)
    reasons = sorted(
        (dict(r.headers)["keyfan-dlq-consumer"], dict(r.headers)["keyfan-dlq-reason"]) for r in dlq
    )
    # (wire v2: the truncated value does not parse; the event id is bound as AAD, so the swap fails the tag)
    assert reasons == [
        (b"finance", b"bad_envelope"),
        (b"sales", b"bad_envelope"),
        (b"sales", b"bad_tag"),
    ]
    assert all(dict(r.headers)["keyfan-dlq-source-topic"] == topics.events.encode() for r in dlq)

    # logs never hold plaintext; denials are structured WARN lines
    text = sales.log.read_text() + finance.log.read_text()
    assert not [secret for secret in _secrets(events) if secret in text]
    denied_lines = [line for line in log_lines(sales) if line.get("message") == "record_access_denied"]
    assert denied_lines and denied_lines[0]["level"] == "WARNING"
    assert {"event_id", "partition", "offset", "key_arn", "principal"} <= set(denied_lines[0])
    print(
        f"\n[split] {total} records x 2 consumers in {elapsed:.1f}s incl. start; kms calls "
        f"sales={s['counters']['kms_calls']} finance={f['counters']['kms_calls']}"
    )
    assert sales.stop() == 0 and finance.stop() == 0


def test_kms_outage_is_retried_in_place_then_decrypted(world: World, services: list[ServiceProcess]) -> None:
    # given a sales consumer whose KMS endpoint is a proxy that is down from the start
    topics = fresh_topics(world.bootstrap, "outage")
    events = generate_events(40, ["sales", "finance"], seed=202)
    records = world.records(events, topics.events)
    produce(world.bootstrap, topics.events, [raw(r) for r in records])
    moto_port = int(world.stack.endpoint_url.rsplit(":", 1)[1])
    proxy = TcpProxy(moto_port)
    group = f"sales-{topics.events}"
    sales = start_consumer(
        world.stack, "sales", topics, group, AWS_ENDPOINT_URL_KMS=f"http://127.0.0.1:{proxy.port}"
    )
    services.append(sales)
    try:
        # when KMS is unreachable
        wait_for(lambda: state(sales).get("counters", {}).get("retries", 0) >= 3, 60, "retries", sales)
        during = state(sales)
        # then nothing is decrypted, denied, dead-lettered or committed, and no denial is remembered
        assert finished(sales) == 0, during["counters"]
        assert during["denied_keys"] == []
        time.sleep(3.5)  # longer than Faust's commit interval (2.8 s)
        assert set(committed_offsets(world.bootstrap, group, topics.events).values()) == {None}
        assert finished(sales) == 0
        retries = [line for line in log_lines(sales) if line.get("message") == "record_retry"]
        assert [line["attempt"] for line in retries[:3]] == [1, 2, 3]
        assert all(line["level"] == "WARNING" and line["reason"] == "kms_unavailable" for line in retries)
        # when KMS comes back
        proxy.open()
        recovered = wait_for(lambda: finished(sales) == 40, 60, "recovery", sales)
    finally:
        proxy.close()
    # then every record reaches its real outcome: nothing was skipped
    after = state(sales)
    assert (after["counters"]["decrypted"], after["counters"]["access_denied"]) == (20, 20)
    assert after["aggregates"]["orders"] == 20
    wait_committed(world.bootstrap, group, topics.events, Counter(r.partition for r in records), 15, sales)
    print(
        f"\n[outage] {during['counters']['retries']}+ retries while down; all 40 done {recovered:.1f}s after reopen"
    )
    sales.stop()


def test_iam_grant_takes_effect_without_restart(world: World, services: list[ServiceProcess]) -> None:
    # given a sales consumer (denial TTL 3 s) that has been denied the finance records
    ttl = 3.0
    topics = fresh_topics(world.bootstrap, "grant")
    events = generate_events(10, ["sales", "finance"], seed=303)
    produce(world.bootstrap, topics.events, [raw(r) for r in world.records(events, topics.events)])
    sales = start_consumer(
        world.stack, "sales", topics, f"sales-{topics.events}", KEYFAN_DENIAL_TTL_SECONDS=str(ttl)
    )
    services.append(sales)
    wait_for(lambda: finished(sales) == 10, 60, "first pass", sales)
    assert state(sales)["counters"]["access_denied"] == 5
    pid = sales.pid
    access = FinanceGrant.for_stack(world.stack)
    # when an admin grants the sales role the finance key (an IAM change, nothing else)
    access.grant()
    try:
        more = world.records(generate_events(40, ["finance"], seed=304), topics.events)
        sent = 0

        def decrypted_finance() -> bool:
            nonlocal sent
            if sent < len(more):  # a trickle of new finance records, one per poll
                produce(world.bootstrap, topics.events, [raw(more[sent])])
                sent += 1
            return int(state(sales)["aggregates"]["foreign_events"].get("finance", 0)) >= 1

        took = wait_for(decrypted_finance, ttl + 15, "finance decrypted by sales after the grant", sales)
    finally:
        access.revoke()
    # then the same process (no restart) decrypts finance records, within the denial TTL (+ polling slack)
    assert sales.pid == pid and sales.running()
    assert took < ttl + 6
    print(f"\n[grant] first finance record decrypted {took:.1f}s after the grant (TTL {ttl:.0f}s)")
    sales.stop()


def test_sigkill_mid_stream_then_restart_matches_ground_truth(
    world: World, services: list[ServiceProcess]
) -> None:
    # given 400 sales and 200 finance records
    topics = fresh_topics(world.bootstrap, "restart")
    events = generate_events(600, ["sales", "sales", "finance"], seed=404)
    records = world.records(events, topics.events)
    produce(world.bootstrap, topics.events, [raw(r) for r in records])
    ends = Counter(r.partition for r in records)
    group = f"sales-{topics.events}"
    first = start_consumer(world.stack, "sales", topics, group, name=group)
    services.append(first)
    # when the consumer is SIGKILLed mid-stream
    wait_for(lambda: state(first).get("counters", {}).get("decrypted", 0) >= 60, 90, "some progress", first)
    first.kill()
    before = committed_offsets(world.bootstrap, group, topics.events)
    # and restarted (same group, same data dir)
    time.monotonic()
    second = start_consumer(world.stack, "sales", topics, group, name=group)
    services.append(second)
    took = wait_for(lambda: caught_up(second, ends), 60, "every record", second)
    wait_committed(world.bootstrap, group, topics.events, ends, 15, second)
    # then the aggregates equal the ground truth: nothing lost, nothing counted twice
    after = state(second)
    truth = ground_truth(events)["sales"]
    assert same_money({k: after["aggregates"][k] for k in truth}, truth)
    assert after["aggregates"]["orders"] == 400
    # and every record has at least one audit record from this group (at-least-once: maybe two)
    audit = [json.loads(r.value) for r in read_topic(world.bootstrap, topics.audit)]
    covered = {(a["partition"], a["offset"]) for a in audit if a["consumer_group"] == group}
    assert covered == {(p, o) for p, n in ends.items() for o in range(n)}
    print(f"\n[restart] committed at kill {before}; after restart {after['counters']}; done in {took:.1f}s")
    second.stop()


def test_throughput_and_kms_calls_per_1000_records(world: World, services: list[ServiceProcess]) -> None:
    # given 1000 records (500 sales, 500 finance) already on the topic
    topics = fresh_topics(world.bootstrap, "bench")
    events = generate_events(1000, ["sales", "finance"], seed=505)
    produce(world.bootstrap, topics.events, [raw(r) for r in world.records(events, topics.events)])
    # when the sales consumer reads them all
    sales = start_consumer(world.stack, "sales", topics, f"sales-{topics.events}")
    services.append(sales)
    wait_for(lambda: finished(sales) > 0, 60, "first outcome", sales)
    first, at_first = time.monotonic(), finished(sales)
    wait_for(lambda: finished(sales) == 1000, 120, "1000 outcomes", sales)
    rate = (1000 - at_first) / max(time.monotonic() - first, 1e-6)
    counters = state(sales)["counters"]
    # then a steady stream costs a handful of KMS calls, not one per record
    assert counters["decrypted"] == 500 and counters["access_denied"] == 500
    assert counters["kms_calls"] <= 4, counters
    print(
        f"\n[bench] 1000 records: {rate:.0f} records/s (500 decrypted, 500 denied); kms calls {counters['kms_calls']}"
    )
    sales.stop()
