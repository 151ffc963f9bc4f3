"""The HTTP side of the API stand-in: what the real `kubectl` asks for, answered in the real
API's shapes (discovery, get/list/watch, Table output, merge patch, delete, eviction, logs).

Plain HTTP on 127.0.0.1 (the kubeconfig says `http://`): the lab has no PKI and kubectl needs
none for it. Anything not served answers 404 with a Status object, as the real API does.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from netops.lab.kube.cluster import Cluster, ready_status, suffix
from netops.lab.kube.store import BadSelector, Gone, Obj, field_matcher, label_matcher, merge_patch

log = logging.getLogger("netops.lab.kube")

VERSION = {"major": "1", "minor": "28", "gitVersion": "v1.28.2", "gitCommit": "netops-lab",
           "gitTreeState": "clean", "buildDate": "2023-09-13T09:29:07Z",
           "goVersion": "go1.20.8", "compiler": "gc", "platform": "linux/amd64"}


def _res(name: str, kind: str, namespaced: bool, verbs: list[str], short: list[str] | None = None,
         **extra: str) -> Obj:
    r: Obj = {"name": name, "singularName": kind.lower() if "/" not in name else "",
              "namespaced": namespaced, "kind": kind, "verbs": verbs, **extra}
    if short:
        r["shortNames"] = short
    return r


_RW = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
RESOURCES: dict[str, list[Obj]] = {
    "v1": [_res("namespaces", "Namespace", False, _RW, ["ns"]),
           _res("nodes", "Node", False, _RW, ["no"]),
           _res("pods", "Pod", True, _RW, ["po"]),
           _res("pods/eviction", "Eviction", True, ["create"], group="policy", version="v1"),
           _res("pods/log", "Pod", True, ["get"]),
           _res("configmaps", "ConfigMap", True, _RW, ["cm"])],
    "apps/v1": [_res("daemonsets", "DaemonSet", True, _RW, ["ds"]),
                _res("replicasets", "ReplicaSet", True, _RW, ["rs"]),
                _res("deployments", "Deployment", True, _RW, ["deploy"])],
    "policy/v1": [_res("poddisruptionbudgets", "PodDisruptionBudget", True, _RW, ["pdb"])],
}
KINDS = {r["name"]: (gv, r) for gv, rs in RESOURCES.items() for r in rs if "/" not in r["name"]}


def status(code: int, reason: str, message: str, **details: Any) -> Obj:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "details": details, "code": code}


def not_found(resource: str, name: str) -> tuple[int, Obj]:
    return 404, status(404, "NotFound", f'{resource} "{name}" not found', name=name,
                       kind=resource)


def human_age(created: str) -> str:
    """k8s.io/apimachinery duration.HumanDuration, as `kubectl get` prints AGE."""
    then = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    s = max(0, int(time.time() - then.timestamp()))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if h < 192:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    return f"{d}d" if d < 365 * 2 else f"{d // 365}y"


def _col(name: str, kind: str = "string", priority: int = 0, fmt: str = "") -> Obj:
    return {"name": name, "type": kind, "format": fmt, "description": "", "priority": priority}


def pod_status_text(pod: Obj) -> str:
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    st = pod.get("status", {})
    inits = st.get("initContainerStatuses", [])
    for i, c in enumerate(inits):
        term = c.get("state", {}).get("terminated")
        if term and term.get("exitCode"):
            return "Init:Error"
        if not term:
            return f"Init:{i}/{len(inits)}"
    return str(st.get("phase", "Pending"))


def table(resource: str, items: list[Obj], rv: str) -> Obj:
    if resource == "pods":
        cols = [_col("Name", fmt="name"), _col("Ready"), _col("Status"),
                _col("Restarts", "string"), _col("Age"), _col("IP", priority=1),
                _col("Node", priority=1), _col("Nominated Node", priority=1),
                _col("Readiness Gates", priority=1)]

        def cells(o: Obj) -> list[Any]:
            cs = o.get("status", {}).get("containerStatuses", [])
            total = len(o["spec"]["containers"])
            return [o["metadata"]["name"], f"{sum(1 for c in cs if c.get('ready'))}/{total}",
                    pod_status_text(o), str(sum(int(c.get("restartCount", 0)) for c in cs)),
                    human_age(o["metadata"]["creationTimestamp"]),
                    o.get("status", {}).get("podIP", "<none>"),
                    o["spec"].get("nodeName", "<none>"), "<none>", "<none>"]
    elif resource == "nodes":
        cols = [_col("Name", fmt="name"), _col("Status"), _col("Roles"), _col("Age"),
                _col("Version"), _col("Internal-IP", priority=1),
                _col("External-IP", priority=1), _col("OS-Image", priority=1),
                _col("Kernel-Version", priority=1), _col("Container-Runtime", priority=1)]

        def cells(o: Obj) -> list[Any]:
            ready = ready_status(o)
            text = "Ready" if ready == "True" else "NotReady" if ready == "False" else "Unknown"
            if ready == "Unknown":
                text = "NotReady"
            if o["spec"].get("unschedulable"):
                text += ",SchedulingDisabled"
            roles = sorted(k.split("/", 1)[1] for k in o["metadata"].get("labels", {})
                           if k.startswith("node-role.kubernetes.io/"))
            info = o["status"].get("nodeInfo", {})
            ip = next((a["address"] for a in o["status"].get("addresses", [])
                       if a["type"] == "InternalIP"), "<none>")
            return [o["metadata"]["name"], text, ",".join(roles) or "<none>",
                    human_age(o["metadata"]["creationTimestamp"]), info.get("kubeletVersion"),
                    ip, "<none>", info.get("osImage"), "6.1.0-netops-lab",
                    info.get("containerRuntimeVersion")]
    elif resource == "poddisruptionbudgets":  # printers: printPodDisruptionBudget
        cols = [_col("Name", fmt="name"), _col("Min Available"), _col("Max Unavailable"),
                _col("Allowed Disruptions", "integer"), _col("Age")]

        def cells(o: Obj) -> list[Any]:
            spec = o.get("spec", {})
            return [o["metadata"]["name"], str(spec.get("minAvailable", "N/A")),
                    str(spec.get("maxUnavailable", "N/A")),
                    int(o.get("status", {}).get("disruptionsAllowed", 0)),
                    human_age(o["metadata"]["creationTimestamp"])]
    else:
        cols = [_col("Name", fmt="name"), _col("Age")]

        def cells(o: Obj) -> list[Any]:
            return [o["metadata"]["name"], human_age(o["metadata"]["creationTimestamp"])]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
            "columnDefinitions": cols,
            "rows": [{"cells": cells(o), "object": o} for o in items]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: KubeServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # -- plumbing ------------------------------------------------------------------------
    def _send(self, code: int, body: Any, ctype: str = "application/json") -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw) if raw else {}

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            code, body = self._dispatch(method, url.path.rstrip("/"), query)
        except BadSelector as e:
            code, body = 400, status(400, "BadRequest", str(e))
        except (ValueError, KeyError) as e:
            code, body = 400, status(400, "BadRequest", f"bad request: {e}")
        except Exception as e:  # a bug here must not look like a network failure to kubectl
            log.exception("%s %s", method, self.path)
            code, body = 500, status(500, "InternalError", f"{type(e).__name__}: {e}")
        if code == -1:  # streamed already (watch)
            return
        if isinstance(body, str):
            self._send(code, body, "text/plain")
        else:
            self._send(code, body)

    def do_GET(self) -> None:
        self._route("GET")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    # -- routing -------------------------------------------------------------------------
    def _dispatch(self, method: str, path: str, q: dict[str, str]) -> tuple[int, Any]:
        if path == "/version":
            return 200, VERSION
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                         "serverAddress": "127.0.0.1:6443"}]}
        if path == "/apis":
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                 "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}}
                for g in ("apps", "policy")]}
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            gv, rest = parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            return 404, status(404, "NotFound", "the server could not find the requested "
                                                "resource")
        if gv not in RESOURCES:
            return 404, status(404, "NotFound", "the server could not find the requested "
                                                "resource")
        if not rest:
            return 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                         "resources": RESOURCES[gv]}
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        resource, name = rest[0], rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if resource not in KINDS or KINDS[resource][0] != gv:
            return 404, status(404, "NotFound", "the server could not find the requested "
                                                "resource")
        return self._resource(method, resource, namespace, name, sub, q)

    def _resource(self, method: str, resource: str, namespace: str, name: str, sub: str,
                  q: dict[str, str]) -> tuple[int, Any]:
        store = self.server.store
        if method == "GET" and not name:
            if q.get("watch") in ("true", "1"):
                self._watch(resource, namespace, q)
                return -1, None
            items = store.select(resource, namespace, self._matcher(resource, q))
            return 200, self._listing(resource, items)
        if method == "POST" and not name:
            return self._create(resource, namespace, q)
        if not name:
            return 405, status(405, "MethodNotAllowed", f"{method} on a collection")
        return self._object(method, resource, namespace, name, sub, q)

    def _object(self, method: str, resource: str, namespace: str, name: str, sub: str,
                q: dict[str, str]) -> tuple[int, Any]:
        store, cluster = self.server.store, self.server.cluster
        obj = store.get(resource, namespace, name)
        if obj is None:
            return not_found(resource, name)
        if sub == "log" and method == "GET":
            return self._log(obj, q)
        if sub == "eviction" and method == "POST":
            self._body()
            refused = cluster.evict(obj)
            if refused is not None:
                return refused
            return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                         "status": "Success", "code": 201}
        if sub:
            return 404, status(404, "NotFound", f"{resource}/{sub} is not served by the lab")
        if method == "GET":
            return 200, self._table(resource, [obj]) if self._wants_table() else obj
        if method == "PATCH":
            ctype = self.headers.get("Content-Type", "")
            if "json-patch" in ctype:
                return 415, status(415, "UnsupportedMediaType",
                                   "the lab serves merge and strategic merge patches")
            patch = self._body()
            updated = store.update(resource, namespace, name,
                                   lambda o: merge_patch(o, patch))
            return 200, updated
        if method == "DELETE":
            self._body()
            if resource == "pods":
                return 200, cluster.delete_pod(namespace, name)
            return 200, store.delete(resource, namespace, name)
        return 405, status(405, "MethodNotAllowed", f"{method} {resource}/{name}")

    def _create(self, resource: str, namespace: str, q: dict[str, str]) -> tuple[int, Any]:
        obj = self._body()
        meta = obj.setdefault("metadata", {})
        if KINDS[resource][1]["namespaced"]:
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + suffix()
        if not meta.get("name"):
            return 422, status(422, "Invalid", f"{resource} name is required")
        if self.server.store.get(resource, meta.get("namespace", ""), meta["name"]):
            return 409, status(409, "AlreadyExists",
                               f'{resource} "{meta["name"]}" already exists',
                               name=meta["name"], kind=resource)
        if "dryRun" in q:
            return 201, obj
        if resource == "pods":
            obj["status"] = {"phase": "Pending"}
        else:  # the API server counts spec changes of every other kind from 1
            meta.setdefault("generation", 1)
        return 201, self.server.store.create(resource, obj)

    def _matcher(self, resource: str, q: dict[str, str]) -> Any:
        tests = []
        if q.get("labelSelector"):
            tests.append(label_matcher(q["labelSelector"]))
        if q.get("fieldSelector"):
            tests.append(field_matcher(resource, q["fieldSelector"]))
        return lambda o: all(t(o) for t in tests)

    def _listing(self, resource: str, items: list[Obj]) -> Obj:
        if self._wants_table():
            return self._table(resource, items)
        gv, r = KINDS[resource]
        return {"kind": f"{r['kind']}List", "apiVersion": gv,
                "metadata": {"resourceVersion": str(self.server.store.rv)}, "items": items}

    def _wants_table(self) -> bool:
        """kubectl's human output asks for a server-side Table first."""
        return "as=Table" in self.headers.get("Accept", "")

    def _table(self, resource: str, items: list[Obj]) -> Obj:
        return table(resource, items, str(self.server.store.rv))

    def _log(self, pod: Obj, q: dict[str, str]) -> tuple[int, Any]:
        names = [c["name"] for c in pod["spec"]["containers"]]
        inits = [c["name"] for c in pod["spec"].get("initContainers", [])]
        container = q.get("container") or (names[0] if len(names) == 1 else "")
        name = pod["metadata"]["name"]
        if not container:
            return 400, status(400, "BadRequest",
                               f"a container name must be specified for pod {name}, "
                               f"choose one of: [{' '.join(names)}]")
        if container not in names + inits:
            return 400, status(400, "BadRequest",
                               f"container {container} is not valid for pod {name}")
        try:
            lines = self.server.cluster.log_lines(pod, container)
        except LookupError as e:
            return 500, status(500, "InternalError", str(e))
        if q.get("tailLines"):
            n = int(q["tailLines"])
            lines = lines[-n:] if n > 0 else []
        stamp = q.get("timestamps") in ("true", "1")
        return 200, "".join(f"{ts} {line}\n" if stamp else f"{line}\n" for ts, line in lines)

    # -- watch ---------------------------------------------------------------------------
    def _watch(self, resource: str, namespace: str, q: dict[str, str]) -> None:
        store = self.server.store
        match = self._matcher(resource, q)
        deadline = time.monotonic() + min(float(q.get("timeoutSeconds") or 1800), 1800)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        seen: set[str] = set()

        def emit(kind: str, obj: Obj) -> None:
            data = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        try:
            rv = int(q.get("resourceVersion") or 0)
            if not rv:
                rv = store.rv
                for o in store.select(resource, namespace, match):
                    seen.add(o["metadata"]["uid"])
                    emit("ADDED", o)
            else:
                seen = {o["metadata"]["uid"] for o in store.select(resource, namespace, match)}
            while time.monotonic() < deadline and not self.server.stopping.is_set():
                try:
                    events = store.events_after(rv)
                except Gone as e:
                    emit("ERROR", status(410, "Expired", str(e)))
                    break
                for erv, kind, res, obj in events:
                    rv = erv
                    if res != resource or (namespace and
                                           obj["metadata"].get("namespace") != namespace):
                        continue
                    shown = as_seen(kind, obj, match(obj), seen)
                    if shown:
                        emit(shown, obj)
                if not events:
                    store.wait(0.5)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


def as_seen(kind: str, obj: Obj, selected: bool, seen: set[str]) -> str | None:
    """The event a selector-filtered watch shows for a store event (None: not shown), and
    `seen` (the uids the watcher holds) updated: an object leaving the selection is DELETED
    for this watcher, one entering it ADDED."""
    uid = obj["metadata"]["uid"]
    if kind == "DELETED":
        shown = "DELETED" if selected or uid in seen else None
        seen.discard(uid)
        return shown
    if selected:
        shown = "ADDED" if kind == "ADDED" or uid not in seen else "MODIFIED"
        seen.add(uid)
        return shown
    if uid in seen:
        seen.discard(uid)
        return "DELETED"
    return None


class KubeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, cluster: Cluster, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.cluster = cluster
        self.store = cluster.store
        self.stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"
