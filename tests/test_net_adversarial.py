"""The http app under hostile traffic, through the raw-frame backend
(`unik boot --net dgram:Q:P`, tests/rawlink.py): echo replies to injected
requests, an established connection fed overlapping and out-of-window
segments, then over 100,000 malformed and adversarial frames
(tests/advframes.py), and afterwards: the kernel alive, no memory leaked,
lwIP's pools back where they were, every drop counted, and the HTTP app
answering GET / and a kv PUT/GET/DELETE over the same link.

One instance for the module; the tests run in file order and each needs
the ones before it (a failure earlier fails the later ones loudly).
Pacing: frames go in chunks of CHUNK with a barrier (an echo request
whose reply proves everything before it went through lwIP) after each, so
the counters can be compared exactly; one unpaced burst then overflows
the receive path on purpose and the drops are accounted for.

Fails (never skips) when QEMU is missing.
"""
from __future__ import annotations

import json
import os
import random
import time

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

import advframes as A
from instances import booted, unik, wait_until
from rawlink import GUEST_IP, PEER_IP, Link, free_udp_port, host_socket_drops

CHUNK = 64                     # frames between barriers: < the tcpip mailbox (128)
BURST = 4000                   # the unpaced burst
GIANTS = 4                     # frames longer than the rx buffer: QEMU drops them
QUIET_TIMEOUT = 90             # s for lwIP to forget the flood (SYN_RCVD: 20 s, reassembly: 15 s)
NAME = "adv"
REPORT = {}                    # figures for the summary (printed with -s)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """(instance, link): the http app on the dgram backend, our end bound."""
    qport = free_udp_port()
    link = Link(qport)
    state = tmp_path_factory.mktemp("adv-state")
    t0 = time.monotonic()
    try:
        with booted("http", state=state, name=NAME,
                    boot_args=["--net", f"dgram:{qport}:{link.port}"]) as inst:
            link.barrier(60)
            inst.qport = qport
            yield inst, link
    finally:
        link.close()
        REPORT["wall_s"] = round(time.monotonic() - t0, 1)
        print("\nadversarial:", json.dumps(REPORT, sort_keys=True))


def counters(env: dict) -> dict:
    """Every counter as 'proto.field' (netstat -s) and 'driver.x'/'netif.x'
    (netstat -i), plus 'pool.NAME' (used) and 'heap.used' (lwIP's heap)."""
    s = json.loads(unik(env, "netstat", NAME, "-s", "--json").stdout)["statistics"]
    i = json.loads(unik(env, "netstat", NAME, "-i", "--json").stdout)["interfaces"][0]
    out = {f"{p}.{f}": v for p, d in s.items() if p not in ("mem", "memp") for f, v in d.items()}
    out.update({f"driver.{k}": v for k, v in i["driver"].items()})
    out.update({f"netif.{k}": v for k, v in i["netif"].items()})
    out.update({f"pool.{m['name']}": m["used"] for m in s["memp"]})
    out["heap.used"] = s["mem"]["used"]
    return out


def memory(env: dict) -> dict:
    """Heap bytes and objects in use per size class, and pages in use
    other than thread stacks (a thread's stack and its guard page come
    from the page allocator: the watchdog thread starts the first time a
    thread blocks on a mutex, which the flood's load may be the first to
    cause; its pages are its stack, not a leak)."""
    m = json.loads(unik(env, "mem", NAME, "--json").stdout)
    ps = json.loads(unik(env, "ps", NAME, "--json").stdout)["threads"]
    stacks = sum(t["stack_size"] // m["page_size"] + 1 for t in ps if t["stack_size"])
    return {"heap_bytes_used": m["heap_bytes_used"], "in_use": [c["in_use"] for c in m["classes"]],
            "pages_not_stacks": m["summary"]["pages_used"] - stacks,
            "threads": sorted(t["name"] for t in ps)}


def delta(a: dict, b: dict) -> dict:
    return {k: b[k] - a.get(k, 0) for k in b if b[k] != a.get(k, 0)}


def send_paced(link: Link, frames) -> None:
    for i in range(0, len(frames), CHUNK):
        for f in frames[i:i + CHUNK]:
            link.send(f)
        link.barrier()


def pools_of(c: dict) -> dict:
    return {k: v for k, v in c.items() if k.startswith("pool.") or k == "heap.used"}


# ------------------------------------------------------------------ echo

def check_echo(req: bytes, rep: bytes) -> None:
    """rep is the right echo reply to req: addresses swapped, id, seq and
    payload the same, both checksums valid (scapy recomputes them)."""
    q, r = Ether(req), Ether(rep)
    assert r[IP].src == GUEST_IP and r[IP].dst == PEER_IP
    assert r[ICMP].type == 0 and r[ICMP].code == 0
    assert (r[ICMP].id, r[ICMP].seq) == (q[ICMP].id, q[ICMP].seq)
    want = bytes(q[ICMP].payload)
    assert bytes(r[ICMP].payload)[:len(want)] == want and r[IP].len == q[IP].len
    good_ip = IP(bytes(r[IP])[:20])
    good_ip.chksum = None
    assert IP(bytes(good_ip)).chksum == r[IP].chksum, "IP header checksum"
    ic = ICMP(bytes(r[ICMP])[:8 + len(want)])
    ic.chksum = None
    assert ICMP(bytes(ic)).chksum == r[ICMP].chksum, "ICMP checksum"


def test_echo_replies(rig):
    """Injected echo requests of several sizes (up to a 1472-byte payload,
    a full 1500-byte packet), then 16 at once: one correct reply each."""
    inst, link = rig
    rng = random.Random(3)
    reqs = []
    for seq, size in enumerate((0, 1, 56, 1000, 1472)):
        reqs.append(bytes(link.ether() / IP(src=PEER_IP, dst=GUEST_IP) /
                          ICMP(type=8, id=0x5151, seq=seq) / Raw(rng.randbytes(size))))
        link.send(reqs[-1])
        link.wait_replies(len(reqs))
    for seq in range(5, 21):
        reqs.append(bytes(link.ether() / IP(src=PEER_IP, dst=GUEST_IP) /
                          ICMP(type=8, id=0x5151, seq=seq) / Raw(rng.randbytes(64))))
    for r in reqs[5:]:
        link.send(r)
    reps = link.wait_replies(len(reqs))
    by_seq = {Ether(r)[ICMP].seq: r for r in reps}
    assert sorted(by_seq) == list(range(len(reqs)))
    for q in reqs:
        check_echo(q, by_seq[Ether(q)[ICMP].seq])
    link.replies.clear()
    REPORT["echo_replies"] = len(reqs)


def test_short_arp_not_answered_from_stale_bytes(rig):
    """Regression: a 22-byte ARP request (types, lengths and opcode, no
    addresses) right after a whole one used to be answered with the whole
    one's addresses, left in the reused pool pbuf (lwIP 2.1.3 reads 28
    bytes of ARP whatever the length); the netif now pads short frames
    with zeros, so it names nobody and gets no answer."""
    inst, link = rig
    x = "02:aa:bb:cc:dd:ee"
    full = bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=x) /
                 ARP(op=1, hwsrc=x, psrc="10.0.2.50", pdst=GUEST_IP))
    for n in range(1, 4):
        link.send(full)
        wait_until(lambda: sum(1 for r in link.arp_replies if r[0] == x) >= n, 10,
                   "the ARP reply to a whole request")
        link.send(full[:22])
        link.barrier()
        assert sum(1 for r in link.arp_replies if r[0] == x) == n, link.arp_replies


# ------------------------------------------------------------------ a live connection

REQ = b"GET / HTTP/1.1\r\nHost: adv\r\n\r\n"


def test_established_connection_survives(rig):
    """On an established connection: segments far out of the window, old
    duplicates, ACKs of data never sent, an out-of-window RST and SYN, then
    a request in overlapping, duplicated, out-of-order pieces: lwIP puts
    the stream together and the app answers it."""
    inst, link = rig
    REPORT["baseline"] = {"counters": counters(inst.env), "memory": memory(inst.env)}
    c = link.tcp(80)
    s = c.snd_nxt
    hostile = [c.seg("PA", seq=s + (1 << 20), payload=b"x" * 100),      # far ahead
               c.seg("PA", seq=s - 70000, payload=b"y" * 100),           # far behind
               c.seg("A", ack=c.rcv_nxt + 100000),                       # acks unsent data
               c.seg("R", seq=s + (1 << 24)),                            # RST out of window
               c.seg("S", seq=s + (1 << 24)),                            # SYN out of window
               c.seg("PA", seq=s + 200000, payload=b"z" * 1000)]
    for f in hostile * 10:
        link.send(f)
    link.barrier()
    pieces = [(10, 20), (5, 15), (20, len(REQ)), (0, 8), (0, len(REQ)), (3, 12), (12, 25)]
    for a, b in pieces:
        link.send(c.seg("PA", seq=s + a, payload=REQ[a:b]))
    c.snd_nxt = s + len(REQ)
    got = c.recv_until(lambda d: b"\r\n\r\nok\n" in d)
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\nok\n"), got
    assert got.count(b"HTTP/1.1") == 1, got          # one request, answered once
    c.close()


def test_fragmented_syn_recycles_time_wait(rig):
    """Regression: a SYN for a 4-tuple the guest holds in TIME_WAIT, above
    its sequence space, frees the TIME_WAIT PCB and is queued to lwIP
    again (net/lwip/timewait.c).  When that SYN came in IP fragments (it
    carries data), the copy used to take the bytes after the first
    fragment from the pool pbuf's stale memory, so its TCP checksum failed
    and the SYN was lost.  Now it is copied from the reassembled chain:
    the listener answers it, once, and tcp.chkerr does not move."""
    inst, link = rig
    c = link.tcp(80)
    c.send(b"GET / HTTP/1.1\r\nHost: adv\r\nConnection: close\r\n\r\n")
    c.recv_until(lambda d: c.fin, 15)                          # the server closes first
    c.close()                                                  # our FIN: the guest in TIME_WAIT
    wait_until(lambda: any(s["state"] == "TIME_WAIT" and s.get("remote_port") == c.sport
                           for s in tcp_sockets(inst.env)), 10, "TIME_WAIT")
    before, recycled = counters(inst.env), tw_recycled(inst.env)
    iss = c.snd_nxt + 100000
    d = link_tcp_fragmented(link, c.sport, iss)
    assert d.rcv_nxt is not None
    d.send(REQ)
    got = d.recv_until(complete)
    assert got.startswith(b"HTTP/1.1 200 OK\r\n"), got
    d.close()
    after = counters(inst.env)
    assert after["tcp.chkerr"] == before["tcp.chkerr"], delta(before, after)
    assert tw_recycled(inst.env) == recycled + 1


def tw_recycled(env: dict) -> int:
    """TIME_WAIT PCBs timewait.c freed for a new SYN (read through DWARF)."""
    return int(unik(env, "py", NAME, "-c", "print(int(prog['net_tw_recycled']))").stdout)


def tcp_sockets(env: dict) -> list:
    return json.loads(unik(env, "netstat", NAME, "-t", "-a", "--json").stdout)["sockets"]


def link_tcp_fragmented(link: Link, sport: int, iss: int):
    """A connection from sport whose SYN (with 600 bytes of data) is sent
    once, in two IP fragments, the first holding the TCP header."""
    from rawlink import Tcp
    from scapy.layers.inet import TCP, fragment
    c = Tcp(link, 80, sport, iss=iss)
    p = IP(src=PEER_IP, dst=GUEST_IP, id=0x7777) / \
        TCP(sport=sport, dport=80, flags="S", seq=iss, window=65535, options=[("MSS", 1460)]) / \
        Raw(bytes(range(256)) * 2 + bytes(88))
    c.connect(timeout=5, syn=[bytes(link.ether() / f) for f in fragment(p, fragsize=304)])
    return c


# ------------------------------------------------------------------ the flood

def test_flood(rig):
    """Every class of advframes.flood (over 100,000 frames), paced; each
    class moves its counters by at least what it expects."""
    inst, link = rig
    t0 = time.monotonic()
    batches = A.flood(A.Env(), seed=7)
    REPORT["generate_s"] = round(time.monotonic() - t0, 1)
    total = sum(len(b.frames) for b in batches)
    assert total >= 100_000
    before = counters(inst.env)
    t1 = time.monotonic()
    per_class, short = {}, []
    for b in batches:
        send_paced(link, b.frames)
        after = counters(inst.env)
        d = delta(before, after)
        per_class[b.name] = {"frames": len(b.frames),
                             **{k: d.get(k, 0) for k in sorted(b.expect)}}
        short += [f"{b.name}: {k} moved {d.get(k, 0)}, expected >= {v}"
                  for k, v in b.expect.items() if d.get(k, 0) < v]
        before = after
    REPORT["flood_s"] = round(time.monotonic() - t1, 1)
    REPORT["flood_frames"] = total
    REPORT["per_class"] = per_class
    assert not short, "\n".join(short)
    assert unik(inst.env, "ps", NAME).stdout


def test_burst_drops_counted(rig):
    """BURST frames with no pacing overflow the receive path; every frame
    sent is accounted for: taken by the driver (good or bad) or dropped at
    QEMU's socket while the ring was full.  Frames longer than the
    driver's buffer are the one exception: QEMU drops them itself."""
    inst, link = rig
    rng = random.Random(11)
    frames = A.bad_checksums(A.Env(), rng, 0, BURST, 0, 0)[1].frames
    c0, h0, s0 = counters(inst.env), host_socket_drops(inst.qport), link.sent
    for f in frames:
        link.send(f)
    link.barrier(60)
    c1, h1 = counters(inst.env), host_socket_drops(inst.qport)
    d = delta(c0, c1)
    sent = link.sent - s0
    taken = d.get("driver.rx_packets", 0) + d.get("driver.rx_drop_bad", 0)
    REPORT["burst"] = {"sent": sent, "driver": taken, "host_socket_drops": h1 - h0,
                       **{k: d.get(k, 0) for k in ("netif.rx_drop_nombox", "netif.rx_drop_nopbuf",
                                                   "tcp.chkerr")}}
    assert taken + (h1 - h0) == sent, REPORT["burst"]
    glue = sum(d.get(k, 0) for k in ("netif.rx_frames", "netif.rx_drop_nopbuf",
                                     "netif.rx_drop_nombox", "driver.rx_drop_nobuf"))
    assert glue == d.get("driver.rx_packets", 0), d
    assert d.get("link.recv", 0) == d.get("netif.rx_frames", 0), d
    lost = d.get("netif.rx_drop_nombox", 0) + d.get("netif.rx_drop_nopbuf", 0) + (h1 - h0)
    assert d.get("tcp.chkerr", 0) + lost >= BURST, d
    # frames longer than the rx buffer: neither the driver nor the host
    # socket sees them go (QEMU drops them); only the barrier arrives
    s1 = link.sent
    giant = bytes(link.ether()) + bytes(A.RX_FRAME_MAX + 1)
    for n in range(GIANTS):
        link.send(giant + bytes(n * 1000))
    link.barrier()
    c2, h2 = counters(inst.env), host_socket_drops(inst.qport)
    d = delta(c1, c2)
    assert h2 == h1 and d.get("driver.rx_drop_bad", 0) == 0, d
    assert d.get("driver.rx_packets", 0) == link.sent - s1 - GIANTS, d


# ------------------------------------------------------------------ afterwards

def test_quiet_after_flood(rig):
    """The flood's half-open connections and incomplete datagrams time
    out: lwIP's pools and heap come back to the baseline (polled), and the
    whole run's counters add up (nothing the driver took got lost)."""
    inst, link = rig
    base = REPORT["baseline"]["counters"]
    t0 = time.monotonic()
    last = {}

    def settled():
        last.update(counters(inst.env))
        return pools_of(last) == pools_of(base)
    try:
        wait_until(settled, QUIET_TIMEOUT, "lwIP's pools back to baseline", interval=2)
    except AssertionError:
        raise AssertionError(f"pools still differ: {delta(pools_of(base), pools_of(last))}")
    REPORT["quiet_s"] = round(time.monotonic() - t0, 1)
    d = delta(base, last)
    glue = sum(d.get(k, 0) for k in ("netif.rx_frames", "netif.rx_drop_nopbuf",
                                     "netif.rx_drop_nombox", "driver.rx_drop_nobuf"))
    assert glue == d.get("driver.rx_packets", 0), d
    REPORT["totals"] = {k: v for k, v in sorted(d.items()) if not k.startswith(("pool.", "heap."))
                        and v}


def complete(d: bytes) -> bool:
    """d holds a whole response (headers and Content-Length bytes of body)."""
    head, sep, body = d.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def http(link: Link, req: bytes, want: bytes) -> bytes:
    """One request on its own connection; the answer must start with want."""
    with link.tcp(80) as c:
        c.send(req)
        got = c.recv_until(complete)
        c.close()
    assert got.startswith(want), got
    return got


def test_http_after_flood(rig):
    """GET /, then a kv PUT, GET and DELETE over the dgram link: the app
    answers each correctly.  Then memory: pages and heap exactly as before
    the flood (everything the connections took is freed when they close),
    pools as before, the instance running and answering ps."""
    inst, link = rig
    assert http(link, REQ, b"HTTP/1.1 200 OK\r\n").endswith(b"ok\n")
    val = os.urandom(16).hex().encode()
    put = b"PUT /kv/adv HTTP/1.1\r\nHost: adv\r\nContent-Length: %d\r\n\r\n%s" % (len(val), val)
    assert http(link, put, b"HTTP/1.1 201 Created\r\n")
    got = http(link, b"GET /kv/adv HTTP/1.1\r\nHost: adv\r\n\r\n", b"HTTP/1.1 200 OK\r\n")
    assert got.endswith(b"\r\n\r\n" + val), got
    assert http(link, b"DELETE /kv/adv HTTP/1.1\r\nHost: adv\r\n\r\n", b"HTTP/1.1 204")
    base = REPORT["baseline"]
    last = {}

    def settled():
        last.update(counters(inst.env))
        return pools_of(last) == pools_of(base["counters"])
    wait_until(settled, 30, "lwIP's pools back to baseline after the HTTP requests", interval=1)
    mem = memory(inst.env)
    REPORT["memory"] = {"before": base["memory"], "after": mem}
    assert {k: v for k, v in mem.items() if k != "threads"} == \
        {k: v for k, v in base["memory"].items() if k != "threads"}, REPORT["memory"]
    assert set(mem["threads"]) - set(base["memory"]["threads"]) <= {"watchdog"}, REPORT["memory"]
    ps = unik(inst.env, "ps", NAME).stdout
    assert " app " in ps and " tcpip " in ps, ps
    log = unik(inst.env, "log", NAME).stdout
    assert "PANIC" not in log and "panic" not in log, log[-2000:]
