"""Pure: the Faust workers' samples -> ``WorkerRow``s (medians over runs, ratios run by run). No I/O.

The service is set against its twin and against the bare agent measured at the same size *in the same run*
(the bare agent has no suite: one per size and run serves every suite).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from keyfan_tools.bench.results import WorkerRow
from keyfan_tools.bench.samples import CONSUMER_WORKER, FAUST_BARE, Sample
from keyfan_tools.bench.stats import median_or_none, paired_ratios


def _by_run(samples: Iterable[Sample]) -> dict[int, Sample]:
    return {s.run: s for s in samples}


def _rps(by_run: dict[int, Sample], runs: Sequence[int]) -> list[float]:
    return [by_run[r].records_per_second for r in runs]


def worker_rows(samples: Sequence[Sample]) -> list[WorkerRow]:
    keys = {(s.suite, s.size) for s in samples if s.path == CONSUMER_WORKER and s.codec == "encrypted"}
    return [_worker_row(samples, suite, size) for suite, size in sorted(keys)]


def _worker_row(samples: Sequence[Sample], suite: str, size: int) -> WorkerRow:
    mine = [s for s in samples if s.path == CONSUMER_WORKER and (s.suite, s.size) == (suite, size)]
    enc = _by_run(s for s in mine if s.codec == "encrypted")
    plain = _by_run(s for s in mine if s.codec == "plaintext")
    bare = _by_run(s for s in samples if s.path == FAUST_BARE and s.size == size)
    runs = sorted(set(enc) & set(plain))
    with_bare = [r for r in runs if r in bare]
    bare_rps = _rps(bare, with_bare)
    return WorkerRow(
        suite=suite,
        size=size,
        runs=len(runs),
        records_per_run=median_or_none([float(enc[r].records) for r in runs]),
        encrypted_rps=median_or_none(_rps(enc, runs)),
        plaintext_rps=median_or_none(_rps(plain, runs)),
        bare_rps=median_or_none(bare_rps),
        ratio=median_or_none(paired_ratios(_rps(enc, runs), _rps(plain, runs))),
        plaintext_to_bare=median_or_none(paired_ratios(_rps(plain, with_bare), bare_rps)),
        encrypted_to_bare=median_or_none(paired_ratios(_rps(enc, with_bare), bare_rps)),
        encrypted_rps_runs=_rps(enc, runs),
        plaintext_rps_runs=_rps(plain, runs),
        bare_rps_runs=bare_rps,
    )
