"""The dltk package's shape: no import cycles, CLI modules only at the top of the import graph,
and an explicit command registry (cli.COMMANDS) that builds the same `dltk` commands as before.

The import graph is read with `ast` from every module of the package (no module is imported),
and counts every import statement: module level, inside functions (lazy) and under
`if TYPE_CHECKING:` - a cycle hidden behind a lazy import is still a cycle for the reader.

A CLI module is one that defines a top-level `add_parser` function: it adds a `dltk` command.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import pytest

import dltk
from dltk import cli

PACKAGE_DIR = Path(dltk.__file__).resolve().parent

# The `dltk` commands of `dltk --help`, as before the registry was made explicit.
COMMANDS_BEFORE = (
    "export",
    "repo",
    "validate",
    "engines",
    "serve",
    "verify",
    "bench",
    "profile",
    "mirror",
    "release",
    "driver",
    "drill",
    "tune",
)
# release.py is both the release table that other modules read and `dltk release`; it stays one
# file because images/dltk/Dockerfile copies it alone into the image build (with errors.py).
CLI_MODULES_IMPORTED_AS_DATA = {"dltk.release"}


def module_name(path: Path, package_dir: Path = PACKAGE_DIR) -> str:
    parts = path.relative_to(package_dir.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(package_dir: Path = PACKAGE_DIR) -> dict[str, ast.Module]:
    """Every module of the package (python_models/ are Triton's, not the package's) by name."""
    return {
        module_name(path, package_dir): ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(package_dir.rglob("*.py"))
        if "python_models" not in path.parts
    }


def _imported(node: ast.AST, current: str, modules: set[str]) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    if not isinstance(node, ast.ImportFrom):
        return set()
    base = node.module or ""
    if node.level:
        # `from . import x` / `from .x import y`, relative to the current package
        package = current.split(".")[: -node.level] if node.level else []
        base = ".".join([*package, base] if base else package)
    found = {base} if base in modules else set()
    # `from dltk.verify import records`: the submodule, not (only) the package
    found |= {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules}
    return found


def import_graph(trees: dict[str, ast.Module]) -> dict[str, set[str]]:
    """module -> the package modules it imports (a package's __init__ counts as a module)."""
    names = set(trees)
    return {
        name: {dep for node in ast.walk(tree) for dep in _imported(node, name, names)} - {name}
        for name, tree in trees.items()
    }


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph.get(node, ())):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def is_cli_module(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.FunctionDef) and node.name == "add_parser" for node in tree.body
    )


def test_find_cycles_sees_a_two_and_a_three_module_cycle() -> None:
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c", "a"}, "f": {"a"}}
    assert find_cycles(graph) == [["a", "b"], ["c", "d", "e"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_counts_lazy_and_type_checking_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from dltk.b import X\n"
        "def f():\n    import dltk.c\n    from dltk.p import d\n"
    )
    trees = {n: ast.parse("") for n in ("dltk.b", "dltk.c", "dltk.p", "dltk.p.d")}
    trees["dltk.a"] = ast.parse(source)
    assert import_graph(trees)["dltk.a"] == {"dltk.b", "dltk.c", "dltk.p", "dltk.p.d"}


def test_the_package_has_no_import_cycle() -> None:
    cycles = find_cycles(import_graph(package_modules()))
    assert cycles == [], f"import cycles in {PACKAGE_DIR}: {cycles}"


def test_no_module_but_a_cli_module_imports_a_cli_module() -> None:
    trees = package_modules()
    cli_modules = {name for name, tree in trees.items() if is_cli_module(tree)}
    wrong = sorted(
        f"{name} imports {dep}"
        for name, deps in import_graph(trees).items()
        if name not in cli_modules and name != "dltk.cli"
        for dep in deps
        if dep in cli_modules - CLI_MODULES_IMPORTED_AS_DATA
    )
    assert wrong == [], "planning or library modules import a `dltk` command module:\n" + "\n".join(
        wrong
    )


def test_the_registry_names_every_cli_module_and_only_those() -> None:
    trees = package_modules()
    cli_modules = {name for name, tree in trees.items() if is_cli_module(tree)}
    assert sorted(cli.COMMANDS.values()) == sorted(cli_modules)


def test_the_parser_builds_the_same_commands_as_before() -> None:
    parser = cli.build_parser()
    (subparsers,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert tuple(subparsers.choices) == COMMANDS_BEFORE
    assert tuple(cli.COMMANDS) == COMMANDS_BEFORE


@pytest.mark.parametrize("command", COMMANDS_BEFORE)
def test_each_registered_module_adds_its_own_command(command: str) -> None:
    import importlib

    module = importlib.import_module(cli.COMMANDS[command])
    subparsers = argparse.ArgumentParser().add_subparsers()
    module.add_parser(subparsers)
    assert list(subparsers.choices) == [command]


def test_dltk_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    usage = capsys.readouterr().out
    for command in COMMANDS_BEFORE:
        assert f"\n    {command} " in usage or f"\n    {command}\n" in usage, command


@pytest.mark.parametrize("command", COMMANDS_BEFORE)
def test_a_command_gets_the_same_parser_built_alone(command: str) -> None:
    """`dltk COMMAND` builds COMMAND's parser alone: its help and the arguments it parses are
    the whole parser's."""

    def sub(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        (subparsers,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return subparsers.choices[command]

    alone, whole = cli.build_parser([command]), cli.build_parser()
    assert sub(alone).format_help() == sub(whole).format_help()
    (alone_subparsers,) = (a for a in alone._actions if isinstance(a, argparse._SubParsersAction))
    assert list(alone_subparsers.choices) == [command]


def test_dltk_release_imports_no_other_command() -> None:
    """The deploy's preflight runs `dltk release`: it does not import torch, numpy, tritonclient."""
    import subprocess
    import sys

    probe = (
        "import sys; from dltk.cli import main; main(['release']); "
        "heavy = sorted(m for m in ('numpy', 'torch', 'onnx', 'tritonclient', 'dltk.export') "
        "if m in sys.modules); print('HEAVY', heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.splitlines()[-1] == "HEAVY []", out.stdout
