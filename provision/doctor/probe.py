"""The one shell script doctor runs on each host, and the parser of its output (both pure).

The script prints sections (``@@doctor:NAME`` lines) that the controller parses; it runs once
per host over one SSH session, as the SSH user, using ``sudo -n`` only where root is needed
(``iptables-save``, ``ss -p``). It never changes anything on the host.
"""

from __future__ import annotations

import shlex

MARKER = "@@doctor:"

# The HTTPS endpoints checked when no inventory says more (doctor picks the list per mode:
# netchecks.needed_urls). dl.k8s.io is absent: kubeadm mode pins versions and installs from
# pkgs.k8s.io; only minikube mode's kubectl comes from dl.k8s.io (needed_urls adds it there).
DEFAULT_URLS: tuple[str, ...] = (
    "https://registry.k8s.io/v2/",
    "https://pkgs.k8s.io/",
    "https://download.docker.com/linux/",
)

# What a SCSI disk itself says its size is (READ CAPACITY(16), else (10), through SG_IO on a
# read-only file descriptor): after an online resize it is bigger than the size the kernel
# keeps until a rescan. Reading it changes nothing (doctor never writes the rescan file).
READ_CAPACITY = r"""
import ctypes, fcntl, os, struct, sys
class H(ctypes.Structure):
    _fields_ = [("interface_id", ctypes.c_int), ("dxfer_direction", ctypes.c_int),
                ("cmd_len", ctypes.c_ubyte), ("mx_sb_len", ctypes.c_ubyte),
                ("iovec_count", ctypes.c_ushort), ("dxfer_len", ctypes.c_uint),
                ("dxferp", ctypes.c_void_p), ("cmdp", ctypes.c_void_p),
                ("sbp", ctypes.c_void_p), ("timeout", ctypes.c_uint), ("flags", ctypes.c_uint),
                ("pack_id", ctypes.c_int), ("usr_ptr", ctypes.c_void_p),
                ("status", ctypes.c_ubyte), ("masked_status", ctypes.c_ubyte),
                ("msg_status", ctypes.c_ubyte), ("sb_len_wr", ctypes.c_ubyte),
                ("host_status", ctypes.c_ushort), ("driver_status", ctypes.c_ushort),
                ("resid", ctypes.c_int), ("duration", ctypes.c_uint), ("info", ctypes.c_uint)]
def ask(fd, cdb, size):
    buf, sense = ctypes.create_string_buffer(size), ctypes.create_string_buffer(32)
    cmd = ctypes.create_string_buffer(bytes(cdb), len(cdb))
    for _ in range(3):  # the first answer after a resize may be a unit attention
        h = H(ord("S"), -3, len(cdb), 32, 0, size, ctypes.addressof(buf),
              ctypes.addressof(cmd), ctypes.addressof(sense), 5000)
        fcntl.ioctl(fd, 0x2285, h)
        if h.status == 0 and h.host_status == 0 and h.driver_status == 0:
            return buf.raw
    return None
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
r = ask(fd, [0x9E, 0x10] + [0] * 8 + [0, 0, 0, 32, 0, 0], 32)
if r:
    last, block = struct.unpack(">QI", r[:12])
else:
    r = ask(fd, [0x25] + [0] * 9, 8)
    last, block = struct.unpack(">II", r) if r else (-1, 0)
if block:
    print((last + 1) * block)
"""

_SCRIPT = r"""
S=""; [ "$(id -u)" = 0 ] || S="sudo -n"
sec() { printf '\n@@doctor:%s\n' "$1"; }
sec id; id -un; id -u
sec sudo
if [ "$(id -u)" = 0 ]; then echo "root"; else sudo -n true 2>&1; echo "rc=$?"; fi
sec os_release; cat /etc/os-release 2>&1
sec arch; uname -m
sec nproc; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN
sec meminfo; grep -E '^(MemTotal|SwapTotal|SwapFree):' /proc/meminfo
sec swaps; cat /proc/swaps
sec df; df -P -B1 / /var/lib 2>&1
sec rootdisk
echo "source=$(findmnt -n -o SOURCE / 2>/dev/null)"
mm=$(mountpoint -d / 2>/dev/null)
sys=""; [ -n "$mm" ] && sys=$(readlink -f "/sys/dev/block/$mm" 2>/dev/null)
if [ -n "$sys" ] && [ -e "$sys/partition" ]; then
  disk=$(readlink -f "$sys/..")
  echo "partition=${sys##*/}"
  echo "disk=${disk##*/}"
  echo "disk_size=$(cat "$disk/size")"
  for p in "$disk"/*; do
    [ -e "$p/partition" ] && echo "part ${p##*/} $(cat "$p/start") $(cat "$p/size")"
  done
  if [ -e "$disk/device/rescan" ]; then
    echo "scsi=yes"
    command -v python3 >/dev/null 2>&1 && \
      $S python3 -c "$READCAP" "/dev/${disk##*/}" 2>/dev/null | sed 's/^/device_bytes=/'
  fi
elif [ -n "$sys" ]; then
  echo "whole_device=${sys##*/}"
fi
sec timedatectl; timedatectl show -p NTPSynchronized --value 2>&1; echo "rc=$?"
sec cgroup; stat -fc %T /sys/fs/cgroup 2>&1
sec listen; $S ss -ltnpH 2>/dev/null || ss -ltnH 2>&1
sec iptables; $S iptables-save -t filter 2>&1; echo "rc=$?"
sec ipaddr; ip -o -4 addr show 2>&1
sec urls
"""

_URLS = r"""
d=$(mktemp -d)
i=0
for u in __URLS__; do
  i=$((i+1))
  ( c=$(curl -sS --proto =http,https -o /dev/null -w '%{http_code}' \
        --max-time __TIMEOUT__ "$u" 2>"$d/$i.err")
    echo "$? $c" > "$d/$i.out" ) &
done
wait
i=0
for u in __URLS__; do
  i=$((i+1))
  printf '%s\t%s\t%s\n' "$u" "$(cat "$d/$i.out")" "$(head -c 300 "$d/$i.err" | tr '\n\t' '  ')"
done
rm -rf "$d"
"""


def build_script(urls: tuple[str, ...] | list[str] = DEFAULT_URLS, url_timeout: int = 5,
                 exports: str = "") -> str:
    """The probe script; ``urls`` empty = no outbound HTTPS checks (tests, air-gapped).
    ``exports``: quoted ``export http_proxy=...`` lines (provision.doctor.mirrors) for curl."""
    script = f"READCAP={shlex.quote(READ_CAPACITY)}\n" + _SCRIPT
    if urls:
        quoted = " ".join(shlex.quote(u) for u in urls)
        script += exports + _URLS.replace("__URLS__", quoted).replace(
            "__TIMEOUT__", str(int(url_timeout)))
    return script + f"printf '\\n{MARKER}end\\n'\n"


def parse_sections(output: str) -> dict[str, str]:
    """Split the script's output into {section: text}. A missing ``end`` section means the
    script was cut short (the caller reports it)."""
    sections: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for line in output.splitlines():
        if line.startswith(MARKER):
            if name is not None:
                sections[name] = "\n".join(lines).strip("\n")
            name, lines = line[len(MARKER):].strip(), []
        elif name is not None:
            lines.append(line)
    if name is not None:
        sections[name] = "\n".join(lines).strip("\n")
    return sections
