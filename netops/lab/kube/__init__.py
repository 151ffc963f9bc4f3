"""The lab's Kubernetes API stand-in: enough of the API for the real `kubectl` to cordon, drain,
list, delete, evict, wait and read logs, with its state derived from the lab's nodes.

    store    objects, resource versions, the watch event log, selectors, merge patch
    cluster  the seeded cluster, the DaemonSet/ReplicaSet controllers, the kubelet's part
    server   the HTTP API (discovery, CRUD, watch, eviction, logs, Table output)
"""
