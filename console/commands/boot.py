import signal
import time

from introspect.errors import UnikError

from ..registry import Command


def args(p):
    p.add_argument("--name", help="instance name (default: the app, then app-2, ...)")
    p.add_argument("--app", help="application to boot (default demo)")
    p.add_argument("--kernel", help="boot this kernel ELF instead of build/APP/kernel.elf")
    p.add_argument("--mem", default="32M", help="guest RAM (default 32M)")
    p.add_argument("--append", default="", metavar="CMDLINE", help="kernel command line")
    p.add_argument("--accel", choices=("tcg", "kvm"),
                   help="accelerator (default tcg; UNIK_ACCEL=kvm)")
    p.add_argument("--port", action="append", default=[], metavar="HOST[:GUEST]",
                   help="forward host 127.0.0.1:HOST to guest port GUEST (default 80); "
                        "repeatable; needs user networking")
    p.add_argument("--net", metavar="user|none|dgram:QPORT:PEER",
                   help="network: user (default; QEMU user networking), none (no device), "
                        "or dgram:QPORT:PEER (raw Ethernet frames over UDP on 127.0.0.1: "
                        "QEMU receives on QPORT and sends to PEER)")
    p.add_argument("--icount", action="store_true",
                   help="count instructions (TSC = instructions; for benchmarks)")
    p.add_argument("-d", "--detach", action="store_true",
                   help="return once the probe channel answers (else: show the serial "
                        "console until Ctrl-C, which stops the instance)")
    p.add_argument("--no-wait", action="store_true",
                   help="with --detach, return as soon as QEMU started")
    p.add_argument("--no-build", action="store_true", help="never run make")
    p.add_argument("--no-mux", action="store_true",
                   help="start no mux: the probe chardev stays free for one direct "
                        "client (--detach then waits only for QEMU's socket)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                   help="how long --detach waits for the channel (default 60)")


def run(ctx, args):
    from introspect import build as B
    from introspect import instance as I
    from introspect import qemu as Q
    from introspect.elfinfo import build_id

    mem = Q.parse_mem(args.mem)
    from introspect import netopts as N
    ports = N.parse_ports(args.port)
    net, dgram = N.parse_net(args.net, ports)
    N.check_host_ports(ports)
    if args.timeout <= 0:
        raise UnikError(f"bad --timeout {args.timeout:g}", "give a positive number of seconds")
    if args.name:
        I.validate_name(args.name)
    if args.kernel:
        app, elf = B.resolve_kernel(args.app, args.kernel)
    else:
        app = args.app or B.DEFAULT_APP
        elf = B.ensure_built(app, auto=not args.no_build)
    bid = build_id(elf)
    opts = Q.BootOptions(mem=mem, accel=args.accel or Q.default_accel(),
                         icount=args.icount, append=args.append,
                         net=net, ports=ports, dgram=dgram)
    inst = I.boot(app=app, kernel=elf, build_id=bid, name=args.name, opts=opts,
                  mux=not args.no_mux)
    info = {"name": inst.name, "pid": inst.qemu_pid, "build_id": bid, "app": app,
            "dir": str(inst.dir), "net": net, "ports": ports}
    if args.detach:
        if args.no_wait:
            pass
        elif args.no_mux:
            from introspect.client import wait_probe_sock
            wait_probe_sock(inst, args.timeout)
        else:
            from introspect.client import wait_ready
            hello = wait_ready(inst, args.timeout)
            info["kernel"] = hello["kernel"]
        if args.json:
            ctx.json(info)
        else:
            ctx.write(f"{inst.name}  pid {inst.qemu_pid}  build-id {bid or 'none'}")
            for h, g in ports:
                ctx.write(f"  http://127.0.0.1:{h}/ -> guest port {g}")
        return 0
    return _foreground(ctx, inst, args)


def _foreground(ctx, inst, args):
    """Show serial.log until Ctrl-C (then stop the instance) or QEMU exits."""
    from introspect import instance as I
    ctx.err.write(f"unik: booted {inst.name} (pid {inst.qemu_pid}); Ctrl-C stops it\n")
    ctx.err.flush()
    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    for s in old:
        signal.signal(s, interrupt)
    serial = inst.dir / "serial.log"
    pos, warned, status = 0, False, None
    out = getattr(ctx.out, "buffer", None)
    try:
        while True:
            proc = getattr(inst, "proc", None)
            alive = proc.poll() is None if proc else inst.running
            try:
                with open(serial, "rb") as f:
                    f.seek(pos)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            if data:
                pos += len(data)
                if out is not None:
                    out.write(data)
                    out.flush()
                else:
                    ctx.out.write(data.decode("utf-8", "replace"))
                    ctx.out.flush()
            if not alive:
                status = proc.returncode if proc else None
                break
            if not warned and inst.mux and not inst.mux_running():
                err = I.mux_error(inst)
                if err:
                    ctx.err.write(f"unik: warning: probe channel: {err['msg']}\n")
                    warned = True
            time.sleep(0.05)
    except KeyboardInterrupt:
        ctx.err.write(f"\nunik: stopping {inst.name}\n")
        ctx.err.flush()
        I.stop(inst)
        return 0
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    how = f"with status {status}" if status is not None else ""
    ctx.err.write(f"unik: {inst.name} exited {how}\n".replace("  ", " "))
    I.stop(inst)
    return status if status is not None else 0


COMMAND = Command("boot", "boot an instance (builds the kernel when stale)", run, args=args)
