"""unik core CORE [--kernel ELF] [--stacks]: what happened, from a core --
the panic reason, the faulting instruction in context, registers, the
faulting thread's backtrace, every thread (or identical stacks grouped),
heap and page counters and the log ring's tail (introspect/helpers/report.py)."""
from __future__ import annotations

from ..registry import Command


def args(p):
    p.add_argument("core", metavar="CORE", help="an ELF core (unik dump, or a panic's)")
    p.add_argument("--kernel", metavar="ELF",
                   help="the kernel the instance ran (default: found by build-id)")
    p.add_argument("--stacks", action="store_true",
                   help="group threads with identical stacks, with a count (like ::stacks)")


def run(ctx, args):
    from introspect.helpers.report import render, summarize
    from introspect.program import Program
    with Program.from_core(args.core, args.kernel) as prog:
        rep = summarize(prog, stacks=args.stacks)
    if args.json:
        ctx.json(rep)
    else:
        ctx.write(render(rep))


COMMAND = Command("core", "what happened: a core's panic, faulting code, threads, log", run,
                  args=args, shell=False,
                  epilog="take a core with: unik dump NAME -o FILE")
