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
MAX_DEPTH = 32
MAX_NODES = 100_000


class YMap(_Map):
    """A mapping that knows its own line and each key's line (1-based)."""

    line: int
    key_lines: dict[str, int]


class YList(_List):
    line: int
    item_lines: list[int]


def load(text: str, path: str) -> Any:
    """Parse ``text`` (already size-limited by the caller) into plain data with line maps."""
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
        raise ConfigError(f"{path}{where}: not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({type(exc).__name__})") from None
    if node is None:
        return None
    counter = [0]
    return _convert(node, path, set(), 0, counter, yaml)


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
    node: Any, path: str, seen: set[int], depth: int, counter: list[int], yaml: Any
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
        raise ConfigError(f"{path}:{line}: the YAML tag {node.tag!r} is not allowed")
    if isinstance(node, yaml.MappingNode):
        result = YMap()
        result.line = line
        result.key_lines = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError(f"{path}:{line}: YAML merge keys are not allowed")
            key = _convert(key_node, path, seen, depth + 1, counter, yaml)
            if not isinstance(key, str):
                raise ConfigError(
                    f"{path}:{key_node.start_mark.line + 1}: keys must be strings, not {key!r}"
                )
            if key in result:
                raise ConfigError(f"{path}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
            result[key] = _convert(value_node, path, seen, depth + 1, counter, yaml)
            result.key_lines[key] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        items = YList()
        items.line = line
        items.item_lines = []
        for child in node.value:
            items.append(_convert(child, path, seen, depth + 1, counter, yaml))
            items.item_lines.append(child.start_mark.line + 1)
        return items
    constructor = yaml.constructor.SafeConstructor()
    try:
        value = constructor.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, LookupError, TypeError, ArithmeticError):
        # ValueError: `!!int abc`, or an integer of more than 4300 digits; KeyError: `!!bool x`;
        # IndexError: `!!int` on an empty value
        raise ConfigError(f"{path}:{line}: cannot read the value {node.value[:80]!r}") from None
    if isinstance(value, int) and value.bit_length() > 64:
        # 0x followed by 5000 digits parses, but could not even be printed in an error message
        raise ConfigError(f"{path}:{line}: the number {node.value[:40]!r}... is too large")
    return value


def line_of(data: Any, key: str) -> int:
    if isinstance(data, YMap):
        return data.key_lines.get(key, data.line)
    return 0


def where(path: str, data: Any, key: str | None = None) -> str:
    """``path:line`` for a key of a mapping (or the mapping itself)."""
    line = line_of(data, key) if key is not None else getattr(data, "line", 0)
    return f"{path}:{line}" if line else path
