"""One lab node as kernel objects: the anchor process that holds its namespaces, its veth, and
commands run inside it.

The anchor is `unshare --net --mount --uts --ipc --pid --time --fork` running a small sh init
(pid 1 of the node): it builds the node's private mounts, prints its host pid, waits while the
host plugs eth0 into its netns, configures the address, then reaps orphans forever. The node's
namespaces live exactly as long as it does: killing it (SIGKILL to a pid-namespace init kills
every process in the node) frees the netns, every mount and every session at once. No named
netns: `ip netns add` would leave a /run/netns mount on the host after the lab is gone.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from netops.lab.model import LabError

# PATH that sshd gives root on Debian; the stand-ins in /usr/local/sbin come first.
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What an SSH session gets (UsePAM no, no AcceptEnv): no LANG, no host environment.
NODE_ENV = {"PATH": NODE_PATH, "HOME": "/root", "USER": "root", "LOGNAME": "root",
            "SHELL": "/bin/bash"}
MARKER = "netops-lab-init"
HAVE_TIMENS = Path("/proc/self/ns/time").exists()

# $1 node dir, $2 lab dir, $3 hostname, $4 address/len, $5 gateway.
# Every bind from the lab directory happens before /root and /tmp are covered, since the lab
# directory may live below either of them.
INIT = r"""
set -eu
N=$1 L=$2 NAME=$3 CIDR=$4 GW=$5
read -r hp _ < /proc/self/stat
# Own /proc for the pid namespace. /proc/sys is read-only except net/ (the per-netns keys): a
# node must not change the host's kernel.*, vm.* or fs.* settings.
mount -t proc -o nosuid,nodev,noexec proc /proc
mount --bind /proc/sys /proc/sys
mount --bind /proc/sys/net /proc/sys/net
mount -o remount,bind,ro /proc/sys
mount -o bind,ro "$N/boot_id" /proc/sys/kernel/random/boot_id
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$N/etc,workdir=$N/work/etc" /etc
mount -t overlay overlay -o "lowerdir=/var,upperdir=$N/var,workdir=$N/work/var" /var
mount -t overlay overlay -o "lowerdir=/opt,upperdir=$N/opt,workdir=$N/work/opt" /opt
mount -t overlay overlay -o "lowerdir=$L/units:/usr/lib/systemd/system" /usr/lib/systemd/system
mount -o bind,ro "$L/sysctl.d" /usr/lib/sysctl.d
mount -o bind,ro "$L/standins" /usr/local/sbin
mount -o bind,ro "$L/standins/systemctl" /usr/bin/systemctl
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
mkdir -p /run/sshd /run/lock /run/netops-lab/units /run/netops-lab/log /run/netops-lab/ctl
mount --bind "$L/ctl" /run/netops-lab/ctl
mount -t tmpfs -o nosuid,nodev tmpfs /dev/shm
mount --bind "$N/root" /root
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
hostname "$NAME"
echo "ns $hp"
read -r go
printf 'link set lo up\naddr add %s dev eth0\nlink set eth0 up\nroute add default via %s\n' \
  "$CIDR" "$GW" | ip -batch -
echo ready
exec </dev/null >/dev/null
trap '' HUP INT TERM
while :; do sleep 2147483647 & wait; done
"""


def _readline(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """One line from the anchor's stdout, or LabError on timeout or exit."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise LabError(f"node init did not answer within {timeout:g}s")
        chunk = os.read(fd, 1)
        if not chunk:
            raise LabError(f"node init exited (rc {proc.wait()})")
        buf += chunk
    return buf.decode().strip()


def spawn_anchor(node_dir: Path, lab_dir: Path, name: str, cidr: str, gateway: str,
                 plug: Callable[[int], None], timeout: float = 20) -> int:
    """Start a node's anchor; `plug(pid)` moves eth0 into it. Returns the init's host pid."""
    args = ["unshare", "--net", "--mount", "--uts", "--ipc", "--pid", "--fork", "--kill-child",
            "--propagation", "private"]
    if HAVE_TIMENS:
        # A fresh uptime at every boot, as on a real machine (CLOCK_BOOTTIME offset).
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        args += ["--time", f"--boottime={-int(uptime)}"]
    args += ["/bin/sh", "-c", INIT, MARKER, str(node_dir), str(lab_dir), name, cidr, gateway]
    with open(node_dir / "init.log", "ab") as log:
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                start_new_session=True, cwd="/", env={"PATH": NODE_PATH})
    assert proc.stdin is not None and proc.stdout is not None
    try:
        first = _readline(proc, timeout)
        if not first.startswith("ns "):
            raise LabError(f"unexpected node init output {first!r}")
        pid = int(first.split()[1])
        plug(pid)
        proc.stdin.write(b"go\n")
        proc.stdin.close()
        if _readline(proc, timeout) != "ready":
            raise LabError("node init did not report ready")
    except (LabError, OSError, ValueError) as e:
        proc.kill()
        proc.wait()
        tail = (node_dir / "init.log").read_text(errors="replace")[-800:]
        raise LabError(f"{name}: node did not start: {e}\n{tail}") from e
    finally:
        proc.stdout.close()
    return pid


def is_anchor(pid: int, node_dir: Path | None = None) -> bool:
    """Is `pid` a node init (of `node_dir`'s node), not its unshare parent or a recycled pid?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return cmdline[0] == b"/bin/sh" and MARKER.encode() in cmdline and \
        (node_dir is None or str(node_dir).encode() in cmdline)


def zombie_or_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def kill_anchor(pid: int, node_dir: Path, timeout: float = 10) -> None:
    """Kill every process of the node and wait until its namespaces are gone."""
    if not is_anchor(pid, node_dir):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    # A pid-namespace init turns zombie only after every process in it has been reaped, so a
    # zombie (or vanished) init means the node's processes, mounts and netns are gone.
    while not zombie_or_gone(pid):
        if time.monotonic() > deadline:
            raise LabError(f"node init {pid} did not exit")
        time.sleep(0.005)


def nsenter_args(pid: int) -> list[str]:
    args = ["nsenter", "-t", str(pid), "-n", "-m", "-u", "-i", "-p"]
    return [*args, "-T"] if HAVE_TIMENS else args


def run_in(pid: int, command: str, *, timeout: float = 30, check: bool = True,
           log: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`sh -c command` as root inside the node with the node's PATH, from /root. With `log`,
    output is appended there (a file, not a pipe: daemons the command starts keep it open)."""
    args = [*nsenter_args(pid), "/bin/sh", "-c", f"cd /root || exit 1\n{command}"]
    with contextlib.ExitStack() as stack:
        out: int | IO[str] = subprocess.PIPE
        if log is not None:
            out = stack.enter_context(open(log, "a"))
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT if log else subprocess.PIPE,
                                text=True, env=NODE_ENV, start_new_session=True, cwd="/")
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # nsenter forked the command into the node's pid namespace: kill the whole group.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    done = subprocess.CompletedProcess(args, proc.returncode, stdout or "", stderr or "")
    if check and proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, command, stdout, stderr)
    return done
