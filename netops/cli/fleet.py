"""Fleet commands: `inventory` (the hosts) and `exec` (one ad-hoc command everywhere)."""

import json
import sys
from typing import Annotated

import typer

from netops.cli.app import JsonOpt, NodesOpt, app, exit_code_for, preflight, settings, targets
from netops.engine.result import ExitCode


@app.command("inventory")
def inventory_cmd(
    ctx: typer.Context,
    nodes: NodesOpt = None,
    as_list: Annotated[bool, typer.Option(
        "--list", help="Print what `ansible-inventory --list` prints.")] = False,
) -> int:
    """Show hosts, groups and variables of the inventory."""
    s = settings(ctx)
    inv = s.load_inventory()
    hosts = inv.select(nodes)
    if as_list:
        doc = inv.to_ansible_list({h.name for h in hosts} if nodes else None)
        sys.stdout.write(json.dumps(doc, indent=4, sort_keys=True) + "\n")
        return ExitCode.OK
    from rich.table import Table

    table = Table(title=f"{inv.source} — {len(hosts)} host(s)")
    for col in ("host", "address", "port", "user", "groups"):
        table.add_column(col)
    for h in hosts:
        groups = ", ".join(g for g in h.groups if g not in ("all", "ungrouped"))
        table.add_row(h.name, h.address, str(h.port or 22), h.user or "", groups)
    s.console().print(table)
    return ExitCode.OK


@app.command("exec")
def exec_cmd(
    ctx: typer.Context,
    command: Annotated[list[str], typer.Argument(help="The command (after `--`).")],
    nodes: NodesOpt = None,
    forks: Annotated[int, typer.Option("--forks", "-f", metavar="<n>", min=1,
                                       help="Hosts at a time.")] = 50,
    timeout: Annotated[float, typer.Option(
        "--timeout", "-t", metavar="<seconds>",
        help="Seconds before the command is killed on the node.")] = 300.0,
    become: Annotated[bool, typer.Option("--become", "-b",
                                         help="Run through sudo -n.")] = False,
    as_json: JsonOpt = False,
) -> int:
    """Run one shell command on every selected node in parallel.

    Example: netops exec --nodes workers -- sysctl -n net.ipv4.ip_forward
    """
    from netops.engine.adhoc import run_adhoc
    from netops.report import LiveView, exec_table
    from netops.transport.base import Command

    s = settings(ctx)
    console = s.console()
    hosts = targets(s, nodes)
    connector = s.connector()
    preflight(connector, hosts)
    text = command[0] if len(command) == 1 else " ".join(command)
    run = run_adhoc(hosts, connector.transport, Command(text, become=become), timeout=timeout,
                    forks=forks, observer=LiveView(console, verbose=s.verbose))
    console.print(exec_table(run))
    if as_json:
        sys.stdout.write(json.dumps(run.to_json()) + "\n")
    return exit_code_for(run)


