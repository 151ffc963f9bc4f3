"""The HTML pages in a real browser: headless Chromium (Debian's package) renders the run page
and the diagnose page, takes a screenshot of each, and its DOM (as Chromium built it) holds the
hosts, steps and statuses; node text never became markup. NETOPS_SCREENSHOTS=DIR keeps the
screenshots (docs/ has the README's)."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from netops.diagnose import Diagnosis, Finding
from netops.html_report import diagnose_html, run_html
from netops.journal import Journal
from tests.runs import HOSTILE, journaled_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-headless-shell")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package")


def chromium(page: Path, *args: str) -> str:
    assert CHROMIUM is not None
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--no-first-run", "--disable-extensions",
                           f"--user-data-dir={page.parent / 'chromium-profile'}", *args,
                           page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


class Dom(HTMLParser):
    """Elements of the DOM that Chromium dumped, as (tag, attributes) in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def having(self, attr: str, tag: str | None = None) -> list[dict[str, str]]:
        return [a for t, a in self.elements if attr in a and (tag is None or t == tag)]


def render(tmp: Path, name: str, html: str, size: str) -> Dom:
    page = tmp / f"{name}.html"
    page.write_text(html)
    shot = tmp / f"{name}.png"
    chromium(page, f"--screenshot={shot}", f"--window-size={size}")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000  # a page, not a blank
    keep = os.environ.get("NETOPS_SCREENSHOTS")
    if keep:
        shutil.copy(shot, Path(keep) / f"{name}.png")
    dom = Dom()
    dom.feed(chromium(page, "--dump-dom"))
    tags = [t for t, _ in dom.elements]
    assert "script" not in tags and "img" not in tags  # node output stayed text
    return dom


def test_run_page_in_chromium(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db")
    run_id = journaled_run(tmp_path, journal).run_id
    run = journal.run(run_id)
    assert run is not None
    dom = render(tmp_path, "report-run", run_html(run, journal.hosts(run_id),
                                                  journal.steps(run_id)), "1400,1000")
    bars = dom.having("data-step", "rect")
    assert {(b["data-host"], b["data-step"], b["data-status"]) for b in bars} == {
        *((h, "inspect", "ok") for h in ("n1", "n2", "n3", "n4", "n5")),
        *((h, "apply", "changed") for h in ("n1", "n2", "n4", "n5")), ("n3", "apply", "failed"),
        *((h, "forwarding_ok", "ok") for h in ("n1", "n2", "n4", "n5")),
        ("n3", "forwarding_ok", "not-run")}
    assert all("gate" in b["class"] for b in bars if b["data-step"] == "forwarding_ok")
    kinds = [a["data-kind"] for a in dom.having("data-kind", "g")]
    assert kinds.count("batch") == 3 and kinds.count("pause") == 2
    labels = [a["data-host"] for a in dom.having("data-host", "text")]
    assert labels == ["n1", "n2", "n3", "n4", "n5"]
    rows = {a["data-host"] for a in dom.having("data-host", "tr")}
    assert rows == {"n1", "n2", "n3", "n4", "n5"}
    steps = dom.having("data-step", "details")
    assert len(steps) == 15
    assert next(s for s in steps if s["data-status"] == "failed").get("open") == ""
    assert next(a for t, a in dom.elements if a.get("id") == "run-status")["data-status"] \
        == "failed"


def test_diagnose_page_in_chromium(tmp_path: Path) -> None:
    checks = ["check-ip-forward", "check-bridge-nf", "fix-calico", "check-conntrack",
              "fix-node-resolv-conf"]
    d = Diagnosis(checks)
    for i in range(11, 19):
        d.nodes[f"chick{i}"] = {c: Finding("ok") for c in checks}
    d.nodes["chick13"]["fix-calico"] = Finding(
        "broken", f"calico_running: calico-node is not running\n{HOSTILE}")
    d.nodes["chick15"]["check-ip-forward"] = Finding(
        "broken", "runtime: stdout '0', expected '1'")
    d.nodes["chick16"] = {c: Finding("unreachable", "connect timed out") for c in checks}
    d.nodes["chick17"]["check-conntrack"] = Finding("unknown", "conntrack: command not found")
    dom = render(tmp_path, "diagnose-matrix", diagnose_html(d, 1.78e9, 3.2, "workers"),
                 "1000,760")
    cells = dom.having("data-runbook", "rect")
    assert len(cells) == 40
    got = {(c["data-node"], c["data-runbook"]): c["data-status"] for c in cells}
    assert got[("chick13", "fix-calico")] == "broken"
    assert got[("chick17", "check-conntrack")] == "unknown"
    assert [s for (n, _), s in got.items() if n == "chick16"] == ["unreachable"] * 5
    assert sum(s == "ok" for s in got.values()) == 32
    evidence = dom.having("data-runbook", "details")
    assert len(evidence) == 8  # every cell that is not ok can be expanded
    assert {a["data-node"] for a in dom.having("data-node", "text")} == set(d.nodes)
