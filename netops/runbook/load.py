"""Load and validate runbook files; every error names file:line:col and the expected shape.

YAML is composed into nodes (keeping positions) and converted to plain values with a position
for every key and value. Validation walks the tables in `model.py`, then checks every template
for names that are neither params, built-ins nor results registered by an earlier step. Nothing
touches a host until all of this passed.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from netops.errors import LoadError, SourceSpan, UserError
from netops.runbook import model
from netops.runbook.model import (
    KIND_NAMES,
    PARAM_FIELDS,
    ROLLOUT_FIELDS,
    SCENARIO_FIELDS,
    STEP_FIELDS,
    TOP_FIELDS,
    Field,
    KindSpec,
    Param,
    Rollout,
    Runbook,
    Scenario,
    Step,
    kind_spec,
)
from netops.runbook.render import JINJA_GLOBALS, TemplateSyntax, references
from netops.steps.base import Expect
from netops.steps.registry import kind as kind_module
from netops.yamlfile import YamlFile, read_text

Path_ = tuple[str | int, ...]
_T = TypeVar("_T")
BUILTINS = frozenset({"host", "vars", "params", "run"}) | JINJA_GLOBALS
RESULT_ATTRS = ("status", "rc", "stdout", "stderr", "failed", "changed", "skipped", "ok",
                "lines", "fields")
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


# -- YAML with positions ------------------------------------------------------------------------
class _Located:
    """Plain values from a YAML document, plus the position of every key and value."""

    def __init__(self, path: Path, text: str) -> None:
        self.file = YamlFile(path, text)  # refuses bombs, loops, unknown tags, deep nesting
        self.path, self.lines = path, self.file.lines
        self.values: dict[Path_, yaml.Mark] = {}
        self.keys: dict[Path_, yaml.Mark] = {}
        self._scalars = yaml.constructor.SafeConstructor()
        node = self.file.root
        self.data = None if node is None else self._convert(node, ())

    def _convert(self, node: yaml.Node, at: Path_) -> Any:
        self.values[at] = node.start_mark
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise self._error(key_node.start_mark, "YAML merge keys (<<) are not "
                                      "supported", "repeat the keys, or use an anchor per value")
                # Keys are names: read them as written, so YAML 1.1 does not turn `on:` or
                # `yes:` into booleans.
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self._error(key_node.start_mark, "a key must be a plain name", "")
                key = str(key_node.value)
                if key in out:
                    first = self.keys[(*at, key)]
                    raise self._error(key_node.start_mark, f"duplicate key {key!r} (first at "
                                      f"line {first.line + 1})", "a key may appear only once")
                self.keys[(*at, key)] = key_node.start_mark
                out[key] = self._convert(value_node, (*at, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._convert(item, (*at, i)) for i, item in enumerate(node.value)]
        try:
            return self._scalars.construct_object(node)
        except yaml.MarkedYAMLError as e:  # e.g. !!binary that is not base64
            raise self._error(node.start_mark, f"bad value: {e.problem}", "") from None
        except (ValueError, OverflowError) as e:  # 2024-13-45, a 5000-digit number
            raise self._error(node.start_mark, f"bad value {str(node.value)[:40]!r}: {e}",
                              "quote it to keep it a string") from None

    def span(self, at: Path_, *, key: bool = False) -> SourceSpan:
        mark = (self.keys.get(at) if key else None) or self.values.get(at) \
            or self.keys.get(at) or self.values.get(())
        if mark is None:
            return SourceSpan(self.path, 1, 1)
        return SourceSpan(self.path, mark.line + 1, mark.column + 1)

    def error(self, at: Path_, message: str, hint: str = "", *, key: bool = False) -> LoadError:
        span = self.span(at, key=key)
        return self.file.at(span.line, span.col, message, hint)

    def _error(self, mark: yaml.Mark | None, message: str, hint: str) -> LoadError:
        return self.file.error(mark, message, hint)


class LoadErrors(LoadError):
    """Every error found in one file (validation keeps going after the first): `errors` in
    file order; prints as one error per line, like a compiler."""

    def __init__(self, errors: list[LoadError]) -> None:
        first = errors[0]
        super().__init__(first.message, first.span, first.hint)
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def _flatten(error: LoadError) -> list[LoadError]:
    return list(error.errors) if isinstance(error, LoadErrors) else [error]


def _raise_all(errors: list[LoadError]) -> None:
    """Raise the errors found, in file order (none: return)."""
    if not errors:
        return
    unique: dict[str, LoadError] = {}
    for e in errors:
        unique.setdefault(str(e), e)
    ordered = sorted(unique.values(), key=lambda e: (e.span.line, e.span.col) if e.span
                     else (0, 0))
    raise ordered[0] if len(ordered) == 1 else LoadErrors(ordered)


_TEMPLATE_MARKS = ("{{", "{%")
_PLAIN_TEXT = frozenset({"name", "description", "help"})
"""Fields for people only: shown as written, so a `{{` in them is just text."""


# -- validation -----------------------------------------------------------------------------------
def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _describe(t: str | tuple[str, ...]) -> str:
    if isinstance(t, tuple):
        return "one of " + ", ".join(t)
    return {"str": "a string", "text": "a string or number", "bool": "true or false",
            "int": "a whole number >= 0", "duration": "a duration like 30s, 5m, 1h",
            "strlist": "a list of strings", "expect": "a mapping (rc, stdout, stdout_regex, "
            "stdout_contains)", "any": "a value"}[t]


class _Validator:
    def __init__(self, doc: _Located) -> None:
        self.doc = doc
        self.errors: list[LoadError] = []
        """Errors found so far; validation goes on after each to report them all."""

    def keep(self, error: LoadError) -> None:
        self.errors.extend(_flatten(error))

    def fail(self, at: Path_, message: str, hint: str = "", *, key: bool = False) -> LoadError:
        return self.doc.error(at, message, hint, key=key)

    def mapping(self, value: Any, at: Path_, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(at, f"{what} must be a mapping, got {_kind(value)}")
        return value

    def fields(self, raw: Mapping[str, Any], at: Path_, spec: tuple[Field, ...], what: str,
               *, also: Iterable[str] = ()) -> dict[str, Any]:
        """Typed values of `raw` per `spec` (defaults filled); unknown keys are errors."""
        known = {f.name: f for f in spec}
        found: list[LoadError] = [
            self.fail((*at, k), f"{what}: unknown field {k!r}", _suggest(k, [*known, *also])
                      or f"allowed: {', '.join([*known, *also])}", key=True)
            for k in raw if k not in known and k not in also]
        out: dict[str, Any] = {}
        for f in spec:
            out[f.attr or f.name] = f.default
            if f.name in raw:
                try:
                    out[f.attr or f.name] = self.typed(raw[f.name], f, (*at, f.name), what)
                except LoadError as e:
                    found += _flatten(e)
            elif f.required:
                found.append(self.fail(at, f"{what}: missing required field {f.name!r} "
                                       f"({_describe(f.type)})", f.help))
        _raise_all(found)
        return out

    def typed(self, value: Any, f: Field, at: Path_, what: str) -> Any:
        t = f.type
        if t == "expect":
            return self.expect(value, at, what)
        if isinstance(t, tuple):
            ok, out = value in t, value
        elif t == "duration":
            try:
                out = model.parse_duration(value) if isinstance(value, str | int | float) \
                    else None
                ok = out is not None and math.isfinite(out)
            except UserError:
                ok, out = False, None
        else:
            ok, out = _SCALARS[t](value)
            if ok and t in ("str", "text", "strlist") and not f.template \
                    and f.name not in _PLAIN_TEXT and f.name != "when":
                self._untemplated(value, f, at, what)
        if not ok:
            shown = f" {value!r}" if isinstance(value, str | int | float) else ""
            raise self.fail(at, f"{what}: {f.name!r} must be {_describe(t)}, got "
                            f"{_kind(value)}{shown}", f.help)
        return out

    def _untemplated(self, value: Any, f: Field, at: Path_, what: str) -> None:
        """A template where the value is used as written would silently reach a node or a
        comparison with its braces: refused."""
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and any(m in text for m in _TEMPLATE_MARKS):
                raise self.fail(at, f"{what}: {f.name!r} is used as written, not templated, "
                                f"but holds a template: {text[:60]!r}",
                                "compute it in a template field (a command, a path), or "
                                "write the value itself")

    def expect(self, value: Any, at: Path_, what: str) -> Expect:
        raw = self.mapping(value, at, f"{what}: 'expect'")
        allowed = {"rc": (int, type(None)), "stdout": (str, int, float),
                   "stdout_regex": (str,), "stdout_contains": (str,)}
        for k, v in raw.items():
            if k not in allowed:
                raise self.fail((*at, k), f"{what}: expect has no field {k!r}",
                                _suggest(k, allowed) or f"allowed: {', '.join(allowed)}",
                                key=True)
            if isinstance(v, bool) or not isinstance(v, allowed[k]):
                raise self.fail((*at, k), f"{what}: expect.{k} must be "
                                f"{'an integer or null' if k == 'rc' else 'a string'}")
        if "stdout_regex" in raw and not any(m in raw["stdout_regex"]
                                             for m in _TEMPLATE_MARKS):  # else: at run time
            try:
                re.compile(raw["stdout_regex"])
            except re.error as e:
                raise self.fail((*at, "stdout_regex"), f"bad regex: {e}") from None
        stdout = raw.get("stdout")
        return Expect(rc=raw.get("rc", 0), stdout=None if stdout is None else str(stdout),
                      stdout_regex=raw.get("stdout_regex"),
                      stdout_contains=raw.get("stdout_contains"))


_SCALARS: dict[str, Any] = {
    "str": lambda v: (isinstance(v, str), v),
    "text": lambda v: (not isinstance(v, bool) and isinstance(v, str | int | float), str(v)),
    "bool": lambda v: (isinstance(v, bool), v),
    "int": lambda v: (not isinstance(v, bool) and isinstance(v, int) and v >= 0, v),
    "strlist": lambda v: (isinstance(v, list) and all(isinstance(x, str) for x in v), v),
    "any": lambda v: (True, v),
}


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "nothing"}.get(type(value),
                                                                           type(value).__name__)


class _RunbookLoader(_Validator):
    def __init__(self, doc: _Located) -> None:
        super().__init__(doc)
        self.params: dict[str, Param] = {}
        self.ids: dict[str, Path_] = {}
        self.all_ids: set[str] = set()

    def load(self) -> Runbook:
        """The runbook, or every error found in it (`LoadErrors` when more than one)."""
        top = self.mapping(self.doc.data, (), "a runbook")
        values = self._kept(lambda: self.fields(top, (), TOP_FIELDS, "runbook")) or {}
        name = values.get("name")
        if isinstance(name, str) and not _NAME.match(name):
            self.keep(self.fail(("name",), f"runbook name {name!r} must be lower-case "
                                "letters, digits and dashes", "e.g. fix-calico"))
        self.params = self._params(top.get("params") or {})
        rollout = self._kept(lambda: self._rollout(top.get("rollout") or {}))
        self.all_ids = self._collect_ids(top)
        phases: dict[str, tuple[Step, ...]] = {}
        visible: dict[str, set[str]] = {}
        for phase in model.PHASES:
            phases[phase] = self._phase(phase, top.get(phase) or [], visible)
        tests = self._scenarios(top.get("tests"))
        _raise_all(self.errors)
        assert rollout is not None and isinstance(name, str)
        return Runbook(name=name, description=values["description"], source=self.doc.path,
                       disruptive=values["disruptive"], sources=tuple(values["sources"] or ()),
                       params=self.params, rollout=rollout, tests=tests, **phases)

    def _kept(self, work: Callable[..., _T], *args: Any) -> _T | None:
        """`work(*args)`, or None with its errors kept (validation goes on)."""
        try:
            return work(*args)
        except LoadError as e:
            self.keep(e)
            return None

    def _phase(self, phase: str, raw: Any, visible: dict[str, set[str]]) -> tuple[Step, ...]:
        if not isinstance(raw, list):
            self.keep(self.fail((phase,), f"{phase!r} must be a list of steps, got "
                                f"{_kind(raw)}"))
            return ()
        if phase == "steps" and not raw:
            self.keep(self.fail((phase,), "'steps' must hold at least one step"))
        seen = {"before": set(), "steps": set(visible.get("before", set())),
                "verify": set(visible.get("before", set())) | visible.get("steps", set()),
                "after": set(visible.get("before", set()))}[phase]
        steps = []
        for i, item in enumerate(raw):
            step = self._kept(self._step, item, (phase, i), phase, seen)
            if step is None:  # its names still count: no second error where they are read
                names = item.items() if isinstance(item, dict) else ()
                seen.update(v for k, v in names if k in ("id", "register")
                            and isinstance(v, str))
                continue
            seen.add(step.id)
            if step.register:
                seen.add(step.register)
            steps.append(step)
        visible[phase] = seen
        return tuple(steps)

    def _collect_ids(self, top: Mapping[str, Any]) -> set[str]:
        ids = set()
        for phase in model.PHASES:
            items = top.get(phase)
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict):
                    ids |= {v for k, v in item.items() if k in ("id", "register")
                            and isinstance(v, str)}
        return ids

    def _params(self, raw: Any) -> dict[str, Param]:
        raw = self.mapping(raw, ("params",), "'params'")
        out: dict[str, Param] = {}
        for name, spec in raw.items():
            param = self._kept(self._param, name, spec)
            if param is not None:
                out[name] = param
        for name, param in out.items():  # `below:` names a param of the same type
            other = out.get(param.below)
            if param.below and (other is None or other.type != param.type
                                or param.type not in ("int", "duration")):
                self.keep(self.fail(("params", name, "below"), f"param {name!r}: below "
                                    f"{param.below!r} must name another int or duration param "
                                    f"of type {param.type}"))
            elif param.below:
                why = model.check_order(out, {n: p.default for n, p in out.items()})
                if why:
                    self.keep(self.fail(("params", name, "default"), f"defaults: {why}"))
        return out

    def _param(self, name: str, spec: Any) -> Param:
        at: Path_ = ("params", name)
        if not _ID.match(name) or name in model.RESERVED_NAMES:
            raise self.fail(at, f"param name {name!r} must be an identifier and not one of "
                            f"{', '.join(sorted(BUILTINS & model.RESERVED_NAMES))}",
                            key=True)
        v = self.fields(self.mapping(spec, at, f"param {name!r}"), at, PARAM_FIELDS,
                        f"param {name!r}")
        choices = tuple(v["choices"] or ())
        below = v["below"] or ""
        param = Param(name, v["type"], None, v["help"] or "", v["secret"], v["required"],
                      choices, below)
        default = v["default"]
        listed = v["type"] == "list" and isinstance(default, list) \
            and all(isinstance(x, str | int | float) for x in default)
        if default is not None and not (isinstance(default, str | int | float) or listed):
            raise self.fail((*at, "default"), f"param {name!r}: default must be "
                            f"{'a list of values' if v['type'] == 'list' else 'a value'}, "
                            f"got {_kind(default)}")
        if default is not None:
            try:
                param = Param(name, v["type"], param.coerce(v["default"]), param.help,
                              param.secret, param.required, choices, below)
            except UserError as e:
                raise self.fail((*at, "default"), f"param {name!r}: default "
                                f"{e.message}") from None
        return param

    def _rollout(self, raw: Any) -> Rollout:
        from netops.engine.plan import parse_sizes, parse_tolerance

        raw = self.mapping(raw, ("rollout",), "'rollout'")
        v = self.fields(raw, ("rollout",), ROLLOUT_FIELDS, "rollout")
        try:
            size = v["batch_size"]
            sizes = parse_sizes(",".join(str(x) for x in size) if isinstance(size, list)
                                else str(size))
        except UserError as e:
            raise self.fail(("rollout", "batch_size"), e.message) from None
        try:
            max_fail = parse_tolerance(str(v["max_fail"]))
        except UserError as e:
            raise self.fail(("rollout", "max_fail"), e.message) from None
        pause = v["pause"]
        if pause != "ask":
            try:
                pause = model.parse_duration(pause)
            except UserError as e:
                raise self.fail(("rollout", "pause"), e.message + " or 'ask'") from None
        return Rollout(sizes, max_fail, pause)

    # -- tests: (lab scenarios) ------------------------------------------------------------
    def _scenarios(self, raw: Any) -> tuple[Scenario, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.keep(self.fail(("tests",), f"'tests' must be a list of scenarios, got "
                                f"{_kind(raw)}", "each: name, inject, healthy, vars"))
            return ()
        out: list[Scenario] = []
        for i, item in enumerate(raw):
            scenario = self._kept(self._scenario, item, ("tests", i))
            if scenario is None:
                continue
            first = next((s for s in out if s.name == scenario.name), None)
            if first is not None:
                self.keep(self.fail(("tests", i, "name"), f"duplicate scenario name "
                                    f"{scenario.name!r} (first at line {first.span.line})"))
            out.append(scenario)
        return tuple(out)

    def _scenario(self, item: Any, at: Path_) -> Scenario:
        what = f"tests[{int(at[1]) + 1}]"
        raw = self.mapping(item, at, what)
        if isinstance(raw.get("name"), str):
            what = f"test {raw['name']!r}"
        v = self.fields(raw, at, SCENARIO_FIELDS, what)
        found: list[LoadError] = []
        if not _NAME.match(v["name"]):
            found.append(self.fail((*at, "name"), f"{what}: name must be lower-case letters, "
                                   "digits and dashes", "e.g. forward-drop"))
        if not v["inject"] and not v["lab_fault"]:
            found.append(self.fail(at, f"{what}: nothing breaks the node",
                                   "give `inject:` (shell commands) or `lab_fault:`"))
        if v["lab_fault"] is not None and not _NAME.match(v["lab_fault"]):
            found.append(self.fail((*at, "lab_fault"), f"{what}: lab_fault {v['lab_fault']!r} "
                                   "is not a fault name", "`netops lab fault list` names them"))
        if v["fixed"] and not v["healthy"]:
            found.append(self.fail(at, f"{what}: a scenario the run fixes needs `healthy:`",
                                   "commands that all exit 0 once the node is fixed, without "
                                   "the runbook's own steps (or `fixed: false`)"))
        if v["fixed"] and "persists" in raw:
            found.append(self.fail((*at, "persists"), f"{what}: 'persists' is for report-only "
                                   "scenarios (`fixed: false`)", key=True))
        values = self._kept(self._scenario_vars, v["vars"], (*at, "vars"), what)
        _raise_all(found)
        return Scenario(name=v["name"], span=self.doc.span(at), inject=tuple(v["inject"] or ()),
                        lab_fault=v["lab_fault"], healthy=tuple(v["healthy"] or ()),
                        vars=values or {}, fixed=v["fixed"], persists=v["persists"])

    def _scenario_vars(self, raw: Any, at: Path_, what: str) -> dict[str, Any]:
        """The scenario's `vars:`, each a param of the runbook and of its type."""
        if raw is None:
            return {}
        raw = self.mapping(raw, at, f"{what}: 'vars'")
        out: dict[str, Any] = {}
        for name, value in raw.items():
            param = self.params.get(name)
            if param is None:
                self.keep(self.fail((*at, name), f"{what}: no param {name!r}",
                                    _suggest(name, self.params) or
                                    f"params: {', '.join(self.params) or 'none'}", key=True))
                continue
            try:
                out[name] = param.coerce(value)
            except UserError as e:
                self.keep(self.fail((*at, name), f"{what}: var {name!r}: {e.message}"))
        why = model.check_order(self.params, {n: p.default for n, p in self.params.items()}
                                | out)
        if why:
            self.keep(self.fail(at, f"{what}: vars: {why}"))
        return out

    # -- steps ---------------------------------------------------------------------------------
    def _step(self, item: Any, at: Path_, phase: str, seen: set[str]) -> Step | None:
        """The step, or None when its errors were kept (each part is checked regardless)."""
        raw = self.mapping(item, at, f"{phase} step {int(at[1]) + 1}")
        label = f"step {raw.get('id') or int(at[1]) + 1}"
        kind = self._kind_of(raw, at, label)
        args_raw, arg_at = self._gather(kind, raw, at, label)
        args_at = (*at, kind.name)
        common = {f.name for f in STEP_FIELDS}
        args = self._kept(lambda: self._args(kind, args_raw, arg_at, args_at, label))
        c = self._kept(lambda: self.fields({k: v for k, v in raw.items() if k in common}, at,
                                           STEP_FIELDS, label))
        when = c["when"] if c is not None else raw.get("when")
        self._templates(kind, args_raw, arg_at, {"when": when if isinstance(when, str)
                                                 else None}, at, seen, label)
        if c is None:
            return None
        step_id = c["id"] or f"{kind.name}_{phase}_{int(at[1]) + 1}"
        for key in ("id", "register"):
            if c[key] is not None:
                self._kept(self._check_id, c[key], (*at, key))
        on = self._where(kind, c, at, phase, label)
        mutates = self._mutates(kind, c, at, phase, label)
        if args is None:
            return None
        main = args_raw.get(kind.main) if kind.main else None
        name = c["name"] or (f"{kind.name}: {main}" if isinstance(main, str)
                             else kind.name)
        return Step(id=step_id, name=" ".join(name.split())[:80], kind=kind.name,
                    args=args, on=on, mutates=mutates,
                    span=self.doc.span(at), group=c["group"], when=c["when"],
                    register=c["register"], become=c["become"],
                    timeout_s=c["timeout_s"], retries=c["retries"], delay_s=c["delay_s"],
                    ignore_errors=c["ignore_errors"])

    def _mutates(self, kind: KindSpec, c: Mapping[str, Any], at: Path_, phase: str,
                 label: str) -> bool:
        mutates = kind.mutates
        if c["mutates"] is not None:
            if not kind.mutates_overridable:
                raise self.fail((*at, "mutates"), f"{label}: a {kind.name} step "
                                f"{'always' if kind.mutates else 'never'} mutates", key=True)
            mutates = c["mutates"]
        if phase == "verify" and mutates:
            raise self.fail(at, f"{label}: verify steps are a read-only health gate, but "
                            f"this {kind.name} step mutates",
                            "use check or wait, or `mutates: false` for a read-only command")
        return bool(mutates)

    def _kind_of(self, raw: Mapping[str, Any], at: Path_, label: str) -> KindSpec:
        kinds = [k for k in raw if k in KIND_NAMES]
        if not kinds:
            others = [k for k in raw if k not in {f.name for f in STEP_FIELDS}]
            if others:
                raise self.fail((*at, others[0]), f"{label}: unknown step kind {others[0]!r}",
                                _suggest(others[0], KIND_NAMES) or
                                f"step kinds: {', '.join(KIND_NAMES)}", key=True)
            raise self.fail(at, f"{label}: no step kind",
                            f"give one of: {', '.join(KIND_NAMES)}")
        if len(kinds) > 1:
            raise self.fail((*at, kinds[1]), f"{label}: more than one step kind "
                            f"({', '.join(kinds)})", "split it into two steps", key=True)
        return kind_spec(kinds[0])

    def _gather(self, kind: KindSpec, raw: Mapping[str, Any], at: Path_,
                label: str) -> tuple[dict[str, Any], dict[str, Path_]]:
        """The kind's arguments, from under the kind key and beside it, with positions."""
        args_at = (*at, kind.name)
        value = raw[kind.name]
        args: dict[str, Any]
        if isinstance(value, dict):
            args = dict(value)
            where = {k: (*args_at, k) for k in args}
        elif value is None:
            args, where = {}, {}
        elif kind.main:
            args, where = {kind.main: value}, {kind.main: args_at}
        else:
            raise self.fail(args_at, f"{label}: {kind.name} takes a mapping of "
                            f"{', '.join(f.name for f in kind.fields)}")
        common = {f.name for f in STEP_FIELDS}
        siblings = {f.name for f in kind.fields if f.name != kind.main}
        for k in raw:
            if k in siblings:
                if k in args:
                    raise self.fail((*at, k), f"{label}: {k!r} given twice", key=True)
                args[k], where[k] = raw[k], (*at, k)
            elif k not in common and k != kind.name:
                raise self.fail((*at, k), f"{label}: unknown field {k!r} for a {kind.name} "
                                "step", _suggest(k, [*common, *siblings]) or
                                f"allowed: {', '.join(sorted([*common, *siblings]))}", key=True)
        return args, where

    def _args(self, kind: KindSpec, raw: dict[str, Any], arg_at: dict[str, Path_],
              kind_at: Path_, label: str) -> Any:
        """The kind's `Args` from `raw` (a key not given keeps the dataclass default)."""
        known = {f.name: f for f in kind.fields}
        for k in raw:
            if k not in known:
                raise self.fail(arg_at[k], f"{label}: {kind.name} has no field {k!r}",
                                _suggest(k, known) or f"allowed: {', '.join(known)}", key=True)
        out: dict[str, Any] = {}
        for f in kind.fields:
            if f.name in raw:
                value = self.typed(raw[f.name], f, arg_at[f.name], label)
                out[f.attr or f.name] = tuple(value) if f.type == "strlist" else value
            elif f.required:
                raise self.fail(kind_at, f"{label}: {kind.name} needs {f.name!r} "
                                f"({_describe(f.type)})", f.help)
        args = kind.args(**out)
        problem = kind_module(kind.name).problem(args)
        if problem is not None:
            at = arg_at[problem[0]] if problem[0] else kind_at
            raise self.fail(at, f"{label}: {problem[1]}")
        return args

    def _check_id(self, value: str, at: Path_) -> None:
        if not _ID.match(value):
            raise self.fail(at, f"{value!r} must be an identifier (letters, digits, _) so "
                            "that templates can read its result")
        if value in self.params or value in BUILTINS:
            raise self.fail(at, f"{value!r} is already a param or a built-in name")
        if value in self.ids:
            first = self.doc.span(self.ids[value])
            raise self.fail(at, f"duplicate step id {value!r} (first at line {first.line})")
        self.ids[value] = at

    def _where(self, kind: KindSpec, c: dict[str, Any], at: Path_, phase: str,
               label: str) -> str:
        on, key = c["on"], "where"
        if c["on_"] is not None:  # the old key, read as written (not as YAML 1.1's true)
            if on is not None:
                raise self.fail((*at, "on"), f"{label}: 'on' is the old name of 'where'; "
                                "give only one", key=True)
            on, key = c["on_"], "on"
        if phase in ("before", "after"):
            on = on or ("controller" if kind.on == "controller" else "once")
            if on == "node":
                raise self.fail((*at, key), f"{label}: {phase} steps run once: use "
                                "`where: once` (with `group:`) or `where: controller`")
        else:
            on = on or kind.on
            if on == "once":
                raise self.fail((*at, key), f"{label}: `where: once` belongs in before: or "
                                "after:, which run once around the rolling part")
        if c["group"] is not None and on != "once":
            raise self.fail((*at, "group"), f"{label}: 'group' only applies to `where: once`")
        return str(on)

    def _templates(self, kind: KindSpec, args: Mapping[str, Any], arg_at: dict[str, Path_],
                   c: Mapping[str, Any], at: Path_, seen: set[str], label: str) -> None:
        """Check every template of the step (each error kept, the others still checked)."""
        checks: list[tuple[Any, Path_, bool]] = []
        for f in kind.fields:
            value = args.get(f.name)
            if not f.template or value is None:
                continue
            if f.type == "expect" and isinstance(value, dict):
                checks += [(v, (*arg_at[f.name], k), False) for k, v in value.items()
                           if isinstance(v, str)]
            else:
                checks.append((value, arg_at[f.name], False))
        if c["when"] is not None:
            checks.append((c["when"], (*at, "when"), True))
        for value, where, expression in checks:
            for text in value if isinstance(value, list) else [value]:
                self._kept(self._template, str(text), where, expression, seen, label)

    def _template(self, text: str, at: Path_, expression: bool, seen: set[str],
                  label: str) -> None:
        try:
            refs = references(text, expression=expression)
        except TemplateSyntax as e:
            raise self.fail(at, f"{label}: template syntax error: {e}") from None
        except RecursionError:  # Jinja's parser recurses: {{ ((((...)))) }}
            raise self.fail(at, f"{label}: template nested too deeply") from None
        for ref in refs:
            if ref.name in self.params or ref.name in BUILTINS:
                continue
            if ref.name in seen:
                if ref.attr is not None and ref.attr not in RESULT_ATTRS:
                    raise self.fail(at, f"{label}: result {ref.name!r} has no attribute "
                                    f"{ref.attr!r}", f"results have: {', '.join(RESULT_ATTRS)}")
                continue
            if ref.name in self.all_ids:
                raise self.fail(at, f"{label}: {ref.name!r} is not registered before this "
                                "step (it is a later step, or one whose result this phase "
                                "cannot see)")
            known = sorted(set(self.params) | seen)
            raise self.fail(at, f"{label}: undefined name {ref.name!r}",
                            _suggest(ref.name, [*known, *BUILTINS]) or
                            f"params: {', '.join(self.params) or 'none'}; earlier results: "
                            f"{', '.join(sorted(seen)) or 'none'}; built-ins: host, vars, "
                            "params, run")


# -- public API ------------------------------------------------------------------------------
def load_runbook(path: Path) -> Runbook:
    """Parse and validate one runbook file (raises LoadError with file:line:col)."""
    doc = _Located(path, read_text(path, "runbook"))
    if doc.data is None:
        raise LoadError("the runbook file is empty", SourceSpan(path, 1, 1),
                        "a runbook needs name, description and steps")
    return _RunbookLoader(doc).load()


def read_document(path: Path) -> Any:
    """A runbook file as plain data, keys read as written (for schema checks and tools)."""
    return _Located(path, read_text(path, "runbook")).data


def find_runbooks(dirs: Iterable[Path]) -> dict[str, Path]:
    """Runbook name (file stem) -> file; an earlier directory wins over a later one."""
    found: dict[str, Path] = {}
    for d in dirs:
        for f in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]):
            found.setdefault(f.stem, f)
    return found


def load_all(dirs: Iterable[Path], names: Iterable[str] | None = None,
             ) -> tuple[dict[str, Runbook], list[UserError]]:
    """Every runbook of the library (or only those of `names` there are), and the errors of
    the ones that do not load."""
    books: dict[str, Runbook] = {}
    errors: list[UserError] = []
    found = find_runbooks(dirs)
    if names is not None:
        found = {n: found[n] for n in names if n in found}
    for name, path in found.items():
        try:
            rb = load_runbook(path)
        except UserError as e:
            errors.append(e)
            continue
        if rb.name != name:
            errors.append(LoadError(f"runbook name {rb.name!r} differs from its file name "
                                    f"{path.name!r}", SourceSpan(path, 1, 1),
                                    "netops finds runbooks by file name: make them equal"))
            continue
        books[name] = rb
    return books, errors
