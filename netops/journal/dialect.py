"""Where SQLite and PostgreSQL differ, and the only place they do.

Statements are written once (`Sql`), naming their parameters as `{name}` fields; a `Dialect`
renders each field as its driver's placeholder (`:name` for sqlite3, `%(name)s` for psycopg)
and escapes the literal text the driver would otherwise read (`%` for psycopg). Values always
travel as parameters, never in the text. The rest of what differs lives here too: opening the
database and creating or upgrading its schema, how a write transaction takes its lock, and
how long a locked database is waited for before the write fails (`BUSY_TIMEOUT`).

What does not differ is written once in `netops.journal.store`: column types (TEXT, INTEGER,
DOUBLE PRECISION) and `INSERT ... ON CONFLICT (...) DO UPDATE/NOTHING` read the same in
SQLite (3.24 and later) and PostgreSQL.

A new backend is a `Dialect` subclass here and a line in `open_dialect`.
"""

from __future__ import annotations

import sqlite3
import string
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

BUSY_TIMEOUT = 30
"""Seconds a write waits for another writer's lock before it fails (JournalError)."""

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, runbook TEXT NOT NULL, runbook_path TEXT, runbook_sha256 TEXT,
    inventory TEXT, inventory_sha256 TEXT, nodes TEXT, params TEXT, dry_run INTEGER,
    status TEXT NOT NULL, reason TEXT, operator TEXT, controller TEXT, pid INTEGER,
    argv TEXT, batches TEXT, resumed_from TEXT, started DOUBLE PRECISION NOT NULL,
    finished DOUBLE PRECISION)""",
    """CREATE TABLE IF NOT EXISTS hosts (
    run_id TEXT NOT NULL, host TEXT NOT NULL, batch INTEGER, status TEXT NOT NULL,
    started DOUBLE PRECISION, finished DOUBLE PRECISION, PRIMARY KEY (run_id, host))""",
    """CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL, host TEXT NOT NULL, seq INTEGER NOT NULL, step_id TEXT NOT NULL,
    name TEXT, status TEXT NOT NULL, changed INTEGER, finding INTEGER, rc INTEGER, command TEXT,
    stdout TEXT, stderr TEXT, note TEXT, diff TEXT, started DOUBLE PRECISION NOT NULL,
    duration_s DOUBLE PRECISION, PRIMARY KEY (run_id, host, seq))""",
    """CREATE TABLE IF NOT EXISTS fires (
    schedule TEXT NOT NULL, fire_time DOUBLE PRECISION NOT NULL, status TEXT NOT NULL,
    run_id TEXT, run_status TEXT, exit_code INTEGER, window_end DOUBLE PRECISION,
    claimed_by TEXT, controller TEXT, pid INTEGER, note TEXT,
    recorded DOUBLE PRECISION NOT NULL, finished DOUBLE PRECISION,
    PRIMARY KEY (schedule, fire_time))""",
    "CREATE INDEX IF NOT EXISTS runs_started ON runs (started)",
    "CREATE INDEX IF NOT EXISTS hosts_host ON hosts (host, run_id)",
)
"""The tables, in the types both databases read the same way."""

ADDED_COLUMNS = (("steps", "finding", "INTEGER"), ("runs", "rollout", "TEXT"))
"""Columns added after a table first shipped: older journals get them when opened."""

Row = dict[str, Any]


class Sql:
    """One statement, written once for every dialect: parameters are `{name}` fields."""

    __slots__ = ("names", "parts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts: tuple[tuple[str, str | None], ...] = tuple(
            (literal, _field(name, spec, conv))
            for literal, name, spec, conv in string.Formatter().parse(text))
        self.names = frozenset(name for _, name in self.parts if name is not None)

    def __repr__(self) -> str:
        return f"Sql({self.text!r})"


def _field(name: str | None, spec: str | None, conv: str | None) -> str | None:
    if name is not None and (not name.isidentifier() or spec or conv):
        raise ValueError(f"SQL parameter {{{name}}}: expected a plain name")
    return name


class Dialect(ABC):
    """One open database, and everything about it that depends on which kind it is."""

    shared = False
    """A server's database (several controllers share it), not a local file."""

    def __init__(self) -> None:
        self._rendered: dict[str, str] = {}

    def render(self, sql: Sql) -> str:
        """`sql` in this driver's own placeholder style."""
        text = self._rendered.get(sql.text)
        if text is None:
            text = self._rendered[sql.text] = "".join(
                self.literal(lit) + (self.marker(name) if name is not None else "")
                for lit, name in sql.parts)
        return text

    def execute(self, sql: Sql, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run `sql` with `params` (exactly its fields); the rows it returns, if any."""
        given = params or {}
        if given.keys() != sql.names:
            raise ValueError(f"{sql!r} takes {sorted(sql.names)}, given {sorted(given)}")
        return self._run(self.render(sql), dict(given))

    @abstractmethod
    def marker(self, name: str) -> str:
        """The driver's placeholder for the parameter `name`."""

    def literal(self, text: str) -> str:
        """Literal SQL text as the driver must see it once parameters are passed."""
        return text

    @abstractmethod
    def _run(self, text: str, params: dict[str, Any]) -> list[Row]: ...

    @abstractmethod
    def begin(self) -> None:
        """Start a write transaction."""

    def end(self, ok: bool) -> None:
        self._run("COMMIT" if ok else "ROLLBACK", {})

    @abstractmethod
    def close(self) -> None: ...


class SqliteDialect(Dialect):
    """SQLite in WAL mode: the default, one file, no server. Readers never wait for the
    writer; a writer waits up to BUSY_TIMEOUT for another (sqlite3's busy handler)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, timeout=BUSY_TIMEOUT,
                                  isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        for statement in SCHEMA:
            self.db.execute(statement)
        for table, column, kind in ADDED_COLUMNS:
            # PRAGMA takes no parameters; the names are this module's constants
            if column not in {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def marker(self, name: str) -> str:
        return f":{name}"

    def _run(self, text: str, params: dict[str, Any]) -> list[Row]:
        return [dict(r) for r in self.db.execute(text, params)]

    def begin(self) -> None:
        # IMMEDIATE takes the write lock now (waiting for it as long as the busy timeout),
        # so that a transaction never fails half-way on a lock it could not upgrade
        self.db.execute("BEGIN IMMEDIATE")

    def close(self) -> None:
        self.db.close()


class PostgresDialect(Dialect):
    """PostgreSQL, so that a team shares one history (NETOPS_JOURNAL=postgresql://...).
    Autocommit except inside `begin`/`end`; a lock is waited for up to BUSY_TIMEOUT."""

    shared = True

    def __init__(self, url: str) -> None:
        super().__init__()
        import psycopg
        from psycopg.rows import dict_row

        self.db = psycopg.connect(url, autocommit=True, row_factory=dict_row,
                                  connect_timeout=10)
        self.db.execute("SELECT set_config('lock_timeout', %s, false)", (f"{BUSY_TIMEOUT}s",))
        with self.db.transaction():
            self.db.execute("SELECT pg_advisory_xact_lock(4242)")  # one schema creator
            for statement in SCHEMA:
                self.db.execute(statement)
            for table, column, kind in ADDED_COLUMNS:  # this module's constants
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")

    def marker(self, name: str) -> str:
        return f"%({name})s"

    def literal(self, text: str) -> str:
        return text.replace("%", "%%")  # psycopg reads a lone % as the start of a placeholder

    def _run(self, text: str, params: dict[str, Any]) -> list[Row]:
        cur = self.db.execute(text, params)
        return list(cur.fetchall()) if cur.description else []

    def begin(self) -> None:
        self.db.execute("BEGIN")

    def close(self) -> None:
        self.db.close()


def open_dialect(target: Path | str) -> Dialect:
    """The database at `target`: a postgresql:// URL, else a SQLite file."""
    if isinstance(target, str) and target.startswith(("postgresql://", "postgres://")):
        return PostgresDialect(target)
    return SqliteDialect(Path(target))
