"""Pure: the field-level suite's samples -> ``FieldsRow``s. No I/O.

Issue 12's cost: the ``fields`` suite (each event's personal fields sealed under its subject's key, the rest
under the department key: what the services run) on the owner pipeline, the consumer pipeline and the
consumer worker, next to ``v2`` (the department key only) on the same paths and sizes: records/s against the
plaintext twin of the same run, ``fields / v2`` run by run, and the KMS and key-table calls per 10,000
records. No goal: the figures are reported as measured.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from keyfan_tools.bench.results import FieldsRow
from keyfan_tools.bench.samples import CONSUMER, CONSUMER_WORKER, FIELDS_SUITE, OWNER_PIPELINE, Sample
from keyfan_tools.bench.stats import median, median_or_none, paired_ratios

FIELD_PATHS = (OWNER_PIPELINE, CONSUMER, CONSUMER_WORKER)
BASELINE_SUITE = "v2"  # the same wire with the department key only: what the field-level step adds to
UNTIMED = (CONSUMER_WORKER,)  # a subprocess: its subject-key calls are counted, not timed


def per_10k(calls: int, records: int) -> float:
    return 10_000.0 * calls / records if records > 0 else 0.0


def _ms_per_record(records_per_second: float) -> float:
    return 1000.0 / records_per_second


def _by_run(samples: Iterable[Sample]) -> dict[int, Sample]:
    return {s.run: s for s in samples}


def _med(values: Iterable[float]) -> float | None:
    found = list(values)
    return median(found) if found else None


def fields_rows(samples: Sequence[Sample]) -> list[FieldsRow]:
    """A row per path and size where ``fields`` was measured: ``fields``, then ``v2`` if measured too."""
    cached = [s for s in samples if s.cache and s.path in FIELD_PATHS]
    keys = sorted({(s.path, s.size) for s in cached if s.suite == FIELDS_SUITE and s.codec == "encrypted"})
    rows = []
    for path, size in sorted(keys, key=lambda k: (FIELD_PATHS.index(k[0]), k[1])):
        for suite in (FIELDS_SUITE, BASELINE_SUITE):
            row = _row(cached, path, suite, size)
            if row is not None:
                rows.append(row)
    return rows


def _row(samples: Sequence[Sample], path: str, suite: str, size: int) -> FieldsRow | None:
    mine = [s for s in samples if (s.path, s.suite, s.size) == (path, suite, size)]
    enc = _by_run(s for s in mine if s.codec == "encrypted")
    plain = _by_run(s for s in mine if s.codec == "plaintext")
    runs = sorted(set(enc) & set(plain))
    if not runs:
        return None
    enc_rps = [enc[r].records_per_second for r in runs]
    ratios = paired_ratios(enc_rps, [plain[r].records_per_second for r in runs])
    to_v2, added = _against_v2(samples, path, size, enc) if suite == FIELDS_SUITE else (None, None)
    timed = path not in UNTIMED
    return FieldsRow(
        path=path,
        suite=suite,
        size=size,
        runs=len(runs),
        records_per_run=_med(float(enc[r].records) for r in runs),
        subjects_per_run=_med(float(enc[r].subjects) for r in runs),
        encrypted_rps=_med(enc_rps),
        plaintext_rps=_med(plain[r].records_per_second for r in runs),
        ratio=median_or_none(ratios),
        to_v2=to_v2,
        added_ms=added,
        kms_per_10k=_med(per_10k(enc[r].kms_calls, enc[r].records) for r in runs),
        key_store_per_10k=_med(per_10k(enc[r].key_store_calls, enc[r].records) for r in runs),
        subject_key_ms=_med(enc[r].subject_key_ms for r in runs) if timed else None,
        subject_key_share=_med(enc[r].subject_key_share for r in runs) if timed else None,
        ratio_runs=ratios,
        key_store_calls_runs=[enc[r].key_store_calls for r in runs],
    )


def _against_v2(
    samples: Sequence[Sample], path: str, size: int, fields: dict[int, Sample]
) -> tuple[float | None, float | None]:
    """``fields / v2`` records/s and ``fields - v2`` ms per record, each run by run, then the median."""
    v2 = _by_run(
        s for s in samples if (s.path, s.suite, s.size, s.codec) == (path, BASELINE_SUITE, size, "encrypted")
    )
    both = [
        r for r in sorted(fields) if r in v2 and fields[r].records_per_second and v2[r].records_per_second
    ]
    ratio = median_or_none(
        paired_ratios([fields[r].records_per_second for r in both], [v2[r].records_per_second for r in both])
    )
    added = _med(
        _ms_per_record(fields[r].records_per_second) - _ms_per_record(v2[r].records_per_second) for r in both
    )
    return ratio, added
