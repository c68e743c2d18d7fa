"""Fixtures for the profiling tests: a tiny exported ONNX artifact, its greedy tokens by the Python backend, and a
real sshd on 127.0.0.1 (Debian's openssh-server, keys made here) that a test can stop, restart, start under
resource limits, and present with a changed host key."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def prompt():
    return PROMPT


@pytest.fixture(scope="package")
def tiny_artifact(hf_checkpoint, tmp_path_factory) -> Path:
    from edgebit.exporters.onnx.export import export_onnx

    return export_onnx(hf_checkpoint("bitnet", "packed"), tmp_path_factory.mktemp("profile") / "tiny", 64, "fp32",
                       "edgebit")


PROMPT = [256, 10, 11, 12, 40, 41]


def _greedy(backend, steps: int = 16):
    """greedy(n) over the first `steps` tokens a Python backend generates greedily after PROMPT."""
    token, out = int(backend.forward(PROMPT)[-1].argmax()), []
    for _ in range(steps):
        out.append(token)
        token = int(backend.forward([token])[-1].argmax())
    return lambda n: out[:n]


@pytest.fixture(scope="package")
def python_greedy(tiny_artifact):
    """greedy(n) -> the first n tokens the Python ONNX Runtime backend generates greedily after PROMPT."""
    from edgebit.backends.onnxruntime import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(tiny_artifact, json.loads((tiny_artifact / "manifest.json").read_text()), threads=1)
    return _greedy(backend)


@pytest.fixture(scope="package")
def tiny_pte(hf_checkpoint, tmp_path_factory) -> Path:
    """The same tiny checkpoint exported to ExecuTorch (XNNPACK for the float parts, as by default)."""
    from edgebit.exporters.executorch.export import export_executorch

    return export_executorch(hf_checkpoint("bitnet", "packed"), tmp_path_factory.mktemp("profile") / "tiny-pte", 64)


@pytest.fixture(scope="package")
def pte_greedy(tiny_pte):
    """greedy(n) -> the first n tokens the Python ExecuTorch backend generates greedily after PROMPT."""
    from edgebit.backends.executorch import ExecutorchBackend

    backend = ExecutorchBackend(tiny_pte, json.loads((tiny_pte / "manifest.json").read_text()), threads=1)
    return _greedy(backend)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SshServer:
    def __init__(self, directory: Path, require):
        self.dir = d = directory
        self.bin = "/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else require("sshd", "openssh-server")
        require("ssh", "openssh-client")
        if os.geteuid() != 0:
            if os.environ.get("CI") == "true":
                pytest.fail("the sshd test runs sshd as root (to log in as the current user); CI runs as root")
            pytest.skip("needs root to run sshd")
        for name in ("host_key", "user_key", "other_host_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", d / name], check=True)
        (d / "authorized_keys").write_text((d / "user_key.pub").read_text())
        os.chmod(d / "authorized_keys", 0o600)
        self.port = port = free_port()
        (d / "sshd_config").write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {d / 'host_key'}
AuthorizedKeysFile {d / 'authorized_keys'}
PidFile {d / 'sshd.pid'}
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp /usr/lib/openssh/sftp-server
""")
        # Client configs: the right host key, none, and a different one (what a changed or spoofed host shows).
        for name, key in (("known_hosts", "host_key"), ("changed_known_hosts", "other_host_key")):
            pub = (d / f"{key}.pub").read_text().split()
            (d / name).write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
        (d / "empty_known_hosts").write_text("")
        for name, known in (("ssh_config", "known_hosts"), ("ssh_config_unknown_host", "empty_known_hosts"),
                            ("ssh_config_changed_host", "changed_known_hosts")):
            (d / name).write_text(f"Host 127.0.0.1\n  IdentityFile {d / 'user_key'}\n  IdentitiesOnly yes\n"
                                  f"  UserKnownHostsFile {d / known}\n  GlobalKnownHostsFile /dev/null\n")
        self.proc = None

    def start(self, limits: str = "") -> None:
        """Starts sshd in its own process group; `limits` (e.g. "ulimit -f 1024") apply to it and every session."""
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation dir
        cmd = f"{limits + '; ' if limits else ''}exec {self.bin} -D -e -f {self.dir / 'sshd_config'}"
        self.proc = subprocess.Popen(["bash", "-c", cmd], stderr=open(self.dir / "sshd.log", "a"),
                                     start_new_session=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"sshd did not start: {(self.dir / 'sshd.log').read_text()}")

    def stop(self) -> None:
        """Stops sshd and every session it started (sshd puts each in a session of its own, so they are found
        as its descendants): the device goes away mid-whatever."""
        if self.proc is None:
            return
        for pid in [self.proc.pid, *descendants(self.proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)
        self.proc = None


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


@pytest.fixture(scope="session")
def ssh_server(require):
    """ssh_server(directory) -> an SshServer (not started) whose keys and configs live in `directory`."""
    return lambda directory: SshServer(directory, require)


@pytest.fixture(scope="session")
def process_tree():
    """descendants(pid) -> every live descendant pid."""
    return descendants


@pytest.fixture(scope="session")
def unused_port():
    return free_port


SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "emulated-pi.sh"


class EmulatedPi:
    """An instance of scripts/emulated-pi.sh: a Debian arm64 system under qemu-user with its own sshd on 127.0.0.1."""

    def __init__(self, name: str, release: str):
        self.name, self.release = name, release
        r = subprocess.run(["bash", str(SCRIPT), "start", "--name", name, "--release", release], capture_output=True,
                           text=True, timeout=1200)
        if r.returncode != 0:
            pytest.fail(f"emulated-pi.sh start failed: {r.stderr.strip()}")
        info = dict(line.split("=", 1) for line in r.stdout.split())
        self.device, self.port = info["EDGEBIT_PI_DEVICE"], int(info["EDGEBIT_PI_PORT"])
        self.ssh_config, self.key = Path(info["EDGEBIT_PI_SSH_CONFIG"]), Path(info["EDGEBIT_PI_KEY"])
        self.known_hosts, self.pid = Path(info["EDGEBIT_PI_KNOWN_HOSTS"]), int(info["EDGEBIT_PI_PID"])

    def sh(self, command: str, check: bool = True, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
        """`command` in a shell on the device, over ssh as its root."""
        r = subprocess.run(["ssh", "-F", str(self.ssh_config), "127.0.0.1", command], capture_output=True, text=True,
                           timeout=timeout, **kw)
        assert not check or r.returncode == 0, (command, r.stderr)
        return r

    def scp(self, *paths: Path, dest: str = "") -> None:
        r = subprocess.run(["scp", "-F", str(self.ssh_config), "-rq", *map(str, paths), f"127.0.0.1:{dest}"],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr

    def runners(self) -> list[str]:
        """Command lines of the edgebit-runner processes alive on the device (its own PID namespace). The kernel
        shows each emulated program behind its interpreter ("qemu-aarch64-static PROGRAM ARGS")."""
        out = self.sh("for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done").stdout
        return [l for l in out.splitlines() if any(t.endswith("/edgebit-runner") for t in l.split(" ")[:2])]

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop", "--name", self.name], capture_output=True, timeout=120)


def pi_prerequisites(require) -> None:
    """Root and the tools the emulated Pi needs: a skip without them, a failure under CI."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the emulated Pi needs root (debootstrap, chroot, mounts); CI runs as root")
        pytest.skip("the emulated Pi needs root")
    for tool, package in (("debootstrap", "debootstrap"), ("qemu-aarch64-static", "qemu-user-static"),
                          ("unshare", "util-linux"), ("ssh-keygen", "openssh-client"),
                          ("aarch64-linux-gnu-g++", "g++-aarch64-linux-gnu")):
        require(tool, f"the emulated Raspberry Pi needs it: apt install {package}")


@pytest.fixture(scope="module")
def emulated_pi(require):
    """emulated_pi(release="bookworm") -> a started EmulatedPi, one per release for the test module, stopped after
    it. The rootfs is built once into ~/.cache/edgebit/emulated-pi (minutes) and reused; an instance starts in
    seconds, a pristine copy of it."""
    started: dict[str, EmulatedPi] = {}

    def get(release: str = "bookworm") -> EmulatedPi:
        if release not in started:
            pi_prerequisites(require)
            started[release] = EmulatedPi(f"pytest-{os.getpid()}-{release}", release)
        return started[release]

    yield get
    for pi in started.values():
        pi.stop()


@pytest.fixture(scope="session")
def pi_rootfs(require) -> Path:
    """The cached bookworm rootfs of scripts/emulated-pi.sh, built if missing; no instance started."""
    pi_prerequisites(require)
    r = subprocess.run(["bash", str(SCRIPT), "build"], capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        pytest.fail(f"emulated-pi.sh build failed: {r.stderr.strip()}")
    cache = Path(os.environ.get("EDGEBIT_CACHE_DIR") or Path.home() / ".cache" / "edgebit")
    return cache / "emulated-pi" / "rootfs-bookworm-arm64"


SHIPPED = Path(__file__).resolve().parents[2] / "edgebit" / "data" / "models" / "bitnet-kjv-small"
# The shipped model has no chat template; this one ends a turn with its EOS, "</s>".
CHAT_TEMPLATE = ("{% for message in messages %}{{ message['role'] | capitalize + ': ' + message['content'] | trim"
                 " + '</s>' }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}")


@pytest.fixture(scope="session")
def pi_artifacts(tmp_path_factory, cli):
    """The shipped model exported to ONNX and .pte, and to ONNX with a chat template (context 96: quick)."""
    d = tmp_path_factory.mktemp("pi-artifacts")
    chat_model = shutil.copytree(SHIPPED, d / "chat-model")
    config = json.loads((chat_model / "tokenizer_config.json").read_text())
    (chat_model / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": CHAT_TEMPLATE}))
    for args in (["onnx", "-o", d / "onnx"], ["executorch", "-o", d / "pte"], ["onnx", chat_model, "-o", d / "chat"]):
        r = cli("export", *args, "--max-seq-len", "96", timeout=900)
        assert r.returncode == 0, r.stderr
    return {"onnx": d / "onnx", "pte": d / "pte", "chat": d / "chat"}
