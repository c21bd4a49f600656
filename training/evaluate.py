"""Evaluate: pass@1 and pass@k of the new policy and its parent, side by side, and reward-model accuracy.

Both policies sample ``n_samples`` completions for each held-out prompt that has tests (the same seeds, so the
comparison shares its randomness); each completion runs against the prompt's tests in training.sandbox, and
pass@k is the unbiased estimator of the Codex paper (Chen et al., 2021): ``1 - C(n-c, k) / C(n, k)`` for ``c``
passing samples out of ``n``, averaged over prompts. The reward model's accuracy is the share of held-out
preference pairs where chosen scores strictly above rejected. Each completion is also checked for degenerate
output (empty, not parseable Python with its prompt, or a repetition loop: ``promotion_gate.degenerate_reason``);
the per-prompt passing and degenerate counts of both models (``paired``) are what the platform's promotion gate
(``training.promotion_gate``) compares.

    python -m training.evaluate --config training/recipes/tiny/evaluate.yaml --snapshot DIR --output_dir DIR \\
        --model_name_or_path POLICY_DIR --parent_model_path PARENT_DIR --reward_model_path REWARD_DIR

``--candidate_model_paths DIR ...`` offers other models of the cycle (the pipeline's ``select_from``, e.g. its DPO
model) beside the policy: each is sampled on the same prompts and seeds, ``promotion_gate.select_candidate``
picks the one that passes most, and that one is "policy" in everything below ("selected", "candidates" and
"candidates_compared" say which and among what; the gate divides its alpha by the count).

``--prompts_file FILE`` evaluates a fixed set of prompts (the snapshot's prompts schema, or HumanEval's, which
training.ladder writes) instead of the snapshot's split: a held-out set no training snapshot ever holds.

Writes eval.json (headline numbers plus every prompt's counts and a sample completion per policy), result.json
(the headline numbers: {"pass@1": {"policy": x, "parent": y}, "pass@k": {"k": {"policy": .., "parent": ..}},
"reward_accuracy": z, "degenerate_rate": {"policy": .., "parent": ..}, "pass@1_strong": {..} (prompts whose
verdicts were judged outside the sandbox only; weak verdicts count in pass@k as they are, and
"weak_verdict_prompts" says how many there were), "paired": {"prompt_ids": [..],
"n_samples": n, "passed": {"policy": [..], "parent": [..]}, "degenerate": {...}}, ...}), metrics.jsonl and
run_info.json to --output_dir.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training import cli, data, reward_scoring, run_record
from training.configs import EvaluateArguments
from training.promotion_gate import degenerate_reason, outcomes_from_evaluation, select_candidate

STAGE = "evaluate"
EVAL_JSON = "eval.json"
SAMPLE_CHARS = 2000
logger = logging.getLogger("training")


def make_parser():
    from trl import TrlParser

    return TrlParser((EvaluateArguments,), prog=f"python -m training.{STAGE}")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c passed (Chen et al., 2021), in its numerically stable form."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def generate_and_test(model: str, prompts: list[dict], args: EvaluateArguments) -> tuple[list[list[str]], list]:
    """``args.n_samples`` completions per prompt, sampled as the recipe says, and their sandbox results in the
    same order (one list per prompt)."""
    from training.generate import generate
    from training.sandbox import SandboxJob, run_many

    completions = generate(
        model,
        # The prefix is context for the model only: the program tested is the prompt + its completion.
        [args.prompt_prefix + p["prompt"] for p in prompts],
        n=args.n_samples,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        stop=args.stop_sequences,
        seed=args.seed,
        batch_size=args.batch_size,
        trust_remote_code=args.trust_remote_code,
    )
    jobs = [
        SandboxJob(
            prompt=p["prompt"],
            completion=text,
            tests=p["tests"],
            style=p["test_style"],
            entry_point=p["entry_point"],
            timeout=args.sandbox_timeout,
            memory_mb=args.sandbox_memory_mb,
        )
        for p, texts in zip(prompts, completions, strict=True)
        for text in texts
    ]
    results = run_many(jobs, workers=args.sandbox_workers)
    n = args.n_samples
    return completions, [results[i * n : (i + 1) * n] for i in range(len(prompts))]


def sample_and_test(model: str, prompts: list[dict], args: EvaluateArguments) -> list[dict]:
    """For each prompt: the sandbox outcome and degenerate reason ("" if none) of each of n sampled completions,
    and the first completion."""
    completions, results = generate_and_test(model, prompts, args)
    out = []
    for p, texts, mine in zip(prompts, completions, results, strict=True):
        outcomes = [r.outcome for r in mine]
        degenerate = [degenerate_reason(p["prompt"], text, p["test_style"]) for text in texts]
        out.append(
            {
                "prompt_id": p["prompt_id"],
                "n": len(outcomes),
                "passed": sum(o == "passed" for o in outcomes),
                "outcomes": outcomes,
                # strong: judged outside the sandbox; weak: the in-process report (forgeable), counted all the same
                "verdict_strength": "strong" if mine and all(r.verdict_strength == "strong" for r in mine) else "weak",
                "degenerate": degenerate,
                "sample": texts[0][:SAMPLE_CHARS] if texts else "",
            }
        )
    return out


def summarize(per_prompt: list[dict], ks: Sequence[int]) -> dict[int, float | None]:
    if not per_prompt:
        return {k: None for k in ks}
    return {k: sum(pass_at_k(p["n"], p["passed"], k) for p in per_prompt) / len(per_prompt) for k in ks}


def strong_only(rows: list[dict]) -> list[dict]:
    """The prompts whose verdicts were all judged outside the sandbox."""
    return [row for row in rows if row.get("verdict_strength") == "strong"]


def paired_counts(prompts: list[dict], by_model: dict[str, list[dict]], n_samples: int) -> dict:
    """Per prompt, each model's passing and degenerate counts, in one order: the promotion gate's input."""
    return {
        "prompt_ids": [p["prompt_id"] for p in prompts],
        "n_samples": n_samples,
        "passed": {role: [row["passed"] for row in rows] for role, rows in by_model.items()},
        "degenerate": {
            role: [sum(bool(r) for r in row["degenerate"]) for row in rows] for role, rows in by_model.items()
        },
    }


def degenerate_rates(by_model: dict[str, list[dict]]) -> dict[str, float | None]:
    def rate(rows: list[dict]) -> float | None:
        total = sum(row["n"] for row in rows)
        return sum(bool(r) for row in rows for r in row["degenerate"]) / total if total else None

    return {role: rate(rows) for role, rows in by_model.items()}


def _reward_accuracy(args: EvaluateArguments, snapshot) -> dict:
    """The reward model's accuracy on the split's preference pairs (nothing measured without one)."""
    if not args.reward_model_path:
        return {"accuracy": None, "pairs": 0, "mean_margin": None}
    pairs = data.preference_rows(snapshot, args.split, max_rows=args.max_eval_rows)
    model, tokenizer = reward_scoring.load_reward_model(
        args.reward_model_path, trust_remote_code=args.trust_remote_code
    )
    return reward_scoring.pair_accuracy(model, tokenizer, pairs)


def eval_prompts(args: EvaluateArguments, snapshot) -> list[dict]:
    """The prompts with tests to evaluate: ``--prompts_file`` when given, else the snapshot's split."""
    if not args.prompts_file:
        return data.prompt_rows(snapshot, args.split, with_tests_only=True, max_rows=args.max_prompts)
    rows = []
    for row in data.read_jsonl(args.prompts_file, columns=("prompt",)):
        if "test" in row and "tests" not in row:  # HumanEval's schema (training.ladder writes it)
            row = {**row, "prompt_id": row.get("task_id"), "tests": row["test"], "test_style": "humaneval"}
        tests = row.get("tests") or ""
        style = row.get("test_style") or "none"
        if not tests.strip() or style == "none":
            continue
        rows.append(
            {
                "prompt_id": row.get("prompt_id", len(rows) + 1),
                "prompt": row["prompt"],
                "tests": tests,
                "test_style": style,
                "entry_point": row.get("entry_point") or "",
            }
        )
    if not rows:
        raise data.SnapshotError(f"--prompts_file {args.prompts_file}: no prompt with tests in it")
    return rows[: args.max_prompts] if args.max_prompts else rows


def candidate_names(paths: list[str]) -> dict[str, str]:
    """Each offered model by a name: its folder's (a cycle's stage: online_rl, dpo), made unique."""
    names: dict[str, str] = {}
    for path in paths:
        base = Path(path).name or str(path)
        name, n = base, 2
        while name in names or name == "parent":
            name, n = f"{base}-{n}", n + 1
        names[name] = path
    return names


def choose(prompts: list[dict], offered: dict[str, str], rows_of: dict[str, list[dict]], n_samples: int) -> dict:
    """Which offered model the gate judges (``promotion_gate.select_candidate`` on the same paired counts), and
    every candidate's figures; one model offered is simply the policy."""
    counted = {"paired": paired_counts(prompts, rows_of, n_samples)}
    parent = outcomes_from_evaluation(counted, "parent")
    if prompts:
        selected = select_candidate({name: outcomes_from_evaluation(counted, name) for name in offered}, parent)
    else:
        selected = next(iter(offered))
    return {
        "selected": selected,
        "candidates_compared": len(offered),
        "candidates": [
            {
                "name": name,
                "path": path,
                "pass@1": summarize(rows_of[name], [1])[1],
                "degenerate_rate": degenerate_rates({name: rows_of[name]})[name],
                "selected": name == selected,
            }
            for name, path in offered.items()
        ],
    }


def run(args: EvaluateArguments) -> dict:
    from transformers import set_seed

    from training.generate import forget

    set_seed(args.seed)
    with run_record.StageRun(STAGE, args.output_dir, arguments=[args], seed=args.seed) as record:
        snapshot = data.open_snapshot(args.snapshot)
        prompts = eval_prompts(args, snapshot)
        offered = candidate_names([args.model_name_or_path, *args.candidate_model_paths])
        sampled = {**offered, **({"parent": args.parent_model_path} if args.parent_model_path else {})}
        if not prompts:
            logger.warning("evaluate: prompts/%s.jsonl has no prompt with tests: no pass@k", args.split)

        rows_of: dict[str, list[dict]] = {}
        for role, path in sampled.items():
            logger.info(
                "evaluate: sampling %d x %d completions from the %s (%s)", len(prompts), args.n_samples, role, path
            )
            rows_of[role] = sample_and_test(path, prompts, args) if prompts else []
            forget(path)  # one model in memory at a time
        choice = choose(prompts, offered, rows_of, args.n_samples)
        roles = {"policy": choice["selected"], **({"parent": "parent"} if "parent" in sampled else {})}
        models = {role: sampled[name] for role, name in roles.items()}
        by_model = {role: rows_of[name] for role, name in roles.items()}
        ks = sorted({1, *args.pass_k})  # pass@1 always: the platform compares policies by it
        scores = {role: summarize(rows, ks) for role, rows in by_model.items()}

        reward = _reward_accuracy(args, snapshot)
        result = _headline(args, prompts, models, by_model, scores, ks, reward)
        result.update(choice)
        _write_eval_json(record.output_dir / EVAL_JSON, result, args, snapshot, prompts, models, by_model)
        flat = {f"pass@{k}/{role}": scores[role][k] for k in ks for role in models}
        degenerate = {f"degenerate_rate/{role}": rate for role, rate in result["degenerate_rate"].items()}
        record.log_metrics({**flat, **degenerate, "reward_accuracy": reward["accuracy"]})
        record.write_result(result)
    return result


def _headline(
    args: EvaluateArguments,
    prompts: list[dict],
    models: dict[str, str],
    by_model: dict[str, list[dict]],
    scores: dict[str, dict[int, float | None]],
    ks: list[int],
    reward: dict,
) -> dict:
    """result.json's numbers: pass@1 and pass@k of the policies side by side, the reward model's accuracy,
    degenerate rates, strong-verdict pass@1 and the promotion gate's paired counts."""

    def side_by_side(k: int) -> dict[str, float | None]:
        return {role: scores[role][k] for role in models}

    return {
        "pass@1": side_by_side(1),
        "pass@k": {str(k): side_by_side(k) for k in ks},
        "reward_accuracy": reward["accuracy"],
        "reward_pairs": reward["pairs"],
        "reward_margin": reward["mean_margin"],
        "degenerate_rate": degenerate_rates(by_model),
        "pass@1_strong": {role: summarize(strong_only(rows), [1])[1] for role, rows in by_model.items()},
        "weak_verdict_prompts": {role: len(rows) - len(strong_only(rows)) for role, rows in by_model.items()},
        "paired": paired_counts(prompts, by_model, args.n_samples),
        "prompts": len(prompts),
        "n_samples": args.n_samples,
        "models": models,
    }


def _write_eval_json(
    path,
    result: dict,
    args: EvaluateArguments,
    snapshot,
    prompts: list[dict],
    models: dict[str, str],
    by_model: dict[str, list[dict]],
) -> None:
    """eval.json: the headline numbers, the sampling settings, the snapshot, and every prompt's counts and sample
    completion per policy."""
    run_record.write_json(
        path,
        {
            **result,
            "split": args.split,
            "prompts_file": args.prompts_file,
            "temperature": args.temperature,
            "top_p": args.top_p,
            "max_new_tokens": args.max_new_tokens,
            "snapshot": str(snapshot.root),
            "snapshot_version": snapshot.version,
            "per_prompt": [
                {"prompt_id": p["prompt_id"], **{role: by_model[role][i] for role in models}}
                for i, p in enumerate(prompts)
            ],
        },
    )


def main(argv: Sequence[str] | None = None) -> dict:
    cli.setup_logging()
    (args,) = cli.parse(make_parser(), argv)
    return run(args)


if __name__ == "__main__":
    main()
