"""The import rules of tests/import_rules.py hold for the project, and the check catches each kind of break."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import import_rules

ROOT = Path(__file__).resolve().parent.parent


def test_the_project_keeps_its_import_rules():
    assert import_rules.violations(ROOT) == []


def plant(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in {"feedback/__init__.py": "", "training/__init__.py": "", **files}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_a_circle_through_an_import_inside_a_function_is_found(tmp_path):
    root = plant(
        tmp_path,
        {
            "feedback/a.py": "from . import b\n",
            "feedback/b.py": "def later():\n    from feedback.c import x\n",
            "feedback/c.py": "from .a import y\n",
        },
    )
    assert import_rules.violations(root) == ["import circle: feedback.a <-> feedback.b <-> feedback.c"]


@pytest.mark.parametrize("line", ["import django.db", "from feedback.models import Vote", "from feedback import x"])
def test_training_importing_django_or_feedback_is_found(tmp_path, line):
    root = plant(tmp_path, {"training/data.py": f"def read():\n    {line}\n", "feedback/models.py": ""})
    assert import_rules.violations(root) == [
        f"training.data imports {line.split()[1]} (training/ runs without Django)"
    ]


def test_a_package_importing_one_to_its_right_is_found(tmp_path):
    root = plant(
        tmp_path,
        {
            "feedback/ranking/__init__.py": "",
            "feedback/ranking/views.py": "from feedback.datasets.services import build\n",
            "feedback/datasets/__init__.py": "",
            "feedback/datasets/services.py": "from feedback.ranking import views\n",
            "feedback/errors.py": "from feedback.cycles.runs import x\n",
            "feedback/cycles/__init__.py": "",
            "feedback/cycles/runs.py": "from feedback.datasets.services import build\n",
        },
    )
    problems = import_rules.violations(root)
    assert (
        "feedback.ranking.views imports feedback.datasets.services: feedback.ranking may not import "
        "feedback.datasets" in problems
    )
    assert "feedback.errors imports feedback.cycles.runs: the shared bottom may not import feedback.cycles" in problems
    assert not any(
        p.startswith("feedback.cycles.runs") or p.startswith("feedback.datasets.services") for p in problems
    )


def test_domain_code_importing_a_tasks_module_is_found_and_tasks_admin_and_commands_may(tmp_path):
    root = plant(
        tmp_path,
        {
            "feedback/coders/__init__.py": "",
            "feedback/coders/tasks.py": "",
            "feedback/coders/generation.py": "def f():\n    from .tasks import run_tests\n",
            "feedback/coders/admin.py": "from .tasks import run_tests\n",
            "feedback/management/commands/generate.py": "from feedback.coders.tasks import run_tests\n",
        },
    )
    assert import_rules.violations(root) == [
        "feedback.coders.generation imports feedback.coders.tasks: send the task by name (feedback.dispatch.enqueue)"
    ]
