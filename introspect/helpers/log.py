"""The kernel's log ring (kernel/log.c: log_kernel over log_buf), read from
memory: the same text `unik log` prints (whole lines when it wrapped)."""
from __future__ import annotations


def log_bytes(prog) -> tuple[int, int, bytes]:
    """(oldest offset, head offset, the bytes kept) of the kernel ring."""
    ring = prog["log_kernel"]
    head, size = int(ring.head), int(ring.size)
    buf = int(ring.buf)
    oldest = head - size if head > size else 0
    n = head - oldest
    pos = oldest & (size - 1)
    first = min(n, size - pos)
    data = prog.read(buf + pos, first) + (prog.read(buf, n - first) if n > first else b"")
    return oldest, head, data


def log_text(prog) -> str:
    """The log as `unik log` prints it: from the oldest whole line."""
    oldest, _head, data = log_bytes(prog)
    if oldest > 0:
        i = data.find(b"\n")
        data = data[i + 1:] if i >= 0 else b""
    return data.decode("utf-8", "replace")
