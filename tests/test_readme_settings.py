"""README's configuration table lists every environment variable that feedback/settings.py reads."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def variables_read(path: Path) -> set[str]:
    """Names passed as the first argument to env_*() or os.environ.get() anywhere in the module."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Constant):
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if called.startswith("env_") or (called == "get" and "environ" in ast.unparse(func)):
            names.add(node.args[0].value)
    return names


def documented(readme: str) -> set[str]:
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def test_every_variable_settings_reads_is_in_the_readme_table():
    read = variables_read(ROOT / "feedback" / "settings.py")
    assert len(read) > 40  # the parse found the helpers' calls
    assert sorted(read - documented((ROOT / "README.md").read_text())) == []
