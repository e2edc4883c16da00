from ..registry import Command
from ..render import mem_summary, render_mem
from ._core import core_args, open_core


def run(ctx, args):
    prog = open_core(args)
    if prog is not None:
        from introspect import snapshot
        with prog:
            head, classes = snapshot.memstat(prog)
        who = {"core": args.core}
    else:
        with ctx.channel(args) as ch:
            head, classes = ch.memstat()
        who = {"instance": ch.name}
    if args.json:
        ctx.json({**who, **head, "summary": mem_summary(head), "classes": classes})
    else:
        ctx.write(render_mem(head, classes))


COMMAND = Command("mem", "memory: pages, heap and size classes (like free)", run,
                  args=core_args, instance="optional",
                  epilog="--core: the same figures from a core (unik dump).")
