"""Events the engine emits as a run proceeds, and the Observer seam that receives them.

The engine never prints: the live view, the journal and tests are all observers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from netops.engine.result import HostResult, RunResult, StepResult


@dataclass(frozen=True, slots=True)
class RunStarted:
    run_id: str
    runbook: str
    dry_run: bool
    batches: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class BatchStarted:
    index: int
    """1-based batch number."""
    hosts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StepStarted:
    host: str
    step_id: str
    name: str


@dataclass(frozen=True, slots=True)
class StepFinished:
    host: str
    result: StepResult


@dataclass(frozen=True, slots=True)
class HostFinished:
    result: HostResult


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the operator should know mid-run (a halt, a pause, a gate result)."""

    text: str
    level: str = "info"


@dataclass(frozen=True, slots=True)
class RunFinished:
    result: RunResult


Event = RunStarted | BatchStarted | StepStarted | StepFinished | HostFinished | Notice | RunFinished


class Observer(Protocol):
    """Receives every event; called from worker threads, so implementations must lock."""

    def on_event(self, event: Event) -> None: ...


class FanOut:
    """Delivers each event to every observer, in order."""

    def __init__(self, observers: Sequence[Observer] = ()) -> None:
        self.observers = list(observers)

    def on_event(self, event: Event) -> None:
        for observer in self.observers:
            observer.on_event(event)


class Recorder:
    """Keeps every event: for tests and for callers that want the full story."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_event(self, event: Event) -> None:
        self.events.append(event)
