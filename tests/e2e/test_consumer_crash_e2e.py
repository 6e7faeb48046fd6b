"""Crash recovery, proven by counting: both department consumers are SIGKILLed at random points, after
their groups have committed offsets, several times in one run, while records keep arriving.

Ground truth is what was sent. At the end, for each consumer, every record on the topic has exactly one
counted outcome in the consumer's persisted state (``/state`` ``outcomes``, kept in the same changelog
record as the position and the aggregates), its position is the end of every partition, and its
aggregates equal the ground truth of the unique events: replays the owner may publish (the same event at
a new offset) are counted once, and a record outside its department's partitions is dead-lettered.

The seed is printed; ``KEYFAN_CRASH_SEED=<n>`` replays a run.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter

from keyfan.generation import generate_events
from keyfan_tools.local.services import ServiceProcess
from tests.e2e.consumer_kit import (
    Raw,
    World,
    caught_up,
    committed_offsets,
    fresh_topics,
    produce,
    raw,
    start_consumer,
    state,
    wait_for,
)
from tests.e2e.topic_reader import read_topic
from tests.factories import ground_truth, same_money

KILL_CYCLES = 4


def persisted_total(service: ServiceProcess) -> int:
    return sum(int(n) for n in state(service).get("outcomes", {}).values())


def test_random_sigkills_lose_nothing_and_count_nothing_twice(
    world: World, services: list[ServiceProcess]
) -> None:
    seed = int(os.environ.get("KEYFAN_CRASH_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    # given 600 events (400 sales, 200 finance), 30 of them published twice (the owner is at-least-once
    # from SQS), and one sales record copied into a finance partition
    topics = fresh_topics(world.bootstrap, "crash")
    events = generate_events(600, ["sales", "sales", "finance"], seed=909)
    records = world.records(events, topics.events)
    replays = rng.sample(records, 30)
    stray = next(r for r in records if r.event.department == "sales")
    misrouted: Raw = (
        world.registry.get("finance").partitions[0],
        stray.key,
        stray.value,
        list(stray.headers),
    )
    stream: list[Raw] = [raw(r) for r in records] + [raw(r) for r in replays] + [misrouted]
    rng.shuffle(stream)
    ends = Counter(partition for partition, *_ in stream)
    replayed = Counter(r.event.department for r in replays)

    # the records arrive in small batches over about the time the kill cycles take, so that kills land
    # mid-stream
    def trickle() -> None:
        for start in range(0, len(stream), 20):
            produce(world.bootstrap, topics.events, stream[start : start + 20])
            time.sleep(1.2)

    producer = threading.Thread(target=trickle, daemon=True)
    producer.start()
    groups = {dept: f"{dept}-{topics.events}" for dept in ("sales", "finance")}
    running = {dept: start_consumer(world.stack, dept, topics, group) for dept, group in groups.items()}
    services += running.values()

    # when each consumer is SIGKILLed at a random point after its group has committed, then restarted
    kills: list[str] = []
    for cycle in range(KILL_CYCLES):
        for dept, group in groups.items():
            service = running[dept]
            floor = persisted_total(service)
            wait_for(
                lambda s=service, f=floor, g=group: (
                    persisted_total(s) > f
                    and any(v for v in committed_offsets(world.bootstrap, g, topics.events).values())
                ),
                90,
                f"{dept} progress and a commit (cycle {cycle})",
                service,
            )
            time.sleep(rng.uniform(0.0, 1.5))
            at = persisted_total(service)
            service.kill()
            kills.append(f"{dept}@{at}")
            running[dept] = start_consumer(world.stack, dept, topics, group)
            services.append(running[dept])
    producer.join()
    took = wait_for(
        lambda: all(caught_up(s, ends) for s in running.values()), 120, "every record", *running.values()
    )

    # then every record on the topic has exactly one counted outcome per consumer
    total = len(stream)
    truth = ground_truth(events)
    sales, finance = state(running["sales"]), state(running["finance"])
    assert sales["outcomes"] == {
        "decrypted": 400,
        "duplicate": replayed["sales"],
        "access_denied": 200 + replayed["finance"],
        "dead_letter": 1,
    }, (seed, kills, sales["outcomes"])
    assert finance["outcomes"] == {
        "decrypted": 200,
        "duplicate": replayed["finance"],
        "access_denied": 400 + replayed["sales"],
        "dead_letter": 1,
    }, (seed, kills, finance["outcomes"])
    assert sum(sales["outcomes"].values()) == sum(finance["outcomes"].values()) == total
    # and the aggregates equal the ground truth: nothing lost, nothing counted twice
    assert same_money({k: sales["aggregates"][k] for k in truth["sales"]}, truth["sales"]), seed
    assert same_money({k: finance["aggregates"][k] for k in truth["finance"]}, truth["finance"]), seed
    # and every record has at least one audit record from each group (at-least-once across crashes)
    audit = [json.loads(r.value) for r in read_topic(world.bootstrap, topics.audit)]
    every = {(p, o) for p, n in ends.items() for o in range(n)}
    for group in groups.values():
        assert {(a["partition"], a["offset"]) for a in audit if a["consumer_group"] == group} == every
    # and the misrouted copy was dead-lettered by both, with its reason
    dlq = read_topic(world.bootstrap, topics.dlq)
    assert {(dict(r.headers)["keyfan-dlq-consumer"], dict(r.headers)["keyfan-dlq-reason"]) for r in dlq} == {
        (b"sales", b"misrouted"),
        (b"finance", b"misrouted"),
    }
    print(
        f"\n[crash] seed={seed}: {len(kills)} SIGKILLs ({', '.join(kills)}), {total} records, 0 lost, "
        f"0 counted twice; caught up {took:.1f}s after the last restart"
    )
    for service in running.values():
        assert service.stop() == 0
