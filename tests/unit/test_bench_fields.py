"""The field-level suite (``fields``, crypto-shredding): its subject keys timed and their table calls counted,
its rows (ratio to the plaintext twin, ``fields / v2``, KMS and key-table calls per 10,000 records, subjects)
and where they are reported; results without it are written as before it existed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from keyfan.consumer.metrics import ConsumerMetrics
from keyfan.envelope import Binding
from keyfan.generation import generate_events
from keyfan_tools.bench.config import BenchConfig
from keyfan_tools.bench.context import SUITES, seals_fields
from keyfan_tools.bench.fields import fields_rows, per_10k
from keyfan_tools.bench.payloads import distinct_subjects
from keyfan_tools.bench.report.markdown import render_markdown
from keyfan_tools.bench.report.readme_section import render_readme_section
from keyfan_tools.bench.results import BenchResults, RunConfig
from keyfan_tools.bench.samples import (
    CONSUMER,
    CONSUMER_WORKER,
    FIELD_SAMPLE_KEYS,
    OWNER_PIPELINE,
    Sample,
)
from keyfan_tools.bench.summary import summarize
from keyfan_tools.bench.timing import (
    TimedEncryptor,
    TimedSubjectKeys,
    key_store_calls,
    reset_timers,
    subject_key_seconds,
    subject_keys_port,
)
from keyfan_tools.bench.workers.drain import SERVICE, Drain
from keyfan_tools.bench.workers.phase import Plan, worker_sample
from tests.factories import OWNER_KEY_IDS, FakeDynamoDB, FakeKms, fake_subject_keys


def sample(
    run: int, path: str, codec: str, suite: str, rps: float, records: int = 1000, **extra: Any
) -> Sample:
    return Sample(
        run=run,
        path=path,
        codec=codec,
        suite=suite,
        size=1024,
        records=records,
        seconds=records / rps,
        records_per_second=rps,
        processed=records,
        **extra,
    )


def owner_runs() -> list[Sample]:
    """Three runs of the owner pipeline: plaintext, v2 and fields, each with its own twin."""
    found = []
    figures = [(1000.0, 900.0, 100.0, 260), (2000.0, 1000.0, 250.0, 250), (1000.0, 950.0, 50.0, 240)]
    for run, (plain, v2, fields, calls) in enumerate(figures):
        for suite, rps in (("v2", v2), ("fields", fields)):
            found.append(sample(run, OWNER_PIPELINE, "plaintext", suite, plain, subjects=100))
            keyed: dict[str, Any] = (
                {"key_store_calls": calls, "subject_key_ms": 2.0} if suite == "fields" else {}
            )
            found.append(
                sample(run, OWNER_PIPELINE, "encrypted", suite, rps, kms_calls=1, subjects=100, **keyed)
            )
    return found


def test_the_field_level_suite_comes_second_so_the_profile_and_cache_off_phases_stay_on_v2() -> None:
    assert SUITES == ("v2", "fields", "signed", "unsigned") == BenchConfig().suites
    assert [s for s in SUITES if seals_fields(s)] == ["fields"]


def test_fields_rows_pair_each_run_with_its_twin_and_with_v2_and_count_calls_per_10000() -> None:
    # Given fields at 100, 250, 50 rec/s against twins at 1000, 2000, 1000 and v2 at 900, 1000, 950
    fields, v2 = fields_rows(owner_runs())

    # then the ratio and fields / v2 are medians of run-by-run ratios, not ratios of medians
    assert (fields.suite, v2.suite) == ("fields", "v2")
    assert fields.ratio_runs == pytest.approx([0.1, 0.125, 0.05])
    assert fields.ratio == pytest.approx(0.1)
    assert fields.to_v2 == pytest.approx(100 / 900)  # runs: 0.111, 0.25, 0.0526
    assert fields.added_ms == pytest.approx(1000 / 100 - 1000 / 900)
    # and the calls are per 10,000 measured records, the subjects those records were about
    assert fields.key_store_per_10k == pytest.approx(2500.0)
    assert fields.key_store_calls_runs == [260, 250, 240]
    assert fields.kms_per_10k == pytest.approx(10.0)
    assert fields.subjects_per_run == 100 and fields.records_per_run == 1000
    assert fields.subject_key_ms == 2.0
    # and v2 is the same path without subject keys: no key-table call, no fields / v2
    assert v2.key_store_per_10k == 0.0 and v2.to_v2 is None and v2.added_ms is None
    assert v2.ratio == pytest.approx(0.9)
    assert per_10k(3, 0) == 0.0


def test_a_worker_row_has_its_counts_but_no_subject_key_time() -> None:
    found = [
        sample(0, CONSUMER_WORKER, "plaintext", "fields", 1000.0, records=5000),
        sample(0, CONSUMER_WORKER, "encrypted", "fields", 300.0, records=5000, key_store_calls=1201),
    ]
    (row,) = fields_rows(found)
    assert row.key_store_per_10k == pytest.approx(2402.0)
    assert row.subject_key_ms is None and row.subject_key_share is None
    assert row.to_v2 is None  # no v2 worker measured: nothing to set it against


def test_the_department_key_table_leaves_the_field_level_suite_out() -> None:
    results = summarize(
        [
            *owner_runs(),
            sample(0, CONSUMER, "encrypted", "fields", 100.0, kms_calls=50),
            sample(0, CONSUMER, "plaintext", "fields", 100.0),
        ]
    )
    (owner,) = [r for r in results.kms if r.side == "owner"]
    assert owner.calls_runs == [1, 1, 1]  # v2's only, not fields' as well
    assert [r.side for r in results.kms] == ["owner"]
    assert [(r.path, r.suite) for r in results.fields] == [
        (OWNER_PIPELINE, "fields"),
        (OWNER_PIPELINE, "v2"),
        (CONSUMER, "fields"),
    ]


def test_results_with_the_field_level_suite_read_back_the_same_and_report_it() -> None:
    results = summarize(owner_runs(), config=RunConfig(runs=3, sizes=(1024,)))
    document = results.as_document()
    assert BenchResults.from_document(document) == results
    assert all(key in document["samples"][0] for key in FIELD_SAMPLE_KEYS)

    markdown = render_markdown(results)
    assert "## Field-level encryption (crypto-shredding)" in markdown
    assert (
        "| owner pipeline (no SQS) | fields | 1 KB | 100 | 1,000 | 0.10x | 0.11x | 10.0 | 2,500 |" in markdown
    )
    assert "| 100 / 1,000 | 8.89 |" in markdown  # fields - v2 ms per record: 1000/100 - 1000/900
    assert "Department data keys (v2 and wire v1)" in markdown
    readme = render_readme_section(results)
    assert "### Field-level encryption (crypto-shredding), 1 KB" in readme
    assert "`fields` is wire v2 with each event's personal fields sealed apart" in readme


def test_results_without_the_field_level_suite_are_written_as_before_it_existed() -> None:
    found = [s for s in owner_runs() if s.suite == "v2"]
    found = [replace(s, subjects=0) for s in found]
    results = summarize(found)
    document = results.as_document()
    assert "fields" not in document
    assert not any(key in document["samples"][0] for key in FIELD_SAMPLE_KEYS)
    assert BenchResults.from_document(document) == results
    assert "Field-level" not in render_markdown(results) + render_readme_section(results)
    assert "Department data keys" not in render_markdown(results)


def test_distinct_subjects_count_customers_and_accounts_per_department() -> None:
    events = generate_events(40, ("sales", "finance"), 3)
    expected = {
        (e.department, e.data["customer_id"] if e.department == "sales" else e.data["account_id"])
        for e in events
    }
    assert distinct_subjects(events) == len(expected)
    assert distinct_subjects(events[:1]) == 1
    assert distinct_subjects([]) == 0


def test_timed_subject_keys_time_the_pipelines_calls_and_read_the_stores_table_calls() -> None:
    # Given an owner codec whose subject keys are over an in-memory key table
    dynamodb = FakeDynamoDB()
    owner = TimedSubjectKeys(fake_subject_keys(dynamodb=dynamodb, kms=FakeKms(), key_ids=OWNER_KEY_IDS))
    codec = TimedEncryptor(object(), subject_keys=owner)  # type: ignore[arg-type]
    (event,) = generate_events(1, ("sales",), 5)
    binding = Binding.of_event(event, "topic")

    # when it seals an event's personal fields twice (a new subject, then a cached one)
    assert owner.seal_body_cached(event, binding) is None  # nothing at hand yet: the pipeline would block
    first = owner.seal_body(event, binding)
    second = owner.seal_body_cached(event, binding)

    # then the bodies differ only by their sealing, the calls were timed and the table calls counted
    assert first != event.model_dump_json().encode() and second is not None
    assert owner.timer.calls == 3 and subject_key_seconds(codec) > 0
    assert owner.store.table_calls() == {"GetItem": 2, "PutItem": 2}  # wrapping key, then the subject's
    assert key_store_calls(codec) == 4 == sum(dynamodb.calls.values())
    assert subject_keys_port(codec) is owner
    reset_timers(codec)
    assert subject_key_seconds(codec) == 0.0
    # and a codec without subject keys (v2, wire v1, the plaintext twin) has none to count
    plain = TimedEncryptor(object())  # type: ignore[arg-type]
    assert key_store_calls(plain) == 0 and subject_keys_port(plain) is None


def test_a_consumer_exposes_its_key_table_calls_for_its_state_and_metrics() -> None:
    # Given a consumer's metrics watching its subject keys' store (what record_pipeline wires)
    keys = fake_subject_keys(key_ids=OWNER_KEY_IDS)
    metrics = ConsumerMetrics("sales", CollectorRegistry())
    assert metrics.snapshot()["key_store_calls"] == 0
    metrics.watch_key_store(keys.store.table_calls)

    # when the store reads the table
    keys.store.wrapping_key("sales")

    # then /state and /metrics say so
    assert metrics.snapshot()["key_store_calls"] == 2  # GetItem (none yet), PutItem (made)
    text = generate_latest(metrics.registry).decode()
    assert 'keyfan_consumer_key_store_calls_total{department="sales",operation="GetItem"} 1.0' in text


def test_a_worker_sample_takes_its_key_table_calls_from_its_state() -> None:
    drain = Drain(5000, {"decrypted": 5000, "kms_calls": 2, "key_store_calls": 1201}, 1.0, 11.0)
    found = worker_sample(Plan(SERVICE, "encrypted", "fields"), 0, 1024, drain, 1024.0, subjects=1200)
    assert (found.kms_calls, found.key_store_calls, found.subjects) == (2, 1201, 1200)
