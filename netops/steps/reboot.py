"""`reboot`: restart the node, survive the dropped connection, prove the reboot happened.

Proof is a changed `/proc/sys/kernel/random/boot_id`; uptime can lie on containers and labs.
A wait for the node cannot be decided from one read: `reads` declares the boot id read first,
`run` keeps the loop. Nothing after a reboot is read ahead (the node comes back changed).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from netops.engine.result import Status
from netops.errors import TransportError
from netops.steps.base import Outcome, StepContext, arg
from netops.transport.base import Command

HELP = "reboot the node, wait until it is back, prove it by a new boot id"
MAIN: str | None = "within"
ENDS_READ_AHEAD = True
INTERVAL = 1.0
"""Seconds between two looks at the boot id while the node comes back."""

BOOT_ID = "cat /proc/sys/kernel/random/boot_id"
# Detached and delayed, so the command returns before the connection drops; and run as a
# detached Command, so that the transport does not kill it when that connection drops anyway.
REBOOT = "nohup sh -c 'sleep 1; systemctl reboot || reboot' >/dev/null 2>&1 &"


@dataclass(frozen=True, slots=True, kw_only=True)
class Args:
    timeout_s: float = arg("how long the node may take to come back", default=600.0,
                           key="within")


def converges(args: Args) -> bool:
    return False  # a second run reboots again


def reads(args: Args, ctx: StepContext) -> list[Command]:
    return [ctx.command(BOOT_ID, readonly=True)]


def run(args: Args, ctx: StepContext) -> Outcome:
    timeout, interval = args.timeout_s, INTERVAL
    before = ctx.send(reads(args, ctx))[0].stdout.strip()
    if ctx.dry_run:
        return Outcome(Status.WOULD_CHANGE, command=REBOOT,
                       note=f"would reboot (boot id {before[:8]}) and wait up to {timeout:g}s")
    ctx.transport.run(replace(ctx.command(REBOOT, readonly=False), detached=True),
                      timeout=ctx.timeout)
    started = ctx.clock()
    reset = getattr(ctx.transport, "reset", None)
    last_error = ""
    while ctx.clock() - started < timeout:
        ctx.sleep(interval)
        if reset is not None:
            reset()
        try:
            now = ctx.read(BOOT_ID, timeout=10).stdout.strip()
        except TransportError as e:
            last_error = str(e)
            continue
        if now and now != before:
            took = ctx.clock() - started
            return Outcome(Status.CHANGED, command=REBOOT,
                           note=f"rebooted: boot id {before[:8]} -> {now[:8]} in {took:.1f}s")
    return Outcome(Status.FAILED, command=REBOOT,
                   note=f"no new boot id within {timeout:g}s" +
                   (f" (last error: {last_error})" if last_error else ""))
