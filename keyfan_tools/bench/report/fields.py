"""Field-level encryption (crypto-shredding): ``fields`` against ``v2`` and the plaintext twin, with the KMS
and key-table calls per 10,000 records. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from keyfan_tools.bench.report.cells import num, ratio_text, size_label, table
from keyfan_tools.bench.results import FieldsRow
from keyfan_tools.bench.samples import PATH_TITLES

FIELDS_INTRO = (
    "`fields` seals each event's personal fields under its subject's key (kept in a DynamoDB table) and the "
    "rest under the department key, as the services do; `v2` uses the department key only. Ratio: to the "
    "plaintext twin of the same run; `fields / v2` and `fields - v2`: what the field-level step adds. Calls "
    "per 10,000 records of the measured window (a worker: its whole drain). A subject new to a process costs "
    "the owner a GetItem and a PutItem (more when two threads race on it), then nothing for the cache age "
    "(30 s); a consumer that misses loads the subjects of the records waiting behind it too, 100 per "
    "BatchGetItem; a wrapping key, one KMS Decrypt per department and cache age. The "
    "generator draws a batch's customers and accounts from a pool a quarter of its size, so most subjects "
    "are new to each measurement ('Subjects / records'). moto answers a table call in about 5 ms, one at a time."
)
KMS_SCOPE = "Department data keys (v2 and wire v1); the `fields` suite's calls are in its own table."


def fields_table(rows: Sequence[FieldsRow]) -> list[str]:
    body = [
        [
            PATH_TITLES.get(r.path, r.path),
            r.suite,
            size_label(r.size),
            num(r.encrypted_rps),
            num(r.plaintext_rps),
            ratio_text(r.ratio),
            ratio_text(r.to_v2) if r.to_v2 is not None else "-",
            num(r.kms_per_10k, 1),
            num(r.key_store_per_10k, 0),
            f"{num(r.subjects_per_run)} / {num(r.records_per_run)}",
            "-" if r.added_ms is None else num(r.added_ms, 2),
        ]
        for r in rows
    ]
    return table(
        [
            "Path",
            "Suite",
            "Payload",
            "Encrypted rec/s",
            "Plaintext rec/s",
            "Ratio",
            "fields / v2",
            "KMS calls / 10,000",
            "Key-table calls / 10,000",
            "Subjects / records",
            "fields - v2 ms/rec",
        ],
        body,
    )


def fields_section(rows: Sequence[FieldsRow], heading: str, *, size: int | None = None) -> list[str]:
    """The section (only ``size``'s rows if given and measured), or nothing for a run without ``fields``."""
    chosen = [r for r in rows if r.size == size] if size is not None else list(rows)
    if not chosen:
        return []
    return ["", heading, "", FIELDS_INTRO, "", *fields_table(chosen)]
