"""A reference interpreter of the probe VM (probes/isa.py), in pure Python,
for the compiler's tests: they compile D, run the container here against a
fake probe context, and check what it computes (registers never leak out:
only records, variables and aggregations do), not instruction listings.

It also checks the static rules the kernel verifier enforces that codegen
must respect (fields an opcode does not use are zero, registers in range,
forward jumps inside the clause, helper ids, table indices) and raises
BadProgram on a violation.

Memory model: kernel memory is a dict {base address: bytes} given by the
test; a load outside it faults BADADDR.  VM-owned strings (string table,
scratch, string variables) live in regions the interpreter allocates at
addresses no test memory uses.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from probes import isa
from probes.container import unpack

M64 = (1 << 64) - 1
O = isa.Op
_NONE, _D, _A, _B, _I = 0, 1, 2, 4, 8
USES = {O.NOP: 0, O.RET: 0, O.TCLR: 0, O.RECE: 0,
        O.LDI: _D | _I, O.LDIH: _D | _I, O.MOV: _D | _A, O.NEG: _D | _A,
        O.NOT: _D | _A, O.LNOT: _D | _A, O.EXT: _D | _A | _I,
        O.JMP: _I, O.JZ: _A | _I, O.JNZ: _A | _I,
        O.LD: _D | _A | _B | _I, O.LDB: _D | _I, O.ARG: _D | _I, O.STR: _D | _I,
        O.LDG: _D | _I, O.LDT: _D | _I, O.LDL: _D | _I, O.LDA: _D | _I,
        O.STG: _A | _I, O.STT: _A | _I, O.STL: _A | _I, O.STA: _A | _I,
        O.TPUSH: _A | _I, O.AGG: _A | _I, O.RECB: _I,
        O.RECV: _A, O.RECS: _A, O.RECK: _A, O.EXIT: _A, O.CALL: _D | _A | _I}
for _op in range(O.ADD, O.SLE + 1):
    USES.setdefault(O(_op), _D | _A | _B)
_VAR_SCOPE = {O.LDG: isa.Scope.GLOBAL, O.STG: isa.Scope.GLOBAL, O.LDT: isa.Scope.THREAD,
              O.STT: isa.Scope.THREAD, O.LDL: isa.Scope.CLAUSE, O.STL: isa.Scope.CLAUSE,
              O.LDA: isa.Scope.ASSOC, O.STA: isa.Scope.ASSOC}
STRTAB_BASE = 0x7f00_0000_0000
SCRATCH_BASE = 0x7e00_0000_0000
VARSTR_BASE = 0x7d00_0000_0000


class BadProgram(Exception):
    """The container breaks a rule the kernel verifier enforces."""


class VMFault(Exception):
    def __init__(self, fault: isa.Fault, pc: int, addr: int = 0):
        super().__init__(f"{fault.name} at pc {pc} addr {addr:#x}")
        self.fault, self.pc, self.addr = fault, pc, addr


def s64(v: int) -> int:
    v &= M64
    return v - (1 << 64) if v >> 63 else v


@dataclass
class Fired:
    """What one clause firing committed."""
    records: list = field(default_factory=list)    # (desc, payload bytes)
    exit: int | None = None
    fault: VMFault | None = None


class Machine:
    """One session: a loaded container and its variables and aggregations."""

    def __init__(self, blob: bytes, mem: dict | None = None):
        self.c = unpack(blob)
        self.mem = dict(mem or {})
        self.glob: dict = {}
        self.tls: dict = {}                 # (tid, var) -> value
        self.assoc: dict = {}               # (var, key tuple) -> value
        self.aggs: dict = {}                # (agg, key tuple) -> list of words
        self.regions: dict = {STRTAB_BASE: bytes(self.c.strtab)}
        self.verify()

    # ------------------------------------------------------------ verifier
    def verify(self) -> None:
        c = self.c
        for ci, cl in enumerate(c.clauses):
            end = cl["start"] + cl["len"]
            if end > c.ninsns or cl["len"] == 0:
                raise BadProgram(f"clause {ci} out of code range")
            if c.insn(end - 1)[0] != O.RET:
                raise BadProgram(f"clause {ci} does not end with RET")
            for pc in range(cl["start"], end):
                self._check(pc, end)

    def _check(self, pc: int, end: int) -> None:
        op, rd, ra, rb, imm = self.c.insn(pc)
        if op not in USES:
            raise BadProgram(f"pc {pc}: unknown opcode {op:#x}")
        u = USES[O(op)]
        for bit, v, name in ((_D, rd, "rd"), (_A, ra, "ra"), (_B, rb, "rb"), (_I, imm, "imm")):
            if not u & bit and v:
                raise BadProgram(f"pc {pc}: {O(op).name} has nonzero unused {name}")
        if (rd >= isa.NREGS or ra >= isa.NREGS or (rb >= isa.NREGS and op != O.LD)):
            raise BadProgram(f"pc {pc}: register out of range")
        if op in (O.JMP, O.JZ, O.JNZ) and (imm < 0 or pc + 1 + imm >= end):
            raise BadProgram(f"pc {pc}: jump to {pc + 1 + imm} outside the clause")
        if op == O.LD and rb not in (1, 2, 4, 8):
            raise BadProgram(f"pc {pc}: load size {rb}")
        if op == O.CALL:
            if imm not in isa.Helper._value2member_map_:
                raise BadProgram(f"pc {pc}: unknown helper {imm}")
            if ra + isa.HELPERS[isa.Helper(imm)].nargs > isa.NREGS:
                raise BadProgram(f"pc {pc}: helper arguments past r15")
        if op in _VAR_SCOPE and (imm >= len(self.c.vars)
                                 or self.c.vars[imm]["scope"] != _VAR_SCOPE[O(op)]):
            raise BadProgram(f"pc {pc}: {O(op).name} of var {imm} (wrong index or scope)")
        if op == O.AGG and imm >= len(self.c.aggs):
            raise BadProgram(f"pc {pc}: aggregation {imm} out of range")
        if op == O.TPUSH and imm not in (0, 1, 2):
            raise BadProgram(f"pc {pc}: tuple push of unknown type {imm}")
        if op == O.RECB and imm >= self.c.nrecdescs:
            raise BadProgram(f"pc {pc}: record descriptor {imm} out of range")
        if op == O.STR:
            self.c.string_at(imm)

    # ------------------------------------------------------------ strings
    def string(self, addr: int, pc: int) -> bytes:
        """The VM-owned string at addr (BADSTR if addr is not one)."""
        for base, data in self.regions.items():
            if base <= addr < base + len(data):
                raw = data[addr - base:]
                return raw[:raw.index(b"\0")] if b"\0" in raw else raw
        raise VMFault(isa.Fault.BADSTR, pc, addr)

    def new_string(self, s: bytes) -> int:
        s = s[:self.c.strsize - 1]
        addr = SCRATCH_BASE + (len(self.regions) << 16)
        self.regions[addr] = s + b"\0"
        return addr

    def load(self, addr: int, size: int, pc: int) -> bytes:
        for base, data in self.mem.items():
            if base <= addr and addr + size <= base + len(data):
                return data[addr - base:addr - base + size]
        raise VMFault(isa.Fault.BADADDR, pc, addr)

    def kstring(self, addr: int, pc: int) -> bytes:
        out = b""
        while len(out) < self.c.strsize - 1:
            b = self.load(addr + len(out), 1, pc)
            if b == b"\0":
                break
            out += b
        return out

    def var_kind(self, i: int) -> int:
        return self.c.vars[i]["kind"]

    def stored(self, i: int, v: int, pc: int):
        """A value as a variable holds it: strings by value (bytes)."""
        return self.string(v, pc) if self.var_kind(i) == isa.VarKind.STRING else v

    def loaded(self, i: int, v, default_empty: bool) -> int:
        if self.var_kind(i) != isa.VarKind.STRING:
            return v or 0
        if v is None:
            return self.new_string(b"") if default_empty else 0
        return self.new_string(v)

    # ------------------------------------------------------------ run
    def fire(self, clause: int, *, args=(), tid: int = 1, probe: int = 0,
             builtins: dict | None = None, stack=()) -> Fired:
        """Run clause once; return what it committed (or its fault).
        stack: the pcs stack() walks, innermost first."""
        run = _Run(self, clause, args, tid, probe, builtins or {})
        run.stack = tuple(stack)
        return run.go()

    def fire_probe(self, program, probe_id: int, **kw) -> list:
        """Run every clause enabled on probe_id in order, like the kernel."""
        out = []
        for (ci, pid, _arg) in program.enablings:
            if pid == probe_id:
                out.append(self.fire(ci, probe=probe_id, **kw))
        return out


_BIN = {O.ADD: lambda a, b: a + b, O.SUB: lambda a, b: a - b, O.MUL: lambda a, b: a * b,
        O.AND: lambda a, b: a & b, O.OR: lambda a, b: a | b, O.XOR: lambda a, b: a ^ b,
        O.SHL: lambda a, b: a << (b & 63), O.LSHR: lambda a, b: a >> (b & 63),
        O.ASHR: lambda a, b: s64(a) >> (b & 63), O.EQ: lambda a, b: int(a == b),
        O.NE: lambda a, b: int(a != b), O.ULT: lambda a, b: int(a < b),
        O.SLT: lambda a, b: int(s64(a) < s64(b)), O.ULE: lambda a, b: int(a <= b),
        O.SLE: lambda a, b: int(s64(a) <= s64(b))}
_STRING_BUILTINS = {isa.Builtin.THREAD, isa.Builtin.PROBEPROV, isa.Builtin.PROBEMOD,
                    isa.Builtin.PROBEFUNC, isa.Builtin.PROBENAME}


class _Run:
    """One clause firing (Machine.fire)."""

    def __init__(self, m: Machine, clause: int, args, tid, probe, builtins):
        self.m, self.args, self.tid, self.probe = m, list(args), tid, probe
        self.builtins = builtins
        cl = m.c.clauses[clause]
        self.pc, self.end = cl["start"], cl["start"] + cl["len"]
        self.r = [0] * isa.NREGS
        self.tuple: list = []
        self.locals: dict = {}
        self.pending: list = []     # (kind, ...) committed at RET
        self.rec: list | None = None
        self.out = Fired()
        self.stack: tuple = ()

    def go(self) -> Fired:
        m = self.m
        saved = (dict(m.glob), dict(m.tls), dict(m.assoc), {k: list(v) for k, v in m.aggs.items()})
        try:
            while True:
                op, rd, ra, rb, imm = m.c.insn(self.pc)
                pc = self.pc
                self.pc += 1
                if op == O.RET:
                    break
                self.step(O(op), rd, ra, rb, imm, pc)
        except VMFault as f:
            m.glob, m.tls, m.assoc, m.aggs = saved
            return Fired(fault=f)
        return self.out

    def step(self, op, rd, ra, rb, imm, pc):
        m, r = self.m, self.r
        if op in _BIN:
            r[rd] = _BIN[op](r[ra], r[rb]) & M64
        elif op in (O.UDIV, O.SDIV, O.UMOD, O.SMOD):
            r[rd] = self.divide(op, r[ra], r[rb], pc)
        elif op == O.NOP:
            pass
        elif op == O.LDI:
            r[rd] = imm & M64
        elif op == O.LDIH:
            r[rd] = (r[rd] & 0xffffffff) | ((imm & 0xffffffff) << 32)
        elif op == O.MOV:
            r[rd] = r[ra]
        elif op == O.NEG:
            r[rd] = -r[ra] & M64
        elif op == O.NOT:
            r[rd] = ~r[ra] & M64
        elif op == O.LNOT:
            r[rd] = int(r[ra] == 0)
        elif op == O.EXT:
            w, v = imm & 0xff, r[ra] & ((1 << (imm & 0xff)) - 1)
            if imm & 0x100 and v >> (w - 1):
                v -= 1 << w
            r[rd] = v & M64
        elif op in (O.JMP, O.JZ, O.JNZ):
            if op == O.JMP or (op == O.JZ) == (r[ra] == 0):
                self.pc += imm
        elif op == O.LD:
            r[rd] = int.from_bytes(m.load((r[ra] + imm) & M64, rb, pc), "little")
        elif op == O.LDB:
            r[rd] = self.builtin(isa.Builtin(imm))
        elif op == O.ARG:
            r[rd] = (self.args[imm] if imm < len(self.args) else 0) & M64
        elif op == O.STR:
            r[rd] = STRTAB_BASE + imm
        else:
            self.step2(op, rd, ra, rb, imm, pc)

    def step2(self, op, rd, ra, rb, imm, pc):
        m, r = self.m, self.r
        if op == O.LDG:
            r[rd] = m.loaded(imm, m.glob.get(imm), True)
        elif op == O.STG:
            m.glob[imm] = m.stored(imm, r[ra], pc)
        elif op == O.LDT:
            r[rd] = m.loaded(imm, m.tls.get((self.tid, imm)), False)
        elif op == O.STT:
            v = m.stored(imm, r[ra], pc)
            if v in (0, b""):
                m.tls.pop((self.tid, imm), None)
            else:
                m.tls[(self.tid, imm)] = v
        elif op == O.LDL:
            r[rd] = m.loaded(imm, self.locals.get(imm), True)
        elif op == O.STL:
            self.locals[imm] = m.stored(imm, r[ra], pc)
        elif op == O.TCLR:
            self.tuple = []
        elif op == O.TPUSH:
            if len(self.tuple) >= isa.MAX_TUPLE:
                raise VMFault(isa.Fault.TUPLE, pc)
            self.tuple.append(self.stack_of(r[ra]) if imm == 2 else
                              m.string(r[ra], pc) if imm else r[ra])
        elif op == O.LDA:
            r[rd] = m.loaded(imm, m.assoc.get((imm, self.take())), False)
        elif op == O.STA:
            key, v = self.take(), m.stored(imm, r[ra], pc)
            if v in (0, b""):
                m.assoc.pop((imm, key), None)
            else:
                m.assoc[(imm, key)] = v
        elif op == O.AGG:
            self.aggregate(imm, self.take(), s64(r[ra]))
        else:
            self.step3(op, rd, ra, rb, imm, pc)

    def step3(self, op, rd, ra, rb, imm, pc):
        m, r = self.m, self.r
        if op == O.RECB:
            self.rec = [imm, b""]
        elif op == O.RECV:
            self.rec[1] += r[ra].to_bytes(8, "little")
        elif op == O.RECS:
            s = m.string(r[ra], pc)
            raw = len(s).to_bytes(2, "little") + s
            self.rec[1] += raw + bytes(-len(raw) % 8)
        elif op == O.RECK:
            st = self.stack_of(r[ra])
            self.rec[1] += stack_bytes(st)
        elif op == O.RECE:
            self.out.records.append(tuple(self.rec))
            self.rec = None
        elif op == O.EXIT:
            self.out.exit = s64(r[ra])
        elif op == O.CALL:
            r[rd] = self.helper(isa.Helper(imm), r[ra:ra + 3], pc) & M64
        else:
            raise VMFault(isa.Fault.ILLOP, pc)

    def stack_of(self, n: int) -> "Stack":
        """stack(n): the firing's frames, n clamped to 1..MAX_STACK_FRAMES."""
        n = max(1, min(n, isa.MAX_STACK_FRAMES))
        return Stack(self.stack[:n])

    def take(self) -> tuple:
        t, self.tuple = tuple(self.tuple), []
        return t

    def divide(self, op, a, b, pc):
        if b == 0:
            raise VMFault(isa.Fault.DIVZERO, pc)
        if op == O.UDIV:
            return a // b
        if op == O.UMOD:
            return a % b
        sa, sb = s64(a), s64(b)
        q = abs(sa) // abs(sb) * (1 if (sa < 0) == (sb < 0) else -1)
        if op == O.SDIV:
            return q & M64
        return (sa - q * sb) & M64

    def builtin(self, b: isa.Builtin) -> int:
        if b in _STRING_BUILTINS:
            return self.m.new_string(self.builtins.get(b.name.lower(), "").encode())
        if b == isa.Builtin.TID:
            return self.tid
        if b == isa.Builtin.PROBEID:
            return self.probe
        if b == isa.Builtin.NARGS:
            return len(self.args)
        return self.builtins.get(b.name.lower(), 0) & M64

    def helper(self, h: isa.Helper, a: list, pc: int) -> int:
        m = self.m
        S = lambda i: m.string(a[i], pc)    # noqa: E731
        if h == isa.Helper.STRINGOF:
            return m.new_string(m.kstring(a[0], pc))
        if h == isa.Helper.STRLEN:
            return len(S(0))
        if h == isa.Helper.STRJOIN:
            return m.new_string(S(0) + S(1))
        if h == isa.Helper.STRCMP:
            x, y = S(0), S(1)
            return (x > y) - (x < y)
        if h == isa.Helper.SUBSTR:
            s, i, n = S(0), s64(a[1]), s64(a[2])
            i = max(0, len(s) + i) if i < 0 else min(i, len(s))
            return m.new_string(s[i:] if n < 0 else s[i:i + n])
        if h == isa.Helper.STRSTR:
            s, i = S(0), S(0).find(S(1))
            return 0 if i < 0 else m.new_string(s[i:])
        if h == isa.Helper.STRCHR:
            s = S(0)
            i = s.find(bytes([a[1] & 0xff]))
            return 0 if i < 0 else m.new_string(s[i:])
        if h == isa.Helper.INDEX:
            return S(0).find(S(1))
        raise VMFault(isa.Fault.ILLOP, pc)

    def aggregate(self, agg: int, key: tuple, v: int) -> None:
        d = self.m.c.aggs[agg]
        f, words = isa.AggFunc(d["func"]), d["nwords"]
        init = {isa.AggFunc.MIN: [(1 << 63) - 1], isa.AggFunc.MAX: [-(1 << 63)]}
        w = self.m.aggs.setdefault((agg, key), list(init.get(f, [0] * words)))
        if f == isa.AggFunc.COUNT:
            w[0] += 1
        elif f == isa.AggFunc.SUM:
            w[0] += v
        elif f == isa.AggFunc.MIN:
            w[0] = min(w[0], v)
        elif f == isa.AggFunc.MAX:
            w[0] = max(w[0], v)
        elif f in (isa.AggFunc.AVG, isa.AggFunc.STDDEV):
            w[0] += 1
            w[1] += v
            if f == isa.AggFunc.STDDEV:
                sq = (w[3] << 64 | w[2]) + v * v
                w[2], w[3] = sq & M64, sq >> 64
        elif f == isa.AggFunc.QUANTIZE:
            w[quantize_bucket(v)] += 1
        else:
            lo, hi, step = d["lq_lo"], d["lq_hi"], d["lq_step"]
            i = 0 if v < lo else words - 1 if v >= hi else 1 + (v - lo) // step
            w[i] += 1


class Stack(tuple):
    """A stack() value: its pcs, innermost first."""


def stack_bytes(pcs) -> bytes:
    """The STACK encoding (isa.py): u64 count (u16 + zero pad), the pcs."""
    return struct.pack(f"<Q{len(pcs)}Q", len(pcs), *pcs)


def record_values(prog, desc: int, payload: bytes) -> list:
    """The values of a record with descriptor desc, per prog.recdescs (the
    RECV/RECS encoding): ints as the 64-bit word, signed when the source
    type is; strings as their bytes."""
    out, off = [], 0
    for vt in prog.recdescs[desc].args:
        if vt.kind == "stack":
            n = struct.unpack_from("<H", payload, off)[0]
            out.append(Stack(struct.unpack_from(f"<{n}Q", payload, off + 8)))
            off += 8 + 8 * n
        elif vt.is_string:
            n = struct.unpack_from("<H", payload, off)[0]
            out.append(payload[off + 2:off + 2 + n])
            off += (2 + n + 7) // 8 * 8
        else:
            v = struct.unpack_from("<Q", payload, off)[0]
            out.append(v - (1 << 64) if vt.signed and v >> 63 else v)
            off += 8
    return out


def quantize_bucket(v: int) -> int:
    """Bucket of v: 63 is 0, 63+k is [2^(k-1), 2^k), 63-k the negatives."""
    if v == 0:
        return 63
    k = min(abs(v).bit_length(), 63)
    return 63 + k if v > 0 else 63 - k
