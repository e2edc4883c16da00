"""Code generation: the typed tree (probes/ir.py) -> the program container.

    generate(clauses, variables, aggs, nrecdescs, strsize) -> Generated

Each clause is its predicate, then its actions, then RET; a false
predicate jumps to the RET.  Values live in registers used as a stack
(emit.Regs): an expression leaves its value in the next free register, so
helper arguments are consecutive; more than 16 live values is the error
"expression too complex".  Integers are kept normalised to their type in
64-bit registers (EXT after narrow loads, casts and arithmetic);
division, modulo, >> and ordered comparisons pick the signed or unsigned
opcode by type.  &&, || and ?: jump forward; ^^ evaluates both sides.
Tuples (assoc keys, aggregation keys) are evaluated into registers first
and only then pushed (TPUSH...), so a key that itself reads an assoc
array cannot clobber the tuple being built.

Variable table: clause-local (this->) variables come first, so a clause's
LDL/STL indices are all below its `nlocals` (= the highest such index it
uses + 1); the imm of LDG/STG/LDT/STT/LDL/STL/LDA/STA is always the index
in the variable table.  A string read from a thread-local or associative
array that is absent (0) is replaced by "" so string operations never see
a null.  count() aggregates the constant 1.

Pure: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from probes import container, isa, ir
from probes.emit import Code, Regs, StrTab, TooComplex
from probes.program import Pos

Op = isa.Op
_ARITH = {"+": Op.ADD, "-": Op.SUB, "*": Op.MUL, "&": Op.AND, "|": Op.OR,
          "^": Op.XOR, "<<": Op.SHL, "==": Op.EQ, "!=": Op.NE}
_SIGNED = {"/": (Op.UDIV, Op.SDIV), "%": (Op.UMOD, Op.SMOD), ">>": (Op.LSHR, Op.ASHR),
           "<": (Op.ULT, Op.SLT), "<=": (Op.ULE, Op.SLE),
           ">": (Op.ULT, Op.SLT), ">=": (Op.ULE, Op.SLE)}
_SWAPPED = {">", ">="}
_COMPARES = {"==", "!=", "<", "<=", ">", ">="}


class CodegenError(Exception):
    """A program the VM cannot hold (too complex, over a cap)."""

    def __init__(self, message: str, pos: Pos | None, hint: str = ""):
        super().__init__(message)
        self.message, self.pos, self.hint = message, pos, hint


@dataclass
class Generated:
    blob: bytes
    starts: list                # first pc of each clause
    lines: list                 # per clause: {program-wide pc: Pos}
    var_index: dict = field(default_factory=dict)   # VarInfo -> table index


def generate(clauses: list, variables: list, aggs: list, nrecdescs: int,
             strsize: int) -> Generated:
    """Emit every clause and pack the container; CodegenError on failure."""
    order = sorted(variables, key=lambda v: v.scope != isa.Scope.CLAUSE)
    vindex = {v: i for i, v in enumerate(order)}
    strtab = StrTab()
    code, cl_recs, starts, lines = b"", [], [], []
    for c in clauses:
        g = _ClauseGen(vindex, strtab)
        try:
            g.clause(c)
        except TooComplex as e:
            raise CodegenError("expression too complex", e.pos,
                               "split it, e.g. into this-> variables") from None
        start = len(code) // isa.INSN_SIZE
        starts.append(start)
        lines.append({start + pc: pos for pc, pos in g.code.lines.items()})
        cl_recs.append(dict(start=start, len=len(g.code), nlocals=g.nlocals, flags=0))
        code += g.code.bytes()
    _check_caps(code, strtab, clauses)
    cont = container.Container(
        code=code, clauses=cl_recs,
        vars=[dict(scope=v.scope, kind=_kind(v), nkeys=len(v.keys)) for v in order],
        aggs=[_agg_rec(a) for a in aggs], nrecdescs=nrecdescs,
        strtab=bytes(strtab.data), strsize=strsize)
    blob = container.pack(cont)
    if len(blob) > isa.MAX_PROG_BYTES:
        raise CodegenError(f"program is {len(blob)} bytes, over the VM's cap of "
                           f"{isa.MAX_PROG_BYTES}", clauses[0].pos if clauses else None)
    return Generated(blob, starts, lines, vindex)


def _check_caps(code: bytes, strtab: StrTab, clauses: list) -> None:
    pos = clauses[-1].pos if clauses else None
    n = len(code) // isa.INSN_SIZE
    if n > isa.MAX_INSNS:
        raise CodegenError(f"program needs {n} instructions, over the VM's cap of "
                           f"{isa.MAX_INSNS}", pos, "split the script")
    if len(strtab.data) > isa.MAX_STRTAB:
        raise CodegenError(f"string constants take {len(strtab.data)} bytes, over the "
                           f"VM's cap of {isa.MAX_STRTAB}", pos)


def _kind(v: ir.VarInfo) -> int:
    return isa.VarKind.STRING if v.type.is_string else isa.VarKind.INT


def _agg_rec(a: ir.AggInfo) -> dict:
    lo, hi, step = a.lq if a.lq else (0, 0, 0)
    levels = (hi - lo) // step if a.lq else 0
    return dict(func=a.func, nkeys=len(a.keys), nwords=isa.agg_words(a.func, levels),
                lq_lo=lo, lq_hi=hi, lq_step=step)


class _ClauseGen:
    """Emits one clause (generate)."""

    def __init__(self, vindex: dict, strtab: StrTab):
        self.vindex, self.strtab = vindex, strtab
        self.code, self.regs = Code(), Regs()
        self.nlocals = 0

    def at(self, pos: Pos | None) -> None:
        if pos is not None:
            self.code.pos = pos

    def clause(self, c: ir.ClauseIR) -> None:
        jump = None
        if c.predicate is not None:
            r = self.expr(c.predicate)
            jump = self.code.jump(Op.JZ, ra=r)
            self.regs.pop()
        self.stmts(c.body)
        if jump is not None:
            self.code.patch(jump)
        self.at(c.pos)
        self.code.emit(Op.RET)

    # ---------------------------------------------------------- statements
    def stmts(self, body: list) -> None:
        for s in body:
            self.at(s.pos)
            getattr(self, "s_" + type(s).__name__)(s)

    def s_ExprStmt(self, s: ir.ExprStmt) -> None:
        self.expr(s.e)
        self.regs.pop()

    def s_If(self, s: ir.If) -> None:
        r = self.expr(s.cond)
        j = self.code.jump(Op.JZ, ra=r)
        self.regs.pop()
        self.stmts(s.then)
        if s.orelse:
            j2 = self.code.jump(Op.JMP)
            self.code.patch(j)
            self.stmts(s.orelse)
            self.code.patch(j2)
        else:
            self.code.patch(j)

    def s_Record(self, s: ir.Record) -> None:
        self.code.emit(Op.RECB, imm=s.desc)
        for v in s.values:
            r = self.expr(v)
            self.at(v.pos)
            self.code.emit(Op.RECS if v.t.is_string else
                           Op.RECK if v.t.kind == "stack" else Op.RECV, ra=r)
            self.regs.pop()
        self.at(s.pos)
        self.code.emit(Op.RECE)

    def s_Aggregate(self, s: ir.Aggregate) -> None:
        if s.value is None:             # count(): the VM ignores the value
            self.tuple(s.keys, s.pos)
            self.code.emit(Op.AGG, ra=0, imm=s.agg.index)
            return
        rv = self.expr(s.value)
        self.tuple(s.keys, s.pos)
        self.code.emit(Op.AGG, ra=rv, imm=s.agg.index)
        self.regs.pop()

    def s_Exit(self, s: ir.Exit) -> None:
        r = self.expr(s.code)
        self.at(s.pos)
        self.code.emit(Op.EXIT, ra=r)
        self.regs.pop()

    def tuple(self, keys: list, pos: Pos | None) -> None:
        """Evaluate keys, then TPUSH them (the next LDA/STA/AGG consumes
        the tuple); leaves no register in use.  No TCLR: the tuple is empty
        here, since the VM empties it when a clause starts and every
        LDA/STA/AGG empties it, and a key's own lookups finish before the
        first TPUSH."""
        regs = [self.expr(k) for k in keys]
        self.at(pos)
        for k, r in zip(keys, regs):
            self.code.emit(Op.TPUSH, ra=r, imm=1 if k.t.is_string else
                           2 if k.t.kind == "stack" else 0)
        self.regs.pop(len(regs))

    # ---------------------------------------------------------- expressions
    def expr(self, e: ir.Expr) -> int:
        """Emit e; its value is in the returned register (the stack top)."""
        saved = self.code.pos
        self.at(e.pos)
        r = getattr(self, "e_" + type(e).__name__)(e)
        self.code.pos = saved
        return r

    def e_Const(self, e: ir.Const) -> int:
        r = self.regs.push(e.pos)
        self.code.const(r, e.value)
        return r

    def e_Str(self, e: ir.Str) -> int:
        r = self.regs.push(e.pos)
        self.code.emit(Op.STR, rd=r, imm=self.strtab.intern(e.value))
        return r

    def e_BuiltinVar(self, e: ir.BuiltinVar) -> int:
        r = self.regs.push(e.pos)
        self.code.emit(Op.LDB, rd=r, imm=e.which)
        return r

    def e_Arg(self, e: ir.Arg) -> int:
        r = self.regs.push(e.pos)
        self.code.emit(Op.ARG, rd=r, imm=e.n)
        if e.t.is_int:
            self.code.ext(r, e.t.size, e.t.signed)
        return r

    def var(self, v: ir.VarInfo) -> int:
        i = self.vindex[v]
        if v.scope == isa.Scope.CLAUSE:
            self.nlocals = max(self.nlocals, i + 1)
        return i

    def e_Var(self, e: ir.Var) -> int:
        r = self.regs.push(e.pos)
        op = {isa.Scope.GLOBAL: Op.LDG, isa.Scope.THREAD: Op.LDT,
              isa.Scope.CLAUSE: Op.LDL}[e.var.scope]
        self.code.emit(op, rd=r, imm=self.var(e.var))
        if e.var.scope == isa.Scope.THREAD:
            self.empty_if_null(r, e.t)
        return r

    def e_Assoc(self, e: ir.Assoc) -> int:
        self.tuple(e.keys, e.pos)
        r = self.regs.push(e.pos)
        self.code.emit(Op.LDA, rd=r, imm=self.var(e.var))
        self.empty_if_null(r, e.t)
        return r

    def empty_if_null(self, r: int, t) -> None:
        if t.is_string:
            j = self.code.jump(Op.JNZ, ra=r)
            self.code.emit(Op.STR, rd=r, imm=self.strtab.intern(b""))
            self.code.patch(j)

    def e_Load(self, e: ir.Load) -> int:
        addr, off = e.addr, e.offset
        while isinstance(addr, ir.Binary) and addr.op == "+" and isinstance(addr.b, ir.Const) \
                and -(1 << 31) <= off + addr.b.value < (1 << 31):
            off += addr.b.value
            addr = addr.a
        r = self.expr(addr)
        self.code.emit(Op.LD, rd=r, ra=r, rb=e.t.size, imm=off)
        if e.t.is_int:
            self.code.ext(r, e.t.size, e.t.signed)
        return r

    def e_Unary(self, e: ir.Unary) -> int:
        r = self.expr(e.a)
        self.code.emit({"-": Op.NEG, "~": Op.NOT, "!": Op.LNOT}[e.op], rd=r, ra=r)
        if e.op != "!":
            self.code.ext(r, e.t.size, e.t.signed)
        return r

    def e_Binary(self, e: ir.Binary) -> int:
        ra = self.expr(e.a)
        rb = self.expr(e.b)
        if e.op in _ARITH:
            op = _ARITH[e.op]
        else:
            op = _SIGNED[e.op][1 if e.signed else 0]
        if e.op in _SWAPPED:
            ra_, rb_ = rb, ra
        else:
            ra_, rb_ = ra, rb
        self.code.emit(op, rd=ra, ra=ra_, rb=rb_)
        self.regs.pop()
        if e.op not in _COMPARES and e.t.is_int:
            self.code.ext(ra, e.t.size, e.t.signed)
        return ra

    def e_StrCmp(self, e: ir.StrCmp) -> int:
        ra = self.expr(e.a)
        rb = self.expr(e.b)
        self.code.emit(Op.CALL, rd=ra, ra=ra, imm=isa.Helper.STRCMP)
        self.code.const(rb, 0)
        if e.op in ("==", "!="):
            self.code.emit(Op.EQ if e.op == "==" else Op.NE, rd=ra, ra=ra, rb=rb)
        else:
            x, y = (rb, ra) if e.op in _SWAPPED else (ra, rb)
            self.code.emit(Op.SLT if e.op in ("<", ">") else Op.SLE, rd=ra, ra=x, rb=y)
        self.regs.pop()
        return ra

    def e_Logical(self, e: ir.Logical) -> int:
        r = self.expr(e.a)
        if e.op == "^^":
            rb = self.expr(e.b)
            self.code.emit(Op.LNOT, rd=r, ra=r)
            self.code.emit(Op.LNOT, rd=rb, ra=rb)
            self.code.emit(Op.NE, rd=r, ra=r, rb=rb)
            self.regs.pop()
            return r
        j = self.code.jump(Op.JZ if e.op == "&&" else Op.JNZ, ra=r)
        self.regs.pop()
        self.expr(e.b)
        self.code.patch(j)
        self.code.emit(Op.LNOT, rd=r, ra=r)
        self.code.emit(Op.LNOT, rd=r, ra=r)
        return r

    def e_Cond(self, e: ir.Cond) -> int:
        r = self.expr(e.c)
        j = self.code.jump(Op.JZ, ra=r)
        self.regs.pop()
        self.expr(e.a)
        j2 = self.code.jump(Op.JMP)
        self.code.patch(j)
        self.regs.pop()
        self.expr(e.b)
        self.code.patch(j2)
        return r

    def e_Cast(self, e: ir.Cast) -> int:
        r = self.expr(e.a)
        if e.t.is_int:
            self.code.ext(r, e.t.size, e.t.signed)
        return r

    def e_Call(self, e: ir.Call) -> int:
        regs = [self.expr(a) for a in e.args]
        self.at(e.pos)
        self.code.emit(Op.CALL, rd=regs[0], ra=regs[0], imm=e.helper)
        self.regs.pop(len(regs) - 1)
        return regs[0]

    def e_Assign(self, e: ir.Assign) -> int:
        old = self.expr(e.target) if e.post else None
        r = self.expr(e.value)
        tgt = e.target
        self.at(e.pos)
        if isinstance(tgt, ir.Assoc):
            self.tuple(tgt.keys, e.pos)
            self.code.emit(Op.STA, ra=r, imm=self.var(tgt.var))
        else:
            op = {isa.Scope.GLOBAL: Op.STG, isa.Scope.THREAD: Op.STT,
                  isa.Scope.CLAUSE: Op.STL}[tgt.var.scope]
            self.code.emit(op, ra=r, imm=self.var(tgt.var))
        if old is not None:
            self.regs.pop()
            return old
        return r
