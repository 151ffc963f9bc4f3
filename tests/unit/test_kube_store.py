"""The lab API stand-in's store: selectors as the real API parses them, merge patches as
kubectl cordon sends them, resource versions and the watch view of selected objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from netops.lab.kube.server import as_seen, human_age, pod_status_text
from netops.lab.kube.store import (
    BadSelector,
    Gone,
    Store,
    field_matcher,
    label_matcher,
    merge_patch,
)


def pod(name: str, labels: dict[str, str], node: str = "chick1") -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c"}]},
            "status": {"phase": "Running"}}


@pytest.mark.parametrize(("selector", "matches"), [
    ("k8s-app=calico-node", {"a"}),
    ("k8s-app==calico-node,tier", {"a"}),
    ("k8s-app!=calico-node", {"b", "c"}),
    ("k8s-app in (calico-node, kube-proxy)", {"a", "b"}),
    ("k8s-app notin (calico-node),!tier", {"b", "c"}),
    ("tier", {"a"}),
    ("", {"a", "b", "c"}),
])
def test_label_selectors(selector: str, matches: set[str]) -> None:
    pods = [pod("a", {"k8s-app": "calico-node", "tier": "node"}),
            pod("b", {"k8s-app": "kube-proxy"}), pod("c", {})]
    test = label_matcher(selector)
    assert {p["metadata"]["name"] for p in pods if test(p)} == matches  # type: ignore[index]


def test_field_selectors_and_their_errors() -> None:
    test = field_matcher("pods", "spec.nodeName=chick2,metadata.namespace!=default")
    assert test(pod("a", {}, node="chick2")) and not test(pod("a", {}, node="chick1"))
    with pytest.raises(BadSelector, match=r"field label not supported: spec\.hostname"):
        field_matcher("pods", "spec.hostname=x")
    with pytest.raises(BadSelector):
        label_matcher("a in (x")


def test_merge_patch_as_cordon_and_uncordon_send_it() -> None:
    node = {"spec": {"podCIDR": "10.244.1.0/24"}, "metadata": {"labels": {"a": "1"}}}
    merge_patch(node, {"spec": {"unschedulable": True}})
    assert node["spec"] == {"podCIDR": "10.244.1.0/24", "unschedulable": True}
    merge_patch(node, {"spec": {"unschedulable": None}, "metadata": {"labels": {"b": "2"}},
                       "$setElementOrder/conditions": []})
    assert node == {"spec": {"podCIDR": "10.244.1.0/24"},
                    "metadata": {"labels": {"a": "1", "b": "2"}}}


def test_versions_events_and_persistence(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.json")
    with store.bulk():
        store.create("pods", pod("a", {}))
        store.create("pods", pod("b", {}))
        assert not (tmp_path / "state.json").exists(), "saved once, at the end of the bulk"
    assert store.rv == 2
    unchanged = store.update("pods", "kube-system", "a", lambda o: None)
    assert unchanged is not None and store.rv == 2, "no change, no new version"
    store.update("pods", "kube-system", "a", lambda o: o["status"].update(phase="Failed"))
    store.delete("pods", "kube-system", "b")
    assert [(rv, kind) for rv, kind, _, _ in store.events_after(2)] == [
        (3, "MODIFIED"), (4, "DELETED")]
    again = Store(tmp_path / "state.json")
    assert again.rv == 4 and [p["metadata"]["name"] for p in again.select("pods")] == ["a"]
    store.events.clear()
    store.events.append((4, "DELETED", "pods", {}))
    with pytest.raises(Gone):
        store.events_after(1)


def test_a_filtered_watch_sees_objects_enter_and_leave() -> None:
    seen: set[str] = set()
    obj = pod("a", {})
    obj["metadata"]["uid"] = "u1"  # type: ignore[index]
    assert as_seen("ADDED", obj, True, seen) == "ADDED"
    assert as_seen("MODIFIED", obj, True, seen) == "MODIFIED"
    assert as_seen("MODIFIED", obj, False, seen) == "DELETED"  # left the selection
    assert as_seen("MODIFIED", obj, False, seen) is None
    assert as_seen("MODIFIED", obj, True, seen) == "ADDED"  # came back
    # deleted between the watcher's list and its watch: still reported (kubectl delete --wait)
    assert as_seen("DELETED", obj, True, set()) == "DELETED"


def test_kubectl_columns() -> None:
    p = pod("a", {})
    p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"  # type: ignore[index]
    assert pod_status_text(p) == "Terminating"
    p = pod("a", {})
    p["status"] = {"phase": "Pending", "initContainerStatuses": [
        {"state": {"terminated": {"exitCode": 1}}}, {"state": {"waiting": {}}}]}
    assert pod_status_text(p) == "Init:Error"
    assert human_age("2000-01-01T00:00:00Z").endswith("y")
