"""SFT (optional first stage): supervised fine-tuning on chosen completions and reference solutions.

A weak base model passes almost no tests, so on-policy RL gets no signal from them; a short SFT on code that is
known to be good gives it some. Prompt-completion data, so the loss is on the completion only (TRL's default).

    python -m training.sft --config training/recipes/tiny/sft.yaml --snapshot DIR --output_dir DIR \\
        --model_name_or_path DIR

Writes a model folder to --output_dir, with metrics.jsonl, loss.png, run_info.json and result.json
({"train_examples", "train_loss", "tokens_per_second", ...}).
"""

from __future__ import annotations

from collections.abc import Sequence

from training import cli, data, interpolation, run_record, saving
from training.configs import SFTArguments, prepare_training_args

STAGE = "sft"


def make_parser():
    from trl import ModelConfig, SFTConfig, TrlParser

    return TrlParser((SFTArguments, SFTConfig, ModelConfig), prog=f"python -m training.{STAGE}")


def run(script_args: SFTArguments, training_args, model_args) -> dict:
    from trl import SFTTrainer, get_peft_config

    if not model_args.model_name_or_path:
        raise ValueError("--model_name_or_path is required: the folder (or hub id) of the policy to fine-tune")
    prepare_training_args(training_args, model_args)
    with run_record.StageRun(
        STAGE, training_args.output_dir, arguments=[script_args, training_args, model_args], seed=training_args.seed
    ) as record:
        snapshot = data.open_snapshot(script_args.snapshot)
        rows = data.sft_rows(
            snapshot,
            "train",
            chosen=script_args.include_chosen,
            reference=script_args.include_reference_solutions,
            skip_failed=script_args.skip_failed_chosen,
            max_rows=script_args.max_train_rows,
        )
        if not rows:
            failed = len(data.sft_rows(snapshot, "train", reference=False)) if script_args.skip_failed_chosen else 0
            because = (
                f"; {failed} chosen completion(s) left out because their tests failed (--skip_failed_chosen)"
                if failed
                else ""
            )
            raise data.SnapshotError(
                f"{snapshot.root}: no SFT examples (no chosen completions in preference/train.jsonl and no "
                f"reference_solution in prompts/train.jsonl{because})"
            )
        trainer = SFTTrainer(
            model=model_args.model_name_or_path,
            args=training_args,
            train_dataset=data.to_dataset(rows, ("prompt", "completion")),
            peft_config=get_peft_config(model_args),
            callbacks=[record.callback()],
        )
        output = trainer.train()
        saving.save_model(trainer, training_args.output_dir, dtype=model_args.dtype)
        result = {"train_examples": len(rows), **run_record.throughput(trainer, output)}
        result.update(interpolation.after_training(script_args, training_args))
        record.write_result(result)
    return result


def main(argv: Sequence[str] | None = None) -> dict:
    cli.setup_logging()
    script_args, training_args, model_args = cli.parse(make_parser(), argv)
    return run(script_args, training_args, model_args)


if __name__ == "__main__":
    main()
