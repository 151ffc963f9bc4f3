"""The module graph of netops has no import cycle (issue 16): every import counts, lazy ones
inside functions too; only `if TYPE_CHECKING:` blocks are left out (they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "netops"


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "standins" in parts:
            continue  # the lab's stand-in programs run on nodes, not in netops
        name = ".".join(parts)
        mods[name.removesuffix(".__init__")] = path
    return mods


def _imports(path: Path, mods: dict[str, Path], me: str) -> set[str]:
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and getattr(node.test, "id", "") == "TYPE_CHECKING" for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        for name in names:
            while name and name not in mods:
                name = name.rpartition(".")[0]
            if name and name != me and not me.startswith(name + "."):
                found.add(name)
    return found


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    mods = _modules()
    graph = {m: _imports(p, mods, m) for m, p in mods.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return out


ALLOWED = [
    # the lab's fault registry and the two fault families it lists (one package, deliberate)
    ["netops.lab.faults", "netops.lab.faults_calico", "netops.lab.faults_k8s"],
]


def test_no_import_cycles() -> None:
    assert [c for c in cycles() if c not in ALLOWED] == []


def test_the_finder_sees_a_cycle(tmp_path: Path) -> None:
    """The check can fail: two modules importing each other lazily are one cycle."""
    mods = {"a": tmp_path / "a.py", "b": tmp_path / "b.py"}
    mods["a"].write_text("def f():\n    import b\n")
    mods["b"].write_text("from a import f\n")
    assert _imports(mods["a"], mods, "a") == {"b"}
    assert _imports(mods["b"], mods, "b") == {"a"}
