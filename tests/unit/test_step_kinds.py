"""A step kind is one module (issue 16 item 2): its `Args` give the format, its declared
`reads` are exactly what its run sends first, and the registry is the only list of kinds."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from netops.engine.host import guarded
from netops.engine.prepare import Overrides, build_plan
from netops.engine.readahead import predict
from netops.errors import LoadError
from netops.inventory.load import load_inventory
from netops.runbook.load import load_runbook
from netops.runbook.model import KIND_NAMES, arg_fields, kind_spec
from netops.steps import registry
from netops.steps.base import Expect, StepContext, arg
from netops.transport.base import Command, Completed

PACKAGE = Path(__file__).resolve().parents[2] / "netops"

# One example of every kind, as a runbook step would give it (templates already rendered).
EXAMPLES: dict[str, dict[str, Any]] = {
    "check": {"command": "uname -r", "expect": Expect(stdout="6.1")},
    "shell": {"command": "touch /x", "unless": "test -e /x"},
    "kubectl": {"command": "get nodes", "unless": "true"},
    "local": {"command": "echo hi", "unless": "false"},
    "wait": {"check": "pgrep kubelet", "timeout_s": 2.0, "interval_s": 1.0},
    "sysctl": {"key": "net/ipv4/ip_forward", "value": "1", "persist": "/etc/sysctl.d/k.conf"},
    "file": {"path": "/etc/motd", "content": "hi\n", "mode": "0644"},
    "systemd": {"unit": "kubelet", "state": "started", "enabled": True},
    "reboot": {"timeout_s": 5.0},
}


class Recorder:
    """A node that records every command and answers each with rc 1 and no output."""

    host = "n1"

    def __init__(self) -> None:
        self.sent: list[Command] = []

    def run(self, cmd: Command, *, timeout: float | None = None,
            stdin: bytes | None = None) -> Completed:
        self.sent.append(cmd)
        return Completed(1, "", "", 0.0)

    def put(self, data: bytes, path: str, *, mode: int = 0o644) -> None:
        self.sent.append(Command(f"put {path}", readonly=False))

    def get(self, path: str) -> bytes:
        raise AssertionError("no kind fetches a file")

    def close(self) -> None:
        pass


def _ctx(node: Recorder, *, dry_run: bool, mutates: bool) -> StepContext:
    now = [0.0]  # time passes only while a kind sleeps (wait, reboot)
    return StepContext(transport=node, dry_run=dry_run, timeout=5, become=True,
                       mutates=mutates, clock=lambda: now[0],
                       sleep=lambda s: now.__setitem__(0, now[0] + s))


def test_the_registry_lists_every_kind_module_and_each_has_the_shape() -> None:
    modules = {p.stem for p in (PACKAGE / "steps").glob("*.py")
               if not p.stem.startswith("_")} - {"base", "registry", "sysctl_order"}
    assert set(registry.NAMES) == modules == set(EXAMPLES)
    assert KIND_NAMES == registry.NAMES
    for name in registry.NAMES:
        kind = registry.kind(name)
        params = kind.Args.__dataclass_params__
        assert params.frozen, name
        assert all(f.metadata.get("help") for f in dataclasses.fields(kind.Args)), name
    # what each kind declares or takes from `Kind`'s defaults (a module leaves those out)
    table = {n: (registry.kind(n).MUTATES, registry.kind(n).MUTATES_OVERRIDABLE,
                 registry.kind(n).ON, registry.kind(n).ENDS_READ_AHEAD) for n in registry.NAMES}
    assert table == {
        "check": (False, False, "node", False), "shell": (True, True, "node", False),
        "kubectl": (True, True, "controller", False), "local": (True, True, "controller", False),
        "wait": (False, False, "node", True), "sysctl": (True, False, "node", False),
        "file": (True, False, "node", False), "systemd": (True, False, "node", False),
        "reboot": (True, False, "node", True)}


@pytest.mark.parametrize("name", list(EXAMPLES))
@pytest.mark.parametrize("dry_run", [False, True])
def test_declared_reads_are_what_the_run_sends_first(name: str, dry_run: bool) -> None:
    kind = registry.kind(name)
    args = kind.Args(**EXAMPLES[name])
    mutates = kind.MUTATES
    node = Recorder()
    declared = kind.reads(args, _ctx(node, dry_run=dry_run, mutates=mutates))
    assert node.sent == []  # reads is pure
    kind.run(args, _ctx(node, dry_run=dry_run, mutates=mutates))
    assert declared and all(c.readonly and c.become for c in declared)
    assert node.sent[:len(declared)] == declared
    if dry_run:  # the kind itself sends nothing that mutates (not only the transport's refusal)
        assert all(c.readonly for c in node.sent), node.sent
    else:
        assert any(not c.readonly for c in node.sent) == (name not in ("check", "wait")), name


@pytest.mark.parametrize("stdout,finding", [("6.1\n", False), ("5.4\n", True)])
def test_a_check_reports_output_cut_short(stdout: str, finding: bool) -> None:
    class Cut(Recorder):
        def run(self, cmd: Command, *, timeout: float | None = None,
                stdin: bytes | None = None) -> Completed:
            return Completed(0, stdout, "", 0.0, truncated=4096)

    check = registry.kind("check")
    out = check.run(check.Args(**EXAMPLES["check"]), _ctx(Cut(), dry_run=False, mutates=False))
    assert (out.truncated, out.finding) == (True, finding)


def test_a_guarded_shell_declares_only_its_first_guard_and_an_unguarded_one_none() -> None:
    shell = registry.kind("shell")
    ctx = _ctx(Recorder(), dry_run=True, mutates=True)
    both = shell.Args(command="make", unless="test -e /done", creates="/out")
    assert [c.text for c in shell.reads(both, ctx)] == ["test -e /out"]
    assert shell.reads(shell.Args(command="make"), ctx) == []
    read = _ctx(Recorder(), dry_run=True, mutates=False)
    assert [c.text for c in shell.reads(shell.Args(command="ls"), read)] == ["ls"]
    kubectl = registry.kind("kubectl")
    assert [c.text for c in kubectl.reads(kubectl.Args(command="get po"), read)] == [
        "kubectl get po"]


def test_the_format_is_derived_from_the_args() -> None:
    wait = kind_spec("wait")
    within = next(f for f in wait.fields if f.name == "within")
    assert (within.type, within.attr, within.default, within.required) == (
        "duration", "timeout_s", 300.0, False)
    assert kind_spec("sysctl").fields[1].type == "text"  # a number is read as its text
    assert kind_spec("systemd").fields[1].type == ("started", "stopped", "restarted",
                                                   "reloaded")
    assert [f.type for f in kind_spec("file").fields][2] == "strlist"

    @dataclasses.dataclass(frozen=True)
    class Odd:
        table: dict[str, str] = arg("no format has a mapping argument", default=None)  # noqa: RUF009

    with pytest.raises(TypeError, match="no runbook format"):
        arg_fields(Odd)


@pytest.mark.parametrize("body,message", [
    ("file: /x", "step 1: file needs exactly one of 'content' or 'lines'"),
    ("file: {path: /x, content: a, lines: [b]}",
     "step 1: file needs exactly one of 'content' or 'lines'"),
    ("file: {path: /x, content: a, mode: '999'}", "step 1: mode '999' must be octal"),
    ("systemd: kubelet", "step 1: systemd needs state, enabled or masked"),
])
def test_a_kind_refuses_arguments_that_do_not_work_together(tmp_path: Path, body: str,
                                                             message: str) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(f"name: demo\ndescription: d\nsteps:\n  - {body}\n")
    with pytest.raises(LoadError, match=message):
        load_runbook(path)


def test_loaded_args_are_the_kinds_frozen_args(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text("name: demo\ndescription: d\nsteps:\n"
                    "  - file: /x\n    lines: [a, b]\n"
                    "  - check: 'true'\n    expect: {stdout: ok}\n")
    rb = load_runbook(path)
    lines, check = rb.steps[0].args, rb.steps[1].args
    assert isinstance(lines, registry.kind("file").Args) and lines.lines == ("a", "b")
    assert check.expect == Expect(rc=0, stdout="ok")
    with pytest.raises(dataclasses.FrozenInstanceError):
        check.fail = True


def test_which_steps_a_resume_may_re_check(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(textwrap.dedent("""\
        name: demo
        description: d
        steps:
          - {shell: 'a', unless: 'true'}
          - {shell: 'b', creates: /b}
          - {shell: 'c'}
          - {kubectl: 'apply -f x', unless: 'true'}
          - {local: 'c'}
          - {sysctl: {key: k, value: 1}}
          - {file: /x, content: x}
          - {systemd: u, state: started}
          - {systemd: u, state: restarted}
          - {reboot: 5s}
    """))
    assert [guarded(s) for s in load_runbook(path).steps] == [
        True, True, False, True, False, True, True, True, False, False]


def test_a_template_that_needs_a_registered_result_is_not_predicted(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text("all:\n  hosts: {n1: {}}\n")
    rb = tmp_path / "rb.yaml"
    rb.write_text("name: rb\ndescription: d\nsteps:\n  - {id: a, check: 'true'}\n"
                  "  - {check: 'echo {{ a.stdout }}'}\n  - {check: 'echo {{ run.dry_run }}'}\n")
    inventory = load_inventory(inv)

    def reads(dry_run: bool) -> list[str | None]:
        plan = build_plan(load_runbook(rb), inventory, inventory.select(None), [], Overrides(),
                          dry_run=dry_run)
        return [r.command.text if r else None for r in predict(plan)["n1"]]

    assert reads(False) == ["true", None, "echo false"]
    # rendered as the run renders it: run.dry_run is known before the run (a dry run's reads
    # are one segment, without the unpredicted step's mark)
    assert reads(True) == ["true", "echo true"]


def test_help_loads_no_step_kind() -> None:
    code = ("import sys, netops.cli.main as m\nsys.argv = ['netops', '--help']\n"
            "try:\n    m.main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(n for n in sys.modules if n.startswith('netops.steps')),"
            " file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=PACKAGE.parent)
    assert done.stderr.strip().splitlines()[-1] == "[]"
