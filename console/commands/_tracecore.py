"""`unik trace --core CORE`: the script's BEGIN and END clauses run over a
core by the kernel's probe VM built for the host (introspect/corevm.py);
what they print goes through the same Consumer as a live trace, so one D
script prints the same thing live and post-mortem."""
from __future__ import annotations

from ..registry import UsageError


def run_core(ctx, a, p) -> int:
    """Compile p's script against the core's kernel, run it over the core."""
    from introspect import probetable
    from introspect.corevm import CoreVM, check_probes
    from introspect.program import Program
    from introspect.trace import TraceVerifyError
    from probes.consumer import Consumer
    from .trace import EXIT_COMPILE, _compile, _verify_text, feed
    if p.listing:
        raise UsageError("-l lists a live kernel's probes; --core runs a script",
                         "unik trace -l NAME, or --core CORE -e 'BEGIN { ... }'")
    if p.duration is not None:
        raise UsageError("--duration has no meaning over a core",
                         "BEGIN and END run once; drop --duration")
    with Program.from_core(a.core, a.kernel) as prog:
        probes = probetable.load(prog.db.path)
        compiled, types = _compile(ctx, p, probes, prog.db.path)
        if compiled is None:
            return EXIT_COMPILE
        check_probes(compiled)
        quiet = p.quiet or bool(compiled.options.get("quiet"))
        if not quiet and not a.json:
            n = len(compiled.enablings)
            ctx.err.write(f"unik: {p.what} matched {n} probe{'s' if n != 1 else ''} "
                          f"(over the core {a.core})\n")
            ctx.err.flush()
        try:
            vm = CoreVM(compiled, prog)
        except TraceVerifyError as e:
            ctx.err.write(_verify_text(compiled, e))
            return EXIT_COMPILE
        with vm:
            consumer = Consumer(compiled, ctx.out, quiet=quiet, json=a.json, err=ctx.err,
                                symbolize=types.symbol if types else None,
                                aggs=vm.aggregations, clear=vm.clear)
            feed(consumer, vm.run_script())
            consumer.finish()
    return 0 if consumer.exit_code is None else consumer.exit_code & 0xFF
