from ..registry import Command
from ..render import render_ps, thread_rows


def run(ctx, args):
    with ctx.channel(args) as ch:
        head, threads = ch.threads()
    if args.json:
        ctx.json({"instance": ch.name, **head, "threads": thread_rows(head, threads)})
    else:
        ctx.write(render_ps(head, threads, title=f"{ch.name}: " + _title(head, threads)))


def _title(head, threads):
    from ..render import fmt_duration
    n = head.get("total", len(threads))
    extra = f" (showing {len(threads)})" if n != len(threads) else ""
    return f"{n} threads{extra}, up {fmt_duration(head['uptime_ns'] / 1e9)}"


COMMAND = Command("ps", "list the kernel's threads", run, instance="optional",
                  epilog="STATE: running (on the CPU), runnable (ready), sleeping "
                         "(waiting on WCHAN), dead.\n%CPU is since the thread started; "
                         "HWM% is the deepest stack use seen.")
