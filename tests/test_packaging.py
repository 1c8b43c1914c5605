"""The wheel installs rtproto.adapters from src/adapters and no top-level ``adapters``."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


#: A module an earlier build copied to build/lib that src/ no longer has.
STALE = ROOT / "build" / "lib" / "rtproto" / "_deleted_since.py"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    STALE.parent.mkdir(parents=True, exist_ok=True)
    STALE.write_text("LEFT_OVER = True\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("rtproto-*.whl")
    return found


def test_wheel_layout(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "rtproto/adapters/__init__.py" in names
    assert "rtproto/py.typed" in names
    assert "rtproto/data/hello.wav" in names
    assert "rtproto/data/demo.html" in names
    assert not [n for n in names if n.startswith("adapters/")]
    # pure Python unless RTPROTO_COMPILE=1 (tests/test_compiled.py), even after such a build
    assert wheel.name.endswith("-py3-none-any.whl")
    assert not [n for n in names if n.endswith((".so", ".pyd", ".c"))]


def test_wheel_leaves_out_what_src_no_longer_has(wheel: Path) -> None:
    # the in-tree build empties build/lib first (setup.py's FreshBuild)
    assert "rtproto/_deleted_since.py" not in zipfile.ZipFile(wheel).namelist()
    assert not STALE.exists()


def test_wheel_carries_every_package(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    src = ROOT / "src"
    for init in src.rglob("__init__.py"):
        relative = init.relative_to(src).as_posix()
        expected = "rtproto/" + relative if relative.startswith("adapters/") else relative
        assert expected in names, f"{relative} is missing from the wheel"


def test_adapters_import_from_the_wheel(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    probe = (
        "import importlib.util, sys; sys.path.insert(0, sys.argv[1]);"
        "import rtproto.adapters as a;"
        "assert a.__file__.startswith(sys.argv[1]), a.__file__;"
        "assert importlib.util.find_spec('adapters') is None"
    )
    subprocess.run([sys.executable, "-I", "-c", probe, str(target)], check=True, cwd=tmp_path)


def test_the_build_backend_asks_for_mypy_only_to_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """tools/backend: a pure build needs setuptools alone; RTPROTO_COMPILE=1 adds mypy for
    wheels and refuses editable installs (compiled modules would hide the sources)."""
    spec = importlib.util.spec_from_file_location(
        "rtproto_build", ROOT / "tools" / "backend" / "rtproto_build.py"
    )
    assert spec is not None and spec.loader is not None
    backend = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(backend)
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("RTPROTO_COMPILE", raising=False)
    assert not any("mypy" in r for r in backend.get_requires_for_build_wheel())
    monkeypatch.setenv("RTPROTO_COMPILE", "1")
    assert backend.get_requires_for_build_wheel() == ["mypy>=1.10"]
    with pytest.raises(RuntimeError, match="not editable installs"):
        backend.get_requires_for_build_editable()
