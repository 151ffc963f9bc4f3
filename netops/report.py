"""Everything netops shows a person: the live view of a run, summaries, tables.

Human output goes to stderr (stdout belongs to `--json`). On a terminal a Rich live table shows
each host's current step and elapsed time; elsewhere (CI, cron, pipes) one plain line per event.

Text from a node (output, notes, diffs) is escaped wherever it meets Rich markup (a table cell
is markup too), and reaches the terminal through `netops.plain.safe` (the consoles apply it to
what they print; `Text` built here and `write_plain` apply it themselves). Secrets are masked
at the source, in the step kinds (`netops.steps._command`, `netops.steps.file`); the optional
`secrets` of these functions mask again whatever a caller may pass that did not go through a
kind (an engine note).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from netops.engine.events import (
    BatchStarted,
    Event,
    HostFinished,
    Notice,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
)
from netops.engine.result import FAILING, HostResult, RunResult, Status, StepResult
from netops.plain import Out, escape, safe
from netops.transport.base import mask

if TYPE_CHECKING:
    # Rich is imported where a terminal shows what it lays out: a run logged to a file needs
    # none of it (~15 ms of imports)
    from rich.console import RenderableType
    from rich.live import Live
    from rich.text import Text

STYLE = {
    Status.OK: "green", Status.CHANGED: "yellow", Status.SKIPPED: "dim",
    Status.FAILED: "bold red", Status.UNREACHABLE: "bold magenta",
    Status.WOULD_CHANGE: "cyan", Status.NOT_RUN: "dim", Status.UNKNOWN: "bold yellow",
}


def styled(status: Status) -> Text:
    from rich.text import Text

    return Text(str(status), style=STYLE.get(status, ""))


def first_line(text: str, width: int = 80) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


@dataclass(slots=True)
class _Row:
    """One host of the live table: its current (or last) step and the clock readings that
    its elapsed time is computed from."""

    step: str
    step_since: float
    host_since: float
    status: Status | None = None
    """None while the step runs; the step's (or, when done, the host's) status."""
    until: float | None = None
    """When the step (or the host) finished: its elapsed time stops there (a finished host
    does not keep counting through a `--pause`)."""

    def elapsed(self, now: float) -> float:
        end = self.until if self.until is not None else now
        return end - (self.host_since if self.step == "done" else self.step_since)


class LiveView:
    """Observer: a live host table on a terminal, plain progress lines otherwise.

    `verbose` (-v) prints each step as it finishes, with its output; `output=False` leaves
    the output out (`netops exec` prints it on stdout already). `batch_lines=False` leaves
    out the "batch N: hosts" line (an exec has one batch of every host); `live=False` the
    live table (diagnose runs many small runs side by side)."""

    def __init__(self, console: Out, *, verbose: bool = False,
                 clock: Callable[[], float] = time.monotonic,
                 secrets: frozenset[str] = frozenset(), output: bool = True,
                 batch_lines: bool = True, live: bool = True) -> None:
        self.console = console
        self.live = live
        self.verbose = verbose
        self.output = output
        self.batch_lines = batch_lines
        self.secrets = secrets
        self.clock = clock
        self._lock = threading.Lock()
        self._rows: dict[str, _Row] = {}
        self._live: Live | None = None
        self._batch = ""
        self._notes: list[str] = []

    def on_event(self, event: Event) -> None:
        with self._lock:
            self._handle(event)
            if self._live is not None:
                self._live.update(self._render())

    def _handle(self, event: Event) -> None:
        match event:
            case RunStarted():
                self._start_live()
            case BatchStarted(index=i, hosts=hosts):
                if self.batch_lines:
                    self._batch = f"batch {i}: {', '.join(hosts)}"
                    self._plain(f"[bold]{self._batch}[/]")
            case StepStarted() | StepFinished() | HostFinished():
                self._host_event(event)
            case Notice(text=text, level=level):
                style = {"warning": "yellow", "error": "bold red"}.get(level, "bold")
                self._plain(f"[{style}]{escape(mask(text, self.secrets))}[/]")
            case RunFinished():
                if self._live is not None:
                    self._live.stop()
                    self._live = None

    def _start_live(self) -> None:
        if self.live and self.console.is_terminal and self._live is None:
            from rich.console import Console
            from rich.live import Live

            assert isinstance(self.console, Console)  # a terminal gets Rich's
            self._live = Live(self._render(), console=self.console,
                              refresh_per_second=8, transient=True)
            self._live.start()

    def _host_event(self, event: StepStarted | StepFinished | HostFinished) -> None:
        now = self.clock()
        match event:
            case StepStarted(host=h, name=name):
                row = self._rows.get(h)
                self._rows[h] = _Row(name, now, row.host_since if row else now)
                if self.verbose:
                    self._plain(f"{h}: {escape(name)}")
            case StepFinished(host=h, result=r):
                row = self._rows.get(h) or _Row(r.name, now, now)
                self._rows[h] = _Row(r.name, row.step_since, row.host_since, r.status, now)
                self._step_line(h, r)
            case HostFinished(result=r):
                row = self._rows.get(r.host) or _Row("", now, now)
                self._rows[r.host] = _Row("done", row.step_since, row.host_since, r.status, now)
                if not self.verbose:
                    why = _detail(r.steps, self.secrets)
                    self._plain(f"{r.host}: [{STYLE.get(r.status, '')}]{r.status}[/]"
                                + (f" — {escape(why)}" if why else ""))

    def _step_line(self, host: str, r: StepResult) -> None:
        if not self.verbose:
            return
        note = mask(r.note, self.secrets)
        self._plain(f"{host}: {escape(r.name)} -> [{STYLE.get(r.status, '')}]{r.status}[/]"
                    + (f" ({escape(note)})" if note else ""))
        if not self.output:
            return
        for text in (r.stdout, r.stderr):
            for line in mask(text, self.secrets).rstrip().splitlines()[:50]:
                self.console.print(f"    {line}", markup=False, highlight=False)

    def _plain(self, markup: str) -> None:
        if self._live is not None:
            self._live.console.print(markup, highlight=False)
        else:
            self.console.print(markup, highlight=False)

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, show_header=True, header_style="bold")
        for col in ("host", "step", "status", "elapsed"):
            table.add_column(col)
        now = self.clock()
        for host, row in sorted(self._rows.items()):
            table.add_row(host, escape(row.step),
                          styled(row.status) if row.status else Text("running", "blue"),
                          f"{row.elapsed(now):5.1f}s")
        return Group(Text(self._batch, style="bold"), table)


class ExecOutput:
    """Observer: `netops exec`'s data on stdout. As each host finishes, every line of its
    output, `HOST: LINE` for the command's stdout then `HOST:err: LINE` for its stderr, in one
    write (two hosts' lines never interleave); node text made `safe`."""

    def __init__(self, file: IO[str]) -> None:
        self.file = file
        self._lock = threading.Lock()

    def on_event(self, event: Event) -> None:
        if not isinstance(event, HostFinished):
            return
        host = event.result.host
        lines = [f"{host}: {line}\n" for s in event.result.steps
                 for line in s.stdout.splitlines()]
        lines += [f"{host}:err: {line}\n" for s in event.result.steps
                  for line in s.stderr.splitlines()]
        if lines:
            with self._lock:
                self.file.write(safe("".join(lines)))
                self.file.flush()


SUMMARY_COLUMNS = ("host", "batch", "status", "changed", "detail")


def show_summary(console: Out, run: RunResult, secrets: frozenset[str] = frozenset()) -> None:
    """Host x outcome, with changed counts and the first line of each failure: a Rich table on
    a terminal; elsewhere (CI logs, cron mail, pipes) plain aligned columns (`write_plain`)."""
    if console.is_terminal:
        from rich.table import Table

        table = Table(title=_summary_title(run))
        for col in SUMMARY_COLUMNS:
            table.add_column(col)
        for name, host in run.hosts.items():
            table.add_row(name, str(host.batch), styled(host.status), str(_changed(host)),
                          escape(_detail(host.steps, secrets)))
        console.print(table)
        return
    rows = [SUMMARY_COLUMNS] + [
        (name, str(host.batch), str(host.status), str(_changed(host)),
         _detail(host.steps, secrets))
        for name, host in run.hosts.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(SUMMARY_COLUMNS) - 1)]
    write_plain(console, [_summary_title(run)] + [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) +
        (f"  {row[-1]}" if row[-1] else "") for row in rows])


def write_plain(console: Out, lines: list[str]) -> None:
    """`lines` as they are, past Rich's layout (which costs ~0.4 ms of CPU per table row): for
    a log, cron mail or a pipe, where there is nothing to style (node text made `safe`)."""
    console.file.write(safe("".join(line.rstrip() + "\n" for line in lines)))
    console.file.flush()


def _summary_title(run: RunResult) -> str:
    return f"{run.runbook} — {run.status}" + (" (dry run)" if run.dry_run else "")


def _changed(host: HostResult) -> int:
    return sum(1 for s in host.steps if s.status in (Status.CHANGED, Status.WOULD_CHANGE))


def _detail(steps: tuple[StepResult, ...], secrets: frozenset[str] = frozenset()) -> str:
    for s in steps:
        if s.status in FAILING:
            # masked before the first line is cut: a cut never shows part of a secret
            why = (first_line(mask(s.stderr, secrets)) or mask(s.note, secrets)
                   or first_line(mask(s.stdout, secrets)))
            return f"{s.name}: {why}" + (f" (rc {s.rc})" if s.rc not in (None, 0) else "")
    return ""


def exec_summary(console: Out, run: RunResult) -> None:
    """`netops exec`'s summary on stderr (the output itself is on stdout): host, status, rc
    and, for a host that did not succeed, why (complete off a terminal: `print_table`)."""
    from netops.plain import print_table

    rows: list[tuple[str | tuple[str, str], ...]] = []
    for name, host in run.hosts.items():
        step = host.steps[0]
        why = "" if host.status is Status.OK else (
            step.note or first_line(step.stderr, 10**6) or first_line(step.stdout, 10**6))
        rows.append((name, (str(host.status), STYLE.get(host.status, "")),
                     "" if step.rc is None else str(step.rc), why))
    print_table(("host", "status", "rc", "detail"), rows, file=console.file)


def plan_preview(run: RunResult, secrets: frozenset[str] = frozenset()) -> RenderableType:
    """The dry run's answer to "what exactly would change where": per host, each step that
    would change, with its exact command, the predicted change and a diff where known."""
    from rich.console import Group
    from rich.text import Text

    parts: list[RenderableType] = []
    for name, host in run.hosts.items():
        changes = [s for s in host.steps if s.status is Status.WOULD_CHANGE]
        if not changes:
            parts.append(Text.assemble((name, "bold"), ": ", styled(host.status),
                                       " — nothing to change" if host.status is Status.OK
                                       else ""))
            continue
        parts.append(Text.assemble((name, "bold"), f": {len(changes)} change(s)"))
        def shown(text: str) -> str:
            return safe(mask(text, secrets))

        for s in changes:
            parts.append(Text.assemble("  ", styled(s.status), f" {s.name}",
                                       (f" — {shown(s.note)}" if s.note else "", "cyan")))
            for line in shown(s.command or "").splitlines():
                parts.append(Text(f"      $ {line}", style="dim"))
            for line in shown(s.diff).splitlines():
                style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
                parts.append(Text(f"      {line}", style=style))
    return Group(*parts)
