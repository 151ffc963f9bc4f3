"""`netops lab up | down | status | ssh | reboot | exec | fault | verify`: this module mounts
`lab` on the app when `netops lab ...` runs (`netops.cli.main.COMMANDS`).

Everything but click is imported inside the commands, so `netops --help` stays fast.
"""

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from netops.cli.app import F, Group, app, argument, path_type
from netops.errors import UserError
from netops.plain import stderr_console

if TYPE_CHECKING:
    from netops.lab.lab import Lab
    from netops.lab.verify import Outcome
    from netops.runbook.model import Runbook

# The lab: network namespaces on a bridge; it needs root.
lab_app = Group("lab", no_args_is_help=True, help="Build and manage a lab of real sshd nodes.")
app.add_command(lab_app, "lab")


def dir_option(f: F) -> F:
    """--dir: the lab directory (None: NETOPS_LAB_DIR or ./.netops-lab, see `_dir`)."""
    return click.option("--dir", "directory", type=path_type(), metavar="<path>",
                        show_default=False,
                        help="Lab directory (env NETOPS_LAB_DIR, default ./.netops-lab).")(f)


def _dir(given: Path | None) -> Path:
    return given or Path(os.environ.get("NETOPS_LAB_DIR") or ".netops-lab")


def _need_root() -> None:
    if os.geteuid() != 0:
        raise UserError("netops lab needs root", hint="run it as root (sudo)")


def _load(directory: Path) -> "Lab":
    from netops.lab.lab import Lab

    _need_root()
    return Lab.load(directory)


def _fail(message: str) -> click.exceptions.Exit:
    stderr_console().print(f"[red]error:[/] {message}", markup=True)
    return click.exceptions.Exit(1)


@lab_app.command("up")
@click.option("--nodes", "-n", default="6", metavar="<pattern>",
              help="A count (6 -> chick1..chick6) or names (chick11,chick12).")
@dir_option
@click.option("--no-etcd", is_flag=True, help="Do not start etcd.")
@click.option("--no-kube", is_flag=True, help="Do not serve the Kubernetes API stand-in "
              "(kubectl steps fail; saves the controller CPU of its sync loop, e.g. for "
              "benchmarks).")
@click.option("--prefix", default="nl", metavar="<prefix>",
              help="Prefix of the lab's interface names.")
@click.option("--subnet", default="198.18.0.0/16", metavar="<cidr>",
              help="Lab subnet, inside 198.18.0.0/15.")
@click.option("--rebuild", is_flag=True,
              help="Tear down a lab that is already up in --dir, then build.")
@click.option("--healthy", is_flag=True, help="Make every node a complete healthy Kubernetes "
              "node (flannel CNI config and plugins, cni0 with a pod, docker's drop-in).")
@click.option("--faults", "faults_spec", metavar="<fault@node,...>",
              help="Inject after the build: NAME[@node],... (`netops lab fault list`; no "
              "@node: the last node).")
def up(nodes: str, directory: Path | None, no_etcd: bool, no_kube: bool, prefix: str,
       subnet: str, rebuild: bool, healthy: bool, faults_spec: str | None) -> None:
    """Build the lab: nodes, bridge, sshd, etcd; write inventory, ssh_config, known_hosts.

    \b
    Example:
      netops lab up --nodes 6 --healthy --faults ip-forward-off@chick5,forward-drop@chick6
    """
    from netops.lab import faults
    from netops.lab.lab import Lab, check_host
    from netops.lab.model import LabError, parse_names

    names = parse_names(nodes)
    targets = faults.parse(faults_spec, names) if faults_spec else []
    where = _dir(directory)
    check_host(etcd=not no_etcd)
    console = stderr_console()
    if Lab.is_up(where):
        if not rebuild:
            old = Lab.load(where)
            console.print(f"lab already up in {where}: {len(old.names)} nodes "
                          f"({_span(old.names)}); `netops lab down` or --rebuild to replace it")
            return
        Lab.load(where).down()
    lab = Lab(where, subnet=subnet, prefix=prefix)
    console.print(f"building {len(names)} nodes ({_span(names)}) in {lab.directory} ...")
    started = time.monotonic()
    try:
        lab.up(names, etcd=not no_etcd, kube=not no_kube)
    except LabError as e:
        raise _fail(str(e)) from None
    took = time.monotonic() - started
    console.print(f"ready in {took:.1f} s: inventory {lab.inventory_path}")
    if healthy:  # each node's baseline is its own; several at once keep both cores busy
        from netops.engine.parallel import each
        each(names, lambda n: faults.healthy(lab, n), 8)
    for name, node in targets:
        faults.FAULTS[name](lab, node)
        console.print(f"{node}: {name} injected")
    if lab.etcd_endpoint:
        console.print(f"etcd: {lab.etcd_endpoint}")
    console.print(f"try: netops -i {lab.inventory_path} exec --nodes all -- hostname\n"
                  f"     ssh -F {lab.ssh_config_path} {names[0]}")


def _span(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"


@lab_app.command("down")
@dir_option
def down(directory: Path | None) -> None:
    """Tear the lab down: processes, links, mounts and its directory."""
    from netops.lab.lab import Lab

    where = _dir(directory)
    _need_root()
    if not (where / "state.json").exists():
        stderr_console().print(f"no lab in {where}; nothing to do")
        return
    started = time.monotonic()
    Lab.load(where).down()
    stderr_console().print(f"lab in {where} is down ({time.monotonic() - started:.1f} s)")


@lab_app.command("status")
@dir_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def status(directory: Path | None, as_json: bool) -> None:
    """Nodes with their address, namespaces, sshd, uptime and boot id."""
    import dataclasses
    import json

    from rich.table import Table

    lab = _load(_dir(directory))
    rows = lab.status()
    if as_json:
        doc = {"directory": str(lab.directory), "supervisor": lab.supervisor_alive(),
               "etcd": lab.etcd_endpoint, "nodes": [dataclasses.asdict(r) for r in rows]}
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
        return
    table = Table("node", "address", "netns", "sshd", "uptime", "boot id",
                  title=f"netops lab {lab.directory}")
    for r in rows:
        table.add_row(r.name, r.address, _yes(r.netns), _yes(r.sshd),
                      f"{r.uptime_s:.0f}s" if r.uptime_s is not None else "-",
                      (r.boot_id or "-")[:8])
    console = stderr_console()
    console.print(table)
    console.print(f"supervisor: {_yes(lab.supervisor_alive())}   "
                  f"etcd: {lab.etcd_endpoint or 'off'}")


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


@lab_app.command("ssh")
@argument("node", "Node name.")
@argument("command", "Command (default: a shell).", required=False, many=True)
@dir_option
def ssh(node: str, command: tuple[str, ...], directory: Path | None) -> None:
    """Open `ssh -F <lab>/ssh_config NODE` (OpenSSH, strict host keys)."""
    where = _dir(directory)
    config = where / "ssh_config"
    if not config.exists():
        raise UserError(f"no lab in {where} (no ssh_config)")
    os.execvp("ssh", ["ssh", "-F", str(config), node, *command])


@lab_app.command("reboot")
@argument("node", "Node name.")
@dir_option
def reboot(node: str, directory: Path | None) -> None:
    """Reboot a node as its own `reboot` would: sessions drop, only persisted state returns."""
    from netops.lab.model import LabError

    lab = _load(_dir(directory))
    started = time.monotonic()
    try:
        lab.reboot(node)
    except LabError as e:
        raise _fail(str(e)) from None
    stderr_console().print(f"{node} rebooted in {time.monotonic() - started:.2f} s")


@lab_app.command("exec")
@argument("node", "Node name.")
@argument("command", "Shell command run inside the node.")
@dir_option
def exec_(node: str, command: str, directory: Path | None) -> None:
    """Run a command inside a node directly (no SSH), as root."""
    from netops.lab.model import LabError

    lab = _load(_dir(directory))
    try:
        done = lab.node_exec(node, command, check=False)
    except LabError as e:
        raise _fail(str(e)) from None
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    raise click.exceptions.Exit(done.returncode)


@lab_app.command("fault")
@argument("spec", "NAME[@node],... (no @node: the lab's last node), or `list`.")
@dir_option
@click.option("--healthy", is_flag=True,
              help="First make each targeted node a healthy Kubernetes node.")
def fault(spec: str, directory: Path | None, healthy: bool) -> None:
    """Break running nodes the way the seed stories broke theirs; `list` names the faults."""
    from netops.lab import faults

    if spec == "list":
        wide = max(len(f.name) for f in faults.FAULTS.values())
        book = max(len(f.runbook) for f in faults.FAULTS.values())
        for f in faults.FAULTS.values():
            sys.stdout.write(f"{f.name:<{wide}}  {f.runbook:<{book}}  {f.description}\n")
        return
    lab = _load(_dir(directory))
    targets = faults.parse(spec, lab.names)
    if healthy:
        for node in dict.fromkeys(node for _, node in targets):
            faults.healthy(lab, node)
    for name, node in targets:
        faults.FAULTS[name](lab, node)
        stderr_console().print(f"{node}: {name} injected")


@lab_app.command("verify")
@argument("runbooks", "Runbook names or files (default: the whole library).", required=False,
          many=True, metavar="runbook")
@click.option("--runbooks", "dirs", multiple=True, type=path_type(), metavar="<dir>",
              show_default=False, help="Runbook directory, searched first (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@click.option("--nodes", "size", type=click.IntRange(min=2), metavar="<n>",
              show_default=False, help="Lab nodes (default: one per scenario, 3..8; the first "
              "stays healthy).")
@click.option("--prefix", metavar="<prefix>", show_default=False,
              help="Interface prefix of the lab (default: a free nv0..nv9).")
@click.option("--subnet", metavar="<cidr>", show_default=False,
              help="Lab subnet in 198.18.0.0/15 (default: a free /24).")
@click.pass_context
def verify(ctx: click.Context, runbooks: tuple[str, ...], dirs: tuple[Path, ...],
           as_json: bool, size: int | None, prefix: str | None, subnet: str | None) -> None:
    """Prove runbooks on a fresh lab with their `tests:` scenarios: per scenario, the dry
    run flags only the broken node and changes nothing, the run fixes it (its `healthy`
    check), a re-run changes nothing, a reboot keeps it fixed, diagnose agrees before and
    after. Exit 1 on any miss, 2 on bad input.

    Example: netops lab verify check-ip-forward --runbooks ./my-runbooks
    """
    import json
    import signal

    from netops.lab.verify import verify as run_verify

    _need_root()
    books, search = _verify_books(ctx, list(runbooks), list(dirs))
    console = stderr_console()
    signal.signal(signal.SIGTERM, _interrupted)  # CI cancelling: the lab goes down as on Ctrl-C
    started = time.monotonic()
    outcomes = run_verify(books, search, nodes=size, prefix=prefix, subnet=subnet,
                          progress=lambda m: console.print(m))
    took = time.monotonic() - started
    missed = [o for o in outcomes if o.missed]
    if as_json:
        sys.stdout.write(json.dumps({"ok": not missed, "seconds": round(took, 1),
                                     "scenarios": [o.as_json() for o in outcomes]},
                                    indent=1) + "\n")
    else:
        _verify_table(outcomes)
    console.print(f"{len(outcomes) - len(missed)} of {len(outcomes)} scenarios proved in "
                  f"{took:.0f} s" + (f"; MISS: {', '.join(o.case.label for o in missed)}"
                                     if missed else ""))
    if missed:
        raise click.exceptions.Exit(1)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _verify_books(ctx: click.Context, names: list[str],
                  dirs: list[Path]) -> tuple[dict[str, "Runbook"], list[Path]]:
    """The runbooks to verify, and the directories the checks' CLI searches (absolute: it
    runs elsewhere); a runbook that does not load is bad input."""
    from netops.cli.app import Settings
    from netops.library import find_runbook, runbook_dirs
    from netops.plain import safe
    from netops.runbook.load import load_all, load_runbook

    root = ctx.find_root().obj
    given = [*dirs, *(root.runbooks if isinstance(root, Settings) else [])]
    files = [Path(n) for n in names if n.endswith((".yaml", ".yml"))]
    search = [p.resolve() for p in [*(f.parent for f in files), *runbook_dirs(given)]]
    if not names:
        library, errors = load_all(search)
        for e in errors:
            sys.stderr.write(safe(f"error: {e}") + "\n")
        if errors:
            raise click.exceptions.Exit(2)
        return library, search
    books: dict[str, Runbook] = {}
    for n in names:
        rb = load_runbook(Path(n)) if n.endswith((".yaml", ".yml")) else \
            find_runbook(search, n)
        books[rb.name] = rb
    return books, search


def _verify_table(outcomes: list["Outcome"]) -> None:
    """scenario x check, ok/MISS/n/a; then the evidence of every miss."""
    from netops.lab.verify import CHECKS
    from netops.plain import print_table

    rows = [[o.case.label, o.node, *(_cell(o.checks.get(c)) for c in CHECKS)]
            for o in outcomes]
    print_table(["scenario", "node", *CHECKS], rows, title="netops lab verify")
    for o in outcomes:
        for name, (verdict, evidence) in o.checks.items():
            if verdict == "MISS":
                sys.stdout.write(f"MISS {o.case.label} {name}: {evidence}\n")


def _cell(check: tuple[str, str] | None) -> str | tuple[str, str]:
    if check is None:
        return ("-", "dim")
    verdict = check[0]
    return (verdict, {"ok": "green", "MISS": "bold red"}.get(verdict, "dim"))
