"""netstat's tables beyond the sockets (sockets.py): interface counters,
per-protocol statistics, routes and the ARP cache, read through a Program
(live over MEMREAD or from a core: the same code) from

  vnet.stats        the virtio-net driver's counters (drivers/vnet.c)
  net_stats         the netif glue's drops (net/lwip/netif.c, static)
  netif_list        lwIP's interfaces (address, mask, gateway, MTU, MAC)
  netif_default     the interface of the default route
  lwip_stats        lwIP's counters (LWIP_STATS, 32-bit: LWIP_STATS_LARGE)
  arp_table         lwIP's ARP cache (core/ipv4/etharp.c, static)

Every function returns plain dicts (JSON as is); render_* turn them into
the text netstat -i / -s / -r and arp -n users know.
"""
from __future__ import annotations

from ..errors import UnikError
from .sockets import MAX_PCBS, has_stack, ip4

# lwIP's netif flags (lwip/netif.h)
_NETIF_FLAGS = ((0x01, "U"), (0x02, "B"), (0x04, "R"))   # up, broadcast, link up (as RUNNING)
_PROTOS = ("link", "etharp", "ip_frag", "ip", "icmp", "udp", "tcp")
_FIELDS = ("xmit", "recv", "fw", "drop", "chkerr", "lenerr", "memerr", "rterr",
           "proterr", "opterr", "err", "cachehit")
# netstat -s phrasing of lwIP's stats_proto counters
_LABELS = {"recv": "packets received", "xmit": "packets sent", "fw": "packets forwarded",
           "drop": "packets dropped", "chkerr": "with a bad checksum",
           "lenerr": "with a bad length", "memerr": "dropped for lack of memory",
           "rterr": "with no route", "proterr": "protocol errors",
           "opterr": "with bad or unsupported options", "err": "other errors",
           "cachehit": "cache hits"}
_TITLES = {"link": "Link", "etharp": "Arp", "ip_frag": "IpFrag", "ip": "Ip",
           "icmp": "Icmp", "udp": "Udp", "tcp": "Tcp"}
ARP_STATES = {0: "empty", 1: "incomplete", 2: "reachable", 3: "reachable", 4: "reachable",
              5: "permanent"}
ARP_TMR_S = 1                   # etharp_tmr runs every ARP_TMR_INTERVAL = 1000 ms


def _netifs(prog) -> list:
    """lwIP's interfaces (the netif_list chain)."""
    out, seen, p = [], set(), prog["netif_list"]
    while int(p) and int(p) not in seen and len(out) < MAX_PCBS:
        seen.add(int(p))
        nif = p.deref()
        out.append(nif)
        p = nif.next
    return out


def _ifname(nif) -> str:
    name = bytes(int(nif.name[i]) for i in range(2)).decode("ascii", "replace")
    return f"{name}{int(nif.num)}"


def _mac(arr, n: int = 6) -> str:
    return ":".join(f"{int(arr[i]):02x}" for i in range(n))


def _flags(nif) -> str:
    f = int(nif.flags)
    return "".join(c for bit, c in _NETIF_FLAGS if f & bit) or "-"


def _struct(obj) -> dict:
    """A struct of integers as {member: int}."""
    return {m.name: int(obj[m.name]) for m in obj.type_.members if m.name}


def interfaces(prog) -> list[dict]:
    """One dict per interface: name, mtu, mac, flags, addr/mask, and the
    counters: rx/tx packets and bytes from the driver, errors and drops by
    reason (driver and glue), lwIP's link counters.  netstat -i."""
    if not has_stack(prog):
        return []
    drv = _struct(prog["vnet"].stats)
    try:
        glue = _struct(prog["net_stats"])
    except KeyError:
        glue = {}
    link = _struct(prog["lwip_stats"].link)
    out = []
    for nif in _netifs(prog):
        out.append({
            "name": _ifname(nif), "mtu": int(nif.mtu), "mac": _mac(nif.hwaddr),
            "flags": _flags(nif), "addr": ip4(int(nif.ip_addr.addr)),
            "mask": ip4(int(nif.netmask.addr)),
            "rx_packets": drv["rx_packets"], "rx_bytes": drv["rx_bytes"],
            "tx_packets": drv["tx_packets"], "tx_bytes": drv["tx_bytes"],
            # errors: frames that were malformed; drops: good frames not taken
            "rx_errors": drv["rx_drop_bad"],
            "rx_drops": drv["rx_drop_nobuf"] + glue.get("rx_drop_nopbuf", 0)
            + glue.get("rx_drop_nombox", 0),
            "tx_errors": drv["tx_drop_bad"] + glue.get("tx_drop_big", 0),
            "tx_drops": glue.get("tx_drop_dev", 0),
            "driver": drv, "netif": glue, "link": link,
        })
    return out


def stats(prog) -> dict:
    """lwIP's counters: {proto: {xmit, recv, fw, drop, chkerr, ...}} for
    link etharp ip_frag ip icmp udp tcp, plus 'mem' (the heap) and 'memp'
    (each pool: name, avail, used, max, err).  netstat -s."""
    if not has_stack(prog):
        return {}
    st = prog["lwip_stats"]
    out = {p: {f: int(st[p][f]) for f in _FIELDS} for p in _PROTOS}
    out["mem"] = _mem(st.mem, "heap")
    pools = []
    for i in range(len(st.memp)):
        p = st.memp[i]
        if int(p):
            m = p.deref()
            pools.append(_mem(m, None))
    out["memp"] = pools
    return out


def _mem(m, name: str | None) -> dict:
    if name is None:
        try:
            name = m.prog_.read_string(int(m.name), 32).decode("ascii", "replace")
        except UnikError:
            name = "?"
    return {"name": name, "avail": int(m.avail), "used": int(m.used), "max": int(m.max),
            "err": int(m.err), "illegal": int(m.illegal)}


def routes(prog) -> list[dict]:
    """The routing table lwIP uses: per interface its subnet, and the
    default route through netif_default's gateway.  netstat -r."""
    if not has_stack(prog):
        return []
    out, dflt = [], int(prog["netif_default"])
    for nif in _netifs(prog):
        ip, mask, gw = (int(nif.ip_addr.addr), int(nif.netmask.addr), int(nif.gw.addr))
        up = "U" if int(nif.flags) & 0x01 else ""
        if int(nif.address_) == dflt and gw:
            out.append({"destination": "0.0.0.0", "gateway": ip4(gw), "genmask": "0.0.0.0",
                        "flags": up + "G", "iface": _ifname(nif), "mtu": int(nif.mtu)})
        out.append({"destination": ip4(ip & mask), "gateway": "0.0.0.0", "genmask": ip4(mask),
                    "flags": up, "iface": _ifname(nif), "mtu": int(nif.mtu)})
    return out


def arp(prog) -> list[dict]:
    """lwIP's ARP cache, entries in use: address, MAC, state (incomplete,
    reachable, permanent), age in seconds, interface.  arp -n."""
    if not has_stack(prog):
        return []
    try:
        table = prog["arp_table"]
    except KeyError:
        return []
    out = []
    for i in range(table.type_.count or 0):
        e = table[i]
        state = int(e.state)
        if state == 0:
            continue
        nif = e.netif
        out.append({"address": ip4(int(e.ipaddr.addr)), "mac": _mac(e.ethaddr.addr),
                    "state": ARP_STATES.get(state, f"?{state}"),
                    "age_s": int(e.ctime) * ARP_TMR_S,
                    "iface": _ifname(nif.deref()) if int(nif) else "-",
                    "queued": int(e.q) != 0})
    return out


# ------------------------------------------------------------------ text
def render_interfaces(rows: list[dict]) -> list[str]:
    """netstat -i's table, then per interface its bytes and drops by reason."""
    out = ["Kernel Interface table",
           f"{'Iface':<8} {'MTU':>5} {'RX-OK':>8} {'RX-ERR':>6} {'RX-DRP':>6} "
           f"{'TX-OK':>8} {'TX-ERR':>6} {'TX-DRP':>6} Flg"]
    for r in rows:
        out.append(f"{r['name']:<8} {r['mtu']:>5} {r['rx_packets']:>8} {r['rx_errors']:>6} "
                   f"{r['rx_drops']:>6} {r['tx_packets']:>8} {r['tx_errors']:>6} "
                   f"{r['tx_drops']:>6} {r['flags']}")
    for r in rows:
        d, g = r["driver"], r["netif"]
        out += ["", f"{r['name']}: inet {r['addr']} netmask {r['mask']} ether {r['mac']}",
                f"    RX {r['rx_packets']} packets {r['rx_bytes']} bytes; "
                f"TX {r['tx_packets']} packets {r['tx_bytes']} bytes; {d['irqs']} interrupts",
                f"    RX drops: {d['rx_drop_bad']} bad frame, {d['rx_drop_nobuf']} no receiver, "
                f"{g.get('rx_drop_nopbuf', 0)} no pbuf, {g.get('rx_drop_nombox', 0)} "
                f"tcpip mailbox full",
                f"    TX drops: {g.get('tx_drop_dev', 0)} ring full after retries, "
                f"{d['tx_drop_bad']} bad frame, {g.get('tx_drop_big', 0)} too big; "
                f"{d['tx_drop_ring']} ring-full refusals, {g.get('tx_ring_waits', 0)} waits"]
    return out


def render_stats(st: dict) -> list[str]:
    """netstat -s: one block per protocol, lines for non-zero counters
    (packets received and sent always), then lwIP's heap and pools."""
    out = []
    for p in _PROTOS:
        c = st[p]
        out.append(f"{_TITLES[p]}:")
        for f in _FIELDS:
            if c[f] or f in ("recv", "xmit"):
                out.append(f"    {c[f]} {_LABELS[f]}")
    m = st["mem"]
    out += ["Memory:", f"    heap: {m['used']} of {m['avail']} bytes used, max {m['max']}, "
                       f"{m['err']} failed allocations"]
    for m in st["memp"]:
        out.append(f"    {m['name']:<20} {m['used']:>4}/{m['avail']:<4} used, "
                   f"max {m['max']}, {m['err']} failed")
    return out


def render_routes(rows: list[dict], arp_rows: list[dict]) -> list[str]:
    """netstat -rn's table, then arp -n's."""
    out = ["Kernel IP routing table",
           f"{'Destination':<15} {'Gateway':<15} {'Genmask':<15} {'Flags':<5} {'MTU':>5} Iface"]
    for r in rows:
        out.append(f"{r['destination']:<15} {r['gateway']:<15} {r['genmask']:<15} "
                   f"{r['flags']:<5} {r['mtu']:>5} {r['iface']}")
    out += ["", "ARP cache",
            f"{'Address':<15} {'HWaddress':<17} {'State':<10} {'Age':>5} Iface"]
    for a in arp_rows:
        out.append(f"{a['address']:<15} {a['mac']:<17} {a['state']:<10} "
                   f"{a['age_s']:>4}s {a['iface']}")
    return out
