"""bench/learning_stages.py samples every model of a cycle with the cycle's own evaluate settings."""

import json

from bench.learning_stages import evaluate_settings
from tests.training.conftest import REPO_ROOT
from training.evaluate import eval_prompts
from training.ladder import ladder_tasks


def test_evaluate_settings_are_the_recipes_on_the_heldout_file(tmp_path):
    tasks = ladder_tasks(n=3, seed=1, split="heldout", levels=(1,))
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text("".join(json.dumps(task.record()) + "\n" for task in tasks))
    recipe = REPO_ROOT / "training" / "recipes" / "ladder"
    summary = {"recipe": str(recipe), "snapshot": str(tmp_path / "snapshot"), "parent_dir": str(tmp_path / "parent")}

    settings = evaluate_settings(summary, tmp_path / "run-1", heldout)

    # The recipe's values over the stage's own defaults (the fields a bare namespace lacked, e.g. prompt_prefix).
    assert (settings.n_samples, settings.temperature, settings.max_new_tokens) == (4, 0.8, 64)
    assert settings.prompt_prefix == ""
    assert settings.prompts_file == str(heldout)
    prompts = eval_prompts(settings, None)
    assert [p["entry_point"] for p in prompts] == [task.record()["entry_point"] for task in tasks]
    assert all(p["tests"] and p["test_style"] == "humaneval" for p in prompts)
