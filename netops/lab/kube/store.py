"""Objects of the API stand-in, with resource versions and an event log for watches.

One `Store` holds every object as plain JSON-shaped dicts, keyed by (resource, namespace,
name). Every change bumps a global resourceVersion, stamps it on the object and appends a watch
event, so `kubectl wait` and `kubectl delete --wait` see changes exactly once. The store is
persisted to a JSON file after each change (the supervisor may restart; tests read it).
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Obj = dict[str, Any]
Key = tuple[str, str, str]
"""(resource, namespace or "", name)"""

MAX_EVENTS = 5000


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


class Gone(Exception):
    """A watch asked for a resourceVersion older than the event log keeps (HTTP 410)."""


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Condition()
        self.objects: dict[Key, Obj] = {}
        self.rv = 0
        self.events: list[tuple[int, str, str, Obj]] = []
        """(rv, type, resource, object): ADDED / MODIFIED / DELETED."""
        self._bulk = 0
        self._dirty = False
        self.extra: dict[str, Any] = {}
        """Internal state kept with the objects (the kubelet's per-pod boot ids)."""
        if path.exists():
            data = json.loads(path.read_text())
            self.rv = int(data["rv"])
            self.extra = data.get("extra", {})
            for obj in data["objects"]:
                self.objects[key_of(obj)] = obj

    # -- reading -------------------------------------------------------------------------
    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        with self.lock:
            obj = self.objects.get((resource, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def select(self, resource: str, namespace: str = "",
             match: Callable[[Obj], bool] | None = None) -> list[Obj]:
        with self.lock:
            found = [copy.deepcopy(o) for (r, ns, _), o in sorted(self.objects.items())
                     if r == resource and (not namespace or ns == namespace)
                     and (match is None or match(o))]
        return found

    def events_after(self, rv: int) -> list[tuple[int, str, str, Obj]]:
        with self.lock:
            if self.events and rv < self.events[0][0] - 1 and rv < self.rv:
                raise Gone(f"too old resource version: {rv} ({self.events[0][0] - 1})")
            return [e for e in self.events if e[0] > rv]

    # -- writing -------------------------------------------------------------------------
    def _record(self, kind: str, resource: str, obj: Obj) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.events.append((self.rv, kind, resource, copy.deepcopy(obj)))
        del self.events[:-MAX_EVENTS]
        self.lock.notify_all()

    def create(self, resource: str, obj: Obj) -> Obj:
        with self.lock:
            meta = obj["metadata"]
            meta["uid"] = meta.get("uid") or new_uid()
            meta["creationTimestamp"] = meta.get("creationTimestamp") or now_iso()
            self.objects[key_of(obj, resource)] = obj
            self._record("ADDED", resource, obj)
            self._save()
            return copy.deepcopy(obj)

    def update(self, resource: str, namespace: str, name: str,
               change: Callable[[Obj], None]) -> Obj | None:
        """Apply `change` to the stored object; record MODIFIED only if it changed."""
        with self.lock:
            obj = self.objects.get((resource, namespace, name))
            if obj is None:
                return None
            before = json.dumps(obj, sort_keys=True)
            change(obj)
            if json.dumps(obj, sort_keys=True) != before:
                self._record("MODIFIED", resource, obj)
                self._save()
            return copy.deepcopy(obj)

    def delete(self, resource: str, namespace: str, name: str) -> Obj | None:
        with self.lock:
            obj = self.objects.pop((resource, namespace, name), None)
            if obj is not None:
                self._record("DELETED", resource, obj)
                self._save()
            return copy.deepcopy(obj) if obj is not None else None

    def set_extra(self, section: str, key: str, value: Any) -> None:
        """Internal state beside the objects (no resource version, no watch event)."""
        with self.lock:
            self.extra.setdefault(section, {})[key] = value
            self._save()

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Many changes, one save at the end (seeding, a sync round): saving the whole file
        per change is quadratic in a lab of hundreds of nodes."""
        with self.lock:
            self._bulk += 1
        try:
            yield
        finally:
            with self.lock:
                self._bulk -= 1
                if not self._bulk and self._dirty:
                    self._save()

    def _save(self) -> None:
        if self._bulk:
            self._dirty = True
            return
        self._dirty = False
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"rv": self.rv, "objects": list(self.objects.values()),
                                   "extra": self.extra}, indent=1))
        tmp.replace(self.path)

    def wait(self, timeout: float) -> None:
        with self.lock:
            self.lock.wait(timeout)


RESOURCE_OF_KIND = {"Node": "nodes", "Pod": "pods", "DaemonSet": "daemonsets",
                    "ReplicaSet": "replicasets", "Deployment": "deployments",
                    "Namespace": "namespaces", "ConfigMap": "configmaps"}


def key_of(obj: Obj, resource: str | None = None) -> Key:
    meta = obj["metadata"]
    return (resource or RESOURCE_OF_KIND[obj["kind"]], meta.get("namespace", ""), meta["name"])


# -- selectors ------------------------------------------------------------------------------
_REQ = re.compile(r"\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(==|=|!=|\s+in\s+|\s+notin\s+)\s*"
                  r"(\([^)]*\)|[A-Za-z0-9_.-]*))?\s*$")


class BadSelector(ValueError):
    pass


def _split_top(text: str) -> Iterator[str]:
    """Split on commas outside parentheses (`a in (x,y),b=c`)."""
    depth, start = 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            yield text[start:i]
            start = i + 1
    yield text[start:]


def label_matcher(selector: str) -> Callable[[Obj], bool]:
    """Kubernetes label selector syntax: k=v, k==v, k!=v, k, !k, k in (a,b), k notin (a,b)."""
    tests: list[Callable[[dict[str, str]], bool]] = []
    for part in _split_top(selector):
        if not part.strip():
            continue
        m = _REQ.match(part)
        if not m:
            raise BadSelector(f"unable to parse requirement: {part!r}")
        neg, k, op, val = m.group(1), m.group(2), (m.group(3) or "").strip(), m.group(4) or ""
        if neg and op:
            raise BadSelector(f"unable to parse requirement: {part!r}")
        values = {v.strip() for v in val.strip("()").split(",")} if op in ("in", "notin") \
            else {val}

        def test(labels: dict[str, str], k: str = k, op: str = op, values: set[str] = values,
                 neg: str = neg) -> bool:
            if not op:
                return (k in labels) != bool(neg)
            if op in ("=", "==", "in"):
                return labels.get(k) in values
            return labels.get(k) not in values  # != and notin
        tests.append(test)
    return lambda obj: all(t(obj["metadata"].get("labels") or {}) for t in tests)


def field_value(obj: Obj, path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, bool):
        return "true" if node else "false"
    return "" if node is None else str(node)


FIELDS = {"pods": {"metadata.name", "metadata.namespace", "spec.nodeName", "status.phase",
                   "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                   "status.podIP", "status.nominatedNodeName"},
          "nodes": {"metadata.name", "spec.unschedulable"}}


def field_matcher(resource: str, selector: str) -> Callable[[Obj], bool]:
    tests = []
    for part in selector.split(","):
        if not part.strip():
            continue
        m = re.match(r"\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise BadSelector(f"invalid selector: {part!r}; can't understand {part!r}")
        path, op, val = m.groups()
        if path not in FIELDS.get(resource, {"metadata.name", "metadata.namespace"}):
            raise BadSelector(f'field label not supported: {path}')
        tests.append((path, op == "!=", val))
    return lambda obj: all((field_value(obj, p) == v) != neg for p, neg, v in tests)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (also what a strategic merge patch means for maps and
    scalars, which is all kubectl cordon/uncordon/label/annotate send)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = target if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):  # strategic-merge directives ($setElementOrder, ...)
            continue
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result
