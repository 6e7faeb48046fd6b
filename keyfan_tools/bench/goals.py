"""Pure: the goals a run is judged against, and for a missed one where the difference goes. No I/O.

The goals are wire v2's (the default), at 1 KB and up; wire v1's suites are measured beside it for
comparison, without goals.
"""

from __future__ import annotations

from collections.abc import Sequence

from keyfan_tools.bench.results import Goal, KmsRow, LatencyRow, ThroughputRow, WorkerRow
from keyfan_tools.bench.samples import CONSUMER_WORKER, OWNER_PIPELINE, PATH_TITLES

GOAL_SUITE = "v2"
GOAL_MIN_SIZE = 1024
THROUGHPUT_GOAL = 0.95  # v2 >= 0.95 x the plaintext twin, owner pipeline and consumer worker
BARE_GOAL = 1.0  # consumer worker, v2, 1 KB >= 1.0 x a bare Faust agent draining the same topic
KMS_GOAL_PER_1000 = 0.1  # <= 1 KMS call per 10,000 records at steady state
LATENCY_GOAL_MS = 2.0  # p99 publish -> handler, v2 <= plaintext + 2 ms at a paced rate
GOAL_PATHS = (OWNER_PIPELINE, CONSUMER_WORKER)


def goal_applies(path: str, suite: str, size: int) -> bool:
    return path in GOAL_PATHS and suite == GOAL_SUITE and size >= GOAL_MIN_SIZE


def goals(
    throughput: Sequence[ThroughputRow],
    kms: Sequence[KmsRow],
    latency: Sequence[LatencyRow],
    workers: Sequence[WorkerRow] = (),
) -> list[Goal]:
    """One line per goal: the worst case across the sizes it covers."""
    found = []
    for path in GOAL_PATHS:
        rows = [r for r in throughput if r.path == path and r.goal is not None and r.ratio is not None]
        if rows:
            worst = min(rows, key=lambda r: r.ratio or 0.0)
            found.append(
                Goal(
                    goal=f"{PATH_TITLES[path]}: wire v2 >= {THROUGHPUT_GOAL} x plaintext (1 KB and up)",
                    worst=worst.ratio or 0.0,
                    met=(worst.ratio or 0.0) >= THROUGHPUT_GOAL,
                    why=_throughput_why(worst),
                )
            )
    for w in workers:
        if (w.suite, w.size) == (GOAL_SUITE, GOAL_MIN_SIZE) and w.encrypted_to_bare is not None:
            found.append(
                Goal(
                    goal=f"consumer Faust worker, wire v2, 1 KB: >= {BARE_GOAL:g} x a bare Faust agent",
                    worst=w.encrypted_to_bare,
                    unit="x the bare agent",
                    met=w.encrypted_to_bare >= BARE_GOAL,
                    why=_bare_why(w),
                )
            )
    found += [
        Goal(
            goal=f"{row.side}: <= 1 KMS call per 10,000 records at steady state",
            worst=row.per_1000 * 10,
            unit="calls per 10,000",
            met=bool(row.meets_goal),
        )
        for row in kms
        if row.goal_per_1000 is not None
    ]
    judged = [r for r in latency if r.meets_goal is not None]
    deltas = [handler_delta(r) for r in judged]
    if deltas:
        late = max(judged, key=handler_delta)
        found.append(
            Goal(
                goal=f"p99 publish -> handler latency, wire v2 <= plaintext + {LATENCY_GOAL_MS:g} ms",
                why=(
                    f"p99 publish -> handler {num_ms(late.encrypted_publish_to_handler_p99_ms)} encrypted vs "
                    f"{num_ms(late.plaintext_publish_to_handler_p99_ms)} plaintext at {late.rate_per_second or 0:.0f} "
                    f"records/s; p50 {num_ms(late.encrypted_publish_to_handler_p50_ms)} vs "
                    f"{num_ms(late.plaintext_publish_to_handler_p50_ms)}: a p99 of {late.samples_per_run or 0:.0f} "
                    "samples per run is set by its slowest two or three"
                ),
                worst=max(deltas),
                unit="ms over plaintext",
                met=max(deltas) <= LATENCY_GOAL_MS,
            )
        )
    return found


def num_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def _us_per_record(rps: float | None) -> float:
    return 1e6 / rps if rps else 0.0


def _throughput_why(row: ThroughputRow) -> str:
    """Where the encrypted path's extra time per record goes, in the worst row's own figures; and whether the
    gap is larger than the spread between runs (a run that met the goal says it is not)."""
    extra = _us_per_record(row.encrypted_rps) - _us_per_record(row.plaintext_rps)
    ratios = [r for r in row.ratio_runs if r is not None]
    crypto = (
        f"; the crypto calls take {row.crypto_ms_mean * 1000:.0f} µs per record"
        if row.crypto_ms_mean is not None
        else ""
    )
    text = (
        f"worst at {row.suite} {row.size:,} B: {row.encrypted_rps or 0:,.0f} vs {row.plaintext_rps or 0:,.0f} "
        f"records/s (medians), {extra:+.0f} µs per record{crypto}; ratio by run "
        + ", ".join(f"{r:.2f}" for r in ratios)
    )
    if ratios and max(ratios) >= THROUGHPUT_GOAL:
        text += (
            f": one run met the goal, so the spread between runs of {row.records_per_run or 0:,.0f} records "
            "is as large as the gap"
        )
    return text


def _bare_why(row: WorkerRow) -> str:
    """How far the worker is from the bare agent, and how much of that the plaintext twin shares."""
    service = _us_per_record(row.encrypted_rps) - _us_per_record(row.bare_rps)
    twin = _us_per_record(row.plaintext_rps) - _us_per_record(row.bare_rps)
    return (
        f"the service spends {service:.0f} µs more per record than the bare agent "
        f"({row.encrypted_rps or 0:,.0f} vs {row.bare_rps or 0:,.0f} records/s), and its plaintext twin "
        f"{twin:.0f} µs of those: the consumer's own work per record (headers, routing and dedupe checks, the "
        "handler, the audit record, the table slot), not encryption"
    )


def handler_delta(row: LatencyRow) -> float:
    """The latency goal's measure: p99 publish -> handler, encrypted minus plaintext (medians over runs)."""
    return (row.encrypted_publish_to_handler_p99_ms or 0.0) - (row.plaintext_publish_to_handler_p99_ms or 0.0)
