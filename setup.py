"""Builds rtproto: a pure-Python wheel, or with ``RTPROTO_COMPILE=1`` in the environment a
platform wheel whose session core is compiled to C by mypyc (docs/session.md, "Speed")."""

from __future__ import annotations

import os
import shutil
from typing import Any

from setuptools import setup
from setuptools.command.build import build

#: The per-message work of ClientSession: what the compiled build compiles.
COMPILED_MODULES = [
    "src/rtproto/session/core.py",
    "src/rtproto/session/history.py",
    "src/rtproto/session/playback.py",
    "src/rtproto/session/sequencer.py",
]


def ext_modules() -> list[Any]:
    if os.environ.get("RTPROTO_COMPILE", "") != "1":
        return []
    from mypyc.build import mypycify

    return mypycify(COMPILED_MODULES, opt_level="3", group_name="rtproto_session")


class FreshBuild(build):
    """Builds into an emptied ``build/.../lib``: a module deleted from src/ must not ride
    along into the wheel from an earlier build's copy."""

    def run(self) -> None:
        shutil.rmtree(self.build_lib, ignore_errors=True)
        super().run()


compiled = ext_modules()
# A separate build folder, so that a pure build never packs a compiled build's leftovers.
setup(
    cmdclass={"build": FreshBuild},
    ext_modules=compiled,
    options={"build": {"build_base": "build/compiled"}} if compiled else {},
)
