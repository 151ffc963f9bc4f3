"""The lab's cluster: what `lab up` seeds, and the controllers and kubelet that keep it live.

Seeded objects: one Node per lab node; DaemonSets calico-node, kube-proxy, node-local-dns
(kube-system) and kube-flannel-ds (kube-flannel), with one pod per node; ReplicaSets coredns
(kube-system, 2 pods) and web (default, one pod per worker) so that a drain has something to
evict; one bare pod per `unmanaged` marker, made by faults (a drain without --force refuses it).

`Cluster.sync()` runs every half second in the supervisor and plays three parts:
- the node lifecycle controller: a node is Ready while its sshd listens, its kubelet unit is
  active and its CNI config exists (the kubelet's NetworkReady message otherwise);
- the kubelet: it starts pods on their node after each boot and stops deleted ones, through the
  node-side `kubelet-pod` stand-in (calico-node's process and CRI log, node-local-dns' link
  and rules...), one exec per node and round;
- the DaemonSet and ReplicaSet controllers: a deleted or evicted pod is replaced (a DaemonSet
  pod on the same node, a ReplicaSet pod on a schedulable Ready node).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import shlex
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from netops.lab.bootplan import NodeFS
from netops.lab.kube import pdb
from netops.lab.kube.store import Obj, Store, new_uid, now_iso

if TYPE_CHECKING:
    from netops.lab.lab import Lab

log = logging.getLogger("netops.lab.kube")

KUBELET_VERSION = "v1.28.2"
HOOK = "/usr/local/sbin/kubelet-pod"
UNIT_STATE = "/run/netops-lab/units/kubelet.service"
CNI_DIR = "/etc/cni/net.d"
READY_MESSAGE = "kubelet is posting ready status"
CNI_NOT_READY = ("container runtime network not ready: NetworkReady=false "
                 "reason:NetworkPluginNotReady message:docker: network plugin is not ready: "
                 "cni config uninitialized")
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery utilrand

DAEMONSETS: list[dict[str, Any]] = [
    {"namespace": "kube-system", "name": "calico-node", "labels": {"k8s-app": "calico-node"},
     "containers": [("calico-node", "docker.io/calico/node:v3.26.1")],
     "init": [("install-cni", "docker.io/calico/cni:v3.26.1")]},
    {"namespace": "kube-system", "name": "kube-proxy", "labels": {"k8s-app": "kube-proxy"},
     "containers": [("kube-proxy", f"registry.k8s.io/kube-proxy:{KUBELET_VERSION}")]},
    {"namespace": "kube-system", "name": "node-local-dns",
     "labels": {"k8s-app": "node-local-dns"},
     "containers": [("node-cache", "registry.k8s.io/dns/k8s-dns-node-cache:1.22.20")]},
    {"namespace": "kube-flannel", "name": "kube-flannel-ds", "labels": {"app": "flannel"},
     "containers": [("kube-flannel", "docker.io/flannel/flannel:v0.22.3")],
     "init": [("install-cni-plugin", "docker.io/flannel/flannel-cni-plugin:v1.2.0"),
              ("install-cni", "docker.io/flannel/flannel:v0.22.3")]},
]
REPLICASETS: list[dict[str, Any]] = [
    {"namespace": "kube-system", "name": "coredns-5d78c9869d", "deployment": "coredns",
     "labels": {"k8s-app": "kube-dns", "pod-template-hash": "5d78c9869d"}, "replicas": 2,
     "containers": [("coredns", "registry.k8s.io/coredns/coredns:v1.10.1")]},
    {"namespace": "default", "name": "web-7f9c6d8b5", "deployment": "web",
     "labels": {"app": "web", "pod-template-hash": "7f9c6d8b5"}, "replicas": -1,
     "containers": [("nginx", "docker.io/library/nginx:1.25")], "emptydir": True},
]
CONTROL_PLANE = ("chick1", "chick2", "chick3")
KUBELET_CONFIGMAP = """\
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
clusterDNS:
- 169.254.25.10
clusterDomain: cluster.local
resolvConf: /run/systemd/resolve/resolv.conf
"""


def suffix(n: int = 5) -> str:
    return "".join(random.choice(_NAME_CHARS) for _ in range(n))


def _containers(spec: list[tuple[str, str]]) -> list[Obj]:
    return [{"name": n, "image": i, "imagePullPolicy": "IfNotPresent",
             "resources": {}, "terminationMessagePath": "/dev/termination-log"}
            for n, i in spec]


class Cluster:
    """The cluster state of one lab (see the module docstring)."""

    def __init__(self, lab: Lab, store: Store) -> None:
        self.lab, self.store = lab, store
        self._busy: set[str] = set()
        """Nodes with a kubelet exec in flight (one at a time per node)."""
        self._retry: dict[str, float] = {}
        self._mutex = threading.Lock()
        self._evicting = threading.Lock()

    # -- seeding -----------------------------------------------------------------------
    def seed(self) -> None:
        with self.store.bulk():
            self._seed()

    def _seed(self) -> None:
        if self.store.select("nodes"):
            return
        for ns in ("default", "kube-system", "kube-flannel", "kube-public", "kube-node-lease"):
            self.store.create("namespaces", {
                "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
        for i, name in enumerate(self.lab.names, start=1):
            labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                      "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                      "beta.kubernetes.io/arch": "amd64"}
            if name in CONTROL_PLANE:
                labels["node-role.kubernetes.io/control-plane"] = ""
            self.store.create("nodes", {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": labels, "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
                "spec": {"podCIDR": f"10.244.{i % 256}.0/24",
                         "podCIDRs": [f"10.244.{i % 256}.0/24"]},
                "status": {
                    "addresses": [{"type": "InternalIP", "address": self.lab.address(name)},
                                  {"type": "Hostname", "address": name}],
                    "conditions": [self._condition("Ready", "Unknown", "NodeStatusNeverUpdated",
                                                   "Kubelet never posted node status.")],
                    "nodeInfo": {"kubeletVersion": KUBELET_VERSION,
                                 "kubeProxyVersion": KUBELET_VERSION,
                                 "containerRuntimeVersion": "docker://20.10.24",
                                 "operatingSystem": "linux", "architecture": "amd64",
                                 "osImage": "Debian GNU/Linux 12 (bookworm)"}}})
        # kubeadm's source of every node's /var/lib/kubelet/config.yaml (`kubeadm upgrade`
        # rewrites the file from it): fix-node-resolv-conf persists its fix here too.
        self.store.create("configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kubelet-config", "namespace": "kube-system"},
            "data": {"kubelet": KUBELET_CONFIGMAP}})
        for ds in DAEMONSETS:
            self.store.create("daemonsets", {
                "apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": ds["name"], "namespace": ds["namespace"],
                             "labels": dict(ds["labels"])},
                "spec": {"selector": {"matchLabels": dict(ds["labels"])}},
                "status": {}})
        for rs in REPLICASETS:
            replicas = rs["replicas"] if rs["replicas"] > 0 else max(
                1, len([n for n in self.lab.names if n not in CONTROL_PLANE]))
            self.store.create("replicasets", {
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs["name"], "namespace": rs["namespace"],
                             "labels": dict(rs["labels"]),
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                  "name": rs["deployment"], "uid": new_uid(),
                                                  "controller": True}]},
                "spec": {"replicas": replicas, "selector": {"matchLabels": dict(rs["labels"])}},
                "status": {"replicas": replicas}})
        self._controllers()

    # -- objects -----------------------------------------------------------------------
    @staticmethod
    def _condition(kind: str, status: str, reason: str, message: str) -> Obj:
        t = now_iso()
        return {"type": kind, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": t, "lastTransitionTime": t}

    def new_pod(self, namespace: str, name: str, labels: dict[str, str], owner: Obj | None,
                containers: list[tuple[str, str]], node: str | None,
                init: list[tuple[str, str]] | None = None, emptydir: bool = False) -> Obj:
        spec: Obj = {"containers": _containers(containers), "restartPolicy": "Always",
                     "schedulerName": "default-scheduler", "dnsPolicy": "ClusterFirst",
                     "serviceAccountName": "default", "terminationGracePeriodSeconds": 30,
                     "tolerations": [{"operator": "Exists"}] if owner and
                     owner["kind"] == "DaemonSet" else []}
        if init:
            spec["initContainers"] = _containers(init)
        if emptydir:
            spec["volumes"] = [{"name": "cache", "emptyDir": {}}]
        if node:
            spec["nodeName"] = node
        meta: Obj = {"name": name, "namespace": namespace, "labels": dict(labels)}
        if owner is not None:
            meta["ownerReferences"] = [{
                "apiVersion": "apps/v1", "kind": owner["kind"],
                "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                "controller": True, "blockOwnerDeletion": True}]
        pod: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
                    "status": {"phase": "Pending", "qosClass": "BestEffort",
                               "conditions": [{"type": "PodScheduled", "status": "True",
                                               "lastTransitionTime": now_iso()}]
                               if node else []}}
        return self.store.create("pods", pod)

    # -- the controllers ---------------------------------------------------------------
    def _controllers(self) -> None:
        pods = [p for p in self.store.select("pods")
                if not p["metadata"].get("deletionTimestamp")]
        nodes = {n["metadata"]["name"]: n for n in self.store.select("nodes")}

        def owned(owner: Obj) -> list[Obj]:
            uid = owner["metadata"]["uid"]
            return [p for p in pods if any(r["uid"] == uid for r in
                                           p["metadata"].get("ownerReferences", []))]

        self._collect_garbage(pods)
        for ds in self.store.select("daemonsets"):
            spec = next(d for d in DAEMONSETS if d["name"] == ds["metadata"]["name"])
            have = {p["spec"].get("nodeName") for p in owned(ds)}
            for node in nodes:
                if node not in have:
                    self.new_pod(spec["namespace"], f"{spec['name']}-{suffix()}",
                                 spec["labels"], ds, spec["containers"], node,
                                 spec.get("init"))
            n = len(nodes)
            status = {"desiredNumberScheduled": n, "currentNumberScheduled": n,
                      "numberMisscheduled": 0, "numberReady": n}
            self.store.update("daemonsets", ds["metadata"]["namespace"], ds["metadata"]["name"],
                              _setter("status", status))
        for rs in self.store.select("replicasets"):
            spec = next((r for r in REPLICASETS if r["name"] == rs["metadata"]["name"]),
                        {}) or _template_spec(rs)
            mine = owned(rs)
            for _ in range(rs["spec"]["replicas"] - len(mine)):
                node = self._schedule(spec, mine, nodes)
                mine.append(self.new_pod(
                    spec["namespace"], f"{spec['name']}-{suffix()}", spec["labels"], rs,
                    spec["containers"], node, emptydir=spec.get("emptydir", False)))
        self._disruption(pods)
        for pod in pods:  # a pending pod gets a node once one is schedulable
            if not pod["spec"].get("nodeName") and pod["status"].get("phase") == "Pending":
                owner = next((rs for rs in self.store.select(
                    "replicasets", pod["metadata"]["namespace"]) if any(
                        r["uid"] == rs["metadata"]["uid"]
                        for r in pod["metadata"].get("ownerReferences", []))), None)
                rs_spec = next((r for r in REPLICASETS
                                if pod["metadata"]["name"].startswith(r["name"] + "-")),
                               _template_spec(owner) if owner else
                               {"name": pod["metadata"]["name"], "deployment": ""})
                node = self._schedule(rs_spec, pods, nodes)
                if node:
                    self.store.update("pods", pod["metadata"]["namespace"],
                                      pod["metadata"]["name"],
                                      _setter("spec", {**pod["spec"], "nodeName": node}))

    def _collect_garbage(self, pods: list[Obj]) -> None:
        """The garbage collector: a deleted DaemonSet's or ReplicaSet's pods go too."""
        owners = {o["metadata"]["uid"] for r in ("daemonsets", "replicasets")
                  for o in self.store.select(r)}
        for pod in pods:
            ref = next((r for r in pod["metadata"].get("ownerReferences", [])
                        if r.get("controller")), None)
            if ref and ref["kind"] in ("DaemonSet", "ReplicaSet") and ref["uid"] not in owners:
                self.delete_pod(pod["metadata"]["namespace"], pod["metadata"]["name"])

    def _disruption(self, pods: list[Obj]) -> None:
        """The disruption controller: each PodDisruptionBudget's status (`pdb.status`)."""
        for budget in self.store.select("poddisruptionbudgets"):
            ns = budget["metadata"]["namespace"]
            st = pdb.status(budget, [p for p in pods if p["metadata"]["namespace"] == ns])
            self.store.update("poddisruptionbudgets", ns, budget["metadata"]["name"],
                              _setter("status", st))

    def _schedule(self, spec: dict[str, Any] | None, pods: list[Obj],
                  nodes: dict[str, Obj]) -> str | None:
        """A Ready, schedulable node (workers first for workloads), fewest pods of the set."""
        if spec is None:
            return None
        ok = [n for n, o in nodes.items() if not o["spec"].get("unschedulable")
              and ready_status(o) == "True" and all(
                  o["metadata"].get("labels", {}).get(k) == v
                  for k, v in (spec.get("node_selector") or {}).items())]
        if spec["deployment"] != "coredns":
            ok = [n for n in ok if n not in CONTROL_PLANE] or ok
        if not ok:
            return None
        count = {n: sum(1 for p in pods if p["spec"].get("nodeName") == n and
                        p["metadata"]["name"].startswith(spec["name"])) for n in ok}
        return min(ok, key=lambda n: (count[n], self.lab.names.index(n)))

    # -- deletion and eviction ---------------------------------------------------------
    def evict(self, pod: Obj) -> tuple[int, Obj] | None:
        """The eviction subresource: None when `pod` was evicted (deleted gracefully), else
        the API's refusal (a PodDisruptionBudget, see `pdb`). One eviction at a time, so two
        drains cannot both spend a budget's last disruption."""
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        with self._evicting:
            pdbs = self.store.select("poddisruptionbudgets", ns)
            refused = pdb.refusal(pod, pdbs, self.store.select("pods", ns)) if pdbs else None
            if refused is None:
                self.delete_pod(ns, name)
            return refused

    def delete_pod(self, namespace: str, name: str) -> Obj | None:
        """Graceful deletion: mark it terminating; the kubelet part stops it, then it goes."""
        def mark(o: Obj) -> None:
            o["metadata"].setdefault("deletionTimestamp", now_iso())
            o["metadata"].setdefault("deletionGracePeriodSeconds", 30)
        pod = self.store.update("pods", namespace, name, mark)
        if pod is not None and not pod["spec"].get("nodeName"):
            self.store.delete("pods", namespace, name)
        return pod

    # -- the node lifecycle and the kubelet --------------------------------------------
    def node_facts(self, name: str) -> tuple[str, str, str, str | None]:
        """(Ready status, reason, message, boot id) as the node's kubelet would post them."""
        anchor = self.lab.anchor(name)
        fs = NodeFS(anchor) if anchor is not None and self.lab.sshd_pid(name) else None
        unit = fs.read(UNIT_STATE) if fs else None
        boot = fs.read("/proc/sys/kernel/random/boot_id") if fs else None
        if fs is None or not unit or unit.split()[0] != "active" or not boot:
            return "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.", None
        if any(f.endswith((".conf", ".conflist", ".json")) for f in fs.listdir(CNI_DIR)):
            return "True", "KubeletReady", READY_MESSAGE, boot.strip()
        return "False", "KubeletNotReady", CNI_NOT_READY, boot.strip()

    def sync(self) -> None:
        with self.store.bulk():
            self._sync()

    def _sync(self) -> None:
        nodes = {n["metadata"]["name"]: n for n in self.store.select("nodes")}
        facts = {name: self.node_facts(name) for name in nodes if name in self.lab.names}
        self._post_node_status(facts)
        now = time.monotonic()
        for node, items in self._pod_work(facts).items():
            with self._mutex:
                if node in self._busy or self._retry.get(node, 0) > now:
                    continue
                self._busy.add(node)
            threading.Thread(target=self._kubelet, args=(node, facts[node][3], items),
                             daemon=True).start()
        self._controllers()

    def _post_node_status(self, facts: dict[str, tuple[str, str, str, str | None]]) -> None:
        for name, (status, reason, message, _) in facts.items():
            def post(o: Obj, status: str = status, reason: str = reason,
                     message: str = message) -> None:
                conds = o["status"]["conditions"]
                ready = next(c for c in conds if c["type"] == "Ready")
                if (ready["status"], ready["reason"], ready["message"]) != \
                        (status, reason, message):
                    ready.update(self._condition("Ready", status, reason, message))
            self.store.update("nodes", "", name, post)

    def _pod_work(self, facts: dict[str, tuple[str, str, str, str | None]]
                  ) -> dict[str, list[tuple[str, Obj]]]:
        """Per node, the pods its kubelet must start (not yet started since this boot) or
        stop (terminating); pod readiness follows the node's."""
        started: dict[str, str] = self.store.extra.get("started", {})
        work: dict[str, list[tuple[str, Obj]]] = {}
        for pod in self.store.select("pods"):
            node = pod["spec"].get("nodeName")
            meta = pod["metadata"]
            if not node or node not in facts:
                continue
            status, _, _, boot = facts[node]
            if meta.get("deletionTimestamp"):
                if boot is None:
                    self.store.delete("pods", meta["namespace"], meta["name"])
                else:
                    work.setdefault(node, []).append(("stop", pod))
            elif boot is not None and started.get(meta["uid"]) != boot:
                work.setdefault(node, []).append(("start", pod))
            elif status != "True":
                self._set_ready(pod, False)
            elif started.get(meta["uid"]) == boot and pod["status"].get("phase") == "Running":
                self._set_ready(pod, True)
        return work

    def _kubelet(self, node: str, boot: str | None, items: list[tuple[str, Obj]]) -> None:
        """One exec in the node runs the `kubelet-pod` stand-in for every pod to start/stop;
        the node is retried in 5 s if any of them did not start."""
        failed = True
        try:
            request = [kubelet_request(p, action) for action, p in items]
            done = self.lab.node_exec(node, f"{HOOK} {shlex.quote(json.dumps(request))}",
                                      check=False, timeout=60)
            replies = {}
            for line in done.stdout.splitlines():
                with contextlib.suppress(ValueError):
                    r = json.loads(line)
                    replies[r["uid"]] = r
            if done.returncode != 0:
                log.warning("%s: kubelet-pod rc %d: %s", node, done.returncode,
                            done.stderr.strip()[-500:])
            failed = False
            for action, pod in items:
                meta = pod["metadata"]
                reply = replies.get(meta["uid"])
                if action == "stop":
                    if reply is not None or done.returncode == 0:
                        self.store.delete("pods", meta["namespace"], meta["name"])
                    continue
                if reply is None:
                    failed = True
                    continue
                self._started(pod, reply)
                if reply.get("ok"):
                    self.store.set_extra("started", meta["uid"], boot)
                else:
                    failed = True
        except Exception:
            log.exception("%s: kubelet round failed", node)
        finally:
            with self._mutex:
                self._busy.discard(node)
                if failed:
                    self._retry[node] = time.monotonic() + 5

    def _started(self, pod: Obj, reply: dict[str, Any]) -> None:
        """Pod status after a start: Running and Ready, or stuck in an init container."""
        t = now_iso()
        restarts = reply.get("restarts", {})

        def apply(o: Obj) -> None:
            st = o["status"]
            st["hostIP"] = self.lab.address(o["spec"]["nodeName"])
            st.setdefault("startTime", t)
            if reply.get("ok"):
                st["phase"] = "Running"
                st.pop("message", None)
                st.pop("reason", None)
                st["initContainerStatuses"] = [
                    {"name": c["name"], "image": c["image"], "ready": True, "restartCount": 0,
                     "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                              "startedAt": t, "finishedAt": t}}}
                    for c in o["spec"].get("initContainers", [])]
                st["containerStatuses"] = [
                    {"name": c["name"], "image": c["image"], "ready": True, "started": True,
                     "restartCount": int(restarts.get(c["name"], 0)),
                     "containerID": "docker://" + reply.get("ids", {}).get(c["name"], ""),
                     "state": {"running": {"startedAt": t}}}
                    for c in o["spec"]["containers"]]
                st["conditions"] = _pod_conditions(True, t)
            else:
                failing = reply.get("failed_init") or ""
                st["phase"] = "Pending"
                st["initContainerStatuses"] = [
                    {"name": c["name"], "image": c["image"], "ready": False,
                     "restartCount": int(restarts.get(c["name"], 0)),
                     "state": {"terminated": {"exitCode": 1, "reason": "Error",
                                              "message": reply.get("message", ""),
                                              "startedAt": t, "finishedAt": t}}
                     if c["name"] == failing else {"waiting": {"reason": "PodInitializing"}}}
                    for c in o["spec"].get("initContainers", [])]
                st["containerStatuses"] = [
                    {"name": c["name"], "image": c["image"], "ready": False, "started": False,
                     "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
                    for c in o["spec"]["containers"]]
                st["conditions"] = _pod_conditions(False, t)
        self.store.update("pods", pod["metadata"]["namespace"], pod["metadata"]["name"], apply)

    def _set_ready(self, pod: Obj, ready: bool) -> None:
        want = "True" if ready else "False"

        def apply(o: Obj) -> None:
            for c in o["status"].get("conditions", []):
                if c["type"] in ("Ready", "ContainersReady") and c["status"] != want:
                    c.update(status=want, lastTransitionTime=now_iso())
            for cs in o["status"].get("containerStatuses", []):
                cs["ready"] = ready
        self.store.update("pods", pod["metadata"]["namespace"], pod["metadata"]["name"], apply)

    # -- logs ----------------------------------------------------------------------------
    def log_lines(self, pod: Obj, container: str) -> list[tuple[str, str]]:
        """(timestamp, line) pairs of the container's current CRI log file on its node."""
        node = pod["spec"].get("nodeName")
        meta = pod["metadata"]
        if not node or self.lab.anchor(node) is None or self.lab.sshd_pid(node) is None:
            raise LookupError(f'Get "https://{self.lab.address(node) if node else "?"}:10250/'
                              f'containerLogs/{meta["namespace"]}/{meta["name"]}/{container}"'
                              ": dial tcp: connect: connection refused")
        directory = self.lab.node_path(
            node, f"/var/log/pods/{meta['namespace']}_{meta['name']}_{meta['uid']}/{container}")
        files = sorted((p for p in directory.glob("*.log") if p.stem.isdigit()),
                       key=lambda p: int(p.stem)) if directory.is_dir() else []
        if not files:
            return []
        out = []
        for raw in files[-1].read_text(errors="replace").splitlines():
            ts, _, rest = raw.partition(" ")
            _stream, _, rest = rest.partition(" ")
            _tag, _, line = rest.partition(" ")
            out.append((ts, line))
        return out


def kubelet_request(pod: Obj, action: str = "start") -> Obj:
    """What the node-side `kubelet-pod` stand-in is told to do with `pod`."""
    meta = pod["metadata"]
    return {"action": action, "namespace": meta["namespace"], "name": meta["name"],
            "uid": meta["uid"], "labels": meta.get("labels", {}),
            "containers": [c["name"] for c in pod["spec"]["containers"]],
            "init": [c["name"] for c in pod["spec"].get("initContainers", [])]}


def _template_spec(rs: Obj) -> dict[str, Any]:
    """A ReplicaSet made through the API (not seeded): its pod template's labels, containers
    and nodeSelector."""
    template = rs["spec"].get("template", {})
    pod_spec = template.get("spec", {})
    return {"namespace": rs["metadata"]["namespace"], "name": rs["metadata"]["name"],
            "deployment": "", "labels": template.get("metadata", {}).get("labels", {}),
            "containers": [(c["name"], c.get("image", "")) for c in pod_spec.get("containers", [])],
            "node_selector": pod_spec.get("nodeSelector") or {}}


def _setter(field: str, value: Obj) -> Callable[[Obj], None]:
    def apply(o: Obj) -> None:
        o[field] = value
    return apply


def _pod_conditions(ready: bool, t: str) -> list[Obj]:
    s = "True" if ready else "False"
    return [{"type": "Initialized", "status": "True", "lastTransitionTime": t},
            {"type": "Ready", "status": s, "lastTransitionTime": t},
            {"type": "ContainersReady", "status": s, "lastTransitionTime": t},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": t}]


def ready_status(node: Obj) -> str:
    return next((c["status"] for c in node["status"].get("conditions", [])
                 if c["type"] == "Ready"), "Unknown")


def run_forever(cluster: Cluster, stop: threading.Event, interval: float = 0.5,
                on_error: Callable[[], None] | None = None) -> None:
    while not stop.is_set():
        try:
            cluster.sync()
        except Exception:
            log.exception("cluster sync failed")
            if on_error:
                on_error()
        stop.wait(interval)
