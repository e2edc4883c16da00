import argparse
import re

from introspect.errors import UnikError

from ..registry import Command, UsageError
from ..render import hexdump

MAX_DUMP = 1 << 20


def args(p):
    p.add_argument("-n", "--name", dest="name", metavar="NAME",
                   help="instance (default: the only running one)")
    p.add_argument("w1", metavar="NAME|ADDR", help="the address, or the instance when three words are given")
    p.add_argument("w2", metavar="ADDR|LEN", nargs="?", help="address (0x...) or symbol[+offset], or the length")
    p.add_argument("w3", metavar="LEN", nargs="?",
                   help="bytes (default: the symbol's size, or 64)")
    p.add_argument("extra", nargs="*", help=argparse.SUPPRESS)


def split_where(args) -> None:
    """`x ADDR`, `x ADDR LEN` or `x NAME ADDR LEN` (as the other commands
    take NAME first); -n NAME works with the first two forms."""
    w = [a for a in (args.w1, args.w2, args.w3) if a is not None] + args.extra
    if len(w) > 3:
        raise UsageError(f"too many arguments: {' '.join(w)}", "usage: unik x [NAME] ADDR [LEN]")
    if len(w) == 3:
        if args.name and args.name != w[0]:
            raise UsageError(f"two instance names: -n {args.name} and {w[0]}",
                             "give the instance once")
        args.name, w = w[0], w[1:]
    args.addr, args.length = w[0], (w[1] if len(w) > 1 else None)


def parse_int(text: str, what: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise UsageError(f"bad {what} {text!r}", "give a number like 64 or 0x40") from None
    if v < 0:
        raise UsageError(f"bad {what} {text!r}: negative", "give a positive number")
    if v >= 1 << 64:
        raise UsageError(f"bad {what} {text!r}: beyond 64 bits", "give a 64-bit address")
    return v


def resolve(text: str, kernel: str) -> tuple[int, int | None]:
    """ADDR as a number, or symbol[+off] looked up in the kernel ELF."""
    if re.match(r"^(0x[0-9a-fA-F]+|[0-9]+)$", text):
        return parse_int(text, "address"), None
    m = re.match(r"^([A-Za-z_.$][\w.$]*)(?:\+(0x[0-9a-fA-F]+|[0-9]+))?$", text)
    if not m:
        raise UsageError(f"bad address {text!r}", "give 0xADDR or a symbol name")
    from introspect.elfinfo import symbols
    syms = symbols(kernel)
    if m.group(1) not in syms:
        raise UnikError(f"no symbol {m.group(1)!r} in {kernel}",
                        "give a hex address, or a function/variable name of the kernel")
    addr, size = syms[m.group(1)]
    off = int(m.group(2), 0) if m.group(2) else 0
    return addr + off, (size - off if size > off else None)


def run(ctx, args):
    split_where(args)
    inst = ctx.find(args)
    addr, size = resolve(args.addr, inst.kernel)
    n = parse_int(args.length, "length") if args.length else (size or 64)
    if n == 0 or n > MAX_DUMP:
        raise UsageError(f"bad length {n}", f"give 1 to {MAX_DUMP} bytes")
    with ctx.channel(args) as ch:
        data = ch.memread(addr, n)
    if args.json:
        ctx.json({"instance": inst.name, "addr": addr, "len": len(data), "hex": data.hex()})
    else:
        ctx.write(hexdump(addr, data))


COMMAND = Command("x", "hex dump of guest memory: x [NAME] ADDR|SYMBOL [LEN]", run,
                  args=args,
                  epilog="forms: x ADDR, x ADDR LEN, x NAME ADDR LEN (or -n NAME);\n"
                         "ADDR is 0xHEX, a decimal number, or symbol[+offset].")
