"""``Secret``: a string that will not show itself by accident."""

from __future__ import annotations

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from hmac import compare_digest
    from typing import NoReturn
else:
    try:
        from _operator import _compare_digest as compare_digest  # what hmac falls back to
    except ImportError:  # other interpreters
        from hmac import compare_digest

__all__ = ["MASK", "Secret", "compare_digest"]

MASK = "********"


class Secret:
    """Holds a secret string. ``repr``, ``str`` and ``format`` are masked; ``reveal()`` is the
    one way out. It refuses to be pickled or copied into a hash table key by value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret holds a str")
        self._value = value

    def reveal(self) -> str:
        """The secret itself. Call it only where the secret must leave the process."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        return self
