"""QEMU command line (pure) and boot option parsing."""
import pytest

from introspect import qemu as Q
from introspect.errors import UnikError


def test_command_line_default():
    argv = Q.command_line("/b/demo/kernel.elf", "/s/demo", Q.BootOptions())
    assert argv == [
        "qemu-system-x86_64", "-M", "microvm", "-accel", "tcg", "-m", "32M",
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-kernel", "/b/demo/kernel.elf", "-append", "",
        "-serial", "file:/s/demo/serial.log",
        "-qmp", "unix:/s/demo/qmp.sock,server=on,wait=off",
        "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-global", "virtio-mmio.force-legacy=false",
        "-device", "virtio-serial-device",
        "-chardev", "socket,id=probe0,path=/s/demo/probe.sock,server=on,wait=off",
        "-device", "virtserialport,chardev=probe0,name=org.unik.probe.0,nr=1",
        "-chardev", "socket,id=gdb0,path=/s/demo/gdb.sock,server=on,wait=off",
        "-gdb", "chardev:gdb0",
        "-pidfile", "/s/demo/qemu.pid"]


def test_command_line_kvm_icount_append_mem():
    o = Q.BootOptions(mem="64M", accel="kvm", icount=True, append="quiet x=1")
    argv = Q.command_line("k.elf", "/s/x", o)
    i = argv.index("-accel")
    assert argv[i:i + 4] == ["-accel", "kvm", "-accel", "tcg"]
    assert argv[argv.index("-m") + 1] == "64M"
    assert argv[argv.index("-append") + 1] == "quiet x=1"
    assert argv[-2:] == ["-icount", "shift=0,align=off,sleep=off"]


def test_command_line_rejects_commas():
    with pytest.raises(UnikError, match="comma"):
        Q.command_line("k.elf", "/s/a,b", Q.BootOptions())


@pytest.mark.parametrize("text,want", [("32M", "32M"), ("64", "64M"), ("1G", "1G"),
                                       ("65536K", "65536K"), ("128m", "128M")])
def test_parse_mem_ok(text, want):
    assert Q.parse_mem(text) == want


@pytest.mark.parametrize("text", ["", "0", "-1M", "12X", "lots", "4M", "1T", "3.5M"])
def test_parse_mem_bad(text):
    with pytest.raises(UnikError) as e:
        Q.parse_mem(text)
    assert (e.value.msg, e.value.hint) in (
        (f"bad memory size {text!r}", "use a size like 32M or 1G"),
        (f"memory size {text} is too small", "give at least 8M"),
        (f"memory size {text} is too large", "give at most 64G"))


def test_default_accel(monkeypatch):
    monkeypatch.delenv("UNIK_ACCEL", raising=False)
    assert Q.default_accel() == "tcg"
    monkeypatch.setenv("UNIK_ACCEL", "KVM")
    assert Q.default_accel() == "kvm"
    monkeypatch.setenv("UNIK_ACCEL", "hax")
    assert Q.default_accel() == "tcg"


def test_boot_options_roundtrip():
    o = Q.BootOptions(mem="48M", icount=True)
    assert Q.BootOptions.from_json(o.to_json()) == o
    assert Q.BootOptions.from_json({"mem": "16M", "future": 1}).mem == "16M"


def test_monitor_unreachable_is_unik_error(tmp_path):
    with pytest.raises(UnikError, match="monitor"):
        Q.Monitor(tmp_path / "nope.sock", timeout=1).status()
