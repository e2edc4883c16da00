from introspect import instance as I

from ..registry import Command


def args(p):
    p.add_argument("--all", action="store_true", help="stop every instance, stale ones too")


def run(ctx, args):
    if args.all:
        targets = I.list_instances()
    else:
        targets = [I.find(ctx.name(args), need_running=False)]
    done = []
    for inst in targets:
        was = I.stop(inst)
        done.append({"name": inst.name, "was": "running" if was else "stale"})
        if not args.json:
            ctx.write(f"stopped {inst.name}" if was else f"removed stale {inst.name}")
    if args.json:
        ctx.json(done)


COMMAND = Command("stop", "stop an instance (QMP quit) and remove its state", run,
                  args=args, instance="optional")
