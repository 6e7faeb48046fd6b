"""The consumer as a real Faust worker: the service, its plaintext twin and a bare Faust agent. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from keyfan_tools.bench.report.cells import num, ratio_text, size_label, table
from keyfan_tools.bench.results import WorkerRow

WORKERS_INTRO = (
    "Each worker is a subprocess draining the same pre-filled topic in a fresh consumer group: "
    "`python -m sales_consumer` (encrypted records), its plaintext twin (the same `create_consumer_app` and "
    "handler, the benchmark's plaintext decryptor) and a bare Faust agent that only counts records (the "
    "framework's ceiling on this broker). Records/s from each worker's own record times: start-up and group "
    "join do not count."
)


def workers_table(rows: Sequence[WorkerRow]) -> list[str]:
    body = [
        [
            r.suite,
            size_label(r.size),
            num(r.records_per_run),
            num(r.encrypted_rps),
            num(r.plaintext_rps),
            num(r.bare_rps),
            ratio_text(r.ratio),
            ratio_text(r.plaintext_to_bare),
            ratio_text(r.encrypted_to_bare),
        ]
        for r in rows
    ]
    return table(
        [
            "Suite",
            "Payload",
            "Records",
            "Service rec/s",
            "Twin rec/s",
            "Bare agent rec/s",
            "Service / twin",
            "Twin / bare",
            "Service / bare",
        ],
        body,
    )


def workers_section(rows: Sequence[WorkerRow], heading: str) -> list[str]:
    """The section, or nothing for results without a worker phase (the committed report renders as it was)."""
    if not rows:
        return []
    return ["", heading, "", WORKERS_INTRO, "", *workers_table(rows)]
