"""DPO: move the policy towards the volunteers' chosen completions (TRL's DPOTrainer).

The reference model is the starting policy: TRL reloads it from --model_name_or_path (a saved folder, never an
in-memory model: ``ref_model=None`` with an unsaved model fails in TRL 1.16), or with --use_peft it is the same
weights with the LoRA adapter switched off, so only one copy sits in memory.

    python -m training.dpo --config training/recipes/tiny/dpo.yaml --snapshot DIR --output_dir DIR \\
        --model_name_or_path DIR

result.json: {"heldout_reward_accuracy", "heldout_margin", "heldout_loss", "heldout_pairs", "train_pairs",
"tokens_per_second", "peak_memory_gb" (CUDA only), ...}: the implicit DPO reward (beta * log-ratio to the
reference) of chosen vs rejected on preference/test.jsonl after training.
"""

from __future__ import annotations

from collections.abc import Sequence

from training import cli, data, run_record, saving
from training.configs import DPOArguments, prepare_training_args

STAGE = "dpo"


def make_parser():
    from trl import DPOConfig, ModelConfig, TrlParser

    return TrlParser((DPOArguments, DPOConfig, ModelConfig), prog=f"python -m training.{STAGE}")


def run(script_args: DPOArguments, training_args, model_args) -> dict:
    from trl import DPOTrainer, get_peft_config

    if not model_args.model_name_or_path:
        raise ValueError("--model_name_or_path is required: the folder (or hub id) of the policy to train")
    prepare_training_args(training_args, model_args)
    with run_record.StageRun(
        STAGE, training_args.output_dir, arguments=[script_args, training_args, model_args], seed=training_args.seed
    ) as record:
        snapshot = data.open_snapshot(script_args.snapshot)
        train_rows = data.preference_rows(snapshot, "train", max_rows=script_args.max_train_rows)
        test_rows = data.preference_rows(snapshot, "test", max_rows=script_args.max_eval_rows)
        if not train_rows:
            raise data.SnapshotError(f"{snapshot.file('preference', 'train')}: no preference pairs to train on")
        ref_model = None
        if script_args.ref_model_path:
            ref_model = load_reference(script_args.ref_model_path, training_args)
        trainer = DPOTrainer(
            model=model_args.model_name_or_path,
            ref_model=ref_model,
            args=training_args,
            train_dataset=data.to_dataset(train_rows, data.TRAINER_PREFERENCE_COLUMNS),
            peft_config=get_peft_config(model_args),
            callbacks=[record.callback()],
        )
        output = trainer.train()
        result: dict = {"train_pairs": len(trainer.train_dataset)}
        if test_rows:
            metrics = trainer.evaluate(data.to_dataset(test_rows, data.TRAINER_PREFERENCE_COLUMNS))
            result.update(
                heldout_reward_accuracy=metrics.get("eval_rewards/accuracies"),
                heldout_margin=metrics.get("eval_rewards/margins"),
                heldout_loss=metrics.get("eval_loss"),
                heldout_pairs=len(test_rows),
            )
        else:
            result.update(heldout_reward_accuracy=None, heldout_margin=None, heldout_loss=None, heldout_pairs=0)
        saving.save_model(trainer, training_args.output_dir, dtype=model_args.dtype)
        result.update(run_record.throughput(trainer, output))
        record.write_result(result)
    return result


def load_reference(path: str, training_args):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, **(training_args.model_init_kwargs or {}))


def main(argv: Sequence[str] | None = None) -> dict:
    cli.setup_logging()
    script_args, training_args, model_args = cli.parse(make_parser(), argv)
    return run(script_args, training_args, model_args)


if __name__ == "__main__":
    main()
