"""The worker phase of the benchmark: the bare agent's tally, the worker's own record times, the order of the
workers, their rows in the results, and results without a worker phase written back as they were."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from keyfan.settings import ConsumerSettings
from keyfan_tools.bench.config import BenchConfig
from keyfan_tools.bench.report.workers import workers_section
from keyfan_tools.bench.results import BenchResults
from keyfan_tools.bench.samples import BARE_SUITE, CONSUMER_WORKER, FAUST_BARE, Sample
from keyfan_tools.bench.summary import summarize
from keyfan_tools.bench.workers.bare import Tally, create_bare_app
from keyfan_tools.bench.workers.drain import (
    BARE,
    POLLED,
    SERVICE,
    TWIN,
    Drain,
    handled_of,
    note_audit,
    outcomes_of,
    span,
)
from keyfan_tools.bench.workers.phase import plans_for, worker_sizes

REPO = Path(__file__).resolve().parents[2]


def test_the_tally_keeps_the_first_and_last_record_times_and_serves_them_as_state() -> None:
    tally = Tally()
    for now in (10.0, 10.5, 12.0):
        tally.saw(now)
    assert tally.state() == {"counters": {"handled": 3}, "first_at": 10.0, "last_at": 12.0}
    assert handled_of(tally.state()) == 3


async def test_the_bare_agent_counts_every_record_it_is_given(tmp_path: Path) -> None:
    settings = ConsumerSettings(
        department="sales", departments_file=REPO / "departments.toml", data_dir=tmp_path
    )
    app = create_bare_app(settings, topic_partitions=4)
    app.finalize()
    app.flow_control.resume()
    async with app.agents["bare-records"].test_context() as agent:
        for n in range(5):
            await agent.put(key=b"k", value=b"v" * n)
    assert app.tally.handled == 5  # type: ignore[attr-defined]
    assert app.tally.first_at <= app.tally.last_at  # type: ignore[attr-defined]


def test_a_consumer_state_counts_its_final_outcomes_only() -> None:
    state = {
        "counters": {"decrypted": 7, "access_denied": 2, "dead_lettered": 1, "retries": 5, "kms_calls": 1}
    }
    assert handled_of(state) == 10
    assert outcomes_of(state) == {"decrypted": 7, "access_denied": 2, "dead_lettered": 1}
    assert handled_of({}) == 0


def test_a_record_is_timed_by_its_first_audit_record_and_bad_ones_are_skipped() -> None:
    seen: dict[tuple[int, int], float] = {}
    audit = {"partition": 1, "offset": 5, "time": "2026-12-03T16:00:00.250000Z"}
    note_audit(seen, json.dumps(audit).encode())
    note_audit(seen, json.dumps({**audit, "time": "2026-12-03T16:00:09Z"}).encode())  # a redelivery
    note_audit(seen, b"not json")
    note_audit(seen, json.dumps({"partition": 2}).encode())
    assert list(seen) == [(1, 5)]
    assert seen[(1, 5)] % 60 == 0.25
    assert span([3.0, 1.0, 2.0]) == (1.0, 3.0) and span([]) == (None, None)


def test_records_per_second_use_the_workers_own_times_between_first_and_last_record() -> None:
    drain = Drain(101, {}, polled_first=100.0, polled_last=102.0)
    assert drain.timed_by == POLLED and drain.records_per_second == 50.0  # 100 records in 2 s
    drain.timed_from(100.02, 101.02, "own")
    assert drain.timed_by == "own" and drain.seconds == 1.0 and drain.records_per_second == 100.0
    drain.timed_from(None, 5.0, "missing")
    assert drain.timed_by == "own"


def test_the_bare_agent_runs_once_and_the_order_reverses_from_one_run_to_the_next() -> None:
    even = plans_for(("signed", "unsigned"), 0)
    assert [(p.kind, p.codec, p.suite) for p in even] == [
        (BARE, "plaintext", None),
        (TWIN, "plaintext", "signed"),
        (SERVICE, "encrypted", "signed"),
        (TWIN, "plaintext", "unsigned"),
        (SERVICE, "encrypted", "unsigned"),
    ]
    assert plans_for(("signed", "unsigned"), 1) == even[::-1]
    assert SERVICE.module == "sales_consumer" and SERVICE.audited and not BARE.audited


def test_the_worker_phase_measures_the_sizes_from_one_kilobyte_up() -> None:
    assert worker_sizes(BenchConfig()) == (1024, 16384)
    assert worker_sizes(BenchConfig(sizes=(256,))) == ()
    assert BenchConfig.quick_config().worker_records < BenchConfig().worker_records


def worker(run: int, codec: str, rps: float, *, suite: str = "signed", size: int = 1024) -> Sample:
    path = FAUST_BARE if suite == BARE_SUITE else CONSUMER_WORKER
    outcomes = {} if path == FAUST_BARE else {"decrypted": 200, "access_denied": 0, "dead_lettered": 0}
    return Sample(
        run=run,
        path=path,
        codec=codec,
        suite=suite,
        size=size,
        records=200,
        seconds=199 / rps,
        records_per_second=rps,
        outcomes=outcomes,
        processed=200,
    )


def two_runs() -> list[Sample]:
    return [
        worker(0, "plaintext", 3000, suite=BARE_SUITE),
        worker(0, "plaintext", 1000),
        worker(0, "encrypted", 500),
        worker(1, "encrypted", 900),
        worker(1, "plaintext", 1000),
        worker(1, "plaintext", 2000, suite=BARE_SUITE),
    ]


def test_the_service_is_set_against_its_twin_and_the_bare_agent_of_the_same_run() -> None:
    results = summarize(two_runs())
    [row] = results.workers
    assert (row.suite, row.size, row.runs) == ("signed", 1024, 2)
    assert row.encrypted_rps_runs == [500, 900] and row.bare_rps_runs == [3000, 2000]
    assert row.ratio == 0.7  # median of 0.5 and 0.9
    assert row.plaintext_to_bare == (1000 / 3000 + 1000 / 2000) / 2
    assert row.encrypted_to_bare == (500 / 3000 + 900 / 2000) / 2
    # the worker is a throughput path too, and its outcomes are accounted for
    [throughput] = results.throughput
    assert throughput.path == CONSUMER_WORKER and throughput.ratio == 0.7
    assert throughput.crypto_ms_mean is None  # not timed inside a subprocess: n/a, not 0
    assert results.accounting.checked == 4 and results.accounting.all_accounted


def test_results_with_workers_read_back_the_same_and_render_their_section() -> None:
    results = summarize(two_runs())
    document = json.loads(json.dumps(results.as_document()))
    assert document["workers"] and "worker_records" in document["config"]
    assert BenchResults.from_document(document) == results
    section = workers_section(results.workers, "## Workers")
    assert (
        section[1] == "## Workers" and "| signed | 1 KB | 200 | 700 | 1,000 | 2,500 | 0.70x |" in section[-1]
    )


def test_results_without_a_worker_phase_are_written_as_before_it_existed() -> None:
    results = summarize([])
    document = results.as_document()
    assert "workers" not in document and "worker_records" not in document["config"]
    assert BenchResults.from_document(document).workers == []
    assert workers_section([], "## Workers") == []
    assert replace(results, workers=[]).as_document() == document
