"""The `vault` executable: parse, run one command, map errors to exit codes.

This is the single place that catches errors. Nothing here may print a secret: errors carry
messages written for people, and an unexpected exception prints its type only (its message
could quote a token), unless --debug asks for the redacted traceback.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any


def main(argv: list[str] | None = None) -> int:
    from vault.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, VaultError

    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    if "aws" in args:  # the helpers run per command of another tool import nothing for it
        from vault.cli.person import for_helper, to_terminal_only

        if for_helper(args):  # its stderr is another program's: a person's words go to the tty
            to_terminal_only()
    try:
        if not args or args[0] == "__complete":  # a bare `vault`; the shells' completion
            from vault.cli.completion import hidden

            code = hidden(args)
        else:
            from vault.cli.run import run

            code = run(args)
    except VaultError as exc:
        _report(exc.message, exc.hint, error=True)
        code = exc.exit_code
        _json_error(args, exc, exc.message, exc.hint, code)
    except KeyboardInterrupt as exc:
        _report("interrupted", None)
        code = EXIT_INTERRUPTED
        _json_error(args, exc, "interrupted", None, code)
    except BrokenPipeError:
        # The reader went away (`vault list | head`): not our failure.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    except Exception as exc:
        message = f"internal error ({type(exc).__name__}); this is a bug, please report it"
        hint = "rerun with --debug for a (redacted) traceback" if not debug else None
        _report(message, hint)
        if debug:
            _debug_traceback(exc)
        code = EXIT_INTERNAL
        _json_error(args, exc, message, hint, code)
    try:  # noqa: SIM105 (no contextlib on the agent path: bench/NOTES.md)
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    return code


def _scrubbed(text: str) -> str:
    from vault.util.redact import scrub_text
    from vault.util.text import clean

    # Messages quote servers and files: strip controls, and mask anything shaped like a secret.
    return scrub_text(clean(text, limit=2000))


def _report(message: str, hint: str | None, *, error: bool = False) -> None:
    """One line on stderr, "vault: error: MESSAGE" (``error``) or "vault: MESSAGE", and a
    "vault: hint: ..." line; "error:" emphasised where stderr is a terminal that takes colour
    (vault.cli.render.color_enabled)."""
    text = _scrubbed(message)
    if error:
        from vault.cli.render import style

        text = style("error:", "error", sys.stderr) + " " + text
    text = "vault: " + text
    if hint:
        text += "\nvault: hint: " + _scrubbed(hint)
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def wants_json(args: list[str]) -> bool:
    """Whether the command line asks for JSON output: --json (or `--format json`, its alias
    for `audit show`) before any "--" (after it come `vault exec`'s command's own words).
    Read from the words themselves, so that a command line argparse refuses gets its error
    as JSON too."""
    words = args[: args.index("--")] if "--" in args else args
    for i, word in enumerate(words):
        if word in {"--json", "--format=json"}:
            return True
        if word == "--format" and i + 1 < len(words) and words[i + 1] == "json":
            return True
    return False


def _json_error(
    args: list[str], exc: BaseException, message: str, hint: str | None, code: int
) -> None:
    """With --json, the error as one JSON object on stdout, besides the line on stderr:
    ``{"event": "error", "error": CODE, "message", "hint", "exit"}`` (README: "JSON
    output"). Not when the command already printed JSON (its document says it failed, as
    `audit verify` and `policy check` do, or its event stream ended with its own error
    event, as `login` does)."""
    if not wants_json(args):
        return
    from vault.cli.render import dump_json, error_code, wrote_json

    if wrote_json():
        return
    doc = {
        "event": "error",
        "error": error_code(exc),
        "message": _scrubbed(message),
        "hint": None if hint is None else _scrubbed(hint),
        "exit": code,
    }
    try:  # noqa: SIM105 (contextlib: imports an error path need not pay for)
        dump_json(doc)
    except (OSError, ValueError):  # stdout is gone (a closed pipe): the exit code remains
        pass


def _debug_traceback(exc: BaseException) -> None:
    import traceback

    from vault.util.redact import scrub_text

    # The plain traceback module never prints local variables; messages are scrubbed.
    text = "".join(traceback.format_exception(exc))
    sys.stderr.write(scrub_text(text))


def entry() -> None:
    """The console script: run `main` and exit with its code.

    `vault token` and the other commands a tool starts for each of its own (vault.cli.run.FAST:
    `vault kube`...) run without the garbage collector and, once their output is flushed and no
    non-daemon thread is left, end with ``os._exit``: no interpreter teardown, so no atexit
    handlers. Every other command ends with ``sys.exit``, the interpreter's whole shutdown
    (atexit handlers included). bench/NOTES.md has the measurements behind this."""
    from vault.cli.run import FAST

    fast = len(sys.argv) > 1 and sys.argv[1] in FAST
    if not _no_core_no_tracing():
        sys.stderr.write("vault: error: cannot forbid core dumps and tracing of this process\n")
        sys.exit(EXIT_INTEGRITY)
    if fast:
        import gc

        gc.disable()
    code = main()
    if fast and _only_daemon_threads():
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os._exit(code)
    sys.exit(code)


EXIT_INTEGRITY = 6  # vault.errors.EXIT_INTEGRITY, without importing vault.errors first
PR_SET_DUMPABLE = 4
RLIMIT_CORE = 4  # Linux's number (resource.RLIMIT_CORE); other systems go through `resource`


def _no_core_no_tracing() -> bool:
    """Keep the key and the tokens in this process's memory away from core files and from other
    processes of the same user, as ssh-agent does: the core size limit to 0 (soft and hard, so
    no child or library raises it again) and, on Linux, the process not dumpable, which also
    refuses ptrace and reads of /proc/PID/mem and /proc/PID/environ to anyone without
    CAP_SYS_PTRACE. A program started by `vault exec` is dumpable again after its exec (the
    kernel resets the flag), and inherits the core limit of 0.

    Both calls go through ``_ctypes`` (the C half of ``ctypes``) on the C library already
    mapped into the process (bench/NOTES.md says why not ``ctypes``). True when both took
    effect."""
    if sys.platform != "linux":
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        return True
    try:
        import _ctypes
    except ImportError:  # an interpreter built without libffi
        return False
    c: Any = _ctypes  # used as ctypes/__init__.py uses it
    try:
        return _limit_and_undump(c)
    except (OSError, AttributeError):  # no C library to look the functions up in
        return False


def _limit_and_undump(c: Any) -> bool:
    c_int = type("c_int", (c._SimpleCData,), {"_type_": "i"})
    c_ulong = type("c_ulong", (c._SimpleCData,), {"_type_": "L"})  # rlim_t on Linux
    limit = type("rlimit", (c.Array,), {"_type_": c_ulong, "_length_": 2})
    function = type("function", (c.CFuncPtr,), {"_flags_": c.FUNCFLAG_CDECL, "_restype_": c_int})
    libc = type("libc", (), {"_handle": c.dlopen(None, c.RTLD_LOCAL)})  # libc is in the process
    setrlimit, prctl = function(("setrlimit", libc)), function(("prctl", libc))
    zero = limit(0, 0)
    return bool(setrlimit(RLIMIT_CORE, c.byref(zero)) == 0 and prctl(PR_SET_DUMPABLE, 0) == 0)


def _only_daemon_threads() -> bool:
    """No thread but the main one has work to finish (threading was never imported, or every
    other thread is a daemon)."""
    threading = sys.modules.get("threading")
    if threading is None:
        return True
    main_thread = threading.main_thread()
    return all(t.daemon or t is main_thread for t in threading.enumerate())
