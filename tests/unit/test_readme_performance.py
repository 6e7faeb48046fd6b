"""The README's Performance section is the benchmark's generated one, verbatim (no hand copy to drift)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyfan.exceptions import KeyfanError
from keyfan_tools.bench.readme import END, START, generated_section, with_section

REPO = Path(__file__).resolve().parents[2]


def test_readme_holds_the_generated_section_verbatim() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    generated = (REPO / "bench" / "README-performance.md").read_text(encoding="utf-8")
    assert generated_section(readme).strip() == generated.strip()


def test_a_new_section_replaces_only_the_text_between_the_markers() -> None:
    readme = f"# Title\n\nintro\n{START}\n## Performance\nold\n{END}\n\n## Development\n"
    updated = with_section(readme, "## Performance\nnew figures\n")
    assert updated == f"# Title\n\nintro\n{START}\n## Performance\nnew figures\n{END}\n\n## Development\n"
    assert generated_section(updated) == "## Performance\nnew figures\n"


def test_a_readme_without_markers_is_a_clear_error() -> None:
    with pytest.raises(KeyfanError, match="markers"):
        generated_section("# Title\n\n## Performance\n")
