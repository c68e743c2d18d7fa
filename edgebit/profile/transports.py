"""Device transports, one interface (push / run / pull / close) over four ways to reach a device:
this machine, qemu-aarch64 on this machine, a Linux board over the system ssh/scp, an Android device over adb.
push() copies a directory once: the device keeps it under a name made of its content hash, so a later push of
the same bundle or artifact is a no-op."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgebit.errors import EdgebitError
from edgebit.profile.bundle import cache_root

COMPLETE = ".edgebit-complete"  # written last into a pushed dir: a dir without it is a torn push
# Every command on a device starts with this: nothing edgebit creates there is group- or world-writable.
UMASK = "umask 022; "
# Runs COMMAND on the device so that it dies with its connection. A command started over ssh without a terminal is
# not signalled when the connection drops: it would go on running (a benchmark for minutes) with nobody to read it.
# So COMMAND runs in the background while a watcher blocks reading the session's stdin, which the host holds open
# and never writes (_run's hold_stdin): end-of-file there means the connection or the host's edgebit is gone
# (stopped by SIGTERM, killed by SIGKILL, or its link lost), and the watcher kills COMMAND. The same shell runs the
# runner on this machine, where a killed edgebit would otherwise leave it running as an orphan. CLEANUP removes
# what a COMMAND that did not finish leaves half-written (a runtime's profile file is created at load and filled at
# the end): run by the watcher once COMMAND is dead, and by the shell when COMMAND fails. A COMMAND killed by a
# signal still exits the shell with 128+N (exit_description).
WATCHDOG = ("exec 3<&0; {command} </dev/null & p=$!; "
            "{{ read -r _ <&3; kill -KILL $p; for _ in 1 2 3 4 5; do kill -0 $p || break; sleep 1; done; {cleanup}; }}"
            " >/dev/null 2>&1 & w=$!; "
            "wait $p; s=$?; kill $w 2>/dev/null; [ $s -eq 0 ] || {{ {cleanup}; }}; exit $s")


def watched(argv: list[str], outputs_prefix: str | None = None) -> str:
    """The WATCHDOG shell command for `argv`; files named `outputs_prefix`* are removed unless it succeeds."""
    cleanup = f"rm -f -- {shlex.quote(outputs_prefix)}*" if outputs_prefix else ":"
    return WATCHDOG.format(command=shlex.join(argv), cleanup=cleanup)


LOST = ("closed by remote host", "Connection reset", "Broken pipe", "Timeout, server", "lost connection",
        "Connection closed")


def checksum_listing(local: Path) -> str:
    """`sha256sum` lines ("<hash>  <relative path>") for every file under `local`, sorted: the content a pushed
    dir must have. It is written into the dir's COMPLETE marker, and a cached dir is reused only if its marker
    is exactly this listing and every file still hashes to it (`sha256sum -c`), so a half-written, corrupted or
    swapped cache entry is pushed again instead of trusted."""
    import hashlib

    lines = []
    for path in sorted(p for p in local.rglob("*") if p.is_file() and p.name != COMPLETE):
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
        rel = path.relative_to(local).as_posix()
        if "\n" in rel or "\\" in rel:
            raise DeviceError(f"{path}: file names with newlines or backslashes cannot be pushed to a device")
        lines.append(f"{digest.hexdigest()}  {rel}\n")
    return "".join(lines)


def cached_command(remote: str, listing: str) -> str:
    """Prints 'cached' iff `remote` is a complete push of exactly `listing`, intact."""
    q = shlex.quote
    return (f"cd {q(remote)} 2>/dev/null && printf %s {q(listing)} | cmp -s - {COMPLETE} && "
            f"sha256sum -c --status {COMPLETE} && echo cached")


def seal_command(tmp: str, remote: str, listing: str) -> str:
    """After the copy: no group/world write bits (scp -p and adb push keep the local modes), every file as sent
    (else exit 3), then the marker, then the rename that makes the dir visible to cached_command."""
    q = shlex.quote
    marker = q(f"{tmp}/{COMPLETE}")
    return (f"chmod -R go-w {q(tmp)} && {{ (cd {q(tmp)} && printf %s {q(listing)} > {COMPLETE}.new && "
            f"sha256sum -c --status {COMPLETE}.new) || exit 3; }} && mv {marker}.new {marker} && "
            f"rm -rf {q(remote)} && mv {q(tmp)} {q(remote)}")


class DeviceError(EdgebitError):
    """The device cannot be reached, or a command on it failed."""


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


class Transport:
    name = "device"
    emulated = False   # timings are emulation, not the device's
    remote = False     # files must be copied to reach the device
    target = "host"    # bundle target (edgebit.profile.bundle.TARGETS)

    def probe(self) -> None:
        """Checks the tools and that the device answers; raises DeviceError with what to do."""

    def push(self, local: Path, content_hash: str) -> str:
        raise NotImplementedError

    def run(self, argv: list[str], timeout: float, outputs_prefix: str | None = None) -> Result:
        """argv on the device; files named outputs_prefix* are its outputs, removed if it fails or is stopped."""
        raise NotImplementedError

    def pull(self, remote: str, local: Path) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return self.name


def _run(cmd: list[str], timeout: float, what: str, hold_stdin: bool = False) -> Result:
    """`cmd` to completion. hold_stdin: its stdin is a pipe this process keeps open (and writes nothing to) until
    `cmd` ends or this process dies, so a device-side WATCHDOG sees end-of-file exactly when we are gone."""
    fds = os.pipe() if hold_stdin else ()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           stdin=fds[0] if fds else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"{what}: no answer within {timeout:g} s ({shlex.join(cmd[:1])})") from None
    except FileNotFoundError:
        raise DeviceError(f"{what}: {cmd[0]} not found") from None
    finally:
        for fd in fds:
            os.close(fd)
    return Result(p.returncode, p.stdout, p.stderr)


def _last_line(text: str) -> str:
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    return lines[-1] if lines else "no message"


class LocalTransport(Transport):
    name = "local"

    def __init__(self):
        self.target = "host"

    def push(self, local: Path, content_hash: str) -> str:
        return str(local.resolve())  # same filesystem: run in place

    def run(self, argv: list[str], timeout: float, outputs_prefix: str | None = None) -> Result:
        return _run(["sh", "-c", watched(argv, outputs_prefix)], timeout, self.name, hold_stdin=True)

    def pull(self, remote: str, local: Path) -> None:
        if Path(remote).resolve() != local.resolve():
            shutil.copy2(remote, local)


ARM64_CPUINFO = """processor\t: {n}
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1

"""


class QemuTransport(LocalTransport):
    """The aarch64 bundle under qemu-aarch64 with a sysroot of Debian's arm64 cross libc (-L). ONNX Runtime's
    cpuinfo would read the host's x86 /proc/cpuinfo and crash: the sysroot carries an arm64 one (qemu's -L
    redirects the open). Timings are emulation: correctness only."""

    name = "qemu"
    emulated = True

    def __init__(self, cpu: str | None = None):
        self.target = "aarch64-linux-gnu"
        self.cpu = cpu or os.environ.get("EDGEBIT_QEMU_CPU") or "max"
        self.libc = Path(os.environ.get("EDGEBIT_AARCH64_SYSROOT", "/usr/aarch64-linux-gnu"))
        self.sysroot = cache_root() / "qemu-sysroot-aarch64"

    def describe(self) -> str:
        return f"qemu-aarch64 -cpu {self.cpu} (emulation: timings are not an ARM device's)"

    def probe(self) -> None:
        if not shutil.which("qemu-aarch64"):
            raise DeviceError("qemu: qemu-aarch64 not found (Debian/Ubuntu: apt install qemu-user)")
        if not (self.libc / "lib" / "libc.so.6").is_file():
            raise DeviceError(f"qemu: no aarch64 libc at {self.libc}/lib (apt install g++-aarch64-linux-gnu, "
                              "or set EDGEBIT_AARCH64_SYSROOT)")
        (self.sysroot / "proc").mkdir(parents=True, exist_ok=True)
        link = self.sysroot / "lib"
        if not link.is_symlink() or os.readlink(link) != str(self.libc / "lib"):
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(self.libc / "lib")
        cpus = os.cpu_count() or 1
        text = "".join(ARM64_CPUINFO.format(n=i) for i in range(cpus))
        cpuinfo = self.sysroot / "proc" / "cpuinfo"
        if not cpuinfo.is_file() or cpuinfo.read_text() != text:
            cpuinfo.write_text(text)

    def run(self, argv: list[str], timeout: float, outputs_prefix: str | None = None) -> Result:
        return super().run(["qemu-aarch64", "-cpu", self.cpu, "-L", str(self.sysroot), *argv], timeout, outputs_prefix)


class SshTransport(Transport):
    """ssh://user@host[:port] with the system ssh and scp: BatchMode (never a password prompt), host-key checking
    on (an unknown or changed key is an error unless accept_new_host_key), ConnectTimeout, arguments quoted."""

    remote = True

    def __init__(self, spec: str, connect_timeout: float = 10, ssh_config: Path | None = None,
                 accept_new_host_key: bool = False):
        m = re.fullmatch(r"ssh://(?:([^@/:\s]+)@)?(\[[0-9a-fA-F:]+\]|[^@/:\s]+)(?::(\d+))?(/[^\n]*)?", spec)
        if not m:
            raise DeviceError(f"{spec!r}: not an ssh device, expected ssh://user@host[:port][/cache-dir]")
        self.user, self.host, self.port = m.group(1), m.group(2).strip("[]"), int(m.group(3) or 22)
        self.name = spec
        self.dest = f"{self.user}@{self.host}" if self.user else self.host
        self.timeout = connect_timeout
        self.opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(max(1, connect_timeout))}",
                     "-o", f"StrictHostKeyChecking={'accept-new' if accept_new_host_key else 'yes'}",
                     "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3"]
        if ssh_config:
            self.opts = ["-F", str(ssh_config), *self.opts]
        # Where pushed bundles and artifacts live on the device: the URL's path (ssh://h/x is ~/x, ssh://h//x is /x),
        # else ~/.cache/edgebit-device.
        path = (m.group(4) or "/").removeprefix("/")
        self.base = path.rstrip("/") or ".cache/edgebit-device"

    def describe(self) -> str:
        if self.emulated:
            return (f"{self.name} ({self.machine} under qemu-user on an {self.kernel_arch} kernel: emulation, "
                    "timings are not an ARM device's)")
        return self.name

    def _ssh(self, command: str, timeout: float, hold_stdin: bool = False) -> Result:
        return _run(["ssh", *self.opts, "-p", str(self.port), self.dest, "--", UMASK + command], timeout, self.name,
                    hold_stdin)

    def _check(self, r: Result, what: str) -> Result:
        if r.returncode == 255:  # ssh's own failure, not the remote command's
            msg = _last_line(r.stderr)
            if "Host key verification failed" in r.stderr or "REMOTE HOST IDENTIFICATION HAS CHANGED" in r.stderr:
                msg = (f"host key of {self.host}:{self.port} is unknown or changed; check it and add it to "
                       "known_hosts (ssh-keyscan), or pass --accept-new-host-key to trust a new host on first use")
            elif what != "connecting" and any(x in r.stderr for x in LOST):
                raise DeviceError(f"{self.name}: connection lost while {what} ({msg}); edgebit stops what it "
                                  "started on the device when the connection drops: check the device's network "
                                  "and power, then rerun")
            raise DeviceError(f"{self.name}: {what} failed: {msg}")
        return r

    def probe(self) -> None:
        for tool in ("ssh", "scp"):
            if not shutil.which(tool):
                raise DeviceError(f"{self.name}: {tool} not found (Debian/Ubuntu: apt install openssh-client)")
        # The kernel's own architecture too: under qemu-user (an emulated board, scripts/emulated-pi.sh) uname says
        # aarch64 while the kernel, which qemu does not emulate, says x86_64; its timings are then emulation.
        r = self._check(self._ssh("uname -m; cat /proc/sys/kernel/arch 2>/dev/null; true", self.timeout + 20),
                        "connecting")
        if r.returncode != 0 or not r.stdout.strip():
            raise DeviceError(f"{self.name}: 'uname -m' failed: {_last_line(r.stderr)}")
        machine, *kernel = r.stdout.split()
        self.kernel_arch = kernel[0] if kernel else machine
        self.emulated = self.kernel_arch != machine and {self.kernel_arch, machine} != {"aarch64", "arm64"}
        self.machine = machine
        if machine == platform.machine():
            self.target = "host"
        elif machine in ("aarch64", "arm64"):
            self.target = "aarch64-linux-gnu"
        else:
            raise DeviceError(f"{self.name}: a {machine} machine; bundles exist for this host "
                              f"({platform.machine()}) and aarch64")

    def push(self, local: Path, content_hash: str) -> str:
        remote = f"{self.base}/{content_hash[:20]}"
        q = shlex.quote
        listing = checksum_listing(local)
        r = self._check(self._ssh(cached_command(remote, listing), 120), "checking the cache")
        if r.stdout.strip() == "cached":
            return remote
        tmp = remote + ".tmp"
        # Room for the copy, asked before sending anything: a full disk found by scp half-way is a slower, vaguer
        # failure. df's 4th column of its POSIX line is the space available to this user, in KiB.
        r = self._check(self._ssh(f"rm -rf {q(tmp)} && mkdir -p {q(self.base)} && df -Pk {q(self.base)}", 60),
                        "preparing the cache")
        if r.returncode != 0:
            raise DeviceError(f"{self.name}: cannot create {self.base} on the device: {_last_line(r.stderr)}")
        fields = r.stdout.strip().splitlines()[-1].split()
        need = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
        if len(fields) >= 4 and fields[3].isdigit() and int(fields[3]) * 1024 < need + (1 << 20):
            raise DeviceError(self._no_space(local, f"has {int(fields[3]) / 1024:.1f} MB free and the push needs "
                                                    f"{need / 2**20:.1f} MB"))
        try:
            scp = _run(["scp", *self.opts, "-P", str(self.port), "-r", "-p", "-q", str(local), f"{self.dest}:{tmp}"],
                       3600, self.name)
        except BaseException:  # stopped (SIGTERM, Ctrl-C) or timed out mid-copy: scp is killed, its torn copy removed
            with contextlib.suppress(DeviceError):  # best effort: the next push removes it otherwise
                self._ssh(f"rm -rf {q(tmp)}", 10)
            raise
        if scp.returncode != 0:
            self._ssh(f"rm -rf {q(tmp)}", 30)  # best effort: a torn copy never stays (nor is it ever reused)
            raise DeviceError(f"{self.name}: scp of {local} failed (device disk full or connection lost?): "
                              f"{_last_line(scp.stderr)}")
        r = self._check(self._ssh(seal_command(tmp, remote, listing), 600), "finishing the push")
        if r.returncode != 0:
            self._ssh(f"rm -rf {q(tmp)}", 30)
            why = "files differ from what was sent" if r.returncode == 3 else _last_line(r.stderr)
            raise DeviceError(f"{self.name}: finishing the push of {local} failed: {why}")
        return remote

    def _no_space(self, local: Path, what: str) -> str:
        where = self.base if self.base.startswith("/") else f"~/{self.base}"
        port = f":{self.port}" if self.port != 22 else ""
        pushed = "the bundle" if (local / "bundle.json").is_file() else local.name
        return (f"{self.name}: {where} on the device {what} ({pushed}): free space there, or push elsewhere "
                f"with ssh://{self.dest}{port}//a/dir/with/space")

    def run(self, argv: list[str], timeout: float, outputs_prefix: str | None = None) -> Result:
        return self._check(self._ssh(watched(argv, outputs_prefix), timeout, hold_stdin=True),
                           f"running {Path(argv[0]).name}")

    def pull(self, remote: str, local: Path) -> None:
        r = _run(["scp", *self.opts, "-P", str(self.port), "-q", f"{self.dest}:{remote}", str(local)], 600, self.name)
        if r.returncode != 0:
            raise DeviceError(f"{self.name}: scp of {remote} failed: {_last_line(r.stderr)}")


class AdbTransport(Transport):
    """adb[:serial] with the system adb; pushes under /data/local/tmp/edgebit/."""

    remote = True

    def __init__(self, spec: str, timeout: float = 10):
        self.serial = spec.split(":", 1)[1] if ":" in spec else None
        self.name = spec
        self.timeout = timeout
        self.target = "android-arm64"
        self.base = "/data/local/tmp/edgebit"

    def _adb(self, args: list[str], timeout: float) -> Result:
        return _run(["adb", *(["-s", self.serial] if self.serial else []), *args], timeout, self.name)

    def probe(self) -> None:
        if not shutil.which("adb"):
            raise DeviceError("adb: not found; install Android platform-tools (Debian/Ubuntu: apt install adb)")
        r = _run(["adb", "devices"], self.timeout + 20, self.name)
        devices = [l.split("\t")[0] for l in r.stdout.splitlines()[1:] if l.endswith("\tdevice")]
        if not devices:
            raise DeviceError(f"{self.name}: no Android device attached ('adb devices' lists none; connect one "
                              "with USB debugging on, or 'adb connect HOST:PORT')")
        if self.serial and self.serial not in devices:
            raise DeviceError(f"{self.name}: no device with serial {self.serial} (attached: {', '.join(devices)})")
        if not self.serial and len(devices) > 1:
            raise DeviceError(f"adb: {len(devices)} devices attached ({', '.join(devices)}); pick one: adb:SERIAL")
        abi = self._adb(["shell", "getprop ro.product.cpu.abi"], self.timeout + 20).stdout.strip()
        if abi and abi != "arm64-v8a":
            raise DeviceError(f"{self.name}: ABI {abi}; edgebit bundles exist for arm64-v8a only")

    def push(self, local: Path, content_hash: str) -> str:
        remote = f"{self.base}/{content_hash[:20]}"
        q = shlex.quote
        listing = checksum_listing(local)
        if self._adb(["shell", UMASK + cached_command(remote, listing)], 120).stdout.strip() == "cached":
            return remote
        tmp = remote + ".tmp"
        self._adb(["shell", UMASK + f"rm -rf {q(tmp)} && mkdir -p {q(self.base)}"], 60)
        r = self._adb(["push", str(local), tmp], 3600)
        if r.returncode != 0:
            raise DeviceError(f"{self.name}: adb push of {local} failed: {_last_line(r.stderr + r.stdout)}")
        r = self._adb(["shell", UMASK + f"chmod -R 755 {q(tmp)} && " + seal_command(tmp, remote, listing)], 600)
        if r.returncode != 0:
            raise DeviceError(f"{self.name}: finishing the push of {local} failed: {_last_line(r.stderr + r.stdout)}")
        return remote

    def run(self, argv: list[str], timeout: float, outputs_prefix: str | None = None) -> Result:
        # "s=$?; exit $s" keeps the shell from exec'ing the runner: a runner killed by a signal then comes back as
        # the shell's 128+N, where adb would have no exit status to show.
        cleanup = f" [ $s -eq 0 ] || rm -f -- {shlex.quote(outputs_prefix)}*;" if outputs_prefix else ""
        return self._adb(["shell", UMASK + shlex.join(argv) + f"; s=$?;{cleanup} exit $s"], timeout)

    def pull(self, remote: str, local: Path) -> None:
        r = self._adb(["pull", remote, str(local)], 600)
        if r.returncode != 0:
            raise DeviceError(f"{self.name}: adb pull of {remote} failed: {_last_line(r.stderr + r.stdout)}")


def open_transport(device: str, connect_timeout: float = 10, ssh_config: Path | None = None,
                   accept_new_host_key: bool = False, qemu_cpu: str | None = None) -> Transport:
    if device == "local":
        return LocalTransport()
    if device == "qemu" or device.startswith("qemu:"):
        return QemuTransport(device.split(":", 1)[1] if ":" in device else qemu_cpu)
    if device.startswith("ssh://"):
        return SshTransport(device, connect_timeout, ssh_config, accept_new_host_key)
    if device == "adb" or device.startswith("adb:"):
        return AdbTransport(device, connect_timeout)
    raise DeviceError(f"unknown device {device!r}: one of local, qemu[:CPU], ssh://user@host[:port], adb[:serial]")
