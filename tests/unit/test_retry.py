"""One retry policy for both sides: the consumer's backoff is exact, the owner's is jittered."""

from __future__ import annotations

from keyfan.consumer.pipeline import DEFAULT_RETRY as CONSUMER_RETRY
from keyfan.owner.pipeline import DEFAULT_RETRY as OWNER_RETRY
from keyfan.retry import RetryPolicy
from keyfan.settings import ConsumerSettings, OwnerSettings


def test_without_jitter_each_delay_is_its_ceiling() -> None:
    policy = RetryPolicy(initial_seconds=0.5, max_seconds=3.0)
    assert [policy.delay(n) for n in (0, 1, 2, 3, 4, 5)] == [0.5, 0.5, 1.0, 2.0, 3.0, 3.0]


def test_with_jitter_each_delay_lies_between_half_and_all_of_its_ceiling() -> None:
    policy = RetryPolicy(initial_seconds=0.5, max_seconds=3.0, jitter=True)
    for attempt, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (9, 3.0)):
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


def test_each_side_defaults_to_its_settings_and_only_the_owner_jitters() -> None:
    owner = OwnerSettings(queue_url="q", dlq_url="d")
    consumer = ConsumerSettings(department="sales")
    assert (OWNER_RETRY.initial_seconds, OWNER_RETRY.max_seconds) == (
        owner.retry_initial_seconds,
        owner.retry_max_seconds,
    )
    assert (CONSUMER_RETRY.initial_seconds, CONSUMER_RETRY.max_seconds) == (
        consumer.retry_initial_seconds,
        consumer.retry_max_seconds,
    )
    assert OWNER_RETRY.jitter and not CONSUMER_RETRY.jitter
    assert OWNER_RETRY.max_attempts is None and CONSUMER_RETRY.max_attempts is None
