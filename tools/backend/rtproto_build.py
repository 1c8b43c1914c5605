"""rtproto's build backend: setuptools', needing mypy too when ``RTPROTO_COMPILE=1`` asks for
the compiled session core (see setup.py), so that an isolated build can compile it."""

from __future__ import annotations

import os

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 (the whole PEP 517 interface)

#: What compiles the session core: mypyc ships inside mypy.
COMPILER = "mypy>=1.10"


def _compiling() -> bool:
    return os.environ.get("RTPROTO_COMPILE", "") == "1"


def get_requires_for_build_wheel(config_settings: dict[str, object] | None = None) -> list[str]:
    if _compiling():
        # setuptools would run setup.py to ask, which needs mypyc already; it asks for nothing
        return [COMPILER]
    return _setuptools.get_requires_for_build_wheel(config_settings)


def get_requires_for_build_editable(
    config_settings: dict[str, object] | None = None,
) -> list[str]:
    if _compiling():  # compiled modules would land in src/ and hide the sources being edited
        raise RuntimeError(
            "RTPROTO_COMPILE=1 builds wheels (pip install . or pip wheel .), not editable"
            " installs: unset it for pip install -e"
        )
    return _setuptools.get_requires_for_build_editable(config_settings)
