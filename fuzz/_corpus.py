"""What every fuzz harness shares: its instrumented imports, walking a seed corpus and
replaying it once, its command line."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "corpus_files",
    "fuzz_or_replay",
    "fuzzing",
    "harness_main",
    "replay",
    "target_imports",
]


def fuzzing(module_name: str, fuzzer: Any) -> bool:
    """Whether this run fuzzes: the harness runs as a script, atheris is installed, and it
    was not asked only to replay the corpus or to write its seeds."""
    return (
        module_name == "__main__"
        and fuzzer is not None
        and not {"--corpus-only", "--write-seeds"} & set(sys.argv[1:])
    )


def target_imports(
    module_name: str, fuzzer: Any, include: Sequence[str] = ("rtproto",)
) -> contextlib.AbstractContextManager[Any]:
    """Wrap a harness's imports of the code under test: instrumented by atheris when
    :func:`fuzzing` (import heavy dependencies before, so that only ``include`` is traced).
    A harness run as a script imports the working tree's ``src/``."""
    if module_name == "__main__":
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    if fuzzing(module_name, fuzzer):
        return fuzzer.instrument_imports(include=list(include))  # type: ignore[no-any-return]
    return contextlib.nullcontext()


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


def fuzz_or_replay(
    argv: list[str], name: str, one_input: Callable[[bytes], None], fuzzer: Any
) -> int:
    """A harness's command line: fuzz with atheris, or replay the corpus once.

    Without atheris, or with ``--corpus-only``, the paths given (default: ``corpus/<name>``)
    are replayed through ``one_input``.
    """
    args = argv[1:]
    corpus_only = "--corpus-only" in args
    if fuzzer is None or corpus_only:
        paths = [arg for arg in args if not arg.startswith("-")]
        if not paths:
            paths = [str(Path(__file__).resolve().parent / "corpus" / name)]
        count = replay(paths, one_input, f"fuzz_{name}")
        why = "--corpus-only" if corpus_only else "atheris is not installed"
        print(f"fuzz_{name}: ran {count} corpus inputs once ({why}); all passed")
        return 0
    fuzzer.Setup(argv, one_input)
    fuzzer.Fuzz()
    return 0  # pragma: no cover - atheris.Fuzz() does not return


def harness_main(
    argv: list[str],
    name: str,
    one_input: Callable[[bytes], None],
    fuzzer: Any,
    seeds: Callable[[], dict[str, bytes]] | None = None,
) -> int:
    """A harness's whole command line: ``--write-seeds [DIR]`` writes what ``seeds()`` makes
    (to ``corpus/<name>`` by default); anything else goes to :func:`fuzz_or_replay`."""
    args = argv[1:]
    if seeds is not None and "--write-seeds" in args:
        paths = [arg for arg in args if not arg.startswith("-")]
        directory = Path(paths[0]) if paths else Path(__file__).resolve().parent / "corpus" / name
        directory.mkdir(parents=True, exist_ok=True)
        made = seeds()
        for file_name, data in made.items():
            (directory / file_name).write_bytes(data)
        print(f"fuzz_{name}: wrote {len(made)} seeds to {directory}")
        return 0
    return fuzz_or_replay(argv, name, one_input, fuzzer)
