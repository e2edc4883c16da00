"""The command registry: every `unik` command is registered once, here, and
runs both as `unik <command>` and inside `unik shell`.

A command is a module in console/commands/ defining `COMMAND = Command(...)`;
adding a command is adding one file (discovery is by listing the package, so
nothing imports the heavy libraries until a command runs).  The registry
gives every command `--json`, and a NAME argument when it targets an instance.
"""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from dataclasses import dataclass, field
from typing import Callable, TextIO

from introspect.errors import UnikError


class UsageError(UnikError):
    """Bad command-line input."""


@dataclass
class Command:
    name: str
    help: str
    run: Callable                          # run(ctx, args) -> int | None
    args: Callable | None = None           # args(parser): add the command's options
    instance: str | None = None            # None, "optional" or "required": a NAME argument
    aliases: tuple = ()
    shell: bool = True                     # offered inside `unik shell`
    epilog: str | None = None
    # parse(parser, argv, ctx) -> Namespace, instead of parse_intermixed_args
    # (unik py: what follows the script is the script's own)
    parse: Callable | None = None


@dataclass
class Context:
    """What a command runs with: output streams and, in the shell, the
    instance the session is attached to."""
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    instance: str | None = None
    interactive: bool = False

    def name(self, args) -> str | None:
        return getattr(args, "name", None) or self.instance

    def find(self, args, need_running: bool = True):
        from introspect.instance import find
        return find(self.name(args), need_running=need_running)

    def channel(self, args=None, timeout: float | None = None, *, name: str | None = None):
        """The probe channel of the instance `args` (or `name`) names: the one
        way every command talks to an instance.  Fails at once, with one
        line, when the instance is stale or its kernel panicked
        (Instance.require_serving, via Channel.for_instance)."""
        from introspect.client import Channel, DEFAULT_TIMEOUT
        from introspect.instance import find
        inst = find(name if args is None else self.name(args))
        return Channel.for_instance(inst, timeout=timeout or DEFAULT_TIMEOUT)

    def write(self, text: str = "") -> None:
        self.out.write(text if text.endswith("\n") or not text else text + "\n")
        self.out.flush()

    def json(self, obj) -> None:
        self.out.write(json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n")
        self.out.flush()


def _jsonable(o):
    if isinstance(o, bytes):
        return o.hex()
    return str(o)


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing and exiting."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}", f"see: {self.prog} --help")


_REGISTRY: dict[str, Command] | None = None


def commands() -> dict[str, Command]:
    """name -> Command, discovering console/commands/*.py on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        from . import commands as pkg
        reg: dict[str, Command] = {}
        for m in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if m.name.startswith("_"):
                continue
            mod = importlib.import_module(f"{pkg.__name__}.{m.name}")
            for cmd in _commands_in(mod):
                for n in (cmd.name, *cmd.aliases):
                    if n in reg:
                        raise RuntimeError(f"command {n!r} registered twice")
                    reg[n] = cmd
        _REGISTRY = reg
    return _REGISTRY


def _commands_in(mod) -> list[Command]:
    c = getattr(mod, "COMMAND", None)
    cs = getattr(mod, "COMMANDS", ())
    return ([c] if c else []) + list(cs)


def primary() -> list[Command]:
    """Each command once (no aliases), sorted by name."""
    seen, out = set(), []
    for c in commands().values():
        if c.name not in seen:
            seen.add(c.name)
            out.append(c)
    return sorted(out, key=lambda c: c.name)


def make_parser(cmd: Command, prog: str, ctx: Context | None = None) -> Parser:
    p = Parser(prog=prog, description=cmd.help, epilog=cmd.epilog,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    if cmd.instance == "optional" or (cmd.instance and ctx and ctx.instance):
        p.add_argument("name", nargs="?", metavar="NAME",
                       help="instance (default: the only running one)")
    elif cmd.instance == "required":
        p.add_argument("name", metavar="NAME", help="instance")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    if cmd.args:
        cmd.args(p)
    return p


def run_command(cmd: Command, argv: list[str], ctx: Context, prog: str) -> int:
    """Parse argv for `cmd` and run it.  UnikError propagates to the caller."""
    parser = make_parser(cmd, prog, ctx)
    if cmd.parse:
        args = cmd.parse(parser, list(argv), ctx)
    else:
        args = parser.parse_intermixed_args(argv)
    rc = cmd.run(ctx, args)
    return 0 if rc is None else int(rc)
