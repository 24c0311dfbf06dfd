"""Log an event through the redacting pipeline, if -v/--debug configured it; otherwise nothing.

It never imports structlog (`vault token` must not): it checks whether ``vault.util.log`` was
loaded, and does nothing when it was not."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any


def log(event: str, *, level: str = "info", **fields: Any) -> None:
    module = sys.modules.get("vault.util.log")
    if module is None:
        return
    getattr(module.get_logger("vault"), level)(event, **fields)
