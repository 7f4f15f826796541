"""Loads a Python plugin that lives in a role (library/ module, filter_plugins/) by its path:
the role carries it, so it is not importable as a package."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROLES = Path(__file__).resolve().parents[2] / "roles"


def load_role_plugin(relpath: str) -> ModuleType:
    """roles/<relpath> (e.g. "triton_verify/filter_plugins/verify_state.py") as a module."""
    path = ROLES / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
