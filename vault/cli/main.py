"""The `vault` executable: parse, run one command, map errors to exit codes.

This is the single place that catches errors. Nothing here may print a secret: errors carry
messages written for people, and an unexpected exception prints its type only (its message
could quote a token), unless --debug asks for the redacted traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys


def main(argv: list[str] | None = None) -> int:
    from vault.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, VaultError

    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        from vault.cli.run import run

        code = run(args)
    except VaultError as exc:
        _report(f"vault: error: {exc.message}", exc.hint)
        code = exc.exit_code
    except KeyboardInterrupt:
        _report("vault: interrupted", None)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`vault list | head`): not our failure.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    except Exception as exc:
        _report(
            f"vault: internal error ({type(exc).__name__}); this is a bug, please report it",
            "rerun with --debug for a (redacted) traceback" if not debug else None,
        )
        if debug:
            _debug_traceback(exc)
        code = EXIT_INTERNAL
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    return code


def _report(line: str, hint: str | None) -> None:
    from vault.util.redact import scrub_text
    from vault.util.text import clean

    # Messages quote servers and files: strip controls, and mask anything shaped like a secret.
    text = scrub_text(clean(line, limit=2000))
    if hint:
        text += "\nvault: hint: " + scrub_text(clean(hint, limit=2000))
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _debug_traceback(exc: BaseException) -> None:
    import traceback

    from vault.util.redact import scrub_text

    # The plain traceback module never prints local variables; messages are scrubbed.
    text = "".join(traceback.format_exception(exc))
    sys.stderr.write(scrub_text(text))


def entry() -> None:
    """The console script: run `main` and exit with its code.

    `vault token` (a short process a script may start for every request) runs without the
    garbage collector and, once its output is flushed and no non-daemon thread is left, ends
    with ``os._exit``: no interpreter teardown, so no atexit handlers. Every other command ends
    with ``sys.exit``, the interpreter's whole shutdown (atexit handlers included). bench/NOTES.md
    has the measurements behind this."""
    fast = sys.argv[1:2] == ["token"]
    if fast:
        import gc

        gc.disable()
    code = main()
    if fast and _only_daemon_threads():
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _only_daemon_threads() -> bool:
    """No thread but the main one has work to finish (threading was never imported, or every
    other thread is a daemon)."""
    threading = sys.modules.get("threading")
    if threading is None:
        return True
    main_thread = threading.main_thread()
    return all(t.daemon or t is main_thread for t in threading.enumerate())
