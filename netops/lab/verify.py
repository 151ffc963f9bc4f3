"""`netops lab verify`: every runbook proves itself on a lab, scenario by scenario.

A runbook's `tests:` scenarios each break one lab node (`inject` commands, or a netops lab
fault for state outside the node) and say how a fixed node looks (`healthy`, commands that do
not use the runbook's own steps). Per scenario, on its own node next to a node kept healthy:

    inject      the commands work; `healthy` fails on the broken node, passes on the good one
    dry-run     the dry run would change (or, report-only, fails on) only the broken node
    unchanged   ... and changed nothing on either node (a snapshot before and after)
    diagnose    `netops diagnose` flags the runbook on the broken node, not on the good one
    run         the run changes (report-only: fails on) the node
    healthy     `healthy` now passes
    re-run      a second run changes nothing
    reboot      after a reboot `healthy` still passes (report-only: nothing to check)
    diagnose-after  after the reboot diagnose says what `healthy` found: ok (a diagnose
                that calls a still-broken node ok is a miss too); report-only: broken while
                the finding persists a reboot (`persists: true`), else ok

Scenarios are placed one per node, in rounds: each round resets every node to the healthy
baseline, injects, and runs the checks of all its scenarios at once (runs target only their own
node, so they never wait on each other's node locks), the way tests/integration/test_matrix.py
covers the lab's faults. Every check goes through the real CLI (`python -m netops`, over SSH).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netops.errors import NetopsError, SourceSpan, UserError

if TYPE_CHECKING:
    from netops.lab.lab import Lab
    from netops.runbook.model import Runbook, Scenario

CHECKS = ("inject", "dry-run", "unchanged", "diagnose", "run", "healthy", "re-run", "reboot",
          "diagnose-after")
GOOD = "chick1"
"""The node kept healthy in every round (also the first etcd host, for `where: once`)."""

SNAPSHOT = r"""
sysctl -a 2>/dev/null | grep -E '^net\.(ipv4\.(ip_forward|conf\.all)|bridge)' | sort
iptables -S; iptables -t nat -S
for d in /etc /var/lib /run /tmp; do
  find "$d" -xdev \( -path /run/utmp -o -path /var/lib/dpkg -o -path /var/lib/apt \
       -o -path /run/sshd -o -name '*.pid' -o -path /var/log \) -prune -o -newer /etc/hostname \
       -printf '%p %y %s %m\n' 2>/dev/null
done | sort
find /etc/sysctl.d /etc/systemd /etc/modules-load.d /var/lib/netops /run -xdev -type f \
     ! -name '*.pid' ! -name utmp -exec md5sum {} + 2>/dev/null | sort
"""
"""Everything a runbook could change on a node, as text (a dry run must leave it as it was)."""


def snapshot(lab: Lab, nodes: Sequence[str] | None = None) -> dict[str, str]:
    """SNAPSHOT of each node (all of the lab's by default), all at once."""
    names = list(nodes or lab.names)
    return dict(zip(names, each(names, lambda n: lab.node_exec(n, SNAPSHOT, check=False).stdout),
                    strict=True))


def settled(lab: Lab, nodes: Sequence[str] | None = None, *,
            within: float = 20.0) -> dict[str, str]:
    """The nodes' snapshot once two in a row agree: right after a reset, a fault or a boot,
    the lab's kubelet and kube-proxy stand-ins may still be writing their rules."""
    seen = snapshot(lab, nodes)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = snapshot(lab, nodes)
        if now == seen:
            return now
        seen = now
    raise UserError(f"the lab's nodes did not settle within {within:g} s")


def each(items: Sequence[Any], work: Callable[[Any], Any]) -> list[Any]:
    """`work(item)` on every item at once (each lab node is its own namespace set)."""
    from netops.engine.parallel import each as parallel

    return parallel(list(items), work, max(1, len(items)))


# -- what to verify -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One scenario of one runbook."""

    runbook: Runbook
    scenario: Scenario

    @property
    def label(self) -> str:
        return f"{self.runbook.name}/{self.scenario.name}"


def cases(books: Mapping[str, Runbook]) -> list[Case]:
    """Every scenario of `books`; refuses a runbook without one, or an unknown lab fault."""
    from netops.errors import LoadError
    from netops.lab.faults import FAULTS

    out = []
    for rb in books.values():
        if not rb.tests:
            raise UserError(f"runbook {rb.name} has no `tests:` scenario",
                            SourceSpan(rb.source, 1, 1),
                            hint="add one (README: Proving a runbook), or leave it out")
        for sc in rb.tests:
            if sc.lab_fault and sc.lab_fault not in FAULTS:
                raise LoadError(f"test {sc.name!r}: unknown lab fault {sc.lab_fault!r}",
                                sc.span, "lab faults: " + ", ".join(FAULTS))
            out.append(Case(rb, sc))
    return out


def rounds(todo: Sequence[Case], slots: int) -> list[list[Case]]:
    """Cases in as few rounds of at most `slots` as can be, at most one scenario of a runbook
    per round (its runs and the controller-side state it touches, e.g. flannel's etcd prefix,
    are shared); the runbooks with the most scenarios are placed first."""
    by_book: dict[str, list[Case]] = {}
    for case in todo:
        by_book.setdefault(case.runbook.name, []).append(case)
    need = max([-(-len(todo) // slots), *(len(v) for v in by_book.values())], default=0)
    out: list[list[Case]] = [[] for _ in range(need)]
    for group in sorted(by_book.values(), key=len, reverse=True):
        for case in group:
            free = [r for r in out if len(r) < slots
                    and all(c.runbook.name != case.runbook.name for c in r)]
            if not free:
                free = [[]]
                out.append(free[0])
            min(free, key=len).append(case)
    return [r for r in out if r]


# -- outcomes ------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """The checks of one case: name -> (verdict, evidence); verdict ok, MISS or n/a (a check
    that does not apply: the healthy checks of a report-only scenario)."""

    case: Case
    node: str
    round: int
    checks: dict[str, tuple[str, str]] = field(default_factory=dict)

    def check(self, name: str, ok: bool | None, evidence: str = "") -> bool:
        verdict = "n/a" if ok is None else "ok" if ok else "MISS"
        self.checks[name] = (verdict, " ".join(evidence.split())[:400])
        return bool(ok)

    def passed(self, name: str) -> bool:
        return self.checks.get(name, ("MISS", ""))[0] != "MISS"

    @property
    def missed(self) -> bool:
        return not all(name in self.checks and self.passed(name) for name in CHECKS)

    def as_json(self) -> dict[str, Any]:
        return {"runbook": self.case.runbook.name, "scenario": self.case.scenario.name,
                "node": self.node, "round": self.round, "ok": not self.missed,
                "checks": {n: {"verdict": v, "evidence": ev}
                           for n, (v, ev) in self.checks.items()}}


# -- the CLI, as an operator runs it --------------------------------------------------------------
@dataclass
class Netops:
    """`python -m netops` against the lab: its inventory, a journal and state of its own."""

    lab: Lab
    home: Path
    runbook_dirs: Sequence[Path] = ()

    def __call__(self, *args: str, home: str = "", timeout: float = 900) -> Result:
        where = self.home / (home or "cli")
        where.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "NETOPS_INVENTORY": str(self.lab.inventory_path),
               "NETOPS_JOURNAL": str(where / "journal.db"), "XDG_STATE_HOME": str(where),
               "COLUMNS": "200"}
        env.pop("NETOPS_HOST_KEYS", None)
        dirs = [x for d in self.runbook_dirs for x in ("--runbooks", str(d))]
        done = subprocess.run([sys.executable, "-m", "netops", *dirs, *args], text=True,
                              capture_output=True, timeout=timeout, env=env, cwd=where)
        return Result(done.returncode, done.stdout, done.stderr)


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str

    def doc(self) -> dict[str, Any]:
        try:
            out = json.loads(self.stdout)
        except ValueError:
            return {}
        return out if isinstance(out, dict) else {}

    def status(self, host: str) -> str:
        return str(self.doc().get("hosts", {}).get(host, {}).get("status", "none"))

    def why(self, host: str) -> str:
        """What `host`'s run says for itself: its failed step, else its first finding, else
        its first change, with the step's note and output (or the CLI's stderr)."""
        steps = self.doc().get("hosts", {}).get(host, {}).get("steps", [])
        for pick in (lambda s: s.get("status") == "failed", lambda s: s.get("finding"),
                     lambda s: s.get("status") not in ("ok", "skipped")):
            step = next((s for s in steps if pick(s)), None)
            if step is not None:
                text = " ".join(str(step.get(k) or "") for k in ("note", "stderr", "stdout"))
                return f"{step.get('id')}: {step.get('status')} {text.strip()[:200]}"
        return self.stderr.strip()[-300:]


# -- one round ------------------------------------------------------------------------------------
@dataclass
class Round:
    """The scenarios of one round, each on its own node, and their outcomes."""

    lab: Lab
    netops: Netops
    placed: dict[str, Outcome]
    """node -> the outcome of the case placed there."""
    timings: dict[str, float] = field(default_factory=dict)

    def live(self) -> list[Outcome]:
        """The cases still worth checking (their scenario was injected)."""
        return [o for o in self.placed.values() if o.checks.get("inject", ("", ""))[0] == "ok"]

    def run(self) -> None:
        """Every check of every case of the round, phase by phase (`timings`: seconds)."""
        phases: list[tuple[str, Callable[[], object]]] = [
            ("reset", lambda: reset(self.lab)),
            ("inject", lambda: each(list(self.placed.values()), self.inject)),
            # the dry run first: the snapshot then sees a file that a "read-only" step
            # writes (diagnose would have written it before)
            ("dry-run", self.dry_runs),
            ("diagnose", lambda: self.diagnose("diagnose", after=False)),
            ("run", lambda: each(self.live(), lambda o: self.fix(o, "run"))),
            ("re-run", lambda: each(self.live(), lambda o: self.fix(o, "re-run"))),
            ("reboot", lambda: each(self.live(), self.reboot)),
            ("diagnose-after", lambda: self.diagnose("diagnose-after", after=True)),
        ]
        for name, work in phases:
            began = time.monotonic()
            work()
            self.timings[name] = round(time.monotonic() - began, 1)

    def healthy(self, node: str, sc: Scenario) -> tuple[bool, str]:
        """`healthy` on `node`: all pass, or the first command that failed and its output."""
        for command in sc.healthy:
            done = self.lab.node_exec(node, command, check=False, timeout=60)
            if done.returncode != 0:
                out = (done.stdout + done.stderr).strip()
                return False, f"`{command}` rc {done.returncode}: {out}"
        return True, "all pass"

    def inject(self, o: Outcome) -> None:
        sc = o.case.scenario
        try:
            if sc.lab_fault:
                from netops.lab import faults
                from netops.lab.faults_k8s import wait_started

                faults.FAULTS[sc.lab_fault](self.lab, o.node)
                if self.lab.kube:
                    wait_started(self.lab, o.node, timeout=60)
            for command in sc.inject:
                done = self.lab.node_exec(o.node, command, check=False, timeout=120)
                if done.returncode != 0:
                    o.check("inject", False, f"`{command}` rc {done.returncode}: "
                            f"{done.stderr or done.stdout}")
                    return
        except NetopsError as e:  # a lab fault that could not be injected
            o.check("inject", False, str(e))
            return
        self._inject_breaks(o)

    def _inject_breaks(self, o: Outcome) -> None:
        """A `healthy` that passes on the broken node (or fails on the good one) proves
        nothing."""
        sc = o.case.scenario
        if not sc.healthy:
            o.check("inject", True, "injected (report only: no healthy check)")
            return
        good, why_good = self.healthy(GOOD, sc)
        broken, why = self.healthy(o.node, sc)
        if not good:
            o.check("inject", False, f"healthy fails on the healthy {GOOD}: {why_good}")
        elif broken:
            o.check("inject", False, "healthy still passes after inject: the scenario "
                    "breaks nothing healthy can see")
        else:
            o.check("inject", True, f"healthy fails: {why}")

    def diagnose(self, check: str, *, after: bool) -> None:
        live = self.live()
        if not live:
            return
        args = ["diagnose", "--json", "--nodes", "all"]
        for o in live:
            rb = o.case.runbook.name
            args += ["-r", rb, *(x for v in o.case.scenario.var_args()
                                 for x in ("--var", f"{rb}.{v}"))]
        r = self.netops(*args)
        cells = r.doc().get("nodes", {})
        for o in live:
            rb = o.case.runbook.name
            want = "broken" if not after else _after_boot(o)
            got = {n: cells.get(n, {}).get(rb, {}) for n in (GOOD, o.node)}
            seen = {n: str(c.get("status", "none")) for n, c in got.items()}
            ok = seen == {GOOD: "ok", o.node: want}
            shown = f"{o.node} {seen[o.node]} (want {want}), {GOOD} {seen[GOOD]}"
            evidence = got[o.node].get("evidence") or r.stderr[-200:]
            o.check(check, ok, f"{shown}: {evidence}" if not ok or want == "broken" else shown)

    def dry_runs(self) -> None:
        """Every case's dry run at once, between two snapshots. A change on a case's own node
        is its dry run's; one on the healthy node (every dry run reads it) is blamed on the
        cases whose own node changed the same way, or, if none did, on all of them."""
        live = self.live()
        nodes = [GOOD, *(o.node for o in live)]
        before = settled(self.lab, nodes)
        each(live, self.dry_run)
        after = snapshot(self.lab, nodes)
        moved = {n: _changes(before[n], after[n]) for n in nodes}
        unclaimed = moved[GOOD] - {x for o in live for x in moved[o.node]}
        for o in live:
            blamed = {GOOD: (moved[GOOD] & moved[o.node]) | unclaimed,
                      o.node: moved[o.node]}
            o.check("unchanged", not any(blamed.values()), "; ".join(
                f"{n}: {', '.join(sorted(lines)[:3])}" for n, lines in blamed.items() if lines)
                or "snapshot of both nodes unchanged")

    def dry_run(self, o: Outcome) -> None:
        r = self._run(o, "--nodes", f"{GOOD},{o.node}", "--dry-run")
        want = {GOOD: "ok", o.node: "would-change" if o.case.scenario.fixed else "failed"}
        got = {n: r.status(n) for n in want}
        o.check("dry-run", got == want, f"{o.node} {got[o.node]} (want {want[o.node]}), "
                f"{GOOD} {got[GOOD]}: {r.why(o.node) if got != want else ''}")

    def _run(self, o: Outcome, *args: str) -> Result:
        vars_ = [x for v in o.case.scenario.var_args() for x in ("--var", v)]
        return self.netops("run", o.case.runbook.name, "--json", "--pause", "0",
                           "--max-fail", "100%", *vars_, *args, home=o.case.label)

    def fix(self, o: Outcome, check: str) -> None:
        """The run (or the re-run): changes the node, then ok; report-only: fails both times."""
        r = self._run(o, "--nodes", o.node, "--yes")
        sc = o.case.scenario
        want = ("changed" if check == "run" else "ok") if sc.fixed else "failed"
        got = r.status(o.node)
        o.check(check, got == want, f"{got} (want {want})"
                + (f": {r.why(o.node)}" if got != want or not sc.fixed else ""))
        if check == "run":
            ok, why = self.healthy(o.node, sc) if sc.fixed else (None, "report only")
            o.check("healthy", ok, why)

    def reboot(self, o: Outcome) -> None:
        """Reboot the node; `healthy` still passes once its kubelet started its pods again."""
        from netops.lab.faults_k8s import wait_started

        try:
            self.lab.reboot(o.node)
            if self.lab.kube:
                wait_started(self.lab, o.node, timeout=60)
        except NetopsError as e:
            o.check("reboot", False, str(e))
            return
        ok, why = self.healthy(o.node, o.case.scenario) if o.case.scenario.fixed \
            else (None, "report only")
        o.check("reboot", ok, why)


def _after_boot(o: Outcome) -> str:
    """What diagnose must say after the reboot: what `healthy` found then (a diagnose that
    calls a still-broken node ok misses it too); report-only: broken while it persists."""
    sc = o.case.scenario
    if not sc.fixed:
        return "broken" if sc.persists else "ok"
    return "ok" if o.passed("reboot") else "broken"


def _changes(a: str, b: str) -> set[str]:
    """The lines of snapshot `b` that are not in `a` (+) and the reverse (-)."""
    old, new = set(a.splitlines()), set(b.splitlines())
    return {f"+{x}" for x in new - old} | {f"-{x}" for x in old - new}


def reset(lab: Lab) -> None:
    """Every node back to the healthy baseline (what the last round's faults and fixes left
    is gone: a bare debug pod, a cordon)."""
    from netops.lab import faults

    if lab.kube:
        for pod in lab.kubectl("get", "pods", "-o", "name").stdout.split():
            if pod.startswith("pod/debug-"):  # the bare-pod fault's
                lab.kubectl("delete", pod, "--wait=false")
    each(list(lab.names), lambda n: faults.healthy(lab, n))
    if lab.kube:
        for node in lab.names:
            lab.kubectl("uncordon", node)


# -- the whole verification -----------------------------------------------------------------------
def lab_size(todo: Sequence[Case], slots: int = 7) -> int:
    """Nodes for the scenarios: the healthy one, then one per case of the fullest of the
    fewest rounds with at most `slots` at a time (three at least: the lab's etcd group, for
    `where: once`)."""
    return max(3, 1 + max((len(r) for r in rounds(todo, slots)), default=1))


def verify(books: Mapping[str, Runbook], runbook_dirs: Sequence[Path] = (), *,
           nodes: int | None = None, prefix: str | None = None, subnet: str | None = None,
           progress: Callable[[str], None] = lambda _: None) -> list[Outcome]:
    """Build a lab, check every scenario of `books`, tear the lab down (also on Ctrl-C)."""
    todo = cases(books)
    names = [f"chick{i}" for i in range(1, (nodes or lab_size(todo)) + 1)]
    if len(names) < 2:
        raise UserError("lab verify needs 2 nodes at least (one stays healthy)")
    plan = rounds(todo, len(names) - 1)
    out: list[Outcome] = []
    with _built(names, prefix, subnet, progress) as (lab, home):
        cli = Netops(lab, home, runbook_dirs)
        for i, group in enumerate(plan, 1):
            placed = {n: Outcome(c, n, i) for n, c in zip(names[1:], group, strict=False)}
            progress(f"round {i}/{len(plan)}: " + ", ".join(
                f"{o.case.label}@{o.node}" for o in placed.values()))
            done = Round(lab, cli, placed)
            try:
                done.run()
                progress(f"round {i} took " + ", ".join(f"{k} {v:g}s"
                                                        for k, v in done.timings.items()))
            except (NetopsError, OSError, subprocess.SubprocessError) as e:
                for o in placed.values():
                    o.check("error", False, f"round {i} stopped: {e}")
            out += placed.values()
    return out


@contextmanager
def _built(names: list[str], prefix: str | None, subnet: str | None,
           progress: Callable[[str], None]) -> Iterator[tuple[Lab, Path]]:
    from netops.lab.lab import check_host

    check_host(etcd=True)
    home = Path(tempfile.mkdtemp(prefix="netops-verify-"))
    try:
        lab = _free_lab(home / "lab", prefix, subnet)
        progress(f"building {len(names)} nodes (prefix {lab.net.prefix}, {lab.net.subnet}) in "
                 f"{lab.directory} ...")
        try:
            lab.up(names)
            yield lab, home
        finally:
            lab.down()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _free_lab(directory: Path, prefix: str | None, subnet: str | None) -> Lab:
    """A lab whose prefix and subnet no other lab on this machine uses (given ones as given)."""
    from netops.lab.lab import Lab

    if prefix and subnet:
        return Lab(directory, subnet=subnet, prefix=prefix)
    for i in range(10):
        lab = Lab(directory, subnet=subnet or f"198.18.{250 - i}.0/24", prefix=prefix or f"nv{i}")
        try:
            lab._check_free()
        except UserError:
            continue
        return lab
    raise UserError("no free lab prefix nv0..nv9 / subnet 198.18.241-250.0/24",
                    hint="give --prefix and --subnet")
