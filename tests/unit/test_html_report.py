"""The HTML pages without a browser: what they contain, that node text is escaped, and that they
are self-contained (tests/contract/test_html_chromium.py renders them in Chromium)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from netops.diagnose import Diagnosis, Finding
from netops.html_report import diagnose_html, run_html
from netops.journal import Journal
from tests.runs import HOSTILE, journaled_run


@pytest.fixture(scope="module")
def journaled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("run")
    journal = Journal(tmp / "journal.db")
    run = journaled_run(tmp, journal, pause="0.5s")
    return tmp, run.run_id


def self_contained(page: str) -> None:
    assert "<script" not in page.lower().replace("&lt;script", "")
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert "\x1b" not in page


def test_run_page(journaled: tuple[Path, str]) -> None:
    tmp, run_id = journaled
    journal = Journal(tmp / "journal.db")
    run = journal.run(run_id)
    assert run is not None
    page = run_html(run, journal.hosts(run_id), journal.steps(run_id))
    self_contained(page)
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\\x1b[31mred" in page  # the colour sequence shows as an escape
    bars = re.findall(r'<rect class="bar st-([a-z-]+)( gate)?" data-host="(n\d)" '
                      r'data-step="(\w+)"', page)
    assert len(bars) == 15
    assert ("failed", "", "n3", "apply") in bars and ("not-run", " gate", "n3",
                                                      "forwarding_ok") in bars
    assert sum(1 for b in bars if b[1]) == 5  # the verify gate of each host
    assert page.count('data-kind="batch"') == 3 and page.count('data-kind="pause"') == 2
    assert 'id="run-status" data-status="failed"' in page
    assert '<li data-host="n3" data-step="apply">' in page


def test_diagnose_page() -> None:
    d = Diagnosis(["check-ip-forward", "fix-calico"])
    d.nodes = {"n1": {"check-ip-forward": Finding("ok"),
                      "fix-calico": Finding("broken", f"calico_running: {HOSTILE}")},
               "n2": {"check-ip-forward": Finding("unreachable", "timed out"),
                      "fix-calico": Finding("unreachable", "timed out")}}
    page = diagnose_html(d, 1.7e9, 1.5, "workers")
    self_contained(page)
    assert HOSTILE not in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    cells = re.findall(r'<rect class="cell st-(\w+)" data-node="(\w+)" data-runbook="([\w-]+)"',
                       page)
    assert sorted(cells) == [("broken", "n1", "fix-calico"), ("ok", "n1", "check-ip-forward"),
                             ("unreachable", "n2", "check-ip-forward"),
                             ("unreachable", "n2", "fix-calico")]
    assert page.count("<details") == 3  # the evidence of every cell that is not ok
    assert "netops run fix-calico --nodes n1 --dry-run" in page


def test_report_and_diagnose_cli_write_html(journaled: tuple[Path, str], tmp_path: Path) -> None:
    tmp, run_id = journaled
    out = tmp_path / "run.html"
    done = subprocess.run([sys.executable, "-m", "netops", "--journal", str(tmp / "journal.db"),
                           "report", run_id[:6], "--format", "html", "-o", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "tune-forwarding" in out.read_text() and not list(tmp_path.glob(".run.html.*"))
    done = subprocess.run([sys.executable, "-m", "netops", "--journal", str(tmp / "journal.db"),
                           "report", run_id, "--format", "pdf"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "expected md, json or html" in done.stderr
