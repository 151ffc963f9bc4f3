"""`Lab`: build, reboot, inspect and tear down a lab of real sshd nodes (DESIGN.md "The lab").

Layout of the lab directory:
    state.json            names, addresses, pids (anchors, sshd, supervisor, etcd), settings
    inventory.yaml, ssh_config, known_hosts, id_ed25519(.pub)   for the controller
    standins/ units/ sysctl.d/ ctl/   bound read-only into every node (ctl: reboot socket)
    nodes/NAME/           etc/ var/ (overlay upper dirs: what persists), work/, root/,
                          boot_id, anchor.pid, init.log, boot.log
    supervisor.log, etcd.log, etcd/
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import ipaddress
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from netops.errors import UserError
from netops.lab import etcd as etcd_server
from netops.lab.bootplan import SSH_UNIT, NodeFS, plan_boot
from netops.lab.model import LabError, Net, NodeDefaults, NodeStatus
from netops.lab.node import (
    MARKER,
    NODE_PATH,
    is_anchor,
    kill_anchor,
    run_in,
    spawn_anchor,
    zombie_or_gone,
)
from netops.lab.procs import cmdline_has, terminate
from netops.lab.seed import (
    NodeFiles,
    client_key,
    new_boot_id,
    remove_tree,
    seed_node,
    write_client_files,
    write_lab_dirs,
)

BootHook = Callable[["Lab", str, bool], None]
"""hook(lab, node name, first_boot): runs after persisted state is applied, before sshd."""

# Everything `up` may create in the lab directory; `down` removes exactly these.
LAB_FILES = ("state.json", "state.lock", "state.tmp", "inventory.yaml", "inventory.yaml.tmp",
             "ssh_config", "ssh_config.tmp", "known_hosts", "known_hosts.tmp", "id_ed25519",
             "id_ed25519.pub", "standins", "units", "sysctl.d", "ctl", "nodes", "etcd",
             "etcd.log", "supervisor.log", "kubeconfig", "kubeconfig.tmp", "kube")
REQUIRED_TOOLS = ("ip", "unshare", "nsenter", "mount", "iptables", "sysctl", "ssh-keygen")
SSHD = "/usr/sbin/sshd"
FORBIDDEN_ROOTS = ("/etc", "/var", "/usr", "/proc", "/sys", "/dev", "/run", "/boot")


def check_host(*, etcd: bool) -> None:
    """Refuse clearly (UserError, exit 2) when the lab cannot work on this machine."""
    if os.geteuid() != 0:
        raise UserError("netops lab needs root: it creates network namespaces, a bridge and "
                        "mounts", hint="run it as root (sudo)")
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t, path=NODE_PATH) is None]
    if not Path(SSHD).exists():
        missing.append("sshd")
    if etcd and shutil.which("etcd", path=NODE_PATH) is None:
        missing.append("etcd")
    if missing:
        raise UserError(f"netops lab needs {', '.join(missing)}",
                        hint="apt-get install openssh-server iproute2 iptables util-linux "
                        "etcd-server (or pass --no-etcd)")
    if "overlay" not in Path("/proc/filesystems").read_text():
        raise UserError("netops lab needs overlayfs in the kernel")


class Lab:
    """A lab of nodes on one bridge; see the module docstring for the files it keeps."""

    def __init__(self, directory: Path, *, subnet: str = "198.18.0.0/16", prefix: str = "nl",
                 defaults: NodeDefaults | None = None) -> None:
        self.directory = Path(directory).absolute().resolve()
        self.net = Net.create(prefix, subnet)
        self.defaults = defaults or NodeDefaults()
        self.names: list[str] = []
        self.boot_hooks: list[str] = []
        """Import paths "module:function" of BootHooks, saved in state.json so that reboots
        done by the supervisor process run them too."""
        self._supervisor: int | None = None
        self._etcd: dict[str, object] | None = None
        self._created_dir = False
        self.kube = True
        self._hook_cache: dict[str, BootHook] = {}

    # -- files -----------------------------------------------------------------------------
    @property
    def inventory_path(self) -> Path:
        return self.directory / "inventory.yaml"

    @property
    def ssh_config_path(self) -> Path:
        return self.directory / "ssh_config"

    @property
    def known_hosts_path(self) -> Path:
        return self.directory / "known_hosts"

    @property
    def key_path(self) -> Path:
        return self.directory / "id_ed25519"

    @property
    def state_path(self) -> Path:
        return self.directory / "state.json"

    @property
    def etcd_endpoint(self) -> str | None:
        return str(self._etcd["endpoint"]) if self._etcd else None

    def node_dir(self, name: str) -> Path:
        return self.directory / "nodes" / name

    # -- state -----------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: Path) -> Lab:
        """Re-attach to a lab from its state.json (another process built it)."""
        path = Path(directory).absolute().resolve() / "state.json"
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"no lab in {directory} (no state.json)",
                            hint="run `netops lab up` first, or pass --dir") from None
        lab = cls(path.parent, subnet=state["subnet"], prefix=state["prefix"],
                  defaults=NodeDefaults.from_json(state.get("defaults", {})))
        lab.names = list(state["names"])
        lab.boot_hooks = list(state.get("boot_hooks", []))
        lab._supervisor = state.get("supervisor")
        lab._etcd = state.get("etcd")
        lab._created_dir = bool(state.get("created_dir"))
        lab.kube = bool(state.get("kube", True))
        return lab

    @staticmethod
    def is_up(directory: Path) -> bool:
        """True if a lab in `directory` has live nodes."""
        try:
            lab = Lab.load(directory)
        except (UserError, ValueError, KeyError, OSError):
            return False
        return any(lab.anchor(n) is not None for n in lab.names)

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @property
    def etcd_v2(self) -> bool:
        """Whether the lab's etcd serves the v2 API (it does unless a fault turned it off)."""
        return bool(self._etcd and self._etcd.get("v2", True))

    def restart_etcd(self, *, enable_v2: bool = True) -> None:
        """Restart the lab's etcd on its data, with or without the v2 API."""
        if self._etcd is None:
            raise LabError("this lab has no etcd")
        etcd_server.stop(int(str(self._etcd["pid"])), self.directory)
        pid, endpoint = etcd_server.start(self.directory, self.net.gateway, enable_v2=enable_v2)
        self._etcd = {"pid": pid, "endpoint": endpoint, "v2": enable_v2}
        self._save_state("up")

    def _save_state(self, status: str) -> None:
        with self._locked(self.directory / "state.lock"):
            state = {
                "version": 1, "status": status, "prefix": self.net.prefix,
                "subnet": str(self.net.subnet), "bridge": self.net.bridge,
                "gateway": self.net.gateway, "names": self.names,
                "addresses": {n: self.address(n) for n in self.names},
                "anchors": {n: self.anchor(n) for n in self.names},
                "sshd": {n: self.sshd_pid(n) for n in self.names},
                "supervisor": self._supervisor, "etcd": self._etcd,
                "boot_hooks": self.boot_hooks, "defaults": self.defaults.to_json(),
                "created_dir": self._created_dir, "python": sys.executable, "kube": self.kube,
            }
            self._write_state(state)

    def _write_state(self, state: dict[str, object]) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1) + "\n")
        tmp.replace(self.state_path)

    def _save_node_state(self, name: str) -> None:
        """Update one node's pids in state.json (read-modify-write: other processes, such as
        the supervisor, hold Lab objects that may be older than the file)."""
        with self._locked(self.directory / "state.lock"):
            try:
                state = json.loads(self.state_path.read_text())
            except (OSError, ValueError):
                return
            state["anchors"][name] = self.anchor(name)
            state["sshd"][name] = self.sshd_pid(name)
            self._write_state(state)

    # -- naming ----------------------------------------------------------------------------
    def index(self, name: str) -> int:
        try:
            return self.names.index(name) + 1
        except ValueError:
            raise UserError(f"no node {name!r} in this lab",
                            hint=f"nodes: {', '.join(self.names[:10])}") from None

    def address(self, name: str) -> str:
        return self.net.address(self.index(name))

    def anchor(self, name: str) -> int | None:
        """Host pid of the node's init, if the node is up."""
        try:
            pid = int((self.node_dir(name) / "anchor.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if is_anchor(pid, self.node_dir(name)) else None

    def _require_anchor(self, name: str) -> int:
        self.index(name)
        pid = self.anchor(name)
        if pid is None:
            raise LabError(f"node {name} is down")
        return pid

    def node_of_pid(self, pid: int) -> str | None:
        """The node whose pid namespace holds host pid `pid` (for the reboot socket)."""
        try:
            ns = Path(f"/proc/{pid}/ns/pid").stat().st_ino
        except OSError:
            return None
        for name in self.names:
            anchor = self.anchor(name)
            with contextlib.suppress(OSError):
                if anchor is not None and Path(f"/proc/{anchor}/ns/pid").stat().st_ino == ns:
                    return name
        return None

    # -- bring-up --------------------------------------------------------------------------
    def _check_free(self) -> None:
        if Path(f"/sys/class/net/{self.net.bridge}").exists():
            raise UserError(f"interface {self.net.bridge} exists: a lab with prefix "
                            f"{self.net.prefix!r} is already up",
                            hint="use another prefix, or `netops lab down` that lab")
        for kind in ("addr", "route"):
            out = subprocess.run(["ip", "-j", "-4", kind], capture_output=True, text=True,
                                 check=True).stdout
            for entry in json.loads(out or "[]"):
                nets = [f"{a['local']}/{a['prefixlen']}" for a in entry.get("addr_info", [])]
                if entry.get("dst") not in (None, "default"):
                    nets.append(entry["dst"])
                for n in nets:
                    if ipaddress.IPv4Network(n, strict=False).overlaps(self.net.subnet):
                        raise UserError(f"lab subnet {self.net.subnet} overlaps {n} on this "
                                        "machine", hint="pick another --subnet in 198.18.0.0/15")
        if any(c in str(self.directory) for c in ",:\n\t "):
            raise UserError(f"lab directory {self.directory}: no spaces, ',' or ':' (they "
                            "would end up in overlayfs mount options)")
        for root in FORBIDDEN_ROOTS:
            if self.directory == Path(root) or Path(root) in self.directory.parents:
                raise UserError(f"lab directory {self.directory} is under {root}, which "
                                "every node overlays or replaces", hint="use another --dir")

    def up(self, names: Sequence[str], *, etcd: bool = True, kube: bool = True,
           workers: int | None = None, progress: Callable[[str], None] | None = None) -> None:
        """Build every node in parallel, then write state, inventory, ssh_config, known_hosts.
        `kube`: also serve the Kubernetes API stand-in and write DIR/kubeconfig (a benchmark
        lab leaves it out: its sync loop costs controller CPU). A failed bring-up tears down
        what it built."""
        check_host(etcd=etcd)
        if Lab.is_up(self.directory):
            raise LabError(f"a lab is already up in {self.directory}")
        if self.state_path.exists():  # a dead lab (killed, or the machine rebooted): clear it
            Lab.load(self.directory).down()
        if len(set(names)) != len(names) or not names:
            raise UserError("lab up needs distinct node names")
        self.names = list(names)
        self.kube = kube
        self.net.address(len(self.names))  # room in the subnet?
        self._check_free()
        self._created_dir = not self.directory.exists()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        self._save_state("building")
        try:
            self._up(etcd, workers or min(16, len(self.names)), progress or (lambda _: None))
        except BaseException:
            with contextlib.suppress(Exception):
                self.down()
            raise

    def _up(self, etcd: bool, workers: int, progress: Callable[[str], None]) -> None:
        write_lab_dirs(self.directory)
        client_pub = client_key(self.directory)
        br, mac = self.net.bridge, self.net.bridge_mac()
        _ip_batch([f"link add {br} address {mac} type bridge",
                   f"link set dev {br} addrgenmode none",
                   f"addr add {self.net.gateway}/{self.net.cidr_len} dev {br}",
                   f"link set dev {br} up"])
        self._start_supervisor()
        hosts = [(n, self.address(n)) for n in self.names]
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            etcd_job = pool.submit(etcd_server.start, self.directory, self.net.gateway) \
                if etcd else None
            files = list(pool.map(lambda n: self._build(n, client_pub, hosts), self.names))
            if etcd_job is not None:
                pid, endpoint = etcd_job.result()
                self._etcd = {"pid": pid, "endpoint": endpoint}
        finally:
            # On failure or Ctrl-C, nodes not started yet are not built just to be torn down.
            pool.shutdown(wait=True, cancel_futures=True)
        progress(f"{len(files)} nodes booted")
        write_client_files(self.directory, files, self.etcd_endpoint, kube=self.kube)
        self._save_state("up")
        if self.kube:
            self._wait_kube_settled()

    def _wait_kube_settled(self) -> None:
        """The supervisor serves the Kubernetes API stand-in once the state says up; `up`
        returns when every node's kubelet has started its pods, so that a fresh lab holds
        still (tests compare snapshots of it)."""
        deadline = time.monotonic() + 30 + len(self.names) / 10
        while not (self.directory / "kubeconfig").exists() or not self.kube_settled():
            if time.monotonic() > deadline or not self.supervisor_alive():
                raise LabError(f"the lab's Kubernetes API did not start or settle; see "
                               f"{self.directory / 'supervisor.log'}")
            time.sleep(0.05)

    def kube_state(self) -> dict[str, Any]:
        """The API stand-in's saved state: `objects` (JSON objects) and `extra` (its kubelet's
        per-pod boot ids); empty before the supervisor first saves it."""
        try:
            data = json.loads((self.directory / "kube" / "state.json").read_text())
        except (OSError, ValueError):
            return {"objects": [], "extra": {}}
        return {"objects": data.get("objects", []), "extra": data.get("extra", {})}

    def kube_settled(self) -> bool:
        """True when every pod on a node whose kubelet runs has been started since its boot
        (or failed in an init container, as a pod under a fault may)."""
        data = self.kube_state()
        if not data["objects"]:
            return False
        started = data.get("extra", {}).get("started", {})
        live = {o["metadata"]["name"] for o in data["objects"] if o["kind"] == "Node"
                and any(c["type"] == "Ready" and c["status"] != "Unknown"
                        for c in o["status"].get("conditions", []))}
        for o in data["objects"]:
            if o["kind"] != "Pod" or o["spec"].get("nodeName") not in live:
                continue
            failed = any(c.get("state", {}).get("terminated", {}).get("exitCode")
                         for c in o.get("status", {}).get("initContainerStatuses", []))
            if o["metadata"]["uid"] not in started and not failed:
                return False
        return True

    def _build(self, name: str, client_pub: str, hosts: list[tuple[str, str]]) -> NodeFiles:
        node_dir = self.node_dir(name)
        node_dir.mkdir(parents=True, exist_ok=True)
        public = seed_node(node_dir, name, self.address(name), hosts, client_pub, self.defaults)
        self.boot(name, first=True)
        return NodeFiles(name, self.address(name), public)

    def _start_supervisor(self) -> None:
        import netops

        # The creator's import path, so boot hooks it registered import in the supervisor too.
        paths = [str(Path(netops.__file__).resolve().parent.parent),
                 *(p for p in sys.path if p and Path(p).is_dir())]
        env = {"PATH": os.environ.get("PATH", NODE_PATH), "PYTHONPATH": os.pathsep.join(paths)}
        with open(self.directory / "supervisor.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "netops.lab.supervisor",
                                     str(self.directory)], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, env=env, cwd="/",
                                    start_new_session=True)
        self._supervisor = proc.pid
        sock = self.directory / "ctl" / "reboot.sock"
        deadline = time.monotonic() + 15
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"lab supervisor did not start; see "
                               f"{self.directory / 'supervisor.log'}")
            time.sleep(0.02)

    # -- boot ------------------------------------------------------------------------------
    def boot(self, name: str, *, first: bool = False) -> None:
        """Boot a node whose namespaces do not exist: fresh netns, mounts, /run and boot id;
        apply persisted state, run boot hooks, start sshd. `first` adds the runtime defaults."""
        with self._locked(self.node_dir(name) / "lock"):
            self._boot(name, first)

    def _boot(self, name: str, first: bool) -> None:
        index, node_dir = self.index(name), self.node_dir(name)
        veth, address = self.net.veth(index), self.address(name)

        def plug(pid: int) -> None:
            _ip_batch([f"link add {veth} type veth peer name eth0 netns {pid} "
                       f"address {self.net.mac(index)}",
                       f"link set dev {veth} addrgenmode none",
                       f"link set dev {veth} master {self.net.bridge} up"])

        pid = spawn_anchor(node_dir, self.directory, name, f"{address}/{self.net.cidr_len}",
                           self.net.gateway, plug)
        (node_dir / "anchor.pid").write_text(f"{pid}\n")
        hooks = [self._hook(h) for h in self.boot_hooks]
        ssh = f"systemctl start {SSH_UNIT}"
        script = plan_boot(NodeFS(pid)).script(self.defaults.runtime_sysctls if first else (),
                                               tail="" if hooks else ssh)
        boot_log = node_dir / "boot.log"
        run_in(pid, script, timeout=60, check=False, log=boot_log)
        for hook in hooks:
            hook(self, name, first)
        if hooks:
            run_in(pid, ssh, timeout=30, check=False, log=boot_log)
        _wait_port(address, 22, timeout=20, what=f"{name}: sshd")

    def _hook(self, spec: str) -> BootHook:
        if spec not in self._hook_cache:
            module, _, attr = spec.partition(":")
            self._hook_cache[spec] = getattr(importlib.import_module(module), attr)
        return self._hook_cache[spec]

    def reboot(self, name: str) -> None:
        """What the node's `reboot` does (through the supervisor): every process of the node
        dies (sessions drop), its netns, mounts, /run and boot id are replaced, then `boot`."""
        node_dir = self.node_dir(name)
        self.index(name)
        with self._locked(node_dir / "lock"):
            pid = self.anchor(name)
            if pid is not None:
                kill_anchor(pid, node_dir)
            _ip_batch([f"link del {self.net.veth(self.index(name))}"], check=False)
            new_boot_id(node_dir)
            self._boot(name, first=False)
        self._save_node_state(name)

    # -- inside a node ---------------------------------------------------------------------
    def node_exec(self, name: str, command: str, *, check: bool = True,
                  timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """`sh -c command` as root inside the node (not over SSH): for tests and faults."""
        return run_in(self._require_anchor(name), command, check=check, timeout=timeout)

    def node_path(self, name: str, path: str) -> Path:
        """The host path that reaches `path` inside the running node (its mounts included)."""
        return NodeFS(self._require_anchor(name)).host_path(path)

    def kubectl(self, *args: str, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The real kubectl against the lab's API stand-in (its own discovery cache, never the
        operator's ~/.kube); raises LabError when `check` and it fails."""
        env = {**os.environ, "KUBECONFIG": str(self.directory / "kubeconfig"),
               "KUBECACHEDIR": str(self.directory / "kube" / "cache")}
        done = subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env,
                              timeout=timeout)
        if check and done.returncode != 0:
            raise LabError(f"kubectl {shlex.join(args)} failed: {done.stderr.strip()}")
        return done

    def stop_sshd(self, name: str) -> None:
        self.node_exec(name, f"systemctl stop {SSH_UNIT}")
        _wait_port(self.address(name), 22, timeout=10, what=f"{name}: sshd stop", closed=True)

    def start_sshd(self, name: str) -> None:
        self.node_exec(name, f"systemctl start {SSH_UNIT}")
        _wait_port(self.address(name), 22, timeout=10, what=f"{name}: sshd")

    def sshd_pid(self, name: str) -> int | None:
        """Host pid of the node's listening sshd (a child of the node init once daemonized)."""
        anchor = self.anchor(name)
        if anchor is None:
            return None
        try:
            children = Path(f"/proc/{anchor}/task/{anchor}/children").read_text().split()
        except OSError:
            return None
        for child in children:
            with contextlib.suppress(OSError):
                if Path(f"/proc/{child}/comm").read_text().strip() == "sshd":
                    return int(child)
        return None

    # -- status ----------------------------------------------------------------------------
    def status(self) -> list[NodeStatus]:
        rows = []
        host_uptime = float(Path("/proc/uptime").read_text().split()[0])
        ticks = os.sysconf("SC_CLK_TCK")
        for name in self.names:
            anchor = self.anchor(name)
            boot_id = uptime = None
            if anchor is not None:
                boot_id = NodeFS(anchor).read("/proc/sys/kernel/random/boot_id")
                with contextlib.suppress(OSError, IndexError, ValueError):
                    stat = Path(f"/proc/{anchor}/stat").read_text().rsplit(")", 1)[1].split()
                    uptime = host_uptime - int(stat[19]) / ticks
            rows.append(NodeStatus(name, self.address(name), anchor is not None,
                                   self.sshd_pid(name) is not None,
                                   boot_id.strip() if boot_id else None, anchor, uptime))
        return rows

    def supervisor_alive(self) -> bool:
        return self._supervisor is not None and \
            cmdline_has(self._supervisor, "netops.lab.supervisor", str(self.directory))

    # -- teardown --------------------------------------------------------------------------
    def down(self) -> None:
        """Remove everything the lab created: processes, links, files. Safe to repeat."""
        for pid in {self._supervisor, *_pids_with("netops.lab.supervisor", str(self.directory))}:
            if pid is not None:
                terminate(pid, "netops.lab.supervisor", str(self.directory))
        # SIGKILL every node init first (each takes its whole pid namespace with it), then wait.
        inits = [p for p in _pids_with(MARKER, str(self.directory)) if is_anchor(p)]
        for pid in inits:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not all(zombie_or_gone(p) for p in inits) and time.monotonic() < deadline:
            time.sleep(0.005)
        links = [f"link del {self.net.veth(i)}" for i in range(1, len(self.names) + 1)
                 if Path(f"/sys/class/net/{self.net.veth(i)}").exists()]
        if Path(f"/sys/class/net/{self.net.bridge}").exists():
            links.append(f"link del {self.net.bridge}")
        if links:
            _ip_batch(links, check=False)
        etcd_pids = set(_pids_with("etcd", "--data-dir", str(self.directory / "etcd")))
        if self._etcd is not None:  # also when up failed before etcd's pid was recorded
            etcd_pids.add(int(str(self._etcd["pid"])))
        for pid in etcd_pids:
            etcd_server.stop(pid, self.directory)
        self._supervisor = None
        self._etcd = None
        self._remove_files()

    def _remove_files(self) -> None:
        """Only what the lab wrote: the directory may hold the user's own files."""
        for name in LAB_FILES:
            remove_tree(self.directory / name)
        if self._created_dir:
            with contextlib.suppress(OSError):
                self.directory.rmdir()


def _pids_with(*needles: str) -> list[int]:
    """Host pids whose command line holds every needle (node inits, stray helpers)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and cmdline_has(int(entry.name), *needles):
            found.append(int(entry.name))
    return found


def _ip_batch(commands: list[str], *, check: bool = True) -> None:
    args = ["ip", "-batch", "-"] if check else ["ip", "-force", "-batch", "-"]
    done = subprocess.run(args, input="\n".join(commands) + "\n", capture_output=True,
                          text=True)
    if check and done.returncode != 0:
        raise LabError(f"ip -batch failed: {done.stderr.strip()}\n  " + "\n  ".join(commands))


def _wait_port(address: str, port: int, *, timeout: float, what: str,
               closed: bool = False) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            open_ = True
        except OSError:
            open_ = False
        if open_ != closed:
            return
        if time.monotonic() > deadline:
            raise LabError(f"{what}: port {address}:{port} still "
                           f"{'open' if closed else 'closed'} after {timeout:g}s")
        time.sleep(0.01)
