"""Threads: the kernel's thread table (kernel/sched: struct thread
sched_threads[THREAD_MAX], sched_cur) and a frame-pointer unwinder (the
kernel is built with -fno-omit-frame-pointer).

A switched-out thread's saved rsp points at what sched_switch (switch.S)
pushed: r15 r14 r13 r12 rbx rbp, then the return address into its caller.
The current thread of a core unwinds from the CPU's registers in the
core's notes.  An interrupt or exception frame is crossed through the
link trap_common (traps.S) pushes: the interrupted rip and rbp.

A function with an fbt return probe outstanding returns to
fbt_return_tramp (kernel/probe/fbt.c); the original return address is on
its thread's shadow stack (fbt.shadow[slot]), innermost last, and the
unwinder puts it back as the kernel's fbt_unwind_ret does.
"""
from __future__ import annotations

from ..errors import UnikError

MAX_FRAMES = 64
_SWITCH_RBP, _SWITCH_RET = 40, 48        # offsets in sched_switch's frame
_TRAP_ENTRY = "trap_common"              # whose link frame holds an exact rip
_FBT_TRAMP = "fbt_return_tramp"          # an fbt return probe's stand-in return address


class Frame:
    """One stack frame: pc (for a caller, its return address), the
    function and offset, and the source file:line of the call."""

    def __init__(self, prog, pc: int, fp: int, exact: bool) -> None:
        self.pc, self.fp, self.exact = pc, fp, exact
        look = pc if exact else pc - 1            # a return address follows the call
        s = prog.symbol(look)
        self.symbol = s
        self.function = s.name if s else None
        self.offset = s.offset + (pc - look) if s else None
        self.source = prog.source_line(look)

    @property
    def name(self) -> str:
        if self.function is None:
            return f"{self.pc:#x}"
        return f"{self.function}+{self.offset:#x}" if self.offset else self.function

    def __str__(self) -> str:
        src = f" at {self.source[0]}:{self.source[1]}" if self.source else ""
        return f"{self.pc:#018x} {self.name}{src}"

    __repr__ = __str__


class StackTrace(list):
    """Frames, innermost first; str() prints one per line like gdb's bt."""

    def functions(self) -> list[str | None]:
        return [f.function for f in self]

    def __str__(self) -> str:
        return "\n".join(f"#{i:<2} {f}" for i, f in enumerate(self))


class Thread:
    """One slot of sched_threads in use (obj is its struct thread)."""

    def __init__(self, prog, obj, current: bool) -> None:
        self.prog, self.obj, self.is_current = prog, obj, current
        self.tid = int(obj.tid)
        self.name = obj.name.string_()
        self.state = obj.state
        self.state_name = (self.state.enumerator_() or f"?{int(self.state)}") \
            .removeprefix("THREAD_").lower()
        self.wchan = obj.wchan.string_() if self.state_name == "sleeping" else ""
        self.rsp = int(obj.rsp)
        self.stack = int(obj.stack)
        self.stack_size = int(obj.stack_size)
        self.slot = (obj.address_ - prog["sched_threads"].address_) // obj.type_.size

    def __repr__(self) -> str:
        cur = " current" if self.is_current else ""
        w = f" on {self.wchan}" if self.wchan else ""
        return f"Thread(tid={self.tid}, {self.name!r}, {self.state_name}{w}{cur})"

    def stack_trace(self) -> StackTrace:
        """The thread's frames, innermost first."""
        regs = self.prog.registers
        if self.is_current:
            if regs is None:
                raise UnikError(f"thread {self.name} (tid {self.tid}) is running: a live "
                                f"instance has no saved context for it",
                                "take a core (unik dump) to see the running thread's stack")
            return unwind(self.prog, regs["rip"], regs["rbp"], exact=True, sp=regs["rsp"],
                          shadow=fbt_shadow(self.prog, self.slot, self.tid))
        if self.state_name == "dead":
            return StackTrace()
        ret = self.prog.read_u64(self.rsp + _SWITCH_RET)
        rbp = self.prog.read_u64(self.rsp + _SWITCH_RBP)
        return unwind(self.prog, ret, rbp, exact=False,
                      shadow=fbt_shadow(self.prog, self.slot, self.tid))


def fbt_shadow(prog, slot: int, tid: int) -> list[int]:
    """The original return addresses on thread slot's fbt shadow stack,
    innermost first ([] for a kernel without fbt, or a stack that belongs
    to an earlier thread of the slot)."""
    try:
        sh = prog["fbt"].shadow[slot]
        if int(sh.tid) != tid:
            return []
        return [int(sh.f[i].ret) for i in reversed(range(int(sh.depth)))]
    except (UnikError, KeyError, AttributeError, IndexError):
        return []


def unwind(prog, pc: int, fp: int, *, exact: bool, sp: int | None = None,
           shadow=()) -> StackTrace:
    """Follow the rbp chain from (pc, fp); stops at a zero or non-growing
    frame pointer, an unreadable frame or MAX_FRAMES.  An exact pc with a
    known sp (the CPU's, or an interrupted context's) may be in a C
    function that has not pushed its frame (a leaf, a prologue, a ret):
    its return address is then on the stack at sp.  shadow: the thread's
    fbt shadow stack (fbt_shadow), which stands in for each return into
    fbt_return_tramp, innermost first."""
    out, prev = StackTrace(), 0
    cfuncs = prog.db.functions()
    tramp = prog.db.address(_FBT_TRAMP) if shadow else None
    shadow = list(shadow)
    while len(out) < MAX_FRAMES:
        fr = Frame(prog, pc, fp, exact)
        out.append(fr)
        if exact and sp is not None and fr.function in cfuncs:
            ret = _frameless_return(prog, fr, sp)
            if ret is not None:
                if tramp is not None and ret == tramp and shadow:
                    ret = shadow.pop(0)
                pc, exact, sp = ret, False, None      # fp is still the caller's
                continue
        if not fp or fp % 8 or fp <= prev:
            break
        try:
            nfp, ret = prog.read_u64(fp), prog.read_u64(fp + 8)
        except UnikError:
            break
        if ret == 0:
            break
        if tramp is not None and ret == tramp and shadow:
            ret = shadow.pop(0)
        exact, sp = False, None
        if fr.function == _TRAP_ENTRY:
            # trap_common's link frame: the interrupted rip and rbp, then
            # the struct trap_frame with the interrupted rsp
            exact, sp = True, _trap_rsp(prog, fp + 16)
        prev, fp, pc = fp, nfp, ret
    return out


def _trap_rsp(prog, frame: int) -> int | None:
    try:
        return int(prog.object("struct trap_frame", frame).rsp)
    except (UnikError, KeyError):
        return None


def _frameless_return(prog, fr: Frame, sp: int) -> int | None:
    """The return address of a frame whose function has not set rbp up at
    fr.pc (read at sp past what it pushed), or None when it has."""
    import capstone
    start = fr.pc - fr.offset
    try:
        code = prog.read(start, fr.offset + 16)
    except UnikError:
        return None
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    pushes, framed = 0, False
    for ins in md.disasm(code, start):
        if ins.address >= fr.pc:
            if ins.mnemonic == "ret":
                framed = False
                pushes = 0
            break
        if ins.mnemonic == "push":
            pushes += 1
        elif ins.mnemonic == "mov" and ins.op_str == "rbp, rsp":
            framed = True
    if framed:
        return None
    try:
        return prog.read_u64(sp + 8 * pushes)
    except UnikError:
        return None


def threads(prog) -> list[Thread]:
    """Every used slot of the thread table, in table order (as ps lists)."""
    table = prog["sched_threads"]
    cur = int(prog["sched_cur"])
    out = []
    for t in table:
        if t.used:
            out.append(Thread(prog, t, t.address_ == cur))
    return out


def current_thread(prog) -> Thread | None:
    cur = int(prog["sched_cur"])
    for t in threads(prog):
        if t.is_current:
            return t
    return None if cur == 0 else None
