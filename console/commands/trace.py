"""`unik trace`: run a D script in an instance's kernel, like dtrace(1M).

    unik trace [NAME] -e 'PROGRAM'         the program text
    unik trace [NAME] FILE.d               a script file (#pragma D option ...)
    unik trace [NAME] -n 'PROBE { ... }'   dtrace -n (a bare PROBE: default action)
    unik trace [NAME] -l [PATTERN]         list probes like dtrace -l; -v adds arguments
    -q  quiet   -x OPTION=VALUE   --duration SECONDS   --json

Flow: find the instance and its kernel ELF, load the probe table from it
(introspect/probetable.py), compile (probes/compiler.py; errors are caret
diagnostics on stderr, exit 2), then run a TraceSession
(introspect/trace.py) and feed what it returns to the Consumer
(probes/consumer.py) until exit(), Ctrl-C or --duration; at the end the
aggregations printa() did not print are printed.  The exit status is the
script's exit(code); 2 for a compile error; 3 when the kernel's deadman
aborted the session (one `unik: deadman: session aborted: ...` line on
stderr says why; -x deadman/cpubudget/cpuwindow set its limits).
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field

from ..registry import Command, UsageError

EXIT_COMPILE = 2
EXIT_DEADMAN = 3                # the kernel's deadman aborted the session
POLL = 0.2                      # seconds per poll of the session


def args(p):
    p.add_argument("script", nargs="?", metavar="FILE.d|PATTERN",
                   help="D script file; with -l, the probes to list")
    p.add_argument("-e", dest="programs", action="append", default=[], metavar="PROGRAM",
                   help="the D program text (repeatable)")
    p.add_argument("-n", dest="probes", action="append", default=[], metavar="'PROBE {...}'",
                   help="a probe description with an optional clause, as dtrace -n")
    p.add_argument("-l", dest="list", action="store_true",
                   help="list the probes (matching PATTERN, or -n PATTERN) instead of "
                        "tracing; -lv adds their arguments")
    p.add_argument("-v", dest="verbose", action="store_true",
                   help="with -l: argument types and names")
    p.add_argument("-q", dest="quiet", action="store_true",
                   help="quiet: print only what printf/trace/printa print")
    p.add_argument("-x", dest="options", action="append", default=[], metavar="OPTION=VALUE",
                   help="set an option: bufsize, aggsize, dynvarsize, strsize, switchrate, "
                        "quiet, deadman, cpubudget, cpuwindow (defaults in docs; e.g. "
                        "-x bufsize=1m)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop after this many seconds (and print the aggregations)")
    p.add_argument("--core", metavar="CORE",
                   help="run the BEGIN and END clauses over an ELF core instead (post-mortem)")
    p.add_argument("--kernel", metavar="ELF",
                   help="with --core: the kernel it ran (default: found by build-id)")


@dataclass
class Plan:
    """What the command line asks for (pure: see plan())."""
    name: str | None
    listing: bool = False
    pattern: str = ""
    verbose: bool = False
    source: str = ""
    filename: str = "-e"
    what: str = ""                    # for "matched N probes": description or script
    options: dict = field(default_factory=dict)
    quiet: bool = False
    duration: float | None = None


def plan(a, read_file=None, is_instance=None) -> Plan:
    """Turn parsed arguments into a Plan; UsageError for bad combinations.
    `read_file(path) -> str` reads a script and `is_instance(name) -> bool`
    says whether an instance of that name exists (both injected for tests)."""
    read_file = read_file or _read_script
    is_instance = is_instance or _instance_exists
    name, script = getattr(a, "name", None), a.script
    if a.list:
        return _plan_listing(a, [x for x in (name, script) if x is not None], is_instance)
    given = bool(a.programs or a.probes)
    if given and script is not None:
        raise UsageError(f"unexpected argument {script!r}",
                         "give NAME once, and either -e/-n/-l or a FILE.d")
    if script is None and not given and name is not None and _is_script(name):
        name, script = None, name                # `unik trace FILE.d`
    if a.verbose:
        raise UsageError("-v goes with -l", "unik trace -lv [PATTERN] lists probes with arguments")
    if a.duration is not None and not a.duration > 0:
        raise UsageError(f"bad --duration {a.duration}", "give a positive number of seconds")
    p = Plan(name=name, quiet=a.quiet, duration=a.duration, verbose=a.verbose)
    p.options = parse_options(a.options)
    sources = [s for s in a.programs] + [_probe_clause(n) for n in a.probes]
    if script is not None:
        if sources:
            raise UsageError("a script file and -e/-n together", "give one of them")
        p.source, p.filename, p.what = read_file(script), script, f"script '{script}'"
    elif sources:
        p.source = "\n".join(sources)
        p.filename = "-e" if a.programs else "-n"
        p.what = f"description '{a.probes[0]}'" if a.probes and not a.programs \
            else "program"
    else:
        raise UsageError("no program given",
                         "unik trace -e 'BEGIN { printf(\"hello\\n\"); exit(0); }', "
                         "unik trace FILE.d or unik trace -l")
    if p.quiet:
        p.options["quiet"] = True
    return p


def _plan_listing(a, positionals: list, is_instance) -> Plan:
    """-l [NAME] [PATTERN] (or -l -n PATTERN): one positional is the NAME
    when an instance has that name, else the PATTERN."""
    if a.programs:
        raise UsageError("-l lists probes; it takes no program",
                         "unik trace -l 'sched:::*' lists the sched probes")
    name = pattern = None
    if len(positionals) == 2:
        name, pattern = positionals
    elif positionals:
        if is_instance(positionals[0]):
            name = positionals[0]
        else:
            pattern = positionals[0]
    if pattern is not None and a.probes:
        raise UsageError(f"two patterns: {pattern!r} and -n {a.probes[0]!r}",
                         "give the probes to list once")
    pattern = pattern if pattern is not None else ",".join(a.probes)
    return Plan(name=name, listing=True, pattern=pattern, verbose=a.verbose)


def _instance_exists(name: str) -> bool:
    from introspect.instance import list_instances
    try:
        return any(i.name == name for i in list_instances())
    except (OSError, ValueError):
        return False


def _is_script(arg: str) -> bool:
    return arg.endswith(".d") or os.path.isfile(arg)


def _probe_clause(text: str) -> str:
    """dtrace -n: a probe description alone gets the default action."""
    return text if "{" in text else text + " {}"


def _read_script(path: str) -> str:
    from introspect.errors import UnikError
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise UnikError(f"cannot read script {path}: {getattr(e, 'strerror', None) or e}",
                        "give the path of a D script (FILE.d)") from None


def parse_options(items) -> dict:
    """-x NAME=VALUE items -> {name: stored value} (probes/options.py rules)."""
    from probes.options import OptionError, parse_option
    out = {}
    for item in items:
        name, eq, value = item.partition("=")
        try:
            out[name.strip()] = parse_option(name.strip(), value if eq else None)
        except OptionError as e:
            raise UsageError(f"-x {item}: {e.message}", e.hint or "see unik trace --help") \
                from None
    return out


# ------------------------------------------------------------------ listing

def select(probes, pattern: str) -> list:
    """The probes a -l PATTERN names (every probe for an empty pattern).
    UsageError for a part that names no probe (with the closest ones), as
    dtrace -l fails to match a description."""
    if not pattern:
        return list(probes)
    from probes.probematch import closest, match
    seen, out = set(), []
    for part in (s.strip() for s in pattern.split(",")):
        try:
            found = [pr for pr, _arg in match(part, probes) if pr in probes]
        except ValueError as e:
            raise UsageError(f"bad probe description {part!r}: {e}",
                             "tick-N probes exist while a script uses them") from None
        if not found:
            near = closest(part, probes)
            raise UsageError(f"no probe matches {part!r}",
                             f"did you mean {' or '.join(near)}?" if near else
                             "unik trace -l lists every probe")
        for pr in found:
            if pr.id not in seen:
                seen.add(pr.id)
                out.append(pr)
    return sorted(out, key=lambda p: p.id)


def listing_json(probes) -> list:
    return [{"id": p.id, "provider": p.provider, "module": p.module, "function": p.function,
             "name": p.name, "args": [{"type": t, "name": n} for t, n in p.args]}
            for p in probes]


# ------------------------------------------------------------------ running

def caret(source: str, pos, message: str, hint: str = "") -> str:
    """`file:line:col: error: message`, the line and a ^~~ underline, the
    hint: the compiler's rendering (probes/diag.py)."""
    from probes.diag import Diagnostic, render
    return render([Diagnostic(pos, message, [hint] if hint else [])], source)


class _Stopper:
    """SIGINT ends the run (a second one aborts), even when the parent had
    SIGINT ignored; --duration likewise.  Restores the old handler."""

    def __init__(self, duration):
        self.deadline = time.monotonic() + duration if duration else None
        self.interrupted = 0
        self.old = None

    def __enter__(self):
        try:
            self.old = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:          # not the main thread: no handler to install
            self.old = None
        return self

    def _on_sigint(self, signum, frame):
        self.interrupted += 1
        if self.interrupted > 1:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)

    @property
    def done(self) -> bool:
        return bool(self.interrupted) or (self.deadline is not None
                                          and time.monotonic() >= self.deadline)

    def timeout(self) -> float:
        if self.deadline is None:
            return POLL
        return max(0.0, min(POLL, self.deadline - time.monotonic()))


def feed(consumer, events) -> bool:
    """Give session events to the consumer; True when the script exited
    or the deadman aborted the session (the session keeps the reason)."""
    exited = False
    for ev in events:
        if ev[0] == "deadman":
            exited = True
        if ev[0] == "records":
            consumer.handle_records(ev[1])
        elif ev[0] == "drops":
            for kind, n in ev[1].items():
                consumer.drops(n, kind)
        elif ev[0] == "exit":
            exited = True
    return exited


def run_session(session, consumer, stopper) -> None:
    """Start, stream until exit/Ctrl-C/--duration/deadman, stop, print the
    end."""
    session.start()
    while not stopper.done:
        if feed(consumer, session.poll(stopper.timeout())):
            break
    feed(consumer, session.stop())
    consumer.finish()


def run(ctx, a):
    p = plan(a)
    a.name = p.name
    if getattr(a, "core", None):
        if p.name:
            raise UsageError(f"give an instance NAME or --core, not both ({p.name}, {a.core})",
                             "drop NAME to read the core")
        from ._tracecore import run_core
        return run_core(ctx, a, p)
    if getattr(a, "kernel", None):
        raise UsageError("--kernel goes with --core", "a live instance knows its kernel")
    inst = ctx.find(a, need_running=not p.listing)    # -l reads only the ELF
    from introspect import probetable
    probes = probetable.load(inst.kernel)
    if p.listing:
        chosen = select(probes, p.pattern)
        if a.json:
            ctx.json(listing_json(chosen))
        else:
            ctx.write(probetable.listing(chosen, p.verbose))
        return 0
    prog, types = _compile(ctx, p, probes, inst.kernel)
    if prog is None:
        return EXIT_COMPILE
    return _trace(ctx, a, p, prog, types)


def _compile(ctx, p, probes, kernel):
    """(Program, TypeDB) or (None, None) after printing the diagnostics."""
    from introspect.dwarf import TypeDB
    from probes.compiler import compile_script
    from probes.diag import CompileError
    types = TypeDB.from_elf(kernel)
    try:
        return compile_script(p.source, p.filename, probes, types=types,
                              options=p.options), types
    except CompileError as e:
        ctx.err.write(str(e).rstrip("\n") + "\n")
        ctx.err.flush()
        return None, None


def _trace(ctx, a, p, prog, types) -> int:
    from introspect.trace import TraceSession, TraceVerifyError, deadman_text
    from probes.consumer import Consumer
    quiet = p.quiet or bool(prog.options.get("quiet"))
    if not quiet and not a.json:
        n = len(prog.enablings)
        ctx.err.write(f"unik: {p.what} matched {n} probe{'s' if n != 1 else ''}\n")
        ctx.err.flush()
    with ctx.channel(a) as ch, TraceSession(ch, prog) as session:
        consumer = Consumer(prog, ctx.out, quiet=quiet, json=a.json, err=ctx.err,
                            symbolize=types.symbol if types else None,
                            aggs=session.aggregations, clear=session.clear)
        try:
            with _Stopper(p.duration) as stopper:
                run_session(session, consumer, stopper)
        except TraceVerifyError as e:
            ctx.err.write(_verify_text(prog, e))
            ctx.err.flush()
            return EXIT_COMPILE
    if session.aborted:
        # last, after what the session printed: why it ended early
        ctx.out.flush()
        ctx.err.write(f"unik: deadman: session aborted: {deadman_text(session.aborted)}\n")
        ctx.err.flush()
        return EXIT_DEADMAN
    return 0 if consumer.exit_code is None else consumer.exit_code & 0xFF


def _verify_text(prog, e) -> str:
    """The kernel verifier's refusal, at the script position of its pc."""
    pos = prog.pos_of_pc(e.pc) if e.pc >= 0 else None
    hint = "the compiler and the kernel's verifier disagree: report it with the script"
    if pos is None:
        return f"unik: error: the kernel refused the program: {e.reason}\nhint: {hint}\n"
    return caret(prog.source, pos, f"the kernel's verifier refused this: {e.reason} "
                                    f"(instruction {e.pc})", hint)


EPILOG = """examples:
  unik trace -n 'sched:::switch { @[thread] = count(); }'
  unik trace demo -e 'BEGIN { printf("%Y\\n", walltimestamp); exit(0); }'
  unik trace -q --duration 5 script.d
  unik trace -lv 'mem:::*'
  unik trace --core crash.core -e 'BEGIN { printf("%s\\n", stringof(`sched_threads[1].name)); }'
"""

COMMAND = Command("trace", "run a D script in the kernel (like dtrace); -l lists probes",
                  run, args=args, instance="optional", epilog=EPILOG)
