"""`unik shell [NAME]`: a small REPL running the registered commands against
one instance (prompt_toolkit when on a terminal, plain lines otherwise).

Built-ins: help [CMD], use NAME, exit/quit.  Every other line is a command
as on the command line, without the leading `unik` and with NAME defaulting
to the instance the shell is attached to.
"""
from __future__ import annotations

import shlex
import sys

from introspect.errors import UnikError

from .cli import guarded
from .registry import Context, UsageError, commands, primary, run_command

BUILTINS = {"help": "list commands, or `help CMD` for one",
            "use": "attach the shell to another instance: use NAME",
            "exit": "leave the shell (also quit, Ctrl-D)"}


def help_text() -> str:
    lines = ["commands (NAME defaults to the shell's instance):"]
    for c in primary():
        if c.shell:
            lines.append(f"  {c.name:<10} {c.help}")
    lines.append("built-ins:")
    for k, v in BUILTINS.items():
        lines.append(f"  {k:<10} {v}")
    return "\n".join(lines)


def execute(ctx: Context, line: str) -> bool:
    """Run one shell line; False when the shell should exit."""
    try:
        argv = shlex.split(line)
    except ValueError as e:
        raise UsageError(f"cannot parse the line: {e}", "check the quotes")
    if not argv:
        return True
    head, rest = argv[0], argv[1:]
    if head in ("exit", "quit"):
        return False
    if head in ("help", "?"):
        if rest:
            cmd = commands().get(rest[0])
            if cmd is None:
                raise UsageError(f"unknown command {rest[0]!r}", "type help")
            run_command(cmd, ["--help"], ctx, cmd.name)
        else:
            ctx.write(help_text())
        return True
    if head == "use":
        if len(rest) != 1:
            raise UsageError("use takes one instance name", "e.g.: use demo")
        from introspect.instance import find
        ctx.instance = find(rest[0]).name
        ctx.write(f"attached to {ctx.instance}")
        return True
    cmd = commands().get(head)
    if cmd is None or not cmd.shell:
        raise UsageError(f"unknown command {head!r}", "type help for the commands")
    run_command(cmd, rest, ctx, cmd.name)
    return True


def _lines_plain(prompt: str):
    while True:
        if sys.stdin.isatty():
            sys.stdout.write(prompt)
            sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            return
        yield line.rstrip("\n")


def _lines_tty(ctx: Context):
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import FileHistory
    from introspect.instance import state_base
    base = state_base()
    base.mkdir(parents=True, exist_ok=True)
    words = sorted(set(commands()) | set(BUILTINS) | {"quit"})
    session = PromptSession(history=FileHistory(str(base / "shell_history")),
                            completer=WordCompleter(words, sentence=True))
    while True:
        try:
            yield session.prompt(f"unik:{ctx.instance}> ")
        except KeyboardInterrupt:
            continue
        except EOFError:
            return


def repl(ctx: Context, name: str | None) -> int:
    from introspect.instance import find
    inst = find(name)                 # fail now, with the usual error, if none
    ctx.instance = inst.name
    ctx.interactive = True
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    if tty:
        ctx.write(f"unik shell on {inst.name} ({inst.app}); type help, exit with Ctrl-D")
    lines = _lines_tty(ctx) if tty else _lines_plain(f"unik:{ctx.instance}> ")
    status = 0
    for line in lines:
        keep = [True]

        def one():
            keep[0] = execute(ctx, line)
            return 0
        status = guarded(one, ctx.err)
        if not keep[0]:
            break
    return 0 if tty else status


__all__ = ["repl", "execute", "help_text", "UnikError"]
