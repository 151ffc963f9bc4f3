"""`file`: a file's content (whole, or lines that must be present) and mode, with a diff.

The diff shows content, and content may hold a secret (a password in a config file): it is
masked line by line (`netops.transport.base.mask` knows a multi-line secret's lines) before
the outcome leaves the kind; the file written to the node keeps the real content.

A path that is a symlink (Debian's /etc/sysctl.d/99-sysctl.conf -> ../sysctl.conf) is written
through: the link's target gets the content and the backup, the link stays a link (an atomic
write of the link's own path would replace it with a regular copy).
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
    target = now.real or path  # write through a symlink: the link stays
    if target != path:
        shown = mask(f"{path} -> {target}", ctx.secrets)
    if ctx.dry_run:
        return Outcome(Status.WOULD_CHANGE, command=f"write {shown}", diff=diff,
                       note=may_change(ctx, summary))
    q = shlex.quote(target)
    if backup and now.content is not None:
        ctx.write(f"cp -p {q} {q}.netops.bak")
    ctx.write(f"mkdir -p {shlex.quote(target.rsplit('/', 1)[0] or '/')}")
    ctx.transport.put(want.encode(), target, mode=int(want_mode, 8))
    return Outcome(Status.CHANGED, command=f"write {shown}", diff=diff, note=summary)


def _absent(ctx: StepContext, path: str, now: FileState, backup: bool) -> Outcome:
    if now.content is None:
        return Outcome(Status.OK, note=mask(f"{path} absent", ctx.secrets))
    q = shlex.quote(path)
    # A symlink's backup keeps the content it showed, not a second link.
    text = (f"cp -pL {q} {q}.netops.bak && rm -f {q}" if backup and now.real else
            f"mv -f {q} {q}.netops.bak" if backup else f"rm -f {q}")
    shown, note = mask(text, ctx.secrets), mask(f"remove {path}", ctx.secrets)
    if ctx.dry_run:
        return Outcome(Status.WOULD_CHANGE, command=shown, note=may_change(ctx, note))
    done = ctx.write(text)
    return Outcome(Status.CHANGED if done.ok else Status.FAILED, command=shown, rc=done.rc,
                   stderr=mask(done.stderr, ctx.secrets), note=mask(f"removed {path}",
                                                                       ctx.secrets))
