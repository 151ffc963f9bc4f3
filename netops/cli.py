"""The netops command line: parse, call, map the outcome to an exit code (DESIGN.md).

Only this module exits. Heavy modules (paramiko, fabric, jinja2, the engine) are imported inside
the commands that need them, so `netops --help` stays fast.

The command modules (cli*.py, lab/cli.py) do without `from __future__ import annotations`:
typer reads every command's annotations on each start, and a string annotation costs it an
eval (about 12 ms in all); names imported only for type checking are quoted instead.
"""

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin

import typer

from netops.engine.result import ExitCode, RunResult, RunStatus
from netops.errors import JournalError, UserError
from netops.transport.base import HostKeyMode

if TYPE_CHECKING:
    from netops.inventory.model import Host, Inventory
    from netops.journal import Journal
    from netops.plain import Out
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
    _console: "Out | None" = field(default=None, init=False, repr=False)

    def console(self) -> "Out":
        """The one stderr console, built on first use: Rich's on a terminal, plain text
        elsewhere (importing Rich costs ~15 ms that a logged run has no use for)."""
        if self._console is None:
            from netops.plain import stderr_console

            self._console = stderr_console()
        return self._console

    def load_inventory(self) -> "Inventory":
        from netops.inventory.load import load_inventory

        return load_inventory(self.inventory)

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


@app.callback()
def main_options(
    ctx: typer.Context,
    inventory: Annotated[Path, typer.Option(
        "-i", "--inventory", envvar="NETOPS_INVENTORY",
        help="Ansible YAML or INI inventory.")] = Path("inventory.yaml"),
    runbooks: Annotated[list[Path] | None, typer.Option(
        "--runbooks", metavar="<dir>",
        help="Runbook directory (repeatable); then ./runbooks, then the "
        "runbooks shipped with netops.")] = None,
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
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Stream step output.")] = False,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show tracebacks, and paramiko's own log of each connection.")] = False,
) -> None:
    if debug:
        import logging

        logging.basicConfig(stream=sys.stderr, level=logging.DEBUG,
                            format="%(asctime)s %(threadName)s %(name)s: %(message)s")
    ctx.obj = Settings(inventory, list(runbooks or []), journal, host_keys, ssh_config,
                       connect_timeout, verbose, debug)


NodesOpt = Annotated[str | None, typer.Option(
    "--nodes", "-n", metavar="<pattern>", help="Hosts, groups or globs, Ansible --limit style: "
    "'chick1,workers', 'chick1*', 'workers:!chick4', 'all:&etcd'.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


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
    hosts = _targets(s, nodes)
    connector = s.connector()
    preflight(connector, hosts)
    text = command[0] if len(command) == 1 else " ".join(command)
    run = run_adhoc(hosts, connector.transport, Command(text, become=become), timeout=timeout,
                    forks=forks, observer=LiveView(console, verbose=s.verbose))
    console.print(exec_table(run))
    if as_json:
        sys.stdout.write(json.dumps(run.to_json()) + "\n")
    return exit_code_for(run)


def _targets(s: Settings, nodes: str | None) -> "tuple[Host, ...]":
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


def _mount_lab() -> None:
    try:
        from netops.lab.cli import lab_app
    except ImportError:  # the lab is optional at run time (it needs root and iproute2)
        return
    app.add_typer(lab_app, name="lab", help="Build and manage a lab of real sshd nodes.")


_FLAGS = {"1": True, "true": True, "t": True, "yes": True, "y": True, "on": True,
          "0": False, "false": False, "f": False, "no": False, "n": False, "off": False}


def _element(annotation: Any) -> Any:
    origin: Any = get_origin(annotation)
    return get_args(annotation)[0] if origin is list else annotation


def _simple(descriptor: Any) -> bool:
    """A parameter `_plain_value` can coerce exactly as typer would."""
    from enum import Enum

    pi, kind = descriptor.parameter_info, _element(descriptor.annotation)
    if descriptor.file_annotation is not None or pi.parser is not None or pi.clamp \
            or pi.max is not None or pi.exists or pi.resolve_path or pi.allow_dash \
            or pi.path_type is not None or getattr(pi, "click_type", None) is not None:
        return False
    return kind in (str, int, float, Path, bool) or (
        isinstance(kind, type) and issubclass(kind, Enum) and pi.case_sensitive)


def _plain_value(kind: Any, value: Any, low: float | None) -> Any:
    """`value` as `kind`; ValueError (with the reason) when it is not one."""
    from enum import Enum

    if isinstance(value, bytes):
        value = value.decode()
    try:
        if isinstance(value, kind):
            out = value
        elif kind is bool:
            out = _FLAGS[str(value).strip().lower()]
        else:
            out = kind(value)  # str, int, float, Path, or an Enum by value
    except (TypeError, ValueError, KeyError):
        choices = f" (one of {', '.join(str(c.value) for c in kind)})" \
            if issubclass(kind, Enum) else ""
        raise ValueError(f"{value!r} is not a valid {kind.__name__}{choices}.") from None
    if low is not None and out < low:
        raise ValueError(f"{out} is smaller than the minimum {low}.")
    return out


def _plain_params() -> None:
    """Coerce netops' plain option types without pydantic.

    Typer 0.2x builds a pydantic `TypeAdapter` for every parameter of the command it runs, and
    importing pydantic for that costs ~90 ms on every invocation (a third of a 10-node run).
    netops' parameters are plain (str, int with a minimum, float, bool, Path, a StrEnum, lists
    of those), so they are coerced here; anything else, and any typer without this seam, keeps
    typer's own path.
    """
    try:
        import typer.core as core
        from typer._click.exceptions import BadParameter
        from typer._coercion import RuntimeParam
    except (ImportError, AttributeError):
        return
    original = getattr(core, "build_runtime_param", None)
    if original is None or getattr(original, "_netops", False):
        return

    class Plain(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            kind, low = _element(self.annotation), self.parameter_info.min
            try:
                if _element(self.annotation) is not self.annotation:  # list[...]
                    return [_plain_value(kind, v, low) for v in value]
                return _plain_value(kind, value, low)
            except ValueError as e:
                raise BadParameter(str(e), ctx=ctx, param=param) from None

    def build(descriptor: Any) -> Any:
        if _simple(descriptor):
            return Plain(parameter_info=descriptor.parameter_info,
                         annotation=descriptor.annotation)
        return original(descriptor)

    build._netops = True  # type: ignore[attr-defined]
    setattr(core, "build_runtime_param", build)  # noqa: B010  (typer's seam, not exported)


def _click_errors(name: str) -> tuple[type[BaseException], ...]:
    """Click's exception class `name`, and typer's own copy of it (typer >= 0.2x vendors click
    and no longer installs it): whichever are installed, so that a usage error, an exit or an
    abort from either is handled, never a traceback."""
    import contextlib
    import importlib

    found: list[type[BaseException]] = []
    for module in ("click.exceptions", "typer._click.exceptions"):
        with contextlib.suppress(ImportError):
            cls = getattr(importlib.import_module(module), name, None)
            if cls is not None:
                found.append(cls)
    return tuple(found)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: the only place that exits."""
    import netops.cli_diagnose  # registers diagnose
    import netops.cli_journal  # registers history and report
    import netops.cli_run  # registers the runbook commands
    import netops.cli_schedule  # noqa: F401  (registers schedule and scheduler)
    from netops.locks import NodeLocked

    _mount_lab()
    _plain_params()
    debug = "--debug" in (argv if argv is not None else sys.argv)
    exits: tuple[type[BaseException], ...] = (*_click_errors("Exit"), typer.Exit)
    aborts: tuple[type[BaseException], ...] = (*_click_errors("Abort"), typer.Abort)
    usage = _click_errors("ClickException")
    try:
        code = app(args=argv, standalone_mode=False, prog_name="netops")
    except exits as e:
        code = e.exit_code  # type: ignore[attr-defined]
    except usage as e:
        e.show()  # type: ignore[attr-defined]
        code = ExitCode.BAD_INPUT
    except aborts:
        code = ExitCode.INTERRUPTED
    except KeyboardInterrupt:
        code = ExitCode.INTERRUPTED
    except NodeLocked as e:
        _err(f"error: {e}")
        code = ExitCode.LOCKED
    except JournalError as e:  # at start: nothing was touched
        if debug:
            raise
        _err(f"error: {e}\n  hint: check the journal (--journal, NETOPS_JOURNAL): its disk, "
             "its permissions, a process holding it")
        code = ExitCode.BAD_INPUT
    except UserError as e:
        if debug:
            raise
        _err(f"error: {e}")
        code = ExitCode.BAD_INPUT
    sys.exit(int(code or 0))


def _err(text: str) -> None:
    from netops.plain import safe  # a lock holder's fields are read from the node

    sys.stderr.write(safe(text) + "\n")
