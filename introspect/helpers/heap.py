"""Heap statistics from kernel/mm/heap.c's own counters (heap_cls: one
struct heap_class per size class 16..4096, then the page-backed large
class; heap_total, heap_used), in the shape `unik mem` prints."""
from __future__ import annotations

HEAP_MIN_SIZE = 16      # heap.c: classes are 16 << c (a _Static_assert there)


def heap_stats(prog) -> dict:
    """{'bytes_total', 'bytes_used', 'classes': [{size, in_use, allocs,
    frees, failures, bytes_in_use}]} (size 0 = the large class)."""
    cls = prog["heap_cls"]
    n = len(cls)
    classes = []
    for c, hc in enumerate(cls):
        size = HEAP_MIN_SIZE << c if c < n - 1 else 0
        row = {"size": size, "in_use": int(hc.in_use), "allocs": int(hc.allocs),
               "frees": int(hc.frees), "failures": int(hc.failures)}
        row["bytes_in_use"] = size * row["in_use"]
        classes.append(row)
    return {"bytes_total": int(prog["heap_total"]), "bytes_used": int(prog["heap_used"]),
            "classes": classes}


def block(prog, addr: int) -> dict | None:
    """What the heap knows of the small object holding addr: {address,
    size (its class), allocated_by (kmalloc's caller as name+off, from
    kernel/mm/heapsite.c), free (on its class's free list)}; None when
    addr is not in a small-object heap page (or the kernel predates the
    site table)."""
    from ..errors import UnikError
    try:
        tag = int(prog["heap_tag"][addr // 4096])
        n = len(prog["heap_cls"])
        if not 1 <= tag <= n - 1:
            return None
        size = HEAP_MIN_SIZE << (tag - 1)
        obj = addr - addr % size
        sites = prog["heapsite_table"][addr // 4096]
        caller = int(sites[(obj % 4096) // size]) if int(sites) else 0
    except (KeyError, TypeError, UnikError):
        return None
    sym = prog.symbol(caller) if caller else None
    return {"address": obj, "size": size, "allocated_by": str(sym) if sym else None,
            "free": _on_free_list(prog, tag - 1, obj)}


def _on_free_list(prog, c: int, obj: int, limit: int = 1 << 20) -> bool:
    """Is obj on class c's free list (struct heap_free's next chain)?"""
    p = int(prog["heap_cls"][c].free)
    for _ in range(limit):
        if p == 0:
            return False
        if p == obj:
            return True
        p = prog.read_u64(p)
    return False
