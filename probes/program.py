"""What the compiler hands to the rest of the host: a compiled D script.

`compile_script()` (probes/compiler.py) turns source text into a `Program`:
the container bytes the kernel verifies and runs (`blob`, layout in
probes/isa.py), the enablings to request, and everything the kernel does
not need but the consumer does to print results — record descriptors
(printf formats and how to decode each value), aggregation descriptors,
and a pc -> source position table so a verifier refusal or an ERROR at run
time names the script's line and column.

`Probe` is one entry of the probe table the compiler matches descriptions
against (introspect/probetable.py builds it from the kernel ELF and adds
the kernel's synthetic probes).

Pure data: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Probe:
    """One probe the kernel can fire."""
    id: int                     # probe id on the wire (isa.SynthProbe or FIRST_STATIC_PROBE + i)
    provider: str
    module: str
    function: str
    name: str
    args: tuple = ()            # ((C type string, arg name), ...) — typed args[i]

    @property
    def fullname(self) -> str:
        return f"{self.provider}:{self.module}:{self.function}:{self.name}"


@dataclass(frozen=True)
class Pos:
    """A place in the script: 1-based line and column, and the span's length."""
    file: str
    line: int
    col: int
    length: int = 1


@dataclass(frozen=True)
class ValType:
    """How the consumer decodes and prints one recorded value (RECV: 8 bytes,
    RECS: u16 length + bytes)."""
    kind: str                   # "int" or "string"
    size: int = 8               # int: bytes of the source type (1, 2, 4, 8)
    signed: bool = False        # int: signed source type
    ctype: str = ""             # the C type as the script sees it (for trace() and docs)

    @property
    def is_string(self) -> bool:
        return self.kind == "string"


@dataclass
class RecDesc:
    """Record descriptor: what a record with `desc == index` means.
    kind: printf (fmt, args), trace (args[0]), printa (agg, fmt or None),
    clear (agg), trunc (agg; args[0] is N if recorded, else all keys go),
    normalize / denormalize (agg; args[0] the factor for normalize),
    exit is the kernel's REC_EXIT, never a RecDesc."""
    index: int
    kind: str
    args: list = field(default_factory=list)     # ValType per recorded value, in order
    fmt: str | None = None                        # printf / printa format
    agg: int | None = None                        # aggregation index for printa/clear/trunc/normalize
    pos: Pos | None = None                        # the action in the script


@dataclass
class AggDesc:
    """One aggregation of the script."""
    index: int
    name: str                   # without '@'; "" for the anonymous @
    func: int                   # isa.AggFunc
    keys: list = field(default_factory=list)      # ValType per key value
    lq: tuple | None = None     # (lo, hi, step) for lquantize
    pos: Pos | None = None


@dataclass
class Clause:
    index: int
    descriptions: list          # the probe descriptions as written
    probes: list                # Probe objects it is enabled on
    pos: Pos | None = None
    start: int = 0              # first instruction in the container's code
    lines: dict = field(default_factory=dict)     # pc (program-wide) -> Pos


@dataclass
class Program:
    """A compiled script.  `enablings` are (clause index, probe id, arg)."""
    source: str
    filename: str
    blob: bytes
    clauses: list
    aggs: list
    recdescs: list
    enablings: list
    options: dict = field(default_factory=dict)   # bufsize, aggsize, dynvarsize, strsize, quiet, switchrate...

    def pos_of_pc(self, pc: int) -> Pos | None:
        """The script position of instruction pc (program-wide), if known."""
        for c in self.clauses:
            if pc in c.lines:
                return c.lines[pc]
        best = None
        for c in self.clauses:
            for p, pos in c.lines.items():
                if p <= pc and (best is None or p > best[0]):
                    best = (p, pos)
        return best[1] if best else None

    def agg_by_name(self, name: str) -> AggDesc | None:
        for a in self.aggs:
            if a.name == name:
                return a
        return None
