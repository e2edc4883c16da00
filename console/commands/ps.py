from ..registry import Command
from ..render import ps_title, render_ps, thread_rows
from ._core import core_args, open_core


def run(ctx, args):
    prog = open_core(args)
    if prog is not None:
        return _from_core(ctx, args, prog)
    with ctx.channel(args) as ch:
        head, threads = ch.threads()
    if args.json:
        ctx.json({"instance": ch.name, **head, "threads": thread_rows(head, threads)})
    else:
        ctx.write(render_ps(head, threads, title=f"{ch.name}: " + ps_title(head, threads)))


def _from_core(ctx, args, prog):
    """The table from a core: the same records, the time of the dump
    estimated (introspect/snapshot.py says how)."""
    from introspect import snapshot
    with prog:
        head, threads = snapshot.threads(prog)
    if args.json:
        ctx.json({"core": args.core, **head, "threads": thread_rows(head, threads)})
    else:
        ctx.write(render_ps(head, threads,
                            title=f"{args.core}: " + ps_title(head, threads) + " (at the dump)"))


COMMAND = Command("ps", "list the kernel's threads", run, args=core_args, instance="optional",
                  epilog="STATE: running (on the CPU), runnable (ready), sleeping "
                         "(waiting on WCHAN), dead.\n%CPU is since the thread started; "
                         "HWM% is the deepest stack use seen.\n"
                         "--core: the same table from a core; its uptime is estimated "
                         "from the kernel's tick count (within a tick or so).")
