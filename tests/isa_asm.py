"""A tiny assembler for probe VM programs, for the VM's tests (pure).

    prog = Prog(strings=["hello"], nrecdescs=1)
    prog.var(Scope.GLOBAL, VarKind.INT)
    prog.agg(AggFunc.COUNT, nkeys=1)
    prog.clause('''
        ldb r1, TID
        jz r1, @out
        str r2, "hello"
        tpush r2, 1
        agg 0, r1
    @out:
        ret
    ''')
    blob = prog.build()

One instruction per line: the opcode, then its operands in the order of
FORMS (rd `d`, ra `a`, rb `b`, LD's size `s`, imm `i`).  An imm may be a
number, `@label` (a forward jump: target - pc - 1), a builtin or helper
name, or a quoted string (its string table offset).  `raw(op, rd, ra, rb,
imm)` gives an instruction exactly as written, for the hostile corpus.
"""
from __future__ import annotations

import re
import struct

from probes import isa
from probes.isa import AggFunc, Builtin, Helper, Op, Scope, VarKind  # noqa: F401 (re-export)

FORMS = {
    "nop": "", "ret": "", "ldi": "di", "ldih": "di", "mov": "da",
    **{o: "dab" for o in ("add", "sub", "mul", "udiv", "sdiv", "umod", "smod", "and",
                          "or", "xor", "shl", "lshr", "ashr", "eq", "ne", "ult",
                          "slt", "ule", "sle")},
    "neg": "da", "not": "da", "lnot": "da", "ext": "dai",
    "jmp": "i", "jz": "ai", "jnz": "ai",
    "ld": "dasi", "ldb": "di", "arg": "di", "str": "di",
    "ldg": "di", "ldt": "di", "ldl": "di", "lda": "di",
    "stg": "ia", "stt": "ia", "stl": "ia", "sta": "ia",
    "tclr": "", "tpush": "ai", "agg": "ia",
    "recb": "i", "recv": "a", "recs": "a", "rece": "", "exit": "a",
    "call": "dai",
}


def raw(op, rd=0, ra=0, rb=0, imm=0) -> bytes:
    """One instruction, fields as given (no checks)."""
    return struct.pack("<BBBBi", int(op), rd, ra, rb, imm)


class Prog:
    """A program container under construction."""

    def __init__(self, strings=(), nrecdescs=0, strsize=256):
        self.clauses: list[bytes] = []
        self.vars: list[tuple] = []
        self.aggs: list[tuple] = []
        self.nrecdescs = nrecdescs
        self.strsize = strsize
        self.strtab = b""
        self.stroff: dict[str, int] = {}
        for s in strings:
            self.string(s)

    def string(self, s: str) -> int:
        """Offset of s in the string table (added if new)."""
        if s not in self.stroff:
            self.stroff[s] = len(self.strtab)
            self.strtab += s.encode() + b"\0"
        return self.stroff[s]

    def var(self, scope, kind=VarKind.INT, nkeys=0) -> int:
        self.vars.append((int(scope), int(kind), nkeys))
        return len(self.vars) - 1

    def agg(self, func, nkeys=0, lq=None, nwords=None) -> int:
        lo, hi, step = lq or (0, 0, 0)
        levels = (hi - lo) // step if func == AggFunc.LQUANTIZE and step > 0 else 0
        words = isa.agg_words(func, levels) if nwords is None else nwords
        self.aggs.append((int(func), nkeys, words, lo, hi, step))
        return len(self.aggs) - 1

    def clause(self, text_or_insns) -> int:
        """Add a clause: assembly text, or a list of raw instructions."""
        if isinstance(text_or_insns, (bytes, list, tuple)):
            code = b"".join(text_or_insns) if not isinstance(text_or_insns, bytes) else text_or_insns
        else:
            code = self.assemble(text_or_insns)
        self.clauses.append(code)
        return len(self.clauses) - 1

    def assemble(self, text: str) -> bytes:
        lines, labels = [], {}
        for ln in text.splitlines():
            ln = ln.split(";", 1)[0].strip()
            if not ln:
                continue
            m = re.fullmatch(r"@(\w+):", ln)
            if m:
                labels[m.group(1)] = len(lines)
                continue
            lines.append(ln)
        return b"".join(self._insn(ln, pc, labels) for pc, ln in enumerate(lines))

    def _insn(self, ln: str, pc: int, labels: dict) -> bytes:
        name, _, rest = ln.partition(" ")
        ops = [o.strip() for o in _split(rest)] if rest.strip() else []
        form = FORMS[name]
        if len(ops) != len(form):
            raise ValueError(f"{ln!r}: {name} takes {len(form)} operands")
        f = {"d": 0, "a": 0, "b": 0, "s": 0, "i": 0}
        for k, o in zip(form, ops):
            f[k] = self._operand(k, o, pc, labels)
        rb = f["b"] or f["s"]
        return raw(Op[name.upper()], f["d"], f["a"], rb, f["i"])

    def _operand(self, kind: str, o: str, pc: int, labels: dict) -> int:
        if kind in "dab":
            if not re.fullmatch(r"r\d+", o):
                raise ValueError(f"register expected, got {o!r}")
            return int(o[1:])
        if o.startswith("@"):
            return labels[o[1:]] - pc - 1
        if o.startswith('"'):
            return self.string(o[1:-1])
        if o in Builtin.__members__:
            return int(Builtin[o])
        if o in Helper.__members__:
            return int(Helper[o])
        return int(o, 0)

    def build(self, **override) -> bytes:
        """The container; override patches header fields (hostile tests)."""
        code, clauses, start = b"", [], 0
        for c in self.clauses:
            n = len(c) // isa.INSN_SIZE
            clauses.append(dict(start=start, len=n, nlocals=0, flags=0))
            code += c
            start += n
        hdr = dict(magic=isa.PROG_MAGIC, version=isa.PROG_VERSION, flags=0,
                   ninsns=len(code) // isa.INSN_SIZE, nclauses=len(clauses),
                   nvars=len(self.vars), naggs=len(self.aggs), nrecdescs=self.nrecdescs,
                   strtab_len=len(self.strtab), strsize=self.strsize, pad=0)
        hdr.update(override)
        out = isa.PROG_HDR.pack(**hdr)
        out += b"".join(isa.PROG_CLAUSE.pack(**c) for c in clauses)
        out += b"".join(isa.PROG_VAR.pack(scope=s, kind=k, nkeys=n, pad=0) for s, k, n in self.vars)
        out += b"".join(isa.PROG_AGG.pack(func=f, nkeys=n, pad=0, nwords=w, lq_lo=lo,
                                          lq_hi=hi, lq_step=st)
                        for f, n, w, lo, hi, st in self.aggs)
        return out + code + self.strtab


def _split(s: str) -> list:
    """Operands split on commas outside quotes."""
    out, cur, q = [], "", False
    for ch in s:
        if ch == '"':
            q = not q
        if ch == "," and not q:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def tuple_key(*vals) -> bytes:
    """The tuple encoding of vals (ints 8 bytes LE, strings u16 length +
    bytes, padded to 8), as agg keys and RECS use it."""
    out = b""
    for v in vals:
        if isinstance(v, str):
            b = v.encode()
            e = struct.pack("<H", len(b)) + b
            out += e + b"\0" * (-len(e) % 8)
        else:
            out += struct.pack("<Q", v & (2**64 - 1))
    return out
