"""prog.disassemble: capstone over kernel memory, symbolized."""
from __future__ import annotations

from ..errors import UnikError


def disassemble(prog, addr: int, n: int) -> list:
    """n instructions from addr, each with its symbol (name+offset)."""
    from ..program import Insn
    try:
        import capstone
    except ImportError:
        raise UnikError("capstone is not installed", "pip install capstone") from None
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    code = _read_upto(prog, addr, 15 * max(n, 1))
    out = []
    for ins in md.disasm(code, addr):
        if len(out) >= n:
            break
        sym = prog.symbol(ins.address)
        op = ins.op_str
        if ins.mnemonic.startswith(("call", "j")) and op.startswith("0x"):
            tgt = prog.symbol(int(op, 16))
            op = f"{op} <{tgt}>" if tgt else op
        out.append(Insn(ins.address, ins.size, ins.mnemonic, op, sym))
    return out


def _read_upto(prog, addr: int, n: int) -> bytes:
    """Up to n bytes at addr, fewer when memory ends sooner."""
    while n > 0:
        try:
            return prog.read(addr, n)
        except UnikError:
            n //= 2
    raise UnikError(f"cannot read code at {addr:#x}", "is the address in guest RAM?")
