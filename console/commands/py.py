"""unik py: run a Python script (or a prompt) with `prog` bound to a
Program over a core (--core) or a live instance (NAME); the same script
works on both.  A script that raises gets its own traceback, not unik's."""
from __future__ import annotations

import sys
import traceback
from pathlib import Path

from introspect.errors import UnikError

from ..registry import Command, UsageError


def args(p):
    p.add_argument("--core", metavar="CORE", help="an ELF core (unik dump) instead of an instance")
    p.add_argument("--kernel", metavar="ELF",
                   help="with --core: the kernel it ran (default: found by build-id)")
    p.add_argument("-c", dest="command", metavar="CODE", help="run CODE instead of a script")
    p.add_argument("words", nargs="*", metavar="[NAME] [SCRIPT [ARGS]]",
                   help="without --core the first word is the instance; then the "
                        "script and its arguments")


def parse(parser, argv: list[str], ctx):
    """unik's options and words up to the script, then everything from the
    script on for the script: `unik py NAME SCRIPT --opt` passes --opt to
    SCRIPT (with -c, what follows the first argument word is the code's).
    A `--` before that point separates by hand, as argparse does; one
    right after the script (the old way to pass options) is dropped."""
    need, nwords, i = 1, 0, 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return parser.parse_intermixed_args(argv)
        if a.startswith("-") and a != "-":
            act = parser._option_string_actions.get(a.split("=", 1)[0])
            if act is not None and act.dest == "core":
                need = 0                # no NAME with a core
            i += 2 if act is not None and act.nargs != 0 and "=" not in a else 1
            continue
        if nwords == 0 and (ctx.instance is not None or a.endswith(".py")):
            need = 0                    # open_program takes no NAME either
        if nwords == need:
            tail = argv[i:]
            if tail[1:2] == ["--"]:
                del tail[1]             # the old `SCRIPT -- --opt`
            args = parser.parse_intermixed_args(argv[:i])
            args.words += tail
            return args
        nwords += 1
        i += 1
    return parser.parse_intermixed_args(argv)


def open_program(ctx, args):
    """(Program, rest of the words) for --core or NAME."""
    from introspect.program import Program
    words = list(args.words)
    if args.core:
        return Program.from_core(args.core, args.kernel), words
    if args.kernel:
        raise UsageError("--kernel goes with --core", "a live instance knows its kernel")
    name = args.name if getattr(args, "name", None) else ctx.instance
    if name is None and words and not words[0].endswith(".py"):
        name = words.pop(0)
    return Program.live(name), words


def run(ctx, args):
    prog, words = open_program(ctx, args)
    with prog:
        ns = {"__name__": "__main__", "prog": prog}
        if args.command is not None:
            return run_source(ctx, args.command, "<-c>", ns, ["-c", *words])
        if not words:
            return interact(ns)
        path = Path(words[0])
        try:
            src = path.read_text()
        except OSError as e:
            raise UnikError(f"cannot read script {path}: {e.strerror}",
                            "give the path of a Python file") from None
        ns["__file__"] = str(path)
        return run_source(ctx, src, str(path), ns, words)


def run_source(ctx, src: str, filename: str, ns: dict, argv: list[str]) -> int:
    """Run src as __main__ with sys.argv = argv; 0, its exit status, or 1
    after printing the script's own traceback."""
    old = sys.argv
    sys.argv = argv
    try:
        code = compile(src, filename, "exec")
        exec(code, ns)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except SyntaxError as e:
        ctx.err.write("".join(traceback.format_exception_only(type(e), e)))
        return 1
    except BaseException as e:          # the script's own error: its traceback
        ctx.err.write(script_traceback(e, filename))
        return 1
    finally:
        sys.argv = old
    return 0


def script_traceback(e: BaseException, filename: str) -> str:
    """A traceback of e showing only the script's frames (the tool's own
    frames, above and below, are left out)."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == filename]
    out = ["Traceback (most recent call last):\n"]
    out += traceback.format_list(frames)
    out += traceback.format_exception_only(type(e), e)
    return "".join(out)


def interact(ns: dict) -> int:
    """A Python prompt with prog bound and tab completion."""
    import code
    try:
        import readline
        import rlcompleter
        readline.set_completer(rlcompleter.Completer(ns).complete)
        readline.parse_and_bind("tab: complete")
    except ImportError:
        pass
    prog = ns["prog"]
    code.interact(banner=f"{prog!r}\nprog is bound: prog['sched_threads'], prog.threads(), "
                         f"prog.log(), prog.heap(), prog.disassemble('kmain')",
                  local=ns, exitmsg="")
    return 0


COMMAND = Command("py", "run a Python script with `prog` (a core or a live instance)", run,
                  args=args, shell=False, parse=parse,
                  epilog="forms: unik py --core CORE [--kernel ELF] [SCRIPT [ARGS]]\n"
                         "       unik py NAME [SCRIPT [ARGS]]   (no script: a prompt)")
