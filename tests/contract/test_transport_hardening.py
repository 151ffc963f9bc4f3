"""Issue 14, the SSH transport's side: promises that hold when things go wrong, against real
OpenSSH servers (a loopback sshd, and one lab node for what needs a network namespace).

- the command in flight dies with its session (a controller killed with SIGKILL), unless it is
  `detached`;
- a secret embedded in a command never shows in the node's process list;
- output is bounded (head and tail, the rest counted), and so is the controller's memory;
- a node whose packets are silently dropped mid-step is found dead in under a minute, whatever
  the step's timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netops.errors import ConnectionLost
from netops.inventory.model import Host
from netops.lab import Lab
from netops.transport.base import Command, Completed, HostKeyMode
from netops.transport.bounded import HEAD_BYTES, TAIL_BYTES
from netops.transport.local import LocalTransport
from netops.transport.ssh import SshConnector, SshOptions, SshTransport
from netops.transport.sshconfig import SshConfig, resolve
from tests.conftest import skip_unless_lab_possible
from tests.contract.sshd import Sshd

REPO = Path(__file__).resolve().parents[2]
KEPT = HEAD_BYTES + TAIL_BYTES


def box(sshd: Sshd, config: Path | None = None) -> Host:
    return Host(name="box", address="127.0.0.1", port=sshd.port, user="root",
                key_file=str(sshd.client_key), become=False, groups=("all",),
                vars={"netops_ssh_config": str(config or sshd.ssh_config)})


def transport(host: Host) -> SshTransport:
    return SshConnector(SshOptions(host_keys=HostKeyMode.STRICT, connect_timeout=5)).transport(
        host)


def pids(pattern: str) -> list[int]:
    """Pids (this machine's pid namespace: the loopback sshd's commands) whose argv matches
    the regular expression `pattern`."""
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


def wait_for(what: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if what():
            return True
        time.sleep(step)
    return what()


CONTROLLER = textwrap.dedent("""\
    import sys
    from netops.inventory.model import Host
    from netops.transport.base import Command, HostKeyMode
    from netops.transport.ssh import SshConnector, SshOptions
    port, key, config, text, detached = sys.argv[1:]
    host = Host(name="box", address="127.0.0.1", port=int(port), user="root", key_file=key,
                become=False, groups=("all",), vars={"netops_ssh_config": config})
    t = SshConnector(SshOptions(host_keys=HostKeyMode.STRICT)).transport(host)
    t.run(Command(text, detached=detached == "1"), timeout=300)
""")


def controller(sshd: Sshd, text: str, *, detached: bool = False) -> subprocess.Popen[bytes]:
    """A netops controller process running `text` on the loopback node."""
    return subprocess.Popen(
        [sys.executable, "-c", CONTROLLER, str(sshd.port), str(sshd.client_key),
         str(sshd.ssh_config), text, "1" if detached else "0"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


# -- the command dies with its session ----------------------------------------------------------
def test_a_killed_controller_takes_its_command_down_with_it(sshd: Sshd) -> None:
    tag = f"{os.getpid() % 1000}.{time.monotonic_ns() % 10**6}"
    stubborn = f"{tag}1"  # ignores TERM: needs the KILL that follows it
    text = (f"sleep {tag} & (trap '' TERM; sleep {stubborn}) & "
            f"sleep {tag}; echo finished")
    proc = controller(sshd, text)
    try:
        assert wait_for(lambda: len(pids(f"^sleep {tag}")) == 3, 15), "command did not start"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed = time.monotonic()
    # the sleeps, and the guard, `timeout` and `sh -c` whose argv holds the tag too
    assert wait_for(lambda: not pids(tag), 10), \
        f"left on the node after its controller died: {pids(tag)}"
    took = time.monotonic() - killed
    # TERM at once, KILL (for the one that ignores TERM) 2 s later
    assert took < 5, f"took {took:.1f}s"


def test_a_detached_command_outlives_its_session(sshd: Sshd) -> None:
    tag = f"{os.getpid() % 1000}.{time.monotonic_ns() % 10**6}2"
    proc = controller(sshd, f"sleep {tag}", detached=True)
    try:
        assert wait_for(lambda: bool(pids(f"^sleep {tag}")), 15), "command did not start"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    time.sleep(3)
    left = pids(f"^sleep {tag}")
    try:
        assert left, "the detached command was killed with its session"
    finally:
        for pid in left:
            os.kill(pid, signal.SIGKILL)


def test_a_normal_end_kills_nothing_and_keeps_exit_codes(sshd: Sshd) -> None:
    t = transport(box(sshd))
    tag = f"{os.getpid() % 1000}.{time.monotonic_ns() % 10**6}3"
    # a background process the command leaves behind (with its output elsewhere) is its own
    # business: the guard kills only when the session ends first
    done = t.run(Command(f"sleep {tag} >/dev/null 2>&1 & echo started; exit 7"), timeout=30)
    assert (done.rc, done.stdout) == (7, "started\n")
    time.sleep(0.5)
    left = pids(f"^sleep {tag}")
    try:
        assert left, "a normal end killed the command's background process"
    finally:
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    assert t.run(Command("cat; exit 3"), stdin=b"in").stdout == "in"
    t.close()


# -- bounded output and memory ------------------------------------------------------------------
BIG = "head -c 5000000 /dev/zero | tr '\\0' x; echo END"


def check_bounded(done: Completed) -> None:
    assert done.truncated == 5_000_004 - KEPT
    assert done.stdout.startswith("x" * HEAD_BYTES + "\n[... ")
    assert f"[... {5_000_004 - KEPT} bytes cut ...]\n" in done.stdout
    assert done.stdout.endswith("x" * 1000 + "END\n")
    assert len(done.stdout) < KEPT + 100


def test_output_keeps_its_head_and_tail(sshd: Sshd) -> None:
    t = transport(box(sshd))
    check_bounded(t.run(Command(BIG), timeout=60))
    small = t.run(Command("echo hi; echo ho >&2"))
    assert (small.stdout, small.stderr, small.truncated) == ("hi\n", "ho\n", 0)
    # a batch bounds each command's output on its own, and keeps the others whole
    first, big, last = t.run_batch([Command("echo a"), Command(BIG), Command("echo c >&2; exit 4")],
                                   timeout=60)
    assert first is not None and big is not None and last is not None
    assert (first.stdout, first.truncated) == ("a\n", 0)
    check_bounded(big)
    assert (last.rc, last.stderr, last.truncated) == (4, "c\n", 0)
    t.close()
    check_bounded(LocalTransport().run(Command(BIG)))


def test_exec_reports_truncated_output(sshd: Sshd) -> None:
    from netops.engine.adhoc import _exec

    t = transport(box(sshd))
    assert _exec(t, Command(BIG), 60).to_json()["truncated"] is True
    assert _exec(t, Command("echo hi"), 60).to_json()["truncated"] is False
    t.close()


MEMORY = textwrap.dedent("""\
    import resource, sys, threading
    from netops.inventory.model import Host
    from netops.transport.base import Command, HostKeyMode
    from netops.transport.ssh import SshConnector, SshOptions
    port, key, config, hosts, size = sys.argv[1:]
    connector = SshConnector(SshOptions(host_keys=HostKeyMode.STRICT))
    ts = [connector.transport(Host(name="box", address="127.0.0.1", port=int(port), user="root",
                                   key_file=key, become=False, groups=("all",),
                                   vars={"netops_ssh_config": config}))
          for _ in range(int(hosts))]
    for t in ts:
        t.run(Command("echo warm"), timeout=30)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results = []
    def one(t):
        results.append(t.run(Command(f"head -c {size} /dev/zero"), timeout=300))
    threads = [threading.Thread(target=one, args=(t,)) for t in ts]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert len(results) == len(ts) and all(r.ok for r in results)
    assert all(r.truncated == int(size) - 2**20 for r in results), [r.truncated for r in results]
    print(after - before)
""")


def test_memory_stays_bounded_for_10_hosts_printing_200_mb_each(sshd: Sshd) -> None:
    size = 200_000_000
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", MEMORY, str(sshd.port), str(sshd.client_key),
         str(sshd.ssh_config), "10", str(size)],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=240)
    assert done.returncode == 0, done.stderr
    grew_mb = int(done.stdout.split()[-1]) / 1024
    print(f"10 x {size / 1e6:.0f} MB: peak RSS grew {grew_mb:.1f} MB "
          f"in {time.monotonic() - started:.1f}s")
    assert grew_mb < 100


# -- a lab node: secrets off the process list, a dead peer found fast ---------------------------
NODE = "chick1"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    skip_unless_lab_possible()
    lab = Lab(tmp_path_factory.mktemp("hardening") / "lab", subnet="198.19.161.0/24",
              prefix="nt161")
    try:
        lab.up([NODE], etcd=False, kube=False)
        yield lab
    finally:
        lab.down()


def node(lab: Lab, config: Path | None = None, *, user: str = "root") -> Host:
    return Host(name=NODE, address=lab.address(NODE), port=22, user=user,
                key_file=str(lab.key_path), become=True, groups=("all",),
                vars={"netops_ssh_config": str(config or lab.ssh_config_path)})


def test_a_secret_never_shows_in_the_node_process_list(lab: Lab) -> None:
    secret = f"hunter2-{time.monotonic_ns()}"
    t = transport(node(lab))
    seen: list[str] = []
    results: dict[str, object] = {}

    def go() -> None:
        results["one"] = t.run(
            Command(f"sleep 3; echo 'got {secret}'; cat", secrets=frozenset({secret}),
                    become=True),
            stdin=b"data in", timeout=60)
        results["batch"] = t.run_batch(
            [Command("echo plain"),
             Command(f"sleep 2; echo '{secret}' >&2", secrets=frozenset({secret}))],
            timeout=60)

    worker = threading.Thread(target=go)
    worker.start()
    while worker.is_alive():
        seen.append(lab.node_exec(NODE, "ps -eo args", check=False).stdout)
        time.sleep(0.1)
    worker.join()
    t.close()
    one = results["one"]
    assert isinstance(one, Completed) and (one.rc, one.stdout) == (0, f"got {secret}\ndata in")
    batch = results["batch"]
    assert isinstance(batch, list) and batch[0].stdout == "plain\n"
    assert batch[1].stderr == f"{secret}\n"
    assert any("sleep 3" in ps for ps in seen) and any("sleep 2" in ps for ps in seen), \
        "the process list was never sampled while the commands ran"
    assert not [ps for ps in seen if secret in ps]


def test_ssh_config_server_alive_is_honoured(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host fast\n  ServerAliveInterval 2\n  ServerAliveCountMax 5\n"
                      "Host off\n  ServerAliveInterval 0\n")
    parsed = SshConfig((config,))
    fast = resolve(parsed, "fast", "fast", None, "root", None)
    assert (fast.server_alive_interval, fast.server_alive_count_max) == (2, 5)
    off = resolve(parsed, "off", "off", None, "root", None)
    assert off.server_alive_interval == 0
    default = resolve(parsed, "other", "other", None, "root", None)
    # netops' defaults: dead after 10 x (3 + 1) = 40 s of silence
    assert (default.server_alive_interval, default.server_alive_count_max) == (10, 3)


def lost_within(t: SshTransport, text: str, cut: Callable[[], None], limit: float) -> float:
    """Run a silent command with the default step timeout (300 s), `cut` the node off once it
    runs, and return how long it took the transport to raise ConnectionLost."""
    t.run(Command("true"))
    failure: list[BaseException] = []
    cut_at: list[float] = []

    def go() -> None:
        try:
            t.run(Command(text), timeout=300)
        except BaseException as e:
            failure.append(e)

    worker = threading.Thread(target=go, daemon=True)
    worker.start()
    time.sleep(1)
    cut()
    cut_at.append(time.monotonic())
    worker.join(limit)
    assert not worker.is_alive(), f"no ConnectionLost within {limit:g}s"
    took = time.monotonic() - cut_at[0]
    assert failure and isinstance(failure[0], ConnectionLost), failure
    return took


def test_a_node_that_drops_every_packet_is_found_dead_in_under_a_minute(lab: Lab) -> None:
    # netops' defaults (no ServerAlive* in the lab's ssh_config), the default step timeout
    t = transport(node(lab))
    try:
        took = lost_within(t, "sleep 280", lambda: lab.node_exec(NODE, "iptables -I INPUT -j DROP"),
                           60)
    finally:
        lab.node_exec(NODE, "iptables -D INPUT -j DROP", check=False)
        t.close()
    print(f"dead peer found in {took:.1f}s")
    assert took < 60


def test_a_hung_sshd_is_found_dead_by_ssh_level_probes(sshd: Sshd, tmp_path: Path) -> None:
    # a stopped sshd: the kernel still ACKs every TCP segment, so only SSH-level probes can
    # tell; ServerAliveInterval/CountMax from ssh_config
    config = tmp_path / "ssh_config"
    config.write_text("Host box\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n"
                      + sshd.ssh_config.read_text())
    t = transport(box(sshd, config))
    stopped: list[int] = []
    text = f"sleep 280.{time.monotonic_ns() % 10**6}"

    def stop_session_sshd() -> None:
        assert wait_for(lambda: bool(pids(f"^{text}")), 5)
        pid = pids(f"^{text}")[0]
        while not Path(f"/proc/{pid}/comm").read_text().startswith("sshd"):
            pid = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        os.kill(pid, signal.SIGSTOP)
        stopped.append(pid)

    try:
        took = lost_within(t, text, stop_session_sshd, 20)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        t.close()
    assert took < 1 * (2 + 1) + 2, f"took {took:.1f}s"
