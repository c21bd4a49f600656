"""DPO: move the policy towards the volunteers' chosen completions (TRL's DPOTrainer).

The reference model is the starting policy: TRL reloads it from --model_name_or_path (a saved folder, never an
in-memory model: ``ref_model=None`` with an unsaved model fails in TRL 1.16), or with --use_peft it is the same
weights with the LoRA adapter switched off, so only one copy sits in memory.

    python -m training.dpo --config training/recipes/tiny/dpo.yaml --snapshot DIR --output_dir DIR \\
        --model_name_or_path DIR

result.json: {"heldout_reward_accuracy", "heldout_margin", "heldout_loss", "heldout_pairs",
"policy_preference_before", "policy_preference_after", "policy_margin_before", "policy_margin_after",
"policy_per_token_preference_before", "policy_per_token_preference_after",
"train_pairs", "tokens_per_second", "peak_memory_gb" (CUDA only), ...}.

``heldout_reward_accuracy`` / ``heldout_margin`` are TRL's implicit DPO reward (beta * log-ratio to the reference)
of chosen vs rejected on preference/test.jsonl after training: they measure how far the policy moved from the
reference (all ratios are 0 before training, so the accuracy starts at 0 by construction). The
``policy_preference_*`` keys measure the policy on its own (training.preference_scoring): the share of held-out
pairs where log p(chosen | prompt) > log p(rejected | prompt), before training (the starting policy, in memory)
and after (the saved folder), the mean difference of those log-probabilities (``policy_margin_*``), and the share
with each divided by its token count (``policy_per_token_preference_*``: sums favour the shorter completion).
"""

from __future__ import annotations

from collections.abc import Sequence

from training import cli, data, interpolation, loading, preference_scoring, run_record, saving
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
        before = None
        if test_rows and run_record.world_size() == 1:  # one process: under ZeRO-3 the weights are sharded here
            before = preference_scoring.policy_preference(
                trainer.model, trainer.processing_class, test_rows, max_length=training_args.max_length
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
        after = None
        if test_rows and run_record.is_main_process():
            after = saved_policy_preference(training_args.output_dir, test_rows, training_args, model_args)
        # What DPO learned is measured above, on the trained weights; with --interpolate_with the folder then holds
        # the mix with the parent (or --interpolated_output_dir does), measured again.
        result.update(interpolation.after_training(script_args, training_args))
        if "interpolated_with" in result and after:
            mixed = saved_policy_preference(result["interpolated_dir"], test_rows, training_args, model_args)
            result.update(
                policy_preference_interpolated=mixed["accuracy"], policy_margin_interpolated=mixed["mean_margin"]
            )
        result.update(
            policy_preference_before=before["accuracy"] if before else None,
            policy_margin_before=before["mean_margin"] if before else None,
            policy_preference_after=after["accuracy"] if after else None,
            policy_margin_after=after["mean_margin"] if after else None,
            policy_per_token_preference_before=before["per_token_accuracy"] if before else None,
            policy_per_token_preference_after=after["per_token_accuracy"] if after else None,
        )
        result.update(run_record.throughput(trainer, output))
        record.write_result(result)
    return result


def load_reference(path: str, training_args):
    kwargs = dict(training_args.model_init_kwargs or {})
    trust = bool(kwargs.pop("trust_remote_code", getattr(training_args, "trust_remote_code", False)))
    return loading.causal_lm(path, trust_remote_code=trust, **kwargs)


def saved_policy_preference(folder: str, rows, training_args, model_args) -> dict:
    """The trained policy's own preference on ``rows``, measured from the saved folder (LoRA merged in)."""
    import torch

    device = "cuda" if torch.cuda.is_available() and not training_args.use_cpu else "cpu"
    dtype = getattr(torch, model_args.dtype) if model_args.dtype and model_args.dtype != "auto" else None
    dtype = dtype or ("auto" if device == "cuda" else torch.float32)
    trust = bool(getattr(training_args, "trust_remote_code", False))
    tokenizer = loading.tokenizer(folder, trust_remote_code=trust)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = loading.causal_lm(folder, trust_remote_code=trust, dtype=dtype)
    model.to(device)
    return preference_scoring.policy_preference(model, tokenizer, rows, max_length=training_args.max_length)


def main(argv: Sequence[str] | None = None) -> dict:
    cli.setup_logging()
    script_args, training_args, model_args = cli.parse(make_parser(), argv)
    return run(script_args, training_args, model_args)


if __name__ == "__main__":
    main()
