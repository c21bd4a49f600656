"""What each stage's result.json reports can be wrong: DPO's policy preference before and after training
(measured, not 0 by construction), the reward model's accuracy before and after, the pairs the reward stage drops
for length, and online RL's reward curve. Tiny models on the CPU, a few steps each."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.training.conftest import TINY
from training import data, run_record


def _argv(stage: str, snapshot: Path, out: Path, model: Path, *extra: str) -> list[str]:
    return [
        "--config", str(TINY / f"{stage}.yaml"),
        "--snapshot", str(snapshot),
        "--output_dir", str(out),
        "--model_name_or_path", str(model),
        "--disable_tqdm", "true",
        *extra,
    ]  # fmt: skip


def _preference_by_hand(model_dir: Path, rows: list[dict]) -> tuple[float, float, float]:
    """(share of pairs with log p(chosen|prompt) > log p(rejected|prompt), mean difference, the share per token),
    one text at a time: the completion's tokens are those of prompt + completion + EOS after the tokenized prompt.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()

    def logp(prompt: str, completion: str) -> tuple[float, int]:
        start = len(tokenizer(prompt)["input_ids"])
        ids = tokenizer(prompt + completion + tokenizer.eos_token)["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0]
        logprobs = torch.log_softmax(logits.double(), dim=-1)
        return sum(logprobs[i - 1, ids[i]].item() for i in range(start, len(ids))), len(ids) - start

    pairs = [(logp(r["prompt"], r["chosen"]), logp(r["prompt"], r["rejected"])) for r in rows]
    margins = [c - r for (c, _), (r, _) in pairs]
    per_token = [c / n > r / m for (c, n), (r, m) in pairs]
    return sum(m > 0 for m in margins) / len(margins), sum(margins) / len(margins), sum(per_token) / len(pairs)


@pytest.mark.slow
def test_dpo_reports_the_policys_own_preference_before_and_after_training(tmp_path, make_tiny_model, snapshot_dir):
    from training import dpo

    base = make_tiny_model("llama")
    rows = data.preference_rows(data.open_snapshot(snapshot_dir), "test")
    for row in rows:  # the stage's rows end on a token boundary: the prompt's tokens prefix the whole text's
        assert row["prompt"] and row["chosen"][:1].isspace()
    result = dpo.main(_argv("dpo", snapshot_dir, tmp_path / "dpo", base, "--max_steps", "16", "--beta", "0.5"))

    # Before training, TRL's implicit reward is 0 for every pair; the policy's own preference is a measurement:
    # the starting model's (the reference), computed here independently, one text at a time.
    accuracy, margin, per_token = _preference_by_hand(base, rows)
    assert result["policy_preference_before"] == accuracy
    assert result["policy_margin_before"] == pytest.approx(margin, rel=1e-4, abs=1e-4)
    assert result["policy_per_token_preference_before"] == per_token
    after, after_margin, after_per_token = _preference_by_hand(tmp_path / "dpo", rows)
    assert result["policy_preference_after"] == after  # measured on the saved folder
    assert result["policy_margin_after"] == pytest.approx(after_margin, rel=1e-4, abs=1e-4)
    assert result["policy_per_token_preference_after"] == after_per_token
    # Easy pairs (correct bodies over broken ones), trained hard: the policy prefers chosen more than it did.
    assert result["policy_preference_after"] >= result["policy_preference_before"]
    assert result["policy_per_token_preference_after"] > result["policy_per_token_preference_before"]
    assert result["policy_margin_after"] > result["policy_margin_before"]
    assert json.loads((tmp_path / "dpo" / "result.json").read_text())["policy_preference_after"] == after


@pytest.mark.slow
def test_reward_reports_accuracy_before_and_after_and_the_pairs_it_drops_for_length(
    tmp_path, make_tiny_model, snapshot_dir, capsys
):
    from training import reward

    snapshot = tmp_path / "snapshot"
    shutil.copytree(snapshot_dir, snapshot)
    train = snapshot / "preference" / "train.jsonl"
    rows = data.read_jsonl(train)
    long_pair = dict(rows[0], chosen=rows[0]["chosen"] + "    x = 1\n" * 300)  # far over max_length=256 tokens
    train.write_text("".join(json.dumps(r) + "\n" for r in [*rows, long_pair]))

    base = make_tiny_model("llama")
    result = reward.main(_argv("reward", snapshot, tmp_path / "reward", base, "--max_steps", "12"))
    assert result["dropped_too_long"] == 1
    assert result["dropped_too_long_by_split"] == {"train": 1, "test": 0}
    assert result["train_pairs"] == 48 and result["dropped_pairs"] == 1  # the trainer dropped the same pair
    assert "max_length=256 tokens are DROPPED: 1 of 49 training pairs" in capsys.readouterr().err
    assert result["heldout_pairs"] == 16
    assert 0.0 <= result["heldout_accuracy_before"] <= 1.0 and result["heldout_margin_before"] is not None
    assert result["heldout_accuracy"] >= result["heldout_accuracy_before"]
    assert result["heldout_accuracy"] > 0.5


@pytest.mark.slow
def test_online_rl_records_the_reward_of_every_logged_step(tmp_path, make_tiny_model, snapshot_dir):
    from training import online_rl

    out = tmp_path / "rloo"
    argv = _argv(
        "online_rl", snapshot_dir, out, make_tiny_model("llama"),
        "--algorithm", "rloo",
        "--max_steps", "3",
        "--num_generations", "2",
        "--per_device_train_batch_size", "2",
        "--max_completion_length", "8",
    )  # fmt: skip
    result = online_rl.main(argv)
    curve = result["reward_curve"]
    assert [point["step"] for point in curve] == [1, 2, 3]  # logging_steps: 1 in the tiny recipe
    logged = [r for r in run_record.read_metrics(out / "metrics.jsonl") if isinstance(r.get("reward"), float)]
    assert [point["reward"] for point in curve] == pytest.approx([r["reward"] for r in logged])
    assert result["mean_reward_first"] == curve[0]["reward"] and result["mean_reward_last"] == curve[-1]["reward"]
