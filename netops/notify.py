"""Webhook notifications: when a run ends or halts, or a scheduled fire is missed.

Targets come from `notify:` in schedules.yaml (the scheduler sends them) and from `netops run
--notify URL` (env NETOPS_NOTIFY). A target is a URL that gets the generic JSON body, or
`slack+https://...` (or `{url: ..., format: slack}` in YAML) for a Slack-compatible incoming
webhook body. Each is POSTed from its own daemon thread, retried with exponential backoff on
connection errors, timeouts, 5xx, 408 and 429 (Retry-After honoured, capped): a slow, failing or
hanging receiver never blocks or fails a run, and the caller waits for deliveries at most a
bounded time before exiting.

A webhook URL is a secret (Slack's path is its token): wherever netops shows one, in messages,
logs, `schedule list` and the journal's copy of the command line, it is `redact`ed: password,
the path (a token often is the path) and every query value become `***`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from netops.errors import UserError

if TYPE_CHECKING:
    from netops.engine.result import RunResult
    from netops.journal import Journal
    from netops.schedule import Schedule
    from netops.scheduler import Fire, Outcome

FORMATS = ("json", "slack")
ATTEMPTS = 4
"""Tries per notification (the first and three retries)."""
BACKOFF = 1.0
"""Seconds before the first retry; doubled for each further one."""
TIMEOUT = 5.0
"""Seconds one attempt may take to connect, or wait for each part of the answer."""
WAIT = 15.0
"""How long a finished `netops run` (or a stopping scheduler) waits for its deliveries."""
MAX_RETRY_AFTER = 30.0
MAX_FINDINGS = 20


# -- targets ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Target:
    url: str
    format: str = "json"

    def __str__(self) -> str:
        return ("slack+" if self.format == "slack" else "") + redact(self.url)


def parse_target(spec: Any) -> Target:
    """`URL`, `slack+URL`, or a mapping {url, format}; UserError (URL redacted) if bad."""
    fmt = "json"
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"url", "format"}
        if unknown or not isinstance(spec.get("url"), str):
            raise UserError("a notify target is a URL, or a mapping with url and optionally "
                            f"format ({' or '.join(FORMATS)})")
        fmt = str(spec.get("format", "json"))
        if fmt not in FORMATS:
            raise UserError(f"notify format {fmt!r}: expected {' or '.join(FORMATS)}")
        url = spec["url"]
    elif isinstance(spec, str):
        url = spec.strip()
        if url.startswith("slack+"):
            fmt, url = "slack", url[len("slack+"):]
    else:
        raise UserError("a notify target is a URL (http:// or https://), slack+URL, or a "
                        "mapping {url, format}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        raise UserError(f"notify URL {redact(url)!r} does not parse") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"notify URL {redact(url)!r}: expected http:// or https:// and a host",
                        hint="slack+https://hooks.slack.com/services/... for a Slack body")
    return Target(url, fmt)


def parse_targets(specs: Iterable[Any]) -> tuple[Target, ...]:
    return tuple(parse_target(s) for s in specs)


def redact(url: str) -> str:
    """`url` safe to show: password, path, query values and fragment masked
    (`https://hooks.slack.com/***`)."""
    try:
        p = urlsplit(url)
        host = p.hostname or ""
        port = f":{p.port}" if p.port else ""
    except ValueError:
        return "***"
    if not p.scheme or not host:
        return "***"
    user = ""
    if p.username is not None:
        # the URL's own quoting, once (quoting it again showed us%40er as us%2540er)
        user = quote(unquote(p.username), safe="") + (":***" if p.password is not None
                                                         else "") + "@"
    if ":" in host:
        host = f"[{host}]"
    path = "/***" if p.path.strip("/") else p.path
    query = ""
    if p.query:
        keys = [kv.partition("=")[0] for kv in p.query.split("&") if kv]
        query = "?" + "&".join(f"{quote(k, safe='')}=***" for k in keys)
    return f"{p.scheme}://{user}{host}{port}{path}{query}"


def mask_urls(text: str, targets: Iterable[Target]) -> str:
    """`text` with every target's URL (and its secret parts) replaced by its redacted form."""
    for t in targets:
        shown = redact(t.url)
        text = text.replace(t.url, shown)
        p = urlsplit(t.url)
        for secret in (p.password, *[s for s in p.path.split("/") if len(s) >= 4],
                       *[kv.partition("=")[2] for kv in p.query.split("&")]):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
    return text


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line with the URLs of `--notify` options redacted (for the journal)."""
    out, after_flag = [], False
    for arg in argv:
        if after_flag:
            out.append(redact_spec(arg))
            after_flag = False
        elif arg == "--notify":
            out.append(arg)
            after_flag = True
        elif arg.startswith("--notify="):
            out.append("--notify=" + redact_spec(arg.partition("=")[2]))
        else:
            out.append(arg)
    return out


def redact_spec(spec: str) -> str:
    return ("slack+" + redact(spec[6:])) if spec.startswith("slack+") else redact(spec)


# -- what is said -----------------------------------------------------------------------------
@dataclass
class Event:
    """What a notification says, whatever its format."""

    event: str
    """ended, halted (or interrupted), missed (or refused: the previous run was going)."""
    status: str
    runbook: str
    nodes: str = ""
    run_id: str | None = None
    schedule: str | None = None
    dry_run: bool = False
    reason: str = ""
    hosts: dict[str, list[str]] = field(default_factory=dict)
    """Host status -> hosts."""
    findings: list[dict[str, str]] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None
    fire_time: float | None = None
    controller: str = ""

    @property
    def report(self) -> str:
        return f"netops report {self.run_id}" if self.run_id else ""

    def title(self) -> str:
        what = f"{self.runbook}{' (dry run)' if self.dry_run else ''}"
        where = f" on {self.nodes}" if self.nodes else ""
        sched = f"schedule {self.schedule}: " if self.schedule else ""
        if self.event == "missed":
            return f"netops {sched}{what}{where}: fire {self.status}"
        return f"netops {sched}{what}{where}: run {self.run_id or ''} {self.status}".replace(
            "  ", " ")


def _status_event(status: str) -> str:
    return "halted" if status in ("halted", "interrupted") else "ended"


def _host_lists(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for host, status in pairs:
        out.setdefault(status, []).append(host)
    return {k: sorted(v) for k, v in sorted(out.items())}


def _one_line(text: str, width: int = 200) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


def event_from_result(run: RunResult, nodes: str = "",
                      secrets: frozenset[str] = frozenset()) -> Event:
    """The event of a run this process just ran."""
    from netops.journal.rows import FINDING_STATUSES
    from netops.transport.base import mask

    findings = [{"host": name, "step": s.id, "status": str(s.status),
                 "note": _one_line(mask(s.note, secrets))}
                for name, h in run.hosts.items() for s in h.steps
                if s.finding or str(s.status) in FINDING_STATUSES]
    return Event(_status_event(str(run.status)), str(run.status), run.runbook, nodes,
                 run.run_id, dry_run=run.dry_run, reason=mask(run.reason, secrets),
                 hosts=_host_lists((n, str(h.status)) for n, h in run.hosts.items()),
                 findings=findings[:MAX_FINDINGS], finished=time.time())


def event_from_journal(journal: Journal, run_id: str, schedule: str | None = None,
                       fallback_status: str = "") -> Event | None:
    """The event of a journaled run (None when the journal has no such run)."""
    run = journal.run(run_id)
    if run is None:
        return None
    hosts, steps = journal.hosts(run_id), journal.steps(run_id)
    findings = [{"host": s.host, "step": s.step_id, "status": s.status,
                 "note": _one_line(s.note)}
                for s in steps if s.is_finding]
    status = run.status or fallback_status
    return Event(_status_event(status), status, run.runbook, run.nodes, run_id, schedule,
                 run.dry_run, run.reason, _host_lists((h.host, h.status) for h in hosts),
                 findings[:MAX_FINDINGS], run.started, run.finished,
                 controller=run.controller)


def event_from_diagnosis(doc: Mapping[str, Any], schedule: Schedule, ok: bool) -> Event:
    """The event of a scheduled `netops diagnose` (its --json document)."""
    rank = {"unreachable": 3, "broken": 2, "unknown": 1, "ok": 0}
    worst: list[tuple[str, str]] = []
    findings = []
    for node, row in (doc.get("nodes") or {}).items():
        statuses = [str(f.get("status", "unknown")) for f in row.values()]
        worst.append((node, max(statuses, key=lambda s: rank.get(s, 1), default="ok")))
        for rb, f in row.items():
            if f.get("status") != "ok":
                findings.append({"host": node, "step": rb, "status": str(f.get("status")),
                                 "note": _one_line(str(f.get("evidence") or ""))})
    status = ("ok" if not findings else "broken") if ok else "failed"
    return Event("ended", status, "diagnose" + (f" {schedule.runbook}" if schedule.runbook
                                                else ""),
                 schedule.nodes, schedule=schedule.name, hosts=_host_lists(worst),
                 findings=findings[:MAX_FINDINGS], finished=time.time())


def event_from_fire(schedule: Schedule, fire: Fire) -> Event:
    return Event("missed", fire.status, schedule.runbook or "diagnose", schedule.nodes,
                 schedule=schedule.name, dry_run=schedule.dry_run, reason=fire.note,
                 fire_time=fire.fire_time)


def json_body(ev: Event) -> dict[str, Any]:
    return {"source": "netops", "event": ev.event, "status": ev.status, "run_id": ev.run_id,
            "runbook": ev.runbook, "nodes": ev.nodes, "schedule": ev.schedule,
            "dry_run": ev.dry_run, "reason": ev.reason, "hosts": ev.hosts,
            "host_counts": {k: len(v) for k, v in ev.hosts.items()},
            "findings": ev.findings, "started": ev.started, "finished": ev.finished,
            "fire_time": ev.fire_time, "controller": ev.controller, "report": ev.report,
            "text": ev.title()}


_SLACK_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def slack_escape(text: str) -> str:
    """Slack mrkdwn control characters escaped (node text cannot ping `<!channel>`)."""
    return re.sub("[&<>]", lambda m: _SLACK_ESCAPES[m.group()], text)


def slack_body(ev: Event) -> dict[str, Any]:
    icon = {"ok": ":white_check_mark:", "halted": ":double_vertical_bar:",
            "interrupted": ":double_vertical_bar:"}.get(ev.status, ":x:" if ev.event != "missed"
                                                        else ":warning:")
    title = f"{icon} {slack_escape(ev.title())}"
    lines = [f"*{title}*"]
    if ev.hosts:
        lines.append("hosts: " + ", ".join(f"{len(v)} {slack_escape(k)}"
                                           for k, v in ev.hosts.items()))
    if ev.reason:
        lines.append(f"_{slack_escape(_one_line(ev.reason))}_")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]
    if ev.findings:
        found = "\n".join(f"• *{slack_escape(f['host'])}* `{slack_escape(f['step'])}` "
                          f"({slack_escape(f['status'])}): {slack_escape(f['note'])}"
                          for f in ev.findings[:10])
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": f"*Findings*\n{found}"[:2900]}})
    if ev.report:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"`{ev.report}` (or `--format html`)"}]})
    return {"text": slack_escape(ev.title()), "blocks": blocks}


def body(ev: Event, fmt: str) -> dict[str, Any]:
    return slack_body(ev) if fmt == "slack" else json_body(ev)


# -- delivery -----------------------------------------------------------------------------------
@dataclass
class Delivery:
    target: Target
    event: Event
    attempts: int = 0
    ok: bool = False
    detail: str = ""
    done: threading.Event = field(default_factory=threading.Event)


class Notifier:
    """Sends events to targets in the background; `wait` gives them a bounded time to land."""

    def __init__(self, targets: Sequence[Target] = (), *, attempts: int = ATTEMPTS,
                 backoff: float = BACKOFF, timeout: float = TIMEOUT,
                 say: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.targets = tuple(targets)
        self.attempts, self.backoff, self.timeout = attempts, backoff, timeout
        self.say = say or (lambda text: None)
        self.sleep = sleep
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()

    def send(self, event: Event, targets: Sequence[Target] | None = None) -> list[Delivery]:
        """Start delivering `event` to `targets` (default: the notifier's); returns at once."""
        started = []
        for t in self.targets if targets is None else targets:
            d = Delivery(t, event)
            with self._lock:
                self.deliveries.append(d)
            threading.Thread(target=self._deliver, args=(d,), daemon=True,
                             name=f"notify {redact(t.url)}").start()
            started.append(d)
        return started

    def pending(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if not d.done.is_set()]

    def wait(self, timeout: float = WAIT) -> list[Delivery]:
        """Wait until every delivery ended or `timeout` passed; the ones still going."""
        deadline = time.monotonic() + timeout
        for d in self.pending():
            d.done.wait(max(0.0, deadline - time.monotonic()))
        left = self.pending()
        for d in left:
            self.say(f"notification to {d.target} not delivered within {timeout:g}s "
                     f"(attempt {max(d.attempts, 1)}{': ' + d.detail if d.detail else ''}); "
                     "giving up")
        return left

    def _deliver(self, d: Delivery) -> None:
        try:
            data = json.dumps(body(d.event, d.target.format)).encode()
            for attempt in range(1, self.attempts + 1):
                d.attempts = attempt
                retry, delay = self._post(d, data)
                if d.ok or not retry:
                    break
                if attempt < self.attempts:
                    self.sleep(delay if delay is not None
                               else self.backoff * 2 ** (attempt - 1))
            if d.ok:
                self.say(f"notified {d.target} ({d.event.event}, {d.event.status})"
                         + (f" after {d.attempts} attempts" if d.attempts > 1 else ""))
            else:
                self.say(f"notification to {d.target} failed after {d.attempts} attempt(s): "
                         f"{d.detail}")
        except Exception as e:  # never let a notification take anything down
            d.detail = mask_urls(f"{type(e).__name__}: {e}", [d.target])
            self.say(f"notification to {d.target} failed: {d.detail}")
        finally:
            d.done.set()

    def _post(self, d: Delivery, data: bytes) -> tuple[bool, float | None]:
        """One attempt: (retry?, server-asked delay)."""
        import urllib.error
        import urllib.request

        from netops import __version__

        url, auth = _basic_auth(d.target.url)
        req = urllib.request.Request(url, data=data, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": f"netops/{__version__}", **auth})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read(65536)
                d.ok, d.detail = True, f"HTTP {resp.status}"
                return False, None
        except urllib.error.HTTPError as e:
            d.detail = f"HTTP {e.code}"
            retry_after = _retry_after(e.headers.get("Retry-After") if e.headers else None)
            return e.code >= 500 or e.code in (408, 429), retry_after
        except (OSError, ValueError) as e:  # URLError, timeouts, resets
            reason = getattr(e, "reason", None) or e
            d.detail = mask_urls(str(reason) or type(e).__name__, [d.target])
            return True, None


def _basic_auth(url: str) -> tuple[str, dict[str, str]]:
    """`url` without its user:password (urllib reads them as a port), and the Authorization
    header they stand for, as curl sends it."""
    import base64

    p = urlsplit(url)
    if p.username is None:
        return url, {}
    pair = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
    netloc = p.netloc.rpartition("@")[2]
    return (p._replace(netloc=netloc).geturl(),
            {"Authorization": "Basic " + base64.b64encode(pair).decode()})


def _retry_after(value: str | None) -> float | None:
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(value))) if value else None
    except ValueError:
        return None


# -- the scheduler's watcher --------------------------------------------------------------------
class ScheduleNotifier:
    """A scheduler watcher: notifies each schedule's `notify:` targets when its run ends or
    halts and when a fire is missed or refused."""

    def __init__(self, journal: Journal, notifier: Notifier) -> None:
        self.journal, self.notifier = journal, notifier

    def fired(self, schedule: Schedule, fire: Fire) -> None:
        if schedule.notify and fire.status in ("missed", "refused") \
                and not fire.note.startswith("superseded"):  # a later fire of it ran
            self.notifier.send(event_from_fire(schedule, fire), schedule.notify)

    def ended(self, schedule: Schedule | None, name: str, fire_time: float,
              outcome: Outcome) -> None:
        if schedule is None or not schedule.notify:
            return
        ev: Event | None = None
        doc = outcome.doc or {}
        if schedule.diagnose and "checks" in doc:
            ev = event_from_diagnosis(doc, schedule, outcome.exit_code in (0, 1))
        elif outcome.run_id:
            from netops.errors import JournalError

            try:
                ev = event_from_journal(self.journal, outcome.run_id, name,
                                        outcome.run_status or "")
            except JournalError:
                ev = None
        if ev is None:
            ev = Event("ended", outcome.run_status or f"exit {outcome.exit_code}",
                       schedule.runbook or "diagnose", schedule.nodes, outcome.run_id, name,
                       schedule.dry_run, outcome.note, finished=time.time())
        ev.schedule, ev.fire_time = name, fire_time
        self.notifier.send(ev, schedule.notify)


def notify_run(console: Any, targets: Sequence[Target], run: RunResult, nodes: str,
               secrets: frozenset[str] = frozenset(), wait: float = WAIT) -> None:
    """`netops run --notify`: tell `targets` how the run ended, after it ended; wait for the
    deliveries at most `wait` seconds (the run's exit code does not depend on them)."""
    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    notifier = Notifier(targets, say=say)
    notifier.send(event_from_result(run, nodes, secrets))
    notifier.wait(wait)
