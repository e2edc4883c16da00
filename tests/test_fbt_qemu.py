"""fbt over the whole kernel under QEMU (the fbttest app, module
fixture, always stopped): `fbt:::entry { @[probefunc] = count(); }` keeps
the kernel serving (`ps` answers while it runs), the counts of functions
whose calls the app makes in fixed ratios are exact (each fbttest round
runs with interrupts off and an fbt enabling is armed for all its
functions at once), every fbt site is back to the nop afterwards, and
the wildcard enables fast (few TRACE_ENABLE requests, host time bounded)."""
from __future__ import annotations

import re
import subprocess
import time

import pytest

from instances import UNIK, booted, sigint_default, unik
from introspect import fbt, probetable
from introspect import protocol as P
from introspect.client import Channel
from introspect.trace import TraceSession
from probes.compiler import compile_script


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    with booted("fbttest", state=tmp_path_factory.mktemp("unik-fbt"), name="fbt") as i:
        yield i


def _counts(text: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^\s+(\w+)\s+(\d+)$", text, re.M)}


def test_whole_kernel_entry_counts_are_exact_and_kernel_serves(inst):
    script = "fbt:::entry { @[probefunc] = count(); } tick-3s { exit(0); }"
    proc = subprocess.Popen([UNIK, "trace", inst.name, "-q", "-e", script], env=inst.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_default)
    try:
        time.sleep(1.5)
        ps = unik(inst.env, "ps", inst.name)
        assert "fbt-nap" in ps.stdout and "probe-chan" in ps.stdout
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    c = _counts(out)
    rounds = c["fbt_round"]
    assert rounds >= 20
    assert c["fbt_answer"] == rounds
    assert c["fbt_fact"] == 10 * rounds
    assert c["fbt_deep"] == 101 * rounds
    assert len(c) >= 30                     # the whole kernel fired, not just the app
    v = unik(inst.env, "sites", inst.name, "--verify")
    assert "0 enabled" in v.stdout and "text matches the ELF" in v.stdout


def _agg_blocks(text: str) -> list[dict[str, int]]:
    """The aggregations printed at exit, in order, as {key: count}."""
    return [_counts(b) for b in re.split(r"\n\s*\n", text.strip("\n")) if b.strip()]


def test_probe_keyed_counts_exact_across_aggregations_and_sessions(inst):
    """`@[probefunc] = count()` is served from the session's key cache by
    probe id (engine.c probe_count_key): two aggregations and two keys on
    the same probes stay exact and apart, and a later session on the same
    slot starts from an empty cache (no count lands in the old arena)."""
    script = ("fbt::fbt_round:entry, fbt::fbt_fact:entry, fbt::fbt_answer:entry "
              "{ @a[probefunc] = count(); @b[probename] = count(); } "
              "fbt::fbt_fact:entry { @c[probefunc] = count(); } tick-2s { exit(0); }")
    out = unik(inst.env, "trace", inst.name, "-q", "-e", script, timeout=120).stdout
    a, b, c = _agg_blocks(out)
    assert a["fbt_round"] >= 10
    assert a["fbt_fact"] == 10 * a["fbt_round"] and a["fbt_answer"] == a["fbt_round"]
    assert b == {"entry": sum(a.values())}
    assert c == {"fbt_fact": a["fbt_fact"]}
    again = unik(inst.env, "trace", inst.name, "-q", "-e",
                 "fbt::fbt_answer:entry { @[probefunc] = count(); } tick-1s { exit(0); }",
                 timeout=120).stdout
    [d] = _agg_blocks(again)
    assert list(d) == ["fbt_answer"] and d["fbt_answer"] >= 3


def test_wildcard_enables_in_few_requests_and_fast(inst):
    probes = probetable.load(inst.kernel)
    prog = compile_script("fbt:::entry, fbt:::return { }", "-e", probes)
    nfuncs = len(fbt.functions(inst.kernel))
    assert len(prog.enablings) == 2 * nfuncs
    runs = fbt.runs(prog.enablings)
    assert len(runs) <= 4                   # gaps only where a site has no symbol
    with Channel.for_instance(inst) as ch, TraceSession(ch, prog) as s:
        t0 = time.monotonic()
        s.start()
        took = time.monotonic() - t0
        time.sleep(0.3)
        st = s.status()
        s.stop()
    assert st["fired"] > 0 and st["errors"] == 0
    assert took < 1.0, f"fbt:::entry,return took {took:.3f} s to enable"
    print(f"\nfbt: {nfuncs} functions, entry+return enabled in {took * 1000:.0f} ms "
          f"({len(runs)} enablings, one TRACE_ENABLE request)")
    assert P.TRACE_ENABLE_MAX >= len(runs)
