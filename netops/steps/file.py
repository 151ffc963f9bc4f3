"""`file`: a file's content (whole, or lines that must be present) and mode, with a diff.

The diff shows content, and content may hold a secret (a password in a config file): it is
masked line by line (`netops.transport.base.mask` knows a multi-line secret's lines) before
the outcome leaves the kind; the file written to the node keeps the real content.
"""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass

from netops.engine.result import Status
from netops.steps.base import Outcome, StepContext, may_change
from netops.transport.base import mask

ABSENT = "netops:absent"


@dataclass(frozen=True, slots=True)
class FileState:
    content: str | None
    """None when the file does not exist."""
    mode: str | None


def probe_script(path: str) -> str:
    q = shlex.quote(path)
    return f"if [ -f {q} ]; then stat -c %a {q} && cat {q}; else echo {ABSENT}; fi"


def parse(out: str) -> FileState:
    first, _, rest = out.partition("\n")
    if first == ABSENT:
        return FileState(None, None)
    return FileState(rest, first.strip().rjust(4, "0"))


def desired(current: str | None, content: str | None, lines: list[str] | None) -> str:
    if content is not None:
        return content
    have = (current or "").splitlines()
    missing = [ln for ln in lines or [] if ln not in have]
    base = current or ""
    if base and not base.endswith("\n"):
        base += "\n"
    return base + "".join(f"{ln}\n" for ln in missing)


def run(ctx: StepContext, *, path: str, content: str | None, lines: list[str] | None,
        mode: str | None, backup: bool, state: str = "present") -> Outcome:
    now = parse(ctx.read(probe_script(path)).stdout)
    if state == "absent":
        return _absent(ctx, path, now, backup)
    want = desired(now.content, content, lines)
    want_mode = (mode or now.mode or "0644").rjust(4, "0")
    notes: list[str] = []
    diff = ""
    if now.content != want:
        diff = "".join(difflib.unified_diff((now.content or "").splitlines(True),
                                            want.splitlines(True), f"a{path}", f"b{path}"))
        notes.append("create" if now.content is None else "update content")
    if now.mode is not None and now.mode != want_mode:
        notes.append(f"mode {now.mode} -> {want_mode}")
    if not notes:
        return Outcome(Status.OK, note=mask(f"{path} as desired", ctx.secrets))
    diff = mask(diff, ctx.secrets)
    summary = mask(f"{path}: " + ", ".join(notes), ctx.secrets)
    shown = mask(path, ctx.secrets)
    if ctx.dry_run:
        return Outcome(Status.WOULD_CHANGE, command=f"write {shown}", diff=diff,
                       note=may_change(ctx, summary))
    q = shlex.quote(path)
    if backup and now.content is not None:
        ctx.write(f"cp -p {q} {q}.netops.bak")
    ctx.write(f"mkdir -p {shlex.quote(path.rsplit('/', 1)[0] or '/')}")
    ctx.transport.put(want.encode(), path, mode=int(want_mode, 8))
    return Outcome(Status.CHANGED, command=f"write {shown}", diff=diff, note=summary)


def _absent(ctx: StepContext, path: str, now: FileState, backup: bool) -> Outcome:
    if now.content is None:
        return Outcome(Status.OK, note=mask(f"{path} absent", ctx.secrets))
    q = shlex.quote(path)
    text = f"mv -f {q} {q}.netops.bak" if backup else f"rm -f {q}"
    shown, note = mask(text, ctx.secrets), mask(f"remove {path}", ctx.secrets)
    if ctx.dry_run:
        return Outcome(Status.WOULD_CHANGE, command=shown, note=may_change(ctx, note))
    done = ctx.write(text)
    return Outcome(Status.CHANGED if done.ok else Status.FAILED, command=shown, rc=done.rc,
                   stderr=mask(done.stderr, ctx.secrets), note=mask(f"removed {path}",
                                                                       ctx.secrets))
