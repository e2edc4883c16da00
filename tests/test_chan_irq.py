"""The probe channel is interrupt-driven: on each microvm variant the kernel
routes the virtio-serial slot's interrupt to the line QEMU 7.2 wires it to
(and the self-test, including thread_block/thread_wake, passes there); an
idle instance's probe-chan thread barely wakes; `unik.chan=poll` forces
the polling fallback, which still serves.

Fails (never skips) when QEMU is missing.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import build_kernel, require_qemu
from instances import booted, env_for

UNIK = str(Path(sys.executable).parent / "unik")

# -M value -> the line the boot log must name (docs/architecture.md).
VARIANTS = {
    "microvm": "chan: interrupts on IRQ 47 (ioapic2 pin 23,",
    "microvm,ioapic2=off": "chan: interrupts on IRQ 23 (ioapic1 pin 23,",
    "microvm,acpi=off": "chan: interrupts on IRQ 12 (ioapic1 pin 12,",
}


def unik(env, *args, timeout=60):
    r = subprocess.run([UNIK, *args], env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"unik {' '.join(args)} -> {r.returncode}\n{r.stdout}{r.stderr}"
    return r.stdout


@pytest.mark.parametrize("machine", sorted(VARIANTS))
def test_interrupt_routed_on_each_microvm_variant(machine, tmp_path):
    qemu = require_qemu()
    elf = build_kernel("demo")
    argv = [qemu, "-M", machine, "-accel", "tcg", "-m", "32M",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(elf), "-append", "unik.selftest=1", "-serial", "stdio",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-global", "virtio-mmio.force-legacy=false",
            "-device", "virtio-serial-device",
            "-chardev", f"socket,id=c0,path={tmp_path / 'p.sock'},server=on,wait=off",
            "-device", "virtserialport,chardev=c0,name=org.unik.probe.0,nr=1"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert VARIANTS[machine] in r.stdout, r.stdout
    assert "selftest: " in r.stdout and " 0 failed" in r.stdout, r.stdout
    assert r.returncode == 1, f"QEMU status {r.returncode}:\n{r.stdout}"


def _chan_switches(env, name):
    ps = json.loads(unik(env, "ps", name, "--json"))
    return next(t["switches"] for t in ps["threads"] if t["name"] == "probe-chan")


@pytest.fixture(scope="module")
def instances(tmp_path_factory):
    """Two demo instances: `irq` (default) and `poll` (unik.chan=poll)."""
    state = tmp_path_factory.mktemp("irq")
    with booted("demo", state=state, name="irq"), \
            booted("demo", state=state, name="poll", boot_args=["--append", "unik.chan=poll"]):
        yield env_for(state)


def test_idle_channel_sleeps_on_its_interrupt(instances):
    log = unik(instances, "log", "irq")
    assert "chan: interrupts on IRQ 47 (ioapic2 pin 23," in log, log
    assert "safety timeout found work" not in log, log
    a = _chan_switches(instances, "irq")
    time.sleep(2.0)
    b = _chan_switches(instances, "irq")
    # Safety wake-ups (1/s) and the two ps requests; polling made ~1000.
    assert b - a <= 12, f"probe-chan switched {b - a} times in 2 s while idle"


def test_poll_fallback_still_serves(instances):
    log = unik(instances, "log", "poll")
    assert "chan: no interrupt, polling" in log, log
    assert "probe-chan" in unik(instances, "ps", "poll")
    a = _chan_switches(instances, "poll")
    time.sleep(1.0)
    assert _chan_switches(instances, "poll") - a > 100   # the cost interrupts remove
