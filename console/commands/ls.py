from introspect.instance import list_instances

from ..registry import Command
from ..render import render_ls


def run(ctx, args):
    insts = [i.to_json() for i in list_instances()]
    if args.json:
        ctx.json(insts)
    else:
        ctx.write(render_ls(insts))


COMMAND = Command("ls", "list instances (running and stale)", run)
