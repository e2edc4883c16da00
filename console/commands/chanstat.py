from introspect.errors import UnikError

from ..registry import Command
from ..render import render_chanstat


def run(ctx, args):
    with ctx.channel(args) as ch:
        k = ch.chanstat()
        try:
            mux = ch.mux_info()
            mux.pop("hello", None)
        except UnikError:
            mux = None
    if args.json:
        ctx.json({"instance": ch.name, "kernel": k, "mux": mux})
    else:
        ctx.write(render_chanstat(k, mux))


COMMAND = Command("chanstat", "probe channel statistics (kernel and mux)", run,
                  instance="optional")
