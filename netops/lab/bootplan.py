"""What a node applies at boot, computed on the host from the node's own files.

A node's files are read through `/proc/<anchor>/root`, which enters its mount namespace. Symlinks
are resolved against the node's root, never the host's (Debian's 99-sysctl.conf is a symlink,
masks are links to /dev/null).

Boot applies only persisted state (RUNBOOKS.md section 3, "reboot stand-in"):
modules-load.d through the modprobe stand-in, the `net.*` keys of the sysctl.d set in the order
of RUNBOOKS.md 1.2 (shared with the sysctl step: `netops.steps.sysctl_order`), then the units
enabled through /etc/systemd/system/*.wants (the systemctl stand-in skips masked ones and runs
docker's FORWARD DROP and the `[Service]` ExecStartPost= lines of its drop-ins).
"""

from __future__ import annotations

import errno
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from netops.steps.sysctl_order import SYSCTL_CONF, SYSCTL_DIRS, boot_order

MODULES_DIRS = ("/etc/modules-load.d", "/run/modules-load.d", "/usr/local/lib/modules-load.d",
                "/usr/lib/modules-load.d", "/lib/modules-load.d")
WANTS_ROOTS = ("/etc/systemd/system", "/run/systemd/system")
_ASSIGN = re.compile(r"^\s*(-?)\s*([^=\s#;]+)\s*=\s*(.*?)\s*$")
# Started last, always: a node nobody can reach is no use to the lab.
SSH_UNIT = "ssh.service"


class NodeFS:
    """Read-only access to a running node's files from the host."""

    def __init__(self, anchor_pid: int) -> None:
        self.root = Path(f"/proc/{anchor_pid}/root")

    def host_path(self, path: str) -> Path:
        """The host path that reaches `path` inside the node, symlinks resolved in the node."""
        parts = [p for p in path.split("/") if p]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == ".":
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            here = self.root.joinpath(*done, part)
            if here.is_symlink():
                hops += 1
                if hops > 40:
                    raise OSError(errno.ELOOP, "too many symlinks", path)
                target = str(here.readlink())
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p] + parts
                continue
            done.append(part)
        return self.root.joinpath(*done)

    def read(self, path: str) -> str | None:
        try:
            return self.host_path(path).read_text(errors="replace")
        except OSError:
            return None

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(p.name for p in self.host_path(path).iterdir())
        except OSError:
            return []

    def readlink(self, path: str) -> str | None:
        """The target of `path` if it is a symlink (not followed)."""
        parent, _, name = path.rstrip("/").rpartition("/")
        try:
            return str((self.host_path(parent or "/") / name).readlink())
        except OSError:
            return None


@dataclass(slots=True)
class BootPlan:
    modules: list[str] = field(default_factory=list)
    sysctls: list[tuple[str, str, bool]] = field(default_factory=list)
    """(key, value, ignore_failure) in the order they are applied; net.* keys only."""
    units: list[str] = field(default_factory=list)

    def script(self, extra_sysctls: tuple[tuple[str, str], ...] = (), tail: str = "") -> str:
        """The sh script that applies the plan inside the node, then runs `tail`."""
        lines = [
            "w() {  # w PATH_GLOB VALUE: like systemd-sysctl, write each matching /proc/sys file",
            "  for f in $1; do",
            '    [ -e "$f" ] || { echo "netops-lab boot: no sysctl $f" >&2; continue; }',
            '    printf \'%s\\n\' "$2" > "$f" || echo "netops-lab boot: cannot set $f" >&2',
            "  done",
            "}",
        ]
        if self.modules:
            lines.append("modprobe -a " + " ".join(shlex.quote(m) for m in self.modules))
        for key, value, _ in [*self.sysctls, *((k, v, False) for k, v in extra_sysctls)]:
            lines.append(f"w {_sysctl_glob(key)} {shlex.quote(value)}")
        if self.units:
            lines.append("systemctl start " + " ".join(shlex.quote(u) for u in self.units))
        lines.append(tail)
        return "\n".join(lines) + "\n"


def _sysctl_glob(key: str) -> str:
    """/proc/sys path of a sysctl key, left unquoted where it holds a glob (`conf.*.rp_filter`).
    Keys written with `/` keep their dots (`net/ipv4/conf/eth0.100/rp_filter`)."""
    path = key if "/" in key else key.replace(".", "/")
    path = "/proc/sys/" + path.lstrip("/")
    if re.search(r"[^A-Za-z0-9_./*?\[\]-]", path):
        raise ValueError(f"unsafe sysctl key {key!r}")
    return path


def _conf_files(fs: NodeFS, dirs: tuple[str, ...]) -> dict[str, str]:
    """path -> content for every *.conf in `dirs`; a link to /dev/null reads as empty."""
    files: dict[str, str] = {}
    for directory in dirs:
        for name in fs.listdir(directory):
            if not name.endswith(".conf"):
                continue
            path = f"{directory}/{name}"
            if fs.readlink(path) == "/dev/null":
                files[path] = ""
                continue
            text = fs.read(path)
            if text is not None:
                files[path] = text
    return files


def _first_per_name(files: dict[str, str], dirs: tuple[str, ...]) -> list[str]:
    """Files by basename, earlier directories masking later ones, in basename order."""
    chosen: dict[str, str] = {}
    for directory in dirs:
        for path in files:
            if path.rsplit("/", 1)[0] == directory:
                chosen.setdefault(path.rsplit("/", 1)[1], path)
    return [chosen[b] for b in sorted(chosen)]


def plan_boot(fs: NodeFS) -> BootPlan:
    return BootPlan(modules=_modules(fs), sysctls=_sysctls(fs), units=_enabled_units(fs))


def _modules(fs: NodeFS) -> list[str]:
    files = _conf_files(fs, MODULES_DIRS)
    modules: list[str] = []
    for path in _first_per_name(files, MODULES_DIRS):
        for line in files[path].splitlines():
            line = line.strip()
            if line and not line.startswith(("#", ";")) and line not in modules:
                modules.append(line)
    return modules


def _sysctls(fs: NodeFS) -> list[tuple[str, str, bool]]:
    files = _conf_files(fs, SYSCTL_DIRS)
    conf = fs.read(SYSCTL_CONF)
    if conf is not None:
        files[SYSCTL_CONF] = conf
    found = []
    for path in boot_order(files):
        for line in files[path].splitlines():
            m = _ASSIGN.match(line)
            # kernel.*, vm.*, fs.* are host-wide: a node never sets them.
            if m and not line.lstrip().startswith(("#", ";")) and \
                    m.group(2).replace("/", ".").startswith("net."):
                found.append((m.group(2), m.group(3), m.group(1) == "-"))
    return found


def _enabled_units(fs: NodeFS) -> list[str]:
    units: set[str] = set()
    for root in WANTS_ROOTS:
        for entry in fs.listdir(root):
            if entry.endswith((".wants", ".requires")):
                units.update(fs.listdir(f"{root}/{entry}"))
    return sorted(units - {SSH_UNIT, "sshd.service"})
