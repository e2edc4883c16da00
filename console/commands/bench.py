from ..registry import Command


def args(p):
    p.add_argument("--app", default="demo", help="application to measure (default demo)")
    p.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    p.add_argument("--http", action="store_true",
                   help="only the HTTP rows: wrk against the http app (docs/httpbench.md)")


def run(ctx, args):
    """Boot private instances, measure, print the table (or --json)."""
    import tempfile
    from pathlib import Path

    from introspect import bench
    with tempfile.TemporaryDirectory(prefix="unik-bench-", dir="/tmp") as d:
        if args.http:
            from introspect import httpbench
            rows = httpbench.rows(Path(d), quick=args.quick)
        else:
            rows = bench.run_all(Path(d), app=args.app, quick=args.quick)
    if args.json:
        ctx.json(rows)
    else:
        ctx.write(bench.render(rows))


COMMAND = Command("bench", "measure image size, boot, channel round trips, CLI start-up and probe costs",
                  run, args=args, shell=False,
                  epilog="Under TCG absolute times are not the machine's speed: guest "
                         "costs are reported in guest instructions (-icount shift=0).")
