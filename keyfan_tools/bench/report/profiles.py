"""Where the time goes: the cProfile summaries (``keyfan_tools.bench.profile``) in words and tables. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from keyfan_tools.bench.report.cells import size_label, table
from keyfan_tools.bench.samples import PATH_TITLES, ProfileEntry, ProfileSummary


def _title(profile: ProfileSummary) -> str:
    return PATH_TITLES.get(profile.path, profile.path)


def _short(function: str) -> str:
    for prefix in ("<method '", "<built-in method "):
        if function.startswith(prefix):
            name = function.removeprefix(prefix).split("'")[0].split(">")[0]
            owner = (
                function.split(" of '")[-1].split("'")[0].rsplit(".", 1)[-1] if " of '" in function else ""
            )
            return f"{owner}.{name}" if owner else name
    return function.rsplit("(", 1)[-1].rstrip(")") if "(" in function else function


def _per_call(entry: ProfileEntry) -> str:
    return f"{_short(entry.function)} {1000 * entry.tottime_s / max(1, entry.calls):.2f} ms/call x {entry.calls:,}"


def time_goes_lines(profiles: Sequence[ProfileSummary], groups: int = 3, functions: int = 3) -> list[str]:
    """One line per encrypted profile: the biggest shares of thread time and the top functions."""
    lines = []
    for p in profiles:
        if p.codec != "encrypted":
            continue
        shares = ", ".join(f"{name} {share:.0%}" for name, share in list(p.groups.items())[:groups])
        top = ", ".join(_per_call(e) for e in [e for e in p.top_own if "poll" not in e.function][:functions])
        lines.append(
            f"- {_title(p)} ({p.suite} {size_label(p.size)}): {shares}; top functions by own time: {top}."
        )
    return lines


def profiles_section(profiles: Sequence[ProfileSummary], top: int = 8) -> list[str]:
    lines: list[str] = []
    for p in profiles:
        lines.append(
            f"**{_title(p)}, {p.codec} {p.suite} {size_label(p.size)}** "
            f"({p.records:,} records, {p.wall_seconds:.1f} s wall, "
            f"{p.profiled_seconds:.1f} s profiled across threads)"
        )
        if p.groups:
            shares = ", ".join(f"{name} {share:.0%}" for name, share in p.groups.items())
            lines.append(f"\nShare of profiled thread time: {shares}.\n")
        rows = [
            [f"`{e.function}`", f"{e.calls:,}", f"{e.tottime_s:.3f}", f"{e.cumtime_s:.3f}"]
            for e in p.top_own[:top]
        ]
        lines += table(["Function (own time)", "Calls", "Own s", "Cumulative s"], rows)
        lines.append("")
    return lines
