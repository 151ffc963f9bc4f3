"""Per-host environment for controller steps: `netops_kubeconfig` and `netops_kube_context`.

An operator with several clusters keeps one inventory per cluster; the inventory variable
`netops_kubeconfig` (on `all`, a group or a host) names the kubeconfig that controller steps of
that host use, as `KUBECONFIG` would. Without it, kubectl sees the operator's own environment.

`netops_kube_context` (or `--kube-context`, env `NETOPS_KUBE_CONTEXT`, which wins) selects a
context of that kubeconfig. kubectl has no environment variable for it, and a controller step
may run kubectl anywhere in a script (`$(kubectl get ...)`, `xargs kubectl`), so the context is
set the way kubectl merges kubeconfigs: `KUBECONFIG` lists first a small file of netops' that
says only `current-context: NAME` (the first file to set it wins), then the kubeconfig itself.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shlex
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

from netops.transport.base import Command, Completed, Transport

ENV_VARS = {"netops_kubeconfig": "KUBECONFIG", "netops_kube_cache_dir": "KUBECACHEDIR"}
"""Inventory variable -> environment variable of controller steps (`netops_kube_cache_dir`
keeps kubectl's discovery cache out of the operator's ~/.kube, e.g. for a lab)."""


CONTEXT_VAR = "netops_kube_context"
CONTEXT_ENV = "NETOPS_KUBE_CONTEXT"
"""Set by `--kube-context`; wins over the inventory's `netops_kube_context`."""


def controller_env(host_vars: Mapping[str, object]) -> dict[str, str]:
    """The environment a host's controller steps need beyond the operator's own."""
    env = {env: str(Path(str(host_vars[var])).expanduser())
           for var, env in ENV_VARS.items() if host_vars.get(var)}
    context = os.environ.get(CONTEXT_ENV) or host_vars.get(CONTEXT_VAR)
    if context:
        base = env.get("KUBECONFIG") or os.environ.get("KUBECONFIG") \
            or str(Path.home() / ".kube" / "config")
        env["KUBECONFIG"] = f"{_context_file(str(context))}{os.pathsep}{base}"
    return env


_dir: Path | None = None
_lock = threading.Lock()


def _context_file(context: str) -> Path:
    """A kubeconfig that sets only `current-context` (one per context, for this process)."""
    global _dir
    with _lock:
        if _dir is None:
            _dir = Path(tempfile.mkdtemp(prefix="netops-kube-"))
            atexit.register(shutil.rmtree, _dir, True)
        path = _dir / f"context-{hashlib.sha256(context.encode()).hexdigest()[:16]}.yaml"
        if not path.exists():
            # JSON is YAML: the name is quoted whatever it holds
            path.write_text(json.dumps({"apiVersion": "v1", "kind": "Config",
                                        "current-context": context}) + "\n")
        return path


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
