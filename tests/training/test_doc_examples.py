"""The prompt's own docstring examples as a check (training/doc_examples.py): what is parsed, what the sandbox
judges, the grounded reward's ranking, and the examples reward of online RL."""

from __future__ import annotations

import json
import shutil

import pytest

from training import cli, data, doc_examples
from training.boundary import split_prompt
from training.ladder import ladder_tasks
from training.sandbox import verdict_strength

# HumanEval/0's prompt, as published (two examples).
HUMANEVAL_0 = '''from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    """ Check if in given list of numbers, are any two numbers closer to each other than
    given threshold.
    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)
    False
    >>> has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)
    True
    """
'''
ANSWER_0 = "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1 :])\n"


def test_the_examples_of_a_humaneval_prompt_become_strongly_judged_asserts():
    assert doc_examples.entry_point(HUMANEVAL_0) == "has_close_elements"
    assert doc_examples.examples(HUMANEVAL_0) == [
        doc_examples.Example("[1.0, 2.0, 3.0], 0.5", "False"),
        doc_examples.Example("[1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3", "True"),
    ]
    tests, name = doc_examples.example_tests(HUMANEVAL_0)
    assert name == "has_close_elements"
    assert tests == (
        "def check(candidate):\n"
        "    assert candidate([1.0, 2.0, 3.0], 0.5) == False\n"
        "    assert candidate([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3) == True\n"
    )
    assert verdict_strength(tests=tests, style="humaneval", entry_point=name) == "strong"


def test_only_literal_calls_of_the_prompts_own_function_are_examples():
    prompt = '''def helper(x):
    return x


def double(x: int, *, twice: bool = True) -> int:
    """Double it.
    >>> helper(3)
    3
    >>> double(n)
    6
    >>> print(double(2))
    4
    >>> double(2) + 1
    5
    >>> double(*[2])
    4
    >>> double(2, twice=True)  # a comment
    4  # four
    >>> double(1)
    >>> double(4)
    some words
    >>> double(5)
    10
    """
'''
    # not another function, a variable, a print, an expression around the call, a starred argument, a call whose
    # output line is another call or not a literal; a keyword argument and trailing comments are fine
    assert doc_examples.examples(prompt) == [
        doc_examples.Example("2, twice=True", "4"),
        doc_examples.Example("5", "10"),
    ]
    assert doc_examples.example_tests('def f(x):\n    """No examples."""\n') is None
    assert doc_examples.example_tests("no function here\n>>> f(1)\n1\n") is None
    assert doc_examples.examples("def f(x):\n    '''\n    >>> f(\n    1\n    '''\n") == []  # a broken call


@pytest.mark.slow
def test_examples_pass_runs_each_completion_against_its_prompts_examples_in_the_sandbox():
    no_examples = 'def g(x):\n    """Return x."""\n'
    passed = doc_examples.examples_pass(
        [HUMANEVAL_0, HUMANEVAL_0, HUMANEVAL_0, no_examples],
        [ANSWER_0, "    return False\n", "    return (\n", "    return x\n"],
    )
    # the right answer passes; "always False" gets the second example wrong; a syntax error fails; no examples: None
    assert passed == [True, False, False, None]


@pytest.mark.slow
def test_the_examples_are_a_visible_signal_not_the_truth():
    """A completion that special-cases its docstring's example passes the example and fails the hidden tests:
    why the evaluate stage and the promotion gate read the hidden tests, never the examples."""
    from training.sandbox import SandboxJob, run_program

    task = ladder_tasks(n=3, seed=0, split="train", levels=[2])[0]
    (example,) = doc_examples.examples(task.prompt)
    cheat = f"    if x == {example.args}:\n        return {example.want}\n    return None\n"
    assert doc_examples.examples_pass([task.prompt] * 2, [cheat, task.canonical_solution]) == [True, True]
    hidden = [
        run_program(SandboxJob(prompt=task.prompt, completion=c, tests=task.test, entry_point=task.entry_point))
        for c in (cheat, task.canonical_solution)
    ]
    assert [r.outcome for r in hidden] == ["failed", "passed"]


def test_every_ladder_prompt_has_an_example_the_sandbox_judges_strongly():
    tasks = ladder_tasks(n=60, seed=3, split="heldout", levels=[1, 2, 3])
    checks = [doc_examples.example_tests(t.prompt) for t in tasks]
    assert all(check is not None and check[1] == t.entry_point for check, t in zip(checks, tasks, strict=True))


def test_grounded_scores_add_the_weight_where_the_examples_pass():
    scores = doc_examples.grounded_scores([0.5, 2.0, -1.0], [True, False, None], weight=10.0)
    assert scores == [10.5, 2.0, -1.0]


@pytest.mark.slow
def test_the_examples_reward_of_online_rl_is_one_zero_or_none(tmp_path):
    from training import online_rl

    head, tail = split_prompt(HUMANEVAL_0)  # online RL's prompts end before the trailing newline
    reward = online_rl.ExamplesPass(stops=["\ndef "], timeout=10)
    rewards = reward(
        prompts=[head, head, 'def g(x):\n    """Return x."""'],
        completions=[tail + ANSWER_0 + "\ndef junk(:\n", tail + "    return True\n", "\n    return x\n"],
    )
    # cut at the stop sequence before the run, so the trailing syntax error is not judged
    assert rewards == [1.0, 0.0, None]
    assert (reward.runs, reward.passes) == (2, 1)
    # wired in by --examples_weight only where a prompt has examples
    config = cli.parse(
        online_rl.make_parser(),
        ["--config", "training/recipes/tiny/online_rl.yaml", "--snapshot", str(tmp_path), "--output_dir",
         str(tmp_path / "o"), "--model_name_or_path", "m", "--examples_weight", "0.5"],
    )[0]  # fmt: skip
    rows = [{"prompt": head, "test_style": "none"}]
    funcs, weights, _ = online_rl._reward_functions(config, rows, device="cpu", dtype=None)
    assert [f.__name__ for f in funcs] == ["examples"] and weights == [0.5]
    with pytest.raises(ValueError, match="online RL needs a reward"):
        online_rl._reward_functions(
            config, [{"prompt": "def g(x):\n", "test_style": "none"}], device="cpu", dtype=None
        )


@pytest.mark.slow
def test_the_reward_stage_reports_the_grounded_accuracy_beside_the_learned_one(
    tmp_path, make_tiny_model, snapshot_dir, capsys, monkeypatch
):
    """Half the held-out prompts get a docstring example: there the example decides (every chosen body passes
    it, every broken one fails), elsewhere the learned score does. Trained on swapped labels, the learned model
    ranks pairs the wrong way; the grounded figure is exactly 8 decided pairs plus its wins on the other 8."""
    from training import reward, reward_scoring

    snapshot = tmp_path / "snapshot"
    shutil.copytree(snapshot_dir, snapshot)
    for name in ("train", "test"):
        path = snapshot / "preference" / f"{name}.jsonl"
        rows = data.read_jsonl(path)
        for row in rows:
            if name == "train":
                row["chosen"], row["rejected"] = row["rejected"], row["chosen"]
        if name == "test":
            for row in rows[::2]:
                row["prompt"] = _with_example(row["prompt"], row["chosen"])
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    test_rows = data.preference_rows(data.open_snapshot(snapshot), "test")  # as the stage reads them
    argv = ["--config", "training/recipes/tiny/reward.yaml", "--snapshot", str(snapshot), "--output_dir",
            str(tmp_path / "reward"), "--model_name_or_path", str(make_tiny_model("llama")), "--max_steps", "8",
            "--examples_weight", "10"]  # fmt: skip
    runs = []
    outcomes = reward_scoring.examples_outcomes
    monkeypatch.setattr(
        reward_scoring, "examples_outcomes", lambda rows, **kw: runs.append(len(rows)) or outcomes(rows)
    )
    result = reward.main(argv)
    assert runs == [16]  # the held-out pairs' examples ran once, for the before and the after figures
    monkeypatch.undo()
    assert result["heldout_pairs"] == 16 and result["heldout_examples_pairs"] == 8
    assert result["heldout_examples_decided"] == 8
    model, tokenizer = reward_scoring.load_reward_model(tmp_path / "reward", device="cpu")
    learned_rest = reward_scoring.pair_accuracy(model, tokenizer, test_rows[1::2])["accuracy"]
    assert result["heldout_accuracy"] < 0.5  # swapped labels learned
    assert result["heldout_accuracy_grounded"] == pytest.approx((8 + 8 * learned_rest) / 16)
    assert result["heldout_accuracy_grounded"] > result["heldout_accuracy"]
    assert result["heldout_accuracy_examples_alone"] == (8 + 8 * 0.5) / 16  # the other 8 they cannot tell
    assert result["heldout_accuracy_grounded_before"] is not None
    with pytest.raises(SystemExit):
        reward.main([*argv[:-1], "-1"])
    assert "--examples_weight must be >= 0" in capsys.readouterr().err


def test_no_held_out_pairs_give_no_grounded_figures():
    from training import reward_scoring

    result = reward_scoring.pair_accuracy(None, None, [], examples_weight=10.0)
    assert result["accuracy"] is None and result["pairs"] == 0
    assert result["grounded_accuracy"] is None and result["examples_accuracy"] is None
    assert (result["examples_pairs"], result["examples_decided"], result["examples_wins"]) == (0, 0, [])


def _with_example(prompt: str, body: str) -> str:
    """The prompt with one doctest example, its expected value computed from the reference body here."""
    name = doc_examples.entry_point(prompt)
    namespace: dict = {}
    exec(prompt + body, namespace)  # noqa: S102 (the test's own reference bodies)
    want = namespace[name](7, 3)
    doc_end = prompt.rindex('"""')
    return prompt[:doc_end] + f"\n    >>> {name}(7, 3)\n    {want!r}\n    " + prompt[doc_end:]


@pytest.mark.slow
def test_the_reward_stage_with_examples_weight_and_no_held_out_pairs_reports_none(
    tmp_path, make_tiny_model, snapshot_dir
):
    from training import reward

    snapshot = tmp_path / "snapshot"
    shutil.copytree(snapshot_dir, snapshot)
    (snapshot / "preference" / "test.jsonl").write_text("")
    argv = ["--config", "training/recipes/tiny/reward.yaml", "--snapshot", str(snapshot), "--output_dir",
            str(tmp_path / "reward"), "--model_name_or_path", str(make_tiny_model("llama")), "--max_steps", "1",
            "--examples_weight", "10"]  # fmt: skip
    result = reward.main(argv)
    assert result["heldout_pairs"] == 0 and result["heldout_accuracy"] is None
    assert result["heldout_accuracy_grounded"] is None and result["heldout_accuracy_examples_alone"] is None
