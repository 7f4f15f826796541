"""Loads a Python plugin of the dltk.deploy collection (plugins/modules, plugins/filter,
plugins/module_utils) by its path: it is not importable as a package outside Ansible."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def load_role_plugin(relpath: str) -> ModuleType:
    """<repo>/<relpath> (e.g. "plugins/filter/model_dirs.py") as a module."""
    # A plugin imports its collection's module_utils as Ansible loads them: through the checkout's
    # collections/ansible_collections/dltk/deploy link.
    if str(REPO / "collections") not in sys.path:
        sys.path.append(str(REPO / "collections"))
    path = REPO / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
