"""Raw samples -> results: medians over runs, run-by-run ratios to the plaintext twin, KMS per 1,000, goals."""

from __future__ import annotations

import pytest

from keyfan_tools.bench.samples import (
    CONSUMER,
    CONSUMER_DENIED,
    OWNER_PIPELINE,
    OWNER_SQS,
    LatencySample,
    MemorySample,
    Sample,
)
from keyfan_tools.bench.summary import summarize


def summarized(*args, **kwargs):
    """The results document (``results.json``) of ``summarize``."""
    return summarize(*args, **kwargs).as_document()


def sample(run, path, codec, rps, **extra):
    records = extra.pop("records", 1000)
    processed = extra.pop("processed", records)
    return Sample(
        run=run,
        path=path,
        codec=codec,
        suite=extra.pop("suite", "signed"),
        size=extra.pop("size", 1024),
        records=records,
        seconds=records / rps,
        records_per_second=rps,
        processed=processed,
        **extra,
    )


def latency(run, codec, p50, p99, suite="signed", handler_p99=0.0):
    return LatencySample(
        run=run,
        codec=codec,
        suite=suite,
        size=1024,
        rate_per_second=25.0,
        count=200,
        p50_ms=p50,
        p99_ms=p99,
        max_ms=p99 + 1,
        to_publish_p50_ms=10.0,
        publish_to_handler_p50_ms=p50 - 10.0,
        publish_to_handler_p99_ms=handler_p99,
    )


def three_runs():
    found = []
    # Given plaintext twins at 100, 200, 100 and encrypted at 90, 100, 95 (ratios 0.9, 0.5, 0.95)
    for run, (plain, enc) in enumerate([(100.0, 90.0), (200.0, 100.0), (100.0, 95.0)]):
        found.append(sample(run, OWNER_SQS, "plaintext", plain))
        found.append(sample(run, OWNER_SQS, "encrypted", enc, kms_calls=0, warmup_kms_calls=2))
        out = {"decrypted": 1010, "access_denied": 0, "dead_lettered": 0}
        found.append(
            sample(
                run,
                CONSUMER,
                "plaintext",
                2000.0,
                value_bytes=1240.0,
                record_bytes=1580.0,
                outcomes=out,
                processed=1010,
            )
        )
        found.append(
            sample(
                run,
                CONSUMER,
                "encrypted",
                500.0,
                value_bytes=1630.0,
                record_bytes=1990.0,
                payload_bytes=1024.0,
                kms_calls=1,
                warmup_kms_calls=1,
                outcomes=out,
                processed=1010,
            )
        )
        denied = {"decrypted": 0, "access_denied": 1000, "dead_lettered": 0}
        found.append(sample(run, CONSUMER_DENIED, "encrypted", 8000.0, outcomes=denied, processed=1000))
    found.append(sample(0, OWNER_PIPELINE, "encrypted", 70.0, cache=False, kms_calls=60, records=60))
    return found


def row(rows, **match):
    return next(r for r in rows if all(r[k] == v for k, v in match.items()))


def test_ratio_is_the_median_of_run_by_run_ratios_not_a_ratio_of_medians():
    results = summarized(three_runs())
    owner = row(results["throughput"], path=OWNER_SQS)
    assert owner["ratio_runs"] == pytest.approx([0.9, 0.5, 0.95])
    assert owner["ratio"] == pytest.approx(0.9)
    assert owner["encrypted_rps"] == 95.0
    assert owner["plaintext_rps"] == 100.0
    assert owner["goal"] is None and owner["meets_goal"] is None  # the goals are wire v2's


def test_the_throughput_goal_is_wire_v2s_on_the_owner_pipeline_and_the_worker_from_1_kb():
    found = []
    for size, (plain, enc) in ((256, (100.0, 90.0)), (1024, (100.0, 96.0)), (16384, (100.0, 94.0))):
        for suite in ("v2", "signed"):
            found.append(sample(0, OWNER_PIPELINE, "plaintext", plain, suite=suite, size=size))
            found.append(sample(0, OWNER_PIPELINE, "encrypted", enc, suite=suite, size=size))
    results = summarized(found)
    goals = {(r["suite"], r["size"]): (r["goal"], r["meets_goal"]) for r in results["throughput"]}
    assert goals == {
        ("v2", 256): (None, None),  # below 1 KB: measured, no goal
        ("v2", 1024): (0.95, True),
        ("v2", 16384): (0.95, False),
        ("signed", 256): (None, None),
        ("signed", 1024): (None, None),
        ("signed", 16384): (None, None),
    }
    (goal,) = [g for g in results["goals"] if "owner pipeline" in g["goal"]]
    assert goal["worst"] == pytest.approx(0.94) and goal["met"] is False


def test_consumer_ratio_and_denials_compare_with_the_plaintext_consumer():
    results = summarized(three_runs())
    consumer = row(results["throughput"], path=CONSUMER)
    assert consumer["ratio"] == pytest.approx(0.25)
    assert consumer["meets_goal"] is None  # the in-process pipeline is measured; the worker has the goal
    denied = row(results["throughput"], path=CONSUMER_DENIED)
    assert denied["ratio"] == pytest.approx(4.0)
    assert denied["goal"] is None and denied["meets_goal"] is None


def test_kms_calls_per_thousand_by_side_and_cache():
    results = summarized(three_runs())
    owner_on = row(results["kms"], side="owner", cache="on")
    assert owner_on["per_1000"] == 0.0 and owner_on["meets_goal"] is True
    assert owner_on["warmup_calls"] == 2
    consumer_on = row(results["kms"], side="consumer", cache="on")
    assert consumer_on["per_1000"] == pytest.approx(1.0)
    assert consumer_on["meets_goal"] is False  # 1 per 1,000 is 10 per 10,000
    owner_off = row(results["kms"], side="owner", cache="off")
    assert owner_off["per_1000"] == pytest.approx(1000.0)
    assert owner_off["goal_per_1000"] is None


def test_latency_delta_is_taken_per_run_against_the_same_runs_plaintext():
    lat = [
        latency(0, "plaintext", 20, 40),
        latency(0, "encrypted", 22, 44),
        latency(1, "plaintext", 20, 80),
        latency(1, "encrypted", 23, 90),
        latency(2, "plaintext", 20, 40),
        latency(2, "encrypted", 21, 43),
    ]
    results = summarized([], lat)
    (signed,) = results["latency"]
    assert signed["p99_delta_ms_runs"] == [4, 10, 3]
    assert signed["p99_delta_ms"] == 4
    assert signed["meets_goal"] is None  # the latency goal is wire v2's
    assert signed["encrypted_p99_ms"] == 44


def test_the_latency_goal_is_v2s_p99_publish_to_handler_against_plaintext():
    lat = [latency(0, "plaintext", 20, 40, handler_p99=10.0), latency(0, "encrypted", 22, 44, "v2", 11.5)]
    (v2,) = summarized([], lat)["latency"]
    assert v2["meets_goal"] is True and v2["goal_delta_ms"] == 2.0
    late = [latency(0, "plaintext", 20, 40, handler_p99=10.0), latency(0, "encrypted", 22, 44, "v2", 12.5)]
    results = summarized([], late)
    assert results["latency"][0]["meets_goal"] is False
    (goal,) = [g for g in results["goals"] if "latency" in g["goal"]]
    assert goal["worst"] == pytest.approx(2.5) and goal["met"] is False


def test_bytes_rows_pair_encrypted_and_plaintext_values():
    (bytes_row,) = summarized(three_runs())["bytes"]
    assert bytes_row["encryption_overhead_bytes"] == pytest.approx(390.0)
    assert bytes_row["value_ratio"] == pytest.approx(1630 / 1240)
    assert bytes_row["payload_bytes"] == 1024.0


def test_accounting_flags_consumer_runs_whose_outcomes_do_not_add_up():
    good = summarized(three_runs())["accounting"]
    assert good == {"checked": 9, "all_accounted": True, "unaccounted": []}
    broken = sample(0, CONSUMER, "encrypted", 1.0, outcomes={"decrypted": 1}, processed=2)
    assert summarized([broken])["accounting"]["all_accounted"] is False


def test_goals_report_the_worst_case_and_memory_rows_are_in_megabytes():
    results = summarized(three_runs(), memory=[MemorySample("owner_service", 1, 102400, 51200, 10, 2)])
    goals = {g["goal"]: g for g in results["goals"]}
    assert any(not g["met"] for g in goals.values())
    assert results["memory"][0]["vmhwm_mb"] == 100.0
