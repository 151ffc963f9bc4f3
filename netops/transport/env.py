"""Per-host environment for controller steps: `netops_kubeconfig` in the inventory.

An operator with several clusters keeps one inventory per cluster; the inventory variable
`netops_kubeconfig` (on `all`, a group or a host) names the kubeconfig that controller steps of
that host use, as `KUBECONFIG` would. Without it, kubectl sees the operator's own environment.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

from netops.transport.base import Command, Completed, Transport

ENV_VARS = {"netops_kubeconfig": "KUBECONFIG", "netops_kube_cache_dir": "KUBECACHEDIR"}
"""Inventory variable -> environment variable of controller steps (`netops_kube_cache_dir`
keeps kubectl's discovery cache out of the operator's ~/.kube, e.g. for a lab)."""


def controller_env(host_vars: Mapping[str, object]) -> dict[str, str]:
    """The environment a host's controller steps need beyond the operator's own."""
    return {env: str(Path(str(host_vars[var])).expanduser())
            for var, env in ENV_VARS.items() if host_vars.get(var)}


class EnvTransport:
    """Wraps a transport: every command runs with `env` exported first."""

    def __init__(self, inner: Transport, env: Mapping[str, str]) -> None:
        self.inner = inner
        self.host = inner.host
        self._prefix = "".join(f"export {k}={shlex.quote(v)}; " for k, v in env.items())

    def run(self, cmd: Command, *, timeout: float | None = None,
            stdin: bytes | None = None) -> Completed:
        wrapped = Command(self._prefix + cmd.text, cmd.secrets, cmd.become, cmd.readonly)
        return self.inner.run(wrapped, timeout=timeout, stdin=stdin)

    def put(self, data: bytes, path: str, *, mode: int = 0o644) -> None:
        self.inner.put(data, path, mode=mode)

    def get(self, path: str) -> bytes:
        return self.inner.get(path)

    def close(self) -> None:
        self.inner.close()
