"""The project's import rules, checked by walking every module's syntax tree (imports inside functions count).

1. No import circle among project modules.
2. ``training/`` never imports Django or ``feedback`` (it must run where neither is installed).
3. Capability packages import only leftwards in ``LAYERS``; the shared bottom of ``feedback/`` imports none
   of them; only wiring (URLs, admin loading, the Celery app, management commands) may import any.
4. Domain code never imports a ``tasks`` module: it sends follow-up work by name (``feedback.dispatch``).
   Tasks modules (chains live with the tasks), admin modules and management commands may.

``python -m tests.import_rules`` prints the findings; tests/test_import_rules.py runs the same check.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOTS = ("feedback", "training")
SKIP_DIRS = {"migrations", "static", "templates", "fixtures", "__pycache__"}
LAYERS = ("accounts", "ranking", "coders", "datasets", "leaderboards", "cycles", "dashboard", "crowd")
# Modules that wire the packages together: they may import any package.
WIRING = (
    "feedback",
    "feedback.apps",
    "feedback.urls",
    "feedback.admin",
    "feedback.api.urls",
    "feedback.celery",
    "feedback.wsgi",
)
WIRING_PREFIXES = ("feedback.management.",)


def project_modules(root: Path) -> dict[str, Path]:
    found = {}
    for top in ROOTS:
        for path in sorted((root / top).rglob("*.py")):
            if SKIP_DIRS & set(path.relative_to(root).parts):
                continue
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imported_names(name: str, path: Path) -> set[str]:
    """Every dotted name the module imports, anywhere in it, relative imports resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(root: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(edges between project modules, every raw name each module imports)."""
    modules = project_modules(root)
    raw = {name: imported_names(name, path) for name, path in modules.items()}
    graph: dict[str, set[str]] = {}
    for name, names in raw.items():
        targets = set()
        for target in names:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            # A package and its own submodules import each other through __init__: not a circle.
            if target and target != name and not (target.startswith(name + ".") or name.startswith(target + ".")):
                targets.add(target)
        graph[name] = targets
    return graph, raw


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) > 1 and parts[0] == "feedback" and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return None


def _is_wiring(module: str) -> bool:
    return module in WIRING or module.startswith(WIRING_PREFIXES)


def _may_import_tasks(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return _is_wiring(module) or last in ("tasks", "admin") or module.endswith(".admin")


def violations(root: Path) -> list[str]:
    graph, raw = import_graph(root)
    found = [f"import circle: {' <-> '.join(c)}" for c in circles(graph)]
    for module, names in sorted(raw.items()):
        if module.startswith("training"):
            bad = sorted(n for n in names if n.split(".")[0] in ("django", "feedback"))
            found += [f"{module} imports {n} (training/ runs without Django)" for n in bad[:1]]
    for module, targets in sorted(graph.items()):
        if not module.startswith("feedback") or _is_wiring(module):
            continue
        mine = _layer(module)
        for target in sorted(targets):
            theirs = _layer(target)
            if theirs is not None and (mine is None or theirs > mine):
                where = "the shared bottom" if mine is None else f"feedback.{LAYERS[mine]}"
                found.append(f"{module} imports {target}: {where} may not import feedback.{LAYERS[theirs]}")
            if target.endswith(".tasks") and not _may_import_tasks(module):
                found.append(f"{module} imports {target}: send the task by name (feedback.dispatch.enqueue)")
    return found


if __name__ == "__main__":
    problems = violations(Path(__file__).resolve().parent.parent)
    print("\n".join(problems) or "no import rule broken")
    sys.exit(1 if problems else 0)
