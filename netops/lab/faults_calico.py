"""Seed 000's faults, registered into `faults.FAULTS`.

`calico-silent`: the upgrade left exited calico-node containers whose sandbox network namespace
is gone. calico-node (the lab's felix stand-in) went silent two hours ago: its pod still says
Running, its CRI log's newest line is two hours old, felix liveness answers 503 and kubelet's
journal repeats `cannot find network namespace for the terminated container`. Restarting the
pod does not help (the new felix sees the same leftovers and goes silent again); `docker
system prune -f` plus a reboot does, as in the seed.

`bare-pod`: a pod without a controller on the node, so `kubectl drain` without --force refuses
the node (a failed drain must leave the node cordoned and halt the rollout).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from netops.errors import UserError
from netops.lab.faults import Fault, sh
from netops.lab.faults_k8s import kubelet_restart, node_pods
from netops.lab.kube.cluster import ready_status

if TYPE_CHECKING:
    from netops.lab.lab import Lab

SILENT_FOR_S = 2 * 3600

_PY = """\
import hashlib, json, os, re, signal, subprocess, sys, time
from datetime import datetime, timedelta, timezone
STATE = "/var/lib/docker-standin/state.json"
RUN = "/run/netops-lab/pods"
mode, shift = sys.argv[1], int(sys.argv[2])
with open(STATE) as f:
    data = json.load(f)
def calico(c):
    return c.get("labels", {}).get("io.kubernetes.container.name") == "calico-node"
def save():
    with open(STATE + ".tmp", "w") as f:
        json.dump(data, f, indent=1)
    os.replace(STATE + ".tmp", STATE)
def pid_of(uid):
    try:
        with open(f"{RUN}/{uid}.calico-node.pid") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None
def stop(pid):
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.02)
    except OSError:
        pass
running = [c for c in data["containers"] if calico(c) and c.get("state") == "running"
           and c.get("pod_uid")]
if mode == "heal":
    data["containers"] = [c for c in data["containers"] if not c.get("sandbox_netns")]
    save()
    sys.exit(0)
if not running:
    sys.exit("no running calico-node container on this node yet (kubelet not active, or the "
             "API stand-in has not started its pod)")
c = running[0]
L = c["labels"]
ns, pod, uid = L["io.kubernetes.pod.namespace"], L["io.kubernetes.pod.name"], c["pod_uid"]
restart = os.path.basename(c["log_path"])[:-4]
then = int(time.time()) - shift
old_pod = pod[:-5] + "x7q2m"
for kind, name, image in (("calico-node", f"k8s_calico-node_{old_pod}_{ns}_old-uid_3",
                           "docker.io/calico/node:v3.25.0"),
                          ("POD", f"k8s_POD_{old_pod}_{ns}_old-uid_3",
                           "registry.k8s.io/pause:3.9")):
    cid = hashlib.sha256(name.encode()).hexdigest()
    data["containers"] = [x for x in data["containers"] if x["id"] != cid]
    data["containers"].append({
        "id": cid, "name": name, "image": image, "command": "start_runit",
        "labels": {"io.kubernetes.container.name": kind, "io.kubernetes.pod.name": old_pod,
                   "io.kubernetes.pod.namespace": ns},
        "created": then - 86400, "started": then - 86400, "finished": then,
        "state": "exited", "exit_code": 137, "size": 387000000,
        # the sandbox's netns died with the old container: no such process in this node
        "sandbox_netns": "/proc/4194303/ns/net"})
save()
pid = pid_of(uid)
if pid:
    stop(pid)
def back(m):
    t = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S") - timedelta(seconds=shift)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + m.group(2)
def back_felix(m):
    t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S") - timedelta(seconds=shift)
    return t.strftime("%Y-%m-%d %H:%M:%S")
path = c["log_path"]
with open(path) as f:
    lines = f.readlines()
lines = [re.sub(r"(\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d)", back_felix,
                re.sub(r"^(\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d)(\\.\\d+Z)", back, l), count=1)
         for l in lines]
with open(path + ".tmp", "w") as f:
    f.writelines(lines)
os.replace(path + ".tmp", path)
os.makedirs(RUN, exist_ok=True)
with open(os.devnull, "rb") as i, open(os.devnull, "wb") as o:
    p = subprocess.Popen(["/usr/bin/python3", "-IS", "/usr/local/sbin/calico-node", ns, pod,
                          uid, restart, "--resume"], stdin=i, stdout=o, stderr=o,
                         start_new_session=True)
with open(f"{RUN}/{uid}.calico-node.pid", "w") as f:
    f.write(f"{p.pid}\\n")
print(pod)
"""


def _calico(lab: Lab, node: str, mode: str) -> str:
    return sh(lab, node, f"python3 - {mode} {SILENT_FOR_S} <<'EOF'\n{_PY}EOF\n")


def healthy_calico(lab: Lab, node: str) -> None:
    """calico-node running (the API's kubelet starts it once kubelet is active), no upgrade
    leftovers in docker, and a felix that answers liveness."""
    _wait_calico_running(lab, node)
    clear_guarded(lab, node)
    sh(lab, node, f"rm -f {CHATTY}")
    _calico(lab, node, "heal")
    live = sh(lab, node, "curl -s -o /dev/null -w '%{http_code}' "
                         "http://127.0.0.1:9099/liveness || true")
    if live != "200":  # a felix that went silent is restarted (kubelet's liveness restart)
        for pod in node_pods(lab, node, "calico-node"):
            kubelet_restart(lab, node, pod)
    _wait_api_ready(lab, node)


def _wait_api_ready(lab: Lab, node: str, timeout: float = 20) -> None:
    """The API's node status follows the node within a sync round (half a second)."""
    if not lab.kube:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = [o for o in lab.kube_state()["objects"]
                 if o["kind"] == "Node" and o["metadata"]["name"] == node]
        if nodes and ready_status(nodes[0]) == "True":
            return
        time.sleep(0.1)
    raise UserError(f"{node} is not Ready in the lab's Kubernetes API after {timeout:g}s")


def calico_silent(lab: Lab, node: str) -> None:
    _wait_calico_running(lab, node)
    _calico(lab, node, "silent")


CHATTY = "/etc/netops-lab/calico-chatty"


def calico_not_live(lab: Lab, node: str) -> None:
    """The seed's leftovers, but felix keeps logging warnings while its liveness is 503: a
    fresh log line is no proof of health (issue 18)."""
    _wait_calico_running(lab, node)
    sh(lab, node, f"mkdir -p /etc/netops-lab && : > {CHATTY}")
    _calico(lab, node, "silent")


def _wait_calico_running(lab: Lab, node: str, timeout: float = 20) -> None:
    """The API's kubelet starts calico-node within a second of the node turning Ready."""
    sh(lab, node, f"""\
i=0
until docker ps -q --filter label=io.kubernetes.container.name=calico-node | grep -q .; do
  i=$((i+1)); [ $i -lt {int(timeout * 10)} ] || {{ echo "calico-node never started" >&2; exit 1; }}
  sleep 0.1
done
""", timeout=timeout + 10)


def bare_pod(lab: Lab, node: str) -> None:
    lab.kubectl("run", f"debug-{node}", "--image=busybox:1.36", "--restart=Never",
            "--overrides", json.dumps({"apiVersion": "v1", "spec": {"nodeName": node}}),
            "--", "sleep", "86400")


def guarded_name(node: str) -> str:
    return f"guarded-{node}"


def _guarded_manifest(node: str) -> str:
    """A one-replica app pinned to `node` and a PodDisruptionBudget that wants it always up
    (minAvailable 1): the classic drain blocker. JSON is YAML, and kubectl reads both."""
    name = guarded_name(node)
    labels = {"app": name}
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
          "metadata": {"name": name, "namespace": "default", "labels": labels},
          "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                   "template": {"metadata": {"labels": labels}, "spec": {
                       "nodeSelector": {"kubernetes.io/hostname": node},
                       "containers": [{"name": "app", "image": "docker.io/library/nginx:1.25"}]}}}}
    budget = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
              "metadata": {"name": name, "namespace": "default"},
              "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}}}
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [rs, budget]})


def pdb_blocks_drain(lab: Lab, node: str) -> None:
    """A single-replica app on the node with a PodDisruptionBudget minAvailable 1: every
    eviction of its pod is refused (429 TooManyRequests, DisruptionBudget), so `kubectl drain`
    retries until its --timeout. No runbook owns this: fix-calico's drain fails on it."""
    path = lab.directory / f"{guarded_name(node)}.json"
    path.write_text(_guarded_manifest(node))
    lab.kubectl("create", "--validate=false", "-f", str(path))
    deadline = time.monotonic() + 30
    while True:
        pods = node_pods(lab, node, guarded_name(node))
        budgets = [o for o in lab.kube_state()["objects"] if o["kind"] ==
                   "PodDisruptionBudget" and o["metadata"]["name"] == guarded_name(node)]
        if pods and any(c["type"] == "Ready" and c["status"] == "True"
                        for c in pods[0].get("status", {}).get("conditions", [])) and \
                budgets and budgets[0].get("status", {}).get("currentHealthy") == 1:
            return
        if time.monotonic() > deadline:
            raise UserError(f"{node}: the guarded pod did not turn Ready under its budget")
        time.sleep(0.2)


def clear_guarded(lab: Lab, node: str) -> None:
    """Remove what pdb-blocks-drain created on `node` (its budget first, then the app)."""
    name = guarded_name(node)
    if not lab.kube or not any(o["metadata"].get("name") == name
                               for o in lab.kube_state()["objects"]):
        return
    lab.kubectl("delete", "--ignore-not-found", "--wait=false", "-n", "default",
                f"poddisruptionbudget/{name}", f"replicaset/{name}")


CALICO_FAULTS: tuple[Fault, ...] = (
    Fault("calico-silent", "calico-node silent for 2 h after an upgrade (exited containers "
          "whose netns is gone), pod still Running", "fix-calico", calico_silent),
    Fault("calico-not-live", "the same leftovers, but the wedged felix keeps logging warnings "
          "(a fresh log) while its liveness answers 503", "fix-calico", calico_not_live),
    Fault("bare-pod", "a pod without a controller on the node: kubectl drain refuses it",
          "fix-calico", bare_pod),
    Fault("pdb-blocks-drain", "a one-replica app on the node under a PodDisruptionBudget "
          "(minAvailable 1): evictions answer 429, kubectl drain times out", "fix-calico",
          pdb_blocks_drain),
)
