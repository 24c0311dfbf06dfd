"""The one logging pipeline of vault: structlog and the standard library, both redacted.

``configure()`` sets it up once, before the first log call (calling it again reconfigures).
Every event, whether from ``get_logger()`` (structlog) or from a standard library logger (httpx,
httpcore, warnings), goes through the same chain and ends as one line on stderr::

    structlog event                                   stdlib LogRecord (httpx, ...)
      filter_by_level                                   |
      merge_contextvars                                 |
      add_logger_name, add_log_level                    |
      PositionalArgumentsFormatter                      |
      TimeStamper                                       |
      StackInfoRenderer                                 |
      format_exc_info                                   |
      redact_event          (masked before logging      |
      wrap_for_formatter     sees the record)           |
        `--> root handler: ProcessorFormatter <---------'
               foreign_pre_chain: add_logger_name, add_log_level, TimeStamper
               processors: remove_processors_meta, format_exc_info, redact_event,
                           ScrubbingRenderer(ConsoleRenderer(plain tracebacks))

``redact_event`` always runs after exceptions are formatted (so traceback text is scrubbed) and
before rendering; ``ScrubbingRenderer`` runs ``scrub_text`` over the finished line.

Under ``--debug``, ``http_event_hooks()`` logs each HTTP request and response (see there).

Nothing heavy is imported here at module level: structlog, logging and httpx are imported by the
functions that need them, so importing this module imports none of them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

from vault.util.text import show_unsafe

if TYPE_CHECKING:
    import logging

    import httpx
    from structlog.stdlib import BoundLogger
    from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = [
    "BODY_LIMIT",
    "ScrubbingRenderer",
    "configure",
    "get_logger",
    "http_event_hooks",
    "redact_event",
]

BODY_LIMIT = 4096  # bytes of a request or response body logged under --debug
HTTP_LOGGER = "vault.http"

_state: dict[str, Any] = {"configured": False, "handler": None}

# No raw unsafe character (vault.util.text.UNSAFE_TABLE: controls, terminal escapes, line
# separators, bidi and invisible characters) in a line: a line from a hostile server must not
# rewrite the terminal or forge a second log line. They are written as escapes instead.


def redact_event(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """The redaction processor: masks sensitive keys at any depth, ``Secret`` instances, and
    secrets inside every string (the event message and formatted tracebacks included)."""
    from vault.util.redact import redact_mapping

    redacted = redact_mapping(event_dict)
    for key, value in redacted.items():
        if isinstance(value, str):
            # The renderer prints top-level strings as they are: no raw unsafe characters.
            # Tracebacks and stacks keep their line breaks (and tabs).
            keep = "\t\n" if key in ("exception", "stack") else ""
            redacted[key] = show_unsafe(value, keep=keep)
    return redacted


class ScrubbingRenderer:
    """Wraps the renderer: ``scrub_text`` over the finished line catches what slipped through."""

    def __init__(self, inner: Callable[[WrappedLogger, str, EventDict], str]) -> None:
        self.inner = inner

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        from vault.util.redact import scrub_text

        return scrub_text(self.inner(logger, method, event_dict))


def _level(verbosity: int, debug: bool) -> int:
    import logging

    if debug or verbosity >= 2:
        return logging.DEBUG
    if verbosity >= 1:
        return logging.INFO
    return logging.WARNING


def _wants_colors(stream: TextIO) -> bool:
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _make_handler(stream: TextIO | None) -> logging.Handler:
    import logging

    class _Handler(logging.Handler):
        """Writes one formatted line to ``stream`` (or to whatever ``sys.stderr`` is at the
        time). A failure to format never prints the record: it would not be redacted."""

        def __init__(self, target: TextIO | None) -> None:
            super().__init__()
            self.target = target

        def emit(self, record: logging.LogRecord) -> None:
            try:
                line = self.format(record)
                out = self.target if self.target is not None else sys.stderr
                out.write(line + "\n")
                out.flush()
            except RecursionError:
                raise
            except Exception:
                self.handleError(record)

        def handleError(self, record: logging.LogRecord) -> None:
            kind = sys.exc_info()[0]
            name = kind.__name__ if kind is not None else "error"
            try:
                out = self.target if self.target is not None else sys.stderr
                out.write(f"vault: a log line could not be written ({name})\n")
            except Exception:  # noqa: S110 (nowhere left to report it)
                pass

    return _Handler(stream)


def configure(verbosity: int = 0, *, debug: bool = False, stream: TextIO | None = None) -> None:
    """Configure structlog and the standard library's logging for the whole program.

    Levels: WARNING by default, INFO with ``verbosity`` 1 (``-v``), DEBUG with ``debug``
    (``--debug``) or ``verbosity`` 2 and more. Lines go to ``stream``, by default whatever
    ``sys.stderr`` is when a line is written. Colours only when the stream is a terminal and
    ``NO_COLOR`` is not set. The root logger's handlers are replaced by one that renders through
    the redacting chain, so no other handler prints an unredacted record. Calling it again
    reconfigures.
    """
    import logging

    import structlog

    level = _level(verbosity, debug)
    colors = _wants_colors(stream if stream is not None else sys.stderr)
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    renderer = ScrubbingRenderer(
        structlog.dev.ConsoleRenderer(
            colors=colors,
            exception_formatter=structlog.dev.plain_traceback,
            sort_keys=True,
        )
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            timestamper,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
    )
    handler = _make_handler(stream)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    previous = _state["handler"]
    if previous is not None:
        previous.close()
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)

    processors: list[Processor] = [
        structlog.stdlib.filter_by_level,
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        timestamper,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redact_event,
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ]
    structlog.configure(
        processors=processors,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        # Not cached: a later configure() (another level, another stream) applies to loggers
        # already handed out.
        cache_logger_on_first_use=False,
    )
    _state["handler"] = handler
    _state["configured"] = True


def get_logger(name: str | None = None) -> BoundLogger:
    """A structlog logger. Events are names, data are keys:
    ``get_logger(__name__).info("token.stored", name=name, scopes=scopes)``.
    Configures logging with the defaults if ``configure()`` has not run, so nothing is ever
    written through structlog's unredacted default configuration."""
    import structlog

    if not _state["configured"]:
        configure()
    return structlog.stdlib.get_logger(name or "vault")


# --- HTTP troubleshooting ---------------------------------------------------------------------


def http_event_hooks() -> dict[str, list[Callable[..., Any]]]:
    """Event hooks for ``httpx.Client(event_hooks=...)`` (sync clients only) that log, at DEBUG on
    the ``vault.http`` logger, each request (method, URL, headers, body) and each response
    (status, headers, body up to ``BODY_LIMIT`` bytes). Everything passes the redactor.

    Response bodies: the response hook runs before the body is read, and it never reads it. If
    the body is already there (a response built in memory), it is logged at once. Otherwise the
    response's byte stream is wrapped in a pass-through that keeps a copy of the first
    ``BODY_LIMIT`` raw bytes while the caller reads, and logs ``http.response.body`` when the
    response is closed. Streaming callers are unaffected (``iter_raw``, ``iter_bytes`` and size
    limits work as before, nothing is read ahead); a body the caller never reads is not logged.
    Compressed bodies are logged as their size and encoding only.

    The hooks do nothing (and wrap nothing) unless DEBUG is enabled, and a failure inside them
    never fails the request.
    """
    return {"request": [_log_request], "response": [_log_response]}


def _debug_enabled() -> bool:
    import logging

    return logging.getLogger(HTTP_LOGGER).isEnabledFor(logging.DEBUG)


def _decode_body(content: bytes, content_type: str, *, truncated: bool) -> dict[str, Any]:
    """The body as something the redactor understands best: a form becomes a dict, JSON a
    dict or list (so values are masked by key), anything else text (scrubbed as text)."""
    import json
    import urllib.parse

    content_type = content_type.lower()
    if not content:
        return {}
    if not truncated and "application/x-www-form-urlencoded" in content_type:
        try:
            pairs = urllib.parse.parse_qsl(
                content.decode("ascii"), keep_blank_values=True, strict_parsing=True
            )
            return {"form": dict(pairs)}
        except (UnicodeDecodeError, ValueError):
            pass
    if not truncated and "json" in content_type:
        try:
            return {"json": json.loads(content)}
        except (ValueError, RecursionError):
            pass
    text = content[:BODY_LIMIT].decode("utf-8", "replace")
    return {"body": text, "truncated": True} if truncated else {"body": text}


def _head_of(content: bytes, content_type: str) -> dict[str, Any]:
    """The first BODY_LIMIT bytes of a body already in memory, decoded for the log."""
    return _decode_body(content[:BODY_LIMIT], content_type, truncated=len(content) > BODY_LIMIT)


def _log_request(request: httpx.Request) -> None:
    try:
        if not _debug_enabled():
            return
        import httpx

        fields: dict[str, Any] = {
            "method": request.method,
            "url": str(request.url),
            "headers": dict(request.headers),
        }
        try:
            content = request.content
        except httpx.RequestNotRead:
            fields["body"] = "<streaming request body, not logged>"
        else:
            fields.update(_head_of(content, request.headers.get("content-type", "")))
        get_logger(HTTP_LOGGER).debug("http.request", **fields)
    except Exception:  # noqa: S110 (logging must never break a request)
        pass


def _log_response(response: httpx.Response) -> None:
    try:
        if not _debug_enabled():
            return
        import httpx

        request = response.request
        fields: dict[str, Any] = {
            "method": request.method,
            "url": str(request.url),
            "status": response.status_code,
            "reason": response.reason_phrase,
            "http_version": response.http_version,
            "headers": dict(response.headers),
        }
        try:
            content = response.content
        except httpx.ResponseNotRead:
            if isinstance(response.stream, httpx.SyncByteStream):
                response.stream = _tee_stream(response, response.stream)
                fields["body"] = "<logged as http.response.body when read>"
        else:
            fields.update(_head_of(content, response.headers.get("content-type", "")))
        get_logger(HTTP_LOGGER).debug("http.response", **fields)
    except Exception:  # noqa: S110 (logging must never break a request)
        pass


def _tee_stream(response: httpx.Response, inner: httpx.SyncByteStream) -> httpx.SyncByteStream:
    import httpx

    class _Tee(httpx.SyncByteStream):
        def __init__(self) -> None:
            self.head = bytearray()
            self.size = 0
            self.started = False
            self.logged = False

        def __iter__(self) -> Iterator[bytes]:
            self.started = True
            for chunk in inner:
                if len(self.head) <= BODY_LIMIT:
                    self.head += chunk[: BODY_LIMIT + 1 - len(self.head)]
                self.size += len(chunk)
                yield chunk

        def close(self) -> None:
            try:
                inner.close()
            finally:
                if not self.logged:
                    self.logged = True
                    _log_body(response, bytes(self.head), self.size, read=self.started)

    return _Tee()


def _log_body(response: httpx.Response, head: bytes, size: int, *, read: bool) -> None:
    try:
        request = response.request
        fields: dict[str, Any] = {
            "method": request.method,
            "url": str(request.url),
            "status": response.status_code,
            "size": size,
        }
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if not read:
            fields["body"] = "<not read by the caller>"
        elif size == 0:
            pass
        elif encoding not in ("", "identity"):
            fields["body"] = f"<{size} bytes, {encoding}-encoded, not logged>"
        else:
            fields.update(
                _decode_body(
                    head[:BODY_LIMIT],
                    response.headers.get("content-type", ""),
                    truncated=size > BODY_LIMIT,
                )
            )
        get_logger(HTTP_LOGGER).debug("http.response.body", **fields)
    except Exception:  # noqa: S110 (logging must never break a request)
        pass
