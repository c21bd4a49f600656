"""The figures bench/learning.py adds to a round's record: pass@1 on the report set with bootstrap intervals
(``measure``: each model sampled on it by the evaluate stage, outside the platform), the gate's own figures,
and the reward model's accuracy on held-out, test-decided ladder pairs."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RESAMPLES = 2000


def bootstrap_interval(
    rates: list[float], *, seed: int = 0, clusters: list[str] | None = None
) -> tuple[float | None, float | None]:
    """95% percentile bootstrap of the mean over prompts. Each resample draws prompts with replacement or, given
    ``clusters`` (a key per prompt: its template), whole clusters with replacement, every prompt of a drawn
    cluster counting: prompts of one template share its difficulty, so they are not independent draws."""
    if not rates:
        return None, None
    groups = _groups(rates, clusters)
    rng = random.Random(seed)
    means = []
    for _ in range(RESAMPLES):
        drawn = rng.choices(groups, k=len(groups))
        means.append(sum(sum(g) for g in drawn) / sum(len(g) for g in drawn))
    means.sort()
    return round(means[int(0.025 * RESAMPLES)], 4), round(means[int(0.975 * RESAMPLES) - 1], 4)


def _groups(values: list[float], clusters: list[str] | None) -> list[list[float]]:
    if clusters is None:
        return [[v] for v in values]
    if len(clusters) != len(values):
        raise ValueError(f"{len(clusters)} cluster keys for {len(values)} values")
    grouped: dict[str, list[float]] = {}
    for value, key in zip(values, clusters, strict=True):
        grouped.setdefault(key, []).append(value)
    return list(grouped.values())


def rise_interval(
    before: dict[str, float], after: dict[str, float], templates: dict[str, str], *, seed: int = 0
) -> dict:
    """The paired rise of pass@1 from ``before`` to ``after`` (per-prompt pass rates on the same prompts and
    seeds) with its 95% bootstrap interval over templates (whole templates drawn with replacement)."""
    shared = sorted(set(before) & set(after))
    if not shared:
        return {"value": None, "low": None, "high": None, "prompts": 0, "templates": 0}
    differences = [after[p] - before[p] for p in shared]
    keys = [templates.get(p, p) for p in shared]
    low, high = bootstrap_interval(differences, seed=seed, clusters=keys)
    value = round(sum(differences) / len(differences), 4)
    return {"value": value, "low": low, "high": high, "prompts": len(shared), "templates": len(set(keys))}


def pass_figures(per_prompt: list[dict], role: str, templates: dict[str, str] | None = None) -> dict:
    """pass@1 (mean over prompts of passed / n) of one model in eval.json, with its interval over prompts and,
    given each prompt's template, its interval over templates; ``by_prompt`` keeps each prompt's rate for the
    paired comparisons of the report."""
    rows = [row for row in per_prompt if row.get(role) and row[role]["n"]]
    if not rows:
        return {"pass_at_1": None, "pass_at_1_low": None, "pass_at_1_high": None}
    rates = [row[role]["passed"] / row[role]["n"] for row in rows]
    low, high = bootstrap_interval(rates)
    figures = {"pass_at_1": round(sum(rates) / len(rates), 4), "pass_at_1_low": low, "pass_at_1_high": high}
    if templates is not None:
        keys = [templates.get(str(row["prompt_id"]), str(row["prompt_id"])) for row in rows]
        low_t, high_t = bootstrap_interval(rates, clusters=keys)
        figures.update({"pass_at_1_low_template": low_t, "pass_at_1_high_template": high_t})
    figures["by_prompt"] = {str(row["prompt_id"]): round(rate, 4) for row, rate in zip(rows, rates, strict=True)}
    return figures


def heldout_tasks(path: Path) -> dict[str, dict]:
    """bench/learning.py's held-out file (DIR/heldout.jsonl) by task id."""
    tasks = (json.loads(line) for line in path.read_text().splitlines())
    return {task["task_id"]: task for task in tasks}


def heldout_templates(path: Path) -> dict[str, str]:
    """Each held-out prompt's template: what the intervals over templates draw."""
    return {task_id: task["template"] for task_id, task in heldout_tasks(path).items()}


def truth_pairs(per_prompt: list[dict], heldout: dict[str, dict]) -> list[dict]:
    """Held-out ladder pairs decided by the tests: the reference solution against each model's first sample
    when that sample failed (its outcome is in eval.json), with the prompt's template."""
    pairs = []
    for row in per_prompt:
        task = heldout.get(str(row["prompt_id"]))
        for role in ("parent", "policy"):
            seen = row.get(role) or {}
            if task and seen.get("outcomes") and seen["outcomes"][0] != "passed" and seen.get("sample", "").strip():
                pairs.append(
                    {
                        "prompt": task["prompt"],
                        "chosen": task["canonical_solution"],
                        "rejected": seen["sample"],
                        "template": task.get("template") or str(row["prompt_id"]),
                    }
                )
    return pairs


def heldout_reward_accuracy(reward_dir: Path, pairs: list[dict]) -> dict:
    """The reward model's accuracy on the pairs, alone and grounded in each prompt's docstring examples
    (training/doc_examples.py), with the examples alone beside them (0.5 for a pair they cannot tell); each with
    its 95% bootstrap interval over templates."""
    from training import doc_examples, reward_scoring
    from training.boundary import at_token_boundary

    if not pairs or not (reward_dir / "config.json").is_file():
        return {"accuracy": None, "pairs": len(pairs)}
    rows = []
    for pair in pairs:
        prompt, chosen, rejected = at_token_boundary(pair["prompt"], pair["chosen"], pair["rejected"])
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    model, tokenizer = reward_scoring.load_reward_model(str(reward_dir))
    result = reward_scoring.pair_accuracy(model, tokenizer, rows, examples_weight=doc_examples.DEFAULT_WEIGHT)
    keys = [pair.get("template") or str(i) for i, pair in enumerate(pairs)]
    figures = {"pairs": result["pairs"], "templates": len(set(keys)), "examples_decided": result["examples_decided"]}
    for name, wins in (("", result["wins"]), ("grounded_", result["grounded_wins"]),
                       ("examples_", result["examples_wins"])):  # fmt: skip
        low, high = bootstrap_interval(wins, clusters=keys)
        figures.update({f"{name}accuracy": round(sum(wins) / len(wins), 4), f"{name}low": low, f"{name}high": high})
    return figures


def measure(model_dir: str, *, heldout: Path, config: Path, snapshot: str, cache: Path) -> dict[str, dict]:
    """One model's per-prompt outcomes on the report set (``heldout``), by prompt id: ``python -m
    training.evaluate`` with the arm's evaluate settings and seed, the report set as its prompts, no parent.
    Cached per model folder (and its config.json's time) under ``cache``: a model kept as parent is sampled
    once, and the same seeds give the same samples."""
    folder = Path(model_dir).resolve()
    stamp = (folder / "config.json").stat().st_mtime_ns
    out = cache / hashlib.sha256(f"{folder}:{stamp}".encode()).hexdigest()[:16]
    if not (out / "eval.json").is_file():
        command = [
            sys.executable, "-m", "training.evaluate", "--config", str(config), "--prompts_file", str(heldout),
            "--snapshot", str(snapshot), "--output_dir", str(out), "--model_name_or_path", str(folder),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        (cache / f"{out.name}.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"measuring {folder} on {heldout} failed; see {cache / out.name}.log")
    rows = json.loads((out / "eval.json").read_text())["per_prompt"]
    return {str(row["prompt_id"]): {**row["policy"], "model": str(folder)} for row in rows}


def gate_figures(evaluation: dict) -> dict:
    """What the cycle's evaluate stage saw on the gate set: the parent's pass@1 and each candidate's."""
    return {
        "parent": (evaluation.get("pass@1") or {}).get("parent"),
        "candidates": {c["name"]: c["pass@1"] for c in evaluation.get("candidates") or []},
        "selected": evaluation.get("selected"),
        "prompts": evaluation.get("prompts"),
    }


def add_figures(record: dict, *, heldout: Path, measured: dict[str, dict] | None = None) -> None:
    """pass@1 of the parent, the candidate and the model active after the round, on the report set when
    ``measured`` (``{"parent": measure(...), "policy": measure(...)}``) is given, else on the cycle's own
    evaluation (records from before the gate set); the gate's figures; held-out reward accuracy."""
    eval_dir = Path(record["eval_dir"])
    try:
        evaluation = json.loads((eval_dir / "eval.json").read_text())
    except (OSError, ValueError):
        evaluation = {"per_prompt": []}
    tasks = heldout_tasks(heldout)
    if measured is not None:
        per_prompt = [
            {"prompt_id": task_id, **{role: rows[task_id] for role, rows in measured.items() if task_id in rows}}
            for task_id in tasks
        ]
        record["gate"] = gate_figures(evaluation)
    else:
        per_prompt = evaluation.get("per_prompt") or []
    templates = {task_id: task["template"] for task_id, task in tasks.items()}
    parent = pass_figures(per_prompt, "parent", templates)
    candidate = pass_figures(per_prompt, "policy", templates)
    promoted = bool((record.get("promotion") or {}).get("promote"))
    record["parent"] = parent
    record["candidate"] = candidate
    record["promoted"] = promoted
    record.update(candidate if promoted else parent)  # pass_at_1*: the model active after the round
    pairs = truth_pairs(per_prompt, tasks)
    record["reward_accuracy_heldout_ladder"] = heldout_reward_accuracy(eval_dir.parent / "reward", pairs)
    seconds = record["seconds"]
    record["round_seconds"] = round(sum(v for k, v in seconds.items() if not k.startswith("stage_")), 1)


def round_line(arm: str, record: dict) -> str:
    def f(value) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    heldout = record["reward_accuracy_heldout_ladder"]
    grounded = f"; grounded {f(heldout['grounded_accuracy'])}" if heldout.get("grounded_accuracy") is not None else ""
    return (
        f"[{arm}] round {record['round']}: pass@1 parent {f(record['parent']['pass_at_1'])} "
        f"candidate {f(record['candidate']['pass_at_1'])} -> active {f(record['pass_at_1'])} "
        f"[{f(record['pass_at_1_low'])}, {f(record['pass_at_1_high'])}]; promoted {record['promoted']}; "
        f"labels {f(record['label_accuracy']['accuracy'])}; reward {f(record['reward_accuracy_before'])} -> "
        f"{f(record['reward_accuracy_after'])} (held-out ladder {f(heldout['accuracy'])}{grounded}); "
        f"DPO preference {f(record['policy_preference_before'])} -> {f(record['policy_preference_after'])}; "
        f"votes {record['votes_used']}; {record['round_seconds']:.0f}s{_gate_text(record.get('gate'))}"
    )


def _gate_text(gate: dict | None) -> str:
    if not gate:
        return ""

    def f(value) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    shown = ", ".join(f"{name} {f(v)}" + ("*" if name == gate.get("selected") else "")
                      for name, v in gate["candidates"].items())  # fmt: skip
    return f"; gate set: parent {f(gate['parent'])}, {shown}"
