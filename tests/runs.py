"""A journaled rolling run made on this machine (LocalTransport hosts), for the report, HTML and
notification tests: three batches (a canary, then two at a time) with pauses between them, a
verify gate, one failed host tolerated, and node output that tries to be HTML and a terminal."""

from __future__ import annotations

import textwrap
from pathlib import Path

from netops.engine.events import FanOut
from netops.engine.execute import World, execute
from netops.engine.prepare import Overrides, build_plan
from netops.engine.result import RunResult
from netops.inventory.load import load_inventory
from netops.journal import Journal
from netops.runbook.load import load_runbook
from netops.session import run_record
from netops.transport.local import LocalTransport

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)> &amp;"
"""What node n1..n5 print in their `inspect` step (followed by an ANSI colour sequence)."""
RUNBOOK = """\
    name: tune-forwarding
    description: Inspect, change and verify forwarding on each node; n3 fails to apply.
    steps:
      - id: inspect
        check: |
          sleep 0.2; printf '%s \\033[31mred\\033[0m\\n' 'HOSTILE'
      - id: apply
        shell: "sleep 0.3; echo applied {{ host.name }}; test {{ host.name }} != n3"
    verify:
      - id: forwarding_ok
        check: "sleep 0.15; true"
"""


def journaled_run(tmp: Path, journal: Journal, *, pause: str = "1s") -> RunResult:
    inv = tmp / "inventory.yaml"
    inv.write_text("all:\n  hosts: {n1: {}, n2: {}, n3: {}, n4: {}, n5: {}}\n")
    rb = tmp / "tune-forwarding.yaml"
    rb.write_text(textwrap.dedent(RUNBOOK).replace("HOSTILE", HOSTILE))
    inventory = load_inventory(inv)
    hosts = inventory.select(None)
    plan = build_plan(load_runbook(rb), inventory, hosts, [],
                      Overrides(batch_size="1,2", max_fail="1", pause=pause), dry_run=False)
    journal.start_run(run_record(plan, [inv], "all", "1,2"))
    observer = journal.observer(plan.run_id, plan.secrets)
    return execute(plan, World(connect=lambda h: LocalTransport(h.name),
                               controller=LocalTransport, observer=FanOut([observer])))
