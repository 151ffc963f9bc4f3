"""Run a runbook's steps on one host, and once-steps on the controller or one group host."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from netops.engine.dispatch import context_vars, run_kind
from netops.engine.events import StepFinished, StepStarted
from netops.engine.outcome import step_failure
from netops.engine.registered import Registered
from netops.engine.result import FAILING, HostResult, Status, StepResult, host_status
from netops.errors import JournalError, NetopsError, TimedOut, TransportError
from netops.runbook.render import evaluate_when, render_command, render_text
from netops.steps.base import Outcome, StepContext
from netops.steps.registry import kind
from netops.transport.base import Transport, mask
from netops.transport.readonly import ReadOnlyTransport

if TYPE_CHECKING:
    from netops.engine.execute import World
    from netops.engine.plan import Plan
    from netops.inventory.model import Host
    from netops.runbook.model import Step


ONCE = "*"
"""Key of `Plan.done` for before:/after: steps, which ran once for the whole run."""


class StepRunner:
    """Runs steps for one target (a host, or the controller), keeping registered results."""

    def __init__(self, plan: Plan, world: World, label: str, host: Host | None,
                 node: Transport | None) -> None:
        self.plan, self.world, self.label, self.host = plan, world, label, host
        self.node = node
        self.controller: Transport | None = None
        self.registered: dict[str, Registered] = {}
        self.changed = False
        self.predicted: dict[str, str | None] = {}
        """A dry run's picture of this target after the steps so far (StepContext)."""
        self._reached = False

    def transport_for(self, step: Step) -> Transport:
        if step.on == "controller" or self.node is None:
            if self.controller is None:
                from netops.transport.env import EnvTransport, controller_env

                self.controller = self.world.controller()
                env = controller_env(self.host.vars) if self.host is not None else {}
                if env:
                    self.controller = EnvTransport(self.controller, env)
            inner = self.controller
        else:
            inner = self.node
        return ReadOnlyTransport(inner) if self.plan.dry_run else inner

    def run(self, step: Step, *, gate: bool = False) -> StepResult:
        try:
            self.world.observer.on_event(StepStarted(self.label, step.id, step.name))
        except JournalError as e:  # never run a step the journal cannot record
            self.world.stop.set()
            return StepResult(step.id, step.name, Status.NOT_RUN,
                              note=f"not run: {e}")
        started = self.world.clock()
        variables = context_vars(self.plan.params, self.host, self.registered, self.plan.run_id,
                                 dry_run=self.plan.dry_run)
        try:
            held = self._held_back(step)
            if held is not None:
                result, outcome = held, None
            elif step.when and not evaluate_when(step.when, variables):
                result = StepResult(step.id, step.name, Status.SKIPPED,
                                    note=f"when: {step.when} is false")
                outcome = None
            else:
                self._reach_first(step)
                outcome = self._attempts(step, variables, gate)
                result = _result(step, outcome, self.world.clock() - started)
        except TimedOut as e:
            outcome = None
            result = step_failure(step.id, step.name, None, e, mutating=step.mutates)
            if step.ignore_errors:
                result = StepResult(step.id, step.name, Status.OK,
                                    note=f"timed out, ignored (ignore_errors): {e}")
        except TransportError as e:
            outcome = None
            result = step_failure(step.id, step.name, None, e, mutating=step.mutates)
        except NetopsError as e:  # a template that failed to render for this host
            outcome = None
            result = StepResult(step.id, step.name, Status.FAILED, note=str(e))
        result = _masked(result, self.plan.secrets)
        registered = Registered.of(result, fields=outcome.fields if outcome else None)
        self.registered[step.id] = registered
        if step.register:
            self.registered[step.register] = registered
        self.changed |= result.status in (Status.CHANGED, Status.WOULD_CHANGE)
        self.world.observer.on_event(StepFinished(self.label, result))
        return result

    def _reach_first(self, step: Step) -> None:
        """A dry run previews only a node it reaches: before its first node step, connect
        (`reach`), or a step that sends nothing in a dry run (an unguarded shell step) would
        preview an unreachable node as would-change."""
        if self.plan.dry_run and not self._reached and step.on == "node" \
                and self.node is not None:
            reach = getattr(self.node, "reach", None)
            if reach is not None:
                reach()
            self._reached = True

    def _held_back(self, step: Step) -> StepResult | None:
        """On a resume: the result of a mutating step that must not simply run again (done
        by an earlier run of the chain, or left in flight with no guard); None to run it."""
        if not step.mutates:
            return None
        plan, keys = self.plan, (self.label, ONCE)
        if any(step.id in plan.done.get(k, ()) for k in keys):
            return StepResult(step.id, step.name, Status.SKIPPED,
                              note=f"done by run {plan.resumed_from} (or the run it resumed); "
                              "not run twice")
        if not any(step.id in plan.unknown.get(k, ()) for k in keys):
            return None
        if plan.on_unknown == "skip":
            return StepResult(step.id, step.name, Status.SKIPPED,
                              note="outcome unknown in an earlier run; counted done "
                              "(--unknown skip)")
        if plan.on_unknown == "retry" or guarded(step):
            return None  # its guard (or the operator) decides again
        return StepResult(
            step.id, step.name, Status.UNKNOWN,
            note=f"in flight when run {plan.resumed_from} stopped: its outcome on the node is "
            "unknown and it has no guard to re-check. Check the node, then resume with "
            "--unknown retry (run it again) or --unknown skip (count it done)")

    def _attempts(self, step: Step, variables: dict[str, Any], gate: bool) -> Outcome:
        ctx = StepContext(
            transport=self.transport_for(step), dry_run=self.plan.dry_run,
            timeout=step.timeout_s or self.plan.timeout, become=step.become,
            secrets=self.plan.secrets, prior_change=self.changed,
            sleep=self.world.sleep, clock=self.world.clock, predicted=self.predicted,
        )  # run_kind adds what the step says of itself (mutates, gate): step_context

        def shell(template: str) -> str:
            return render_command(template, variables, self.plan.secrets).text

        def text(template: str) -> str:
            return render_text(template, variables)

        attempt = 0
        while True:
            outcome = run_kind(step, ctx, shell, text, gate=gate)
            if outcome.status is not Status.FAILED or attempt >= step.retries:
                return outcome
            attempt += 1
            self.world.sleep(step.delay_s)


def _masked(r: StepResult, secrets: frozenset[str]) -> StepResult:
    """`r` with every secret form masked, whatever kind built it (the engine's own notes
    included): what leaves the engine (events, --json, the terminal) never holds one."""
    if not secrets:
        return r
    from dataclasses import replace

    return replace(r, command=mask(r.command, secrets) if r.command else r.command,
                   stdout=mask(r.stdout, secrets), stderr=mask(r.stderr, secrets),
                   note=mask(r.note, secrets), diff=mask(r.diff, secrets))


def guarded(step: Step) -> bool:
    """Whether running `step` again converges instead of repeating its change (its kind
    says, from its arguments: `converges`)."""
    return kind(step.kind).converges(step.args)


def _result(step: Step, o: Outcome, duration: float) -> StepResult:
    status = o.status
    note = o.note
    if status is Status.FAILED and step.ignore_errors:
        status, note = Status.OK, f"failed, ignored (ignore_errors): {note}"
    return StepResult(step.id, step.name, status, changed=status is Status.CHANGED, rc=o.rc,
                      command=o.command, stdout=o.stdout, stderr=o.stderr, duration_s=duration,
                      note=note, diff=o.diff, finding=o.finding, truncated=o.truncated)


class HostRunner:
    """One host's part of a run: its steps, then its verify gate, on one connection."""

    def __init__(self, plan: Plan, world: World, host: Host, batch: int,
                 before: Mapping[str, Registered] | None = None) -> None:
        self.plan, self.world, self.host, self.batch = plan, world, host, batch
        self.before = dict(before or {})
        """Results registered by the `before:` once-steps, visible to every host's steps."""

    def run(self) -> HostResult:
        lock_error = self.world.blocked.get(self.host.name)
        if lock_error is not None:
            return self._unlocked(lock_error)
        node = self.world.connect(self.host)
        runner = StepRunner(self.plan, self.world, self.host.name, self.host, node)
        runner.registered.update(self.before)
        results: list[StepResult] = []
        try:
            stopped = self._steps(runner, self.plan.runbook.steps, results, gate=False)
            if self.plan.dry_run:
                results += [_not_evaluated(s) for s in self.plan.runbook.verify]
            elif not stopped:
                self._steps(runner, self.plan.runbook.verify, results, gate=True)
            elif self.plan.runbook.verify:
                results += [_skipped(s, "not run: an earlier step failed")
                            for s in self.plan.runbook.verify]
        finally:
            node.close()
            if runner.controller is not None:
                runner.controller.close()
        steps = tuple(results)
        return HostResult(self.host.name, self.batch, host_status(steps), steps)

    def _unlocked(self, error: TransportError) -> HostResult:
        """A host whose lock could not be taken: failed before its first step."""
        lock = step_failure("lock", "take the node lock", None, error)
        lock = StepResult(lock.id, lock.name, lock.status,
                          note=f"not run: the node lock could not be taken: {error}")
        rest = [_skipped(s, "not run: no node lock")
                for s in (*self.plan.runbook.steps, *self.plan.runbook.verify)]
        steps = (lock, *rest)
        return HostResult(self.host.name, self.batch, host_status(steps), steps)

    def _steps(self, runner: StepRunner, steps: tuple[Step, ...], results: list[StepResult],
               *, gate: bool) -> bool:
        """Run `steps` in order; True when one failed and the rest were marked not-run."""
        for i, step in enumerate(steps):
            if self.world.stop.is_set():
                results += [_skipped(s, "interrupted", Status.NOT_RUN) for s in steps[i:]]
                return True
            result = runner.run(step, gate=gate)
            results.append(result)
            if result.status in FAILING:
                why = f"not run: {step.id} {result.status}"
                results += [_skipped(s, why, Status.NOT_RUN) for s in steps[i + 1:]]
                return True
        return False


def _skipped(step: Step, note: str, status: Status = Status.NOT_RUN) -> StepResult:
    return StepResult(step.id, step.name, status, note=note)


def _not_evaluated(step: Step) -> StepResult:
    return StepResult(step.id, step.name, Status.SKIPPED,
                      note="health gate: not evaluated in a dry run")


class OnceRunner:
    """Runs `before`/`after` steps once: on the controller, or on the first reachable host of
    the step's group."""

    def __init__(self, plan: Plan, world: World) -> None:
        self.plan, self.world = plan, world
        self.controller = StepRunner(plan, world, "controller", None, None)

    def run_all(self, steps: tuple[Step, ...], phase: str) -> tuple[StepResult, ...]:
        results: list[StepResult] = []
        for step in steps:
            result = self._one(step)
            results.append(result)
            if result.status in FAILING:
                break
        return tuple(results)

    def _one(self, step: Step) -> StepResult:
        if step.on != "once":
            return self.controller.run(step)
        last: StepResult | None = None
        group = step.group or "all"
        for host in self.plan.once_hosts.get(group, ()):
            node = self.world.connect(host)
            runner = StepRunner(self.plan, self.world, host.name, host, node)
            runner.registered = self.controller.registered
            try:
                last = runner.run(step)
            finally:
                node.close()
            if last.status is not Status.UNREACHABLE:
                return last
        return last or StepResult(step.id, step.name, Status.FAILED,
                                  note=f"no host of group {group!r} to run on (the group is "
                                  "empty or missing, or none of its hosts is selected)")


