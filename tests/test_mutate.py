"""The mutation tool (tests/mutate.py) makes the mutants it promises, each valid Python."""

from __future__ import annotations

from .mutate import mutants

SOURCE = '''
def f(items: list[int], limit: int = 3) -> int:
    """Docstrings and annotations are left alone."""
    if not items or len(items) > limit:
        raise ValueError("too many: 1")
    total = 0
    for item in items:
        total += item * 2
    items.append(total)
    return total
'''


def test_every_kind_of_mutant_is_made_and_compiles() -> None:
    made = list(mutants(SOURCE))
    for _line, _what, source in made:
        compile(source, "mutant", "exec")
    assert sorted(what for _, what, _ in made) == sorted(
        [
            "3 -> 4",
            "not items or len(items) > limit -> not items and len(items) > limit",
            "len(items) > limit -> len(items) >= limit",
            "0 -> 1",
            "drop: total += item * 2",
            "item * 2 -> item // 2",
            "2 -> 3",
            "drop: items.append(total)",
            "return None: return total",
        ]
    )
