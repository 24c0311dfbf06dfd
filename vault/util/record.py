"""Plain record classes for the modules `vault token` imports, in place of `dataclasses`
(bench/NOTES.md says why).

`datarecord` gives a class an ``__init__`` built from its annotations (with defaults and
default factories), ``__repr__``, ``__eq__``, ``__post_init__``, and with ``frozen=True``
immutable instances with ``__hash__``; `replace`, `fields` and `asdict` work on its instances.
Type checkers see it as a dataclass (PEP 681 ``dataclass_transform``).

What it cannot do as dataclasses would, it refuses when the class is created, with a TypeError:
a mutable default shared by every instance (a list, dict, set or other unhashable value: use
``field(default_factory=...)``), a subclass inheriting a field whose default comes from a
parent's ``default_factory`` (declare the field again in the subclass), and ``ClassVar``
written qualified (``typing.ClassVar[...]``: import ``ClassVar`` and write it bare), which it
cannot tell from a field without evaluating the annotation.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any, TypeVar, dataclass_transform, overload

    _T = TypeVar("_T")
else:  # at run time both decorators only matter to type checkers

    def overload(func: object) -> object:
        return func

    def dataclass_transform(**_: object) -> Callable[[object], object]:
        return lambda func: func


_MISSING: Any = object()


class FrozenInstanceError(AttributeError):
    pass


class _Field:
    __slots__ = ("default", "factory")

    def __init__(self, default: Any, factory: Callable[[], Any] | None) -> None:
        self.default = default
        self.factory = factory


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] | None = None) -> Any:
    """A field whose default is built per instance (``default_factory``), as in dataclasses."""
    return _Field(default, default_factory)


def _frozen_setattr(self: object, name: str, value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _is_classvar(cls: type, name: str, kind: object) -> bool:
    """Whether the annotation ``kind`` of ``name`` declares a class variable, not a field.

    A string annotation (``from __future__ import annotations``) is read without evaluating
    it: ``ClassVar`` or ``ClassVar[...]`` is one; a qualified ``typing.ClassVar[...]`` is
    refused, as the name before the dot cannot be checked without evaluating it."""
    if isinstance(kind, str):
        text = kind.strip()
        if text == "ClassVar" or text.startswith("ClassVar["):
            return True
        head = text.partition("[")[0].strip()
        if head.rpartition(".")[2] == "ClassVar":
            raise TypeError(
                f"{cls.__name__}: {name!r} is annotated {text!r}; write ClassVar[...] "
                "imported from typing (datarecord reads annotations without evaluating them)"
            )
        return False
    typing = sys.modules.get("typing")  # an evaluated annotation: its module imported typing
    return typing is not None and (
        kind is typing.ClassVar or getattr(kind, "__origin__", None) is typing.ClassVar
    )


def _build(cls: type[_T], frozen: bool) -> type[_T]:
    names: list[str] = []
    inherited_factories: set[str] = set()
    for klass in reversed(cls.__mro__[:-1]):
        inherited_factories.update(klass.__dict__.get("__struct_factories__", ()))
        annotations = klass.__dict__.get("__annotations__", {})  # noqa: RUF063 -- no inspect
        for name, kind in annotations.items():
            if name not in names and not _is_classvar(cls, name, kind):
                names.append(name)
    namespace: dict[str, Any] = {"_MISSING": _MISSING, "_set": object.__setattr__}
    params: list[str] = []
    body: list[str] = []
    factories: list[str] = []
    for name in names:
        default = getattr(cls, name, _MISSING)
        value = name
        if default is _MISSING and name in inherited_factories:
            raise TypeError(
                f"{cls.__name__}: field {name!r} takes its default from a parent's "
                "default_factory, which a subclass does not inherit; declare the field again "
                "here with field(default_factory=...)"
            )
        if isinstance(default, _Field):
            if default.factory is not None:
                factories.append(name)
                namespace[f"_factory_{name}"] = default.factory
                value = f"_factory_{name}() if {name} is _MISSING else {name}"
                default = _MISSING
                params.append(f"{name}=_MISSING")
            else:
                default = default.default
            if default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, default)
        if default is not _MISSING:
            if isinstance(default, (list, dict, set)) or type(default).__hash__ is None:
                raise TypeError(
                    f"{cls.__name__}: field {name!r} has a mutable default "
                    f"({type(default).__name__}), which every instance would share; use "
                    f"field(default_factory={type(default).__name__})"
                )
            namespace[f"_default_{name}"] = default
            params.append(f"{name}=_default_{name}")
        elif value == name:
            if any("=" in p for p in params):
                raise TypeError(
                    f"{cls.__name__}: field {name!r} without a default follows one with"
                )
            params.append(name)
        body.append(f"    _set(self, {name!r}, {value})")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or "    pass")
    fields = tuple(names)

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        """Compiles the class's ``__init__`` at its first instance (most classes a command
        imports are never instantiated), puts it in place, and calls it."""
        exec(source, namespace)  # noqa: S102 -- built from the class's own field names only
        compiled = namespace["__init__"]
        compiled.__qualname__ = f"{cls.__qualname__}.__init__"
        cls.__init__ = compiled  # type: ignore[method-assign]
        compiled(self, *args, **kwargs)

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in fields)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in fields)

    cls.__init__ = init  # type: ignore[method-assign]
    cls.__repr__ = __repr__  # type: ignore[method-assign]
    cls.__eq__ = __eq__  # type: ignore[method-assign]
    cls.__struct_fields__ = fields  # type: ignore[attr-defined]
    cls.__struct_factories__ = tuple(factories)  # type: ignore[attr-defined]
    if frozen:
        cls.__setattr__ = _frozen_setattr  # type: ignore[method-assign]
        cls.__delattr__ = _frozen_delattr  # type: ignore[method-assign]

        def __hash__(self: Any) -> int:
            return hash(tuple(getattr(self, n) for n in fields))

        cls.__hash__ = __hash__  # type: ignore[method-assign]
    else:
        cls.__hash__ = None  # type: ignore[assignment]
    return cls


@overload
def datarecord(cls: type[_T], /) -> type[_T]: ...
@overload
def datarecord(*, frozen: bool = False) -> Callable[[type[_T]], type[_T]]: ...  # noqa: F811


@dataclass_transform(field_specifiers=(field,))
def datarecord(  # noqa: F811
    cls: type[_T] | None = None, /, *, frozen: bool = False
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    if cls is None:
        return lambda c: _build(c, frozen)
    return _build(cls, frozen)


def fields(obj: object) -> tuple[str, ...]:
    names: tuple[str, ...] = type(obj).__struct_fields__  # type: ignore[attr-defined]
    return names


def replace(obj: _T, /, **changes: Any) -> _T:
    """A copy of ``obj`` with some fields changed (``__init__`` and its checks run again)."""
    values = {n: getattr(obj, n) for n in fields(obj)}
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field(s) {sorted(unknown)}")
    values.update(changes)
    return type(obj)(**values)


def asdict(obj: object) -> dict[str, Any]:
    """The fields of ``obj`` as a dict (one level: nested records stay records)."""
    return {n: getattr(obj, n) for n in fields(obj)}
