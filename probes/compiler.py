"""The D compiler's driver: source text -> program.Program.

    compile_script(source, filename, probes, types=None, options=None) -> Program
    compile_ast(script, source, filename, probes, types=None, options=None) -> Program

Passes: parse (probes/parser.py) -> options (`#pragma D option`, then the
caller's dict, e.g. -x, wins) -> sema (probes/sema.py: resolve, type-check,
lower to probes/ir.py) -> codegen (probes/codegen.py: bytecode and the
container).  Every error of a pass is collected; the pass's errors are
raised together as diag.CompileError.

Options and their defaults are in probes/options.py (bufsize 256k, aggsize
256k, dynvarsize 256k, strsize 256, quiet off, switchrate 10hz); the
Program's `options` holds them all, sizes in bytes, switchrate in Hz.

Pure: no I/O.
"""
from __future__ import annotations

from probes import codegen, options as opts, sema
from probes.program import Program


def compile_script(source: str, filename: str, probes: list, types=None,
                   options: dict | None = None) -> Program:
    """Compile D source; raises diag.CompileError with every error found."""
    from probes.parser import parse
    script = parse(source, filename)
    return compile_ast(script, source, filename, probes, types, options)


def compile_ast(script, source: str, filename: str, probes: list, types=None,
                options: dict | None = None) -> Program:
    """The passes after parsing (tests drive it with hand-made trees)."""
    errors: list = []
    values = resolve_options(getattr(script, "pragmas", []) or [], options or {}, errors)
    _raise(errors, source, filename)
    if not script.clauses:
        errors.append(sema.Diag(None, f"{filename}: the program has no probe clauses",
                                ["e.g. BEGIN { printf(\"hello\\n\"); exit(0); }"]))
    _raise(errors, source, filename)
    an = sema.analyze(script, probes, types, values["strsize"], filename)
    _raise(an.errors, source, filename)
    try:
        gen = codegen.generate(an.clauses, an.variables, an.aggs, len(an.recdescs),
                               values["strsize"])
    except codegen.CodegenError as e:
        _raise([sema.Diag(e.pos, e.message, [e.hint] if e.hint else [])], source, filename)
    for c, start, lines in zip(an.program_clauses, gen.starts, gen.lines):
        c.start, c.lines = start, lines
    return Program(source, filename, gen.blob, an.program_clauses, an.aggdescs,
                   an.recdescs, an.enablings, values)


def resolve_options(pragmas: list, given: dict, errors: list) -> dict:
    """Defaults, then `#pragma D option` (objects with name, value, pos),
    then the caller's dict (strings or already-typed values)."""
    values = dict(opts.DEFAULTS)
    for p in pragmas:
        try:
            values[p.name] = opts.parse_option(p.name, p.value)
        except opts.OptionError as e:
            errors.append(sema.Diag(getattr(p, "pos", None), e.message,
                                    [e.hint] if e.hint else []))
    for name, value in given.items():
        try:
            values[name] = opts.parse_option(name, None if value is True else str(value)) \
                if not isinstance(value, bool) or name != "quiet" else value
        except opts.OptionError as e:
            errors.append(sema.Diag(None, f"-x {name}: {e.message}",
                                    [e.hint] if e.hint else []))
    return values


def _raise(errors: list, source: str, filename: str) -> None:
    """Raise diag.CompileError for errors (sema.Diag), if any."""
    if not errors:
        return
    from probes import diag
    raise diag.CompileError([_to_diag(diag, d) for d in errors], source)


def _to_diag(diag, d):
    return diag.Diagnostic(d.pos, d.message, d.hints)
