"""`unik`: the command-line entry point.

Dispatches to the registered commands (console/registry.py) and turns every
failure into one line `unik: error: ...` plus `hint: ...`, exit status 2.
No traceback reaches the user unless UNIK_DEBUG=1.
"""
from __future__ import annotations

import os
import signal
import sys

from introspect.errors import UnikError

from .registry import Context, UsageError, commands, primary, run_command

EXIT_ERROR = 2


def usage() -> str:
    lines = ["usage: unik COMMAND [ARGS] [--json]", "", "commands:"]
    for c in primary():
        lines.append(f"  {c.name:<10} {c.help}")
    lines += ["", "NAME may be left out when exactly one instance runs.",
              "unik COMMAND --help shows a command's options."]
    return "\n".join(lines)


def dispatch(argv: list[str], ctx: Context) -> int:
    if not argv or argv[0] in ("-h", "--help", "help") and len(argv) <= 1:
        ctx.write(usage())
        return 0
    if argv[0] == "help":
        argv = [argv[1], "--help"]
    if argv[0] == "--version":
        ctx.write("unik 0.1.0")
        return 0
    name, rest = argv[0], argv[1:]
    cmd = commands().get(name)
    if cmd is None:
        known = ", ".join(c.name for c in primary())
        raise UsageError(f"unknown command {name!r}", f"commands are: {known}")
    return run_command(cmd, rest, ctx, f"unik {cmd.name}")


def report(e: UnikError, err=None) -> None:
    err = err or sys.stderr
    err.write(f"unik: error: {e.msg}\n")
    if e.hint:
        err.write(f"hint: {e.hint}\n")
    err.flush()


def guarded(fn, err=None) -> int:
    """Run fn() turning every failure into the one-line error format."""
    err = err or sys.stderr
    try:
        return fn()
    except UnikError as e:
        report(e, err)
        return EXIT_ERROR
    except KeyboardInterrupt:
        err.write("\n")
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except SystemExit as e:            # argparse --help
        return e.code if isinstance(e.code, int) else 0
    except Exception as e:             # a bug: still one line, no traceback
        if os.environ.get("UNIK_DEBUG"):
            raise
        report(UnikError(f"internal error: {type(e).__name__}: {e}",
                         "this is a bug in unik; UNIK_DEBUG=1 shows the traceback"), err)
        return EXIT_ERROR


def own_sigint():
    """Ctrl-C (SIGINT) raises KeyboardInterrupt, which the commands turn
    into a clean stop (`unik boot` stops its instance, `log -f` ends) --
    also when we were started with SIGINT ignored, as a background job or
    some CI runners are, where Python would otherwise leave it ignored.
    Returns the previous handler (None off the main thread).  Called by main."""
    try:
        return signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:                 # not the main thread (embedded use)
        return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    old = own_sigint()
    try:
        ctx = Context()
        return guarded(lambda: dispatch(argv, ctx), ctx.err)
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)


if __name__ == "__main__":
    sys.exit(main())
