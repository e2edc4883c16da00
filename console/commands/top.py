from ..registry import Command


def args(p):
    p.add_argument("--once", action="store_true", help="print one frame and exit")
    p.add_argument("-i", "--interval", type=float, default=1.0, metavar="SECONDS",
                   help="refresh interval (default 1)")


def run(ctx, args):
    from ..top import run_top
    return run_top(ctx, ctx.name(args), once=args.once, interval=args.interval,
                   as_json=args.json)


COMMAND = Command("top", "live view of threads (by CPU) and memory", run, args=args,
                  instance="optional")
