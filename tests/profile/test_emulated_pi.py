"""The device flow a Raspberry Pi owner runs, against the emulated Pi of scripts/emulated-pi.sh (Debian bookworm
arm64 under qemu-user as a Cortex-A76, sshd with its own host key): `edgebit bundle --target aarch64-linux-gnu`,
`edgebit profile` of the shipped model's ONNX and .pte artifacts over ssh, the bundle's runner copied over by hand
and run there (text and chat, equal to this machine's), and first contact with the device's host key."""

import json
import subprocess

import pytest


@pytest.fixture(scope="module")
def pi(emulated_pi):
    return emulated_pi("bookworm")


@pytest.fixture(scope="module")
def arm_bundle(tmp_path_factory, cli):
    out = tmp_path_factory.mktemp("pi-bundle") / "bundle"
    r = cli("bundle", "--target", "aarch64-linux-gnu", "-o", out, timeout=1800)
    assert r.returncode == 0, r.stderr
    # What the device must have, stated: the glibc of Debian bookworm / Raspberry Pi OS bookworm, and C++'s runtime.
    assert "the device needs glibc 2.36 or newer and libc6, libgcc-s1, libstdc++6" in r.stdout, r.stdout
    return out


def test_profile_onnx_and_pte_over_ssh(pi, pi_artifacts, arm_bundle, cli, tmp_path):
    r = cli("profile", pi_artifacts["onnx"], pi_artifacts["pte"], "--device", pi.device, "--ssh-config", pi.ssh_config,
            "--threads", "1", "--prompt-len", "16", "--gen-len", "8", "--runs", "2", "--warmup", "0",
            "--json", tmp_path / "p.json", "--report", tmp_path / "p.html", timeout=900)
    assert r.returncode == 0, r.stderr
    results = json.loads((tmp_path / "p.json").read_text())
    assert [(x["runtime"], x["runtime_version"]) for x in results] == [("onnxruntime", "1.31.1"),
                                                                       ("executorch", "1.5.1+cpu")]
    for x in results:
        assert x["ttft_ms"] > 0 and x["decode_tokens_per_s"] > 0 and x["peak_rss_bytes"] > 0
        assert x["prompt_tokens"] == 16 and len(x["generated_ids"]) == 8
        # A Pi 5's Cortex-A76 has the dot product and no i8mm: the variant it runs is the one that ran.
        assert x["kernel_variant"] == "neon_dotprod" and "neon_i8mm" not in x["cpu_features"], x["cpu_features"]
        assert x["arch"] == "aarch64" and x["cpu_model"] == "implementer 0x41 part 0xd0b" and x["online_cpus"] == 4
        assert x["emulated"] is True and "emulation" in x["device_description"]
        assert x["bundle_target"] == "aarch64-linux-gnu"
    assert "EMULATION" in r.stdout and "Emulation:" in (tmp_path / "p.html").read_text()
    # On the device: the bundle and both artifacts, sealed and intact (their sha256 listings check), no torn copy,
    # nothing left running. (That a sealed copy is reused, not pushed again: test_profile_ssh_adb.py.)
    listing = pi.sh("cd /root/.cache/edgebit-device && for d in *; do echo \"$d $(cd $d && sha256sum -c --status "
                    ".edgebit-complete && echo intact)\"; done").stdout.split("\n")
    pushed = [l for l in listing if l]
    assert len(pushed) == 3 and all(l.endswith(" intact") for l in pushed), pushed
    assert not pi.runners()


def turns_of(json_lines: str) -> list[dict]:
    return [{k: t[k] for k in ("prompt_ids", "generated_ids", "text")} for t in map(json.loads, json_lines.splitlines())]


def test_runner_by_hand_text_and_chat_equal_this_machines(pi, pi_artifacts, arm_bundle, cli, tmp_path):
    """What the README tells a Pi owner: copy the bundle and an artifact over, run bin/edgebit-runner there."""
    from edgebit.profile.bundle import build_bundle

    pi.sh("rm -rf /root/by-hand && mkdir /root/by-hand")
    pi.scp(arm_bundle, pi_artifacts["onnx"], pi_artifacts["pte"], pi_artifacts["chat"], dest="/root/by-hand/")
    prompt = "And God said"
    for art in ("onnx", "pte"):
        on_pi = pi.sh(f"by-hand/bundle/bin/edgebit-runner by-hand/{art} --prompt '{prompt}' --max-new-tokens 24 "
                      "--threads 1", timeout=300)
        here = cli("run", pi_artifacts[art], "--prompt", prompt, "--max-new-tokens", "24", "--threads", "1")
        assert here.returncode == 0, here.stderr
        assert on_pi.stdout == here.stdout and len(on_pi.stdout) > 40, (art, on_pi.stdout, here.stdout)
        assert "decode 24 tokens" in on_pi.stderr
    # Chat: two turns with the KV cache kept between them, as JSON lines, against this machine's runner.
    turns = "Who made the heaven?\nAnd then?\n"
    on_pi = pi.sh("by-hand/bundle/bin/edgebit-runner by-hand/chat --chat --json --max-new-tokens 12 --threads 1",
                  input=turns, timeout=300)
    here = subprocess.run([build_bundle("host").runner, pi_artifacts["chat"], "--chat", "--json", "--max-new-tokens",
                           "12", "--threads", "1"], input=turns, capture_output=True, text=True, timeout=300)
    assert here.returncode == 0, here.stderr
    assert turns_of(on_pi.stdout) == turns_of(here.stdout) and len(turns_of(here.stdout)) == 2


def test_first_contact_with_the_pis_host_key(pi, pi_artifacts, cli, tmp_path):
    """An unknown host is refused until trusted; --accept-new-host-key trusts it once and records its key, which
    is then checked as any known host's."""
    known = tmp_path / "known_hosts"
    config = tmp_path / "ssh_config"
    config.write_text(f"Host 127.0.0.1\n  IdentityFile {pi.key}\n  IdentitiesOnly yes\n"
                      f"  UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n")
    args = ["profile", pi_artifacts["onnx"], "--device", pi.device, "--ssh-config", config, "--threads", "1",
            "--prompt-len", "4", "--gen-len", "2", "--runs", "1", "--warmup", "0"]
    r = cli(*args, timeout=300)
    assert r.returncode == 2 and "host key" in r.stderr and "--accept-new-host-key" in r.stderr, r.stderr
    assert not known.exists() or not known.read_text()
    r = cli(*args, "--accept-new-host-key", timeout=600)
    assert r.returncode == 0, r.stderr
    assert known.read_text().split()[1:] == pi.known_hosts.read_text().split()[1:]  # the Pi's own key, recorded
    r = subprocess.run(["ssh", "-F", config, "-p", str(pi.port), "-o", "BatchMode=yes", "-o",
                        "StrictHostKeyChecking=yes", "root@127.0.0.1", "true"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr  # from now on it is a known host
