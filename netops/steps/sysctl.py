"""`sysctl`: a kernel parameter now (runtime) and at boot (the winning sysctl.d assignment).

One read (the runtime value and every sysctl file, `probe_script`), a pure decision (`decide`:
the commands and the file that take the node there), then `apply` (or, in a dry run, the
prediction later steps read from `ctx.predicted`).

Files are edited where their content lives: Debian's /etc/sysctl.d/99-sysctl.conf is a symlink
to ../sysctl.conf, so a conflicting assignment seen through both names is commented out once,
in /etc/sysctl.conf (the link stays a link, and the `.netops.bak` backup holds the real text).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from netops.engine.result import Status
from netops.steps.base import Outcome, StepContext, arg, may_change
from netops.steps.sysctl_order import (
    SYSCTL_CONF,
    SYSCTL_DIRS,
    assignments,
    boot_value,
    normalize_key,
)
from netops.transport.base import Command, Completed

HELP = "kernel parameter now and at boot (knows which sysctl.d file wins)"
MAIN: str | None = None
MARK = "==> netops-file "


@dataclass(frozen=True, slots=True, kw_only=True)
class Args:
    key: str = arg("e.g. net.ipv4.ip_forward", template="text")
    value: str = arg("desired value", template="text", text=True)
    persist: str | None = arg("sysctl.d file to write (omit: runtime only)", default=None,
                              template="text")
    comment_out_conflicts: bool = arg("comment out later assignments that would win at boot",
                                      default=True)


def converges(args: Args) -> bool:
    return True  # it reads the node before it acts


def reads(args: Args, ctx: StepContext) -> list[Command]:
    return [ctx.command(probe_script(normalize_key(args.key)), readonly=True)]


def probe_script(key: str) -> str:
    """One round trip: the runtime value, then every sysctl file that could set it at boot,
    each with the path its symlinks resolve to (`MARK path<TAB>real path`)."""
    globs = " ".join(f"{d}/*.conf" for d in SYSCTL_DIRS)
    return (
        f"sysctl -n {shlex.quote(key)} 2>&1; echo \"{MARK}rc $?\"; "
        f"for f in {globs} {SYSCTL_CONF}; do [ -f \"$f\" ] && "
        f"{{ printf '%s%s\\t%s\\n' \"{MARK}\" \"$f\" \"$(readlink -f \"$f\")\"; "
        f"cat \"$f\"; echo; }}; done; true"
    )


@dataclass(frozen=True, slots=True)
class SysctlState:
    runtime: str | None
    """The live value, or None when the key does not exist (module not loaded)."""
    runtime_error: str
    files: dict[str, str]
    real: dict[str, str] = field(default_factory=dict)
    """path -> the file it resolves to (itself unless it is, or lies under, a symlink)."""

    def target(self, path: str) -> str:
        return self.real.get(path, path)


def parse(out: str) -> SysctlState:
    head, _, rest = out.partition(f"{MARK}rc ")
    rc_line, _, files_part = rest.partition("\n")
    files: dict[str, str] = {}
    real: dict[str, str] = {}
    for chunk in files_part.split(MARK)[1:]:
        head_line, _, content = chunk.partition("\n")
        path, _, resolved = head_line.partition("\t")
        path = path.strip()
        files[path] = content[:-1] if content.endswith("\n") else content
        real[path] = resolved.strip() or path
    ok = rc_line.strip() == "0"
    return SysctlState(head.strip() if ok else None, "" if ok else head.strip(), files, real)


def shown(state: SysctlState, path: str) -> str:
    """`path`, or `path -> target` when it is a symlink."""
    target = state.target(path)
    return path if target == path else f"{path} -> {target}"


def desired_file(current: str | None, key: str, value: str) -> str:
    """The persist file with exactly one active `key = value` line."""
    line = f"{key} = {value}"
    if current is None:
        return f"# managed by netops\n{line}\n"
    lines = current.splitlines()
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    kept = [ln for ln in lines if not pattern.match(ln)]
    replaced = [i for i, ln in enumerate(lines) if pattern.match(ln)]
    if replaced:
        kept.insert(replaced[0], line)
    else:
        kept.append(line)
    return "\n".join(kept) + "\n"


@dataclass(frozen=True, slots=True)
class Change:
    """What `decide` found must change, for `apply`."""

    state: SysctlState
    key: str
    value: str
    actions: tuple[str, ...]
    write_to: str | None
    new_file: str | None
    conflicts: tuple[str, ...]
    summary: str
    diff: str


def decide(args: Args, ctx: StepContext, observed: list[Completed]) -> Outcome | Change:
    """The change that takes the node to `args` (an OK outcome: nothing to change); pure."""
    key, value, persist = normalize_key(args.key), args.value, args.persist
    state = _as_read(ctx, key, observed[0].stdout)
    actions: list[str] = []
    notes: list[str] = []
    if state.runtime != value:
        now = state.runtime if state.runtime is not None else f"missing ({state.runtime_error})"
        notes.append(f"runtime {now} -> {value}")
        actions.append(f"sysctl -w {shlex.quote(f'{key}={value}')}")
    boot = _boot(state, key, value, persist, args.comment_out_conflicts, notes)
    new_file, conflicts, write_to, diff = boot
    if not actions and new_file is None and not conflicts:
        return Outcome(Status.OK, note=f"{key} = {value} now and at boot" if persist
                       else f"{key} = {value}")
    actions += [comment_out(path, key) for path in conflicts]
    return Change(state, key, value, tuple(actions), write_to, new_file, tuple(conflicts),
                  "; ".join(notes), diff)


def _boot(state: SysctlState, key: str, value: str, persist: str | None,
          comment_out_conflicts: bool, notes: list[str],
          ) -> tuple[str | None, list[str], str | None, str]:
    """(the persist file's new text or None, files whose later assignment must be commented
    out, the file to write, its diff) for the value at boot; appends to `notes`."""
    winner = boot_value(state.files, key)
    if not persist or (winner is not None and winner.value == value):
        return None, [], persist, ""
    import difflib

    files = dict(state.files)
    current = files.get(persist)
    write_to = state.target(persist)  # a symlinked persist file: write its target
    want = desired_file(current, key, value)
    new_file, diff = None, ""
    if want != current:
        new_file = want
        diff = "".join(difflib.unified_diff(
            (current or "").splitlines(True), want.splitlines(True),
            f"a{write_to}", f"b{write_to}"))
    for path in [persist, *files]:  # every name of the same file sees the new text
        if state.target(path) == write_to:
            files[path] = want
    found = assignments(files, key)
    mine = max((i for i, a in enumerate(found) if state.target(a.path) == write_to),
               default=-1)
    # One edit per real file, whichever names (99-sysctl.conf, sysctl.conf) show it.
    later = [a.path for a in found[mine + 1:] if a.value != value]
    conflicts = sorted({state.target(p) for p in later})
    links = sorted({shown(state, p) for p in later if state.target(p) != p})
    if conflicts and links:
        notes.append("via symlink " + ", ".join(links))
    before = assignments(state.files, key)
    was = f"{before[-1].value} ({before[-1].path}:{before[-1].line})" if before else "unset"
    if new_file is not None or conflicts:
        notes.append(f"boot {was} -> {value}")
    if conflicts and not comment_out_conflicts:
        notes.append(f"later files still win: {', '.join(conflicts)}")
        conflicts = []
    return new_file, conflicts, write_to, diff


def apply(args: Args, ctx: StepContext, decision: Outcome | Change) -> Outcome:
    if isinstance(decision, Outcome):
        return decision
    d = decision
    if ctx.dry_run:
        _predict(ctx.predicted, d.state, d.key, d.value, d.write_to, d.new_file, d.conflicts)
        plan = [*d.actions, *([f"write {d.write_to}"] if d.new_file is not None else [])]
        return Outcome(Status.WOULD_CHANGE, command="\n".join(plan), diff=d.diff,
                       note=may_change(ctx, d.summary))
    return _apply(ctx, d.actions, d.write_to, d.new_file, d.summary, d.diff)


def run(args: Args, ctx: StepContext) -> Outcome:
    return apply(args, ctx, decide(args, ctx, ctx.send(reads(args, ctx))))


def _as_read(ctx: StepContext, key: str, out: str) -> SysctlState:
    """The node's state for `key`; in a dry run, as the steps before would have left it."""
    state = parse(out)
    return _as_predicted(state, key, ctx.predicted) if ctx.dry_run else state


def _as_predicted(state: SysctlState, key: str,
                  predicted: dict[str, str | None]) -> SysctlState:
    """The node as earlier steps of a dry run would have left it."""
    if not predicted:
        return state
    files = dict(state.files)
    real = dict(state.real)
    for path, content in predicted.items():
        if path.startswith("sysctl:"):
            continue
        names = [p for p in files if state.target(p) == path] or (
            [path] if path == SYSCTL_CONF or path.rsplit("/", 1)[0] in SYSCTL_DIRS else [])
        for name in names:
            if content is None:
                files.pop(name, None)
            else:
                files[name] = content
                real.setdefault(name, path)
    runtime = predicted.get(f"sysctl:{key}", state.runtime)
    return SysctlState(runtime, state.runtime_error if runtime is None else "", files, real)


def _predict(predicted: dict[str, str | None], state: SysctlState, key: str, value: str,
             write_to: str | None, new_file: str | None, conflicts: tuple[str, ...]) -> None:
    """Record what this step would do, for the steps after it in a dry run."""
    predicted[f"sysctl:{key}"] = value
    if write_to is not None and new_file is not None:
        predicted[write_to] = new_file
    pattern = re.compile(rf"^(\s*{re.escape(key)}\s*=)", re.M)
    for path in conflicts:
        text = next((state.files[p] for p in state.files if state.target(p) == path), "")
        predicted[path] = pattern.sub(r"# netops: \1", text)


def comment_out(path: str, key: str) -> str:
    """Disable every assignment of `key` in `path` (a regular file: the target of any symlink,
    which GNU `sed -i` would replace by a copy), keeping a backup (`.netops.bak`)."""
    k = re.escape(key).replace("/", r"\/")
    return (f"sed -i.netops.bak 's/^\\([[:space:]]*{k}[[:space:]]*=\\)/# netops: \\1/' "
            f"{shlex.quote(path)}")


def _apply(ctx: StepContext, actions: tuple[str, ...], persist: str | None, new_file: str | None,
           summary: str, diff: str) -> Outcome:
    if new_file is not None and persist is not None:
        ctx.write(f"mkdir -p {shlex.quote(persist.rsplit('/', 1)[0] or '/')}")
        ctx.transport.put(new_file.encode(), persist, mode=0o644)
    outs: list[str] = []
    for text in actions:
        done = ctx.write(text)
        outs.append(done.stdout)
        if not done.ok:
            return Outcome(Status.FAILED, command=text, rc=done.rc, stdout=done.stdout,
                           stderr=done.stderr, note=summary, diff=diff)
    plan = [*actions, *([f"write {persist}"] if new_file is not None else [])]
    return Outcome(Status.CHANGED, command="\n".join(plan), rc=0, stdout="".join(outs),
                   note=summary, diff=diff)
