import json

from ..registry import Command
from ._core import core_args, open_core


def args(p):
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new log text (the kernel streams it)")
    p.add_argument("--interval", type=float, default=0.25, metavar="SECONDS",
                   help="with -f: how often to check the instance while no text "
                        "comes (default 0.25)")
    p.add_argument("--from", dest="start", type=int, default=0, metavar="OFFSET",
                   help="log stream offset to start at (default: the oldest kept)")
    core_args(p)


def _drain(ch, off):
    """Read from `off` until caught up; yield (head, data) pieces."""
    while True:
        h, data = ch.log(off)
        yield h, data
        off = h["next"]
        if not data or off >= h["head"]:
            return


def _whole_lines(data: bytes) -> bytes:
    """The ring wrapped and its oldest byte is mid-line: start at the next
    line, as dmesg does, instead of printing half a line."""
    i = data.find(b"\n")
    return data[i + 1:] if i >= 0 else b""


def run(ctx, args):
    if args.interval <= 0:
        from ..registry import UsageError
        raise UsageError(f"bad --interval {args.interval}", "give a positive number of seconds")
    if not 0 <= args.start < 1 << 64:
        from ..registry import UsageError
        raise UsageError(f"bad --from {args.start}", "give a log stream offset >= 0")
    if args.core and args.follow:
        from ..registry import UsageError
        raise UsageError("-f follows a running instance's log; a core does not grow",
                         "drop -f to print the core's log")
    prog = open_core(args)
    if prog is not None:
        return _from_core(ctx, args, prog)
    inst = ctx.find(args)
    if inst.state == "panicked":
        return _from_serial(ctx, inst, args)
    from introspect.errors import ChannelDown, UnikError
    try:
        return _follow(ctx, args)
    except ChannelDown:
        if args.follow and _stopping(inst):
            raise UnikError(f"instance {inst.name} stopped while following its log",
                            "unik ls shows what is running") from None
        if args.follow and inst.panic_report():
            raise UnikError(f"instance {inst.name} panicked while following its log",
                            f"unik log {inst.name} shows the report") from None
        raise


def _stopping(inst, grace: float = 3.0) -> bool:
    """Is the instance gone, or going?  The channel closes when the mux
    sees QEMU's socket close, a moment before QEMU's process is gone, so a
    closed channel gets `grace` seconds to turn into a stopped instance."""
    import time
    end = time.monotonic() + grace
    while inst.running:
        if time.monotonic() > end or inst.panic_report():
            return False
        time.sleep(0.05)
    return True


def _follow(ctx, args):
    """Print the ring from args.start; with -f, then follow the LOG_DATA
    stream (subscribed first, so nothing falls between the two)."""
    from introspect import codec
    from introspect import protocol as P
    from introspect.errors import ChannelTimeout
    with ctx.channel(args) as ch:
        if args.follow:
            ch.require(P.Feature.LOG_STREAM, "log -f")
            ch.subscribe(P.MsgType.LOG_DATA, P.MsgType.LOG_DATA)
        out = _Printer(ctx, args)
        off = args.start
        for h, data in _drain(ch, off):
            if out.first and h["offset"] > 0 and args.start == 0:
                data = _whole_lines(data)
            off = h["next"]
            out.emit(h, data, h["lost"])
        if not args.follow:
            if args.json:
                last = out.last
                ctx.json({"instance": ch.name, "oldest": last["oldest"], "head": last["head"],
                          "next": last["next"],
                          "text": b"".join(out.text).decode("utf-8", "replace")})
            return 0
        out.first = False
        while True:
            try:
                fr = ch.next_event(timeout=args.interval)
            except ChannelTimeout:
                continue
            if fr.type != P.MsgType.LOG_DATA:
                continue
            h, data = ch._decode(codec.decode_log, fr.payload)
            if h["next"] <= off:
                continue                    # already printed from the backlog
            lost = max(0, h["offset"] - off)
            data = data[max(0, off - h["offset"]):]
            off = h["next"]
            out.emit(h, data, lost)


class _Printer:
    """Writes log pieces as text (losses on stderr) or JSON lines (-f)."""

    def __init__(self, ctx, args):
        self.ctx, self.args = ctx, args
        self.first = True
        self.text: list = []
        self.last = None

    def emit(self, h: dict, data: bytes, lost: int) -> None:
        ctx, args = self.ctx, self.args
        self.last = h
        if args.json and args.follow:
            if data or lost:
                ctx.write(json.dumps({"offset": h["next"] - len(data), "next": h["next"],
                                      "lost": lost,
                                      "text": data.decode("utf-8", "replace")}))
            return
        if args.json:
            self.text.append(data)
            return
        if lost and not self.first:
            ctx.err.write(f"unik: {lost} log bytes lost (overwritten before read)\n")
            ctx.err.flush()
        if data:
            ctx.out.write(data.decode("utf-8", "replace"))
            ctx.out.flush()
        self.first = False


def _from_core(ctx, args, prog):
    """The ring as a core holds it, printed as the live log is (from the
    oldest whole line when it wrapped, or from --from)."""
    from introspect import snapshot
    with prog:
        h, data = snapshot.log(prog)
    if args.start > h["oldest"]:
        data = data[args.start - h["oldest"]:]
    elif args.start == 0 and h["oldest"] > 0:
        data = _whole_lines(data)
    text = data.decode("utf-8", "replace")
    if args.json:
        ctx.json({"core": args.core, "oldest": h["oldest"], "head": h["head"],
                  "next": h["next"], "text": text})
        return 0
    ctx.out.write(text)
    ctx.out.flush()
    return 0


def _from_serial(ctx, inst, args):
    """The kernel halted: its channel is gone, but every log line also went
    to the serial console, so show that instead (and say so)."""
    text = (inst.dir / "serial.log").read_bytes().decode("utf-8", "replace")
    if args.json:
        ctx.json({"instance": inst.name, "source": "serial.log", "panicked": True,
                  "text": text})
        return 0
    ctx.err.write(f"unik: {inst.name} panicked and is halted; showing its serial "
                  f"console ({inst.dir / 'serial.log'})\n")
    ctx.err.flush()
    ctx.out.write(text)
    ctx.out.flush()
    return 0


COMMAND = Command("log", "print the kernel log (dmesg); -f follows it", run,
                  args=args, instance="optional", aliases=("dmesg",))
