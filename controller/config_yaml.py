"""Reading the YAML (or JSON) documents of a config: refused whole when they repeat a key or
nest too deep, with the field path and line where that happens.

libyaml's loader (`yaml.CSafeLoader`) parses where PyYAML has it; both checks add only a
length comparison per mapping and one walk over the containers to loading a fleet.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from controller.errors import ConfigError

MAX_NESTING = 32
"""The deepest nesting a config document may have (a daemon config needs 6 levels)."""

FieldPath = tuple[str | int, ...]

_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's loader where PyYAML was built with it: about ten times faster on large fleets."""


def field_path(parts: Sequence[object]) -> str:
    """`('applications', 0, 'slo')` as `applications[0].slo`; `<root>` for no parts."""
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "<root>"


class _DuplicateKey(Exception):
    """A mapping of the document repeats a key."""

    def __init__(self, path: FieldPath, line: int, first_line: int) -> None:
        super().__init__(path)
        self.path = path
        self.line = line
        self.first_line = first_line


_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _Loader(_YAML_LOADER):
    """The safe loader, refusing a mapping that repeats a key.

    A plain scalar that looks like a date stays a string: no config field is a date, and
    one out of range (`2024-13-45`) would otherwise fail to load without naming its field.
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
        for first, resolvers in _YAML_LOADER.yaml_implicit_resolvers.items()
    }
    _root: Node | None = None

    def construct_document(self, node: Node) -> Any:
        """The document's data; remembers its root to locate a repeated key."""
        self._root = node
        return super().construct_document(node)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """The mapping of `node`; raises _DuplicateKey when one of its own keys repeats."""
        own = node.value
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        # Merge keys (`<<`) put the merged pairs in a new list; `own` keeps the node's own.
        if node.value is own and len(mapping) == len(own):
            return mapping
        first: dict[Any, Node] = {}
        for key_node, _ in own:
            key = self.construct_object(key_node, deep=True)
            if key in first:
                path = (*_node_path(self._root, node), _label(key))
                line = key_node.start_mark.line + 1
                raise _DuplicateKey(path, line, first[key].start_mark.line + 1)
            first[key] = key_node
        return mapping


def _label(key: object) -> str:
    return key if isinstance(key, str) else str(key)


def _node_path(root: Node | None, target: Node) -> FieldPath:
    """The field path from `root` to `target` in a composed document (no recursion)."""
    stack: list[tuple[Node, FieldPath]] = [] if root is None else [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for key_node, value in node.value:
                key = key_node.value if isinstance(key_node, ScalarNode) else "?"
                stack.append((value, (*path, key)))
        elif isinstance(node, SequenceNode):
            stack.extend((value, (*path, i)) for i, value in enumerate(node.value))
    return ()


def _deeper_than(data: object, limit: int) -> bool:
    """Whether containers in `data` nest more than `limit` deep (no recursion).

    A container reached through several aliases is walked again only when reached deeper,
    so a document of aliases to aliases costs its containers, not its expansion.
    """
    reached: dict[int, int] = {}
    stack = [(data, 1)] if type(data) is dict or type(data) is list else []
    while stack:
        obj, depth = stack.pop()
        if depth > limit:
            return True
        depth += 1
        for value in obj.values() if type(obj) is dict else obj:
            if (type(value) is dict or type(value) is list) and reached.get(id(value), 0) < depth:
                reached[id(value)] = depth
                stack.append((value, depth))
    return False


def _deep_path(data: object, limit: int) -> FieldPath:
    """The path of the first container in `data` that nests more than `limit` deep."""
    reached: dict[int, int] = {}
    stack: list[tuple[Any, FieldPath]] = [(data, ())]
    while stack:
        obj, path = stack.pop()
        if len(path) >= limit:
            return path
        depth = len(path) + 1
        for key, value in obj.items() if type(obj) is dict else enumerate(obj):
            if (type(value) is dict or type(value) is list) and reached.get(id(value), 0) < depth:
                reached[id(value)] = depth
                stack.append((value, (*path, _label(key))))
    return ()


@dataclass(frozen=True)
class _Stop:
    """Where reading a text event by event stopped: too deep, or no longer YAML."""

    path: FieldPath
    too_deep: bool


def _where_reading_stops(text: str, limit: int, loader: Any = _YAML_LOADER) -> _Stop | None:
    """Where `text` nests more than `limit` deep or stops being YAML, read event by event.

    None when every event reads within the limit. For text the loader cannot build:
    libyaml stops at 1,000 levels and at a syntax error saying only the line, and a parser
    in Python recurses.
    """
    frames: list[list[Any]] = []  # per open container: [is_mapping, nodes seen, key, label]
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.CollectionEndEvent):
                frames.pop()
            elif isinstance(event, yaml.NodeEvent):
                label = _event_label(frames[-1], event) if frames else None
                if isinstance(event, yaml.CollectionStartEvent):
                    frames.append([isinstance(event, yaml.MappingStartEvent), 0, None, label])
                    if len(frames) > limit:
                        return _Stop(tuple(f[3] for f in frames[1:]), too_deep=True)
    except (yaml.YAMLError, RecursionError):
        return _Stop(_pending_path(frames), too_deep=False)
    return None


def _pending_path(frames: list[list[Any]]) -> FieldPath:
    """The path of the node the reader was about to read: a mapping's value, a list's item."""
    path = tuple(f[3] for f in frames[1:])
    if not frames:
        return path
    is_mapping, seen, key, _ = frames[-1]
    if not is_mapping:
        return (*path, seen)
    return (*path, str(key)) if seen % 2 else path


def _event_label(parent: list[Any], event: yaml.NodeEvent) -> str | int:
    """The path part of a node inside `parent`: its key, its index, or `?` for a key node."""
    seen = parent[1]
    parent[1] += 1
    if not parent[0]:
        return int(seen)
    if seen % 2:
        return str(parent[2])
    parent[2] = event.value if isinstance(event, yaml.ScalarEvent) else "?"
    return "?"


def read_text(path: Path, what: str) -> str:
    """The text of the file at `path`, or a ConfigError naming it and what it was to be."""
    try:
        return path.read_text()
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: the {what} is not UTF-8 text: {err.reason}") from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the {what}: {err.strerror or err}") from err


def read_yaml(path: Path, what: str) -> object:
    """The YAML document at `path`, or a ConfigError naming the file and what it was to be.

    A `.json` file is read with the json module: JSON is YAML, and a generated fleet in
    JSON parses in a fraction of the time. A repeated key or nesting deeper than
    MAX_NESTING is refused with its field path.
    """
    text = read_text(path, what)
    data = _parse_json(path, text) if path.suffix == ".json" else _parse_yaml(path, text)
    if _deeper_than(data, MAX_NESTING):
        raise _too_deep(path, _deep_path(data, MAX_NESTING))
    return data


def _too_deep(path: Path, where: FieldPath) -> ConfigError:
    return ConfigError(f"{path}: {field_path(where)}: nested deeper than {MAX_NESTING} levels")


def _parse_yaml(path: Path, text: str) -> object:
    try:
        return yaml.load(text, Loader=_Loader)
    except _DuplicateKey as dup:
        raise ConfigError(
            f"{path}: {field_path(dup.path)}: the key is repeated at line {dup.line} "
            f"(first at line {dup.first_line})"
        ) from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, AttributeError) as err:
        # Also what a constructor of an explicit tag raises (`!!float nope`).
        stop = _where_reading_stops(text, MAX_NESTING)
        mark = getattr(err, "problem_mark", None)
        if (stop is None or not stop.too_deep) and mark is not None and _at_libyaml_depth(err):
            # libyaml scans a flow collection ahead before it emits its events, so they may
            # end before the deep value starts; PyYAML's own parser, which has no nesting
            # limit, reads the text up to where libyaml stopped.
            stop = _where_reading_stops(text[: mark.index], MAX_NESTING, yaml.SafeLoader) or stop
        if stop is not None and stop.too_deep:
            raise _too_deep(path, stop.path) from err
        where = f"{field_path(stop.path)}: " if stop is not None and stop.path else ""
        raise ConfigError(f"{path}: {where}{_yaml_problem(err)}") from err


def _at_libyaml_depth(err: Exception) -> bool:
    """Whether libyaml gave up at its own nesting limit (it has no code for it, only words)."""
    return "nesting depth" in str(getattr(err, "problem", ""))


def _yaml_problem(err: Exception) -> str:
    """Where the text stops being YAML, and why, in one line."""
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    return f"{where}not valid YAML: {problem}" + (f" ({context})" if context else "")


class _RepeatedKey(Exception):
    """A JSON object repeats a key."""


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        raise _RepeatedKey
    return mapping


def _parse_json(path: Path, text: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except (_RepeatedKey, RecursionError) as err:
        # JSON is YAML: the YAML reader names the repeated key, or where it nests too deep.
        _parse_yaml(path, text)
        problem = "a key is repeated" if isinstance(err, _RepeatedKey) else "nested too deep"
        raise ConfigError(f"{path}: <root>: {problem}") from None
    except ValueError as err:
        raise ConfigError(f"{path}: not valid JSON: {err}") from err
