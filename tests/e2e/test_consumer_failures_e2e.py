"""Inputs that used to stall a consumer forever, and a shutdown during an outage, against the real
consumers (real Tansu, real moto with IAM on, records encrypted as the owner encrypts them).

Every input ends in exactly one final outcome per consumer, counted in its persisted state; nothing after
a bad record waits on it; SIGTERM ends a worker within its documented bound even while it retries.
"""

from __future__ import annotations

import io
import os
import signal
import time
from collections import Counter

from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header

from keyfan.generation import generate_events
from keyfan_tools.local.services import ServiceProcess
from tests.e2e.consumer_kit import (
    Raw,
    World,
    caught_up,
    fresh_topics,
    produce,
    raw,
    start_consumer,
    state,
    wait_for,
)
from tests.e2e.proxy import TcpProxy
from tests.e2e.topic_reader import read_topic

SHUTDOWN_BOUND_SECONDS = 10.0


def _flip(value: bytes, index: int, bit: int = 0) -> bytes:
    flipped = bytearray(value)
    flipped[index] ^= 1 << bit
    return bytes(flipped)


def _body_start(message: bytes) -> int:
    """First byte of the (single, final) frame's ciphertext of a signed v2 Encryption SDK message."""
    stream = io.BytesIO(message)
    deserialize_header(stream, 4)
    return stream.tell() + 16 + 24  # header auth tag; end marker, sequence number, IV, content length


def test_records_that_used_to_stall_each_end_in_one_outcome(
    world_v1: World, services: list[ServiceProcess]
) -> None:
    world = world_v1  # wire v1: the Encryption SDK's own failure modes (v2's are in test_consumer_v2_tamper)
    # given, in one sales partition: a good record, then the same record with one bit flipped in the body
    # ciphertext, one in the signature, the high bit of the key ARN in the header, and a 1 MiB random
    # value under valid headers, then another good record
    topics = fresh_topics(world.bootstrap, "poison")
    events = generate_events(60, ["sales"], seed=606)
    records = world.records(events, topics.events)
    partition = records[0].partition
    same = [r for r in records if r.partition == partition][:6]
    key_arn = world.stack.env()["KEYFAN_SALES_KEY_ARN"].encode()
    first, body, signature, arn, huge, last = same
    poisoned: list[tuple[str, Raw]] = [
        ("good", raw(first)),
        ("bad_tag", (partition, body.key, _flip(body.value, _body_start(body.value) + 10), body.headers)),
        (
            "bad_signature",
            (partition, signature.key, _flip(signature.value, len(signature.value) - 1), signature.headers),
        ),
        (
            "bad_ciphertext",
            (partition, arn.key, _flip(arn.value, arn.value.index(key_arn) + 5, 7), arn.headers),
        ),
        ("too_large", (partition, huge.key, os.urandom(1024 * 1024), huge.headers)),
        ("good", raw(last)),
    ]
    # and a finance record, so the finance consumer has something of its own
    [payment] = world.records(generate_events(1, ["finance"], seed=607), topics.events)
    stream = [r for _, r in poisoned] + [raw(payment)]
    produce(world.bootstrap, topics.events, stream, max_request_size=4 * 1024 * 1024)
    ends = {partition: len(poisoned), payment.partition: 1}

    # when both consumers read the topic
    sales = start_consumer(world.stack, "sales", topics, f"sales-{topics.events}")
    finance = start_consumer(world.stack, "finance", topics, f"finance-{topics.events}")
    services += [sales, finance]
    wait_for(
        lambda: caught_up(sales, Counter(ends)) and caught_up(finance, Counter(ends)),
        90,
        "every record",
        sales,
        finance,
    )

    # then every record has exactly one outcome for each consumer, and no retry loop ever started
    s, f = state(sales), state(finance)
    assert s["outcomes"] == {"decrypted": 2, "dead_letter": 4, "access_denied": 1}, s["outcomes"]
    assert s["counters"]["reasons"] == {
        "access_denied:kms_access_denied": 1,
        "dead_letter:bad_ciphertext": 2,
        "dead_letter:bad_signature": 1,
        "dead_letter:bad_tag": 1,
        "decrypted:ok": 2,
    }
    # finance cannot open sales records at all: the bit flips it cannot see are denials for it, and only
    # the unparseable ones are corrupt
    assert f["outcomes"] == {"decrypted": 1, "access_denied": 4, "dead_letter": 2}, f["outcomes"]
    assert s["counters"]["retries"] == 0 and f["counters"]["retries"] == 0
    assert s["aggregates"]["orders"] == 2
    # and the DLQ took every dead letter, the 1 MiB one too (as its coordinates if the copy is too large)
    dlq = read_topic(world.bootstrap, topics.dlq)
    by = Counter((dict(r.headers)["keyfan-dlq-consumer"], dict(r.headers)["keyfan-dlq-reason"]) for r in dlq)
    assert by == {
        (b"sales", b"bad_tag"): 1,
        (b"sales", b"bad_signature"): 1,
        (b"sales", b"bad_ciphertext"): 2,
        (b"finance", b"bad_ciphertext"): 2,
    }
    big = [r for r in dlq if dict(r.headers)["keyfan-dlq-source-offset"] == b"4"]
    assert len(big) == 2
    for record in big:
        headers = dict(record.headers)
        if headers.get("keyfan-dlq-value") == b"omitted_too_large":
            assert headers["keyfan-dlq-value-bytes"] == str(1024 * 1024).encode() and record.value in (
                b"",
                None,
            )
        else:
            assert len(record.value) == 1024 * 1024
    print(f"\n[poison] sales {s['outcomes']}, finance {f['outcomes']}; DLQ {dict(by)}")
    assert sales.stop() == 0 and finance.stop() == 0


def test_sigterm_during_a_kms_outage_exits_within_the_bound_and_loses_nothing(
    world: World, services: list[ServiceProcess]
) -> None:
    # given a sales consumer retrying in place because KMS is unreachable
    topics = fresh_topics(world.bootstrap, "sigterm")
    records = world.records(generate_events(20, ["sales"], seed=707), topics.events)
    produce(world.bootstrap, topics.events, [raw(r) for r in records])
    ends = Counter(r.partition for r in records)
    proxy = TcpProxy(int(world.stack.endpoint_url.rsplit(":", 1)[1]))
    group = f"sales-{topics.events}"
    kms_down = {"AWS_ENDPOINT_URL_KMS": f"http://127.0.0.1:{proxy.port}"}
    sales = start_consumer(world.stack, "sales", topics, group, name=group, **kms_down)
    services.append(sales)
    wait_for(lambda: state(sales).get("counters", {}).get("retries", 0) >= 3, 60, "retries", sales)

    # when it is asked to stop
    started = time.monotonic()
    sales.popen.send_signal(signal.SIGTERM)
    code = sales.popen.wait(30)
    took = time.monotonic() - started

    # then it exits cleanly within the bound, without an outcome for the record it was retrying
    assert code == 0 and took < SHUTDOWN_BOUND_SECONDS, (code, took, sales.log_tail(30))
    # and a new worker, with KMS back, processes every record exactly once
    proxy.open()
    try:
        again = start_consumer(world.stack, "sales", topics, group, name=group, **kms_down)
        services.append(again)
        wait_for(lambda: caught_up(again, ends), 60, "every record", again)
    finally:
        proxy.close()
    assert state(again)["outcomes"] == {"decrypted": 20}
    print(f"\n[sigterm] exited {took:.1f}s after SIGTERM while retrying an outage")
    assert again.stop() == 0
