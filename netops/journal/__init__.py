"""The run journal: every run, host and step, written as the run proceeds (SQLite in WAL
mode, or PostgreSQL for a shared history).

The journal is an Observer: each event is committed when it happens, so a run killed at any
moment leaves an accurate record (its last step stays `running`, the run `running` with a dead
pid, which `history` shows as `crashed`). Output is bounded and secrets are masked before
anything reaches the database. Any database failure is a `JournalError`.

- `rows`: the typed rows every read returns (`RunRow`, `HostRow`, `StepRow`, `FireRow`) and
  the state of a chain of runs (`Chain`, `ChainState`) that a resume starts from;
- `dialect`: the one place where SQLite and PostgreSQL differ (placeholders, schema set-up,
  locking and busy timeout);
- `store`: `Journal`, its statements written once, and `RunRecord`;
- `observer`: `JournalObserver`, which writes a run's events through `Journal`'s methods
  (imported by `Journal.observer` when a run starts, not with the package: it loads the
  engine's events).
"""

from netops.errors import JournalError
from netops.journal.dialect import BUSY_TIMEOUT, Dialect, Sql
from netops.journal.rows import (
    Chain,
    ChainState,
    FireRow,
    HostRow,
    RunRow,
    StepRow,
    pid_alive,
)
from netops.journal.store import Journal, RunRecord, default_path

__all__ = [
    "BUSY_TIMEOUT", "Chain", "ChainState", "Dialect", "FireRow", "HostRow",
    "Journal", "JournalError", "RunRecord", "RunRow", "Sql", "StepRow",
    "default_path", "pid_alive",
]
