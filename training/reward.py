"""Reward model: TRL's RewardTrainer on the snapshot's preference pairs (Bradley-Terry loss).

The model is the policy's backbone with a one-output sequence-classification head
(``AutoModelForSequenceClassification``: Llama, GPTBigCode and MPT all have one in transformers 5).

    python -m training.reward --config training/recipes/tiny/reward.yaml --snapshot DIR --output_dir DIR \\
        --model_name_or_path DIR

Held-out accuracy is the share of preference/test.jsonl pairs where chosen scores strictly above rejected,
scored from the saved folder in exactly the format RewardTrainer trained on (prompt + completion + EOS, see
``training.reward_scoring.reward_texts``), before training (the freshly initialised head: a random baseline; with
--init_model_path, the reward model it starts from) and after. RewardTrainer DROPS pairs longer than max_length
tokens (it does not truncate them): they are counted per split before training, logged as a WARNING and reported;
over-long held-out pairs are left out of the accuracies.
With --examples_weight W the result also holds the *grounded* reward's held-out accuracy (the learned score plus W
for a completion that passes its prompt's own docstring examples in the sandbox, training.doc_examples), before
and after, and how many held-out pairs the examples decided on their own.
result.json: {"heldout_accuracy", "heldout_accuracy_before", "heldout_margin", "heldout_margin_before",
"heldout_pairs", "heldout_accuracy_grounded", "heldout_accuracy_grounded_before", "heldout_examples_decided",
"heldout_accuracy_examples_alone", "dropped_too_long", "dropped_too_long_by_split", "train_pairs",
"reference_pairs" (added by --reference_pairs, see training.data.reference_pairs), "init_model_path",
"tokens_per_second", ...}.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from training import cli, data, reward_scoring, run_record, saving
from training.configs import RewardArguments, prepare_training_args

STAGE = "reward"
logger = logging.getLogger("training")


def make_parser():
    from trl import ModelConfig, RewardConfig, TrlParser

    return TrlParser((RewardArguments, RewardConfig, ModelConfig), prog=f"python -m training.{STAGE}")


def run(script_args: RewardArguments, training_args, model_args) -> dict:
    from trl import RewardTrainer, get_peft_config

    if not model_args.model_name_or_path:
        raise ValueError("--model_name_or_path is required: the policy folder (or hub id) whose backbone is scored")
    if model_args.use_peft and model_args.lora_task_type == "CAUSAL_LM":
        model_args.lora_task_type = "SEQ_CLS"  # so that peft trains and saves the new score head too
    prepare_training_args(training_args, model_args)
    with run_record.StageRun(
        STAGE, training_args.output_dir, arguments=[script_args, training_args, model_args], seed=training_args.seed
    ) as record:
        snapshot = data.open_snapshot(script_args.snapshot)
        columns = data.TRAINER_PREFERENCE_COLUMNS + (("margin",) if script_args.use_vote_margin else ())
        train_rows = data.preference_rows(
            snapshot, "train", max_rows=script_args.max_train_rows, with_margin=script_args.use_vote_margin
        )
        reference = data.reference_pairs(snapshot, "train") if script_args.reference_pairs else []
        train_rows += [{**row, "margin": 1.0} if script_args.use_vote_margin else row for row in reference]
        test_rows = data.preference_rows(snapshot, "test", max_rows=script_args.max_eval_rows)
        if not train_rows:
            raise data.SnapshotError(f"{snapshot.file('preference', 'train')}: no preference pairs to train on")
        trainer = RewardTrainer(
            model=start_model(script_args, model_args),
            args=training_args,
            train_dataset=data.to_dataset(train_rows, columns),
            peft_config=get_peft_config(model_args),
            callbacks=[record.callback()],
        )
        kept = len(trainer.train_dataset)
        dropped, test_rows = drop_too_long(trainer.processing_class, train_rows, test_rows, training_args.max_length)
        grounding = Grounding(script_args.examples_weight, test_rows)
        before = None
        if script_args.eval_before_training and test_rows and run_record.world_size() == 1:
            # One process only: under ZeRO-3 the weights are already sharded across ranks here.
            before = heldout(trainer.model, trainer.processing_class, test_rows, grounding)
        output = trainer.train()
        saving.save_model(trainer, training_args.output_dir, task="reward", dtype=model_args.dtype)
        result = {
            "train_pairs": kept,
            "reference_pairs": len(reference),
            "init_model_path": script_args.init_model_path,
            "dropped_pairs": len(train_rows) - kept,  # what the trainer dropped: dropped_too_long["train"]
            "dropped_too_long": sum(dropped.values()),
            "dropped_too_long_by_split": dropped,
        }
        if run_record.is_main_process():
            result.update(
                _heldout_after_training(record, trainer, training_args, model_args, test_rows, before, grounding)
            )
        result.update(run_record.throughput(trainer, output))
        record.write_result(result)
    return result


def start_model(script_args: RewardArguments, model_args) -> str:
    """What RewardTrainer starts from: --init_model_path (a reward model trained before) when given, else the
    policy's backbone with a new one-output head. A local path that is not a folder is refused by name."""
    init = script_args.init_model_path
    if not init:
        return model_args.model_name_or_path
    folder = Path(init).expanduser()
    if not (folder.exists() or init.startswith((".", "/", "~"))):
        return init  # a hub id
    if not (folder / "config.json").is_file():
        raise ValueError(f"--init_model_path {init}: no model folder there (config.json missing)")
    return str(folder)


class Grounding:
    """``--examples_weight`` and the held-out rows' example outcomes, run in the sandbox once (on first use) for
    the before and after scores: they depend on the completions, not on the model."""

    def __init__(self, weight: float, rows: list[dict]):
        self.weight = weight
        self.rows = rows
        self._outcomes: tuple[list, list] | None = None

    def kwargs(self) -> dict:
        if self.weight <= 0:
            return {}
        if self._outcomes is None:
            self._outcomes = reward_scoring.examples_outcomes(self.rows)
        return {"examples_weight": self.weight, "examples": self._outcomes}


def _heldout_after_training(
    record, trainer, training_args, model_args, test_rows, before: dict | None, grounding: Grounding
) -> dict:
    """The held-out accuracy and margin of the saved model (scored as RewardTrainer trained on), logged as eval
    metrics at the trainer's last step, beside ``before``'s (the untrained head's, None when not measured); with
    ``examples_weight``, the grounded reward's too (training.doc_examples)."""
    model, tokenizer = reward_scoring.load_reward_model(
        training_args.output_dir,
        dtype=model_args.dtype,
        trust_remote_code=bool(getattr(training_args, "trust_remote_code", False)),
    )
    after = reward_scoring.pair_accuracy(model, tokenizer, test_rows, **grounding.kwargs())
    record.log_metrics(
        {"eval_accuracy": after["accuracy"], "eval_margin": after["mean_margin"]},
        step=trainer.state.global_step,
    )
    result = {
        "heldout_accuracy": after["accuracy"],
        "heldout_accuracy_before": before["accuracy"] if before else None,
        "heldout_margin_before": before["mean_margin"] if before else None,
        "heldout_pairs": after["pairs"],
        "heldout_margin": after["mean_margin"],
    }
    if grounding.weight > 0:
        result.update(
            {
                "examples_weight": grounding.weight,
                "heldout_accuracy_grounded": after["grounded_accuracy"],
                "heldout_accuracy_grounded_before": before.get("grounded_accuracy") if before else None,
                "heldout_examples_pairs": after["examples_pairs"],
                "heldout_examples_decided": after["examples_decided"],
                # what the examples decide on their own (0.5 for a pair they cannot tell): the learned model's
                # part in the grounded figure is the difference
                "heldout_accuracy_examples_alone": after["examples_accuracy"],
            }
        )
    return result


def drop_too_long(tokenizer, train_rows, test_rows, max_length) -> tuple[dict[str, int], list[dict]]:
    """({split: pairs over max_length}, the held-out pairs within it), with a WARNING when any are dropped.

    RewardTrainer drops (does not truncate) such pairs from training: say so loudly, it changes the data.
    Held-out pairs over the limit are left out of the accuracies too: the model never sees such lengths."""
    train_long = too_long(tokenizer, train_rows, max_length)
    test_long = set(too_long(tokenizer, test_rows, max_length))
    dropped = {"train": len(train_long), "test": len(test_long)}
    if train_long or test_long:
        logger.warning(
            "reward: pairs longer than max_length=%s tokens are DROPPED: %d of %d training pairs, "
            "%d of %d held-out pairs",
            max_length,
            len(train_long),
            len(train_rows),
            len(test_long),
            len(test_rows),
        )
    return dropped, [row for i, row in enumerate(test_rows) if i not in test_long]


def too_long(tokenizer, rows, max_length: int | None) -> list[int]:
    """Indices of the pairs RewardTrainer drops: prompt + chosen (or rejected) + EOS over max_length tokens."""
    if not max_length:
        return []
    indices = []
    for i, row in enumerate(rows):
        texts = reward_scoring.reward_texts(tokenizer, [row["prompt"]] * 2, [row["chosen"], row["rejected"]])
        if any(len(tokenizer(text=t)["input_ids"]) > max_length for t in texts):
            indices.append(i)
    return indices


def heldout(model, tokenizer, rows, grounding: Grounding | None = None) -> dict:
    """Pair accuracy of an in-memory model (the untrained head, before training)."""
    was_training = model.training
    model.eval()
    try:
        return reward_scoring.pair_accuracy(model, tokenizer, rows, **(grounding.kwargs() if grounding else {}))
    finally:
        model.train(was_training)


def main(argv: Sequence[str] | None = None) -> dict:
    cli.setup_logging()
    script_args, training_args, model_args = cli.parse(make_parser(), argv)
    return run(script_args, training_args, model_args)


if __name__ == "__main__":
    main()
