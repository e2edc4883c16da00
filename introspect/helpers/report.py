"""What happened to a kernel, from a core: the post-mortem summary `unik
core` prints (like mdb's ::status, ::stack and ::stacks).

The panic comes from the crash record (kernel/arch/crash.c's
`crash_record`, introspect/helpers/crash.py) when the kernel has one, else
(older kernels, a damaged record) from the log ring, where
kernel/arch/panic.c's report lands: the headline "PANIC: #PF page fault (vector 14) err=0x2 cr2=0x..."
(or "PANIC: <panic() message>"), the thread, the registers at the trap
and "rip 0x... fn+0x..".  A panicked CPU sits in panic_halt, so the
faulting instruction and registers are the report's, not the core's.

    rep = summarize(prog, stacks=True)      # a dict, JSON-ready
    print(render(rep))

parse_panic() is pure (text in, dict out); summarize() reads through the
Program; render() is pure again.
"""
from __future__ import annotations

import re

from ..errors import UnikError

LOG_TAIL = 20                 # log ring lines in the summary
EVENTS_TAIL = 20              # flight-recorder events in the summary
INSNS_BEFORE = 6              # instructions shown before the faulting one
INSNS_AFTER = 4               # and after it
_MAX_FN_SCAN = 8192           # longest function prefix decoded to find "before"

_STAMP = re.compile(r"^\[\s*\d+\.\d+\] ?")      # log.c's "[    1.023303] "
_HEAD_TRAP = re.compile(r"PANIC: (\S+) (.+?) \(vector (\d+)\) err=0x([0-9a-f]+) "
                        r"cr2=0x([0-9a-f]+)")
_THREAD = re.compile(r'thread (\d+|-) "(.*)"$')
_REG = re.compile(r"\b([a-z0-9]+)=0x([0-9a-f]+)")
_RIP = re.compile(r"rip 0x([0-9a-f]+) (\S+)")
_FRAME = re.compile(r"#(\d+) 0x([0-9a-f]+) (\S+)")
_HALTED = re.compile(r"kernel halted \(uptime (\d+) ms\)")


def parse_panic(log: str) -> dict | None:
    """The last panic report in a log ring's text, or None when there is
    none.  Keys: headline, message, trap (bool), exception, name, vector,
    error_code, cr2, detail, thread {tid, name}, registers, rip,
    rip_symbol, backtrace [{pc, symbol}], uptime_ms."""
    lines = [_STAMP.sub("", ln, count=1) for ln in log.splitlines()]
    heads = [i for i, ln in enumerate(lines)
             if ln.startswith("PANIC: ") and "recursive panic" not in ln]
    if not heads:
        return None
    i = heads[-1]
    head = lines[i]
    p = {"headline": head, "message": head[len("PANIC: "):], "trap": False,
         "exception": None, "name": None, "vector": None, "error_code": None,
         "cr2": None, "detail": None, "thread": None, "registers": {},
         "rip": None, "rip_symbol": None, "backtrace": [], "uptime_ms": None}
    m = _HEAD_TRAP.match(head)
    if m:
        p.update(trap=True, exception=m[1], name=m[2], vector=int(m[3]),
                 error_code=int(m[4], 16), cr2=int(m[5], 16))
    in_regs = in_bt = False
    for ln in lines[i + 1:]:
        s = ln.strip()
        if s.startswith("PANIC: "):
            break
        if s.startswith("page fault: ") and p["detail"] is None:
            p["detail"] = s
        elif (t := _THREAD.match(s)) and p["thread"] is None:
            p["thread"] = {"tid": None if t[1] == "-" else int(t[1]), "name": t[2]}
        elif s == "registers:":
            in_regs, in_bt = True, False
        elif s == "backtrace:":
            in_regs, in_bt = False, True
        elif (r := _RIP.match(s)) and not in_bt:
            in_regs = False
            p["rip"], p["rip_symbol"] = int(r[1], 16), r[2]
        elif in_regs and _REG.search(s):
            p["registers"].update((k, int(v, 16)) for k, v in _REG.findall(s))
        elif in_bt and (f := _FRAME.search(s)):
            p["backtrace"].append({"pc": int(f[2], 16), "symbol": f[3]})
        elif h := _HALTED.search(s):
            p["uptime_ms"] = int(h[1])
            break
    if p["cr2"] is not None:
        p["registers"].setdefault("cr2", p["cr2"])
    if p["rip"] is None and "rip" in p["registers"]:
        p["rip"] = p["registers"]["rip"]
    return p


def from_record(rec: dict) -> dict:
    """parse_panic's dict built from a crash record (crash.decode): the
    record's registers, thread, cause and backtrace, the report's text for
    what only it says (the page fault's detail, frame symbols).  Extra
    keys: kind, file, line, addr, summary (crash.headline)."""
    from .crash import headline
    p = parse_panic(rec["text"]) or {"detail": None, "backtrace": [], "rip_symbol": None}
    syms = {f["pc"]: f["symbol"] for f in p["backtrace"]}
    regs = rec["registers"]
    trap = rec["kind"] in ("trap", "stack_overflow") and rec["vector"] is not None
    detail = p["detail"]
    for ln in rec["text"].splitlines():
        if "stack overflow in thread" in ln:
            detail = _STAMP.sub("", ln, count=1).strip()
    return {"headline": "PANIC: " + rec["reason"], "message": rec["reason"], "trap": trap,
            "exception": None, "name": None, "vector": rec["vector"],
            "error_code": rec["error_code"], "cr2": rec["cr2"], "detail": detail,
            "thread": rec["thread"], "registers": regs, "rip": regs["rip"],
            "rip_symbol": p["rip_symbol"],
            "backtrace": [{"pc": pc, "symbol": syms.get(pc)} for pc in rec["frames"]],
            "uptime_ms": rec["uptime_ns"] // 1_000_000 if rec["complete"] else None,
            "kind": rec["kind"], "file": rec["file"], "line": rec["line"],
            "addr": rec["addr"], "summary": headline(rec)} | (
        {"exception": (m := _HEAD_TRAP.search(rec["text"])) and m[1],
         "name": m and m[2]} if trap else {})


def reason(p: dict | None) -> str:
    """One line: why the kernel stopped."""
    if p is None:
        return "no panic recorded (the instance was running when the core was taken)"
    if p.get("summary"):
        s = p["summary"]
        if p.get("kind") == "stack_overflow":
            return s
    elif p["trap"]:
        s = f"{p['exception']} {p['name']} (vector {p['vector']}) " \
            f"err={p['error_code']:#x} cr2={p['cr2']:#x}"
    else:
        s = f"panic: {p['message']}"
    if p["thread"]:
        tid = p["thread"]["tid"]
        s += f" in thread {'-' if tid is None else tid} \"{p['thread']['name']}\""
    return s


# --- reading the core -------------------------------------------------------

def fault_context(prog, rip: int, trap: bool) -> dict:
    """The instructions around rip, the faulting one marked.  For a trap
    rip is the faulting instruction; for panic() it is the return address,
    so the call before it is marked."""
    look = rip if trap else rip - 1     # a noreturn call may end its function
    sym = prog.symbol(look)
    before = []
    if sym is not None and sym.offset <= _MAX_FN_SCAN:
        start = look - sym.offset
        try:
            before = [i for i in prog.disassemble(start, rip - start + 1) if i.address < rip]
        except UnikError:
            before = []
        if before and before[-1].address + before[-1].size != rip:
            before = []                   # rip is not on a boundary from the start
    after = prog.disassemble(rip, INSNS_AFTER + 1)
    mark = rip
    if not trap and before:
        mark = before[-1].address
    insns = before[-INSNS_BEFORE:] + after
    src = prog.source_line(mark)
    msym = prog.symbol(mark)
    return {"rip": rip, "marked": mark, "symbol": str(msym) if msym else None,
            "source": _src(src),
            "instructions": [_insn(i, i.address == mark) for i in insns]}


def _insn(i, marked: bool) -> dict:
    return {"address": i.address, "symbol": str(i.symbol) if i.symbol else None,
            "mnemonic": i.mnemonic, "op_str": i.op_str, "faulting": marked}


def _src(src) -> str | None:
    return f"{src[0]}:{src[1]}" if src else None


def _frames(trace) -> list[dict]:
    return [{"pc": f.pc, "function": f.function, "name": f.name,
             "source": _src(f.source)} for f in trace]


def _thread(t) -> dict:
    d = {"tid": t.tid, "name": t.name, "state": t.state_name, "wchan": t.wchan,
         "current": t.is_current, "backtrace": [], "error": None}
    try:
        d["backtrace"] = _frames(t.stack_trace())
    except UnikError as e:
        d["error"] = str(e)
    return d


def group_stacks(threads: list[dict]) -> list[dict]:
    """Threads with identical backtraces (same pcs), like mdb's ::stacks:
    [{count, threads: [name...], tids, states, backtrace}], biggest first."""
    groups: dict[tuple, dict] = {}
    for t in threads:
        key = tuple(f["pc"] for f in t["backtrace"])
        g = groups.setdefault(key, {"count": 0, "threads": [], "tids": [], "states": [],
                                    "backtrace": t["backtrace"]})
        g["count"] += 1
        g["threads"].append(t["name"])
        g["tids"].append(t["tid"])
        state = t["state"] + (f" on {t['wchan']}" if t["wchan"] else "")
        if state not in g["states"]:
            g["states"].append(state)
    return sorted(groups.values(), key=lambda g: -g["count"])


def _pages(prog) -> dict | None:
    """page.c's counters (static page_st), when the DWARF has them."""
    try:
        st = prog["page_st"]
        return {k: int(st[k]) for k in ("total", "free", "kernel", "failures")}
    except (KeyError, AttributeError, TypeError, UnikError):
        return None


def panic_of(prog, log: str) -> tuple[dict | None, dict | None, str | None, str | None]:
    """(panic dict, crash record, where it came from, why the record was
    not used): the crash record when the kernel has a non-empty one, else
    the last panic report in the log ring."""
    from .crash import BadRecord, crash_record
    rec, note = None, None
    try:
        rec = crash_record(prog)
    except (BadRecord, UnikError) as e:
        note = str(e)
    if rec is not None:
        return from_record(rec), rec, "crash record", None
    p = parse_panic(log)
    return p, None, "log" if p else None, note


def summarize(prog, stacks: bool = False) -> dict:
    """Everything `unik core` reports about the core prog is open on."""
    log = prog.log()
    p, rec, p_from, rec_note = panic_of(prog, log)
    if p and p["registers"]:
        regs, regs_from = p["registers"], "crash record" if rec else "panic report"
    else:
        regs, regs_from = dict(prog.registers or {}), "core"
    threads = [_thread(t) for t in prog.threads()]
    fthread = _faulting_thread(threads, p)
    rip = p["rip"] if p and p["rip"] is not None else regs.get("rip")
    fault = None
    if rip is not None:
        try:
            fault = fault_context(prog, rip, p is None or p["trap"])
        except UnikError as e:
            fault = {"rip": rip, "error": str(e), "instructions": []}
    rep = {"core": prog.name, "kernel": str(prog.db.path), "panicked": p is not None,
           "reason": reason(p), "panic": p, "panic_from": p_from, "crash": rec,
           "crash_note": rec_note, "function": _function(prog, rip, p),
           "fault": fault, "registers": regs,
           "registers_from": regs_from, "thread": fthread,
           "backtrace": _from_fault(fthread, rip) if fthread else [],
           "threads": threads, "stacks": group_stacks(threads) if stacks else None,
           "log_tail": log.splitlines()[-LOG_TAIL:], "heap": prog.heap(),
           "pages": _pages(prog), "heap_block": _heap_block(prog, p)}
    rep["events"] = _events(prog)
    rep["sockets"] = _sockets(prog)
    return rep


def _sockets(prog) -> list[dict] | None:
    """lwIP's socket table (helpers/sockets.py; None: a kernel without lwIP)."""
    from .sockets import has_stack, sockets
    return sockets(prog) if has_stack(prog) else None


def _heap_block(prog, p: dict | None) -> dict | None:
    """The heap block a heap-kind panic is about: its class, who allocated
    it, whether it is free (helpers/heap.py block())."""
    if not p or p.get("kind") != "heap" or not p.get("addr"):
        return None
    from .heap import block
    return block(prog, p["addr"])


def _function(prog, rip: int | None, p: dict | None) -> str | None:
    """The function that faulted (a trap's rip) or called panic (the
    function holding the return address)."""
    if rip is None:
        return None
    s = prog.symbol(rip if p is None or p["trap"] else rip - 1)
    return s.name if s else None


def _events(prog) -> list[dict] | None:
    """The flight recorder's last events (None: a kernel without one)."""
    from .flight import events
    try:
        return events(prog, limit=EVENTS_TAIL)
    except UnikError:
        return None


def _faulting_thread(threads: list[dict], p: dict | None) -> dict | None:
    """The thread the panic report names, else the current one."""
    if p and p["thread"] and p["thread"]["tid"] is not None:
        for t in threads:
            if t["tid"] == p["thread"]["tid"]:
                return t
    return next((t for t in threads if t["current"]), None)


def _from_fault(thread: dict, rip: int | None) -> list[dict]:
    """The thread's frames from the faulting pc on (the panic machinery
    above it left out), or all of them when the pc is not among them."""
    bt = thread["backtrace"]
    for i, f in enumerate(bt):
        if f["pc"] == rip:
            return bt[i:]
    return bt


# --- text ------------------------------------------------------------------

_REG_ORDER = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10",
              "r11", "r12", "r13", "r14", "r15", "rip", "rfl", "rflags", "cs", "ss",
              "cr0", "cr2", "cr3", "cr4"]


def render(rep: dict) -> str:
    """The text report."""
    out = [f"core   {rep['core']}", f"kernel {rep['kernel']}", "",
           f"status: {rep['reason']}"]
    p = rep["panic"]
    if p and p["detail"]:
        out.append(f"        {p['detail']}")
    if p and p.get("file"):
        out.append(f"        at {p['file']}:{p['line']}")
    if p and p.get("addr") and p.get("kind") == "heap":
        b = rep.get("heap_block") or {}
        more = f" ({b['size']}-byte class, allocated by {b['allocated_by'] or '?'}, " \
               f"{'free' if b['free'] else 'in use'})" if b else ""
        out.append(f"        heap block {p['addr']:#x}{more}")
    if p and p["uptime_ms"] is not None:
        out.append(f"        uptime {p['uptime_ms']} ms")
    if rep.get("panic_from"):
        kind = f", kind {p['kind']}" if p.get("kind") else ""
        out.append(f"        from the {rep['panic_from']}{kind}")
    out += ["", *_render_fault(rep["fault"]), "",
            f"registers ({rep['registers_from']}):", *_render_regs(rep["registers"])]
    t = rep["thread"]
    if t:
        out += ["", f"backtrace of thread {t['tid']} \"{t['name']}\" ({t['state']}):",
                *_render_bt(rep["backtrace"], "  ")]
    if rep["stacks"] is not None:
        out += ["", "stacks (identical stacks grouped):"]
        for g in rep["stacks"]:
            out.append(f"  {g['count']:>3} x {', '.join(g['threads'])}  "
                       f"[{'; '.join(g['states'])}]")
            out += _render_bt(g["backtrace"], "        ")
    else:
        out += ["", "threads:"]
        for th in rep["threads"]:
            w = f" on {th['wchan']}" if th["wchan"] else ""
            cur = " (current)" if th["current"] else ""
            out.append(f"  {th['tid']:>3} {th['name']:<16} {th['state']}{w}{cur}")
            out += _render_bt(th["backtrace"], "        ")
            if th["error"]:
                out.append(f"        ({th['error']})")
    if rep.get("events") is not None:
        from .flight import line
        out += ["", f"flight recorder (last {len(rep['events'])} events):",
                *("  " + line(e) for e in rep["events"])]
    if rep.get("sockets") is not None:
        from .sockets import table
        out += ["", f"sockets ({len(rep['sockets'])}):", *("  " + ln for ln in table(rep["sockets"]))]
    out += ["", *_render_mem(rep["heap"], rep["pages"]), "",
            f"log (last {len(rep['log_tail'])} lines):",
            *("  " + ln for ln in rep["log_tail"])]
    return "\n".join(out) + "\n"


def _render_fault(f: dict | None) -> list[str]:
    if f is None:
        return ["no instruction pointer to disassemble"]
    where = f" at {f['source']}" if f.get("source") else ""
    out = [f"instruction at {f.get('marked', f['rip']):#x} {f.get('symbol') or '?'}{where}:"]
    if f.get("error"):
        out.append(f"  ({f['error']})")
    for i in f["instructions"]:
        mark = "=>" if i["faulting"] else "  "
        sym = f" <{i['symbol']}>" if i["symbol"] else ""
        out.append(f"{mark} {i['address']:#x}{sym}: {i['mnemonic']} {i['op_str']}".rstrip())
    return out


def _render_regs(regs: dict) -> list[str]:
    names = [r for r in _REG_ORDER if r in regs] + sorted(set(regs) - set(_REG_ORDER))
    cells = [f"{n:>8}={regs[n]:#018x}" for n in names]
    return [" ".join(cells[i:i + 3]) for i in range(0, len(cells), 3)]


def _render_bt(bt: list[dict], indent: str) -> list[str]:
    """One line per frame; a run of identical frames (a recursion) after
    its first two is one line with its count."""
    out, i = [], 0
    while i < len(bt):
        f = bt[i]
        out.append(f"{indent}#{i:<2} {f['pc']:#018x} {f['name']}"
                   + (f" at {f['source']}" if f["source"] else ""))
        j = i + 1
        while j < len(bt) and bt[j]["pc"] == f["pc"]:
            j += 1
        if j - i > 2:
            out.append(f"{indent}#{i + 1:<2} ... the same frame {j - i - 1} more times")
            i = j
        else:
            i += 1
    return out


def _render_mem(heap: dict, pages: dict | None) -> list[str]:
    out = [f"heap: {heap['bytes_used']} of {heap['bytes_total']} bytes in use"]
    if pages:
        out.append(f"pages: {pages['free']} free of {pages['total']} "
                   f"({pages['kernel']} kernel, {pages['failures']} failed allocations)")
    out.append("  size   in_use   allocs    frees  failures")
    for c in heap["classes"]:
        size = str(c["size"]) if c["size"] else "large"
        out.append(f"  {size:>5} {c['in_use']:>8} {c['allocs']:>8} {c['frees']:>8} "
                   f"{c['failures']:>9}")
    return out
