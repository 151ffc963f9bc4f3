"""`file`: a file's content (whole, or lines that must be present) and mode, with a diff.

The diff shows content, and content may hold a secret (a password in a config file): it is
masked line by line (`netops.transport.base.mask` knows a multi-line secret's lines) before
the outcome leaves the kind; the file written to the node keeps the real content.

A path that is a symlink (Debian's /etc/sysctl.d/99-sysctl.conf -> ../sysctl.conf) is written
through: the link's target gets the content and the backup, the link stays a link (an atomic
write of the link's own path would replace it with a regular copy).

One read (`probe_script`: mode, content, where a symlink leads), a pure `decide`, an `apply`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Literal

from netops.engine.result import Status
from netops.steps.base import Outcome, StepContext, arg, may_change
from netops.transport.base import Command, Completed, mask

HELP = "file content (whole, or lines that must be present), mode, backup"
MAIN: str | None = "path"
ABSENT = "netops:absent"


@dataclass(frozen=True, slots=True, kw_only=True)
class Args:
    path: str = arg("absolute path on the node", template="text")
    content: str | None = arg("the whole content", default=None, template="text")
    lines: tuple[str, ...] | None = arg("lines that must be present", default=None,
                                        template="text")
    mode: str | None = arg("octal mode such as '0644'", default=None)
    backup: bool = arg("keep PATH.netops.bak of the old content", default=False)
    state: Literal["present", "absent"] = arg("present or absent", default="present")


def problem(args: Args) -> tuple[str, str] | None:
    """(the field at fault, or "" for the step; why) when the arguments cannot work together."""
    if args.state == "present" and (args.content is None) == (args.lines is None):
        return "", "file needs exactly one of 'content' or 'lines'"
    if args.mode is not None and not re.fullmatch(r"0?[0-7]{3}", args.mode):
        return "mode", (f"mode {args.mode!r} must be octal like '0644' (quote it, or YAML "
                        "reads 0644 as a number)")
    return None


def converges(args: Args) -> bool:
    return True  # it reads the node before it acts


def reads(args: Args, ctx: StepContext) -> list[Command]:
    return [ctx.command(probe_script(args.path), readonly=True)]


@dataclass(frozen=True, slots=True)
class FileState:
    content: str | None
    """None when the file does not exist."""
    mode: str | None
    real: str = ""
    """The file `path` resolves to when it is (or lies under) a symlink; empty otherwise."""


LINK = "netops:link "


def probe_script(path: str) -> str:
    """The mode (of the file a symlink points to), then the content; a line naming the
    resolved path first when `path` is not itself the file."""
    q = shlex.quote(path)
    return (f"r=$(readlink -f {q} 2>/dev/null); [ -z \"$r\" ] || [ \"$r\" = {q} ] || "
            f"echo \"{LINK}$r\"; "
            f"if [ -f {q} ]; then stat -L -c %a {q} && cat {q}; else echo {ABSENT}; fi")


def parse(out: str) -> FileState:
    real = ""
    if out.startswith(LINK):
        line, _, out = out.partition("\n")
        real = line[len(LINK):]
    first, _, rest = out.partition("\n")
    if first == ABSENT:
        return FileState(None, None, real)
    return FileState(rest, first.strip().rjust(4, "0"), real)


def desired(current: str | None, content: str | None,
            lines: tuple[str, ...] | list[str] | None) -> str:
    if content is not None:
        return content
    have = (current or "").splitlines()
    missing = [ln for ln in lines or [] if ln not in have]
    base = current or ""
    if base and not base.endswith("\n"):
        base += "\n"
    return base + "".join(f"{ln}\n" for ln in missing)


@dataclass(frozen=True, slots=True)
class Change:
    """What `decide` found must change, for `apply`."""

    now: FileState
    want: str
    mode: str
    summary: str
    diff: str
    shown: str
    target: str


def decide(args: Args, ctx: StepContext,
           observed: list[Completed]) -> Outcome | Change | Removal:
    """What takes the file to `args` (an outcome: nothing to change); pure."""
    path, now = args.path, parse(observed[0].stdout)
    if args.state == "absent":
        return _absent(ctx, path, now, args.backup)
    want = desired(now.content, args.content, args.lines)
    want_mode = (args.mode or now.mode or "0644").rjust(4, "0")
    notes: list[str] = []
    diff = ""
    if now.content != want:
        import difflib

        diff = "".join(difflib.unified_diff((now.content or "").splitlines(True),
                                            want.splitlines(True), f"a{path}", f"b{path}"))
        notes.append("create" if now.content is None else "update content")
    if now.mode is not None and now.mode != want_mode:
        notes.append(f"mode {now.mode} -> {want_mode}")
    if not notes:
        return Outcome(Status.OK, note=mask(f"{path} as desired", ctx.secrets))
    target = now.real or path  # write through a symlink: the link stays
    shown = f"{path} -> {target}" if target != path else path
    return Change(now, want, want_mode, mask(f"{path}: " + ", ".join(notes), ctx.secrets),
                  mask(diff, ctx.secrets), mask(shown, ctx.secrets), target)


def apply(args: Args, ctx: StepContext, decision: Outcome | Change | Removal) -> Outcome:
    if isinstance(decision, Outcome):
        return decision
    if isinstance(decision, Removal):
        return _remove(ctx, args.path, decision)
    d = decision
    if ctx.dry_run:
        return Outcome(Status.WOULD_CHANGE, command=f"write {d.shown}", diff=d.diff,
                       note=may_change(ctx, d.summary))
    q = shlex.quote(d.target)
    if args.backup and d.now.content is not None:
        ctx.write(f"cp -p {q} {q}.netops.bak")
    ctx.write(f"mkdir -p {shlex.quote(d.target.rsplit('/', 1)[0] or '/')}")
    ctx.transport.put(d.want.encode(), d.target, mode=int(d.mode, 8))
    return Outcome(Status.CHANGED, command=f"write {d.shown}", diff=d.diff, note=d.summary)


def run(args: Args, ctx: StepContext) -> Outcome:
    return apply(args, ctx, decide(args, ctx, ctx.send(reads(args, ctx))))


@dataclass(frozen=True, slots=True)
class Removal:
    """The file exists and must not: the command that removes it (keeping a backup)."""

    text: str


def _absent(ctx: StepContext, path: str, now: FileState, backup: bool) -> Outcome | Removal:
    if now.content is None:
        return Outcome(Status.OK, note=mask(f"{path} absent", ctx.secrets))
    q = shlex.quote(path)
    # A symlink's backup keeps the content it showed, not a second link.
    return Removal(f"cp -pL {q} {q}.netops.bak && rm -f {q}" if backup and now.real else
                   f"mv -f {q} {q}.netops.bak" if backup else f"rm -f {q}")


def _remove(ctx: StepContext, path: str, removal: Removal) -> Outcome:
    shown, note = mask(removal.text, ctx.secrets), mask(f"remove {path}", ctx.secrets)
    if ctx.dry_run:
        return Outcome(Status.WOULD_CHANGE, command=shown, note=may_change(ctx, note))
    done = ctx.write(removal.text)
    return Outcome(Status.CHANGED if done.ok else Status.FAILED, command=shown, rc=done.rc,
                   stderr=mask(done.stderr, ctx.secrets), note=mask(f"removed {path}",
                                                                       ctx.secrets))
