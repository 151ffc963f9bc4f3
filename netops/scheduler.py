"""The scheduler loop: fire due schedules as `netops run` processes, record every fire.

Every fire time of a schedule becomes one row of the journal's `fires` table, claimed in one
transaction (`Journal.claim_fire`), so a restarted scheduler, or a second one on another
controller sharing a PostgreSQL journal, never acts on a fire twice. A row's status says what
became of that fire:

* `fired`: a run was launched (its run id, status and exit code are filled in as they come);
* `missed`: nobody fired it on time (the scheduler was down) and it was not caught up, or a later
  fire of the same schedule ran instead; missed fires are never started late, unless the
  schedule has `catch_up: true` and its window is still open;
* `refused`: the schedule's previous run was still going (a schedule never overlaps itself);
* `skipped`: the schedule is disabled.

A fired run is exactly what an operator would run: `netops run RUNBOOK --nodes P ... --yes
--json --until WINDOW_END`, so it takes node locks, journals itself, stops starting batches
when the window closes (halted, resumable) and exits with the usual codes. The clock is
injected: tests drive `tick()` with a hand-set time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from netops.journal import pid_alive
from netops.schedule import Schedule, fmt_duration, fmt_time

if TYPE_CHECKING:
    from netops.journal import FireRow, Journal

GRACE = 60.0
"""A fire handled later than this after its time counts as missed (unless caught up)."""
MISSED_LIMIT = 100
"""Missed fires recorded one by one per schedule and tick; older ones are only counted."""


@dataclass(frozen=True, slots=True)
class Fire:
    """What the scheduler did with one fire time of a schedule."""

    schedule: str
    fire_time: float
    status: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a launched run ended."""

    exit_code: int
    run_id: str | None = None
    run_status: str | None = None
    note: str = ""
    doc: Mapping[str, Any] | None = None
    """The run's (or diagnose's) --json document, when it printed one."""


class Child(Protocol):
    """A launched run."""

    @property
    def pid(self) -> int: ...
    def poll(self) -> int | None: ...
    def interrupt(self) -> None: ...
    def outcome(self) -> Outcome: ...


class Launcher(Protocol):
    def start(self, schedule: Schedule, window_end: float) -> Child: ...


class Watcher(Protocol):
    """Told what becomes of fires and runs (metrics, notifications); must not block."""

    def fired(self, schedule: Schedule, fire: Fire) -> None: ...
    def ended(self, schedule: Schedule | None, name: str, fire_time: float,
              outcome: Outcome) -> None: ...


@dataclass
class _Running:
    fire_time: float
    child: Child
    launched: float
    """Real Unix time of the launch (the journal's runs are stamped in real time)."""
    run_id: str | None = None


@dataclass
class Scheduler:
    """Decides and records fires; `tick()` does one round at `clock()`."""

    journal: Journal
    launcher: Launcher
    clock: Callable[[], float] = time.time
    grace: float = GRACE
    report: Callable[[str], None] = lambda text: None
    controller: str = field(default_factory=socket.gethostname)
    ident: str = ""
    schedules: dict[str, Schedule] = field(default_factory=dict)
    cursor: dict[str, float] = field(default_factory=dict)
    """Per schedule: fire times up to here have been dealt with."""
    running: dict[str, _Running] = field(default_factory=dict)
    ended: list[tuple[str, Outcome]] = field(default_factory=list)
    watchers: list[Watcher] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ident = self.ident or f"{self.controller}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    # -- schedules -------------------------------------------------------------------------------
    def set_schedules(self, schedules: Mapping[str, Schedule]) -> None:
        """Start (or, on reload, keep) a cursor per schedule: after its last recorded fire,
        else a grace period ago (a new schedule does not inherit history)."""
        now = self.clock()
        for name in schedules:
            if name not in self.cursor:
                last = self.journal.last_fire_time(name)
                self.cursor[name] = last if last is not None else now - self.grace
        self.schedules = dict(schedules)

    def next_fire(self) -> float | None:
        times = [t for s in self.schedules.values()
                 if (t := s.next_fire(self.cursor.get(s.name, self.clock()))) is not None]
        return min(times) if times else None

    # -- one round -------------------------------------------------------------------------------
    def tick(self) -> list[Fire]:
        now = self.clock()
        self.reap()
        done: list[Fire] = []
        for s in self.schedules.values():
            since = min(self.cursor[s.name], now)
            self.cursor[s.name] = max(self.cursor[s.name], now)
            fires = s.fires(since, now)
            if fires:
                done += self._handle(s, fires, now)
        return done

    def _handle(self, s: Schedule, fires: list[float], now: float) -> list[Fire]:
        chosen = self._choose(s, fires, now)
        older = [f for f in fires if f != chosen]
        uncounted = max(0, len(older) - MISSED_LIMIT)
        older = older[uncounted:]
        done: list[Fire] = []
        for i, f in enumerate(older):
            if not s.enabled:
                status, note = "skipped", "the schedule is disabled"
            elif chosen is not None and f < chosen and self._eligible(s, f, now):
                status, note = "missed", f"superseded by the fire at {fmt_time(chosen, s.tz)}"
            else:
                status, note = "missed", f"nobody fired it on time ({fmt_duration(now - f)} late)"
                if s.catch_up:
                    note += "; its window had closed"
            if i == 0 and uncounted:
                note += f"; {uncounted} earlier fire(s) not recorded one by one"
            done += self._record(s, f, status, note)
        if chosen is not None:
            done += self._fire(s, chosen, now)
        return done

    def _choose(self, s: Schedule, fires: list[float], now: float) -> float | None:
        """The one fire to run: the latest on time, else (catch_up) the latest still in its
        window."""
        if not s.enabled:
            return None
        on_time = [f for f in fires if now < f + s.window and now - f <= self.grace]
        if on_time:
            return on_time[-1]
        late = [f for f in fires if self._eligible(s, f, now)]
        return late[-1] if late else None

    def _eligible(self, s: Schedule, f: float, now: float) -> bool:
        """Could this fire still run now: on time, or caught up inside its window?"""
        return now < f + s.window and (now - f <= self.grace or s.catch_up)

    def _record(self, s: Schedule, f: float, status: str, note: str) -> list[Fire]:
        if not self.journal.claim_fire(s.name, f, status, claimed_by=self.ident,
                                       window_end=f + s.window, note=note,
                                       controller=self.controller):
            return []  # another scheduler (or our previous life) dealt with it
        self.report(f"{s.name}: {status} the fire at {fmt_time(f, s.tz)}: {note}")
        return [self._tell(s, Fire(s.name, f, status, note))]

    def _tell(self, s: Schedule, fire: Fire) -> Fire:
        for w in self.watchers:
            try:
                w.fired(s, fire)
            except Exception as e:  # a watcher never stops the scheduler
                self.report(f"{s.name}: {type(w).__name__} failed: {e}")
        return fire

    def _fire(self, s: Schedule, f: float, now: float) -> list[Fire]:
        busy = self._busy(s)
        if busy:
            return self._record(s, f, "refused", busy)
        end = f + s.window
        late = f" ({fmt_duration(now - f)} late, caught up)" if now - f > self.grace else ""
        if not self.journal.claim_fire(s.name, f, "fired", claimed_by=self.ident,
                                       window_end=end, note=late.strip(" ()"),
                                       controller=self.controller):
            return []
        try:
            child = self.launcher.start(s, end)
        except OSError as e:
            note = f"could not start netops run: {e}"
            self.journal.update_fire(s.name, f, note=note, finished=time.time())
            self.report(f"{s.name}: {note}")
            return [Fire(s.name, f, "fired", note)]
        self.journal.update_fire(s.name, f, pid=child.pid)
        self.running[s.name] = _Running(f, child, time.time())
        what = f"diagnose {s.runbook}".strip() if s.diagnose else s.runbook
        self.report(f"{s.name}: fired for {fmt_time(f, s.tz)}{late}: {what} on "
                    f"{s.nodes}{' (dry run)' if s.dry_run else ''}, no batch after "
                    f"{fmt_time(end, s.tz)} (pid {child.pid})")
        return [self._tell(s, Fire(s.name, f, "fired", late.strip(" ()")))]

    # -- runs in flight --------------------------------------------------------------------------
    def _busy(self, s: Schedule) -> str:
        """Why the schedule cannot fire now (its previous run is still going), or ""."""
        mine = self.running.get(s.name)
        if mine is not None and mine.child.poll() is None:
            return (f"the run fired at {fmt_time(mine.fire_time, s.tz)} "
                    f"({mine.run_id or f'pid {mine.child.pid}'}) is still going")
        for row in self.journal.unfinished_fires(s.name):
            if mine is not None and row.fire_time == mine.fire_time:
                continue
            run_id, alive = self._liveness(row)
            if alive:
                return (f"the run fired at {fmt_time(row.fire_time, s.tz)} "
                        f"({run_id or 'starting'}, by {row.claimed_by}) is still going")
            self._settle(row, run_id)
        return ""

    def _liveness(self, row: FireRow) -> tuple[str | None, bool]:
        """(run id, still going?) of a fire launched by another (or an earlier) scheduler."""
        run_id = row.run_id
        local = row.controller == self.controller
        if not run_id and row.pid and local:
            run_id = self.journal.run_of_process(row.pid, self.controller, row.recorded - 60)
        run = self.journal.run(run_id) if run_id else None
        if run is not None:
            return run_id, run.status == "running"
        if local:
            return run_id, bool(row.pid) and pid_alive(int(row.pid or 0))
        return run_id, self.clock() < (row.window_end or 0)

    def _settle(self, row: FireRow, run_id: str | None) -> None:
        run = self.journal.run(run_id) if run_id else None
        self.journal.update_fire(row.schedule, row.fire_time, run_id=run_id,
                                 run_status=run.status if run else None,
                                 finished=time.time(),
                                 note="ended while no scheduler was watching it")

    def reconcile(self) -> None:
        """Settle fires whose runs ended while no scheduler watched them (after a crash)."""
        for row in self.journal.unfinished_fires():
            if row.schedule in self.running:
                continue
            run_id, alive = self._liveness(row)
            if not alive:
                self._settle(row, run_id)

    def reap(self) -> None:
        """Learn the run ids of runs in flight; record the ones that ended."""
        for name, r in list(self.running.items()):
            code = r.child.poll()
            if code is None:
                if r.run_id is None:
                    r.run_id = self.journal.run_of_process(r.child.pid, self.controller,
                                                           r.launched - 5)
                    if r.run_id:
                        self.journal.update_fire(name, r.fire_time, run_id=r.run_id)
                continue
            out = r.child.outcome()
            run_id = out.run_id or r.run_id or self.journal.run_of_process(
                r.child.pid, self.controller, r.launched - 5)
            run = self.journal.run(run_id) if run_id and not out.run_status else None
            status = out.run_status or (run.status if run else None)
            self.journal.update_fire(name, r.fire_time, run_id=run_id, run_status=status,
                                     exit_code=code, note=out.note, finished=time.time())
            resume = (f"; finish it with: netops run --resume {run_id}" if run_id and status
                      in ("halted", "interrupted", "failed") and "--resume" not in out.note
                      else "")
            self.report(f"{name}: run {run_id or '(none)'} ended: {status or f'exit {code}'}"
                        + (f": {out.note}" if out.note else "") + resume)
            ended = Outcome(code, run_id, status, out.note, out.doc)
            self.ended.append((name, ended))
            del self.running[name]
            for w in self.watchers:
                try:
                    w.ended(self.schedules.get(name), name, r.fire_time, ended)
                except Exception as e:  # a watcher never stops the scheduler
                    self.report(f"{name}: {type(w).__name__} failed: {e}")

    def stop_runs(self, timeout: float = 60.0, sleep: Callable[[float], None] = time.sleep) -> None:
        """Interrupt every run in flight (each finishes its steps in flight and halts,
        resumable); after `timeout`, interrupt again (the run abandons those steps)."""
        for attempt, limit in ((1, timeout), (2, 10.0)):
            if not self.running:
                return
            for name, r in self.running.items():
                self.report(f"{name}: interrupting run {r.run_id or f'pid {r.child.pid}'}"
                            + (" again" if attempt == 2 else ""))
                r.child.interrupt()
            deadline = time.monotonic() + limit
            while self.running and time.monotonic() < deadline:
                sleep(0.2)
                self.reap()

    # -- loops -----------------------------------------------------------------------------------
    def serve(self, stop: threading.Event,
              reload: Callable[[], Mapping[str, Schedule] | None] = lambda: None,
              interval: float = 1.0, stop_timeout: float = 60.0) -> None:
        """Run until `stop` is set; then interrupt the runs in flight and wait for them."""
        self.reconcile()
        while not stop.is_set():
            fresh = reload()
            if fresh is not None:
                self.set_schedules(fresh)
            self.tick()
            nxt = self.next_fire()
            stop.wait(max(0.05, min(interval, nxt - self.clock()) if nxt else interval))
        self.stop_runs(stop_timeout)

    def once(self, stop: threading.Event, stop_timeout: float = 60.0) -> list[Fire]:
        """Fire what is due now and wait for those runs (for cron users)."""
        self.reconcile()
        fires = self.tick()
        while self.running and not stop.is_set():
            stop.wait(0.5)
            self.reap()
        self.stop_runs(stop_timeout)
        return fires


# -- launching `netops run` ---------------------------------------------------------------------
def run_args(s: Schedule, window_end: float) -> list[str]:
    """The `netops run` (or `netops diagnose`) arguments of one fire."""
    if s.diagnose:
        return ["diagnose", "--nodes", s.nodes, *(["--runbook", s.runbook] if s.runbook
                                                  else []), "--json"]
    args = ["run", s.runbook, "--nodes", s.nodes]
    for pair in s.vars:
        args += ["--var", pair]
    for flag, value in (("--batch-size", s.batch_size), ("--max-fail", s.max_fail),
                        ("--pause", s.pause)):
        if value is not None:
            args += [flag, value]
    if s.dry_run:
        args.append("--dry-run")
    until = datetime.fromtimestamp(window_end, UTC).isoformat(timespec="seconds")
    return [*args, "--until", until, "--yes", "--json"]


class ProcessChild:
    """A `netops run` process in its own session (a Ctrl-C on the scheduler's terminal is not
    delivered to it twice); its output goes to temporary files."""

    def __init__(self, proc: subprocess.Popen[bytes], out: IO[bytes], err: IO[bytes]) -> None:
        self.proc, self.out, self.err = proc, out, err

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def interrupt(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGINT)

    def outcome(self) -> Outcome:
        code = self.proc.wait()
        self.out.seek(0)
        self.err.seek(0)
        stdout = self.out.read().decode(errors="replace")
        stderr = self.err.read().decode(errors="replace")
        self.out.close()
        self.err.close()
        doc: dict[str, Any] = {}
        with contextlib.suppress(ValueError, IndexError):
            doc = json.loads(stdout.strip().splitlines()[-1])
        note = str(doc.get("reason") or "")
        if not doc:
            lines = [ln for ln in stderr.splitlines() if ln.strip()]
            errors = [ln for ln in lines if ln.startswith("error:")]
            note = " ".join(errors or lines[-1:])[:500]
        return Outcome(code, doc.get("run_id"), doc.get("status"), note, doc or None)


@dataclass
class ProcessLauncher:
    """Starts `python -m netops [global options] run ...` with the scheduler's settings."""

    global_args: Sequence[str] = ()
    cwd: Path | None = None
    env: Mapping[str, str] | None = None
    python: str = sys.executable

    def start(self, schedule: Schedule, window_end: float) -> ProcessChild:
        # closed by ProcessChild.outcome(), once the run has ended
        out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115
        argv = [self.python, "-m", "netops", *self.global_args, *run_args(schedule, window_end)]
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    cwd=self.cwd, env=dict(self.env) if self.env else None,
                                    start_new_session=True)
        except OSError:
            out.close()
            err.close()
            raise
        return ProcessChild(proc, out, err)
