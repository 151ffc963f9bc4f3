"""Real Prometheus, node_exporter and `netops scheduler` processes on 127.0.0.1 for the metrics
test (Debian's prometheus and prometheus-node-exporter packages); each is stopped afterwards."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.contract.sshd import free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def available() -> bool:
    return all(Path(p).exists() for p in (PROMETHEUS, NODE_EXPORTER, PROMTOOL))


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer: {log.read_text()[-3000:]}")


@contextmanager
def process(argv: list[str], log: Path, ready: str | None = None,
            stop: signal.Signals = signal.SIGTERM, **kw: Any) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, **kw)
    try:
        if ready:
            wait_http(ready, proc, log)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(stop)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@contextmanager
def node_exporter(textfiles: Path, log: Path) -> Iterator[int]:
    port = free_port()
    with process([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}",
                  "--collector.disable-defaults", "--collector.textfile",
                  f"--collector.textfile.directory={textfiles}"], log,
                 ready=f"http://127.0.0.1:{port}/metrics"):
        yield port


@contextmanager
def prometheus(root: Path, targets: dict[str, int], rules: Path) -> Iterator[str]:
    port = free_port()
    jobs = "".join(f"  - job_name: {job}\n    static_configs:\n"
                   f"      - targets: ['127.0.0.1:{p}']\n" for job, p in targets.items())
    config = root / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                      f"rule_files: ['{rules}']\nscrape_configs:\n{jobs}")
    url = f"http://127.0.0.1:{port}"
    with process([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={root / 'data'}",
                  f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                 root / "prometheus.log", ready=f"{url}/-/ready"):
        yield url


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """The instant vector of `promql` (Prometheus' HTTP query API)."""
    q = urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=5) as resp:
        doc = json.loads(resp.read())
    assert doc["status"] == "success", doc
    return list(doc["data"]["result"])


def value_of(url: str, promql: str, timeout: float = 60) -> float:
    """The single value of `promql` once Prometheus has one (scrapes take a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        result = query(url, promql)
        if len(result) == 1:
            return float(result[0]["value"][1])
        if time.monotonic() > deadline:
            raise AssertionError(f"no single value for {promql}: {result}")
        time.sleep(0.5)
