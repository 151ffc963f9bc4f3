"""The runbook format: typed records, the field tables, and the JSON Schema built from them.

One table per mapping (`STEP_FIELDS`, `TOP_FIELDS`, ...; a step kind's is derived from its
module's `Args` dataclass, `kind_spec`) drives validation (load.py), the published schema
(`json_schema`) and `netops show`, so the three can never disagree. Validation is
hand-rolled over that table rather than done by a schema library: it keeps YAML positions on
every error and keeps `netops run` start-up fast.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from functools import cache
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from netops.errors import SourceSpan, UserError
from netops.steps.registry import NAMES, kind

PARAM_TYPES = ("string", "int", "bool", "duration", "cidr", "list")
WHERE = ("node", "controller", "once")
PHASES = ("before", "steps", "verify", "after")
RESERVED_NAMES = frozenset({"host", "vars", "params", "run", "loop", "range", "true", "false",
                            "none", "True", "False", "None"})


@dataclass(frozen=True, slots=True)
class Field:
    """One key of a mapping in the format.

    `type` is one of: str, text (str, int or float, rendered as text), bool, int, duration,
    strlist, expect, any, or a tuple of allowed strings. `attr` is the attribute name on the
    parsed object when it differs from the key.
    """

    name: str
    type: str | tuple[str, ...]
    help: str
    required: bool = False
    default: Any = None
    attr: str | None = None
    template: bool = False
    """Rendered with Jinja2 at run time (so checked for undefined names at load time)."""


KIND_NAMES: tuple[str, ...] = NAMES
"""Every step kind (`netops.steps.registry`)."""


@dataclass(frozen=True, slots=True)
class KindSpec:
    """A step kind as the format sees it, derived from its `registry.Kind`: its arguments,
    which one a plain scalar fills, and its defaults."""

    name: str
    help: str
    fields: tuple[Field, ...]
    main: str | None
    mutates: bool
    on: str
    mutates_overridable: bool
    args: type[Any]
    """The kind's frozen `Args` dataclass, which a step's validated arguments become."""


@cache
def kind_spec(name: str) -> KindSpec:
    """The format of step kind `name` (one of `KIND_NAMES`), from its module."""
    k = kind(name)
    return KindSpec(name, k.HELP, arg_fields(k.Args), k.MAIN, k.MUTATES, k.ON,
                    k.MUTATES_OVERRIDABLE, k.Args)


def arg_fields(args: type[Any]) -> tuple[Field, ...]:
    """The format's fields of an `Args` dataclass, from its annotations and `arg(...)`
    metadata (`netops.steps.base.arg`), in the order they are declared."""
    hints = get_type_hints(args)
    out = []
    for f in fields(args):
        meta = f.metadata
        plain = isinstance(f.default, str | int | float | bool)
        out.append(Field(meta["key"] or f.name, _format(hints[f.name], meta["text"]),
                         meta["help"], required=f.default is MISSING,
                         default=f.default if plain else None,
                         attr=f.name if meta["key"] else None,
                         template=meta["template"] is not None))
    return tuple(out)


def _format(hint: Any, text: bool) -> str | tuple[str, ...]:
    """The format type of an annotation (`Field.type`): optional values are optional keys."""
    if get_origin(hint) in (Union, UnionType):  # `Literal[...] | None` is a typing.Union
        hint = next(h for h in get_args(hint) if h is not type(None))
    if get_origin(hint) is Literal:
        return tuple(get_args(hint))
    if get_origin(hint) is tuple:
        return "strlist"
    names: dict[Any, str] = {str: "text" if text else "str", bool: "bool", int: "int",
                             float: "duration"}
    if hint in names:
        return names[hint]
    if getattr(hint, "__name__", "") == "Expect":  # netops.steps.base.Expect
        return "expect"
    raise TypeError(f"no runbook format for an argument of type {hint!r}")


STEP_FIELDS: tuple[Field, ...] = (
    Field("id", "str", "identifier; later steps read the result as `ID.failed`, `ID.stdout`, "
          "`ID.fields.x`"),
    Field("name", "str", "what the step does, for people"),
    Field("when", "str", "Jinja2 expression over params, `host` and earlier results"),
    Field("register", "str", "an extra name for this step's result"),
    Field("become", "bool", "run through sudo -n", default=False),
    Field("timeout", "duration", "per-command timeout (default: the run's --timeout)",
          attr="timeout_s"),
    Field("retries", "int", "extra attempts when the step fails", default=0),
    Field("delay", "duration", "pause between attempts", default=5.0, attr="delay_s"),
    Field("ignore_errors", "bool", "a failure does not stop the host", default=False),
    Field("where", WHERE, "node (each host, default), controller (locally, per host), or once "
          "(first reachable host of `group`; before:/after: only)", attr="on"),
    Field("on", WHERE, "the old name of `where` (a YAML 1.1 reader such as PyYAML reads a "
          "bare `on:` key as the boolean true; write `where:`)", attr="on_"),
    Field("group", "str", "for `where: once`: the inventory group (default all)"),
    Field("mutates", "bool", "override for shell/kubectl/local: false marks a read-only "
          "command that runs in dry runs"),
)

PARAM_FIELDS: tuple[Field, ...] = (
    Field("type", PARAM_TYPES, "value type", required=True),
    Field("default", "any", "value when --var does not give one"),
    Field("help", "str", "what the param means"),
    Field("secret", "bool", "kept out of every log, report and the journal", default=False),
    Field("required", "bool", "must be given with --var", default=False),
    Field("choices", "strlist", "allowed values"),
    Field("below", "str", "another param (same type) this one must stay below, e.g. a "
          "freshness window below the settle time: contradictory values are refused"),
)

ROLLOUT_FIELDS: tuple[Field, ...] = (
    Field("batch_size", "any", "hosts per batch: 1, '25%', or a list like [1, '25%', '100%'] "
          "(the last repeats)", default="100%"),
    Field("max_fail", "any", "failed hosts the whole run tolerates: N or 'P%'", default=0),
    Field("pause", "any", "between batches: a duration or 'ask'", default=0),
)

TOP_FIELDS: tuple[Field, ...] = (
    Field("name", "str", "the runbook id (its file name without .yaml)", required=True),
    Field("description", "str", "what it fixes and why", required=True),
    Field("disruptive", "bool", "drains, reboots or interrupts traffic", default=False),
    Field("sources", "strlist", "issues and documents the fix comes from"),
    Field("params", "any", "typed parameters, set with --var NAME=VALUE"),
    Field("rollout", "any", "default batch_size, max_fail, pause"),
    Field("before", "any", "steps run once before the rolling part (where: once or controller)"),
    Field("steps", "any", "steps run on every host, batch by batch", required=True),
    Field("verify", "any", "read-only health gate run on each host after its steps"),
    Field("after", "any", "steps run once after the rolling part (where: once or controller)"),
    Field("tests", "any", "lab scenarios that prove the runbook (`netops lab verify`)"),
)

SCENARIO_FIELDS: tuple[Field, ...] = (
    Field("name", "str", "the scenario's name (lower-case letters, digits, dashes)",
          required=True),
    Field("inject", "strlist", "shell commands run as root on the lab node to break it"),
    Field("lab_fault", "str", "a netops lab fault to inject instead of (before) `inject`, for "
          "state outside the node (etcd, the Kubernetes API stand-in); netops's lab only"),
    Field("healthy", "strlist", "end-state check, independent of the runbook's own steps: "
          "every command exits 0 on a fixed node (required unless `fixed: false`)"),
    Field("vars", "any", "param values for the scenario's runs and diagnose: NAME: VALUE"),
    Field("fixed", "bool", "the run fixes the node; false: report only (the run fails with "
          "its finding)", default=True),
    Field("persists", "bool", "with `fixed: false`: the finding survives a reboot (false: "
          "the reboot clears it)", default=True),
)


# -- parsed records ---------------------------------------------------------------------------
def as_var(value: Any) -> str:
    """A param value as `--var NAME=TEXT` text: lists comma-separated, booleans lower case
    (what `coerce` reads back)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(as_var(v) for v in value)
    return str(value)


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: str
    default: Any = None
    help: str = ""
    secret: bool = False
    required: bool = False
    choices: tuple[str, ...] = ()
    below: str = ""
    """Another param this one's value must stay below (`check_order`)."""

    def coerce(self, raw: Any) -> Any:
        """A value given on the command line (or as the default) as this param's type."""
        value = coerce(self.type, raw)
        if self.choices and str(value) not in self.choices:
            raise UserError(f"{raw!r} is not one of {', '.join(self.choices)}")
        return value


def check_order(params: Mapping[str, Param], values: Mapping[str, Any]) -> str:
    """Why the values break a param's `below:` (empty when they do not): e.g. fix-calico's
    fresh_within at or above settle, where one log line of the restarted pod would count as
    "fixed"."""
    for name, param in params.items():
        a, b = values.get(name), values.get(param.below) if param.below else None
        if a is not None and b is not None and not a < b:
            return f"{name} ({as_var(a)}) must be below {param.below} ({as_var(b)})"
    return ""


@dataclass(frozen=True, slots=True)
class Rollout:
    batch_size: tuple[int | str, ...] = ("100%",)
    max_fail: int | str = 0
    pause: float | str = 0.0


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    name: str
    kind: str
    args: Any
    """The kind's frozen `Args` (`netops.steps.<kind>.Args`), validated, not yet rendered."""
    on: str
    mutates: bool
    span: SourceSpan
    group: str | None = None
    when: str | None = None
    register: str | None = None
    become: bool = False
    timeout_s: float | None = None
    retries: int = 0
    delay_s: float = 5.0
    ignore_errors: bool = False


@dataclass(frozen=True, slots=True)
class Runbook:
    name: str
    description: str
    source: Path
    steps: tuple[Step, ...]
    disruptive: bool = False
    sources: tuple[str, ...] = ()
    params: Mapping[str, Param] = field(default_factory=dict)
    rollout: Rollout = field(default_factory=Rollout)
    before: tuple[Step, ...] = ()
    verify: tuple[Step, ...] = ()
    after: tuple[Step, ...] = ()
    tests: tuple[Scenario, ...] = ()
    """Lab scenarios (`tests:`) that `netops lab verify` runs."""

    def all_steps(self) -> tuple[Step, ...]:
        return (*self.before, *self.steps, *self.verify, *self.after)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One `tests:` entry: how to break a lab node, and how to tell that it is fixed."""

    name: str
    span: SourceSpan
    inject: tuple[str, ...] = ()
    lab_fault: str | None = None
    healthy: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=dict)
    """Param values, already coerced to the param's type."""
    fixed: bool = True
    persists: bool = True

    def var_args(self) -> list[str]:
        """The vars as `NAME=VALUE` pairs (what `--var` takes)."""
        return [f"{k}={as_var(v)}" for k, v in self.vars.items()]


# -- value types --------------------------------------------------------------------------------
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | int | float) -> float:
    """Seconds in `90`, `30s`, `5m`, `1h30m`, `250ms`."""
    if isinstance(text, bool):
        raise UserError(f"{text!r} is not a duration like 30s, 5m or 1h")
    if isinstance(text, int | float):
        if text < 0:
            raise UserError(f"duration {text} is negative")
        return float(text)
    s = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    parts = _DURATION.findall(s)
    if not s or "".join(n + u for n, u in parts) != s:
        raise UserError(f"{text!r} is not a duration like 30s, 5m, 1h30m or 250ms")
    return sum(float(n) * _UNIT[u] for n, u in parts)


_TRUE = {"true", "yes", "on", "1", "y"}
_FALSE = {"false", "no", "off", "0", "n"}


def _int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError
    return int(raw)


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower()
    if word not in _TRUE | _FALSE:
        raise ValueError
    return word in _TRUE


def _duration(raw: Any) -> int | float:
    seconds = parse_duration(raw)
    return int(seconds) if seconds == int(seconds) else seconds


def _list(raw: Any) -> list[str]:
    if isinstance(raw, list | tuple):
        return [str(x) for x in raw]
    return [x.strip() for x in str(raw).split(",") if x.strip()]


_COERCE: dict[str, tuple[Any, str]] = {
    "string": (str, "a string"),
    "int": (_int, "an integer"),
    "bool": (_bool, "a boolean (true/false, yes/no)"),
    "duration": (_duration, "a duration like 30s, 5m, 1h30m"),
    "cidr": (lambda r: str(ipaddress.ip_network(str(r).strip(), strict=False)),
             "a CIDR like 10.244.0.0/16"),
    "list": (_list, "a comma-separated list"),
}


def coerce(kind: str, raw: Any) -> Any:
    """`raw` (a string from --var, or a YAML value) as a param value of type `kind`."""
    if raw is None:
        return None
    convert, expected = _COERCE[kind]
    try:
        return convert(raw)
    except (TypeError, ValueError, UserError):
        raise UserError(f"{raw!r} is not {expected}") from None


# -- JSON Schema ---------------------------------------------------------------------------------
def _field_schema(f: Field) -> dict[str, Any]:
    t = f.type
    out: dict[str, Any]
    if isinstance(t, tuple):
        out = {"enum": list(t)}
    elif t == "str":
        out = {"type": "string"}
    elif t == "text":
        out = {"type": ["string", "number"]}
    elif t == "bool":
        out = {"type": "boolean"}
    elif t == "int":
        out = {"type": "integer", "minimum": 0}
    elif t == "duration":
        out = {"$ref": "#/$defs/duration"}
    elif t == "strlist":
        out = {"type": "array", "items": {"type": "string"}}
    elif t == "expect":
        out = {"$ref": "#/$defs/expect"}
    else:
        out = {}
    out["description"] = f.help
    if f.default is not None:
        out["default"] = f.default
    return out


def _object(fields: tuple[Field, ...], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    props = {f.name: _field_schema(f) for f in fields}
    props.update(extra or {})
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    required = [f.name for f in fields if f.required]
    if required:
        out["required"] = required
    return out


def _step_schema(kind: KindSpec) -> dict[str, Any]:
    args = _object(kind.fields)
    value: dict[str, Any] = {"anyOf": [args]}
    if kind.main:
        main = next(f for f in kind.fields if f.name == kind.main)
        value["anyOf"].insert(0, _field_schema(main))
    else:
        value["anyOf"].append({"type": "null"})
    common = {f.name: _field_schema(f) for f in STEP_FIELDS}
    common["on"]["deprecated"] = True
    # A kind's other arguments may also sit beside the kind key (`check: CMD` + `expect:`).
    siblings = {f.name: _field_schema(f) for f in kind.fields if f.name != kind.main}
    return {"type": "object", "description": kind.help, "required": [kind.name],
            "properties": {kind.name: value, **common, **siblings},
            "additionalProperties": False}


def _tests_schema() -> dict[str, Any]:
    scenario = _object(SCENARIO_FIELDS)
    scenario["properties"]["name"]["pattern"] = "^[a-z0-9][a-z0-9._-]*$"
    scenario["properties"]["vars"].update(  # keeps the field's description
        type="object", additionalProperties={"type": ["string", "number", "boolean", "array"]})
    scenario["anyOf"] = [{"required": ["inject"]}, {"required": ["lab_fault"]}]
    about = next(f.help for f in TOP_FIELDS if f.name == "tests")
    return {"type": "array", "items": scenario, "description": about}


def json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a runbook file, for editors and CI linting."""
    step = {"oneOf": [_step_schema(kind_spec(k)) for k in KIND_NAMES]}
    steps = {"type": "array", "items": {"$ref": "#/$defs/step"}}
    params = {"type": "object", "additionalProperties": _object(PARAM_FIELDS),
              "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}}
    top = _object(TOP_FIELDS)
    top["properties"].update(params=params, rollout=_object(ROLLOUT_FIELDS), before=steps,
                             steps={**steps, "minItems": 1}, verify=steps, after=steps,
                             tests=_tests_schema())
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://netops.dev/schema/runbook.json",
        "title": "netops runbook",
        **top,
        "$defs": {
            "step": step,
            "duration": {"anyOf": [{"type": "number", "minimum": 0},
                                   {"type": "string",
                                    "pattern": r"^\d+(\.\d+)?((ms|s|m|h|d)"
                                               r"(\d+(\.\d+)?(ms|s|m|h|d))*)?$"}]},
            "expect": {"type": "object", "additionalProperties": False, "properties": {
                "rc": {"type": ["integer", "null"]}, "stdout": {"type": "string"},
                "stdout_regex": {"type": "string"}, "stdout_contains": {"type": "string"}}},
        },
    }
