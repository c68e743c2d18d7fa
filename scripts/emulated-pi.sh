#!/usr/bin/env bash
# An emulated Raspberry Pi on this x86 machine: a Debian arm64 system (Raspberry Pi OS is Debian arm64) whose
# programs run under qemu-user through binfmt_misc, reached over ssh with a key and a host key, as a Pi is.
#
#   scripts/emulated-pi.sh build  [--release bookworm|bullseye]
#   scripts/emulated-pi.sh start  [--release R] [--name NAME] [--port PORT]   (prints KEY=VALUE lines, below)
#   scripts/emulated-pi.sh stop   [--name NAME]
#   scripts/emulated-pi.sh status [--name NAME]
#
# build: debootstrap --variant=minbase --include=openssh-server of Debian R for arm64, cached (built once, a few
#   minutes; reused while it exists). Root is needed: debootstrap, chroot and mounts.
# start: one instance NAME (default "pi"): a copy-on-write overlay of the cached rootfs (the rootfs itself is never
#   changed, so a test may break the device and the next instance is pristine) in its own mount and PID namespace,
#   with /proc, /dev and a /sys whose CPU entries, like /proc/cpuinfo, describe a Raspberry Pi 5's four Cortex-A76
#   cores (CPU-detection code in ONNX Runtime and ExecuTorch reads both: without /sys a .pte does not load, with
#   the x86 host's the ONNX runner crashed), and qemu emulating a Cortex-A76 (QEMU_CPU, for sshd and, through
#   /etc/environment, every session), so the kernel variant a Pi 5 picks is the one that runs. sshd listens on
#   127.0.0.1:PORT (a free port unless given) with a host key and a root key made here. Prints
#     EDGEBIT_PI_DEVICE=ssh://root@127.0.0.1:PORT  EDGEBIT_PI_PORT  EDGEBIT_PI_SSH_CONFIG (an ssh_config naming the key
#     and a known_hosts holding the host key)  EDGEBIT_PI_KEY  EDGEBIT_PI_KNOWN_HOSTS  EDGEBIT_PI_PID (the namespace)
#   Starting a running instance prints the same lines again.
# stop: kills the instance's namespace (every process of the emulated Pi dies with it, and its mounts vanish) and
#   deletes its overlay. The last instance to stop also undoes what start did to binfmt_misc (mount, registration).
#
# Everything lives under ${EDGEBIT_CACHE_DIR:-~/.cache/edgebit}/emulated-pi. Errors: one line, exit 2.
# EDGEBIT_PI_MIRROR: the Debian mirror (default http://deb.debian.org/debian); EDGEBIT_PI_QEMU: qemu-aarch64-static.
set -euo pipefail

die() { echo "emulated-pi.sh: $*" >&2; exit 2; }

cmd="${1:-}"; shift || true
release=bookworm name=pi port=""
while [ $# -gt 0 ]; do
  case "$1" in
    --release) release="${2:?}"; shift 2 ;;
    --name) name="${2:?}"; shift 2 ;;
    --port) port="${2:?}"; shift 2 ;;
    *) die "unknown option $1 (see the header of $0)" ;;
  esac
done
case "$cmd" in build|start|stop|status) ;; *) die "usage: $0 build|start|stop|status [--release R] [--name N] [--port P]" ;; esac
case "$release" in bookworm|bullseye) ;; *) die "--release $release: bookworm (Raspberry Pi OS 12) or bullseye (11)" ;; esac
[[ "$name" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--name $name: letters, digits, '.', '_' and '-' only"
[ -z "$port" ] || [[ "$port" =~ ^[0-9]+$ ]] || die "--port $port: not a port number"

cache="${EDGEBIT_CACHE_DIR:-$HOME/.cache/edgebit}/emulated-pi"
rootfs="$cache/rootfs-$release-arm64"
inst="$cache/instances/$name"
binfmt=/proc/sys/fs/binfmt_misc
qemu="${EDGEBIT_PI_QEMU:-/usr/bin/qemu-aarch64-static}"  # a static qemu: it runs inside chroots
entry=edgebit-qemu-aarch64
# ELF64, little-endian, e_machine EM_AARCH64: the magic and mask Debian's qemu-user-static registers.
magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mounts and namespaces)"
mkdir -p "$cache/instances"
exec 9>"$cache/lock"
flock 9  # one start/stop/build at a time: instances share the rootfs and the binfmt bookkeeping

need() { command -v "$1" >/dev/null || die "$1 not found: apt install $2"; }

alive() { [ -f "$1/pid" ] && kill -0 "$(cat "$1/pid")" 2>/dev/null; }

# An enabled binfmt_misc entry that runs aarch64 ELF files with qemu opened at registration (flag F), so a chroot
# without qemu inside runs them. The system's (binfmt-support, systemd-binfmt) is used when it qualifies.
binfmt_ready() {
  local e
  for e in "$binfmt"/*; do
    [ -f "$e" ] && [ "$(basename "$e")" != status ] && [ "$(basename "$e")" != register ] || continue
    grep -qx enabled "$e" && grep -q '^flags: .*F' "$e" &&
      grep -qx 'magic 7f454c460201010000000000000000000200b700' "$e" && return 0
  done
  return 1
}

ensure_binfmt() {
  [ -x "$qemu" ] || die "$qemu not found: apt install qemu-user-static (it runs the Pi's arm64 programs)"
  if [ ! -e "$binfmt/status" ]; then
    mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null ||
      die "binfmt_misc is not available: 'mount -t binfmt_misc binfmt_misc $binfmt' failed (the kernel needs CONFIG_BINFMT_MISC; a container must be allowed to mount it)"
    touch "$cache/binfmt-mounted-by-us"
  fi
  grep -qx enabled "$binfmt/status" || die "binfmt_misc is disabled: echo 1 > $binfmt/status"
  binfmt_ready && return 0
  printf ':%s:M::%s:%s:%s:F' "$entry" "$magic" "$mask" "$qemu" > "$binfmt/register" 2>/dev/null ||
    die "cannot register qemu-aarch64 with binfmt_misc ($binfmt/register refused it)"
}

# Undo ensure_binfmt, once no instance runs and no build is in progress (we hold the lock).
release_binfmt() {
  local d
  for d in "$cache"/instances/*/ "$cache"/builds/*/; do [ -d "$d" ] && alive "$d" && return 0; done
  # Nor while any program runs through qemu (an instance of another cache dir, say): binfmt_misc is machine-wide.
  local q e; q="$(readlink -f "$qemu")"
  for e in /proc/[0-9]*/exe; do [ "$(readlink "$e" 2>/dev/null)" = "$q" ] && return 0; done
  # The entry's name is this script's alone: whichever cache dir registered it, it goes with the last user.
  if [ -e "$binfmt/$entry" ]; then echo -1 > "$binfmt/$entry"; fi
  if [ -f "$cache/binfmt-mounted-by-us" ]; then
    umount "$binfmt" 2>/dev/null || true
    rm -f "$cache/binfmt-mounted-by-us"
  fi
}

build() {
  [ -f "$rootfs/.edgebit-rootfs" ] && return 0
  need debootstrap debootstrap
  need unshare util-linux
  ensure_binfmt
  # Minutes of debootstrap: under a lock of this release's own, so that instances start and stop meanwhile. The
  # build counts as a user of binfmt_misc (release_binfmt) while it runs.
  mkdir -p "$cache/builds/$release"; echo $$ > "$cache/builds/$release/pid"
  exec 8>"$cache/builds/$release.lock"
  flock -u 9; flock 8
  if [ ! -f "$rootfs/.edgebit-rootfs" ]; then debootstrap_rootfs; fi
  flock 9; rm -rf "$cache/builds/$release"; flock -u 8
}

debootstrap_rootfs() {
  local mirror="${EDGEBIT_PI_MIRROR:-http://deb.debian.org/debian}" log="$cache/debootstrap-$release.log"
  echo "emulated-pi.sh: building the Debian $release arm64 rootfs in $rootfs (a few minutes, once)" >&2
  rm -rf "$rootfs.tmp"
  # In a mount namespace of its own: the /proc and /sys debootstrap mounts in the target vanish with it, even
  # when it fails half-way.
  if ! unshare --mount --propagation private debootstrap --arch=arm64 --variant=minbase \
        --include=openssh-server "$release" "$rootfs.tmp" "$mirror" >"$log" 2>&1; then
    flock 9; rm -rf "$cache/builds/$release" "$rootfs.tmp"; release_binfmt
    die "debootstrap of Debian $release arm64 from $mirror failed: $(grep -v '^I:' "$log" | tail -n1) (log: $log)"
  fi
  # Every instance gets its own host key; downloaded .debs are not part of a device.
  rm -f "$rootfs.tmp"/etc/ssh/ssh_host_*
  rm -rf "$rootfs.tmp"/var/cache/apt/archives/*.deb "$rootfs.tmp"/var/lib/apt/lists/*_Packages
  printf 'release=%s\nmirror=%s\nbuilt=%s\n' "$release" "$mirror" "$(date -u +%FT%TZ)" > "$rootfs.tmp/.edgebit-rootfs"
  mv "$rootfs.tmp" "$rootfs"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The Pi 5's CPU as Linux shows it: /proc/cpuinfo (BCM2712, 4x Cortex-A76 r4p1: MIDR 0x414fd0b1) and the
# /sys/devices/system/cpu entries cpuinfo reads (possible/present, MIDR, frequencies, topology, caches).
write_pi5_cpu() {
  local sysd="$1/sys" cpu i idx
  : > "$1/cpuinfo"
  for i in 0 1 2 3; do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n' \
      "$i" "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" >> "$1/cpuinfo"
  done
  printf 'Revision\t: c04170\nSerial\t\t: 0000000000000000\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n' >> "$1/cpuinfo"
  cpu="$sysd/devices/system/cpu"
  mkdir -p "$cpu" "$sysd/firmware/devicetree/base"
  printf 'Raspberry Pi 5 Model B Rev 1.0\0' > "$sysd/firmware/devicetree/base/model"
  for f in possible present online; do echo 0-3 > "$cpu/$f"; done
  echo > "$cpu/offline"; echo 3 > "$cpu/kernel_max"
  for i in 0 1 2 3; do
    local c="$cpu/cpu$i"
    mkdir -p "$c/regs/identification" "$c/cpufreq" "$c/topology"
    echo 1 > "$c/online"
    echo 0x00000000414fd0b1 > "$c/regs/identification/midr_el1"
    echo 0x0000000000000000 > "$c/regs/identification/revidr_el1"
    echo 2400000 > "$c/cpufreq/cpuinfo_max_freq"; echo 1500000 > "$c/cpufreq/cpuinfo_min_freq"
    echo 2400000 > "$c/cpufreq/scaling_cur_freq"
    for f in physical_package_id cluster_id die_id; do echo 0 > "$c/topology/$f"; done
    echo "$i" > "$c/topology/core_id"
    for f in core_siblings_list package_cpus_list cluster_cpus_list die_cpus_list; do echo 0-3 > "$c/topology/$f"; done
    for f in thread_siblings_list core_cpus_list; do echo "$i" > "$c/topology/$f"; done
    # L1d 64K, L1i 64K, L2 512K per core; L3 2M shared.
    for idx in "0 1 Data 64K $i 4" "1 1 Instruction 64K $i 4" "2 2 Unified 512K $i 8" "3 3 Unified 2048K 0-3 16"; do
      set -- $idx
      mkdir -p "$c/cache/index$1"
      echo "$2" > "$c/cache/index$1/level"; echo "$3" > "$c/cache/index$1/type"
      echo "$4" > "$c/cache/index$1/size"; echo "$5" > "$c/cache/index$1/shared_cpu_list"
      echo "$6" > "$c/cache/index$1/ways_of_associativity"; echo 64 > "$c/cache/index$1/coherency_line_size"
    done
  done
}

print_info() {
  local p; p="$(cat "$inst/port")"
  echo "EDGEBIT_PI_DEVICE=ssh://root@127.0.0.1:$p"
  echo "EDGEBIT_PI_PORT=$p"
  echo "EDGEBIT_PI_SSH_CONFIG=$inst/ssh_config"
  echo "EDGEBIT_PI_KEY=$inst/id_ed25519"
  echo "EDGEBIT_PI_KNOWN_HOSTS=$inst/known_hosts"
  echo "EDGEBIT_PI_PID=$(cat "$inst/pid")"
}

stop_instance() {
  if alive "$inst"; then
    local pid; pid="$(cat "$inst/pid")"
    kill -KILL "$pid" 2>/dev/null || true  # unshare --kill-child takes the namespace's init, and so all, with it
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$inst"
}

start() {
  if alive "$inst"; then print_info; return 0; fi
  rm -rf "$inst"
  need ssh-keygen openssh-client
  need unshare util-linux
  build
  ensure_binfmt
  [ -n "$port" ] || port="$(free_port)"
  mkdir -p "$inst"/{upper,work,root,sys} "$inst/upper/etc/ssh/sshd_config.d" "$inst/upper/root/.ssh" "$inst/upper/run/sshd"
  ssh-keygen -q -t ed25519 -N "" -C "emulated-pi $name host" -f "$inst/upper/etc/ssh/ssh_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N "" -C "emulated-pi $name root" -f "$inst/id_ed25519"
  cp "$inst/id_ed25519.pub" "$inst/upper/root/.ssh/authorized_keys"
  chmod 700 "$inst/upper/root/.ssh"; chmod 600 "$inst/upper/root/.ssh/authorized_keys"
  cat > "$inst/upper/etc/ssh/sshd_config.d/emulated-pi.conf" <<EOF
# scripts/emulated-pi.sh: loopback only, keys only.
ListenAddress 127.0.0.1:$port
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
EOF
  grep -q '^Include /etc/ssh/sshd_config.d/' "$rootfs/etc/ssh/sshd_config" ||
    die "$rootfs/etc/ssh/sshd_config does not include sshd_config.d/ (rebuild: rm -rf $rootfs)"
  # pam_env gives every ssh session this environment: qemu then emulates the Pi 5's core for all its programs.
  { cat "$rootfs/etc/environment" 2>/dev/null || true; echo "QEMU_CPU=cortex-a76"; } > "$inst/upper/etc/environment"
  write_pi5_cpu "$inst"
  echo "$port" > "$inst/port"
  local pub; pub="$(cut -d' ' -f1,2 "$inst/upper/etc/ssh/ssh_host_ed25519_key.pub")"
  echo "[127.0.0.1]:$port $pub" > "$inst/known_hosts"
  cat > "$inst/ssh_config" <<EOF
Host 127.0.0.1
  Port $port
  User root
  IdentityFile $inst/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $inst/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
EOF
  # Inside the namespaces: the overlay, then /proc (this PID namespace's), /dev, the Pi's CPU files, then sshd as
  # PID 1 of the namespace, in the foreground (-D), logging to stderr (-e).
  local r="$inst/root"
  local setup="set -e
    mount -t overlay overlay -o lowerdir='$rootfs',upperdir='$inst/upper',workdir='$inst/work' '$r'
    mount -t proc proc '$r/proc'
    mount --rbind /dev '$r/dev'
    mount --bind '$inst/sys' '$r/sys'
    mount --bind '$inst/cpuinfo' '$r/proc/cpuinfo'
    exec chroot '$r' /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin QEMU_CPU=cortex-a76 /usr/sbin/sshd -D -e"
  setsid unshare --mount --propagation private --pid --fork --kill-child=SIGKILL bash -c "$setup" \
    </dev/null >"$inst/sshd.log" 2>&1 9>&- &
  echo $! > "$inst/pid"
  # sshd under emulation takes a second or two to listen.
  for _ in $(seq 300); do
    if ! alive "$inst"; then
      local why; why="$(tail -n1 "$inst/sshd.log")"
      rm -rf "$inst"; release_binfmt
      die "the emulated Pi's sshd exited at start: ${why:-no message}"
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { print_info; return 0; }
    sleep 0.1
  done
  stop_instance; release_binfmt
  die "the emulated Pi's sshd did not listen on 127.0.0.1:$port within 30 s"
}

case "$cmd" in
  build) build; release_binfmt ;;
  start) start ;;
  stop) stop_instance; release_binfmt ;;
  status) if alive "$inst"; then print_info; else echo "emulated-pi.sh: instance $name is not running" >&2; exit 1; fi ;;
esac
