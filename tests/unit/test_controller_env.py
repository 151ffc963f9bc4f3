"""Controller steps see the inventory's kubeconfig (netops_kubeconfig) as KUBECONFIG, quoted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from netops.transport.base import Command
from netops.transport.env import EnvTransport, controller_env
from netops.transport.local import LocalTransport


def test_inventory_variables_become_the_controller_environment() -> None:
    assert controller_env({}) == {}
    env = controller_env({"netops_kubeconfig": "/lab dir/kubeconfig",
                          "netops_kube_cache_dir": "/lab dir/kube/cache", "other": "x"})
    assert env == {"KUBECONFIG": "/lab dir/kubeconfig", "KUBECACHEDIR": "/lab dir/kube/cache"}
    t = EnvTransport(LocalTransport(), env)
    done = t.run(Command('printf "%s|%s" "$KUBECONFIG" "$KUBECACHEDIR"', readonly=True))
    assert done.stdout == "/lab dir/kubeconfig|/lab dir/kube/cache"
    assert t.host == "controller"


KUBECONFIG = """\
apiVersion: v1
kind: Config
current-context: first
clusters:
- {name: one, cluster: {server: "http://127.0.0.1:1"}}
- {name: two, cluster: {server: "http://127.0.0.1:2"}}
users:
- {name: u, user: {}}
contexts:
- {name: first, context: {cluster: one, user: u}}
- {name: "second ctx", context: {cluster: two, user: u}}
"""


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kube_context_selects_the_context_kubectl_uses(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """netops_kube_context (and --kube-context, NETOPS_KUBE_CONTEXT, over it) is the context
    every kubectl of a controller step uses, wherever it sits in the script."""
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    monkeypatch.delenv("NETOPS_KUBE_CONTEXT", raising=False)
    script = ("kubectl config current-context; echo \"$(kubectl config view --minify "
              "-o jsonpath='{.clusters[0].cluster.server}')\"")

    def seen(host_vars: dict[str, str]) -> list[str]:
        t = EnvTransport(LocalTransport(), controller_env(host_vars))
        done = t.run(Command(script, readonly=True))
        assert done.rc == 0, done.stderr
        return done.stdout.split()

    base = {"netops_kubeconfig": str(config)}
    assert seen(base) == ["first", "http://127.0.0.1:1"]
    chosen = {**base, "netops_kube_context": "second ctx"}
    assert seen(chosen) == ["second", "ctx", "http://127.0.0.1:2"]
    monkeypatch.setenv("NETOPS_KUBE_CONTEXT", "first")  # what --kube-context sets
    assert seen(chosen) == ["first", "http://127.0.0.1:1"]
    monkeypatch.setenv("KUBECONFIG", str(config))  # no netops_kubeconfig: the operator's
    monkeypatch.setenv("NETOPS_KUBE_CONTEXT", "second ctx")
    assert seen({}) == ["second", "ctx", "http://127.0.0.1:2"]
