"""netops against OpenSSH, paramiko, asyncssh, Fabric, pyinfra and ansible-core on a lab.

    python3 bench/run.py --nodes 10,50,100 --repeat 3        # as root; writes bench/RESULTS.md

For each N it builds a lab of N real sshd nodes, then runs every tool on the same five
read-only commands (`commands.py`), interleaved, `--repeat` times, with host-key checking on
everywhere and clean node shells (the lab binds an empty /root). Each peer is installed in its
own virtual environment under bench/.venvs the first time, and so is netops (this checkout,
reinstalled on every run). Reports medians of wall seconds,
client CPU seconds (user+system of the tool and everything it ran) and peak RSS.
"""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENVS = BENCH / ".venvs"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

from commands import COMMANDS  # noqa: E402

from netops.lab import Lab  # noqa: E402

PEERS = {  # venv name -> what pip installs into it
    "paramiko": ["paramiko"],
    "asyncssh": ["asyncssh"],
    "fabric": ["fabric"],
    "pyinfra": ["pyinfra>=3,<4"],
    "ansible": ["ansible-core>=2.19,<2.20"],
}
KEX = "curve25519-sha256"
Sample = tuple[float, float, float, int]
"""wall seconds, CPU seconds, peak RSS MB, exit code"""


@functools.cache
def netops_bin() -> Path:
    """The bin/ of netops' own virtual environment, as the peers have theirs: this checkout
    installed (not editable) afresh on every benchmark run, so that its bytecode is compiled
    at install time as theirs is, and no start-up file of the controller's Python (an editable
    finder, another tool's .pth) runs."""
    python = VENVS / "netops" / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENVS / "netops")], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        str(REPO)], check=True)
    else:  # this checkout afresh; then whatever dependency it has gained since (click)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--no-deps", "--force-reinstall", str(REPO)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        str(REPO)], check=True)
    shutil.rmtree(REPO / "build", ignore_errors=True)  # pip's build tree of a local path
    return python.parent


def venv_bin(name: str) -> Path:
    """The bin/ of the peer's own virtual environment, created on first use."""
    python = VENVS / name / "bin" / "python"
    if not python.exists():
        print(f"installing {name} into {VENVS / name} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        *PEERS[name]], check=True)
    return python.parent


def tools(lab: Lab, work: Path) -> dict[str, Callable[[], list[str]]]:
    """Each tool's command line, built (and its venv installed) only when it is selected."""
    d = lab.directory
    names = " ".join(lab.names)
    netops = netops_bin()
    joined = "; ".join(COMMANDS)
    openssh = (f"for h in {names}; do ssh -F {d}/ssh_config -o KexAlgorithms={KEX} "
               f"-o BatchMode=yes $h {shlex.quote(joined)} >/dev/null & done; wait")
    inventory = work / "pyinfra_inventory.py"
    inventory.write_text(
        "hosts = [" + ", ".join(
            f"({lab.address(n)!r}, {{'ssh_user': 'root', 'ssh_key': {str(d / 'id_ed25519')!r},"
            f" 'ssh_known_hosts_file': {str(d / 'known_hosts')!r},"
            f" 'ssh_strict_host_key_checking': 'yes'}})" for n in lab.names) + "]\n")
    deploy = work / "pyinfra_deploy.py"
    deploy.write_text("from pyinfra.operations import server\n"
                      + "".join(f"server.shell(name={c!r}, commands=[{c!r}])\n"
                                for c in COMMANDS))
    (work / "ansible.cfg").write_text(
        "[defaults]\nhost_key_checking = True\ngathering = explicit\n"
        f"forks = {len(lab.names)}\nstdout_callback = minimal\n"
        "[ssh_connection]\npipelining = True\n"
        f"ssh_args = -F {d}/ssh_config -o UserKnownHostsFile={d}/known_hosts "
        f"-o StrictHostKeyChecking=yes -o KexAlgorithms={KEX} -o ControlMaster=auto "
        "-o ControlPersist=60s\n")
    (work / "play.yaml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        + "".join(f"    - shell: {c!r}\n" for c in COMMANDS))
    d_ = str(d)
    scripts = work / "diagnose"
    diagnose_ssh = (f"for h in {names}; do ssh -F {d}/ssh_config -o KexAlgorithms={KEX} "
                    f"-o BatchMode=yes $h sh -s < {scripts}/$h.sh >/dev/null & done; wait")
    return {
        "openssh (joined)": lambda: ["bash", "-c", openssh],
        "netops run": lambda: [str(netops / "netops"), "-i", str(lab.inventory_path),
                               "--runbooks", str(BENCH / "runbooks"), "--journal",
                               str(work / "journal.db"), "run", "bench-5", "--yes",
                               "--forks", str(len(lab.names))],
        "paramiko minimal": lambda: [str(venv_bin("paramiko") / "python"),
                                     str(BENCH / "paramiko_min.py"), d_],
        "paramiko tuned": lambda: [str(venv_bin("paramiko") / "python"),
                                   str(BENCH / "paramiko_tuned.py"),
                                   d_],
        "asyncssh": lambda: [str(venv_bin("asyncssh") / "python"),
                             str(BENCH / "asyncssh_bench.py"), d_],
        "fabric ThreadingGroup": lambda: [str(venv_bin("fabric") / "python"),
                                          str(BENCH / "fabric_bench.py"), d_],
        "pyinfra": lambda: [str(venv_bin("pyinfra") / "pyinfra"), str(inventory), str(deploy),
                            "-y", "--parallel", str(len(lab.names))],
        "ansible-core": lambda: [str(venv_bin("ansible") / "ansible-playbook"), "-i",
                                 str(lab.inventory_path), str(work / "play.yaml")],
        # the diagnose workload: every library runbook's node checks, with its own lower bound
        "openssh diagnose (joined)": lambda: [*_record_diagnose(lab, scripts), "bash", "-c",
                                              diagnose_ssh],
        "netops diagnose": lambda: [str(netops / "netops"), "-i",
                                    str(lab.inventory_path), "--runbooks",
                                    str(REPO / "netops" / "runbooks"), "--journal",
                                    str(work / "journal.db"), "diagnose", *SELECT,
                                    "--forks", str(len(lab.names))],
    }


DIAGNOSE = ("openssh diagnose (joined)", "netops diagnose")
NODE_RUNBOOKS = ("check-ip-forward", "check-bridge-nf", "iptables-forward-accept",
                 "flush-stale-ipam", "networkd-unmanage-veth", "reset-flannel-subnet",
                 "check-cni-config", "hairpin-mode", "check-conntrack")
"""The node-level library (issue 8: "all node-level checks"); the Kubernetes-facing runbooks
add controller-side kubectl calls, and a benchmark lab serves no Kubernetes API."""
SELECT = [a for r in NODE_RUNBOOKS for a in ("-r", r)]


def _record_diagnose(lab: Lab, scripts: Path) -> list[str]:
    """Write each node's diagnose commands (as netops runs them, recorded by one untimed run
    of netops diagnose) for the joined-OpenSSH bound; returns no argv of its own."""
    subprocess.run([sys.executable, str(BENCH / "diagnose_commands.py"),
                    str(lab.inventory_path), str(scripts), "--runbooks",
                    str(REPO / "netops" / "runbooks"), "--", *SELECT,
                    "--forks", str(len(lab.names))],
                   cwd=scripts.parent, check=False, stdout=subprocess.DEVNULL,
                   env={**os.environ, "HOME": str(scripts.parent)})
    return []


def measure(argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> Sample:
    """(wall s, CPU s, peak RSS MB, exit code) of one run of `argv` and all it started;
    its stderr goes to `log` (bench/.work/) for a look when a tool reports errors."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log.open("wb") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def bench(n: int, repeat: int, only: Callable[[str], bool],
          loads: list[str]) -> dict[str, list[Sample]]:
    with tempfile.TemporaryDirectory(prefix="netops-bench-") as tmp:
        work = Path(tmp)
        lab = Lab(work / "lab", subnet="198.18.0.0/17", prefix="nb")
        t = time.perf_counter()
        lab.up([f"node{i}" for i in range(1, n + 1)], etcd=False, kube=False)
        # Every tool negotiates curve25519 (issue 8); netops and paramiko would otherwise
        # start with the post-quantum hybrid. Host * comes last: it only fills what is unset.
        with open(lab.ssh_config_path, "a") as f:
            f.write(f"\nHost *\n  KexAlgorithms {KEX}\n")
        print(f"N={n}: lab up in {time.perf_counter() - t:.1f}s", file=sys.stderr)
        try:
            runs = {k: build() for k, build in tools(lab, work).items() if only(k)}
            env = {**os.environ, "ANSIBLE_CONFIG": str(work / "ansible.cfg"),
                   "HOME": str(work)}  # no ~/.ssh, no start-up files of the controller
            results: dict[str, list[Sample]] = {k: [] for k in runs}
            loads.append(f"{os.getloadavg()[0]:.1f}")
            for r in range(repeat):
                for name, argv in runs.items():
                    log = BENCH / ".work" / f"{name.split(' (')[0].replace(' ', '-')}-{n}.log"
                    wall, cpu, rss, rc = measure(argv, work, env, log)
                    results[name].append((wall, cpu, rss, rc))
                    print(f"  N={n} #{r + 1} {name:26s} {wall:7.2f}s cpu {cpu:6.2f}s "
                          f"rss {rss:6.0f}MB rc {rc} load {os.getloadavg()[0]:.1f}",
                          file=sys.stderr)
            loads.append(f"{os.getloadavg()[0]:.1f}")
            return results
        finally:
            lab.down()


def table(n: int, results: dict[str, list[Sample]], loads: list[str]) -> list[str]:
    rows = [f"### N = {n}", "", f"1-minute load average before / after: {' / '.join(loads)}",
            ""]
    run = {k: v for k, v in results.items() if k not in DIAGNOSE}
    diag = {k: v for k, v in results.items() if k in DIAGNOSE and v}
    rows += _rows(run, "openssh (joined)")
    if diag:
        rows += ["Diagnose workload (every library runbook's node checks):", "",
                 *_rows(diag, "openssh diagnose (joined)")]
    return rows


def _rows(results: dict[str, list[Sample]], base_name: str) -> list[str]:
    med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3))
           for k, v in results.items() if v}
    base = med.get(base_name, (1.0,))[0]
    rows = ["| tool | wall s | ratio | client CPU s | peak RSS MB | errors |",
            "|---|---|---|---|---|---|"]
    for k, (wall, cpu, rss) in sorted(med.items(), key=lambda kv: kv[1][0]):
        ok = (0, 1) if k == "netops diagnose" else (0,)  # 1: it found broken nodes
        errors = sum(1 for x in results[k] if x[3] not in ok)
        rows.append(f"| {k} | {wall:.2f} | {wall / base:.2f} | {cpu:.2f} | {rss:.0f} | "
                    f"{errors}/{len(results[k])} |")
    return [*rows, ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", default="10,50,100")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tools", default="", help="comma-separated substrings (default: all)")
    ap.add_argument("--ansible-max", type=int, default=100,
                    help="skip ansible-core above this many nodes (it takes ~0.7 s per node)")
    ap.add_argument("--diagnose-at", default="10,100",
                    help="the node counts at which the diagnose workload runs too")
    ap.add_argument("--out", default=str(BENCH / "RESULTS.md"))
    a = ap.parse_args()
    # a SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so that `bench` tears its lab down
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    wanted = [t.strip() for t in a.tools.split(",") if t.strip()]

    def selector(n: int) -> Callable[[str], bool]:
        def only(name: str) -> bool:
            if name == "ansible-core" and n > a.ansible_max:
                return False
            if name in DIAGNOSE and str(n) not in a.diagnose_at.split(","):
                return False
            return not wanted or any(w in name for w in wanted)

        return only

    lines = ["# Benchmark results", "", f"`python3 bench/run.py --nodes {a.nodes} --repeat "
             f"{a.repeat}` on {os.cpu_count()} cores; medians of {a.repeat} interleaved runs; "
             "the 5 read-only commands of `bench/commands.py` per node; ratio = wall / joined "
             "OpenSSH (for diagnose: / the same commands joined, one OpenSSH process per node); "
             "client CPU = user+system of the tool and its children; `netops diagnose` exits 1 "
             "because the lab's nodes really are broken for two runbooks (not an error).", ""]
    for n in (int(x) for x in a.nodes.split(",")):
        loads: list[str] = []
        lines += table(n, bench(n, a.repeat, selector(n), loads), loads)
        Path(a.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
