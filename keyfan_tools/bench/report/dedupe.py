"""The deduplication window's cost (``keyfan_tools.bench.dedupe``), with its share of the consumer's time. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from keyfan_tools.bench.report.cells import num, percent, percent_number, size_label, table
from keyfan_tools.bench.results import DedupeShare, DedupeSummary


def _share_text(shares: Sequence[DedupeShare]) -> str | None:
    """The window's share of the consumer's per-record time, across the suites and sizes measured."""
    encrypted = [s.encrypted_share for s in shares if s.encrypted_share is not None]
    plaintext = [s.plaintext_share for s in shares if s.plaintext_share is not None]
    if not encrypted and not plaintext:
        return None
    parts = []
    if encrypted:
        low, high = min(encrypted), max(encrypted)
        span = percent(high) if low == high else f"{percent_number(low)}-{percent(high)}"
        parts.append(f"{span} of the encrypted consumer")
    if plaintext:
        parts.append(f"at most {percent(max(plaintext))} of its plaintext twin")
    return ", ".join(parts)


def dedupe_table(dedupe: DedupeSummary) -> list[str]:
    """The window's figures, with its share of the consumer's time."""
    cost = dedupe.cost
    rows = [
        [
            "Window",
            f"{cost.window_events:,} event ids per department ({cost.partitions} partitions x "
            f"{cost.capacity_per_partition:,})",
        ],
        [
            "`first_seen` + `remember`, evicting the oldest id",
            f"{cost.record_us:.2f} µs per record (median of {cost.runs} runs x {cost.steady_records:,} records)",
        ],
    ]
    share = _share_text(dedupe.consumer)
    if share is not None:
        rows.append(["Share of the consumer's time per record (same run)", share])
    rows += [
        [
            "Memory a full window holds (dict store, tracemalloc)",
            f"{cost.memory_mb:.1f} MB for {cost.window_ids:,} ids ({cost.memory_bytes_per_id:.0f} B per id)",
        ],
        [
            "Changelog bytes per applied record (JSON key + value)",
            f"{cost.changelog_bytes_per_record:.0f} B: entry {cost.changelog_entry_bytes:.0f} B "
            f"+ tombstone of the evicted id {cost.changelog_tombstone_bytes:.0f} B",
        ],
        [
            "Eviction order rebuilt after a rebalance",
            f"{cost.rebuild_ms:.0f} ms for a full window (median of {cost.runs} runs)",
        ],
    ]
    return table(["Deduplication window", "Cost"], rows)


def dedupe_lines(dedupe: DedupeSummary) -> list[str]:
    cost = dedupe.cost
    return [
        f"The window bounds deduplication: an event published again more than {cost.window_events:,} events "
        "later in its department is not recognised as a duplicate (the window is split evenly over the "
        f"department's {cost.partitions} partitions, so under skewed traffic the bound is "
        f"{cost.capacity_per_partition:,} events in the event's partition).",
        "",
        "Measured on `keyfan.consumer.dedupe.EventWindow` in a plain dict store; a Faust Table also produces "
        "the changelog records (sized above, their produce time not included), and after a rebalance reads "
        "the table back to rebuild the order.",
    ]


def dedupe_shares_table(dedupe: DedupeSummary) -> list[str]:
    rows = [
        [
            s.suite,
            size_label(s.size),
            num(s.encrypted_record_us, 0),
            percent(s.encrypted_share),
            num(s.plaintext_record_us, 0),
            percent(s.plaintext_share),
        ]
        for s in dedupe.consumer
    ]
    return table(
        [
            "Suite",
            "Payload",
            "Encrypted consumer µs/rec",
            "Window share",
            "Plaintext consumer µs/rec",
            "Window share",
        ],
        rows,
    )
