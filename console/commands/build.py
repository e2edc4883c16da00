from introspect import build as B

from ..registry import Command


def args(p):
    p.add_argument("--app", help=f"application (default {B.DEFAULT_APP})")
    p.add_argument("--all", action="store_true", help="build every app")
    p.add_argument("-v", "--verbose", action="store_true", help="show make's output")


def run(ctx, args):
    from introspect.elfinfo import build_id
    apps = B.apps() if args.all else [args.app or B.DEFAULT_APP]
    out = []
    for app in apps:
        elf = B.build(app, verbose=args.verbose and not args.json)
        out.append({"app": app, "kernel": str(elf), "build_id": build_id(elf)})
        if not args.json:
            ctx.write(f"{app}: {elf} (build-id {out[-1]['build_id'][:12] or 'none'})")
    if args.json:
        ctx.json(out)


COMMAND = Command("build", "build a kernel image (make -C kernel)", run, args=args)
