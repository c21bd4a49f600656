"""Online RL: sample completions from the policy, score them, and reinforce the better ones.

GRPOTrainer by default (PPO's clipped surrogate objective with group-relative advantages: no value model, no
separate critic to train), RLOOTrainer as the alternative (``algorithm: rloo`` in the recipe or
``--algorithm rloo``). TRL removed PPOTrainer in 1.13 (PR #7020); docs/training.md explains the choice.

    python -m training.online_rl --config training/recipes/tiny/online_rl.yaml --snapshot DIR --output_dir DIR \\
        --model_name_or_path DPO_DIR --reward_model_path REWARD_DIR

Rewards, each a ``reward_funcs`` entry, weighted by ``reward_model_weight`` and ``tests_weight``:

- ``reward_model``: the reward stage's ``AutoModelForSequenceClassification``, scoring prompt + completion +
  EOS, the exact format RewardTrainer trained on (TRL's built-in reward-model path scores without EOS, which
  lost 0.95 -> 0.815 pair accuracy here; ``--reward_model_eos false`` gets that behaviour);
- ``tests``: 1.0 when the completion passes the prompt's unit tests in training.sandbox, 0.0 when not, and no
  reward (None, which TRL skips) for a prompt without tests. The snapshot's ``tests``, ``test_style`` and
  ``entry_point`` columns reach it as keyword arguments.
- ``examples`` (``examples_weight``, off by default): 1.0 when the completion passes the prompt's own docstring
  examples (training.doc_examples), 0.0 when not, None for a prompt without them.

Prompts end on a token boundary (training.boundary): the policy samples after the prompt's last non-blank
character, so its completions start with the trimmed newline, and the rewards see prompt + completion, the same
program. Small code models rarely emit EOS, so generation stops at the first stop sequence (a new top-level ``def``,
``class``, ``if`` ...) after the completion's first statement; such rows are filled with EOS, which TRL's
completion mask then ends at, and rewards see the text cut before the stop sequence.

result.json: {"algorithm", "train_prompts", "reward_curve" ([{"step", "reward"}]: the mean reward of each
logged step, from the trainer's log history), "mean_reward_first", "mean_reward_last" (the curve's first and last
points), "tests_pass_rate", "tokens_per_second", ...}.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from training import boundary, cli, data, interpolation, loading, reward_scoring, run_record, saving
from training.configs import OnlineRLArguments, prepare_training_args
from training.generate import StopAtNextStatement, truncate_at_stop

STAGE = "online_rl"
logger = logging.getLogger("training")


def make_parser(algorithm: str = "grpo"):
    from trl import GRPOConfig, ModelConfig, RLOOConfig, TrlParser

    config = {"grpo": GRPOConfig, "rloo": RLOOConfig}.get(algorithm)
    if config is None:
        raise ValueError(f"--algorithm must be grpo or rloo; got {algorithm!r}")
    return TrlParser((OnlineRLArguments, config, ModelConfig), prog=f"python -m training.{STAGE}")


class RewardModelScore:
    """A reward function backed by the trained reward model, scoring in the format it was trained on."""

    __name__ = "reward_model"

    def __init__(
        self,
        path: str,
        *,
        stops: Sequence[str],
        eos: bool = True,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 16,
        trust_remote_code: bool = False,
    ):
        self.model, self.tokenizer = reward_scoring.load_reward_model(
            path, device=device, dtype=dtype, trust_remote_code=trust_remote_code
        )
        self.stops = list(stops)
        self.eos = eos
        self.batch_size = batch_size

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        cut = [truncate_at_stop(c, self.stops) for c in completions]
        texts = reward_scoring.reward_texts(self.tokenizer, prompts, cut, eos=self.eos)
        return reward_scoring.score_texts(self.model, self.tokenizer, texts, batch_size=self.batch_size)


class DegeneratePenalty:
    """-1.0 for a completion the promotion gate would call degenerate (empty, unparseable with its prompt, a
    repetition loop: ``training.promotion_gate.degenerate_reason``), 0.0 otherwise: a format reward that reads
    neither tests nor labels. The completion is cut at the stop sequences first, as the sandbox runs it."""

    __name__ = "degenerate"

    def __init__(self, *, stops: Sequence[str]):
        self.stops = list(stops)

    def __call__(self, prompts, completions, test_style=None, **kwargs) -> list[float]:
        from training.promotion_gate import degenerate_reason

        styles = test_style or ["humaneval"] * len(completions)
        return [
            -1.0 if degenerate_reason(prompt, truncate_at_stop(text, self.stops), style or "humaneval") else 0.0
            for prompt, text, style in zip(prompts, completions, styles, strict=True)
        ]


class _SandboxReward:
    """A reward judged in the sandbox: the completion cut at the stop sequences, run under these limits."""

    def __init__(
        self, *, stops: Sequence[str], timeout: float = 10.0, memory_mb: int = 1024, workers: int | None = None
    ):
        self.stops = list(stops)
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.workers = workers
        self.runs = 0
        self.passes = 0
        self.weak = 0


class TestsPass(_SandboxReward):
    """1.0 when the completion passes the prompt's tests in the sandbox, 0.0 when not, None without tests.

    Only strong verdicts (judged outside the sandbox, ``training.sandbox.calls``) are rewards: a prompt whose
    tests would take the weak path gets None, like one without tests, and is not run, because a pass that the
    program can forge from inside its process would teach the policy the forgery (``self.weak`` counts them).
    """

    __name__ = "tests"

    def __call__(self, prompts, completions, tests=None, test_style=None, entry_point=None, **kwargs):
        from training.sandbox import SandboxJob, run_many, verdict_strength

        n = len(completions)
        tests = tests or [""] * n
        styles = test_style or ["none"] * n
        entry_points = entry_point or [""] * n
        jobs, where = [], []
        for i in range(n):
            if styles[i] == "none" or not (tests[i] or "").strip():
                continue
            if verdict_strength(tests=tests[i], style=styles[i], entry_point=entry_points[i] or "") != "strong":
                self.weak += 1
                continue
            jobs.append(
                SandboxJob(
                    prompt=prompts[i],
                    completion=truncate_at_stop(completions[i], self.stops),
                    tests=tests[i],
                    style=styles[i],
                    entry_point=entry_points[i] or "",
                    timeout=self.timeout,
                    memory_mb=self.memory_mb,
                )
            )
            where.append(i)
        rewards: list[float | None] = [None] * n
        for i, result in zip(where, run_many(jobs, workers=self.workers), strict=True):
            rewards[i] = 1.0 if result.passed else 0.0
            self.runs += 1
            self.passes += int(result.passed)
        return rewards


class ExamplesPass(_SandboxReward):
    """1.0 when the completion passes its prompt's own docstring examples in the sandbox, 0.0 when not, None for
    a prompt without examples the sandbox can judge strongly (training.doc_examples). The examples are in the
    prompt, so the policy can special-case them: a signal where a prompt has no tests, never the truth."""

    __name__ = "examples"

    def __call__(self, prompts, completions, **kwargs) -> list[float | None]:
        from training.doc_examples import examples_pass

        cut = [truncate_at_stop(c, self.stops) for c in completions]
        passed = examples_pass(prompts, cut, timeout=self.timeout, memory_mb=self.memory_mb, workers=self.workers)
        self.runs += sum(ok is not None for ok in passed)
        self.passes += sum(bool(ok) for ok in passed)
        return [None if ok is None else float(ok) for ok in passed]


def add_stop_rule(model, tokenizer, stops: Sequence[str], tails: dict[str, str] | None = None) -> None:
    """Make ``model.generate`` (which the trainers call with no stopping criteria of their own) stop each row at
    the first stop sequence after its first statement; with ``tails`` (trimmed prompt -> its trailing whitespace)
    each row first writes its prompt's trimmed whitespace, as generation on the platform does."""
    from transformers import LogitsProcessorList, StoppingCriteriaList

    original = model.generate

    def generate(*args, **kwargs):
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        criteria = StoppingCriteriaList(list(kwargs.pop("stopping_criteria", None) or []))
        criteria.append(StopAtNextStatement(tokenizer, input_ids.shape[1], stops))
        processors = LogitsProcessorList(list(kwargs.pop("logits_processor", None) or []))
        if tails:
            prompts = tokenizer.batch_decode(input_ids, skip_special_tokens=True)
            required = [tails.get(prompt, "") for prompt in prompts]
            processors.append(boundary.StartsWith(tokenizer, input_ids.shape[1], required))
        return original(*args, stopping_criteria=criteria, logits_processor=processors, **kwargs)

    model.generate = generate


def run(script_args: OnlineRLArguments, training_args, model_args) -> dict:
    from trl import GRPOTrainer, RLOOTrainer, get_peft_config

    if not model_args.model_name_or_path:
        raise ValueError("--model_name_or_path is required: the policy folder to start from (the DPO stage's output)")
    prepare_training_args(training_args, model_args)
    with run_record.StageRun(
        STAGE, training_args.output_dir, arguments=[script_args, training_args, model_args], seed=training_args.seed
    ) as record:
        rows, tails = _trimmed_prompts(script_args)
        trust = bool(getattr(training_args, "trust_remote_code", False))
        reward_funcs, weights, tests_reward = _reward_functions(
            script_args, rows, device=str(training_args.device), dtype=model_args.dtype, trust_remote_code=trust
        )
        training_args.reward_weights = weights
        tokenizer = _policy_tokenizer(model_args.model_name_or_path, trust_remote_code=trust)
        # Rows stopped by the stop rule are filled with EOS, where TRL's completion mask ends them.
        training_args.generation_kwargs = {
            **(training_args.generation_kwargs or {}),
            "pad_token_id": tokenizer.eos_token_id,
        }

        trainer_class = GRPOTrainer if script_args.algorithm == "grpo" else RLOOTrainer
        columns = ("prompt", "tests", "test_style", "entry_point")
        trainer = trainer_class(
            model=model_args.model_name_or_path,
            reward_funcs=reward_funcs,
            args=training_args,
            train_dataset=data.to_dataset(rows, columns),
            processing_class=tokenizer,
            peft_config=get_peft_config(model_args),
            callbacks=[record.callback()],
        )
        add_stop_rule(trainer.model, tokenizer, script_args.stop_sequences, tails)
        output = trainer.train()
        saving.save_model(trainer, training_args.output_dir, dtype=model_args.dtype)

        curve = reward_curve(trainer.state.log_history)
        result = {
            "algorithm": script_args.algorithm,
            "train_prompts": len(rows),
            "reward_functions": [f.__name__ for f in reward_funcs],
            "reward_weights": weights,
            "reward_curve": curve,
            # The mean reward of the first and the last LOGGED step of the curve (each a different batch of
            # prompts, so their difference mixes learning with prompt difficulty: read the whole curve).
            "mean_reward_first": curve[0]["reward"] if curve else None,
            "mean_reward_last": curve[-1]["reward"] if curve else None,
            "tests_runs": tests_reward.runs if tests_reward else 0,
            "tests_weak_skipped": tests_reward.weak if tests_reward else 0,  # no reward: forgeable verdicts
            "tests_pass_rate": (tests_reward.passes / tests_reward.runs)
            if tests_reward and tests_reward.runs
            else None,
            **run_record.throughput(trainer, output),
            **interpolation.after_training(script_args, training_args),
        }
        record.write_result(result)
    return result


def reward_curve(log_history: Sequence[dict]) -> list[dict]:
    """[{"step", "reward"}] for every logged training step with a mean reward, in step order."""
    curve = [
        {"step": int(entry["step"]), "reward": float(entry["reward"])}
        for entry in log_history
        if isinstance(entry.get("reward"), int | float) and isinstance(entry.get("step"), int)
    ]
    return sorted(curve, key=lambda point: point["step"])


def _trimmed_prompts(script_args: OnlineRLArguments) -> tuple[list[dict], dict[str, str]]:
    """The training prompts, each cut at its trailing whitespace, and for each cut prompt the whitespace the
    policy must write first (so that prompts end on a token boundary)."""
    snapshot = data.open_snapshot(script_args.snapshot)
    rows = data.prompt_rows(
        snapshot, "train", with_tests_only=script_args.prompts_with_tests_only, max_rows=script_args.max_train_rows
    )
    if not rows:
        raise data.SnapshotError(f"{snapshot.file('prompts', 'train')}: no prompts to sample completions for")
    tails: dict[str, str] = {}
    for row in rows:
        head, tail = boundary.split_prompt(row["prompt"])
        row["prompt"], tails[head] = head, tail
    return rows, tails


def _reward_functions(
    script_args: OnlineRLArguments,
    rows: list[dict],
    *,
    device: str,
    dtype: str | None,
    trust_remote_code: bool = False,
) -> tuple[list, list[float], TestsPass | None]:
    """The reward functions with their weights, and the tests reward (for its pass counts) if there is one."""
    reward_funcs: list = []
    weights: list[float] = []
    if script_args.reward_model_path and script_args.reward_model_weight > 0:
        reward_funcs.append(
            RewardModelScore(
                script_args.reward_model_path,
                stops=script_args.stop_sequences,
                eos=script_args.reward_model_eos,
                device=device,
                dtype=dtype,
                trust_remote_code=trust_remote_code,
            )
        )
        weights.append(script_args.reward_model_weight)
    tests_reward = None
    if any(r["test_style"] != "none" for r in rows) and script_args.tests_weight > 0:
        tests_reward = TestsPass(
            stops=script_args.stop_sequences,
            timeout=script_args.sandbox_timeout,
            memory_mb=script_args.sandbox_memory_mb,
            workers=script_args.sandbox_workers,
        )
        reward_funcs.append(tests_reward)
        weights.append(script_args.tests_weight)
    if script_args.examples_weight > 0:
        from training.doc_examples import example_tests

        if any(example_tests(r["prompt"]) for r in rows):
            reward_funcs.append(
                ExamplesPass(
                    stops=script_args.stop_sequences,
                    timeout=script_args.sandbox_timeout,
                    memory_mb=script_args.sandbox_memory_mb,
                    workers=script_args.sandbox_workers,
                )
            )
            weights.append(script_args.examples_weight)
        else:
            logger.warning("online_rl: --examples_weight is set but no prompt has docstring examples to check")
    if not reward_funcs:
        raise ValueError(
            "online RL needs a reward: give --reward_model_path (the reward stage's folder) or prompts with tests"
        )
    if script_args.degenerate_weight > 0:  # a shaping term beside a reward, never the reward alone
        reward_funcs.append(DegeneratePenalty(stops=script_args.stop_sequences))
        weights.append(script_args.degenerate_weight)
    return reward_funcs, weights, tests_reward


def _policy_tokenizer(path: str, *, trust_remote_code: bool = False):
    tokenizer = loading.tokenizer(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def main(argv: Sequence[str] | None = None) -> dict:
    cli.setup_logging()
    algorithm = cli.peek_option(argv, "algorithm", "grpo")
    parser = make_parser(algorithm if algorithm in ("grpo", "rloo") else "grpo")
    script_args, training_args, model_args = cli.parse(parser, argv)
    return run(script_args, training_args, model_args)


if __name__ == "__main__":
    main()
