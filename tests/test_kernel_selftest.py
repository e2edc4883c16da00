"""The kernel's in-guest self-test: boot the demo kernel with
`unik.selftest=1`; the guest checks its heap, page allocator, log ring,
printf, CRC-32, address checks, threads, sleeping and preemption, prints
`selftest: N passed, M failed` and leaves through isa-debug-exit
(QEMU status 1 = all passed, 3 = failures, 5 = the kernel panicked).

Fails (never skips) when QEMU is missing.
"""
from __future__ import annotations

import re
import subprocess

from conftest import build_kernel, require_qemu

BOOT_TIMEOUT = 60          # seconds; the self-test itself takes well under 1 s


def _boot_selftest(qemu: str, elf, tmp_path) -> subprocess.CompletedProcess:
    sock = tmp_path / "probe.sock"
    argv = [qemu, "-M", "microvm", "-accel", "tcg", "-m", "32M",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(elf), "-append", "unik.selftest=1",
            "-serial", "stdio",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-global", "virtio-mmio.force-legacy=false",
            "-device", "virtio-serial-device",
            "-chardev", f"socket,id=c0,path={sock},server=on,wait=off",
            "-device", "virtserialport,chardev=c0,name=org.unik.probe.0,nr=1"]
    try:
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=BOOT_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise AssertionError(f"self-test did not finish in {BOOT_TIMEOUT} s:\n{out}")


def test_kernel_selftest(tmp_path):
    qemu = require_qemu()
    elf = build_kernel("demo")
    r = _boot_selftest(qemu, elf, tmp_path)
    out = r.stdout
    assert "unik: kernel ready" in out, out
    m = re.search(r"selftest: (\d+) passed, (\d+) failed", out)
    assert m, f"no self-test summary (QEMU status {r.returncode}):\n{out}\n{r.stderr}"
    passed, failed = int(m.group(1)), int(m.group(2))
    assert failed == 0, out
    assert passed >= 50, out
    assert "PANIC" not in out, out
    assert r.returncode == 1, f"QEMU status {r.returncode} (1 = pass):\n{out}\n{r.stderr}"
