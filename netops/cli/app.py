"""The click group and what every command shares: global options (`Settings`), the journal,
the target and exit-code rules, the options several commands take. Command modules register
on `app`; `netops.cli.main` runs it.

Heavy modules (paramiko, jinja2, the engine) are imported inside the commands that need them,
so `netops --help` stays fast: importing click costs ~15 ms, where typer (a wrapper around
click) cost ~110 ms through the pydantic adapter it coerces every parameter with.
"""

import importlib
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from netops.engine.result import ExitCode, RunResult, RunStatus
from netops.errors import UserError
from netops.transport.base import HostKeyMode

if TYPE_CHECKING:
    from collections.abc import Sequence

    from netops.inventory.model import Host, Inventory
    from netops.journal import Journal
    from netops.plain import Out
    from netops.runbook.model import Runbook
    from netops.transport.ssh import SshConnector

F = TypeVar("F", bound=Callable[..., Any])


class Arg(click.Argument):
    """A positional argument with a help text, listed under "Arguments:" in `--help`."""

    def __init__(self, decls: list[str], help: str = "", **attrs: Any) -> None:
        super().__init__(decls, **attrs)
        self.help = help

    def get_error_hint(self, ctx: click.Context | None) -> str:
        return f"'{self.name}'"  # "Missing argument 'run_id'", not its metavar


class Command(click.Command):
    """A command whose help lists its arguments (with their help) before its options."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(p.metavar or "", p.help + ("  [required]" if p.required else ""))
                for p in self.params if isinstance(p, Arg)]
        if rows:
            with formatter.section("Arguments"):
                formatter.write_dl([("".join(c for c in m if c not in "{}[]"), h)
                                    for m, h in rows])
        super().format_options(ctx, formatter)


class Group(click.Group):
    """A group that lists its commands in the order they were registered (grouped by topic),
    not sorted; its commands and subgroups are `Command`s and `Group`s.

    `lazy` maps command names, in the order `--help` lists them, to the module that registers
    them: a command's module is imported only when it runs (or `--help` lists them all), so
    that `netops run` does not load `diagnose`, `schedule`, the lab..."""

    command_class = Command
    group_class = type

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, str] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in dict.fromkeys(self.lazy.values()):
            importlib.import_module(module)
        return [*(n for n in self.lazy if n in self.commands),
                *(n for n in self.commands if n not in self.lazy)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            importlib.import_module(self.lazy[cmd_name])
        return self.commands.get(cmd_name)


def argument(name: str, help: str = "", *, required: bool = True, many: bool = False,
             metavar: str | None = None, type: "click.ParamType[Any] | None" = None,
             ) -> Callable[[F], F]:
    """A positional argument shown as `{name}` (required) or `[name]` (optional), `...` when
    it takes several (then the command gets a tuple)."""
    shown = ("{%s}" if required else "[%s]") % (metavar or name) + ("..." if many else "")
    return click.argument(name, cls=Arg, help=help, required=required, type=type,
                          nargs=-1 if many else 1, metavar=shown)


def nodes_option(f: F) -> F:
    """--nodes/-n: the Ansible-style pattern of target hosts (None: every host)."""
    return click.option(
        "--nodes", "-n", metavar="<pattern>", help="Hosts, groups or globs, Ansible --limit "
        "style: 'chick1,workers', 'chick1*', 'workers:!chick4', 'all:&etcd', 'chick[1:3]'. "
        "Default: every host ('all'); a disruptive runbook needs it given (--nodes all for "
        "every host).")(f)


def json_option(f: F) -> F:
    """--json, passed as `as_json`."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON object on stdout.")(f)


def path_type() -> click.Path:
    return click.Path(path_type=Path)


class Seconds(click.FloatRange):
    """A positive, finite number of seconds: a timeout of 0, -1 or nan is bad input (exit 2
    before any node is connected to), not a run that fails on every node or a silent
    default."""

    def __init__(self) -> None:
        super().__init__(min=0, min_open=True)

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        return seconds


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

    def connector(self, hosts: "Sequence[Host]" = (), dial: int = 0) -> "SshConnector":
        """The run's SSH connector. `hosts`: every target, whose ssh_config and key file are
        checked first (a bad one: exit 2, nothing dialled), and whose key is parsed before it
        returns (exit 2 before any handshake); `dial`: how many of them to open
        TCP connections to at once, while paramiko loads (`netops.transport.dial`); give it
        only when they will be connected to right away (no question asked first)."""
        from netops.transport.sshconfig import Resolver

        resolver = Resolver(self.ssh_config)
        checked = [resolver.check(h) for h in hosts]
        dialer = None
        if dial and checked:
            from netops.transport.dial import Dialer

            dialer = Dialer()
            dialer.start(checked[:dial])
        from netops.transport.ssh import SshConnector, SshOptions

        if self.host_keys is HostKeyMode.OFF:
            self.console().print("[bold red]WARNING: host key checking is OFF: any machine "
                                 "can pretend to be your nodes. Use this only for throw-away "
                                 "labs.[/]")
        connector = SshConnector(SshOptions(host_keys=self.host_keys,
                                            ssh_config=self.ssh_config,
                                            connect_timeout=self.connect_timeout),
                                 resolver, dialer)
        for h in hosts:  # an unreadable key: exit 2 before any handshake (paramiko parses it)
            if h.key_file:
                connector.private_key(h.key_file)
        return connector


def settings(ctx: click.Context) -> Settings:
    obj = ctx.find_root().obj
    assert isinstance(obj, Settings)
    return obj


def open_journal(ctx: click.Context) -> "Journal":
    """The journal of --journal. A PostgreSQL one is closed when the command ends (the server
    gets a clean goodbye before the quick exit of `netops.startup`); a SQLite one is left to
    the exit: every event is committed already, and closing would checkpoint its write-ahead
    log into the file (an fsync, ~10 ms), which the next open does anyway."""
    from netops.journal import Journal

    journal = Journal.open(settings(ctx).journal)
    if journal.shared:
        ctx.call_on_close(journal.close)
    return journal


def _version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        from netops import __version__

        sys.stdout.write(f"netops {__version__}\n")
        ctx.exit(0)


def _host_keys(ctx: click.Context, param: click.Parameter, value: str) -> HostKeyMode:
    return HostKeyMode(value)


@click.group(
    "netops", cls=Group, no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
    help="Fix Kubernetes node networking with declarative runbooks, run over SSH.\n\n"
    "Start with `netops inventory` to see the fleet, `netops exec --nodes P -- CMD` for an "
    "ad-hoc command; `netops lab up` builds a local lab of real sshd nodes to try it on.")
@click.option(
    "-i", "--inventory", multiple=True, type=path_type(), metavar="<path>",
    envvar="NETOPS_INVENTORY", show_envvar=True,
    help="Ansible YAML or INI inventory file, or a directory of them with group_vars/ "
    "and host_vars/ (kubespray's inventory/mycluster/); repeatable, merged as "
    "ansible-inventory merges several -i. Default: ./inventory.yaml.")
@click.option(
    "--runbooks", multiple=True, type=path_type(), metavar="<dir>",
    help="Runbook directory (repeatable), searched first; then ./runbooks, then "
    "$XDG_CONFIG_HOME/netops/runbooks (~/.config/netops/runbooks), then the runbooks "
    "shipped with netops (`netops list` shows where each came from).")
@click.option("--journal", metavar="<path|url>", envvar="NETOPS_JOURNAL", show_envvar=True,
              help="Run history database.")
@click.option(
    "--host-keys", type=click.Choice([m.value for m in HostKeyMode]),
    default=HostKeyMode.STRICT.value, callback=_host_keys,
    metavar="<" + "|".join(m.value for m in HostKeyMode) + ">",
    envvar="NETOPS_HOST_KEYS", show_envvar=True,
    help="strict: refuse unknown hosts; accept-new: record unknown keys in netops' own "
    "known_hosts; off: no checking (labs only).")
@click.option("--ssh-config", type=path_type(), metavar="<path>", envvar="NETOPS_SSH_CONFIG",
              show_envvar=True, help="ssh_config file to use instead of ~/.ssh/config.")
@click.option("--connect-timeout", type=Seconds(), default=10.0, metavar="<seconds>",
              help="Seconds to wait for a host to answer.")
@click.option(
    "--kube-context", envvar="NETOPS_KUBE_CONTEXT", show_envvar=True, metavar="<name>",
    help="kubeconfig context for controller steps (kubectl), over the inventory's "
    "netops_kube_context; default: the kubeconfig's current context.")
@click.option("-v", "--verbose", is_flag=True,
              help="Print each step as it finishes, with its output (on stderr; exec's output "
              "is on stdout already).")
@click.option("--debug", is_flag=True,
              help="Show tracebacks, and paramiko's own log of each connection.")
@click.option("--version", is_flag=True, is_eager=True, expose_value=False, callback=_version,
              help="Print netops' version and exit.")
@click.pass_context
def app(ctx: click.Context, inventory: tuple[Path, ...], runbooks: tuple[Path, ...],
        journal: str | None, host_keys: HostKeyMode, ssh_config: Path | None,
        connect_timeout: float, kube_context: str | None, verbose: bool, debug: bool) -> None:
    if debug:
        import logging

        logging.basicConfig(stream=sys.stderr, level=logging.DEBUG,
                            format="%(asctime)s %(threadName)s %(name)s: %(message)s")
    if kube_context:  # controller steps read it (netops.transport.env), as kubectl would
        os.environ["NETOPS_KUBE_CONTEXT"] = kube_context
    sources = list(inventory) or [Path("inventory.yaml")]
    ctx.obj = Settings(sources[0], list(runbooks), journal, host_keys, ssh_config,
                       connect_timeout, verbose, debug, sources, kube_context)


def targets(inventory: "Inventory", nodes: str | None) -> "tuple[Host, ...]":
    """The hosts --nodes selects (UserError when none)."""
    hosts = inventory.select(nodes)
    if not hosts:
        raise UserError(f"--nodes {nodes!r} selects no host")
    return hosts


def exit_code_for(run: RunResult) -> int:
    """The one mapping from a run's outcome to the process exit code."""
    return {
        RunStatus.OK: ExitCode.OK,
        RunStatus.FAILED: ExitCode.FAILED,
        RunStatus.HALTED: ExitCode.FAILED,
        RunStatus.INTERRUPTED: ExitCode.INTERRUPTED,
    }[run.status]


