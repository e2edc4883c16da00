from introspect.errors import UnikError

from ..registry import Command
from ..render import render_info


def run(ctx, args):
    inst = ctx.find(args, need_running=False)
    hello = status = None
    if inst.running:
        from introspect.qemu import Monitor
        try:
            st = Monitor(inst.qmp_sock, timeout=3.0).status()
            status = st.get("status")
        except UnikError:
            status = "monitor unreachable"
        try:
            with ctx.channel(args) as ch:
                hello = ch.hello()
        except UnikError as e:
            status = (status or "") + f"; channel: {e.msg}"
    d = inst.to_json()
    if args.json:
        ctx.json({**d, "qemu_status": status, "hello": hello})
    else:
        ctx.write(render_info(d, hello, status))


COMMAND = Command("info", "an instance's details: QEMU status, kernel HELLO, paths", run,
                  instance="optional")
