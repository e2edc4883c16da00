"""The HTTP benchmark's anchor: a real Linux guest serving the same tiny
response with a well-known server, under the same QEMU (TCG, `-M microvm`,
virtio-net on virtio-mmio, user networking, hostfwd), so that the http
app's requests/s can be read against something known
(introspect/httpbench.py runs wrk against both, interleaved).

The guest: Debian's kernel (the linux-image package's vmlinuz and the six
modules virtio-net needs on virtio-mmio) and an initramfs with
busybox-static (the shell, insmod, ip) and nginx (Debian's, with the host's
copies of the libraries it links: the host runs the same Debian release),
nginx answering every request with `200 ok` from memory, keep-alive on,
one worker, no access log: the work the http app's `GET /` does.

Built at bench time, never by `make test`: `ensure_built()` downloads the
three .deb files with `apt-get download` into build/anchor/dl and writes
build/anchor/initramfs.cpio.gz (newc, written here: no cpio tool needed);
both are cached and reused while present.
"""
from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import build, qemu

DESCRIPTION = ("nginx 1.22 on Debian's Linux 6.1 under the same QEMU (TCG, microvm, "
               "virtio-net, user networking), `return 200 \"ok\"`, keep-alive, 1 worker")
PACKAGES = ("busybox-static", "nginx")
MODULES = ("drivers/virtio/virtio_ring", "drivers/virtio/virtio", "drivers/virtio/virtio_mmio",
           "net/core/failover", "drivers/net/net_failover", "drivers/net/virtio_net")
MEM = "256M"

NGINX_CONF = """\
user root;
daemon off;
master_process off;
worker_processes 1;
error_log /dev/console warn;
pid /tmp/nginx.pid;
events { worker_connections 512; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    server {
        listen 80;
        location / { default_type text/plain; return 200 "ok\\n"; }
    }
}
"""

INIT = """\
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in {mods}; do
    insmod /lib/modules/$m.ko || {{ echo "anchor: insmod $m failed"; dmesg | tail -3; }}
done
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
mkdir -p /tmp /var/lib/nginx /var/log/nginx
echo "anchor: starting nginx"
exec /usr/sbin/nginx -c /etc/nginx/nginx.conf
"""


def anchor_dir() -> Path:
    """build/anchor of this tree: the downloads and the initramfs, cached."""
    return build.ROOT / "build" / "anchor"


def newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A cpio archive in the kernel's initramfs format (newc, pure):
    entries are (path, mode, data); directories have S_IFDIR in mode and
    empty data, symlinks S_IFLNK and the target as data."""
    out = io.BytesIO()

    def put(name: str, mode: int, data: bytes, ino: int):
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0))
        out.write(hdr.encode() + nb)
        out.write(b"\0" * (-(110 + len(nb)) % 4))
        out.write(data)
        out.write(b"\0" * (-len(data) % 4))
    for i, (path, mode, data) in enumerate(entries, 1):
        put(path.lstrip("/"), mode, data, i)
    put("TRAILER!!!", 0, b"", 0)
    return out.getvalue()


def _download(dl: Path) -> dict[str, Path]:
    """The .deb files, downloaded once into dl: {package: path}."""
    from .errors import UnikError
    dl.mkdir(parents=True, exist_ok=True)
    kpkg = _kernel_package()
    found = {}
    for pkg in (kpkg, *PACKAGES):
        debs = sorted(dl.glob(f"{pkg}_*.deb"))
        if not debs:
            r = subprocess.run(["apt-get", "download", pkg], cwd=dl, capture_output=True,
                               text=True, timeout=600)
            debs = sorted(dl.glob(f"{pkg}_*.deb"))
            if r.returncode != 0 or not debs:
                raise UnikError(f"apt-get download {pkg} failed: {r.stderr.strip()[:200]}",
                                "the anchor needs Debian's package archive (apt-get update)")
        found[pkg] = debs[-1]
    found["kernel"] = found.pop(kpkg)
    return found


def _kernel_package() -> str:
    """linux-image-amd64's dependency: the versioned kernel package."""
    r = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True,
                       text=True, timeout=60)
    for line in r.stdout.splitlines():
        w = line.split()
        if len(w) == 2 and w[0] == "Depends:" and w[1].startswith("linux-image-"):
            return w[1]
    from .errors import UnikError
    raise UnikError("no linux-image package found for the anchor",
                    "apt-get update, then apt-cache depends linux-image-amd64")


def _libs(binary: Path) -> list[Path]:
    """The shared libraries binary links (the host's copies, via ldd)."""
    r = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=60)
    libs = []
    for line in r.stdout.splitlines():
        w = line.split()
        path = w[2] if "=>" in w and len(w) > 2 else w[0]
        if path.startswith("/"):
            libs.append(Path(path))
    return libs


def _entries(x: Path) -> list[tuple[str, int, bytes]]:
    """The initramfs's files from the unpacked packages in x."""
    kdir = next((x / "lib" / "modules").iterdir())
    ents = [(d, 0o40755, b"") for d in ("bin", "sbin", "usr", "usr/sbin", "usr/bin", "etc",
                                        "etc/nginx", "proc", "sys", "dev", "tmp", "lib",
                                        "lib/modules", "lib64", "var", "var/lib",
                                        "var/log", "lib/x86_64-linux-gnu")]
    ents.append(("bin/busybox", 0o100755, (x / "bin/busybox").read_bytes()))
    ents.append(("bin/sh", 0o120777, b"busybox"))
    ents.append(("init", 0o100755, INIT.format(
        mods=" ".join(Path(m).name for m in MODULES)).encode()))
    for m in MODULES:
        ents.append((f"lib/modules/{Path(m).name}.ko", 0o100644,
                     (kdir / "kernel" / f"{m}.ko").read_bytes()))
    nginx = x / "usr/sbin/nginx"
    ents.append(("usr/sbin/nginx", 0o100755, nginx.read_bytes()))
    for lib in _libs(nginx):
        ents.append((str(lib).lstrip("/"), 0o100755, lib.resolve().read_bytes()))
    ents.append(("etc/nginx/nginx.conf", 0o100644, NGINX_CONF.encode()))
    ents.append(("etc/passwd", 0o100644, b"root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n"))
    ents.append(("etc/group", 0o100644, b"root:x:0:\nnogroup:x:65534:\n"))
    return ents


def ensure_built() -> tuple[Path, Path]:
    """(vmlinuz, initramfs), building them when missing (cached)."""
    d = anchor_dir()
    initrd, kernel = d / "initramfs.cpio.gz", d / "vmlinuz"
    if initrd.exists() and kernel.exists():
        return kernel, initrd
    debs = _download(d / "dl")
    x = d / "x"
    shutil.rmtree(x, ignore_errors=True)
    x.mkdir(parents=True)
    for deb in debs.values():
        subprocess.run(["dpkg-deb", "-x", str(deb), str(x)], check=True, timeout=300)
    shutil.copyfile(next((x / "boot").glob("vmlinuz-*")), kernel)
    tmp = initrd.with_suffix(".tmp")
    tmp.write_bytes(gzip.compress(newc(_entries(x)), 6))
    os.replace(tmp, initrd)
    shutil.rmtree(x, ignore_errors=True)
    return kernel, initrd


@dataclass
class Anchor:
    proc: subprocess.Popen
    url: str
    log: Path

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def argv(kernel: Path, initrd: Path, port: int, log: Path) -> list[str]:
    """The anchor's QEMU command line (pure): unik's machine and NIC."""
    return [qemu.QEMU, "-M", "microvm", "-accel", "tcg", "-m", MEM, "-nodefaults",
            "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", "console=ttyS0 quiet panic=-1 tsc_early_khz=2000000",
            "-serial", f"file:{log}", "-global", "virtio-mmio.force-legacy=false",
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:80",
            "-device", "virtio-net-device,netdev=n0"]


def boot(base: Path, timeout: float = 180.0) -> Anchor:
    """Boot the anchor guest and wait until nginx answers; base holds its
    serial log."""
    import urllib.request
    from .errors import UnikError
    from .netopts import free_port
    kernel, initrd = ensure_built()
    port, log = free_port(), base / "anchor-serial.log"
    log.unlink(missing_ok=True)
    p = subprocess.Popen(argv(kernel, initrd, port, log), stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    a = Anchor(p, f"http://127.0.0.1:{port}/", log)
    end = time.monotonic() + timeout
    while time.monotonic() < end and p.poll() is None:
        if log.exists() and "failed" in log.read_text(errors="replace"):
            break                       # an insmod or the network setup failed
        try:
            with urllib.request.urlopen(a.url, timeout=2) as r:
                if r.status == 200:
                    return a
        except OSError:
            time.sleep(0.5)
    a.stop()
    tail = log.read_text(errors="replace")[-400:] if log.exists() else ""
    raise UnikError(f"the anchor guest did not serve {a.url} within {timeout:g}s",
                    f"its serial console ends: {tail!r}")
