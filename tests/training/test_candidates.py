"""The evaluate stage's choice among a cycle's candidates (the pipeline's ``select_from``): every candidate is
sampled on the same prompts and seeds, the one passing most becomes the evaluated policy, and the pipeline's
summary names it as the cycle's policy."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.training.conftest import planned_commands
from training import generate

PROMPT = 'def inc_{i}(x: int) -> int:\n    """Return x plus one.\n    >>> inc_{i}(1)\n    2\n    """\n'


def prompts_file(path, n: int = 6):
    rows = [
        {
            "prompt_id": f"inc/{i}",
            "prompt": PROMPT.format(i=i),
            "tests": "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(-3) == -2\n",
            "test_style": "humaneval",
            "entry_point": f"inc_{i}",
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def three_models(tmp_path, make_tiny_model, monkeypatch):
    """parent, online_rl and dpo folders of one tiny model, each loaded and scripted: only dpo writes a body that
    passes."""
    from tests.training import scripted

    monkeypatch.setattr(generate, "MODEL_CACHE_SIZE", 4)
    source = make_tiny_model("llama", hidden=32, layers=1, heads=2)
    bodies = {"parent": "\n    return x\n", "online_rl": "\n    return x - 1\n", "dpo": "\n    return x + 1\n"}
    folders, handles = {}, []
    for name, body in bodies.items():
        folder = str(shutil.copytree(source, tmp_path / "run" / name))
        model, tokenizer = generate.load(folder)
        handles.append(scripted.script_text(model, tokenizer, body))
        folders[name] = folder
    yield folders
    for handle in handles:
        handle.remove()
    for folder in folders.values():
        generate.forget(folder)


def evaluate_run(tmp_path, snapshot_dir, models: dict, *, prompts: int, samples: int, offered: list[str]) -> dict:
    """The evaluate stage in this process (the models are loaded and scripted here): online_rl as the policy."""
    from training import evaluate
    from training.configs import EvaluateArguments

    args = EvaluateArguments(
        snapshot=str(snapshot_dir),
        prompts_file=str(prompts_file(tmp_path / "gate.jsonl", n=prompts)),
        model_name_or_path=models["online_rl"],
        candidate_model_paths=[models[name] for name in offered],
        parent_model_path=models["parent"],
        output_dir=str(tmp_path / "evaluate"),
        n_samples=samples,
        pass_k=[1],
        max_new_tokens=12,
        sandbox_workers=2,
    )
    return evaluate.run(args)


def test_the_candidate_that_passes_becomes_the_evaluated_policy(tmp_path, snapshot_dir, three_models):
    from training.promotion_gate import decide_from_evaluation

    result = evaluate_run(tmp_path, snapshot_dir, three_models, prompts=6, samples=2, offered=["dpo"])

    assert result["selected"] == "dpo" and result["candidates_compared"] == 2
    assert result["models"] == {"policy": three_models["dpo"], "parent": three_models["parent"]}
    assert {c["name"]: (c["pass@1"], c["selected"]) for c in result["candidates"]} == {
        "online_rl": (0.0, False),
        "dpo": (1.0, True),
    }
    assert result["pass@1"] == {"policy": 1.0, "parent": 0.0}
    assert result["paired"]["passed"] == {"policy": [2] * 6, "parent": [0] * 6}
    written = json.loads((tmp_path / "evaluate" / "eval.json").read_text())
    assert {row["policy"]["sample"] for row in written["per_prompt"]} == {"    return x + 1\n"}
    decision = decide_from_evaluation(result, min_completions=12)
    assert decision.promote and decision.candidates == 2 and decision.alpha == 0.025
    assert decision.chosen_from == "online_rl 0.000, dpo 1.000 (chosen)"


def test_one_model_offered_is_the_policy_as_before(tmp_path, snapshot_dir, three_models):
    result = evaluate_run(tmp_path, snapshot_dir, three_models, prompts=2, samples=1, offered=[])
    assert result["selected"] == "online_rl" and result["candidates_compared"] == 1
    assert result["models"]["policy"] == three_models["online_rl"] and result["pass@1"]["policy"] == 0.0


def test_the_pipeline_offers_the_select_from_stages_to_evaluate_and_refuses_one_that_is_not_run_before(
    tmp_path, snapshot_dir
):
    def plan(**kw):
        return planned_commands(snapshot_dir, tmp_path, parent="org/p", **kw)

    command = plan(select_from=["dpo", "sft"])["evaluate"]
    at = command.index("--candidate_model_paths")
    assert command[at + 1 : at + 3] == [str(tmp_path / "dpo"), str(tmp_path / "sft")]
    assert command[command.index("--model_name_or_path") + 1] == str(tmp_path / "online_rl")
    assert "--candidate_model_paths" not in plan()["evaluate"]
    for bad, stages in (("reward", None), ("dpo", ["sft", "evaluate"]), ("ppo", None)):
        with pytest.raises(ValueError, match=f"select_from: {bad} is not a policy stage run before evaluate"):
            plan(select_from=[bad], **({"stages": stages} if stages else {}))


def test_the_summary_names_the_model_the_evaluation_chose(tmp_path):
    from training import pipeline

    chosen = tmp_path / "dpo"
    out = tmp_path / "evaluate"
    result = {"models": {"policy": str(chosen)}, "candidates_compared": 2, "selected": "dpo"}
    writer = f"import json, pathlib; pathlib.Path({str(out / 'result.json')!r}).write_text(json.dumps({result!r}))"
    step = {"stage": "evaluate", "command": [__import__("sys").executable, "-c", writer], "output_dir": str(out),
            "log": str(out / "stage.log")}  # fmt: skip
    out.mkdir()
    summary = {"stages": [], "policy_dir": str(tmp_path / "online_rl")}
    pipeline._run_step(step, pipeline.Runner(60), summary, summary_path=tmp_path / "summary.json", stage_timeout=60)
    assert summary["policy_dir"] == str(chosen) and summary["evaluation"]["selected"] == "dpo"
