"""Controller steps see the inventory's kubeconfig (netops_kubeconfig) as KUBECONFIG, quoted."""

from __future__ import annotations

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
