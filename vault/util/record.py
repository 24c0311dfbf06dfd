"""Plain record classes for the modules `vault token` imports.

`dataclasses` costs a short-lived command ~10 ms to import (it pulls in `inspect`) and ~0.7 ms
per class (several generated methods, each compiled separately): over the twenty classes on the
`vault token` path that was a fifth of the command's run time. `datarecord` keeps the part we use
(an ``__init__`` from the annotations with defaults and default factories, ``__repr__``,
``__eq__``, frozen instances with ``__hash__``, ``__post_init__``, ``replace``) and compiles
one function per class. Type checkers see it as a dataclass (PEP 681 ``dataclass_transform``).
"""

from __future__ import annotations

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


def _build(cls: type[_T], frozen: bool) -> type[_T]:
    names: list[str] = []
    for klass in reversed(cls.__mro__[:-1]):
        annotations = klass.__dict__.get("__annotations__", {})  # noqa: RUF063 -- no inspect
        for name, kind in annotations.items():
            if name not in names and not str(kind).startswith("ClassVar"):
                names.append(name)
    namespace: dict[str, Any] = {"_MISSING": _MISSING, "_set": object.__setattr__}
    params: list[str] = []
    body: list[str] = []
    for name in names:
        default = getattr(cls, name, _MISSING)
        value = name
        if isinstance(default, _Field):
            if default.factory is not None:
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
    exec(source, namespace)  # noqa: S102 -- built from the class's own field names only
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    fields = tuple(names)

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
