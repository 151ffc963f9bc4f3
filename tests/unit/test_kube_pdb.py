"""The lab API's PodDisruptionBudget arithmetic and eviction verdicts (netops/lab/kube/pdb.py),
against the rules of the real disruption controller and eviction subresource."""

from __future__ import annotations

from typing import Any

from netops.lab.kube import pdb


def pod(name: str, ready: bool = True, phase: str = "Running", app: str = "web",
        terminating: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "labels": {"app": app}}
    if terminating:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def budget(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


def test_status_counts_like_the_disruption_controller() -> None:
    pods = [pod("a"), pod("b"), pod("c", ready=False), pod("d", terminating=True),
            pod("x", app="other")]
    st = pdb.status(budget(minAvailable=1), pods)
    assert (st["expectedPods"], st["currentHealthy"], st["desiredHealthy"],
            st["disruptionsAllowed"]) == (3, 2, 1, 1)
    assert pdb.status(budget(minAvailable="50%"), pods)["desiredHealthy"] == 2  # ceil(1.5)
    assert pdb.status(budget(maxUnavailable=1), pods)["desiredHealthy"] == 2
    assert pdb.status(budget(maxUnavailable="100%"), pods)["disruptionsAllowed"] == 2
    st = pdb.status(budget(minAvailable=2), pods)
    assert st["disruptionsAllowed"] == 0
    assert st["conditions"][0]["reason"] == "InsufficientPods"


def test_an_eviction_that_would_violate_the_budget_is_429_as_the_api_server_says() -> None:
    code, body = pdb.refusal(pod("a"), [budget(minAvailable=1)], [pod("a")]) or (0, {})
    assert code == 429
    assert body == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Cannot evict pod as it would violate the pod's disruption budget.",
        "reason": "TooManyRequests", "code": 429, "details": {"causes": [{
            "reason": "DisruptionBudget",
            "message": "The disruption budget web needs 1 healthy pods and has 1 currently"}]}}


def test_evictions_the_budget_allows_or_does_not_cover() -> None:
    two = [pod("a"), pod("b")]
    assert pdb.refusal(pod("a"), [budget(minAvailable=1)], two) is None
    assert pdb.refusal(pod("a"), [], two) is None
    assert pdb.refusal(pod("x", app="other"), [budget(minAvailable=5)], two) is None
    # terminating, Pending/Succeeded/Failed pods are evicted without a budget check
    for p in (pod("a", terminating=True), pod("a", phase="Pending"),
              pod("a", phase="Succeeded")):
        assert pdb.refusal(p, [budget(minAvailable=5)], two) is None
    # an unhealthy pod goes while the budget is met (IfHealthyBudget), not when it is not
    sick = [pod("a"), pod("b", ready=False)]
    assert pdb.refusal(pod("b", ready=False), [budget(minAvailable=1)], sick) is None
    assert pdb.refusal(pod("b", ready=False), [budget(minAvailable=2)], sick) is not None
    code, body = pdb.refusal(pod("a"), [budget(), budget("other")], two) or (0, {})
    assert code == 500 and "more than one PodDisruptionBudget" in body["message"]


def test_an_empty_v1_selector_selects_every_pod_of_the_namespace() -> None:
    every = {"metadata": {"name": "all", "namespace": "default"},
             "spec": {"selector": {}, "minAvailable": 1}}
    assert pdb.selects(every, pod("a", app="anything"))
    elsewhere = {**pod("a"), "metadata": {**pod("a")["metadata"], "namespace": "kube-system"}}
    assert not pdb.selects(every, elsewhere)
    expr = {"metadata": {"name": "e", "namespace": "default"}, "spec": {"selector": {
        "matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}}}
    assert pdb.selects(expr, pod("a")) and not pdb.selects(expr, pod("b", app="db"))
