"""`Journal`: every read and write of the run journal, as typed methods over `Sql` written
once (the differences between databases are `netops.journal.dialect`'s)."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netops.errors import JournalError, UserError
from netops.journal.dialect import Dialect, Row, Sql, open_dialect
from netops.journal.rows import Chain, ChainState, FireRow, HostRow, RunRow, StepRow

if TYPE_CHECKING:
    from netops.journal.observer import JournalObserver

DONE = frozenset({"ok", "changed"})
"""Step statuses of a step that must not run again."""


def default_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "netops" / "journal.db"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What is known about a run before it starts (secrets already masked by the caller)."""

    run_id: str
    runbook: str
    runbook_path: str = ""
    runbook_sha256: str = ""
    inventory: str = ""
    inventory_sha256: str = ""
    nodes: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    batches: Sequence[Sequence[str]] = ()
    argv: Sequence[str] = ()
    resumed_from: str | None = None
    rollout: Mapping[str, Any] = field(default_factory=dict)
    """The rollout as planned (batch sizes, tolerance, pause, forks, timeout): a resume
    keeps it unless an option overrides it."""
    operator: str = field(default_factory=lambda: _user())
    controller: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started: float = field(default_factory=time.time)


# -- the statements ------------------------------------------------------------------------------
START_RUN = Sql(
    "INSERT INTO runs (run_id, runbook, runbook_path, runbook_sha256, inventory, "
    "inventory_sha256, nodes, params, dry_run, status, operator, controller, pid, argv, "
    "batches, resumed_from, started, rollout) VALUES ({run_id}, {runbook}, {runbook_path}, "
    "{runbook_sha256}, {inventory}, {inventory_sha256}, {nodes}, {params}, {dry_run}, "
    "{status}, {operator}, {controller}, {pid}, {argv}, {batches}, {resumed_from}, {started}, "
    "{rollout})")
FINISH_RUN = Sql("UPDATE runs SET status={status}, reason={reason}, finished={finished} "
                 "WHERE run_id={run_id}")
START_HOST = Sql(
    "INSERT INTO hosts (run_id, host, batch, status, started) "
    "VALUES ({run_id}, {host}, {batch}, {status}, {started}) ON CONFLICT (run_id, host) "
    "DO UPDATE SET batch=excluded.batch, status=excluded.status, started=excluded.started")
FINISH_HOST = Sql("UPDATE hosts SET status={status}, finished={finished} "
                  "WHERE run_id={run_id} AND host={host}")
END_HOST = Sql(
    "INSERT INTO hosts (run_id, host, batch, status) VALUES ({run_id}, {host}, {batch}, "
    "{status}) ON CONFLICT (run_id, host) DO UPDATE SET status=excluded.status")
RECORD_STEP = Sql(
    "INSERT INTO steps (run_id, host, seq, step_id, name, status, changed, finding, rc, "
    "command, stdout, stderr, note, diff, started, duration_s) VALUES ({run_id}, {host}, "
    "{seq}, {step_id}, {name}, {status}, {changed}, {finding}, {rc}, {command}, {stdout}, "
    "{stderr}, {note}, {diff}, {started}, {duration_s}) "
    "ON CONFLICT (run_id, host, seq) DO UPDATE SET status=excluded.status, "
    "changed=excluded.changed, finding=excluded.finding, rc=excluded.rc, "
    "command=excluded.command, stdout=excluded.stdout, stderr=excluded.stderr, "
    "note=excluded.note, diff=excluded.diff, duration_s=excluded.duration_s")
CAN_WRITE = Sql("UPDATE runs SET run_id = run_id WHERE 1 = 0")
"""Writes no row, but is refused by a read-only database (SQLite on a read-only mount, a
PostgreSQL standby or a role without UPDATE): a SELECT in a write transaction is not."""
COUNT_IN_FLIGHT = Sql("SELECT COUNT(*) AS n FROM steps WHERE run_id={run_id} AND "
                      "status='running'")
SETTLE_STEPS = Sql("UPDATE steps SET status='unknown', note={note} WHERE run_id={run_id} AND "
                   "status='running'")
SETTLE_HOSTS = Sql("UPDATE hosts SET status='unknown' WHERE run_id={run_id} AND "
                   "status='running'")
RUN = Sql("SELECT * FROM runs WHERE run_id={run_id} OR run_id LIKE {prefix} ESCAPE '\\' "
          "ORDER BY started DESC LIMIT 2")
RESUMED_BY = Sql("SELECT * FROM runs WHERE resumed_from={run_id} ORDER BY started")
HOSTS = Sql("SELECT * FROM hosts WHERE run_id={run_id} ORDER BY batch, started, host")
STEPS = Sql("SELECT * FROM steps WHERE run_id={run_id} ORDER BY started, seq")
HOST_STEPS = Sql("SELECT * FROM steps WHERE run_id={run_id} AND host={host} "
                 "ORDER BY started, seq")
RUN_OF_PROCESS = Sql("SELECT run_id FROM runs WHERE pid={pid} AND controller={controller} "
                     "AND started>={since} ORDER BY started DESC LIMIT 1")
CLAIM_FIRE = Sql(
    "INSERT INTO fires (schedule, fire_time, status, window_end, claimed_by, controller, note, "
    "recorded) VALUES ({schedule}, {fire_time}, {status}, {window_end}, {claimed_by}, "
    "{controller}, {note}, {recorded}) ON CONFLICT (schedule, fire_time) DO NOTHING")
FIRE_CLAIMANT = Sql("SELECT claimed_by FROM fires WHERE schedule={schedule} AND "
                    "fire_time={fire_time}")
LAST_FIRE = Sql("SELECT MAX(fire_time) AS t FROM fires WHERE schedule={schedule}")
UNFINISHED = "SELECT * FROM fires WHERE status='fired' AND finished IS NULL"
UNFINISHED_FIRES = Sql(UNFINISHED + " ORDER BY fire_time")
UNFINISHED_FIRES_OF = Sql(UNFINISHED + " AND schedule={schedule} ORDER BY fire_time")

RUN_FILTERS = {"node": "run_id IN (SELECT run_id FROM hosts WHERE host={node})",
               "runbook": "runbook={runbook}", "since": "started>={since}"}
"""The conditions `Journal.runs` may combine."""

IN_FLIGHT_NOTE = "in flight when the run stopped: its outcome on the node is unknown"
FIRE_COLUMNS = frozenset({"status", "run_id", "run_status", "exit_code", "pid", "note",
                          "finished"})
"""The columns of a fire that `update_fire` may set."""


class Journal:
    """One journal database; safe to use from the engine's worker threads."""

    def __init__(self, target: Path | str) -> None:
        self.path = target
        try:
            self._db: Dialect = open_dialect(target)
        except ImportError as e:
            raise UserError("a PostgreSQL journal needs psycopg",
                            hint='pip install "psycopg[binary]"') from e
        except Exception as e:  # sqlite3.Error, OSError, psycopg.Error
            raise UserError(f"cannot open the journal {_redact(str(target))}: {e}",
                            hint="set --journal or NETOPS_JOURNAL to a writable path or a "
                            "postgresql:// URL") from e
        self._lock = threading.Lock()

    @classmethod
    def open(cls, spec: str | None) -> Journal:
        """The journal at `spec` (a path or a postgresql:// URL), or the default file."""
        if spec and "://" in spec:
            if not spec.startswith(("postgresql://", "postgres://")):
                raise UserError(f"journal URL {_redact(spec)!r}: only postgresql:// URLs and "
                                "file paths are supported")
            return cls(spec)
        return cls(Path(spec).expanduser() if spec else default_path())

    @property
    def shared(self) -> bool:
        """A server's database (PostgreSQL), not a local file."""
        return self._db.shared

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _failing_as(self, action: str) -> Iterator[None]:
        """Database errors (a full disk, a lock held past the busy timeout, garbage pages, a
        server gone) become one `JournalError` naming the journal: never a traceback."""
        try:
            yield
        except JournalError:
            raise
        except Exception as e:  # sqlite3.Error, OSError, psycopg.Error
            if isinstance(e, (UserError, ValueError)):
                raise
            raise JournalError(_redact(str(self.path)), action, e) from e

    @contextmanager
    def transaction(self) -> Iterator[Dialect]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        with self._lock, self._failing_as("writing"):
            self._db.begin()
            try:
                yield self._db
            except BaseException:
                with contextlib.suppress(Exception):
                    self._db.end(False)
                raise
            self._db.end(True)

    def _write(self, sql: Sql, params: Mapping[str, Any]) -> None:
        """One statement, its own transaction (autocommit): a third of the calls of
        BEGIN/statement/COMMIT, for the per-step events of a run."""
        with self._lock, self._failing_as("writing"):
            self._db.execute(sql, params)

    def _read(self, sql: Sql, params: Mapping[str, Any] | None = None) -> list[Row]:
        with self._lock, self._failing_as("reading"):
            return self._db.execute(sql, params)

    def check(self) -> None:
        """Fail now (JournalError) if the journal cannot take a write: locked by another
        writer past the busy timeout, read-only, corrupt. Run before any host is touched."""
        with self.transaction() as db:
            db.execute(CAN_WRITE)

    def observer(self, run_id: str, secrets: frozenset[str] = frozenset(),
                 on_failure: Callable[[JournalError], None] | None = None) -> JournalObserver:
        from netops.journal.observer import JournalObserver

        return JournalObserver(self, run_id, secrets, on_failure)

    # -- writing a run -----------------------------------------------------------------------
    def start_run(self, rec: RunRecord) -> None:
        with self.transaction() as db:
            db.execute(START_RUN, {
                "run_id": rec.run_id, "runbook": rec.runbook, "runbook_path": rec.runbook_path,
                "runbook_sha256": rec.runbook_sha256, "inventory": rec.inventory,
                "inventory_sha256": rec.inventory_sha256, "nodes": rec.nodes,
                "params": json.dumps(dict(rec.params), default=str),
                "dry_run": int(rec.dry_run), "status": "running", "operator": rec.operator,
                "controller": rec.controller, "pid": rec.pid, "argv": json.dumps(list(rec.argv)),
                "batches": json.dumps([list(b) for b in rec.batches]),
                "resumed_from": rec.resumed_from, "started": rec.started,
                "rollout": json.dumps(dict(rec.rollout))})

    def start_batch(self, run_id: str, batch: int, hosts: Iterable[str]) -> None:
        """The hosts of a batch are running (a resume's host gets its new batch)."""
        now = time.time()
        with self.transaction() as db:
            for host in hosts:
                db.execute(START_HOST, {"run_id": run_id, "host": host, "batch": batch,
                                        "status": "running", "started": now})

    def record_step(self, row: StepRow) -> None:
        """Write a step's row: a new one, or the end of one that started (its `started`
        stays the one first written)."""
        values = row.to_json()
        values.update(changed=int(row.changed), finding=int(row.finding))
        self._write(RECORD_STEP, values)

    def finish_host(self, run_id: str, host: str, status: str) -> None:
        self._write(FINISH_HOST, {"run_id": run_id, "host": host, "status": status,
                                  "finished": time.time()})

    def finish_run(self, run_id: str, status: str, reason: str = "",
                   hosts: Iterable[HostRow] = ()) -> None:
        """The run's end, and with it (one transaction) each host's final status."""
        with self.transaction() as db:
            for h in hosts:
                db.execute(END_HOST, {"run_id": run_id, "host": h.host, "batch": h.batch,
                                      "status": h.status})
            db.execute(FINISH_RUN, {"run_id": run_id, "status": status, "reason": reason,
                                    "finished": time.time()})

    def settle_unknown(self, run_id: str) -> int:
        """Mark the steps a finished or dead run left `running` as `unknown`: they were in
        flight when it stopped, and nobody knows what they did. Returns how many."""
        with self.transaction() as db:
            n = db.execute(COUNT_IN_FLIGHT, {"run_id": run_id})[0]["n"]
            db.execute(SETTLE_STEPS, {"run_id": run_id, "note": IN_FLIGHT_NOTE})
            db.execute(SETTLE_HOSTS, {"run_id": run_id})
        return int(n)

    # -- reading runs ------------------------------------------------------------------------
    def run(self, run_id: str) -> RunRow | None:
        """The run `run_id`, or the one run whose id starts with it."""
        rows = self._read(RUN, {"run_id": run_id, "prefix": _like_prefix(run_id)})
        if len(rows) > 1 and rows[0]["run_id"] != run_id:
            raise UserError(f"run id {run_id!r} is ambiguous", hint="give more characters")
        return RunRow.from_db(rows[0]) if rows else None

    def runs(self, *, node: str | None = None, runbook: str | None = None,
             since: float | None = None, limit: int = 20) -> list[RunRow]:
        """Runs, newest first: those that touched `node`, of `runbook`, started since."""
        params: dict[str, Any] = {k: v for k, v in (("node", node), ("runbook", runbook))
                                  if v}
        if since is not None:
            params["since"] = since
        where = [RUN_FILTERS[k] for k in params]
        sql = Sql("SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
                  + " ORDER BY started DESC LIMIT {limit}")
        return [RunRow.from_db(r) for r in self._read(sql, {**params, "limit": limit})]

    def resumed_by(self, run_id: str) -> list[RunRow]:
        """The runs that resumed `run_id`, oldest first."""
        return [RunRow.from_db(r) for r in self._read(RESUMED_BY, {"run_id": run_id})]

    def hosts(self, run_id: str) -> list[HostRow]:
        return [HostRow.from_db(r) for r in self._read(HOSTS, {"run_id": run_id})]

    def steps(self, run_id: str, host: str | None = None) -> list[StepRow]:
        rows = (self._read(HOST_STEPS, {"run_id": run_id, "host": host}) if host
                else self._read(STEPS, {"run_id": run_id}))
        return [StepRow.from_db(r) for r in rows]

    def run_of_process(self, pid: int, controller: str, since: float) -> str | None:
        """The run a `netops run` process started (the scheduler learns its id this way)."""
        rows = self._read(RUN_OF_PROCESS, {"pid": pid, "controller": controller,
                                           "since": since})
        return str(rows[0]["run_id"]) if rows else None

    # -- a chain of runs (netops.resume) -----------------------------------------------------
    def chain(self, run_id: str) -> Chain | None:
        """The run `run_id` (or a unique prefix) with the run it resumed, transitively, and
        every run that resumed any of them; None when there is no such run."""
        named = self.run(run_id)
        if named is None:
            return None
        root, seen = named, {named.run_id}
        while root.resumed_from:
            parent = self.run(root.resumed_from)
            if parent is None or parent.run_id in seen:
                break
            seen.add(parent.run_id)
            root = parent
        runs, todo, seen = [root], [root.run_id], {root.run_id}
        while todo:
            for child in self.resumed_by(todo.pop()):
                if child.run_id not in seen:
                    seen.add(child.run_id)
                    runs.append(child)
                    todo.append(child.run_id)
        return Chain(named, tuple(sorted(runs, key=lambda r: r.started)))

    def resume_state(self, run_id: str) -> ChainState | None:
        """What the chain of `run_id` did, as the journal has it now: each host's latest
        status and, per host, the steps completed and those of unknown outcome. A step is
        unknown when some run left it so and no run of the chain completed it."""
        chain = self.chain(run_id)
        if chain is None:
            return None
        status: dict[str, str] = {}
        done: dict[str, set[str]] = {}
        unknown: dict[str, set[str]] = {}
        for run in chain.runs:
            for h in self.hosts(run.run_id):
                if h.status != "not-run" or h.host not in status:
                    status[h.host] = h.status
            for s in self.steps(run.run_id):
                if s.status in DONE:
                    done.setdefault(s.host, set()).add(s.step_id)
                elif s.status == "unknown":
                    unknown.setdefault(s.host, set()).add(s.step_id)
        left = {h: frozenset(ids - done.get(h, set())) for h, ids in unknown.items()}
        return ChainState(chain, status, {h: frozenset(ids) for h, ids in done.items()},
                          {h: ids for h, ids in left.items() if ids})

    # -- scheduled fires (netops.scheduler) --------------------------------------------------
    def claim_fire(self, schedule: str, fire_time: float, status: str, *, claimed_by: str,
                   window_end: float | None = None, note: str = "",
                   controller: str | None = None) -> bool:
        """Record what became of one fire of a schedule, unless it is recorded already.

        One row per (schedule, fire time), taken in one transaction: of two schedulers (or a
        scheduler and its restarted self) only one gets True, and only that one acts on it.
        """
        key = {"schedule": schedule, "fire_time": fire_time}
        with self.transaction() as db:
            db.execute(CLAIM_FIRE, {**key, "status": status, "window_end": window_end,
                                    "claimed_by": claimed_by, "note": note,
                                    "controller": controller or socket.gethostname(),
                                    "recorded": time.time()})
            rows = db.execute(FIRE_CLAIMANT, key)
        return bool(rows) and rows[0]["claimed_by"] == claimed_by

    def update_fire(self, schedule: str, fire_time: float, **values: Any) -> None:
        """Set columns of a fire: status, run_id, run_status, exit_code, pid, note, finished."""
        unknown = set(values) - FIRE_COLUMNS
        if unknown:
            raise ValueError(f"no fire column {sorted(unknown)[0]!r}")
        # only allow-listed column names reach the SQL text; the values are parameters
        sets = ", ".join(f"{n}={{{n}}}" for n in sorted(values))
        sql = Sql(f"UPDATE fires SET {sets} WHERE schedule={{schedule}} AND "
                  "fire_time={fire_time}")
        with self.transaction() as db:
            db.execute(sql, {**values, "schedule": schedule, "fire_time": fire_time})

    def fires(self, schedule: str | None = None, *, limit: int = 20,
              status: str | None = None) -> list[FireRow]:
        """Recorded fires, newest first."""
        params = {k: v for k, v in (("schedule", schedule), ("status", status)) if v}
        where = " AND ".join(f"{k}={{{k}}}" for k in params)
        sql = Sql("SELECT * FROM fires" + (f" WHERE {where}" if where else "")
                  + " ORDER BY fire_time DESC LIMIT {limit}")
        return [FireRow.from_db(r) for r in self._read(sql, {**params, "limit": limit})]

    def last_fire_time(self, schedule: str) -> float | None:
        rows = self._read(LAST_FIRE, {"schedule": schedule})
        return float(rows[0]["t"]) if rows and rows[0]["t"] is not None else None

    def unfinished_fires(self, schedule: str | None = None) -> list[FireRow]:
        """Fires that launched a run whose end no scheduler has recorded yet."""
        rows = (self._read(UNFINISHED_FIRES_OF, {"schedule": schedule}) if schedule
                else self._read(UNFINISHED_FIRES))
        return [FireRow.from_db(r) for r in rows]


def _like_prefix(text: str) -> str:
    """A LIKE pattern matching what starts with `text` (its own % and _ taken literally)."""
    return re.sub(r"([\\%_])", r"\\\1", text) + "%"


def _redact(url: str) -> str:
    """A URL with its password replaced, for messages."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
