"""The run journal: every run, host and step, written as the run proceeds (SQLite, WAL).

The journal is an Observer: each event is committed when it happens, so a run killed at any
moment leaves an accurate record (its last step stays `running`, the run `running` with a dead
pid, which `history` shows as `crashed`). Output is bounded and secrets are masked before
anything reaches the database.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netops.engine.events import (
    BatchStarted,
    Event,
    HostFinished,
    RunFinished,
    StepFinished,
    StepStarted,
)
from netops.engine.result import StepResult
from netops.errors import JournalError, UserError
from netops.transport.base import mask

OUTPUT_LIMIT = 64 * 1024
"""Bytes of stdout/stderr kept per step (the tail, where errors are)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, runbook TEXT NOT NULL, runbook_path TEXT, runbook_sha256 TEXT,
    inventory TEXT, inventory_sha256 TEXT, nodes TEXT, params TEXT, dry_run INTEGER,
    status TEXT NOT NULL, reason TEXT, operator TEXT, controller TEXT, pid INTEGER,
    argv TEXT, batches TEXT, resumed_from TEXT, started DOUBLE PRECISION NOT NULL,
    finished DOUBLE PRECISION);
CREATE TABLE IF NOT EXISTS hosts (
    run_id TEXT NOT NULL, host TEXT NOT NULL, batch INTEGER, status TEXT NOT NULL,
    started DOUBLE PRECISION, finished DOUBLE PRECISION, PRIMARY KEY (run_id, host));
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL, host TEXT NOT NULL, seq INTEGER NOT NULL, step_id TEXT NOT NULL,
    name TEXT, status TEXT NOT NULL, changed INTEGER, finding INTEGER, rc INTEGER, command TEXT,
    stdout TEXT,
    stderr TEXT, note TEXT, diff TEXT, started DOUBLE PRECISION NOT NULL,
    duration_s DOUBLE PRECISION,
    PRIMARY KEY (run_id, host, seq));
CREATE TABLE IF NOT EXISTS fires (
    schedule TEXT NOT NULL, fire_time DOUBLE PRECISION NOT NULL, status TEXT NOT NULL,
    run_id TEXT, run_status TEXT, exit_code INTEGER, window_end DOUBLE PRECISION,
    claimed_by TEXT, controller TEXT, pid INTEGER, note TEXT,
    recorded DOUBLE PRECISION NOT NULL, finished DOUBLE PRECISION,
    PRIMARY KEY (schedule, fire_time));
CREATE INDEX IF NOT EXISTS runs_started ON runs (started);
CREATE INDEX IF NOT EXISTS hosts_host ON hosts (host, run_id);
"""

ADDED_COLUMNS = (("steps", "finding", "INTEGER"), ("runs", "rollout", "TEXT"))
"""Columns added after a table first shipped: older journals get them when opened."""


def default_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "netops" / "journal.db"


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


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


class _Sqlite:
    """SQLite in WAL mode: the default, one file, no server."""

    placeholder = "?"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, timeout=30,
                                  isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        for table, column, kind in ADDED_COLUMNS:
            if column not in {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        self.db.row_factory = sqlite3.Row

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def end(self, ok: bool) -> None:
        self.db.execute("COMMIT" if ok else "ROLLBACK")

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute(sql, tuple(args))]

    def close(self) -> None:
        self.db.close()


class _Postgres:
    """PostgreSQL, so that a team shares one history (NETOPS_JOURNAL=postgresql://...)."""

    placeholder = "%s"

    def __init__(self, url: str) -> None:
        import psycopg
        from psycopg.rows import dict_row

        self.db = psycopg.connect(url, autocommit=True, row_factory=dict_row,
                                  connect_timeout=10)
        with self.db.transaction():
            self.db.execute("SELECT pg_advisory_xact_lock(4242)")  # one schema creator
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self.db.execute(statement)
            for table, column, kind in ADDED_COLUMNS:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")

    def begin(self) -> None:
        self.db.execute("BEGIN")

    def end(self, ok: bool) -> None:
        self.db.execute("COMMIT" if ok else "ROLLBACK")

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.db.execute(sql.replace("?", "%s"), tuple(args))
        return list(cur.fetchall()) if cur.description else []

    def close(self) -> None:
        self.db.close()


class Journal:
    """One journal database; safe to use from the engine's worker threads."""

    def __init__(self, target: Path | str) -> None:
        self.path = target
        try:
            if isinstance(target, str) and target.startswith(("postgresql://", "postgres://")):
                self._db: _Sqlite | _Postgres = _Postgres(target)
            else:
                self._db = _Sqlite(Path(target))
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
        return isinstance(self._db, _Postgres)

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
    def transaction(self) -> Iterator[_Sqlite | _Postgres]:
        with self._lock, self._failing_as("writing"):
            self._db.begin()
            try:
                yield self._db
            except BaseException:
                with contextlib.suppress(Exception):
                    self._db.end(False)
                raise
            self._db.end(True)

    def write(self, sql: str, args: Sequence[Any] = ()) -> None:
        """One statement, its own transaction (autocommit): a third of the calls of
        BEGIN/statement/COMMIT, for the per-step events of a run."""
        with self._lock, self._failing_as("writing"):
            self._db.execute(sql, args)

    def check(self) -> None:
        """Fail now (JournalError) if the journal cannot take a write: locked by another
        writer past the busy timeout, read-only, corrupt. Run before any host is touched."""
        with self.transaction() as db:
            db.execute("SELECT COUNT(*) AS n FROM runs")

    # -- writing ----------------------------------------------------------------------------
    def start_run(self, rec: RunRecord) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs (run_id, runbook, runbook_path, runbook_sha256, inventory, "
                "inventory_sha256, nodes, params, dry_run, status, operator, controller, pid, "
                "argv, batches, resumed_from, started, rollout) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (rec.run_id, rec.runbook, rec.runbook_path, rec.runbook_sha256, rec.inventory,
                 rec.inventory_sha256, rec.nodes, json.dumps(dict(rec.params), default=str),
                 int(rec.dry_run), "running", rec.operator, rec.controller, rec.pid,
                 json.dumps(list(rec.argv)), json.dumps([list(b) for b in rec.batches]),
                 rec.resumed_from, rec.started, json.dumps(dict(rec.rollout))))

    def observer(self, run_id: str, secrets: frozenset[str] = frozenset(),
                 on_failure: Callable[[JournalError], None] | None = None) -> JournalObserver:
        return JournalObserver(self, run_id, secrets, on_failure)

    def finish_run(self, run_id: str, status: str, reason: str = "") -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET status=?, reason=?, finished=? WHERE run_id=?",
                       (status, reason, time.time(), run_id))

    # -- reading ----------------------------------------------------------------------------
    def run(self, run_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM runs WHERE run_id=? OR run_id LIKE ? "
                           "ORDER BY started DESC LIMIT 2", (run_id, run_id + "%"))
        if len(rows) > 1 and rows[0]["run_id"] != run_id:
            raise UserError(f"run id {run_id!r} is ambiguous", hint="give more characters")
        return _run_row(rows[0]) if rows else None

    def runs(self, *, node: str | None = None, runbook: str | None = None,
             since: float | None = None, limit: int = 20) -> list[dict[str, Any]]:
        where: list[str] = []
        args: list[Any] = []
        if node:
            where.append("run_id IN (SELECT run_id FROM hosts WHERE host=?)")
            args.append(node)
        if runbook:
            where.append("runbook=?")
            args.append(runbook)
        if since is not None:
            where.append("started>=?")
            args.append(since)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._query(sql + " ORDER BY started DESC LIMIT ?", (*args, limit))
        return [_run_row(r) for r in rows]

    def resumed_by(self, run_id: str) -> list[dict[str, Any]]:
        """The runs that resumed `run_id`, oldest first."""
        rows = self._query("SELECT * FROM runs WHERE resumed_from=? ORDER BY started",
                           (run_id,))
        return [_run_row(r) for r in rows]

    def settle_unknown(self, run_id: str) -> int:
        """Mark the steps a finished or dead run left `running` as `unknown`: they were in
        flight when it stopped, and nobody knows what they did. Returns how many."""
        with self.transaction() as db:
            n = db.execute("SELECT COUNT(*) AS n FROM steps WHERE run_id=? AND status=?",
                           (run_id, "running"))[0]["n"]
            db.execute("UPDATE steps SET status=?, note=? WHERE run_id=? AND status=?",
                       ("unknown", "in flight when the run stopped: its outcome on the node "
                        "is unknown", run_id, "running"))
            db.execute("UPDATE hosts SET status=? WHERE run_id=? AND status=?",
                       ("unknown", run_id, "running"))
        return int(n)

    def hosts(self, run_id: str) -> list[dict[str, Any]]:
        return self._query("SELECT * FROM hosts WHERE run_id=? ORDER BY batch, started, host",
                           (run_id,))

    def steps(self, run_id: str, host: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM steps WHERE run_id=?" + (" AND host=?" if host else "")
        args = (run_id, host) if host else (run_id,)
        return self._query(sql + " ORDER BY started, seq", args)

    # -- scheduled fires (netops.scheduler) -------------------------------------------------
    def claim_fire(self, schedule: str, fire_time: float, status: str, *, claimed_by: str,
                   window_end: float | None = None, note: str = "",
                   controller: str | None = None) -> bool:
        """Record what became of one fire of a schedule, unless it is recorded already.

        One row per (schedule, fire time), taken in one transaction: of two schedulers (or a
        scheduler and its restarted self) only one gets True, and only that one acts on it.
        """
        with self.transaction() as db:
            db.execute("INSERT INTO fires (schedule, fire_time, status, window_end, claimed_by, "
                       "controller, note, recorded) VALUES (?,?,?,?,?,?,?,?) "
                       "ON CONFLICT (schedule, fire_time) DO NOTHING",
                       (schedule, fire_time, status, window_end, claimed_by,
                        controller or socket.gethostname(), note, time.time()))
            rows = db.execute("SELECT claimed_by FROM fires WHERE schedule=? AND fire_time=?",
                              (schedule, fire_time))
        return bool(rows) and rows[0]["claimed_by"] == claimed_by

    _FIRE_COLUMNS = frozenset({"status", "run_id", "run_status", "exit_code", "pid", "note",
                               "finished"})

    def update_fire(self, schedule: str, fire_time: float, **values: Any) -> None:
        """Set columns of a fire: status, run_id, run_status, exit_code, pid, note, finished."""
        unknown = set(values) - self._FIRE_COLUMNS
        if unknown:
            raise ValueError(f"no fire column {sorted(unknown)[0]!r}")
        names = sorted(values)  # only allow-listed column names reach the SQL text
        with self.transaction() as db:
            db.execute(f"UPDATE fires SET {', '.join(f'{n}=?' for n in names)} "
                       "WHERE schedule=? AND fire_time=?",
                       (*(values[n] for n in names), schedule, fire_time))

    def fires(self, schedule: str | None = None, *, limit: int = 20,
              status: str | None = None) -> list[dict[str, Any]]:
        """Recorded fires, newest first."""
        where = [c for c, v in (("schedule=?", schedule), ("status=?", status)) if v]
        args = [v for v in (schedule, status) if v]
        return self._query("SELECT * FROM fires" + (" WHERE " + " AND ".join(where)
                                                    if where else "")
                           + " ORDER BY fire_time DESC LIMIT ?", (*args, limit))

    def last_fire_time(self, schedule: str) -> float | None:
        rows = self._query("SELECT MAX(fire_time) AS t FROM fires WHERE schedule=?", (schedule,))
        return float(rows[0]["t"]) if rows and rows[0]["t"] is not None else None

    def unfinished_fires(self, schedule: str | None = None) -> list[dict[str, Any]]:
        """Fires that launched a run whose end no scheduler has recorded yet."""
        sql = "SELECT * FROM fires WHERE status='fired' AND finished IS NULL"
        if schedule:
            return self._query(sql + " AND schedule=? ORDER BY fire_time", (schedule,))
        return self._query(sql + " ORDER BY fire_time", ())

    def run_of_process(self, pid: int, controller: str, since: float) -> str | None:
        """The run a `netops run` process started (the scheduler learns its id this way)."""
        rows = self._query("SELECT run_id FROM runs WHERE pid=? AND controller=? AND started>=? "
                           "ORDER BY started DESC LIMIT 1", (pid, controller, since))
        return str(rows[0]["run_id"]) if rows else None

    def _query(self, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        with self._lock, self._failing_as("reading"):
            return self._db.execute(sql, args)


def _redact(url: str) -> str:
    """A URL with its password replaced, for messages."""
    import re

    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def _run_row(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["params"] = json.loads(out["params"] or "{}")
    out["batches"] = json.loads(out["batches"] or "[]")
    out["argv"] = json.loads(out["argv"] or "[]")
    out["rollout"] = json.loads(out.get("rollout") or "{}")
    out["dry_run"] = bool(out["dry_run"])
    if out["status"] == "running" and not _alive(out["pid"], out["controller"]):
        out["status"] = "crashed"
    return out


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine still exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive(pid: int | None, controller: str | None) -> bool:
    if not pid or controller != socket.gethostname():
        return True  # another machine's run: assume it is still going
    return pid_alive(pid)


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
                now = time.time()
                with self.journal.transaction() as db:
                    for h in hosts:
                        db.execute("INSERT INTO hosts (run_id, host, batch, status, started) "
                                   "VALUES (?,?,?,?,?) ON CONFLICT (run_id, host) DO UPDATE SET "
                                   "batch=excluded.batch, status=excluded.status, "
                                   "started=excluded.started",
                                   (self.run_id, h, i, "running", now))
            case StepStarted(host=h, step_id=sid, name=name):
                seq = self._open[(h, sid)] = self._next(h, sid)
                self.journal.write(
                    "INSERT INTO steps (run_id, host, seq, step_id, name, status, started) "
                    "VALUES (?,?,?,?,?,?,?)", (self.run_id, h, seq, sid, name, "running",
                                               time.time()))
            case StepFinished(host=h, result=r):
                self._finish_step(h, r)
            case HostFinished(result=r):
                self.journal.write(
                    "UPDATE hosts SET status=?, finished=? WHERE run_id=? AND host=?",
                    (str(r.status), time.time(), self.run_id, r.host))
                written = self._written.get(r.host, set())
                for step in r.steps:  # steps marked not-run after a failure had no events
                    if step.id not in written:
                        self._finish_step(r.host, step)
            case RunFinished(result=run):
                with self.journal.transaction() as db:
                    for name, hr in run.hosts.items():
                        db.execute("INSERT INTO hosts (run_id, host, batch, status) VALUES "
                                   "(?,?,?,?) ON CONFLICT (run_id, host) DO UPDATE SET "
                                   "status=excluded.status", (self.run_id, name, hr.batch,
                                                              str(hr.status)))
                    db.execute("UPDATE runs SET status=?, reason=?, finished=? WHERE run_id=?",
                               (str(run.status), mask(run.reason, self.secrets), time.time(),
                                self.run_id))
            case _:
                pass

    def _finish_step(self, host: str, r: StepResult) -> None:
        values = (str(r.status), int(r.changed), int(r.finding), r.rc,
                  mask(r.command, self.secrets) if r.command else None,
                  _bounded(r.stdout, self.secrets), _bounded(r.stderr, self.secrets),
                  mask(r.note, self.secrets), _bounded(r.diff, self.secrets), r.duration_s)
        with self._lock:
            seq = self._open.pop((host, r.id), None)
        if seq is not None:
            self.journal.write(
                "UPDATE steps SET status=?, changed=?, finding=?, rc=?, command=?, stdout=?, "
                "stderr=?, note=?, diff=?, duration_s=? WHERE run_id=? AND host=? AND seq=?",
                (*values, self.run_id, host, seq))
            return
        self.journal.write(
            "INSERT INTO steps (run_id, host, seq, step_id, name, status, changed, finding, rc, "
            "command, stdout, stderr, note, diff, duration_s, started) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (self.run_id, host, self._next(host, r.id), r.id, r.name, *values, time.time()))
