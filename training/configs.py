"""The stages' own arguments, as dataclasses that ``trl.TrlParser`` turns into flags.

Each stage parses its own dataclass below together with TRL's trainer config (``DPOConfig``, ``RewardConfig``,
``GRPOConfig`` / ``RLOOConfig``, ``SFTConfig``) and TRL's ``ModelConfig`` (``--model_name_or_path``, ``--dtype``,
``--use_peft``, ``--lora_r``, ...), exactly as TRL's own scripts do. A YAML recipe given with ``--config`` sets
the defaults and flags override it::

    python -m training.dpo --config training/recipes/tiny/dpo.yaml --snapshot DIR --output_dir DIR \\
        --model_name_or_path DIR --max_steps 10

The field names here must not repeat a field of TrainingArguments or ModelConfig (the parser would refuse).
After parsing, ``prepare_training_args`` fills in what TRL's scripts fill in from ModelConfig.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from training.generate import DEFAULT_STOP
from training.interpolation import MERGE_EXAMPLE, check_weight, merge_weights
from training.run_record import METRICS

logger = logging.getLogger("training")

STAGES = ("sft", "reward", "dpo", "online_rl", "evaluate")
ALGORITHMS = ("grpo", "rloo")


def _check_positive(name: str, value: int | float | None, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if value is None or value <= 0:
        raise ValueError(f"--{name} must be a positive number; got {value!r}")


def _check_stops(stops) -> list[str]:
    if isinstance(stops, str):
        stops = [stops]
    if not isinstance(stops, (list, tuple)) or not all(isinstance(s, str) and s for s in stops):
        raise ValueError(
            "--stop_sequences must be a list of non-empty strings, e.g. ['\\ndef ', '\\nclass ', '\\nif ']; "
            f"got {stops!r}"
        )
    return list(stops)


@dataclass
class SnapshotArguments:
    """Where the data comes from: a snapshot folder written by the platform's exporter."""

    snapshot: str | None = field(
        default=None,
        metadata={
            "help": "Snapshot folder: manifest.json, preference/{train,test}.jsonl (prompt, chosen, rejected), "
            "prompts/{train,test}.jsonl (prompt, tests, test_style, entry_point, reference_solution). Required."
        },
    )
    max_train_rows: int | None = field(
        default=None, metadata={"help": "Use at most this many training rows (all when unset)."}
    )
    max_eval_rows: int | None = field(
        default=None, metadata={"help": "Use at most this many held-out rows (all when unset)."}
    )

    def __post_init__(self):
        if not self.snapshot:
            raise ValueError(
                "--snapshot is required: a snapshot folder with preference/train.jsonl (columns prompt, chosen, "
                "rejected) and prompts/{train,test}.jsonl"
            )
        _check_positive("max_train_rows", self.max_train_rows)
        _check_positive("max_eval_rows", self.max_eval_rows)


@dataclass
class PolicyArguments(SnapshotArguments):
    """What every policy stage (sft, dpo, online_rl) takes beside its data."""

    interpolate_with: str | None = field(
        default=None,
        metadata={
            "help": "A model folder or hub id of the same architecture (the training cycle passes its parent): the "
            "saved weights become --interpolation_weight x the trained ones + the rest x this model's "
            "(training.interpolation, WiSE-FT). Unset: the trained weights as they are."
        },
    )
    interpolation_weight: float = field(
        default=0.5, metadata={"help": "The trained weights' share with --interpolate_with, in (0, 1]."}
    )
    interpolated_output_dir: str | None = field(
        default=None,
        metadata={
            "help": "With --interpolate_with: save the mix to this folder and keep the trained weights in "
            "--output_dir. Unset: the mix replaces the trained weights in --output_dir."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        check_weight(self.interpolation_weight)
        if self.interpolated_output_dir and not self.interpolate_with:
            raise ValueError("--interpolated_output_dir needs --interpolate_with (the model to mix with)")


@dataclass
class SFTArguments(PolicyArguments):
    include_chosen: bool = field(
        default=True, metadata={"help": "Train on the volunteers' chosen completions (preference/train.jsonl)."}
    )
    include_reference_solutions: bool = field(
        default=True, metadata={"help": "Train on the prompts' reference solutions (prompts/train.jsonl)."}
    )
    skip_failed_chosen: bool = field(
        default=True,
        metadata={
            "help": "Leave out chosen completions whose tests failed (the row's chosen_outcome: failed, error or "
            "timeout). A volunteer may rightly prefer the better of two broken completions: the reward model and "
            "DPO learn that comparison, but SFT would imitate the broken one as if it were right."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if not (self.include_chosen or self.include_reference_solutions):
            raise ValueError("SFT needs data: set --include_chosen or --include_reference_solutions (or both)")


@dataclass
class RewardArguments(SnapshotArguments):
    use_vote_margin: bool = field(
        default=False,
        metadata={
            "help": "Pass the snapshot's margin column to RewardTrainer, which then asks chosen to beat rejected "
            "by at least that much."
        },
    )
    eval_before_training: bool = field(
        default=True,
        metadata={"help": "Also measure held-out accuracy of the untrained head, as a baseline in result.json."},
    )
    reference_pairs: bool = field(
        default=False,
        metadata={
            "help": "Also train on each prompt's reference solution (prompts/train.jsonl) against each exported "
            "completion whose tests failed: test-decided pairs no one had to vote on (training.data.reference_pairs)."
        },
    )
    init_model_path: str | None = field(
        default=None,
        metadata={
            "help": "Start from this reward model (a folder the reward stage saved, or a hub id of a sequence-"
            "classification model) instead of a fresh head on --model_name_or_path's backbone: a warm start, e.g. "
            "from a reward model trained on many more test-decided pairs. Its tokenizer is the one it scores with."
        },
    )
    examples_weight: float = field(
        default=0.0,
        metadata={
            "help": "Also report the held-out accuracy of the grounded reward: the learned score plus this weight "
            "for a completion that passes its prompt's own docstring examples in the sandbox "
            "(training.doc_examples). The learned model's accuracy is reported alone as before. 0: off."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if self.examples_weight < 0:
            raise ValueError("--examples_weight must be >= 0")


@dataclass
class DPOArguments(PolicyArguments):
    ref_model_path: str | None = field(
        default=None,
        metadata={
            "help": "Reference model folder or hub id. Unset: the starting policy itself (TRL reloads it from "
            "--model_name_or_path), or with --use_peft the policy with its adapter switched off."
        },
    )


@dataclass
class OnlineRLArguments(PolicyArguments):
    algorithm: str = field(
        default="grpo",
        metadata={
            "help": "grpo (GRPOTrainer: PPO's clipped objective, group-relative advantages, no value model) or "
            "rloo (RLOOTrainer: REINFORCE with a leave-one-out baseline).",
            "choices": list(ALGORITHMS),
        },
    )
    reward_model_path: str | None = field(
        default=None,
        metadata={"help": "Folder of the reward model trained by the reward stage (unset: tests-only reward)."},
    )
    reward_model_weight: float = field(default=1.0, metadata={"help": "Weight of the reward model's score."})
    tests_weight: float = field(
        default=1.0,
        metadata={"help": "Weight of the unit-test reward (1 passed, 0 otherwise) where a prompt has tests."},
    )
    degenerate_weight: float = field(
        default=0.0,
        metadata={
            "help": "Weight of a format penalty: -1 for a completion the promotion gate calls degenerate (empty, "
            "not parseable with its prompt, or a repetition loop; training.promotion_gate.degenerate_reason), "
            "0 otherwise. It needs no tests and no labels. 0: off."
        },
    )
    examples_weight: float = field(
        default=0.0,
        metadata={
            "help": "Weight of the examples reward: 1 when the completion passes its prompt's own docstring examples "
            "(training.doc_examples, judged in the sandbox), 0 when not, none for a prompt without them. A signal "
            "for prompts without tests; the examples are visible to the policy, so it can special-case them. 0: off."
        },
    )
    reward_model_eos: bool = field(
        default=True,
        metadata={
            "help": "Score prompt + completion + EOS, the format RewardTrainer trained on. false scores without EOS, "
            "as TRL's built-in reward-model path does (measured here: 0.95 vs 0.815 pair accuracy)."
        },
    )
    stop_sequences: list[str] = field(
        default_factory=lambda: list(DEFAULT_STOP),
        metadata={
            "help": "Generation stops at the first of these after the completion's first statement (small code "
            "models rarely emit EOS); the rest of the text is cut before rewards are computed."
        },
    )
    sandbox_timeout: float = field(default=10.0, metadata={"help": "Seconds a test program may run."})
    sandbox_memory_mb: int = field(default=1024, metadata={"help": "Memory limit of a test program, in MB."})
    sandbox_workers: int | None = field(default=None, metadata={"help": "Test programs run at once (default: CPUs)."})
    prompts_with_tests_only: bool = field(
        default=False, metadata={"help": "Train only on prompts that have tests (the reward model scores the rest)."}
    )

    def __post_init__(self):
        super().__post_init__()
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"--algorithm must be one of {', '.join(ALGORITHMS)}; got {self.algorithm!r}")
        self.stop_sequences = _check_stops(self.stop_sequences)
        _check_positive("sandbox_timeout", self.sandbox_timeout, allow_none=False)
        _check_positive("sandbox_memory_mb", self.sandbox_memory_mb, allow_none=False)
        _check_positive("sandbox_workers", self.sandbox_workers)
        for name in ("reward_model_weight", "tests_weight", "degenerate_weight", "examples_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must be >= 0; got {getattr(self, name)}")


@dataclass
class EvaluateArguments(SnapshotArguments):
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "The new policy: a model folder (the last trained stage's output). Required."}
    )
    parent_model_path: str | None = field(
        default=None, metadata={"help": "The policy it was trained from, evaluated side by side (optional)."}
    )
    candidate_model_paths: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Other models of the cycle offered instead of the policy (e.g. its DPO model): each is sampled "
            "like the policy, the one passing most becomes the evaluated policy, and the promotion gate divides "
            "its alpha by the number of candidates (training.promotion_gate)."
        },
    )
    reward_model_path: str | None = field(
        default=None, metadata={"help": "Reward model folder: its held-out pair accuracy is reported (optional)."}
    )
    output_dir: str | None = field(default=None, metadata={"help": "Where eval.json and result.json go. Required."})
    split: str = field(
        default="test", metadata={"help": "Snapshot split to evaluate on.", "choices": ["train", "test"]}
    )
    prompts_file: str | None = field(
        default=None,
        metadata={
            "help": "A JSON-lines file of prompts evaluated instead of the snapshot's split: a fixed held-out set "
            "kept out of every snapshot (the snapshot's prompts schema, or HumanEval's: task_id, prompt, test, "
            "entry_point; e.g. `python -m training.ladder --split heldout`)."
        },
    )
    n_samples: int = field(default=4, metadata={"help": "Completions sampled per prompt (n in pass@k)."})
    pass_k: list[int] = field(
        default_factory=lambda: [1], metadata={"help": "The k values of pass@k to report, each <= n_samples."}
    )
    max_prompts: int | None = field(default=None, metadata={"help": "Evaluate at most this many prompts with tests."})
    temperature: float = field(default=0.8, metadata={"help": "Sampling temperature (0: greedy, then n_samples=1)."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling threshold."})
    max_new_tokens: int = field(default=128, metadata={"help": "Most tokens generated per completion."})
    batch_size: int = field(default=8, metadata={"help": "Prompts per generation batch."})
    stop_sequences: list[str] = field(
        default_factory=lambda: list(DEFAULT_STOP),
        metadata={"help": "Completions are cut at the first of these after their first statement."},
    )
    sandbox_timeout: float = field(default=10.0, metadata={"help": "Seconds a test program may run."})
    sandbox_memory_mb: int = field(default=1024, metadata={"help": "Memory limit of a test program, in MB."})
    sandbox_workers: int | None = field(default=None, metadata={"help": "Test programs run at once (default: CPUs)."})
    seed: int = field(default=42, metadata={"help": "Seed of the sampling."})
    prompt_prefix: str = field(
        default="",
        metadata={
            "help": "Text put before every prompt (not part of the program that is tested), e.g. StarCoder's "
            "published HumanEval prefix; see docs/training.md."
        },
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={"help": "Run the checkpoints' own modelling code (auto_map), e.g. Replit Code V1. Off by default."},
    )

    def __post_init__(self):
        super().__post_init__()
        if not self.model_name_or_path:
            raise ValueError("--model_name_or_path is required: the folder of the policy to evaluate")
        if not self.output_dir:
            raise ValueError("--output_dir is required: the folder that receives eval.json and result.json")
        _check_positive("n_samples", self.n_samples, allow_none=False)
        _check_positive("max_prompts", self.max_prompts)
        _check_positive("max_new_tokens", self.max_new_tokens, allow_none=False)
        _check_positive("batch_size", self.batch_size, allow_none=False)
        if isinstance(self.pass_k, int):
            self.pass_k = [self.pass_k]
        if not self.pass_k or any(not isinstance(k, int) or k < 1 or k > self.n_samples for k in self.pass_k):
            raise ValueError(
                f"--pass_k must be a list of integers between 1 and --n_samples ({self.n_samples}); "
                f"got {self.pass_k!r}"
            )
        if self.temperature < 0:
            raise ValueError(f"--temperature must be >= 0; got {self.temperature}")
        if self.temperature == 0 and self.n_samples > 1:
            raise ValueError("--temperature 0 is greedy: every sample would be the same; use --n_samples 1")
        self.stop_sequences = _check_stops(self.stop_sequences)


@dataclass
class PipelineArguments:
    """The stages in order, each as its own process; see docs/training.md for the output layout."""

    snapshot: str | None = field(default=None, metadata={"help": "Snapshot folder (see training.data). Required."})
    output_dir: str | None = field(
        default=None, metadata={"help": "Run folder: one subfolder per stage, summary.json, run_info.json. Required."}
    )
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "The parent policy: a model folder or hub id that the cycle starts from. Required."},
    )
    recipe: str = field(
        default="training/recipes/tiny",
        metadata={"help": "Folder of the stage recipes (<stage>.yaml each), e.g. training/recipes/base."},
    )
    stages: list[str] = field(
        default_factory=lambda: list(STAGES),
        metadata={"help": f"Stages to run, in this order; a subset of {', '.join(STAGES)}."},
    )
    launcher: str = field(
        default="",
        metadata={
            "help": "Command that starts a training stage and takes `-m <module>`: empty for this Python, or e.g. "
            "'accelerate launch --config_file training/recipes/accelerate/zero2.yaml', 'torchrun --nproc_per_node 2'. "
            "evaluate always runs as one plain process."
        },
    )
    select_from: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Trained stages whose models the evaluate stage offers beside the last one's (e.g. dpo): the "
            "one that passes most on its prompts becomes the cycle's policy, judged by the gate at alpha / "
            "the number of candidates."
        },
    )
    merge_with_parent: dict | str | None = field(
        default=None,
        metadata={
            "help": "Policy stages whose saved model is moved part of the way back to the parent, with the trained "
            'weights\' share: {"dpo": 0.5} (training.interpolation, WiSE-FT). The next stage starts from, and the '
            "evaluate stage samples, the interpolated model (but see merge_beside)."
        },
    )
    merge_beside: bool = field(
        default=False,
        metadata={
            "help": "With merge_with_parent: save each mix beside its stage's folder, as <output_dir>/<stage>_merged, "
            "and let the next stage start from the trained weights; select_from then names the mix as "
            "<stage>_merged (e.g. [dpo_merged])."
        },
    )
    stage_args: dict | str | None = field(
        default=None,
        metadata={"help": 'Extra flags per stage, as a mapping (YAML) or JSON: {"dpo": ["--max_steps", "20"]}.'},
    )
    stage_timeout: int | None = field(
        default=None, metadata={"help": "Seconds a stage may run before it is stopped and the pipeline fails."}
    )
    seed: int | None = field(
        default=None, metadata={"help": "Passed to every stage as --seed (unset: recipes decide)."}
    )
    prompt_prefix: str = field(
        default="", metadata={"help": "Passed to the evaluate stage: text put before every prompt sampled."}
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={
            "help": "Passed to every stage: run the checkpoints' own modelling code (auto_map), e.g. Replit Code "
            "V1. Off by default; turn it on only for a repository you trust."
        },
    )

    def __post_init__(self):
        for name in ("snapshot", "output_dir", "model_name_or_path"):
            if not getattr(self, name):
                raise ValueError(f"--{name} is required")
        if isinstance(self.stages, str):
            self.stages = [s.strip() for s in self.stages.split(",") if s.strip()]
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown or not self.stages:
            raise ValueError(f"--stages must name some of {', '.join(STAGES)} (in order); got {self.stages!r}")
        order = [STAGES.index(s) for s in self.stages]
        if order != sorted(set(order)):
            raise ValueError(f"--stages must keep the order {', '.join(STAGES)} without repeats; got {self.stages!r}")
        self.stage_args = _from_json(self.stage_args, "stage_args", '{"dpo": ["--max_steps", "20"]}')
        if self.stage_args is not None:
            if not isinstance(self.stage_args, dict) or any(
                s not in STAGES or not isinstance(v, list) for s, v in self.stage_args.items()
            ):
                raise ValueError(
                    '--stage_args must map stage names to lists of flags, e.g. {"dpo": ["--max_steps", "20"]}; '
                    f"got {self.stage_args!r}"
                )
            self.stage_args = {s: [str(x) for x in v] for s, v in self.stage_args.items()}
        _check_positive("stage_timeout", self.stage_timeout)
        merge = _from_json(self.merge_with_parent, "merge_with_parent", MERGE_EXAMPLE)
        self.merge_with_parent = merge_weights(merge, self.stages, beside=self.merge_beside)


def _from_json(value, name: str, example: str):
    """A mapping flag given on the command line as JSON text (a YAML recipe gives it parsed): the parsed value,
    None for an empty string, a usage error naming the flag for bad JSON."""
    import json

    if not isinstance(value, str):
        return value
    try:
        return json.loads(value) if value.strip() else None
    except json.JSONDecodeError as exc:
        raise ValueError(f"--{name} must be JSON like {example}: {exc}") from exc


def prepare_training_args(training_args, model_args=None) -> None:
    """Fill in what TRL's scripts fill in from ModelConfig, and keep TensorBoard only where it is installed.

    TRL's defaults assume a GPU (bf16, activation checkpointing): the recipes say what they want; here we only
    refuse the combinations that cannot work, with a message rather than a stack trace from deep inside.
    """
    if model_args is not None:
        init = {
            "revision": model_args.model_revision,
            "dtype": model_args.dtype,
            "attn_implementation": model_args.attn_implementation,
        }
        init = {key: value for key, value in init.items() if value is not None}
        if model_args.load_in_4bit or model_args.load_in_8bit:
            # QLoRA as TRL's own scripts do it: bitsandbytes weights, placed on this process's GPU at load time
            # (never a full-precision copy in CPU memory first).
            from accelerate import PartialState
            from trl import get_quantization_config

            init["quantization_config"] = get_quantization_config(model_args)
            init["device_map"] = {"": PartialState().local_process_index}
        if getattr(training_args, "model_init_kwargs", None):
            init.update(training_args.model_init_kwargs)
        # TRL passes the flag to the policy, reference and tokenizer it loads; the stages' own loaders
        # (training/loading.py) read it from here.
        init["trust_remote_code"] = bool(getattr(training_args, "trust_remote_code", False))
        if hasattr(training_args, "model_init_kwargs"):
            training_args.model_init_kwargs = init
    report_to = list(training_args.report_to or [])
    if "tensorboard" in report_to:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            try:
                import tensorboardX  # noqa: F401
            except ImportError:
                logger.info("TensorBoard is not installed: metrics go to %s only", METRICS)
                report_to.remove("tensorboard")
    training_args.report_to = report_to
