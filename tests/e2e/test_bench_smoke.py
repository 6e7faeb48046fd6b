"""The benchmark harness end to end at a tiny size on the real local stack: the three result files are
written and well-formed, for wire v2 and the field-level suite. No assertion on any timing: only on shape,
pairing, accounting and call counts."""

from __future__ import annotations

import json
from pathlib import Path

from keyfan_tools.bench.config import BenchConfig
from keyfan_tools.bench.harness import bench_on_stack
from keyfan_tools.local import LocalStack
from keyfan_tools.local.processes import pid_alive

TINY = BenchConfig.quick_config().with_overrides(
    runs=1,
    sizes=(1024,),
    suites=("v2", "fields"),
    warmup=4,
    pipeline_records=16,
    sqs_records=8,
    cache_off_records=6,
    latency_records=10,
    memory_records=10,
    profile_records=10,
    dedupe_window_events=300,
    dedupe_records=50,
    worker_records=40,
)


def test_bench_writes_results_json_markdown_and_png(local_stack: LocalStack, tmp_path: Path):
    # Given the tiny configuration, when the harness runs on the session's stack
    out = tmp_path / "results"
    results = bench_on_stack(
        local_stack, TINY, out, readme_section=tmp_path / "README-performance.md", work_dir=tmp_path
    )

    # then the three files exist and are well-formed
    document = json.loads((out / "results.json").read_text())
    assert document == json.loads(json.dumps(results.as_document()))
    for key in (
        "config",
        "machine",
        "goals",
        "throughput",
        "kms",
        "latency",
        "bytes",
        "memory",
        "dedupe",
        "accounting",
    ):
        assert key in document, key
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (out / "results.md").read_text()
    assert "## Throughput" in markdown and "## KMS calls per 1,000 records" in markdown
    readme = (tmp_path / "README-performance.md").read_text()
    assert "## Performance" in readme and "### Deduplication window" in readme
    assert "## Deduplication window" in markdown

    # and every encrypted path has a ratio to its plaintext twin from the same run
    paths = {row["path"] for row in document["throughput"]}
    assert paths == {"owner_pipeline", "owner_sqs", "consumer", "consumer_denied", "consumer_worker"}
    # and the Faust workers (the service, its twin, a bare agent) each drained the pre-filled topic
    assert [w["suite"] for w in document["workers"]] == ["fields", "v2"]
    for worker in document["workers"]:
        assert worker["runs"] == 1
        assert worker["encrypted_rps"] > 0 and worker["plaintext_rps"] > 0 and worker["bare_rps"] > 0
    for row in document["throughput"]:
        assert row["runs"] == 1
        assert row["ratio"] is not None and row["ratio"] > 0
        assert row["ratio"] == row["ratio_runs"][0]

    # and the counts add up: each consumer record has exactly one outcome, of the expected kind
    assert document["accounting"]["all_accounted"] is True
    samples = document["samples"]
    for s in samples:
        if s["path"] == "consumer":
            assert s["outcomes"]["decrypted"] == s["processed"]
        if s["path"] == "consumer_denied":
            assert s["outcomes"]["access_denied"] == s["processed"]
    owner = [s for s in samples if s["path"] == "owner_pipeline" and s["cache"]]
    assert {s["records"] for s in owner} == {TINY.pipeline_records}

    # and KMS figures exist for both sides with the cache on and off; off means one call per record
    kms = {(r["side"], r["cache"]): r for r in document["kms"]}
    assert {("owner", "on"), ("owner", "off"), ("consumer", "on"), ("consumer", "off")} <= set(kms)
    assert kms[("owner", "off")]["per_1000"] == 1000.0

    # and the field-level suite sealed personal fields under subject keys: the owner made them in the key
    # table, the consumer pipeline and python -m sales_consumer read them; v2 never touched the table
    fields = {(r["path"], r["suite"]): r for r in document["fields"]}
    assert set(fields) == {
        (path, suite)
        for path in ("owner_pipeline", "consumer", "consumer_worker")
        for suite in ("fields", "v2")
    }
    for path in ("owner_pipeline", "consumer", "consumer_worker"):
        assert fields[(path, "fields")]["ratio"] > 0 and fields[(path, "fields")]["subjects_per_run"] > 0
        assert fields[(path, "v2")]["key_store_per_10k"] == 0
    # (the consumer pipeline's look-ahead may load all of a tiny run's subjects during its warm-up)
    for path in ("owner_pipeline", "consumer_worker"):
        assert fields[(path, "fields")]["key_store_per_10k"] > 0
    assert "## Field-level encryption (crypto-shredding)" in markdown
    assert "### Field-level encryption (crypto-shredding), 1 KB" in readme

    # and latency is paired, bytes are measured, and the real services' peak memory was read
    assert [r["suite"] for r in document["latency"]] == ["fields", "v2"]
    for latency in document["latency"]:
        assert latency["encrypted_p99_ms"] > 0 and latency["plaintext_p99_ms"] > 0
    for size_row in document["bytes"]:
        assert size_row["encrypted_value_bytes"] > size_row["payload_bytes"] == 1024
    processes = {m["process"]: m for m in document["memory"]}
    assert {"owner_service", "sales_consumer", "finance_consumer"} <= set(processes)
    for name in ("owner_service", "sales_consumer", "finance_consumer"):
        assert processes[name]["vmhwm_kb"] > 0
        assert processes[name]["records"] == TINY.memory_records
        assert not pid_alive(processes[name]["pid"])  # no service left running

    # and the dedupe window was measured full (sales: 3 partitions x 100) and set against the consumer's time
    dedupe = document["dedupe"]
    assert dedupe["cost"]["window_ids"] == 300 and dedupe["cost"]["evicted"] > 0
    for share in dedupe["consumer"]:
        assert share["encrypted_share"] > 0 and share["plaintext_share"] > 0
