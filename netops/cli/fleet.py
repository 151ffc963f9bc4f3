"""Fleet commands: `inventory` (the hosts) and `exec` (one ad-hoc command everywhere)."""

import json
import sys

import click

from netops.cli.app import (
    Seconds,
    app,
    argument,
    exit_code_for,
    json_option,
    nodes_option,
    open_journal,
    settings,
    targets,
)
from netops.engine.result import ExitCode


@app.command("inventory")
@nodes_option
@click.option("--list", "as_list", is_flag=True,
              help="Print what `ansible-inventory --list` prints.")
@click.pass_context
def inventory_cmd(ctx: click.Context, nodes: str | None, as_list: bool) -> int:
    """Show hosts, groups and variables of the inventory."""
    s = settings(ctx)
    inv = s.load_inventory()
    hosts = inv.select(nodes)
    if as_list:
        doc = inv.to_ansible_list({h.name for h in hosts} if nodes else None)
        sys.stdout.write(json.dumps(doc, indent=4, sort_keys=True) + "\n")
        return ExitCode.OK
    from netops.plain import print_table

    print_table(("host", "address", "port", "user", "groups"), [
        (h.name, h.address, str(h.port or 22), h.user or "",
         ",".join(g for g in h.groups if g not in ("all", "ungrouped"))) for h in hosts],
        title=f"{inv.source} — {len(hosts)} host(s)")
    return ExitCode.OK


@app.command("exec")
@argument("command", "The command (after `--`), run by the login shell of each node.",
          many=True)
@nodes_option
@click.option("--forks", "-f", type=click.IntRange(min=1), default=50, metavar="<n>",
              help="Hosts at a time.")
@click.option("--timeout", "-t", type=Seconds(), default=300.0, metavar="<seconds>",
              help="Seconds before the command is killed on the node.")
@click.option("--become", "-b", is_flag=True, help="Run through sudo -n.")
@json_option
@click.pass_context
def exec_cmd(ctx: click.Context, command: tuple[str, ...], nodes: str | None, forks: int,
             timeout: float, become: bool, as_json: bool) -> int:
    """Run one shell command on every selected node in parallel.

    stdout gets every line of every node's output as it finishes, prefixed like pdsh:
    `HOST: LINE` for the command's stdout, `HOST:err: LINE` for its stderr (a host's lines
    stay together), or with --json one JSON object instead. stderr gets the progress and a
    host/status/rc table. Exit 0 when the command succeeded everywhere, 1 otherwise.
    Journaled like a run (`netops history`, `netops report RUN_ID`).

    Example: netops exec --nodes workers -- sysctl -n net.ipv4.ip_forward
    """
    import uuid

    from netops.engine.adhoc import run_adhoc
    from netops.engine.events import FanOut, Observer
    from netops.report import ExecOutput, LiveView, exec_summary
    from netops.session import exec_record
    from netops.transport.base import Command

    s = settings(ctx)
    console = s.console()
    hosts = targets(s.load_inventory(), nodes)
    text = command[0] if len(command) == 1 else " ".join(command)
    journal = open_journal(ctx)
    journal.check()
    # every input checked: the first hosts dialled while paramiko loads, then connected
    # (no command yet) while the run is recorded and the output set up
    connector = s.connector(hosts, dial=forks)
    connector.warm(hosts, forks)
    run_id = uuid.uuid4().hex[:12]
    sources = s.inventories or [s.inventory]
    journal.start_run(exec_record(run_id, sources, nodes, text, become=become, hosts=hosts,
                                  forks=forks, timeout=timeout))
    observers: list[Observer] = [journal.observer(run_id),
                                 LiveView(console, verbose=s.verbose, output=as_json,
                                          batch_lines=False)]
    if not as_json:
        observers.append(ExecOutput(sys.stdout))
    run = run_adhoc(hosts, connector.transport, Command(text, become=become), timeout=timeout,
                    forks=forks, observer=FanOut(observers), run_id=run_id)
    exec_summary(console, run)
    console.print(f"exec {run_id}: {run.status} (netops report {run_id})", markup=False)
    if as_json:
        sys.stdout.write(json.dumps(run.to_json()) + "\n")
    return exit_code_for(run)

