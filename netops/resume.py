"""What a resume has left to do, read from the journal: the chain of runs, exactly once.

A run that dies (kill -9, a second Ctrl-C, a lost controller) or halts is finished by
`netops run --resume ID`; that resume may itself stop and be resumed, and an operator may give
the first id again. Every answer is computed over the whole chain (the original run and every
run that resumed it, in order), so that:

- every host of the original plan that did not finish is covered, including hosts whose batch
  never started (the plan's batches are in the journal from the start);
- a mutating step completed by any run of the chain never runs again;
- a step left `running` by a run that is gone is `unknown`: it may or may not have applied its
  change, and the resume decides what to do with it (`netops.engine.host`);
- a chain that finished is not run again (exit 2, naming the run that finished it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netops.errors import UserError
from netops.runbook.model import as_var

if TYPE_CHECKING:
    from netops.journal import Chain, ChainState, Journal
    from netops.runbook.model import Runbook

FINISHED = frozenset({"ok", "changed", "skipped"})
"""Host statuses of a host that needs nothing more."""


@dataclass(frozen=True, slots=True)
class ResumeState:
    """A chain of runs and what it has left to do."""

    named: str
    """The run the operator named."""
    latest: str
    """The last run of the chain: the one this resume continues."""
    chain: tuple[str, ...]
    runbook_path: Path
    nodes: str
    params: dict[str, Any]
    rollout: dict[str, Any]
    batches: tuple[tuple[str, ...], ...]
    unfinished: tuple[str, ...]
    """Hosts of the original plan still to run, in plan order."""
    done: dict[str, frozenset[str]]
    unknown: dict[str, frozenset[str]]


def resume_state(journal: Journal, run_id: str, *, force: bool = False) -> ResumeState:
    """The chain that `run_id` belongs to, checked for a resume (UserError when it cannot)."""
    chain = journal.chain(run_id)
    if chain is None:
        raise UserError(f"no run {run_id!r} in the journal {journal.path}",
                        hint="`netops history` lists runs")
    path = _check(chain, force)
    for run in chain.runs:
        journal.settle_unknown(run.run_id)  # what a dead run left in flight
    state = journal.resume_state(chain.named.run_id)
    assert state is not None  # the chain was just read
    root = state.chain.root
    unfinished = tuple(h for b in root.batches for h in b
                       if state.host_status.get(h) not in FINISHED)
    from netops.runbook.load import load_runbook

    rb = load_runbook(path)
    done, unknown = _once(state, {st.id for st in (*rb.before, *rb.after)})
    return ResumeState(chain.named.run_id, chain.latest.run_id,
                       tuple(r.run_id for r in state.chain.runs), path, root.nodes,
                       dict(root.params), dict(root.rollout), root.batches, unfinished, done,
                       unknown)


def _check(chain: Chain, force: bool) -> Path:
    """The runbook file of a chain that can be resumed (UserError saying why not)."""
    named, root, latest = chain.named, chain.root, chain.latest
    if named.dry_run:
        raise UserError(f"run {named.run_id} was a dry run: nothing to resume")
    if named.runbook == "exec" and not named.runbook_path:
        raise UserError(f"run {named.run_id} was a `netops exec`: nothing to resume",
                        hint="run the command again")
    for run in chain.runs:
        if run.status == "running" and not force:
            raise UserError(f"run {run.run_id} is still running (pid {run.pid} on "
                            f"{run.controller})",
                            hint="wait for it, or give --force if that process is gone")
    if latest.status == "ok":
        by = "" if latest.run_id == named.run_id else f" (finished by run {latest.run_id})"
        raise UserError(f"run {named.run_id} finished ok{by}: nothing to resume")
    path = Path(root.runbook_path)
    if not path.is_file():
        raise UserError(f"the runbook of run {root.run_id} is gone: {path}")
    if hashlib.sha256(path.read_bytes()).hexdigest() != root.runbook_sha256 and not force:
        raise UserError(f"{path} changed since run {root.run_id}",
                        hint="resuming would mix two versions; use --force to accept that")
    return path


def _once(state: ChainState, once_ids: set[str]
          ) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """The journal's per-host step ids, with the runbook's once-steps (before/after, which
    ran on whichever host) under ONCE, as `netops.engine.host` looks them up."""
    from netops.engine.host import ONCE

    done: dict[str, frozenset[str]] = {}
    unknown: dict[str, frozenset[str]] = {}
    for per_host, out in ((state.done, done), (state.unknown, unknown)):
        once: set[str] = set()
        for host, ids in per_host.items():
            once |= ids & once_ids
            if ids - once_ids:
                out[host] = frozenset(ids - once_ids)
        if once:
            out[ONCE] = frozenset(once)
    if ONCE in unknown:  # a once-step completed on any host is done for the whole run
        left = unknown.pop(ONCE) - done.get(ONCE, frozenset())
        if left:
            unknown[ONCE] = left
    return done, unknown


def resume_vars(state: ResumeState, rb: Runbook, given: list[str],
                force: bool = False) -> tuple[list[str], list[str]]:
    """The `--var` pairs of the resumed run (the original params, the secrets given again),
    and a line for each param the operator changed.

    A changed non-secret value is refused unless `force`: a resume finishes the same change."""
    secrets = {k for k, p in rb.params.items() if p.secret}
    named, changed = {}, []
    for pair in given:
        key, _, value = pair.partition("=")
        named[key] = value
        param = rb.params.get(key)
        if param is None or key in secrets:
            continue
        was = state.params.get(key)
        if was is not None and param.coerce(value) == param.coerce(as_var(was)):
            continue
        if not force:
            raise UserError(f"--var {key}={value!r}: run {state.named} ran with "
                            f"{key}={as_var(was)!r}; a resume finishes the same change",
                            hint="start a new run, or give --force to change it anyway")
        changed.append(f"  --var {key}={value} overrides the original run's "
                       f"{key}={as_var(was)} (--force)")
    missing = sorted(secrets - set(named))
    if missing:
        raise UserError(f"run {state.named} had secret params that the journal does not "
                        f"keep: give them again with --var {missing[0]}=...")
    kept = [f"{k}={as_var(v)}" for k, v in state.params.items()
            if k not in secrets and k not in named and v is not None]
    return kept + given, changed
