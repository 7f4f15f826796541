"""YAML with positions for the manifest: every error says `FILE:LINE:COL: what to change`.

`load_yaml(text, ctx)` parses with a SafeLoader subclass whose mappings remember where they and
each of their keys start; the small checkers below turn a wrong value into one `DltkError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from dltk.errors import DltkError

Where = tuple[int, int]


class MarkedDict(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers where it and each of its keys start (1-based)."""

    where: Where = (0, 0)
    key_where: dict[Any, Where]


class _Loader(yaml.SafeLoader):
    pass


class _YamlKeyError(Exception):
    def __init__(self, where: Where, message: str) -> None:
        super().__init__(message)
        self.where = where


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> MarkedDict:
    loader.flatten_mapping(node)
    result = MarkedDict()
    result.where = (node.start_mark.line + 1, node.start_mark.column + 1)
    result.key_where = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        if key in result:
            raise _YamlKeyError(where, f"duplicate key {key!r}")
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_where[key] = where
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class Context:
    """Builds `FILE:LINE:COL: message` errors for one manifest file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, where: Where | None, message: str) -> DltkError:
        loc = f"{self.path}:{where[0]}:{where[1]}" if where and where[0] else str(self.path)
        return DltkError(f"{loc}: {message}")


def load_yaml(text: str, ctx: Context) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except _YamlKeyError as exc:
        raise ctx.error(exc.where, str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = (mark.line + 1, mark.column + 1) if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ctx.error(where, f"not valid YAML: {problem}") from None


def where(mapping: Any, key: str | None = None) -> Where | None:
    if not isinstance(mapping, MarkedDict):
        return None
    if key is not None and key in mapping.key_where:
        return mapping.key_where[key]
    return mapping.where


def check_keys(ctx: Context, mapping: Mapping[str, Any], known: tuple[str, ...], what: str) -> None:
    for key in mapping:
        if key not in known:
            raise ctx.error(
                where(mapping, key),
                f"{what}: unknown key {key!r}; known keys: {', '.join(known)}",
            )


def int_field(ctx: Context, mapping: Mapping[str, Any], key: str, what: str, minimum: int) -> int:
    value = mapping[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.error(where(mapping, key), f"{what}: {key} must be an integer, got {value!r}")
    if value < minimum:
        raise ctx.error(where(mapping, key), f"{what}: {key} must be >= {minimum}, got {value}")
    return value


def bool_field(ctx: Context, mapping: Mapping[str, Any], key: str, what: str) -> bool:
    value = mapping[key]
    if not isinstance(value, bool):
        raise ctx.error(where(mapping, key), f"{what}: {key} must be true or false, got {value!r}")
    return value


def choice_field(
    ctx: Context, mapping: Mapping[str, Any], key: str, what: str, choices: tuple[str, ...]
) -> str:
    value = mapping[key]
    if value not in choices:
        raise ctx.error(
            where(mapping, key), f"{what}: {key} must be one of {', '.join(choices)}, got {value!r}"
        )
    return str(value)


def mapping_field(
    ctx: Context, parent: Mapping[str, Any], key: str, what: str, example: str
) -> Mapping[str, Any]:
    value = parent[key]
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ctx.error(where(parent, key), f"{what}: {key} must be a mapping like {example}")
    return value
