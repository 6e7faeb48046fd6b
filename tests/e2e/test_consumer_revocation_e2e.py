"""The revocation bound, end to end: an IAM grant and then a revoke reach a running consumer (no restart)
within their bounds.

A grant takes effect within ``KEYFAN_DENIAL_TTL_SECONDS`` (the remembered denial expires, KMS is asked
again); a revoke within ``KEYFAN_DECRYPT_CACHE_MAX_AGE_SECONDS`` (the cached data key expires, KMS is asked
again and refuses). Real Tansu, real moto with IAM on, the sales consumer as a real subprocess. Delays are
taken from the consumer's own audit records (its wall clock, same machine), not from our polling.
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from keyfan.generation import generate_events
from keyfan_tools.local.services import ServiceProcess
from tests.e2e.consumer_kit import (
    FinanceGrant,
    World,
    finished,
    fresh_topics,
    produce,
    raw,
    start_consumer,
    state,
    wait_for,
)
from tests.e2e.topic_reader import read_topic

BOUND = 3.0  # both the denial TTL and the decrypt-side data-key cache age, seconds
# One record trickled per 0.25 s poll, the consumer's fetch and processing on a busy 2-core machine.
SLACK = 4.0
POLICY = "test-revoke-finance"


def _counter(service: ServiceProcess, name: str) -> int:
    return int(state(service).get("counters", {}).get(name, 0))


def _finance_decrypted(service: ServiceProcess) -> int:
    return int(state(service).get("aggregates", {}).get("foreign_events", {}).get("finance", 0))


def test_grant_within_denial_ttl_and_revoke_within_decrypt_cache_age_without_restart(
    world: World, services: list[ServiceProcess]
) -> None:
    # given a sales consumer with small bounds that has been denied the finance records
    topics = fresh_topics(world.bootstrap, "revoke")
    events = generate_events(10, ["sales", "finance"], seed=606)
    produce(world.bootstrap, topics.events, [raw(r) for r in world.records(events, topics.events)])
    sales = start_consumer(
        world.stack,
        "sales",
        topics,
        f"sales-{topics.events}",
        KEYFAN_DENIAL_TTL_SECONDS=str(BOUND),
        KEYFAN_DECRYPT_CACHE_MAX_AGE_SECONDS=str(BOUND),
    )
    services.append(sales)
    wait_for(lambda: finished(sales) == 10, 60, "first pass", sales)
    assert _counter(sales, "access_denied") == 5
    pid = sales.pid
    access = FinanceGrant.for_stack(world.stack, POLICY)
    finance = world.records(generate_events(200, ["finance"], seed=607), topics.events)
    sent: list[str] = []  # event ids of the trickled finance records, in order

    def trickle() -> None:
        assert len(sent) < len(finance), "ran out of finance records to trickle"
        record = finance[len(sent)]
        produce(world.bootstrap, topics.events, [raw(record)])
        sent.append(str(record.event.event_id))

    revoked_at: float | None = None
    try:
        # when an admin grants the sales role the finance key, while finance records trickle in
        access.grant()
        granted_at = time.time()

        def granted() -> bool:
            trickle()
            return _finance_decrypted(sales) >= 1

        wait_for(granted, BOUND + 20, "finance decrypted by sales after the grant", sales)

        # and then revokes it, the trickle going on
        denied_before = _counter(sales, "access_denied")
        access.revoke()
        revoked_at = time.time()

        def denied_again() -> bool:
            trickle()
            return _counter(sales, "access_denied") > denied_before

        wait_for(denied_again, BOUND + 20, "finance denied to sales after the revoke", sales)
        # keep trickling past both bounds: the consumer asks KMS again (cache and denial expired), still denied
        stay_until = time.monotonic() + 2 * BOUND + 1
        while time.monotonic() < stay_until:
            trickle()
            time.sleep(0.25)
    finally:
        if revoked_at is None:
            with contextlib.suppress(ClientError):
                access.revoke()
    total = 10 + len(sent)
    wait_for(lambda: finished(sales) == total, 60, "all outcomes", sales)

    # then the consumer's own audit trail of the trickled finance records shows both bounds held
    outcomes = _finance_outcomes(world.bootstrap, topics.audit, set(sent))
    assert len(outcomes) == len(sent)
    decrypted = [at for at, outcome in outcomes if outcome == "decrypted"]
    assert decrypted, "no finance record was decrypted after the grant"
    grant_delay = decrypted[0] - granted_at
    last_decrypted_after_revoke = max(decrypted) - revoked_at
    # denied again for good: the first denial after which no finance record was decrypted
    after_last = [at for at, outcome in outcomes if outcome == "access_denied" and at > max(decrypted)]
    revoke_delay = after_last[0] - revoked_at
    assert len(after_last) >= 5, outcomes[-10:]
    assert {outcome for at, outcome in outcomes if at > after_last[0]} == {"access_denied"}
    assert grant_delay < BOUND + SLACK, (grant_delay, outcomes[:10])
    assert last_decrypted_after_revoke < BOUND + SLACK
    assert revoke_delay < BOUND + SLACK, (revoke_delay, outcomes)
    # the same process all along: no restart, no redeploy
    assert sales.pid == pid and sales.running()
    counters = state(sales)["counters"]
    print(
        f"\n[revocation] grant took effect {grant_delay:.1f}s after the grant (denial TTL {BOUND:.0f}s); "
        f"revoke took effect {revoke_delay:.1f}s after the revoke (decrypt cache age {BOUND:.0f}s), last "
        f"finance record decrypted {last_decrypted_after_revoke:.1f}s after it; {len(sent)} finance records "
        f"trickled, kms calls {counters['kms_calls']}"
    )
    assert sales.stop() == 0


def _finance_outcomes(bootstrap: str, audit_topic: str, event_ids: set[str]) -> list[tuple[float, str]]:
    """(consumer wall-clock time, outcome) of each trickled finance record, in time order."""
    audits: list[dict[str, Any]] = [json.loads(r.value) for r in read_topic(bootstrap, audit_topic)]
    return sorted(
        (datetime.fromisoformat(a["time"]).timestamp(), str(a["outcome"]))
        for a in audits
        if a["event_id"] in event_ids and a["record_department"] == "finance"
    )
