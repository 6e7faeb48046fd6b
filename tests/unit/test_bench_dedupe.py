"""The dedupe window's cost in the benchmark: measured on the real EventWindow (a tiny window here), summarised
against the consumer's per-record time, and rendered. Shape and sane values only, no timing thresholds."""

from __future__ import annotations

import json
import uuid

import pytest

from keyfan_tools.bench.dedupe import capacity_per_partition, measure_dedupe, serialized_bytes
from keyfan_tools.bench.report.markdown import render_markdown
from keyfan_tools.bench.report.readme_section import render_readme_section
from keyfan_tools.bench.samples import DedupeCost
from keyfan_tools.bench.summary import summarize
from tests.unit.test_bench_summary import three_runs

TOMBSTONE = len(json.dumps("event:" + str(uuid.uuid4())))  # '"event:<uuid>"': 44 bytes


def cost(**changes) -> DedupeCost:
    fields = {
        "window_events": 100_000,
        "partitions": 3,
        "capacity_per_partition": 33_334,
        "window_ids": 100_002,
        "steady_records": 20_000,
        "runs": 3,
        "evicted": 60_003,
        "record_us": 2.0,
        "record_us_runs": [2.0, 1.9, 2.1],
        "memory_bytes": 38_000_000,
        "memory_mb": 38_000_000 / 1024 / 1024,
        "memory_bytes_per_id": 380.0,
        "changelog_entry_bytes": 53.0,
        "changelog_tombstone_bytes": 44.0,
        "changelog_bytes_per_record": 97.0,
        "rebuild_ms": 150.0,
        "rebuild_ms_runs": [150.0, 140.0, 160.0],
    }
    return DedupeCost(**{**fields, **changes})


def test_the_window_is_split_over_the_partitions_rounding_up():
    assert capacity_per_partition(100_000, 3) == 33_334
    assert capacity_per_partition(100_000, 1) == 100_000
    assert capacity_per_partition(2, 3) == 1


def test_serialized_bytes_are_faust_json_as_the_state_table_writes_them():
    assert serialized_bytes("event:abc") == len(b'"event:abc"')
    assert serialized_bytes([2, 12345]) == len(b"[2,12345]")


def test_a_tiny_full_window_measured_at_steady_state():
    # Given a department of three partitions and a 30-id window, when measured with 2 runs of 10 records
    found = measure_dedupe((0, 1, 2), window_events=30, steady_records=10, runs=2)

    # then the window was full and every timed record (and each rebuild's record) evicted one id
    assert (found.partitions, found.capacity_per_partition, found.window_ids) == (3, 10, 30)
    assert found.evicted == 2 * 10 + 2
    assert (found.runs, found.steady_records, found.window_events) == (2, 10, 30)

    # and the figures are present and sane
    assert len(found.record_us_runs) == 2 and all(us > 0 for us in found.record_us_runs)
    assert min(found.record_us_runs) <= found.record_us <= max(found.record_us_runs)
    assert len(found.rebuild_ms_runs) == 2 and found.rebuild_ms > 0
    # each id holds at least its key text and its id text (about 90 bytes of characters)
    assert found.memory_bytes_per_id > 80
    assert found.memory_mb == pytest.approx(found.memory_bytes / 1024 / 1024)

    # and the changelog: the entry is the key plus a short [partition, offset]; the tombstone is the key
    assert found.changelog_tombstone_bytes == TOMBSTONE
    assert len("[0,0]") <= found.changelog_entry_bytes - TOMBSTONE <= len("[2,99]")
    assert found.changelog_bytes_per_record == found.changelog_entry_bytes + found.changelog_tombstone_bytes


def test_an_uneven_split_holds_the_rounded_up_capacity_in_every_partition():
    found = measure_dedupe((4, 5, 6), window_events=10, steady_records=3, runs=1)
    assert (found.capacity_per_partition, found.window_ids, found.evicted) == (4, 12, 4)


def test_measuring_needs_a_partition_a_run_and_a_record():
    with pytest.raises(ValueError):
        measure_dedupe((), window_events=10)
    with pytest.raises(ValueError):
        measure_dedupe((0,), window_events=10, runs=0)


def test_summary_gives_the_cost_and_its_share_of_each_consumer_rows_time():
    # Given the consumer at 500 rec/s encrypted and 2,000 rec/s plaintext, and a window at 2 us per record
    results = summarize(three_runs(), dedupe=cost(record_us=2.0))

    # then the cost is carried as measured and set against 2,000 us and 500 us per record
    dedupe = json.loads(json.dumps(results.as_document()["dedupe"]))
    assert dedupe["cost"]["record_us"] == 2.0 and dedupe["cost"]["window_ids"] == 100_002
    (share,) = dedupe["consumer"]
    assert (share["suite"], share["size"]) == ("signed", 1024)
    assert share["encrypted_record_us"] == pytest.approx(2000.0)
    assert share["encrypted_share"] == pytest.approx(0.001)
    assert share["plaintext_record_us"] == pytest.approx(500.0)
    assert share["plaintext_share"] == pytest.approx(0.004)


def test_without_a_consumer_figure_the_cost_stands_alone_and_without_a_cost_there_is_none():
    assert summarize([], dedupe=cost()).as_document()["dedupe"]["consumer"] == []
    assert summarize(three_runs()).as_document()["dedupe"] is None


def test_markdown_and_readme_have_a_deduplication_window_section_with_the_bound():
    results = summarize(three_runs(), dedupe=cost(record_us=2.0))
    for text, heading in (
        (render_markdown(results), "## Deduplication window"),
        (render_readme_section(results), "### Deduplication window"),
    ):
        assert heading in text
        assert "2.00 µs per record" in text
        assert "36.2 MB for 100,002 ids (380 B per id)" in text
        assert "97 B: entry 53 B + tombstone of the evicted id 44 B" in text
        assert "150 ms for a full window" in text
        assert "0.10 % of the encrypted consumer, at most 0.40 % of its plaintext twin" in text
        assert "more than 100,000 events later in its department is not recognised as a duplicate" in text
    assert "| signed | 1 KB | 2,000 | 0.10 % | 500 | 0.40 % |" in render_markdown(results)


def test_no_dedupe_section_without_a_measurement_and_no_share_without_a_consumer_figure():
    assert "Deduplication window" not in render_markdown(summarize(three_runs()))
    alone = render_readme_section(summarize([], dedupe=cost()))
    assert "### Deduplication window" in alone and "Share of the consumer" not in alone
