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
    if sys.argv[1:2] == ["token"]:
        # `vault token` lives for a few dozen milliseconds: the ~20 garbage collections its
        # imports would trigger (~4.5 ms) free nothing it would miss before it exits.
        import gc

        gc.disable()
    code = main()
    # Everything is written, fsynced and closed by now: skip the interpreter's teardown
    # (finalising every module and object costs `vault token` ~10 ms of its ~60) unless a
    # thread still has work to finish.
    threading = sys.modules.get("threading")
    main_thread = threading.main_thread() if threading else None
    if threading is None or all(t.daemon or t is main_thread for t in threading.enumerate()):
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    sys.exit(code)

