"""The `netops` command's body: register the commands, run the app, map every outcome to an
exit code. The only place that exits (through `netops.startup`)."""

import sys

import click

from netops.cli.app import app
from netops.engine.result import ExitCode
from netops.errors import JournalError, UserError

COMMANDS = {
    "diagnose": "netops.cli.diagnose",
    "inventory": "netops.cli.fleet", "exec": "netops.cli.fleet",
    "history": "netops.cli.journal", "report": "netops.cli.journal",
    "list": "netops.cli.run", "show": "netops.cli.run", "validate": "netops.cli.run",
    "schema": "netops.cli.run", "run": "netops.cli.run",
    "scheduler": "netops.cli.schedule", "schedule": "netops.cli.schedule",
    "lab": "netops.lab.cli",
}
"""Each command, in the order `netops --help` lists them, and the module that registers it
(loaded when the command runs: `Group.lazy`)."""
app.lazy.update(COMMANDS)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: the only place that exits."""
    from netops.locks import NodeLocked

    debug = "--debug" in (argv if argv is not None else sys.argv)
    try:
        code = app(args=argv, standalone_mode=False, prog_name="netops")
    except click.exceptions.Exit as e:
        code = e.exit_code
    except click.ClickException as e:  # a usage error, a bad parameter: in click's words
        e.show()
        code = ExitCode.BAD_INPUT
    except click.Abort:
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
