"""Read-ahead: which reads are predicted, how a batch is split, and that a run through it gives
exactly the results of a run without it (local processes stand in for nodes)."""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Sequence
from pathlib import Path

from netops.engine.events import Recorder
from netops.engine.execute import World, execute
from netops.engine.prepare import Overrides, build_plan
from netops.engine.readahead import Read, ReadAhead, predict, sleeps_for, wrap_all
from netops.inventory.load import load_inventory
from netops.runbook.load import load_runbook
from netops.transport.base import Command, Completed
from netops.transport.channel import batch_script, simple_command, split_batch
from netops.transport.local import LocalTransport

MARK = "--netops-test--"


class BatchingLocal(LocalTransport):
    """A local "node" that also runs batches (the same script the SSH transport sends) and
    counts what reached it."""

    def __init__(self, name: str, calls: list[str]) -> None:
        super().__init__(name)
        self.calls = calls

    def run(self, cmd: Command, *, timeout: float | None = None,
            stdin: bytes | None = None) -> Completed:
        self.calls.append(f"{self.host} run {cmd.text}")
        return super().run(cmd, timeout=timeout, stdin=stdin)

    def run_batch(self, cmds: Sequence[Command], *,
                  timeout: float | None = None) -> list[Completed | None]:
        self.calls.append(f"{self.host} batch {len(cmds)}")
        return local_batch(cmds, timeout=timeout)


def local_batch(cmds: Sequence[Command], *, timeout: float | None) -> list[Completed | None]:
    script = batch_script(cmds, MARK, sudo=False)
    argv = ["sh", "-c", script]
    if timeout is not None:
        argv = ["timeout", "-k", "1", f"{timeout:g}", *argv]
    done = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, check=False)
    return split_batch(done.stdout, done.stderr, MARK, len(cmds))


def setup(tmp: Path, runbook: str, dry: bool) -> object:
    inv = tmp / "inventory.yaml"
    inv.write_text("all:\n  hosts: {n1: {}, n2: {}}\n")
    rb = tmp / "rb.yaml"
    rb.write_text(textwrap.dedent(runbook).replace("DIR", str(tmp)))
    inventory = load_inventory(inv)
    return build_plan(load_runbook(rb), inventory, inventory.select(None), [], Overrides(),
                      dry_run=dry)


READS = """\
    name: reads
    description: checks, one conditional, one mutation, then more checks
    steps:
      - {id: a, check: 'echo a-{{ host.name }}'}
      - {id: b, check: 'echo b >&2; exit 3'}
      - {id: c, check: 'echo c', when: a.failed}
      - {id: d, check: 'printf no-newline', timeout: 7}
      - {id: e, shell: 'echo e >> DIR/log-{{ host.name }}', unless: 'test -e DIR/never'}
      - {id: f, check: 'cat DIR/log-{{ host.name }} 2>/dev/null || echo none'}
"""


def texts(reads: tuple[Read | None, ...]) -> list[str | None]:
    return [r.command.text if r else None for r in reads]


def test_prediction_stops_at_a_mutation_outside_a_dry_run(tmp_path: Path) -> None:
    real = predict(setup(tmp_path, READS, dry=False))  # type: ignore[arg-type]
    assert texts(real["n1"]) == ["echo a-n1", "echo b >&2; exit 3", None, "printf no-newline"]
    assert real["n1"][3] is not None and real["n1"][3].timeout == 7
    dry = predict(setup(tmp_path, READS, dry=True))  # type: ignore[arg-type]
    # a dry run mutates nothing: the guard of e and the check after it are predicted too, and
    # the `when:` step (not predicted) does not split them: one segment, one batch
    assert texts(dry["n2"]) == ["echo a-n2", "echo b >&2; exit 3", "printf no-newline",
                                f"test -e {tmp_path}/never",
                                f"cat {tmp_path}/log-n2 2>/dev/null || echo none"]


def test_wait_stops_prediction(tmp_path: Path) -> None:
    book = """\
        name: w
        description: d
        steps:
          - {id: a, check: 'true'}
          - {id: w, wait: 'true', timeout: 5s}
          - {id: b, check: 'true'}
    """
    assert texts(predict(setup(tmp_path, book, dry=True))["n1"]) == ["true"]  # type: ignore[arg-type]


def run(tmp: Path, runbook: str, *, dry: bool, ahead: bool) -> tuple[object, list[str]]:
    plan = setup(tmp, runbook, dry)
    calls: list[str] = []

    def connect(h: object) -> BatchingLocal:
        return BatchingLocal(h.name, calls)  # type: ignore[attr-defined]

    world = World(connect=wrap_all(connect, predict(plan)) if ahead else connect,  # type: ignore[arg-type]
                  controller=LocalTransport, observer=Recorder())
    return execute(plan, world), calls  # type: ignore[arg-type]


def outcome(run: object) -> dict[str, list[tuple[str, str, int | None, str, str]]]:
    return {h: [(s.id, str(s.status), s.rc, s.stdout, s.stderr) for s in r.steps]
            for h, r in run.hosts.items()}  # type: ignore[attr-defined]


def test_a_run_through_read_ahead_gives_the_same_results(tmp_path: Path) -> None:
    for dry in (True, False):
        # each host appends to its own file: the two run in parallel
        for h in ("n1", "n2"):
            (tmp_path / f"log-{h}").unlink(missing_ok=True)
        plain, plain_calls = run(tmp_path, READS, dry=dry, ahead=False)
        for h in ("n1", "n2"):
            (tmp_path / f"log-{h}").unlink(missing_ok=True)
        fast, calls = run(tmp_path, READS, dry=dry, ahead=True)
        assert outcome(fast) == outcome(plain)
        # a dry run: one segment per host; a real run: a and b, then (after the
        # unpredictable c) the rest
        assert sum("batch" in c for c in calls) == (2 if dry else 4)
        runs = [c for c in calls if " run " in c]
        if dry:
            assert runs == []  # every node read came from the batch
        else:
            # after the mutation, the last check asks the node itself (fresh state)
            assert sorted(runs) == sorted(
                f"{h} run {t}" for h in ("n1", "n2") for t in (
                    f"test -e {tmp_path}/never", "echo e >> " + f"{tmp_path}/log-{h}",
                    f"cat {tmp_path}/log-{h} 2>/dev/null || echo none"))
            assert len(plain_calls) == 12 and len(calls) == 10  # 3 reads -> 2 batches, per host


def test_batch_split_keeps_streams_codes_and_no_trailing_newline() -> None:
    cmds = [Command("printf x"), Command("echo out; echo err >&2; exit 4"),
            Command("cat; echo read-eof"), Command("exit 0 # a comment"),
            Command("printf '\\n\\n'")]
    got = local_batch(cmds, timeout=None)
    assert [(c.rc, c.stdout, c.stderr) for c in got if c] == [
        (0, "x", ""), (4, "out\n", "err\n"), (0, "read-eof\n", ""), (0, "", ""),
        (0, "\n\n", "")]


def test_a_command_in_a_batch_cannot_change_the_shell_of_the_next() -> None:
    # simple commands run in the batch's own shell (a fork less); anything that could change
    # that shell (cd, exit, assignments, set, exec, a sourced file) gets a subshell
    cmds = [Command("cd /"), Command("pwd"), Command("X=1"), Command("echo ${X:-unset}"),
            Command("set -e"), Command("false"), Command("echo still-here"),
            Command("exit 3"), Command("uname -s"), Command("exec true"), Command("echo end")]
    got = local_batch(cmds, timeout=None)
    here = subprocess.run(["pwd"], capture_output=True, text=True, check=True).stdout
    assert [(c.rc, c.stdout) for c in got if c] == [
        (0, ""), (0, here), (0, ""), (0, "unset\n"), (0, ""), (1, ""), (0, "still-here\n"),
        (3, ""), (0, "Linux\n"), (0, ""), (0, "end\n")]


def test_only_plain_external_commands_skip_the_subshell() -> None:
    plain = ["hostname", "uname -r", "sysctl -n net.ipv4.ip_forward", "ip -o -4 addr show dev eth0",
             "cat /proc/sys/kernel/random/boot_id", "/usr/sbin/iptables -S FORWARD"]
    shelly = ["cd /", "exit 3", "X=1", "X=1 env", "set -e", ". ./x", "exec true", "read x",
              "echo $HOME", "cat a | wc -l", "a; b", "a && b", "echo 'q'", "ls *.yaml", "ls ~",
              "echo a > f", "(a)", "a &", "echo `id`", "trap '' TERM", "cat a\nexit 1",
              "command cd /", "ulimit -n 1", "umask 0"]
    assert [c for c in plain if not simple_command(c)] == []
    assert [c for c in shelly if simple_command(c)] == []


def test_a_batch_timeout_leaves_the_rest_to_run_on_their_own(tmp_path: Path) -> None:
    got = local_batch([Command("echo fast"), Command("sleep 5"), Command("echo late")],
                      timeout=0.5)
    assert got[0] is not None and got[0].stdout == "fast\n"
    assert got[1:] == [None, None]
    calls: list[str] = []
    ahead = ReadAhead(BatchingLocal("n1", calls), [
        Read(Command("echo fast", readonly=True), 0.5),
        Read(Command("echo late", readonly=True), 9)])
    assert ahead.run(Command("echo fast", readonly=True), timeout=0.5).stdout == "fast\n"
    assert ahead.run(Command("echo late", readonly=True), timeout=9).stdout == "late\n"
    assert calls == ["n1 batch 2"]  # both from one batch


def test_answers_are_used_as_often_as_predicted_and_dropped_by_a_write() -> None:
    calls: list[str] = []
    probe = Command("echo hi", readonly=True)
    ahead = ReadAhead(BatchingLocal("n1", calls), [Read(probe, None), Read(probe, None),
                                                   Read(Command("echo 2", readonly=True),
                                                        None)])
    assert ahead.run(probe).stdout == "hi\n"
    assert ahead.run(probe).stdout == "hi\n"
    assert ahead.run(probe).stdout == "hi\n"  # a third time: asks the node
    ahead.run(Command("true"))  # a write: whatever was fetched may be stale now
    ahead.run(Command("echo 2", readonly=True))
    assert calls == ["n1 batch 2", "n1 run echo hi", "n1 run true", "n1 run echo 2"]


def test_segments_are_fetched_when_their_first_read_is_asked_for() -> None:
    calls: list[str] = []
    one, two, three = (Command(f"echo {i}", readonly=True) for i in (1, 2, 3))
    ahead = ReadAhead(BatchingLocal("n1", calls), [Read(one, None), None, Read(two, None),
                                                   Read(three, None)])
    assert ahead.run(one).stdout == "1\n"
    assert calls == ["n1 batch 1"]
    ahead.run(Command("echo unpredicted", readonly=True))
    assert ahead.run(three).stdout == "3\n"  # asks for a later read first: its segment
    assert ahead.run(two).stdout == "2\n"
    assert calls == ["n1 batch 1", "n1 run echo unpredicted", "n1 batch 2"]


def test_quick_reads_beside_a_slow_one_wait_for_the_hold_at_most_half_its_sleep() -> None:
    calls: list[str] = []
    held: list[float] = []
    slow = Command("a=1; sleep 0.4; echo sampled", readonly=True)
    quick = Command("echo quick", readonly=True)

    def hold(seconds: float) -> None:
        held.append(seconds)
        calls.append("held")

    ahead = ReadAhead(BatchingLocal("n1", calls), [Read(quick, None), Read(slow, None)],
                      hold=hold)
    assert ahead.run(quick).stdout == "quick\n"
    assert held == [0.2]
    assert ahead.run(slow).stdout == "sampled\n"
    # the slow read ran on its own (started before the hold); the quick ones after the hold
    assert f"n1 run {slow.text}" in calls and calls.index("held") < calls.index("n1 batch 1")
    # without a slow read in the batch, nothing waits
    plain = ReadAhead(BatchingLocal("n2", calls), [Read(quick, None)], hold=hold)
    assert plain.run(quick).stdout == "quick\n" and held == [0.2]
    # a sleep of unknown length (`sleep $n`, or 0) is no reason to wait either
    unknown = Command("n=0; sleep $n; echo sampled", readonly=True)
    blind = ReadAhead(BatchingLocal("n3", calls), [Read(quick, None), Read(unknown, None)],
                      hold=hold)
    assert blind.run(quick).stdout == "quick\n" and held == [0.2]
    assert blind.run(unknown).stdout == "sampled\n"


def test_how_long_a_script_sleeps() -> None:
    assert [sleeps_for(Command(t)) for t in (
        "sleep 10", "a=$(x); sleep 2.5; b", "sleep 1m", "sleep $n", "echo nosleep",
        "sleep 3; sleep 7s", "(sleep 1h)")] == [10, 2.5, 60, 0, 0, 7, 3600]
