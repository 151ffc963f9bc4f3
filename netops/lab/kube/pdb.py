"""PodDisruptionBudgets in the lab's API: the disruption controller's status and the eviction
subresource's verdict, as the real API server gives them.

Sources (Kubernetes v1.28): pkg/controller/disruption/disruption.go (expectedPods,
currentHealthy, desiredHealthy, disruptionsAllowed; minAvailable as a number or a percentage
of the expected pods, rounded up; maxUnavailable likewise, subtracted) and
pkg/registry/core/pod/storage/eviction.go (what an eviction of a covered pod answers):

- a terminating pod, or one in phase Pending, Succeeded or Failed: evicted, no budget checked;
- more than one budget selects the pod: 500, "This pod has more than one PodDisruptionBudget,
  which the eviction subresource does not support.";
- a pod that is not Ready (unhealthyPodEvictionPolicy IfHealthyBudget, the default): evicted
  while currentHealthy >= desiredHealthy;
- disruptionsAllowed 0: 429 TooManyRequests, "Cannot evict pod as it would violate the pod's
  disruption budget.", with the cause `{"reason": "DisruptionBudget", "message": "The
  disruption budget NAME needs D healthy pods and has C currently"}`. `kubectl drain` retries
  that every 5 s ("error when evicting pods/\\"P\\" -n \\"NS\\" (will retry after 5s): ...")
  until its --timeout ("global timeout reached").

A policy/v1 budget with an empty selector selects every pod of its namespace.
"""

from __future__ import annotations

import math
from typing import Any

from netops.lab.kube.store import Obj, now_iso

TOO_MANY = "Cannot evict pod as it would violate the pod's disruption budget."
MANY_BUDGETS = ("This pod has more than one PodDisruptionBudget, which the eviction subresource "
                "does not support.")


def selects(pdb: Obj, pod: Obj) -> bool:
    """policy/v1 selector semantics (matchLabels and matchExpressions; empty: every pod)."""
    if pdb["metadata"].get("namespace") != pod["metadata"].get("namespace"):
        return False
    sel = pdb.get("spec", {}).get("selector") or {}
    labels = pod["metadata"].get("labels", {})
    if any(labels.get(k) != v for k, v in (sel.get("matchLabels") or {}).items()):
        return False
    for e in sel.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], set(e.get("values") or [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions", []))


def _scaled(value: Any, expected: int) -> int:
    """An IntOrString budget: a number, or a percentage of the expected pods rounded up."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * expected / 100)
    return int(value)


def status(pdb: Obj, pods: list[Obj]) -> Obj:
    """The disruption controller's status for `pdb` over the namespace's `pods`."""
    mine = [p for p in pods if selects(pdb, p) and not p["metadata"].get("deletionTimestamp")]
    expected = len(mine)
    healthy = sum(1 for p in mine if _ready(p))
    spec = pdb.get("spec", {})
    if spec.get("maxUnavailable") is not None:
        desired = max(0, expected - _scaled(spec["maxUnavailable"], expected))
    else:
        desired = _scaled(spec.get("minAvailable", 1), expected)
    allowed = max(0, healthy - desired)
    old = pdb.get("status", {})
    cond = {"type": "DisruptionAllowed", "status": "True" if allowed else "False",
            "reason": "SufficientPods" if allowed else "InsufficientPods", "message": "",
            "observedGeneration": pdb["metadata"].get("generation", 1)}
    prev: Obj = next((c for c in old.get("conditions", []) if c.get("type") == cond["type"]),
                     {})
    cond["lastTransitionTime"] = (prev.get("lastTransitionTime") if prev.get("status") ==
                                  cond["status"] else now_iso())
    return {"observedGeneration": pdb["metadata"].get("generation", 1),
            "disruptionsAllowed": allowed, "currentHealthy": healthy,
            "desiredHealthy": desired, "expectedPods": expected, "conditions": [cond]}


def _status(code: int, reason: str, message: str, **details: Any) -> Obj:
    body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                 "message": message, "reason": reason}
    if details:  # metav1.Status field order: details (omitted when empty) before code
        body["details"] = details
    body["code"] = code
    return body


def refusal(pod: Obj, pdbs: list[Obj], pods: list[Obj]) -> tuple[int, Obj] | None:
    """None when the eviction of `pod` may go ahead, else the API's (code, Status) answer."""
    if pod["metadata"].get("deletionTimestamp"):
        return None
    if pod.get("status", {}).get("phase") in ("Pending", "Succeeded", "Failed"):
        return None
    covering = [b for b in pdbs if selects(b, pod)]
    if not covering:
        return None
    if len(covering) > 1:
        return 500, _status(500, "InternalError", MANY_BUDGETS)
    pdb = covering[0]
    st = status(pdb, pods)
    if not _ready(pod) and st["currentHealthy"] >= st["desiredHealthy"]:
        return None
    if st["disruptionsAllowed"] > 0:
        return None
    name = pdb["metadata"]["name"]
    return 429, _status(429, "TooManyRequests", TOO_MANY, causes=[{
        "reason": "DisruptionBudget",
        "message": f"The disruption budget {name} needs {st['desiredHealthy']} healthy pods "
                   f"and has {st['currentHealthy']} currently"}])
