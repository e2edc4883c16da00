from ..registry import Command
from ..render import mem_summary, render_mem


def run(ctx, args):
    with ctx.channel(args) as ch:
        head, classes = ch.memstat()
    if args.json:
        ctx.json({"instance": ch.name, **head, "summary": mem_summary(head),
                  "classes": classes})
    else:
        ctx.write(render_mem(head, classes))


COMMAND = Command("mem", "memory: pages, heap and size classes (like free)", run,
                  instance="optional")
