import json
import time

from ..registry import Command


def args(p):
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new log text (poll the kernel)")
    p.add_argument("--interval", type=float, default=0.25, metavar="SECONDS",
                   help="poll interval with -f (default 0.25)")
    p.add_argument("--from", dest="start", type=int, default=0, metavar="OFFSET",
                   help="log stream offset to start at (default: the oldest kept)")


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
    inst = ctx.find(args)
    if inst.state == "panicked":
        return _from_serial(ctx, inst, args)
    from introspect.errors import ChannelDown, UnikError
    try:
        return _follow(ctx, args)
    except ChannelDown:
        if args.follow and not inst.running:
            raise UnikError(f"instance {inst.name} stopped while following its log",
                            "unik ls shows what is running") from None
        if args.follow and inst.panic_report():
            raise UnikError(f"instance {inst.name} panicked while following its log",
                            f"unik log {inst.name} shows the report") from None
        raise


def _follow(ctx, args):
    """Print the ring from args.start (following with -f)."""
    with ctx.channel(args) as ch:
        off, first = args.start, True
        text, last = [], None
        while True:
            for h, data in _drain(ch, off):
                if first and h["offset"] > 0 and args.start == 0:
                    data = _whole_lines(data)
                lost = h["lost"]
                off = h["next"]
                last = h
                if args.json and args.follow:
                    if data or lost:
                        ctx.write(json.dumps({"offset": h["offset"], "next": h["next"],
                                              "lost": lost,
                                              "text": data.decode("utf-8", "replace")}))
                    continue
                if args.json:
                    text.append(data)
                    continue
                if lost and not first:
                    ctx.err.write(f"unik: {lost} log bytes lost (overwritten before read)\n")
                    ctx.err.flush()
                if data:
                    ctx.out.write(data.decode("utf-8", "replace"))
                    ctx.out.flush()
                first = False
            if not args.follow:
                break
            first = False
            time.sleep(args.interval)
    if args.json and not args.follow:
        ctx.json({"instance": ch.name, "oldest": last["oldest"], "head": last["head"],
                  "next": last["next"], "text": b"".join(text).decode("utf-8", "replace")})


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
