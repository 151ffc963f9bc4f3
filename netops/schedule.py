"""Schedules and maintenance windows: cron maths, windows, and `schedules.yaml` (all pure).

A cron expression is a moment; a maintenance window is a moment plus a length (kured#891). Times
are Unix seconds; each expression is read in its own IANA time zone. The cron maths is cronsim's
(Debian cron's semantics), so that a daily job still fires exactly once on the days clocks
change:

* a local time skipped when clocks go forward fires at the jump (02:30 fires at 03:00), as
  Debian's cron runs such jobs right after the change;
* a local time repeated when clocks go back fires once, at its first occurrence.

Five fields (minute hour day-of-month month day-of-week) with `*`, lists, ranges, steps, names
(JAN-DEC, SUN-SAT, 7 is Sunday too) and the aliases @yearly @annually @monthly @weekly @daily
@midnight @hourly. When both day fields are restricted a day matches either of them; a field
that starts with `*` (even `*/2`) does not count as restricted, as in Vixie cron.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from netops.errors import LoadError, SourceSpan, UserError
from netops.runbook.load import _NAME, _Located, _Validator
from netops.runbook.model import ROLLOUT_FIELDS, Field, as_var, parse_duration
from netops.yamlfile import read_text

if TYPE_CHECKING:
    from netops.inventory.model import Host, Inventory
    from netops.notify import Target
    from netops.runbook.model import Runbook

_FIELDS = {"minute": (0, "0-59"), "hour": (1, "0-23"), "day-of-month": (2, "1-31"),
           "month": (3, "1-12 or JAN-DEC"), "day-of-week": (4, "0-7 or SUN-SAT")}
ALIASES = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@hourly": "0 * * * *"}
HORIZON_DAYS = 366 * 8
"""How far ahead a fire time is looked for (Feb 29 on a given weekday fits in 8 years)."""
WINDOW_VAR = "netops_maintenance_window"


class CronError(ValueError):
    """A cron expression that does not parse, or never fires."""


# -- cron -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Cron:
    """A five-field cron expression, computed by cronsim (Debian cron's semantics)."""

    text: str
    spec: str
    """`text` with an alias (@daily...) spelled out in five fields."""

    @classmethod
    def parse(cls, text: str) -> Cron:
        """Raises CronError naming the bad field."""
        from cronsim import CronSim, CronSimError

        spec = ALIASES.get(text.strip().lower(), text) if text.strip().startswith("@") else text
        if spec.strip().startswith("@"):
            raise CronError(f"unknown alias {text.strip()!r} (known: {', '.join(ALIASES)})")
        parts = spec.split()
        if len(parts) != 5:
            raise CronError(f"expected 5 fields (minute hour day-of-month month day-of-week) "
                            f"or an alias like @daily, got {len(parts)}")
        try:
            CronSim(spec, datetime(2000, 1, 1, tzinfo=ZoneInfo("UTC")))
        except CronSimError as e:  # cronsim says "Bad hour": name the field and its text
            raise CronError(_field_error(str(e), parts)) from None
        cron = cls(text.strip(), " ".join(parts))
        if cron.next_after(946684800.0, ZoneInfo("UTC")) is None:  # from 2000-01-01
            raise CronError("this expression never fires (no such day in those months)")
        return cron

    def _times(self, after: float, tz: ZoneInfo) -> Iterator[float]:
        """Fire times strictly after `after`, in order, up to the horizon. cronsim fires a
        local time skipped by a clock change just after the jump, and a repeated local time
        once, at its first occurrence: a daily job fires exactly once on those days."""
        from cronsim import CronSim

        start = datetime.fromtimestamp(after, tz)
        horizon = after + HORIZON_DAYS * 86400.0
        try:
            for dt in CronSim(self.spec, start):
                t = dt.timestamp()
                if t > horizon:
                    return
                if t > after:
                    yield t
        except StopIteration:
            return

    def next_after(self, after: float, tz: ZoneInfo) -> float | None:
        """The first fire time strictly after `after`, or None within the horizon."""
        return next(self._times(after, tz), None)

    def between(self, start: float, end: float, tz: ZoneInfo) -> list[float]:
        """Every fire time t with start < t <= end, in order, without duplicates."""
        out: list[float] = []
        for t in self._times(start, tz):
            if t > end:
                break
            if not out or t > out[-1]:
                out.append(t)
        return out

    def upcoming(self, after: float, tz: ZoneInfo, count: int) -> list[float]:
        out: list[float] = []
        for t in self._times(after, tz):
            if len(out) >= count:
                break
            out.append(t)
        return out


def _field_error(message: str, parts: list[str]) -> str:
    """cronsim's "Bad <field>" as `field: 'text' is not valid (range)`."""
    name = message.removeprefix("Bad ").strip()
    if name not in _FIELDS:
        return message
    index, allowed = _FIELDS[name]
    text = parts[index]
    if name == "day-of-month" and text.isdigit() and 1 <= int(text) <= 31:
        return f"day-of-month {text} never comes in month {parts[3]!r}: it never fires"
    return (f"{name}: {text!r} is not valid (values {allowed}; lists a,b; ranges a-b "
            "upwards; steps */n with n >= 1)")


def zone(name: str) -> ZoneInfo:
    """An IANA time zone; UserError with close names when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=3)
        raise UserError(f"unknown time zone {name!r}",
                        hint=f"did you mean {' or '.join(close)}?" if close
                        else "an IANA name like UTC or Europe/Berlin") from None


def fmt_time(t: float, tz: ZoneInfo | None = None) -> str:
    """`2026-06-20 02:00 CEST` (local time when no zone is given)."""
    when = datetime.fromtimestamp(t, tz) if tz else datetime.fromtimestamp(t).astimezone()
    return when.strftime("%Y-%m-%d %H:%M:%S %Z").replace(":00 ", " ", 1) \
        if when.second == 0 else when.strftime("%Y-%m-%d %H:%M:%S %Z")


def fmt_duration(seconds: float) -> str:
    out, rest = "", int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out, rest = out + f"{rest // size}{unit}", rest % size
    return out or "0s"


# -- maintenance windows ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Window:
    """Opens at every fire of `cron` (in `tz`) and stays open `length` seconds."""

    cron: Cron
    length: float
    tz: ZoneInfo

    def open_at(self, now: float) -> tuple[float, float] | None:
        """(opened, closes) of the window open at `now` (the one closing last), or None."""
        opened = self.cron.between(now - self.length, now, self.tz)
        return (opened[-1], opened[-1] + self.length) if opened else None

    def next_open(self, now: float) -> float | None:
        return self.cron.next_after(now, self.tz)

    def __str__(self) -> str:
        return f"{self.cron.text} for {fmt_duration(self.length)} ({self.tz.key})"


def parse_window(value: Any, where: str) -> tuple[Window, ...]:
    """`netops_maintenance_window`: {cron, duration, timezone} or a list of them."""
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if not isinstance(item, Mapping) or not {"cron", "duration"} <= set(item) \
                or not set(item) <= {"cron", "duration", "timezone"}:
            raise UserError(f"{where}: {WINDOW_VAR} must be a mapping with cron, duration "
                            "and optionally timezone (or a list of them)",
                            hint='e.g. {cron: "0 2 * * SAT", duration: 4h, timezone: UTC}')
        try:
            cron = Cron.parse(str(item["cron"]))
        except CronError as e:
            raise UserError(f"{where}: {WINDOW_VAR} cron {item['cron']!r}: {e}") from None
        try:
            if not isinstance(item["duration"], str | int | float):
                raise UserError(f"{item['duration']!r} is not a duration like 30s, 5m or 4h")
            length = parse_duration(item["duration"])
        except UserError as e:
            raise UserError(f"{where}: {WINDOW_VAR} duration: {e.message}") from None
        out.append(Window(cron, length, zone(str(item.get("timezone", "UTC")))))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class WindowCheck:
    """Where the targeted hosts stand against their declared maintenance windows."""

    outside: Mapping[str, str] = field(default_factory=dict)
    """Host -> why it is outside (its windows and when the next one opens)."""
    closes: float | None = None
    """The earliest close among the open windows of the hosts that declare one."""


def check_windows(hosts: Sequence[Host], now: float) -> WindowCheck:
    """Hosts without the variable are always in their window."""
    outside: dict[str, str] = {}
    closes: list[float] = []
    for host in hosts:
        if host.vars.get(WINDOW_VAR) is None:
            continue
        windows = parse_window(host.vars[WINDOW_VAR], f"host {host.name}")
        open_ = [w.open_at(now) for w in windows]
        ends = [o[1] for o in open_ if o]
        if ends:
            closes.append(max(ends))
            continue
        nexts = [t for w in windows if (t := w.next_open(now)) is not None]
        outside[host.name] = "; ".join(str(w) for w in windows) + (
            f"; next opens {fmt_time(min(nexts))}" if nexts else "")
    return WindowCheck(outside, min(closes) if closes else None)


def parse_until(text: str, now: float) -> float:
    """`--until`: HH:MM (its next occurrence, local time) or an ISO date-time, in the future."""
    text = text.strip()
    base = datetime.fromtimestamp(now)
    try:
        if len(text) <= 8 and ":" in text and "T" not in text:
            clock = datetime.strptime(text, "%H:%M:%S" if text.count(":") == 2 else "%H:%M")
            when = base.replace(hour=clock.hour, minute=clock.minute, second=clock.second,
                                microsecond=0)
            return when.timestamp() if when.timestamp() > now else \
                (when + timedelta(days=1)).timestamp()
        at = datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UserError(f"--until {text!r}: expected HH:MM or an ISO date-time like "
                        "2026-06-20T06:00 or 2026-06-20T06:00+02:00") from None
    if at <= now:
        raise UserError(f"--until {text!r} is already past ({fmt_time(at)})")
    return at


# -- schedules.yaml -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Schedule:
    """One entry of schedules.yaml, validated."""

    name: str
    runbook: str
    nodes: str
    cron: Cron
    tz: ZoneInfo
    window: float
    """Seconds after the fire time during which batches may start."""
    span: SourceSpan
    spans: Mapping[str, SourceSpan] = field(default_factory=dict)
    """Where `runbook`, `nodes` and `vars` are written, for errors found against them later."""
    vars: tuple[str, ...] = ()
    """`NAME=VALUE` pairs, as --var takes them."""
    batch_size: str | None = None
    max_fail: str | None = None
    pause: str | None = None
    dry_run: bool = False
    catch_up: bool = False
    """Fire a run missed while the scheduler was down if its window is still open."""
    enabled: bool = True
    description: str = ""
    diagnose: bool = False
    """Fire `netops diagnose` (of `runbook` only, when given) instead of a run."""
    notify: tuple[Target, ...] = ()
    """Webhooks told when a run ends or halts, or a fire is missed (netops.notify)."""

    def fires(self, after: float, until: float) -> list[float]:
        return self.cron.between(after, until, self.tz)

    def next_fire(self, after: float) -> float | None:
        return self.cron.next_after(after, self.tz)


def default_path(inventory: Path) -> Path:
    return inventory.parent / "schedules.yaml"


def load_schedules(path: Path) -> dict[str, Schedule]:
    """Parse and validate schedules.yaml (LoadError with file:line:col)."""
    text = read_text(path, "schedules", hint="schedules.yaml lives beside the inventory (or "
                     "give --schedules)")
    doc = _Located(path, text)
    if doc.data is None:
        return {}
    return _Loader(doc).load()



class _Loader(_Validator):
    """schedules.yaml: `timezone:` (the default) and `schedules:` name -> schedule."""

    def load(self) -> dict[str, Schedule]:
        top = self.mapping(self.doc.data, (), "schedules.yaml")
        self.fields(top, (), TOP, "schedules.yaml")
        tz_name = top.get("timezone", "UTC")
        self.default_tz = self._zone(tz_name, ("timezone",))
        out: dict[str, Schedule] = {}
        for name, raw in self.mapping(top.get("schedules") or {}, ("schedules",),
                                      "'schedules'").items():
            if not _NAME.match(name):
                raise self.fail(("schedules", name), f"schedule name {name!r} must be "
                                "lower-case letters, digits, dots and dashes", key=True)
            out[name] = self._schedule(name, raw, ("schedules", name))
        return out

    def _zone(self, value: Any, at: tuple[str, ...]) -> ZoneInfo:
        try:
            return zone(str(value))
        except UserError as e:
            raise self.fail(at, e.message, e.hint) from None

    def _schedule(self, name: str, raw: Any, at: tuple[str, ...]) -> Schedule:
        what = f"schedule {name!r}"
        v = self.fields(self.mapping(raw, at, what), at, FIELDS, what)
        try:
            cron = Cron.parse(v["cron"])
        except CronError as e:
            raise self.fail((*at, "cron"), f"{what}: cron {v['cron']!r}: {e}",
                            "five fields (minute hour day-of-month month day-of-week) or "
                            "@daily, @weekly, ...") from None
        tz = self._zone(v["timezone"], (*at, "timezone")) if v["timezone"] else self.default_tz
        if v["window"] <= 0:
            raise self.fail((*at, "window"), f"{what}: the window must be longer than 0s")
        pairs = self._vars(v["vars"], (*at, "vars"), what)
        rollout = self._rollout(v["rollout"], (*at, "rollout"), what)
        spans = {k: self.doc.span((*at, k)) for k in ("runbook", "nodes", "vars")}
        spans |= {f"vars.{k}": self.doc.span((*at, "vars", k), key=True)
                  for k in v["vars"] or {}}
        runbook = v["runbook"] or ""
        if not runbook and not v["diagnose"]:
            raise self.fail(at, f"{what}: missing required field 'runbook' (a string)",
                            "the runbook to run (or diagnose: true)")
        if runbook.endswith((".yaml", ".yml")):  # a file: relative to schedules.yaml
            runbook = str((self.doc.path.parent / runbook).resolve())
        return Schedule(name=name, runbook=runbook, nodes=v["nodes"], cron=cron, tz=tz,
                        window=v["window"], span=self.doc.span(at, key=True), spans=spans,
                        vars=pairs, dry_run=v["dry_run"], catch_up=v["catch_up"],
                        enabled=v["enabled"], description=v["description"] or "",
                        diagnose=v["diagnose"],
                        notify=self._notify(v["notify"], (*at, "notify"), what), **rollout)

    def _notify(self, raw: Any, at: tuple[str, ...], what: str) -> tuple[Target, ...]:
        from netops.notify import parse_target, redact_spec

        items = raw if isinstance(raw, list) else [] if raw is None else [raw]
        out = []
        for i, item in enumerate(items):
            try:
                out.append(parse_target(item))
            except UserError as e:
                where: tuple[str | int, ...] = (*at, i) if isinstance(raw, list) else at
                err = self.fail(where, f"{what}: notify: {e.message}", e.hint)
                message = err.message  # the quoted line must not show a webhook URL either
                for x in items:
                    url = x.get("url") if isinstance(x, Mapping) else x
                    if isinstance(url, str) and url.strip():
                        message = message.replace(url.strip(), redact_spec(url.strip()))
                raise LoadError(message, err.span, err.hint) from None
        return tuple(out)

    def _vars(self, raw: Any, at: tuple[str, ...], what: str) -> tuple[str, ...]:
        pairs = []
        for key, value in self.mapping(raw or {}, at, f"{what}: 'vars'").items():
            scalars = value if isinstance(value, list) else [value]
            if value is None or not all(isinstance(x, str | int | float | bool)
                                        for x in scalars):
                raise self.fail((*at, key), f"{what}: var {key!r} must be a value or a list "
                                "of values")
            pairs.append(f"{key}={as_var(value)}")
        return tuple(pairs)

    def _rollout(self, raw: Any, at: tuple[str, ...], what: str) -> dict[str, str | None]:
        from netops.engine.plan import parse_sizes, parse_tolerance

        raw = self.mapping(raw or {}, at, f"{what}: 'rollout'")
        self.fields(raw, at, ROLLOUT_FIELDS, f"{what}: rollout")
        out: dict[str, str | None] = {"batch_size": None, "max_fail": None, "pause": None}
        checks = {"batch_size": parse_sizes, "max_fail": parse_tolerance,
                  "pause": parse_duration}
        for key, check in checks.items():
            if key not in raw:
                continue
            value = raw[key]
            text = ",".join(str(x) for x in value) if isinstance(value, list) else str(value)
            if key == "pause" and text == "ask":
                raise self.fail((*at, key), f"{what}: a scheduled run has nobody to ask: "
                                "give the pause as a duration")
            try:
                check(text)
            except UserError as e:
                raise self.fail((*at, key), f"{what}: rollout {key}: {e.message}") from None
            out[key] = text
        return out


TOP: tuple[Field, ...] = (
    Field("timezone", "str", "default time zone of the cron expressions (IANA name)",
          default="UTC"),
    Field("schedules", "any", "schedule name -> schedule"),
)
FIELDS: tuple[Field, ...] = (
    Field("runbook", "str", "the runbook to run (a name, or a file); with diagnose: true, "
          "the only runbook to diagnose"),
    Field("nodes", "str", "--nodes pattern: hosts, groups, globs", required=True),
    Field("cron", "str", "when it fires: a 5-field cron expression or @daily etc.",
          required=True),
    Field("timezone", "str", "IANA time zone of `cron` (default: the file's, else UTC)"),
    Field("window", "duration", "how long after firing batches may start, e.g. 2h",
          required=True),
    Field("vars", "any", "runbook params: NAME: value"),
    Field("rollout", "any", "batch_size, max_fail, pause overriding the runbook's"),
    Field("dry_run", "bool", "only report what would change (nothing is touched)",
          default=False),
    Field("catch_up", "bool", "after downtime, fire a missed run while its window is still "
          "open", default=False),
    Field("enabled", "bool", "false: fires are recorded as skipped", default=True),
    Field("description", "str", "what it is for"),
    Field("diagnose", "bool", "fire `netops diagnose` (its node x runbook matrix) instead of "
          "a run", default=False),
    Field("notify", "any", "webhooks told when a run ends or halts or a fire is missed: URL, "
          "slack+URL, or {url, format: json|slack}"),
)


def validate(schedules: Mapping[str, Schedule], find: Callable[[str], Runbook],
             inventory: Inventory) -> list[UserError]:
    """Check every schedule against the runbooks and the inventory; all errors, positioned.

    `find(name)` raises UserError for an unknown runbook.
    """
    errors: list[UserError] = []
    for s in schedules.values():
        def bad(key: str, e: UserError, s: Schedule = s) -> None:
            errors.append(LoadError(f"schedule {s.name!r}: {e.message}", s.spans.get(key, s.span),
                                    e.hint))
        try:
            if not inventory.select(s.nodes):
                bad("nodes", UserError(f"--nodes {s.nodes!r} selects no host"))
        except UserError as e:
            bad("nodes", e)
        if s.diagnose and not s.runbook:
            continue
        try:
            rb = find(s.runbook)
        except UserError as e:
            bad("runbook", e)
            continue
        for key, _, value in (pair.partition("=") for pair in s.vars):
            param = rb.params.get(key)
            try:
                if param is None:
                    raise UserError(f"runbook {rb.name!r} has no param {key!r}",
                                    hint=f"its params: {', '.join(rb.params) or 'none'}")
                param.coerce(value)
            except (UserError, ValueError) as e:
                bad(f"vars.{key}", e if isinstance(e, UserError) else UserError(str(e)))
        missing = [n for n, p in rb.params.items() if p.required and n not in
                   {pair.partition("=")[0] for pair in s.vars}]
        if missing:
            bad("vars" if s.vars else "runbook",
                UserError(f"runbook {rb.name!r} needs vars: {', '.join(missing)}"))
    return errors
