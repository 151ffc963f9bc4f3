"""`JournalObserver`: the engine's events, written to the journal as they happen, through
`Journal`'s public methods. Output is bounded and secrets are masked here, before anything
reaches the database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from netops.engine.events import (
    BatchStarted,
    Event,
    HostFinished,
    RunFinished,
    StepFinished,
    StepStarted,
)
from netops.errors import JournalError
from netops.journal.rows import HostRow, StepRow
from netops.transport.base import mask

if TYPE_CHECKING:
    from netops.engine.result import StepResult
    from netops.journal.store import Journal

OUTPUT_LIMIT = 64 * 1024
"""Bytes of stdout/stderr kept per step (the tail, where errors are)."""


def _bounded(text: str, secrets: frozenset[str]) -> str:
    text = mask(text, secrets)
    if len(text) > OUTPUT_LIMIT:
        text = f"[... {len(text) - OUTPUT_LIMIT} characters cut ...]\n" + text[-OUTPUT_LIMIT:]
    return text


class JournalObserver:
    """Writes each event of one run as it happens."""

    def __init__(self, journal: Journal, run_id: str, secrets: frozenset[str],
                 on_failure: Callable[[JournalError], None] | None = None) -> None:
        self.journal, self.run_id, self.secrets = journal, run_id, secrets
        self.on_failure = on_failure
        self.failed: JournalError | None = None
        """The first write that failed: from then on nothing more is written, and the run
        stops between steps (`on_failure`)."""
        self._lock = threading.Lock()
        self._seq: dict[str, int] = {}
        """Per host: the last step row number used."""
        self._open: dict[tuple[str, str], int] = {}
        """(host, step id) -> row number of a step that started and has not finished."""
        self._written: dict[str, set[str]] = {}
        """Per host: the step ids that have a row."""

    def _next(self, host: str, step_id: str) -> int:
        with self._lock:
            seq = self._seq[host] = self._seq.get(host, 0) + 1
            self._written.setdefault(host, set()).add(step_id)
            return seq

    def on_event(self, event: Event) -> None:
        """Record `event`. A failed write stops the run (`on_failure`); for a step that is
        about to start it raises JournalError, so that nothing runs unrecorded."""
        if self.failed is not None:
            if isinstance(event, StepStarted):
                raise self.failed
            return
        try:
            self._record(event)
        except JournalError as e:
            self.failed = e
            if self.on_failure is not None:
                self.on_failure(e)
            if isinstance(event, StepStarted):
                raise

    def _record(self, event: Event) -> None:
        match event:
            case BatchStarted(index=i, hosts=hosts):
                self.journal.start_batch(self.run_id, i, hosts)
            case StepStarted(host=h, step_id=sid, name=name):
                seq = self._open[(h, sid)] = self._next(h, sid)
                self.journal.record_step(StepRow(self.run_id, h, seq, sid, name, "running",
                                                 started=time.time()))
            case StepFinished(host=h, result=r):
                self._finish_step(h, r)
            case HostFinished(result=r):
                self.journal.finish_host(self.run_id, r.host, str(r.status))
                written = self._written.get(r.host, set())
                for step in r.steps:  # steps marked not-run after a failure had no events
                    if step.id not in written:
                        self._finish_step(r.host, step)
            case RunFinished(result=run):
                self.journal.finish_run(
                    self.run_id, str(run.status), mask(run.reason, self.secrets),
                    [HostRow(self.run_id, name, hr.batch, str(hr.status))
                     for name, hr in run.hosts.items()])
            case _:
                pass

    def _finish_step(self, host: str, r: StepResult) -> None:
        """The end of a step: its row when it started, else a new row (a step that never
        started, such as one not run after a failure)."""
        with self._lock:
            seq = self._open.pop((host, r.id), None)
        if seq is None:
            seq = self._next(host, r.id)
        self.journal.record_step(StepRow(
            self.run_id, host, seq, r.id, r.name, str(r.status), r.changed, r.finding, r.rc,
            mask(r.command, self.secrets) if r.command else None,
            _bounded(r.stdout, self.secrets), _bounded(r.stderr, self.secrets),
            mask(r.note, self.secrets), _bounded(r.diff, self.secrets), time.time(),
            r.duration_s))
