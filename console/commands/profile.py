"""`unik profile`: sample the kernel's stacks and write a flame graph.

    unik profile [NAME] [--hz N] [--duration S] [-o FILE] [--json]

Runs `profile-N { @[stack()] = count(); }` in the instance's kernel (the
profile provider: the local APIC timer, separate from the scheduler's
tick) for --duration seconds (Ctrl-C ends it early; the session is
stopped and the kernel's sites and timer restored either way), then
writes the sampled stacks:

  * folded (`f1;f2;f3 count`, root first, the format flamegraph.pl,
    speedscope and inferno read) to stdout, or to FILE;
  * an interactive flame graph SVG when FILE ends in .svg
    (probes/flamegraph.py);
  * with --json, one object: the run and each stack's frames and count.

Frames are function names from the kernel ELF's symbol table (the pcs
are symbolized on the host: probes/stacks.py).  A line when sampling
starts and a summary (samples, rate, where the output went) go to stderr.
"""
from __future__ import annotations

import time

from ..registry import Command, UsageError

DEFAULT_HZ = 997                 # as DTrace's profile-997: not in step with the 1 kHz tick
DEFAULT_SECONDS = 5.0


def args(p):
    p.add_argument("--hz", type=int, default=DEFAULT_HZ, metavar="N",
                   help=f"samples per second (default {DEFAULT_HZ}; at most 20000)")
    p.add_argument("--duration", type=float, default=DEFAULT_SECONDS, metavar="S",
                   help=f"seconds to sample (default {DEFAULT_SECONDS:g}; Ctrl-C ends early)")
    p.add_argument("-o", dest="output", default=None, metavar="FILE",
                   help="write to FILE: folded stacks, or a flame graph when it ends in .svg")
    p.add_argument("--depth", type=int, default=None, metavar="N",
                   help="frames per stack (default the VM's stack() default, at most 32)")


def script(hz: int, depth: int | None = None) -> str:
    """The D program `unik profile` runs (pure)."""
    st = f"stack({depth})" if depth else "stack()"
    return f"profile-{hz} {{ @[{st}] = count(); }}"


def check(a) -> None:
    """UsageError for options out of range (pure)."""
    from probes import isa
    from probes.probematch import MIN_PROFILE_NS
    if a.hz <= 0 or 10**9 // a.hz < MIN_PROFILE_NS:
        raise UsageError(f"--hz {a.hz}: the rate must be 1 to {10**9 // MIN_PROFILE_NS}",
                         "e.g. --hz 997")
    if not a.duration > 0:
        raise UsageError(f"--duration {a.duration:g}: must be more than 0 seconds",
                         "e.g. --duration 5")
    if a.depth is not None and not 1 <= a.depth <= isa.MAX_STACK_FRAMES:
        raise UsageError(f"--depth {a.depth}: must be 1 to {isa.MAX_STACK_FRAMES}",
                         "e.g. --depth 16")


def samples_of(entries, symbolize=None) -> list:
    """(frames root first, count) per aggregation entry of the program
    (keys: one stack), function names from symbolize (pure)."""
    from probes import stacks
    return [(stacks.sample(e.key[0], symbolize), e.words[0]) for e in entries
            if e.words[0]]


def output(samples, fmt: str, title: str, subtitle: str = "") -> str:
    """The text to write: "svg" a flame graph, "folded" folded stacks (pure)."""
    if fmt == "svg":
        from probes.flamegraph import render_svg
        return render_svg(samples, title=title, subtitle=subtitle)
    from probes.folded import fold
    return fold(samples)


def to_json(samples, name, hz, seconds, drops) -> dict:
    from probes.folded import merge
    rows = merge(samples)
    return {"instance": name, "hz": hz, "seconds": round(seconds, 3),
            "samples": sum(c for _, c in rows), "drops": drops,
            "stacks": [{"frames": list(f), "count": c}
                       for f, c in sorted(rows, key=lambda r: -r[1])]}


def run(ctx, a):
    check(a)
    inst = ctx.find(a)
    from introspect import probetable
    from introspect.dwarf import TypeDB
    from probes import aggprint
    from probes.compiler import compile_script
    prog = compile_script(script(a.hz, a.depth), "profile", probetable.load(inst.kernel))
    types = TypeDB.from_elf(inst.kernel)
    a.name = inst.name
    entries, seconds, drops = _sample(ctx, a, prog)
    samples = samples_of(aggprint.decode_agg_entries(entries, prog), types.symbol)
    total = sum(c for _, c in samples)
    if a.json:
        ctx.json(to_json(samples, inst.name, a.hz, seconds, drops))
        return 0
    svg = bool(a.output and a.output.lower().endswith(".svg"))
    title = f"unik profile {inst.name}"
    sub = f"{total} samples in {seconds:.1f} s at {a.hz} Hz ({inst.app})"
    text = output(samples, "svg" if svg else "folded", title, sub)
    if a.output:
        with open(a.output, "w") as f:
            f.write(text)
    else:
        ctx.write(text)
    where = a.output or "stdout"
    ctx.err.write(f"unik: {total} samples, {len(samples)} stacks in {seconds:.1f} s "
                  f"at {a.hz} Hz -> {where}"
                  + (f" ({drops} aggregation drops: raise -x aggsize)" if drops else "")
                  + "\n")
    ctx.err.flush()
    return 0


def _sample(ctx, a, prog):
    """Run the session until --duration or Ctrl-C: (raw aggregation
    snapshot, seconds sampled, aggregation drops)."""
    from introspect.trace import TraceSession
    from .trace import _Stopper
    drops = 0
    with ctx.channel(a) as ch, TraceSession(ch, prog) as session:
        with _Stopper(a.duration) as stopper:
            t0 = time.monotonic()
            session.start()
            if not a.json:
                ctx.err.write(f"unik: sampling {a.name or ctx.name(a)} at {a.hz} Hz for "
                              f"{a.duration:g} s (Ctrl-C ends it early)\n")
                ctx.err.flush()
            try:
                while not stopper.done:
                    drops += _drops(session.poll(stopper.timeout()))
            finally:
                drops += _drops(session.stop())
            seconds = time.monotonic() - t0
        raw = session.aggregations()
    return raw, seconds, drops


def _drops(events) -> int:
    return sum(n for ev in events if ev[0] == "drops"
               for kind, n in ev[1].items() if kind == "agg")


EPILOG = """examples:
  unik profile web --duration 10 -o web.svg     an interactive flame graph
  unik profile web --hz 4999 > web.folded       folded stacks (flamegraph.pl, speedscope)
  unik profile web --json
"""

COMMAND = Command("profile", "sample kernel stacks (profile-N) into folded stacks or a "
                  "flame graph SVG", run, args=args, instance="optional", epilog=EPILOG)
