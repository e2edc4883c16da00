from introspect import instance as I

from ..registry import Command


def args(p):
    p.add_argument("--all", action="store_true", help="stop every instance, stale ones too")


def run(ctx, args):
    name = ctx.name(args)
    insts = I.list_instances()
    if args.all:
        targets = insts
    elif name:
        targets = [I.find(name, need_running=False)]
    elif len(insts) == 1:                # the only instance, running or stale
        targets = insts
    else:
        targets = [I.find(None)]         # the only running one, or the usual error
    done = []
    for inst in targets:
        crash = inst.crash_core()
        was = I.stop(inst)
        done.append({"name": inst.name, "was": "running" if was else "stale",
                     "core_removed": crash["core"] if crash else None})
        if not args.json:
            ctx.write(f"stopped {inst.name}" if was else f"removed stale {inst.name}")
            if crash:
                ctx.err.write(f"unik: {inst.name}'s automatic core {crash['core']} was removed "
                              f"with it (copy it first to keep it)\n")
    if args.json:
        ctx.json(done)


COMMAND = Command("stop", "stop an instance (QMP quit) and remove its state", run,
                  args=args, instance="optional")
