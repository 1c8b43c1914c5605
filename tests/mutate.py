"""Mutation testing: does the suite fail when a rule in the code breaks?

Each mutant changes one thing in one module: a comparison or boolean operator, an arithmetic
operator, an integer or boolean constant, an ``if`` condition negated, a call statement or an
augmented assignment removed, a returned value replaced by ``None``. The chosen tests then run
against a copy of the repository holding that change (``PYTHONPATH`` first, so the editable
install is bypassed); a mutant the tests do not notice *survives*. Survivors are either
equivalent (a bound's exact default, a performance flag) or a rule no test pins: read each.

    .venv/bin/python -m tests.mutate                      # the session core, its fast tests
    .venv/bin/python -m tests.mutate rtproto/codec.py --tests tests/test_events.py
    .venv/bin/python -m tests.mutate --survivors mutants.jsonl   # re-run only those

About 12 mutants a minute per worker on the session core (25 minutes for all 661 on two);
``--workers`` defaults to the number of cores.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SESSION = ["playback", "sequencer", "history", "core", "options", "events"]
DEFAULT_MODULES = [f"rtproto/session/{name}.py" for name in SESSION]
DEFAULT_TESTS = ["test_session", "test_session_machine", "test_playback", "test_history"]

COMPARE = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
ARITHMETIC = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.FloorDiv: ast.Mult,
    ast.Div: ast.Mult,
    ast.Mod: ast.FloorDiv,
}


def untouchable(tree: ast.AST) -> set[int]:
    """Nodes no mutant changes: docstrings, annotations, the messages of raised errors."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            skip.add(id(first.value))
        kept: list[ast.AST | None] = []
        if isinstance(node, (ast.AnnAssign, ast.arg)):
            kept.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            kept.append(node.returns)
        elif isinstance(node, ast.Raise):
            kept.append(node.exc)
        for part in kept:
            if part is not None:
                skip.update(id(inner) for inner in ast.walk(part))
    return skip


def mutants(source: str) -> Iterator[tuple[int, str, str]]:
    """Every mutant of a module: (line, what changed, the mutated source)."""
    tree = ast.parse(source)
    skip = untouchable(tree)
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(line: int, column: int) -> int:  # ast columns count UTF-8 bytes
        return starts[line - 1] + len(lines[line - 1].encode()[:column].decode())

    def span(node: ast.AST) -> tuple[int, int]:
        start = offset(node.lineno, node.col_offset)
        return start, offset(node.end_lineno or node.lineno, node.end_col_offset or 0)

    def text_of(node: ast.AST) -> str:  # (ast.get_source_segment re-splits the file each call)
        if getattr(node, "lineno", None) is None:
            return ""
        start, end = span(node)
        return source[start:end]

    def replace(node: ast.AST, text: str) -> str:
        start, end = span(node)
        return source[:start] + text + source[end:]

    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        segment = text_of(node)
        first_line = segment.splitlines()[0][:70] if segment else ""
        new: ast.expr | None = None
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            swap = COMPARE.get(type(node.ops[0]))
            if swap is not None:
                new = ast.Compare(node.left, [swap()], node.comparators)
        elif isinstance(node, ast.BoolOp):
            other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            new = ast.BoolOp(other, node.values)
        elif (
            isinstance(node, ast.BinOp)
            and type(node.op) in ARITHMETIC
            and not (isinstance(node.left, ast.Constant) and isinstance(node.left.value, str))
        ):
            new = ast.BinOp(node.left, ARITHMETIC[type(node.op)](), node.right)
        if new is not None:
            text = ast.unparse(new)
            yield node.lineno, f"{segment} -> {text}", replace(node, f"({text})")
        elif isinstance(node, ast.Constant) and type(node.value) in (int, bool):
            value = not node.value if type(node.value) is bool else node.value + 1
            yield node.lineno, f"{node.value} -> {value}", replace(node, str(value))
        elif isinstance(node, (ast.If, ast.While)) and not isinstance(
            node.test, (ast.Compare, ast.BoolOp)
        ):
            test = text_of(node.test)
            yield node.test.lineno, f"if {test} -> not", replace(node.test, f"(not {test})")
        elif (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)) or isinstance(
            node, ast.AugAssign
        ):
            yield node.lineno, f"drop: {first_line}", replace(node, "pass")
        elif (
            isinstance(node, ast.Return)
            and node.value is not None
            and not (isinstance(node.value, ast.Constant) and node.value.value is None)
        ):
            yield node.lineno, f"return None: {first_line}", replace(node, "return None")


def make_copy(directory: Path) -> None:
    ignore = shutil.ignore_patterns(
        ".venv", ".git", "node_modules", "artifacts", "generated", "__pycache__", ".hypothesis"
    )
    shutil.copytree(ROOT, directory, ignore=ignore)
    modules = ROOT / "tests/interop/node_modules"
    if modules.exists():
        (directory / "tests/interop/node_modules").symlink_to(modules)


def run(copy: Path, module: str, source: str, tests: list[str], timeout: float) -> str:
    """Run the tests with ``module`` holding ``source``: killed, survived or timeout."""
    target = copy / "src" / module
    original = target.read_text()
    target.write_text(source)
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    environment = {**os.environ, "PYTHONPATH": str(copy / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        done = subprocess.run(
            [*command, "-o", "addopts=", *tests],
            cwd=copy,
            env=environment,
            capture_output=True,
            timeout=timeout,
        )
        return "killed" if done.returncode != 0 else "survived"
    except subprocess.TimeoutExpired:
        return "timeout"
    finally:
        target.write_text(original)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", default=DEFAULT_MODULES, help="paths under src/")
    parser.add_argument("--tests", nargs="+", default=[f"tests/{t}.py" for t in DEFAULT_TESTS])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant")
    parser.add_argument("--out", default="mutants.jsonl", help="every result, one per line")
    parser.add_argument(
        "--survivors", help="only the mutants that survived in this file (same source)"
    )
    args = parser.parse_args()

    wanted: set[tuple[str, int, str]] | None = None
    if args.survivors:
        with open(args.survivors) as results:
            rows = [json.loads(line) for line in results]
        # by line too: one text ("1 -> 2") is a mutant on many lines (the source must not
        # have changed since that run, only the tests)
        wanted = {(r["module"], r["line"], r["what"]) for r in rows if r["status"] != "killed"}
    jobs = [
        (module, line, what, mutated)
        for module in args.modules
        for line, what, mutated in mutants((ROOT / "src" / module).read_text())
        if wanted is None or (module, line, what) in wanted
    ]
    with tempfile.TemporaryDirectory(prefix="rtproto-mutants-") as scratch:
        copies: queue.SimpleQueue[Path] = queue.SimpleQueue()
        for n in range(args.workers):
            make_copy(Path(scratch) / str(n))
            copies.put(Path(scratch) / str(n))
        first, module = Path(scratch) / "0", args.modules[0]
        unchanged = (first / "src" / module).read_text()
        baseline = run(first, module, unchanged, args.tests, args.timeout)
        if baseline != "survived":
            print(f"the tests fail without any mutant ({baseline}): fix that first")
            return 2
        print(f"{len(jobs)} mutants, {args.workers} workers", flush=True)

        def attempt(job: tuple[str, int, str, str]) -> str:
            copy = copies.get()
            try:
                return run(copy, job[0], job[3], args.tests, args.timeout)
            finally:
                copies.put(copy)

        counts: dict[str, int] = {}
        with (
            concurrent.futures.ThreadPoolExecutor(args.workers) as pool,
            open(args.out, "w") as out,
        ):
            for (module, line, what, _), status in zip(jobs, pool.map(attempt, jobs), strict=True):
                counts[status] = counts.get(status, 0) + 1
                row = {"module": module, "line": line, "what": what, "status": status}
                out.write(json.dumps(row) + "\n")
                out.flush()  # a long run can be read while it goes
                if status != "killed":
                    print(f"{status}: src/{module}:{line}: {what}", flush=True)
    print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
