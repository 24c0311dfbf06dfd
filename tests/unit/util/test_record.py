"""vault.util.record.datarecord: what it builds, and what it refuses when a class is created."""

from __future__ import annotations

import typing
from typing import ClassVar

import pytest

from vault.util.record import FrozenInstanceError, asdict, datarecord, field, fields, replace


@datarecord
class Point:
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)
    scale: ClassVar[int] = 10


@datarecord(frozen=True)
class Frozen:
    a: str
    b: tuple[int, ...] = ()


def test_init_defaults_and_factories() -> None:
    p = Point(1)
    assert (p.x, p.y, p.tags) == (1, 0, [])
    q = Point(1)
    p.tags.append("t")
    assert q.tags == []  # one list per instance
    assert Point(2, 3, ["u"]).tags == ["u"]
    assert fields(p) == ("x", "y", "tags")  # the ClassVar is no field
    assert Point.scale == 10
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, scale=3)  # type: ignore[call-arg]


def test_repr_eq_replace_asdict() -> None:
    p = Point(1, 2)
    assert repr(p) == "Point(x=1, y=2, tags=[])"
    assert p == Point(1, 2)
    assert p != Point(1, 3)
    assert p.__eq__(object()) is NotImplemented
    assert replace(p, y=5) == Point(1, 5)
    assert asdict(p) == {"x": 1, "y": 2, "tags": []}
    with pytest.raises(TypeError, match="no field"):
        replace(p, z=1)
    with pytest.raises(TypeError):
        hash(p)  # mutable: unhashable, as dataclasses


def test_frozen() -> None:
    f = Frozen("a", (1,))
    with pytest.raises(FrozenInstanceError):
        f.a = "b"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del f.a
    assert hash(f) == hash(Frozen("a", (1,)))
    assert {f, Frozen("a", (1,))} == {f}


def test_post_init_and_inheritance() -> None:
    seen: list[object] = []

    @datarecord
    class Base:
        a: int
        b: list[int] = field(default_factory=list)

        def __post_init__(self) -> None:
            seen.append(self)

    @datarecord
    class Child(Base):
        b: list[int] = field(default_factory=lambda: [1])  # declared again: fine
        c: str = "c"

    child = Child(0)
    assert (child.a, child.b, child.c) == (0, [1], "c")
    assert fields(child) == ("a", "b", "c")
    assert seen == [child]


def test_evaluated_classvar_annotations_are_no_fields() -> None:
    # Without `from __future__ import annotations` the annotation is the typing object itself.
    source = (
        "import typing\n"
        "@datarecord\n"
        "class Plain:\n"
        "    x: int\n"
        "    c: typing.ClassVar[int] = 1\n"
        "    d: typing.ClassVar = 2\n"
    )
    namespace: dict[str, object] = {"datarecord": datarecord}
    # dont_inherit: not this module's `from __future__ import annotations`.
    exec(compile(source, "<plain>", "exec", dont_inherit=True), namespace)  # noqa: S102
    plain: typing.Any = namespace["Plain"]
    assert fields(plain(1)) == ("x",)


def test_a_field_whose_type_starts_with_classvar_is_a_field() -> None:
    @datarecord
    class Holder:
        kind: ClassVariant

    assert fields(Holder(ClassVariant())) == ("kind",)


class ClassVariant:
    pass


@pytest.mark.parametrize("default", [[], {}, set(), [1], {"k": 1}, bytearray()])
def test_mutable_default_is_refused(default: object) -> None:
    with pytest.raises(TypeError, match=r"'items' has a mutable default .*default_factory"):

        @datarecord
        class Shared:
            items: object = default


def test_mutable_default_through_field_is_refused() -> None:
    with pytest.raises(TypeError, match="'items' has a mutable default"):

        @datarecord
        class Shared:
            items: list[int] = field(default=[])


def test_subclass_losing_a_default_factory_is_refused() -> None:
    @datarecord
    class Base:
        a: int = 0
        items: list[int] = field(default_factory=list)

    with pytest.raises(TypeError, match=r"Child: field 'items' .* parent's default_factory"):

        @datarecord
        class Child(Base):
            extra: int = 1

    with pytest.raises(TypeError, match="parent's default_factory"):

        @datarecord
        class Plain(Base):  # not a new field at all
            pass


def test_qualified_classvar_is_refused() -> None:
    with pytest.raises(TypeError, match=r"'limit' is annotated 'typing.ClassVar\[int\]'"):

        @datarecord
        class Limits:
            name: str
            limit: typing.ClassVar[int] = 3

    with pytest.raises(TypeError, match="ClassVar"):

        @datarecord
        class Bare:
            limit: typing.ClassVar = 3
