"""unik core CORE [--kernel ELF] [--stacks]: what happened, from a core --
the panic reason, the faulting instruction in context, registers, the
faulting thread's backtrace, every thread (or identical stacks grouped),
heap and page counters and the log ring's tail (introspect/helpers/report.py)."""
from __future__ import annotations

from ..registry import Command


def args(p):
    p.add_argument("core", metavar="CORE",
                   help="an ELF core (unik dump, or a panic's), or the NAME of a panicked "
                        "instance: its automatic core")
    p.add_argument("--kernel", metavar="ELF",
                   help="the kernel the instance ran (default: found by build-id)")
    p.add_argument("--stacks", action="store_true",
                   help="group threads with identical stacks, with a count (like ::stacks)")


def core_path(arg: str, kernel: str | None) -> tuple[str, str | None]:
    """(core, kernel) for CORE: a file, else an instance's automatic core
    (taken by its mux when the kernel panicked) with the kernel it ran."""
    import os
    from introspect.errors import UnikError
    from introspect.instance import NAME_RE, list_instances
    if os.path.exists(arg) or not NAME_RE.match(arg):
        return arg, kernel
    inst = next((i for i in list_instances() if i.name == arg), None)
    if inst is None:
        return arg, kernel                  # Core.open names the missing file
    crash = inst.crash_core()
    if not crash:
        raise UnikError(f"instance {arg} has no automatic core (its kernel has not panicked, "
                        f"or it runs without a mux)",
                        f"take one with: unik dump {arg} -o FILE")
    return crash["core"], kernel or inst.kernel


def run(ctx, args):
    from introspect.helpers.report import render, summarize
    from introspect.program import Program
    core, kernel = core_path(args.core, args.kernel)
    with Program.from_core(core, kernel) as prog:
        rep = summarize(prog, stacks=args.stacks)
    if args.json:
        ctx.json(rep)
    else:
        ctx.write(render(rep))


COMMAND = Command("core", "what happened: a core's panic, faulting code, threads, log", run,
                  args=args, shell=False,
                  epilog="take a core with: unik dump NAME -o FILE")
