"""Pure: the demo's accounting, its checks and its rendering. No I/O, so unit tests drive it directly."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, Field


class ConsumerCounts(BaseModel):
    decrypted: int = 0
    access_denied: int = 0
    dead_lettered: int = 0

    @property
    def total(self) -> int:
        return self.decrypted + self.access_denied + self.dead_lettered


class Sample(BaseModel):
    """One record as stored, and what each department got when it tried to read it."""

    department: str
    partition: int
    offset: int
    event_id: str
    ciphertext_bytes: int
    ciphertext_preview: str  # hex of the first bytes of the value
    key_arn: str
    owner_view: Mapping[str, str]  # masked hints, as the owning department's consumer sees them
    denied: Mapping[str, str]  # other department -> the AccessDenied message KMS gave it
    forgotten: str | None = None  # the record's subject, masked, once `keyfan forget` erased it
    after_forget: Mapping[str, str] = Field(default_factory=dict)  # the owner view after that


class DemoReport(BaseModel):
    """``keyfan demo --json`` prints the fields of this model, minus the sample."""

    generated: dict[str, int]
    published: dict[str, int]
    partitions: dict[str, list[int]] = Field(default_factory=dict)
    dead_lettered: int = 0
    consumers: dict[str, ConsumerCounts]
    unaccounted: int = 0
    problems: list[str] = Field(default_factory=list)
    sample: Sample | None = None

    @property
    def ok(self) -> bool:
        return self.unaccounted == 0 and not self.problems

    def summary(self) -> dict[str, object]:
        return self.model_dump(mode="json", exclude={"sample", "partitions"})


def account(
    generated: Mapping[str, int],
    published: Mapping[str, int],
    owner_dead_lettered: int,
    consumers: Mapping[str, ConsumerCounts],
) -> tuple[int, list[str]]:
    """How many events are unaccounted for, and what is wrong beyond that.

    Every generated event must be published or dead-lettered by the owner; every published record must
    end in exactly one outcome at every consumer. Each department decrypts exactly its own events and is
    denied exactly the others'.
    """
    total_generated = sum(generated.values())
    total_published = sum(published.values())
    unaccounted = max(0, total_generated - total_published - owner_dead_lettered)
    problems: list[str] = []
    for name, counts in consumers.items():
        unaccounted += max(0, total_published - counts.total)
        own = published.get(name, 0)
        others = total_published - own
        if counts.decrypted != own:
            problems.append(f"{name} decrypted {counts.decrypted} records, expected its own {own}")
        if counts.access_denied != others:
            problems.append(
                f"{name} was denied {counts.access_denied} records, expected the others' {others}"
            )
        if counts.dead_lettered:
            problems.append(f"{name} dead-lettered {counts.dead_lettered} records")
    return unaccounted, problems


def settled(
    generated: Mapping[str, int],
    published: Mapping[str, int],
    owner_dead_lettered: int,
    consumers: Mapping[str, ConsumerCounts],
) -> bool:
    """Whether every event has reached its final place (the demo can stop waiting)."""
    total_published = sum(published.values())
    owner_done = total_published + owner_dead_lettered >= sum(generated.values())
    return owner_done and all(c.total >= total_published for c in consumers.values())


def render(report: DemoReport) -> str:
    lines: list[str] = []
    sample = report.sample
    if sample is not None:
        lines += [
            "One record as stored on the shared topic (partition "
            f"{sample.partition}, offset {sample.offset}, department {sample.department}):",
            f"  event id     {sample.event_id}",
            f"  KMS key      {sample.key_arn}",
            f"  value        {sample.ciphertext_bytes} bytes of ciphertext: {sample.ciphertext_preview}…",
            f"The same record decrypted by {sample.department} (masked):",
            *(f"  {field:<12} {value}" for field, value in sample.owner_view.items()),
            *(
                f"The same record as {other} sees it: AccessDenied: {message}"
                for other, message in sample.denied.items()
            ),
        ]
        if sample.forgotten is not None:
            lines += [
                f"After `keyfan forget --department {sample.department} --subject {sample.forgotten}`, "
                f"the same record decrypted by {sample.department}:",
                *(f"  {field:<12} {value}" for field, value in sample.after_forget.items()),
            ]
        lines.append("")
    lines.append(f"{'Department':<12} {'generated':>10} {'published':>10}  partitions")
    for name in report.generated:
        parts = ",".join(str(p) for p in report.partitions.get(name, []))
        lines.append(f"{name:<12} {report.generated[name]:>10} {report.published.get(name, 0):>10}  {parts}")
    lines.append(f"{'owner dead-lettered':<23} {report.dead_lettered:>10}")
    lines.append("")
    lines.append(f"{'Consumer':<12} {'decrypted':>10} {'denied':>10} {'dead-lettered':>14}")
    for name, counts in report.consumers.items():
        lines.append(
            f"{name:<12} {counts.decrypted:>10} {counts.access_denied:>10} {counts.dead_lettered:>14}"
        )
    lines.append("")
    lines.append(f"Unaccounted: {report.unaccounted}")
    lines += [f"PROBLEM: {problem}" for problem in report.problems]
    lines.append("OK: every event accounted for." if report.ok else "FAILED: see above.")
    return "\n".join(lines)
