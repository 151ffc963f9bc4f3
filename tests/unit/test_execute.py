"""The executor with real local processes standing in for nodes: batches, tolerance, halts,
gates, once-steps, resume. Every "node" is a directory the commands write into."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from netops.engine.events import Recorder
from netops.engine.execute import World, execute
from netops.engine.host import ONCE
from netops.engine.prepare import Overrides, Resume, build_plan
from netops.engine.result import RunStatus, Status
from netops.inventory.load import load_inventory
from netops.runbook.load import load_runbook
from netops.transport.local import LocalTransport


def setup(tmp: Path, runbook: str, n: int = 4) -> tuple[object, object]:
    inv = tmp / "inventory.yaml"
    inv.write_text("all:\n  children:\n    etcd:\n      hosts: {n1: {}}\n    workers:\n"
                   "      hosts:\n" + "".join(f"        n{i}: {{}}\n" for i in range(2, n + 1)))
    rb = tmp / "rb.yaml"
    rb.write_text(textwrap.dedent(runbook).replace("DIR", str(tmp)))
    return load_inventory(inv), load_runbook(rb)


def run(tmp: Path, runbook: str, *, dry: bool = False, resume: Resume | None = None,
        **over: object) -> object:
    inventory, rb = setup(tmp, runbook)
    hosts = inventory.select(None)  # type: ignore[attr-defined]
    plan = build_plan(rb, inventory, hosts, [], Overrides(**over),  # type: ignore[arg-type]
                      dry_run=dry, resume=resume)
    world = World(connect=lambda h: LocalTransport(h.name), controller=LocalTransport,
                  observer=Recorder())
    return execute(plan, world)


def log(tmp: Path) -> list[str]:
    p = tmp / "log"
    return p.read_text().split() if p.exists() else []


MARK = """\
    name: mark
    description: each node appends its name; n3 fails
    steps:
      - id: mark
        shell: echo {{ host.name }} >> DIR/log; test {{ host.name }} != n3
"""


def test_tolerance_is_run_wide_and_halts_before_the_next_batch(tmp_path: Path) -> None:
    r = run(tmp_path, MARK, batch_size="1", max_fail="0")
    assert r.status is RunStatus.HALTED  # type: ignore[attr-defined]
    assert log(tmp_path) == ["n1", "n2", "n3"]
    statuses = {h: x.status for h, x in r.hosts.items()}  # type: ignore[attr-defined]
    assert statuses == {"n1": Status.CHANGED, "n2": Status.CHANGED, "n3": Status.FAILED,
                        "n4": Status.NOT_RUN}
    assert "not run: n4" in r.reason  # type: ignore[attr-defined]


def test_one_tolerated_failure_lets_the_run_finish_as_failed(tmp_path: Path) -> None:
    r = run(tmp_path, MARK, batch_size="1,2", max_fail="1")
    assert r.status is RunStatus.FAILED  # type: ignore[attr-defined]
    assert r.batches == (("n1",), ("n2", "n3"), ("n4",))  # type: ignore[attr-defined]
    assert sorted(log(tmp_path)) == ["n1", "n2", "n3", "n4"]


def test_dry_run_runs_checks_and_previews_changes(tmp_path: Path) -> None:
    book = """\
        name: dry
        description: d
        steps:
          - id: probe
            check: test -e DIR/{{ host.name }}.ok
          - shell: touch DIR/{{ host.name }}.ok
            when: probe.failed
    """
    (tmp_path / "n2.ok").touch()
    r = run(tmp_path, book, dry=True)
    statuses = {h: x.status for h, x in r.hosts.items()}  # type: ignore[attr-defined]
    assert statuses["n2"] is Status.OK and statuses["n1"] is Status.WOULD_CHANGE
    assert sorted(p.name for p in tmp_path.glob("*.ok")) == ["n2.ok"]


def test_a_dry_run_previews_only_the_nodes_it_reaches(tmp_path: Path) -> None:
    """An unguarded shell step sends nothing in a dry run; the preview must still connect
    first, so that a node it cannot reach is `unreachable`, not `would-change`."""
    from netops.errors import Unreachable

    class Down(LocalTransport):
        def reach(self) -> None:
            raise Unreachable(self.host, "198.51.100.9:22: timed out")

    inventory, rb = setup(tmp_path, """\
        name: fix
        description: d
        steps:
          - shell: touch DIR/{{ host.name }}.done
    """, n=2)
    hosts = inventory.select(None)  # type: ignore[attr-defined]
    plan = build_plan(rb, inventory, hosts, [], Overrides(max_fail="100%"),  # type: ignore[arg-type]
                      dry_run=True)
    world = World(connect=lambda h: Down(h.name) if h.name == "n2" else LocalTransport(h.name),
                  controller=LocalTransport, observer=Recorder())
    r = execute(plan, world)
    statuses = {h: x.status for h, x in r.hosts.items()}  # type: ignore[attr-defined]
    assert statuses == {"n1": Status.WOULD_CHANGE, "n2": Status.UNREACHABLE}
    assert not list(tmp_path.glob("*.done"))


def test_failing_gate_halts_and_before_results_reach_hosts(tmp_path: Path) -> None:
    book = """\
        name: gate
        description: g
        before:
          - id: leader
            check: hostname >/dev/null; echo from-{{ host.name }}
            group: etcd
        steps:
          - shell: echo {{ leader.stdout }}-{{ host.name }} >> DIR/log
        verify:
          - check: test {{ host.name }} != n2
        after:
          - local: echo after >> DIR/log
    """
    r = run(tmp_path, book, batch_size="2")
    assert r.status is RunStatus.HALTED  # type: ignore[attr-defined]
    assert sorted(log(tmp_path)) == ["from-n1-n1", "from-n1-n2"]  # not n3, n4, `after`
    assert r.before[0].status is Status.OK  # type: ignore[attr-defined]


def test_resume_skips_completed_mutations(tmp_path: Path) -> None:
    r = run(tmp_path, MARK.replace("; test {{ host.name }} != n3", ""),
            resume=Resume("old", {"n1": frozenset({"mark"}), ONCE: frozenset()}))
    assert sorted(log(tmp_path)) == ["n2", "n3", "n4"]
    assert r.hosts["n1"].steps[0].status is Status.SKIPPED  # type: ignore[attr-defined]


def test_the_cli_console_shows_node_output_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    """Rich would turn ":fire:" in a command's output into an emoji; netops' console must not."""
    from netops.cli.app import Settings

    Settings(inventory=Path("inventory.yaml")).console().print(
        "stderr: :fire: :ok: [bold]x[/]", markup=False)
    assert capsys.readouterr().err.strip() == "stderr: :fire: :ok: [bold]x[/]"


@pytest.mark.parametrize("terminal", [False, True])
def test_the_summary_names_every_host_its_outcome_and_the_first_failure(
        tmp_path: Path, terminal: bool) -> None:
    import io

    from rich.console import Console

    from netops.report import show_summary

    r = run(tmp_path, MARK, batch_size="100%", max_fail="100%")
    out = io.StringIO()
    show_summary(Console(file=out, force_terminal=terminal, width=200, emoji=False), r)
    text = out.getvalue()
    assert "mark — failed" in text
    rows = {line.split()[0 if not terminal else 1]: line for line in text.splitlines()
            if "n" in line and any(f"n{i} " in line for i in range(1, 5))}
    assert set(rows) == {"n1", "n2", "n3", "n4"}
    assert "changed" in rows["n1"] and "failed" in rows["n3"] and "(rc 1)" in rows["n3"]
    if not terminal:  # plain columns, as written
        assert text.splitlines()[1].split() == ["host", "batch", "status", "changed", "detail"]
        assert rows["n2"].split() == ["n2", "1", "changed", "1"]


def test_a_once_step_runs_on_a_selected_host_of_its_group_first(tmp_path: Path) -> None:
    """Issue 15: a once-step's host is one the run targets when its group has one; else the
    group's first host (a step that must run on an etcd host of a run on workers)."""
    book = """\
        name: leader
        description: l
        before:
          - {id: leader, shell: 'echo {{ host.name }} >> DIR/log', where: once, group: GROUP}
        steps:
          - {id: noop, check: 'true'}
    """
    for group, expected in (("workers", ["n3"]), ("etcd", ["n1"])):
        (tmp_path / "log").unlink(missing_ok=True)
        inventory, rb = setup(tmp_path, book.replace("GROUP", group))
        hosts = inventory.select("n3")  # type: ignore[attr-defined]
        plan = build_plan(rb, inventory, hosts, [], Overrides(),  # type: ignore[arg-type]
                          dry_run=False)
        world = World(connect=lambda h: LocalTransport(h.name), controller=LocalTransport,
                      observer=Recorder())
        assert execute(plan, world).status is RunStatus.OK
        assert log(tmp_path) == expected
