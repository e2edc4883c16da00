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
