"""Rounds: a node's runbooks run side by side in diagnose, and the reads they could not predict
reach the node in one batch per round, with exactly the findings of one-after-the-other
(local processes stand in for nodes, as in test_perf_readahead)."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from netops.diagnose import diagnose, plans
from netops.engine.events import Recorder
from netops.engine.readahead import ReadAhead, predict
from netops.engine.rounds import Rounds
from netops.errors import ConnectionLost
from netops.inventory.load import load_inventory
from netops.runbook.load import load_runbook
from netops.transport.base import Command, Completed, Transport
from netops.transport.local import LocalTransport
from tests.unit.test_perf_readahead import BatchingLocal

# Three runbooks with chains of dependent reads: 3, 2 and 1 rounds after the predicted batch.
BOOKS = {
    "chain3": """\
        steps:
          - {id: a, check: 'echo a'}
          - {id: b, check: 'echo b; exit 1', when: a.ok}
          - {id: c, check: 'echo c', when: b.failed}
          - {id: d, check: 'echo d', when: c.ok}
    """,
    "chain2": """\
        steps:
          - {id: a, check: 'test -d DIR'}
          - {id: b, check: 'echo b2', when: a.ok}
          - {id: c, check: 'echo c2', when: b.ok}
          - {id: never, check: 'echo never', when: a.failed}
    """,
    "chain1": """\
        steps:
          - {id: a, check: 'echo x1'}
          - {id: b, check: 'echo y1; exit 3', fail: true, when: a.ok}
    """,
}


def setup(tmp: Path) -> tuple[list, list]:  # type: ignore[type-arg]
    inv = tmp / "inventory.yaml"
    inv.write_text("all:\n  hosts: {n1: {}, n2: {}}\n")
    books = []
    for name, body in BOOKS.items():
        path = tmp / f"{name}.yaml"
        path.write_text(f"name: {name}\ndescription: d\n"
                        + textwrap.dedent(body).replace("DIR", str(tmp)))
        books.append(load_runbook(path))
    inventory = load_inventory(inv)
    hosts = list(inventory.select(None))
    return plans(books, inventory, hosts), hosts


def verdicts(result: object) -> dict[str, dict[str, tuple[str, str]]]:
    return {n: {rb: (f.status, f.evidence) for rb, f in row.items()}
            for n, row in result.nodes.items()}  # type: ignore[attr-defined]


def side_by_side(dry_runs: list, hosts: list,  # type: ignore[type-arg]
                 node: Callable[[str], Transport]) -> object:
    """diagnose as the CLI wires it: read-ahead over rounds over each host's `node(name)`."""
    reads: dict[str, list] = {h.name: [] for h in hosts}  # type: ignore[type-arg]
    for plan in dry_runs:
        for name, mine in predict(plan).items():
            reads[name] += mine
    rounds = {h.name: Rounds(node(h.name)) for h in hosts}
    ahead = {h.name: ReadAhead(rounds[h.name], reads[h.name]) for h in hosts}

    def reach(host: object) -> str:
        try:
            ahead[host.name].prefetch()  # type: ignore[attr-defined]
        except ConnectionLost as e:
            return str(e)
        return ""

    return diagnose(dry_runs, hosts, lambda h: ahead[h.name], LocalTransport, Recorder(),
                    forks=2, reach=reach, rounds=lambda h: rounds[h.name])


def test_runbooks_side_by_side_give_the_same_findings_in_fewer_round_trips(
        tmp_path: Path) -> None:
    dry_runs, hosts = setup(tmp_path)
    one_by_one = diagnose(dry_runs, hosts, LocalTransport, LocalTransport, Recorder(), forks=2)
    calls: list[str] = []
    side_by_side_ = side_by_side(dry_runs, hosts, lambda name: BatchingLocal(name, calls))
    assert verdicts(side_by_side_) == verdicts(one_by_one)
    assert verdicts(side_by_side_)["n1"] == {
        "chain3": ("ok", ""), "chain2": ("ok", ""),
        "chain1": ("broken", "b: rc 3, expected 0: y1")}
    for h in ("n1", "n2"):
        mine = [c for c in calls if c.startswith(f"{h} ")]
        # the predicted batch (the three `a`s), then rounds: {b, b2, y1}, {c, c2}, {d} (the
        # last party left alone goes straight through)
        assert mine[0] == f"{h} batch 3"
        assert mine[1] == f"{h} batch 3"
        assert mine[2] == f"{h} batch 2"
        assert mine[3].startswith(f"{h} run echo d")
        assert len(mine) == 4


class Dropping(BatchingLocal):
    """A node whose connection drops after its first batch (mid-diagnose)."""

    def run(self, cmd: Command, *, timeout: float | None = None,
            stdin: bytes | None = None) -> Completed:
        raise ConnectionLost(self.host, "connection dropped")

    def run_batch(self, cmds: Sequence[Command], *,
                  timeout: float | None = None) -> list[Completed | None]:
        if any(c.startswith(f"{self.host} batch") for c in self.calls):
            raise ConnectionLost(self.host, "connection dropped")
        return super().run_batch(cmds, timeout=timeout)


def test_a_node_lost_mid_diagnose_fails_its_waiting_runbooks_and_holds_up_nobody(
        tmp_path: Path) -> None:
    dry_runs, hosts = setup(tmp_path)
    calls: list[str] = []
    result = side_by_side(dry_runs, hosts, lambda name: (
        Dropping if name == "n2" else BatchingLocal)(name, calls))
    assert {rb: s for rb, (s, _) in verdicts(result)["n1"].items()} == {
        "chain3": "ok", "chain2": "ok", "chain1": "broken"}
    lost = verdicts(result)["n2"]
    # every runbook had a read in the first round, which the drop cut off: none is "ok", each
    # says its check could not run, and why
    assert {s for s, _ in lost.values()} == {"unknown"}
    assert all("connection dropped" in evidence for _, evidence in lost.values())


def test_an_unreachable_node_is_unreachable_for_every_runbook(tmp_path: Path) -> None:
    dry_runs, hosts = setup(tmp_path)
    calls: list[str] = []

    class Down(BatchingLocal):
        def run_batch(self, cmds: Sequence[Command], *,
                      timeout: float | None = None) -> list[Completed | None]:
            raise ConnectionLost(self.host, "no route to host")

    result = side_by_side(dry_runs, hosts, lambda name: (
        Down if name == "n1" else BatchingLocal)(name, calls))
    assert verdicts(result)["n1"] == dict.fromkeys(
        ("chain3", "chain2", "chain1"), ("unreachable", "n1: connection lost: no route to host"))
    assert verdicts(result)["n2"]["chain1"][0] == "broken"


class Scripted:
    """A node whose batches the test controls."""

    host = "n1"

    def __init__(self, batch: object) -> None:
        self.batch = batch
        self.singles: list[str] = []

    def run(self, cmd: Command, *, timeout: float | None = None,
            stdin: bytes | None = None) -> Completed:
        self.singles.append(cmd.text)
        return Completed(rc=0, stdout=f"alone {cmd.text}", stderr="", duration_s=0.0)

    def run_batch(self, cmds: list[Command], *,
                  timeout: float | None = None) -> list[Completed | None]:
        return self.batch(cmds)  # type: ignore[operator, no-any-return]

    def close(self) -> None:
        pass


def parties(rounds: Rounds, texts: list[str]) -> list[object]:
    """Each text asked by its own party at once; what each got (a result or an error)."""
    rounds.expect(len(texts))
    got: list[object] = [None] * len(texts)

    def one(i: int) -> None:
        try:
            got[i] = rounds.run(Command(texts[i], readonly=True), timeout=5).stdout
        except ConnectionLost as e:
            got[i] = e
        finally:
            rounds.leave()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return got


def test_a_read_the_batch_did_not_finish_runs_on_its_own() -> None:
    node = Scripted(lambda cmds: [Completed(0, f"batched {c.text}", "", 0.0) if i == 0 else None
                                  for i, c in enumerate(cmds)])
    got = parties(Rounds(node), ["one", "two"])
    assert sorted(got) == ["alone two", "batched one"] or sorted(got) == [
        "alone one", "batched two"]
    assert len(node.singles) == 1


def test_a_lost_connection_reaches_every_party_of_the_round() -> None:
    def lost(cmds: list[Command]) -> list[Completed | None]:
        raise ConnectionLost("n1", "gone")

    got = parties(Rounds(Scripted(lost)), ["one", "two", "three"])
    assert all(isinstance(g, ConnectionLost) for g in got)


@pytest.mark.parametrize("cmd", [Command("touch /x"), Command("cat", readonly=True)])
def test_writes_stdin_and_lone_parties_go_straight_through(cmd: Command) -> None:
    node = Scripted(lambda cmds: pytest.fail("nothing is gathered"))
    rounds = Rounds(node)
    stdin = b"x" if cmd.readonly else None
    assert rounds.run(cmd, stdin=stdin).stdout == f"alone {cmd.text}"  # no party expected
    rounds.expect(2)
    assert rounds.run(cmd, stdin=stdin).stdout == f"alone {cmd.text}"
    assert node.singles == [cmd.text, cmd.text]


def test_a_file_read_joins_the_round_and_a_missing_file_fails_only_its_reader(
        tmp_path: Path) -> None:
    """`get` goes through the round like any read (one batch for both parties); the party
    whose file is missing gets its own error, the other its answer."""
    import threading

    from netops.errors import TransportError

    (tmp_path / "f").write_text("content\n")
    calls: list[str] = []
    rounds = Rounds(BatchingLocal("n1", calls))
    rounds.expect(2)
    got: dict[str, object] = {}

    def party(name: str, path: Path) -> None:
        try:
            got[name] = rounds.get(str(path))
        except TransportError as e:
            got[name] = e
        finally:
            rounds.leave()

    threads = [threading.Thread(target=party, args=("a", tmp_path / "f")),
               threading.Thread(target=party, args=("b", tmp_path / "missing"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert calls == ["n1 batch 2"]
    assert got["a"] == b"content\n"
    assert isinstance(got["b"], TransportError) and "reading" in str(got["b"])


def test_a_read_that_sleeps_runs_aside_while_the_other_rounds_go_on() -> None:
    """check-conntrack's 10 s sample must not hold up the other runbooks' rounds: it goes on
    its own channel at once, and the two other parties' two rounds are sent while it runs
    (the sample is held until they are: were it waited for, this would never finish)."""
    rounds_sent = threading.Event()
    batches: list[list[str]] = []

    class Node(Scripted):
        def run(self, cmd: Command, *, timeout: float | None = None,
                stdin: bytes | None = None) -> Completed:
            assert rounds_sent.wait(5), "the other parties' rounds waited for the sample"
            return super().run(cmd, timeout=timeout, stdin=stdin)

    def batch(cmds: list[Command]) -> list[Completed | None]:
        batches.append(sorted(c.text for c in cmds))
        if len(batches) == 2:
            rounds_sent.set()
        return [Completed(0, f"batched {c.text}", "", 0.0) for c in cmds]

    node = Node(batch)
    rounds = Rounds(node)
    rounds.expect(3)
    got: dict[str, list[str]] = {}

    def party(name: str, texts: list[str]) -> None:
        try:
            got[name] = [rounds.run(Command(t, readonly=True), timeout=5).stdout for t in texts]
        finally:
            rounds.leave()

    threads = [threading.Thread(target=party, args=a) for a in [
        ("sample", ["a=$(total); sleep 10; b=$(total)"]),
        ("one", ["echo 1a", "echo 1b"]), ("two", ["echo 2a", "echo 2b"])]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert batches == [["echo 1a", "echo 2a"], ["echo 1b", "echo 2b"]]
    assert node.singles == ["a=$(total); sleep 10; b=$(total)"]
    assert got["sample"] == ["alone a=$(total); sleep 10; b=$(total)"]
    assert got["one"] == ["batched echo 1a", "batched echo 1b"]


@pytest.mark.parametrize("text,aside", [("sleep 1", True), ("x; sleep 2s", True),
                                        ("(sleep 3)", True), ("echo sleepy", False),
                                        ("nosleep 1", False)])
def test_what_takes_its_time(text: str, aside: bool) -> None:
    from netops.engine.readahead import takes_its_time

    assert takes_its_time(Command(text, readonly=True)) is aside


def test_the_read_ahead_starts_a_sleeping_read_beside_its_batch() -> None:
    """A predicted read that sleeps is not put in the batch (it would hold up every read after
    it): it starts on its own channel when the batch is fetched, and its step gets its answer
    when it asks (here the sample is held until the batch has been sent: were it in the batch
    or before it, this would never finish)."""
    from netops.engine.readahead import Read, ReadAhead

    sent = threading.Event()
    batches: list[list[str]] = []

    class Node(Scripted):
        def run_aside(self, cmd: Command, *, timeout: float | None = None) -> Completed:
            assert sent.wait(5), "the sample waited for the batch, or the batch for it"
            return super().run(cmd, timeout=timeout)

    def batch(cmds: list[Command]) -> list[Completed | None]:
        batches.append([c.text for c in cmds])
        sent.set()
        return [Completed(0, f"batched {c.text}", "", 0.0) for c in cmds]

    sample = Command("a=$(total); sleep 10; b=$(total)", readonly=True)
    reads = [Read(Command(t, readonly=True), 30) for t in ("echo 1", "echo 2")]
    ahead = ReadAhead(Node(batch), [reads[0], Read(sample, 30), reads[1]])
    ahead.prefetch()
    assert batches == [["echo 1", "echo 2"]]
    assert ahead.run(sample).stdout == f"alone {sample.text}"
    assert ahead.run(reads[1].command).stdout == "batched echo 2"
    assert ahead.fetched_from_node == 2


def test_a_party_waiting_on_the_read_aheads_sample_holds_up_no_round() -> None:
    """diagnose as wired: read-ahead over rounds. One runbook asks for the sample the
    read-ahead started aside; while it waits, another runbook's two unpredicted reads go to the
    node in rounds (the sample is held until they have: were the waiting party still counted
    live, no round could form and this would never finish)."""
    from netops.engine.readahead import Read, ReadAhead

    rounds_done = threading.Event()
    singles: list[str] = []

    class Node(Scripted):
        def run(self, cmd: Command, *, timeout: float | None = None,
                stdin: bytes | None = None) -> Completed:
            if "sleep" in cmd.text:
                assert rounds_done.wait(5), "the other runbook's rounds waited for the sample"
            elif cmd.text == "echo b2":
                rounds_done.set()
            singles.append(cmd.text)
            return Completed(0, f"alone {cmd.text}", "", 0.0)

    node = Node(lambda cmds: [Completed(0, f"batched {c.text}", "", 0.0) for c in cmds])
    rounds = Rounds(node)
    sample = Command("a=$(total); sleep 10; b=$(total)", readonly=True)
    ahead = ReadAhead(rounds, [Read(Command("echo a", readonly=True), 30), Read(sample, 30)])
    ahead.prefetch()
    rounds.expect(2)
    got: dict[str, list[str]] = {}

    def party(name: str, texts: list[Command]) -> None:
        try:
            got[name] = [ahead.run(c, timeout=5).stdout for c in texts]
        finally:
            rounds.leave()

    threads = [threading.Thread(target=party, args=a) for a in [
        ("sampler", [sample]),
        ("other", [Command("echo b1", readonly=True), Command("echo b2", readonly=True)])]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert got == {"sampler": [f"alone {sample.text}"],
                   "other": ["alone echo b1", "alone echo b2"]}


def test_a_sample_lost_with_its_connection_fails_only_its_asker() -> None:
    """The connection drops while the read-ahead's sample runs: the step asking for it gets
    the error (its runbook is then unknown), the batch's answers are unharmed."""
    from netops.engine.readahead import Read, ReadAhead

    class Node(Scripted):
        def run_aside(self, cmd: Command, *, timeout: float | None = None) -> Completed:
            raise ConnectionLost("n1", "gone mid-sample")

    node = Node(lambda cmds: [Completed(0, f"batched {c.text}", "", 0.0) for c in cmds])
    sample = Command("sleep 10", readonly=True)
    ahead = ReadAhead(node, [Read(Command("echo a", readonly=True), 30), Read(sample, 30)])
    ahead.prefetch()
    with pytest.raises(ConnectionLost, match="gone mid-sample"):
        ahead.run(sample)
    assert ahead.run(Command("echo a", readonly=True)).stdout == "batched echo a"
