"""Safe YAML for files people write (config and policies), with line numbers kept.

Only plain YAML is accepted: no custom tags, no anchors or aliases (which make alias bombs),
no duplicate keys, and a size limit applied before parsing. Every mapping remembers the line
each key was on, so errors can name file, line and key.
"""

from __future__ import annotations

from collections.abc import Iterator

from vault.errors import ConfigError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any

    _Map = dict[str, Any]
    _List = list[Any]
else:  # the same classes, without typing at run time
    _Map = dict
    _List = list

_STANDARD_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
}
# YAML 1.1's other types: named in an error even from a file of secrets (a fixed vocabulary,
# unlike a local tag such as `!anything`, which could be the secret itself)
_KNOWN_TAGS = {
    f"tag:yaml.org,2002:{name}"
    for name in ("binary", "set", "omap", "pairs", "timestamp", "merge", "value", "yaml")
}
MAX_DEPTH = 32
MAX_NODES = 100_000


class YMap(_Map):
    """A mapping that knows its own line and each key's line (1-based)."""

    line: int
    key_lines: dict[str, int]


class YList(_List):
    line: int
    item_lines: list[int]


def load(text: str, path: str, *, show_values: bool = True) -> Any:
    """Parse ``text`` (already size-limited by the caller) into plain data with line maps.

    ``show_values=False`` is for a file that holds secrets (config.yaml's client_secret): its
    errors then quote nothing from the document, not a value, a key, a tag nor a character the
    parser stumbled on; they name the file and the line. Whatever the type of a secret (a
    string, a number, a list, a mapping whose keys are the secret), it never reaches a
    message. (A schema check after parsing names keys it does not know, never values.)"""
    import yaml

    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _check_events(yaml.parse(text, Loader=loader_cls), path, yaml)
        loader = loader_cls(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = str(exc.problem) if show_values else _unquoted(str(exc.problem))
        raise ConfigError(f"{path}{where}: not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({type(exc).__name__})") from None
    if node is None:
        return None
    counter = [0]
    return _convert(node, path, set(), 0, counter, yaml, show=show_values)


def _unquoted(problem: str) -> str:
    """A parser's complaint without what it quotes of the text ("found character '@' that
    cannot start any token", "found undefined tag handle '!x!'")."""
    import re

    return re.sub(r"'[^']*'|\"[^\"]*\"", "(not shown)", problem)


def _check_events(events: Iterator[Any], path: str, yaml: Any) -> None:
    """One pass over the event stream before any node is built: libyaml composes nested
    collections by recursion in C, so a deep "[[[[..." would crash the process before _convert
    could count its depth; and an anchor leaves no trace on the composed nodes."""
    depth = 0
    for count, event in enumerate(events):
        line = event.start_mark.line + 1
        if count > 2 * MAX_NODES:
            raise ConfigError(f"{path}:{line}: document too large")
        if getattr(event, "anchor", None) is not None:
            raise ConfigError(f"{path}:{line}: YAML anchors and aliases are not allowed")
        if isinstance(event, yaml.events.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(f"{path}:{line}: nested too deeply")
        elif isinstance(event, yaml.events.CollectionEndEvent):
            depth -= 1


def _convert(  # noqa: PLR0917 (a private recursive helper)
    node: Any, path: str, seen: set[int], depth: int, counter: list[int], yaml: Any, *, show: bool
) -> Any:
    line = node.start_mark.line + 1
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise ConfigError(f"{path}:{line}: document too large")
    if depth > MAX_DEPTH:
        raise ConfigError(f"{path}:{line}: nested too deeply")
    if id(node) in seen:
        raise ConfigError(f"{path}:{line}: YAML anchors and aliases are not allowed")
    seen.add(id(node))
    if node.tag not in _STANDARD_TAGS:
        tag = f" {node.tag!r}" if show or node.tag in _KNOWN_TAGS else ""
        raise ConfigError(f"{path}:{line}: the YAML tag{tag} is not allowed")
    if isinstance(node, yaml.MappingNode):
        result = YMap()
        result.line = line
        result.key_lines = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError(f"{path}:{line}: YAML merge keys are not allowed")
            key = _convert(key_node, path, seen, depth + 1, counter, yaml, show=show)
            key_line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                shown = f", not {key!r}" if show else f", not a {kind(key)}"
                raise ConfigError(f"{path}:{key_line}: keys must be strings{shown}")
            if key in result:
                shown = f" {key!r}" if show else ""
                raise ConfigError(f"{path}:{key_line}: duplicate key{shown}")
            result[key] = _convert(value_node, path, seen, depth + 1, counter, yaml, show=show)
            result.key_lines[key] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        items = YList()
        items.line = line
        items.item_lines = []
        for child in node.value:
            items.append(_convert(child, path, seen, depth + 1, counter, yaml, show=show))
            items.item_lines.append(child.start_mark.line + 1)
        return items
    constructor = yaml.constructor.SafeConstructor()
    try:
        value = constructor.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, LookupError, TypeError, ArithmeticError):
        # ValueError: `!!int abc`, or an integer of more than 4300 digits; KeyError: `!!bool x`;
        # IndexError: `!!int` on an empty value
        shown = f" {node.value[:80]!r}" if show else ""
        raise ConfigError(f"{path}:{line}: cannot read the value{shown}") from None
    if isinstance(value, int) and value.bit_length() > 64:
        # 0x followed by 5000 digits parses, but could not even be printed in an error message
        shown = f" {node.value[:40]!r}..." if show else ""
        raise ConfigError(f"{path}:{line}: the number{shown} is too large")
    return value


def kind(value: object) -> str:
    """What a person calls the type of a parsed value, for a message that may not show it."""
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number"}.get(type(value), "string")


def line_of(data: Any, key: str) -> int:
    if isinstance(data, YMap):
        return data.key_lines.get(key, data.line)
    return 0


def where(path: str, data: Any, key: str | None = None) -> str:
    """``path:line`` for a key of a mapping (or the mapping itself)."""
    line = line_of(data, key) if key is not None else getattr(data, "line", 0)
    return f"{path}:{line}" if line else path
