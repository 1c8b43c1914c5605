"""Every Python block in README.md and docs/*.md runs, so the examples cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def _blocks() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for number, code in enumerate(BLOCK.findall(path.read_text()), 1):
            found.append((f"{path.relative_to(ROOT)}#{number}", code))
    return found


def test_readme_has_examples() -> None:
    assert any(name.startswith("README.md") for name, _ in _blocks())


@pytest.mark.parametrize(("name", "code"), _blocks(), ids=[name for name, _ in _blocks()])
def test_example_runs(name: str, code: str) -> None:
    exec(compile(code, name, "exec"), {"__name__": "__example__"})
