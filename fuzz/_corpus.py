"""What every fuzz harness shares: walking a seed corpus and replaying it once."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

__all__ = ["corpus_files", "replay"]


def corpus_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Every file under ``paths`` (files or directories, recursively; dotfiles skipped)."""
    for path in map(Path, paths):
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not child.name.startswith("."):
                    yield child
        elif path.is_file():
            yield path
        else:
            raise FileNotFoundError(f"no such corpus file or directory: {path}")


def replay(paths: Iterable[str | Path], one_input: Callable[[bytes], None], name: str) -> int:
    """Run every corpus file through ``one_input`` once; returns the count.

    The first failing input re-raises its exception after naming the file on stderr.
    """
    count = 0
    for path in corpus_files(paths):
        try:
            one_input(path.read_bytes())
        except Exception:
            print(f"{name}: contract violation on {path}", file=sys.stderr)
            raise
        count += 1
    return count
