"""The mux's routing table: request-id rewriting and subscriptions.

Pure: no I/O, no clock (callers pass `now`).  Many host clients share one
kernel connection, and each picks its own request ids, so the mux gives every
forwarded request a fresh mux id, remembers (client, client id) for it, and
maps the kernel's reply back.  Kernel frames with id 0 are unsolicited: they
go to the clients whose subscriptions cover the frame's type; trace
sessions (`Sessions`) say which client a session's TRACE_DATA goes to.

Clients are opaque hashable keys (the mux uses small integers).
"""
from __future__ import annotations

from dataclasses import dataclass, field

ID_LIMIT = 1 << 32            # ids are u32; 0 is reserved for unsolicited frames


@dataclass
class Pending:
    client: object
    client_id: int
    type: int
    since: float


@dataclass
class Router:
    """Maps mux ids to (client, client id) for requests in flight."""
    expiry: float = 120.0                  # seconds before an unanswered request is forgotten
    pending: dict = field(default_factory=dict)   # mux id -> Pending
    next_id: int = 1

    def outbound(self, client, client_id: int, mtype: int, now: float) -> int:
        """Register a client's request; return the id to send to the kernel."""
        mid = self._alloc()
        self.pending[mid] = Pending(client, client_id, mtype, now)
        return mid

    def inbound(self, mux_id: int):
        """A kernel reply arrived: return its Pending (and forget it), or None
        when nobody waits for it (client gone, expired, or unknown id)."""
        if mux_id == 0:
            return None
        return self.pending.pop(mux_id, None)

    def drop_client(self, client) -> int:
        """A client left: forget its requests.  Returns how many."""
        gone = [m for m, p in self.pending.items() if p.client == client]
        for m in gone:
            del self.pending[m]
        return len(gone)

    def expire(self, now: float) -> list[Pending]:
        """Forget requests older than `expiry`; return them."""
        old = [m for m, p in self.pending.items() if now - p.since > self.expiry]
        return [self.pending.pop(m) for m in old]

    def _alloc(self) -> int:
        if len(self.pending) >= ID_LIMIT - 1:
            raise RuntimeError("no free request ids")
        mid = self.next_id
        while mid == 0 or mid in self.pending:
            mid = (mid + 1) % ID_LIMIT
        self.next_id = (mid + 1) % ID_LIMIT or 1
        return mid


@dataclass
class Subscriptions:
    """Which clients want which unsolicited frame types (inclusive ranges)."""
    ranges: dict = field(default_factory=dict)     # client -> list[(lo, hi)]

    def subscribe(self, client, lo: int, hi: int) -> None:
        if lo > hi:
            lo, hi = hi, lo
        rs = self.ranges.setdefault(client, [])
        rs.append((lo, hi))
        self.ranges[client] = _merge(rs)

    def unsubscribe(self, client, lo: int, hi: int) -> None:
        if lo > hi:
            lo, hi = hi, lo
        out = []
        for a, b in self.ranges.get(client, []):
            if b < lo or a > hi:
                out.append((a, b))
                continue
            if a < lo:
                out.append((a, lo - 1))
            if b > hi:
                out.append((hi + 1, b))
        if out:
            self.ranges[client] = out
        else:
            self.ranges.pop(client, None)

    def drop_client(self, client) -> None:
        self.ranges.pop(client, None)

    def targets(self, mtype: int) -> list:
        """Clients subscribed to frames of type `mtype`, in subscription order."""
        return [c for c, rs in self.ranges.items()
                if any(a <= mtype <= b for a, b in rs)]


def _merge(ranges: list) -> list:
    out: list = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


@dataclass
class Sessions:
    """Which client opened which trace session (session id -> client)."""
    owners: dict = field(default_factory=dict)

    def add(self, sid: int, client) -> None:
        self.owners[sid] = client

    def remove(self, sid) -> None:
        self.owners.pop(sid, None)

    def owner(self, sid):
        """The client that opened session sid, or None."""
        return self.owners.get(sid)

    def drop_client(self, client) -> list:
        """A client left: forget its sessions and return them (to close)."""
        gone = sorted(s for s, c in self.owners.items() if c == client)
        for s in gone:
            del self.owners[s]
        return gone
