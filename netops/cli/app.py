"""The typer app and what every command shares: global options (`Settings`), the journal,
the target and exit-code rules. Command modules register on `app`; `netops.cli.main` runs it.

Heavy modules (paramiko, jinja2, the engine) are imported inside the commands that need them,
so `netops --help` stays fast. The command modules (netops/cli/*.py, lab/cli.py) do without
`from __future__ import annotations`: typer reads every command's annotations on each start,
and a string annotation costs it an eval (about 12 ms in all); names imported only for type
checking are quoted instead.
"""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from netops.engine.result import ExitCode, RunResult, RunStatus
from netops.errors import UserError
from netops.transport.base import HostKeyMode

if TYPE_CHECKING:
    from netops.inventory.model import Host, Inventory
    from netops.journal import Journal
    from netops.plain import Out
    from netops.runbook.model import Runbook
    from netops.transport.ssh import SshConnector

app = typer.Typer(
    name="netops",
    help="Fix Kubernetes node networking with declarative runbooks, run over SSH.\n\n"
    "Start with `netops inventory` to see the fleet, `netops exec --nodes P -- CMD` for an "
    "ad-hoc command; `netops lab up` builds a local lab of real sshd nodes to try it on.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class Settings:
    """Global options, resolved once by the callback."""

    inventory: Path
    runbooks: list[Path] = field(default_factory=list)
    journal: str | None = None
    host_keys: HostKeyMode = HostKeyMode.STRICT
    ssh_config: Path | None = None
    connect_timeout: float = 10.0
    verbose: bool = False
    debug: bool = False
    inventories: list[Path] = field(default_factory=list)
    """Every -i source in order (`inventory` is the first)."""
    kube_context: str | None = None
    _console: "Out | None" = field(default=None, init=False, repr=False)
    _warned: bool = field(default=False, init=False, repr=False)

    def console(self) -> "Out":
        """The one stderr console, built on first use: Rich's on a terminal, plain text
        elsewhere (importing Rich costs ~15 ms that a logged run has no use for)."""
        if self._console is None:
            from netops.plain import stderr_console

            self._console = stderr_console()
        return self._console

    def runbook_dirs(self) -> list[Path]:
        from netops.library import runbook_dirs

        return runbook_dirs(self.runbooks)

    def find_runbook(self, name: str) -> "Runbook":
        from netops.library import find_runbook

        return find_runbook(self.runbook_dirs(), name)

    def load_inventory(self) -> "Inventory":
        """The inventory of every -i source; its warnings (an unknown `netops_*` variable)
        are printed once, a line each."""
        from netops.inventory.load import load_inventory

        inventory = load_inventory(self.inventories or [self.inventory])
        if inventory.warnings and not self._warned:
            self._warned = True
            for line in inventory.warnings:
                self.console().print(f"warning: {line}", markup=False, highlight=False)
        return inventory

    def connector(self) -> "SshConnector":
        from netops.transport.ssh import SshConnector, SshOptions

        if self.host_keys is HostKeyMode.OFF:
            self.console().print("[bold red]WARNING: host key checking is OFF: any machine "
                                 "can pretend to be your nodes. Use this only for throw-away "
                                 "labs.[/]")
        return SshConnector(SshOptions(host_keys=self.host_keys, ssh_config=self.ssh_config,
                                       connect_timeout=self.connect_timeout))


def settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    assert isinstance(obj, Settings)
    return obj


def open_journal(ctx: typer.Context) -> "Journal":
    """The journal of --journal. A PostgreSQL one is closed when the command ends (the server
    gets a clean goodbye before the quick exit of `netops.startup`); a SQLite one is left to
    the exit: every event is committed already, and closing would checkpoint its write-ahead
    log into the file (an fsync, ~10 ms), which the next open does anyway."""
    from netops.journal import Journal

    journal = Journal.open(settings(ctx).journal)
    if journal.shared:
        ctx.call_on_close(journal.close)
    return journal


def _version(value: bool) -> None:
    if value:
        from netops import __version__

        sys.stdout.write(f"netops {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def main_options(
    ctx: typer.Context,
    inventory: Annotated[list[Path] | None, typer.Option(
        "-i", "--inventory", envvar="NETOPS_INVENTORY",
        help="Ansible YAML or INI inventory file, or a directory of them with group_vars/ "
        "and host_vars/ (kubespray's inventory/mycluster/); repeatable, merged as "
        "ansible-inventory merges several -i. Default: ./inventory.yaml.")] = None,
    runbooks: Annotated[list[Path] | None, typer.Option(
        "--runbooks", metavar="<dir>",
        help="Runbook directory (repeatable), searched first; then ./runbooks, then "
        "$XDG_CONFIG_HOME/netops/runbooks (~/.config/netops/runbooks), then the runbooks "
        "shipped with netops (`netops list` shows where each came from).")] = None,
    journal: Annotated[str | None, typer.Option(
        "--journal", metavar="<path|url>", envvar="NETOPS_JOURNAL",
        help="Run history database.")] = None,
    host_keys: Annotated[HostKeyMode, typer.Option(
        "--host-keys", envvar="NETOPS_HOST_KEYS",
        help="strict: refuse unknown hosts; accept-new: record unknown keys in netops' own "
        "known_hosts; off: no checking (labs only).")] = HostKeyMode.STRICT,
    ssh_config: Annotated[Path | None, typer.Option(
        "--ssh-config", envvar="NETOPS_SSH_CONFIG",
        help="ssh_config file to use instead of ~/.ssh/config.")] = None,
    connect_timeout: Annotated[float, typer.Option(
        "--connect-timeout", metavar="<seconds>",
        help="Seconds to wait for a host to answer.")] = 10.0,
    kube_context: Annotated[str | None, typer.Option(
        "--kube-context", envvar="NETOPS_KUBE_CONTEXT", metavar="<name>",
        help="kubeconfig context for controller steps (kubectl), over the inventory's "
        "netops_kube_context; default: the kubeconfig's current context.")] = None,
    verbose: Annotated[bool, typer.Option(
        "-v", "--verbose", help="Print each step as it finishes, with its output (on stderr; "
        "exec's output is on stdout already).")] = False,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show tracebacks, and paramiko's own log of each connection.")] = False,
    version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_version,
        help="Print netops' version and exit.")] = False,
) -> None:
    if debug:
        import logging

        logging.basicConfig(stream=sys.stderr, level=logging.DEBUG,
                            format="%(asctime)s %(threadName)s %(name)s: %(message)s")
    if kube_context:  # controller steps read it (netops.transport.env), as kubectl would
        os.environ["NETOPS_KUBE_CONTEXT"] = kube_context
    sources = list(inventory or []) or [Path("inventory.yaml")]
    ctx.obj = Settings(sources[0], list(runbooks or []), journal, host_keys, ssh_config,
                       connect_timeout, verbose, debug, sources, kube_context)


NodesOpt = Annotated[str | None, typer.Option(
    "--nodes", "-n", metavar="<pattern>", help="Hosts, groups or globs, Ansible --limit style: "
    "'chick1,workers', 'chick1*', 'workers:!chick4', 'all:&etcd', 'chick[1:3]'. Default: "
    "every host ('all'); a disruptive runbook needs it given (--nodes all for every host).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def targets(s: Settings, nodes: str | None) -> "tuple[Host, ...]":
    hosts = s.load_inventory().select(nodes)
    if not hosts:
        raise UserError(f"--nodes {nodes!r} selects no host")
    return hosts


def preflight(connector: "SshConnector", hosts: "tuple[Host, ...]") -> None:
    """Fail with exit 2 before any host is touched when a key file is missing or unreadable."""
    for h in hosts:
        if h.key_file:
            connector.private_key(h.key_file)
        connector.resolve(h)


def exit_code_for(run: RunResult) -> int:
    """The one mapping from a run's outcome to the process exit code."""
    return {
        RunStatus.OK: ExitCode.OK,
        RunStatus.FAILED: ExitCode.FAILED,
        RunStatus.HALTED: ExitCode.FAILED,
        RunStatus.INTERRUPTED: ExitCode.INTERRUPTED,
    }[run.status]


