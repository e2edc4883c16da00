"""D's functions and actions, checked and lowered to the typed tree (sema).

sema.py lowers a call's arguments first, then asks here:

    value_call(ctx, name, args, pos)   -> ir.Expr      strlen strjoin substr
                                                      strstr strchr index
                                                      stringof sym func
                                                      stack
    action_call(ctx, name, args, pos)  -> [ir stmt]   printf trace printa exit
                                                      clear trunc normalize
                                                      denormalize stack
    agg_call(ctx, name, args, pos)     -> (AggFunc, value or None, lq or None)

`args` are ir.Expr, or AggRef for an `@name` argument.  `ctx` gives
error(pos, message, hint="") and recdesc(kind, valtypes, fmt, agg, pos)
-> descriptor index.  Each recording action gets one RecDesc:

    kind         values recorded (RECV int / RECS string)     fmt   agg
    printf       one per conversion argument, in order         yes   -
    trace        the value (a stack(): RECK, the STACK encoding) -   -
    printa       none                                          maybe yes
    clear        none                                          -     yes
    trunc        N if given (int)                              -     yes
    normalize    the factor (int)                              -     yes
    denormalize  none                                          -     yes
    default      none (a clause with no actions)               -     -

Pure: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

from probes import ir, isa
from probes.dtypes import FUNC, I64, STACK, STRING, SYM, U64, DType
from probes.printf import FormatError, parse_format
from probes.program import Pos, ValType

H = isa.Helper
VALUE_FUNCS = ("strlen", "strjoin", "substr", "strstr", "strchr", "index", "stringof",
               "sym", "func", "stack")
ACTIONS = ("printf", "trace", "printa", "exit", "clear", "trunc", "normalize",
           "denormalize", "stack")
AGG_FUNCS = {"count": isa.AggFunc.COUNT, "sum": isa.AggFunc.SUM, "min": isa.AggFunc.MIN,
             "max": isa.AggFunc.MAX, "avg": isa.AggFunc.AVG, "stddev": isa.AggFunc.STDDEV,
             "quantize": isa.AggFunc.QUANTIZE, "lquantize": isa.AggFunc.LQUANTIZE}


@dataclass
class AggRef:
    """An `@name` argument (printa, clear, trunc...)."""
    agg: object                 # ir.AggInfo, or None if unknown (already reported)
    pos: Pos | None


def valtype(t: DType) -> ValType:
    """How the consumer decodes a recorded value of type t."""
    if t.is_string:
        return ValType("string", 0, False, "string")
    if t.kind == "stack":
        return ValType("stack", 8, False, "stack")
    return ValType("int", t.size if t.kind == "int" else 8, t.signed, t.name)


def as_string(ctx, e, what: str):
    """e as a VM string: strings as they are, kernel char */char[N] copied
    with STRINGOF; anything else is an error (returns None)."""
    if isinstance(e, ir.Expr) and e.t.is_string:
        return e
    if isinstance(e, ir.Expr) and e.t.stringlike:
        return ir.Call(STRING, e.pos, helper=H.STRINGOF, args=[e])
    ctx.error(_pos(e), f"{what} must be a string, not {_tname(e)}")
    return None


def as_int(ctx, e, what: str):
    """e as an integer value (integers and pointers); None after an error."""
    if isinstance(e, ir.Expr) and e.t.is_scalar:
        return e
    hint = "use strlen() for its length" if isinstance(e, ir.Expr) and e.t.is_string else ""
    ctx.error(_pos(e), f"{what} must be an integer, not {_tname(e)}", hint)
    return None


def _pos(e) -> Pos | None:
    return getattr(e, "pos", None)


def _tname(e) -> str:
    if isinstance(e, AggRef):
        return "an aggregation"
    return f"'{e.t}'" if e.t.kind != "string" else "a string"


def _arity(ctx, name: str, args: list, pos, lo: int, hi: int | None = None) -> bool:
    hi = lo if hi is None else hi
    if lo <= len(args) <= hi:
        return True
    want = f"{lo}" if lo == hi else f"{lo} to {hi}"
    ctx.error(pos, f"{name}() takes {want} argument{'s' if hi != 1 else ''}, "
                   f"got {len(args)}")
    return False


# ------------------------------------------------------------ value functions
def value_call(ctx, name: str, args: list, pos: Pos):
    """The typed tree of a value-returning function call (None after errors)."""
    if any(a is None for a in args):
        return None
    if name == "stack":
        return _stack(ctx, args, pos)
    if name in ("sym", "func"):
        if not _arity(ctx, name, args, pos, 1):
            return None
        a = as_int(ctx, args[0], f"the argument of {name}()")
        return a and ir.Cast(SYM if name == "sym" else FUNC, pos, a=a)
    if name == "stringof":
        if not _arity(ctx, name, args, pos, 1):
            return None
        a = args[0]
        if isinstance(a, ir.Expr) and a.t.kind in ("int", "ptr") and not a.t.stringlike:
            return ir.Call(STRING, pos, helper=H.STRINGOF, args=[a])
        return as_string(ctx, a, "the argument of stringof()")
    spec = {"strlen": ("s", U64, H.STRLEN), "strjoin": ("ss", STRING, H.STRJOIN),
            "substr": ("sii", STRING, H.SUBSTR), "strstr": ("ss", STRING, H.STRSTR),
            "strchr": ("si", STRING, H.STRCHR), "index": ("ss", I64, H.INDEX)}[name]
    kinds, rtype, helper = spec
    lo = 2 if name == "substr" else len(kinds)
    if not _arity(ctx, name, args, pos, lo, len(kinds)):
        return None
    out = []
    for i, (k, a) in enumerate(zip(kinds, args)):
        what = f"argument {i + 1} of {name}()"
        out.append(as_string(ctx, a, what) if k == "s" else as_int(ctx, a, what))
    if None in out:
        return None
    if name == "substr" and len(out) == 2:
        out.append(ir.Const(I64, pos, value=-1))
    return ir.Call(rtype, pos, helper=helper, args=out)


def _stack(ctx, args, pos):
    """stack() / stack(N): a Const of type STACK holding the frame cap."""
    if not _arity(ctx, "stack", args, pos, 0, 1):
        return None
    n = isa.STACK_DEFAULT
    if args:
        a = args[0]
        if not (isinstance(a, ir.Const) and a.t.is_int):
            ctx.error(_pos(a), "the argument of stack() must be an integer constant",
                      "the number of frames, e.g. stack(5)")
            return None
        n = a.value
        if not 1 <= n <= isa.MAX_STACK_FRAMES:
            ctx.error(_pos(a), f"stack({n}) asks for {n} frames; the VM records 1 to "
                               f"{isa.MAX_STACK_FRAMES}")
            return None
    return ir.Const(STACK, pos, value=n)


# ------------------------------------------------------------------ actions
def action_call(ctx, name: str, args: list, pos: Pos) -> list:
    """The statements of an action (a list, empty after errors)."""
    if name == "stack":                 # stack(); as a statement traces it
        v = _stack(ctx, args, pos)
        return _act_trace(ctx, [v], pos) if v is not None else []
    if any(a is None for a in args):
        return []                       # an argument's error is already reported
    return globals()["_act_" + name](ctx, args, pos)


def _act_printf(ctx, args, pos) -> list:
    if not args:
        ctx.error(pos, "printf() needs a format string")
        return []
    fmt = args[0]
    if not isinstance(fmt, ir.Str):
        ctx.error(_pos(fmt), "the format of printf() must be a string literal")
        return []
    try:
        parsed = parse_format(fmt.value.decode("utf-8", "replace"))
    except FormatError as e:
        ctx.error(_shift(fmt.pos, e.offset), f"bad printf format: {e.message}")
        return []
    wanted = []
    for c in (c for c in parsed if not isinstance(c, str)):
        wanted += [("int", c, "*")] * (c.nargs - 1) + [(c.arg_kind, c, None)]
    vals = args[1:]
    if len(vals) != len(wanted):
        ctx.error(pos, f"printf() format has {len(wanted)} conversion argument"
                       f"{'s' if len(wanted) != 1 else ''} but {len(vals)} "
                       f"{'were' if len(vals) != 1 else 'was'} given",
                  f"the format is {d_string(fmt.value)}")
        return []
    out = []
    for (kind, conv, star), v in zip(wanted, vals):
        what = f"the argument for {conv.text}" + (" (its '*')" if star else "")
        if kind == "string":
            e = v if isinstance(v, ir.Expr) and v.t in (SYM, FUNC) else \
                as_string(ctx, v, what)
        else:
            e = as_int(ctx, v, what)
            if e is not None and kind == "sym" and e.t not in (SYM, FUNC):
                e = ir.Cast(SYM, e.pos, a=e)
        out.append(e)
    if None in out:
        return []
    d = ctx.recdesc("printf", [valtype(e.t) for e in out], fmt.value.decode("utf-8",
                    "replace"), None, pos)
    return [ir.Record(d, out, pos)]


def d_string(value: bytes) -> str:
    """A string value as a D literal, escapes written back ("a\\n")."""
    esc = {0x0A: "\\n", 0x09: "\\t", 0x0D: "\\r", 0x5C: "\\\\", 0x22: '\\"', 0x00: "\\0"}
    out = []
    for b in value:
        out.append(esc.get(b) or (chr(b) if 0x20 <= b < 0x7F else "\\x%02x" % b))
    return '"' + "".join(out) + '"'


def _shift(p: Pos | None, off: int) -> Pos | None:
    """The position of character off of a string literal starting at p."""
    if p is None:
        return None
    return Pos(p.file, p.line, p.col + 1 + off, 1)


def _act_trace(ctx, args, pos) -> list:
    if not _arity(ctx, "trace", args, pos, 1):
        return []
    v = args[0]
    if isinstance(v, ir.Expr) and v.t.stringlike:
        v = as_string(ctx, v, "the argument of trace()")
    elif not (isinstance(v, ir.Expr) and (v.t.is_scalar or v.t.is_string or
                                          v.t.kind == "stack")):
        ctx.error(_pos(v), f"trace() records an integer, a string or a stack(), "
                           f"not {_tname(v)}")
        return []
    return [ir.Record(ctx.recdesc("trace", [valtype(v.t)], None, None, pos), [v], pos)]


def _act_exit(ctx, args, pos) -> list:
    if not _arity(ctx, "exit", args, pos, 1):
        return []
    v = as_int(ctx, args[0], "the exit code")
    return [ir.Exit(v, pos)] if v is not None else []


def _agg_arg(ctx, name, a):
    if isinstance(a, AggRef):
        return a.agg
    ctx.error(_pos(a), f"{name}() takes an aggregation (@name), not {_tname(a)}")
    return None


def _act_printa(ctx, args, pos) -> list:
    if not _arity(ctx, "printa", args, pos, 1, 2):
        return []
    fmt = None
    if len(args) == 2:
        if not isinstance(args[0], ir.Str):
            ctx.error(_pos(args[0]), "the format of printa() must be a string literal")
            return []
        fmt = args[0].value.decode("utf-8", "replace")
        try:
            parse_format(fmt, printa=True)
        except FormatError as e:
            ctx.error(_shift(args[0].pos, e.offset), f"bad printa format: {e.message}")
            return []
    agg = _agg_arg(ctx, "printa", args[-1])
    if agg is None:
        return []
    return [ir.Record(ctx.recdesc("printa", [], fmt, agg.index, pos), [], pos)]


def _simple_agg_action(ctx, name, args, pos, nvals: tuple) -> list:
    if not _arity(ctx, name, args, pos, 1 + nvals[0], 1 + nvals[1]):
        return []
    agg = _agg_arg(ctx, name, args[0])
    vals = [as_int(ctx, a, f"argument {i + 2} of {name}()") for i, a in enumerate(args[1:])]
    if agg is None or None in vals:
        return []
    d = ctx.recdesc(name, [valtype(v.t) for v in vals], None, agg.index, pos)
    return [ir.Record(d, vals, pos)]


def _act_clear(ctx, args, pos):
    return _simple_agg_action(ctx, "clear", args, pos, (0, 0))


def _act_trunc(ctx, args, pos):
    return _simple_agg_action(ctx, "trunc", args, pos, (0, 1))


def _act_normalize(ctx, args, pos):
    return _simple_agg_action(ctx, "normalize", args, pos, (1, 1))


def _act_denormalize(ctx, args, pos):
    return _simple_agg_action(ctx, "denormalize", args, pos, (0, 0))


# ------------------------------------------------------------- aggregations
def agg_call(ctx, name: str, args: list, pos: Pos, const_value):
    """(AggFunc, value expr or None, lq) of an aggregating call, or None.
    const_value(expr) -> int or None folds lquantize's bounds."""
    f = AGG_FUNCS[name]
    if f == isa.AggFunc.COUNT:
        return (f, None, None) if _arity(ctx, name, args, pos, 0) else None
    if f == isa.AggFunc.LQUANTIZE:
        if not _arity(ctx, name, args, pos, 3, 4):
            return None
    elif not _arity(ctx, name, args, pos, 1):
        return None
    v = as_int(ctx, args[0], f"the value of {name}()")
    if v is None:
        return None
    lq = None
    if f == isa.AggFunc.LQUANTIZE:
        lq = _lq_bounds(ctx, args, pos, const_value)
        if lq is None:
            return None
    return f, v, lq


def _lq_bounds(ctx, args, pos, const_value):
    vals = []
    for a, what in zip(args[1:], ("lower bound", "upper bound", "step")):
        c = const_value(a) if isinstance(a, ir.Expr) else None
        if c is None:
            ctx.error(_pos(a), f"the {what} of lquantize() must be an integer constant")
            return None
        vals.append(c)
    lo, hi = vals[0], vals[1]
    step = vals[2] if len(vals) == 3 else 1
    if step <= 0:
        ctx.error(_pos(args[3]) if len(args) > 3 else pos,
                  "the step of lquantize() must be positive")
        return None
    if hi <= lo:
        ctx.error(_pos(args[2]), f"the upper bound of lquantize() ({hi}) must be above "
                                 f"the lower bound ({lo})")
        return None
    if (hi - lo) // step > isa.MAX_LQ_LEVELS:
        ctx.error(pos, f"lquantize({lo}, {hi}, {step}) has {(hi - lo) // step} levels, "
                       f"over the VM's cap of {isa.MAX_LQ_LEVELS}", "use a larger step")
        return None
    return lo, hi, step
