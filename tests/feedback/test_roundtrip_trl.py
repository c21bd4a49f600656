"""A snapshot goes back in: datasets loads every format, and TRL's DPO and reward trainers take one step on it."""

from __future__ import annotations

import uuid

import datasets
import pytest

from feedback.datasets.services import snapshot_build
from feedback.models import Vote
from tests import factories
from training import data
from training.dataset_format import PREFERENCE_COLUMNS

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

GOOD = "    return sorted(set(values))[:limit]\n"
BAD = "    return values\n"


@pytest.fixture
def snapshot():
    voters = [factories.UserFactory() for _ in range(3)]
    for index in range(16):
        prompt = factories.PromptFactory(
            text=f"def task_{index}(values, limit):\n    '''Sorted, unique, limited.'''\n"
        )
        pair = factories.PairFactory(
            prompt=prompt,
            completion_a=factories.CompletionFactory(prompt=prompt, text=GOOD + f"    # {index}\n", outcome="passed"),
            completion_b=factories.CompletionFactory(prompt=prompt, text=BAD + f"    # {index}\n", outcome="failed"),
        )
        for voter, choice in zip(voters, ("a", "a", "b"), strict=True):
            Vote.objects.create(pair=pair, volunteer=voter, choice=choice, left_is_a=index % 2 == 0,
                                idempotency_key=uuid.uuid4().hex)  # fmt: skip
    result = snapshot_build(filters={"test_fraction": 0.5})
    counts = result.snapshot.counts
    assert counts["preference_train"] and counts["preference_test"]  # fixed texts: a fixed split
    return result.snapshot


def test_every_exported_format_loads_back_with_the_same_rows(snapshot, tmp_path):
    folder = snapshot.path
    cache = str(tmp_path / "cache")
    as_json = datasets.load_dataset(
        "json", data_files={s: str(folder / "preference" / f"{s}.jsonl") for s in ("train", "test")}, cache_dir=cache
    )
    as_parquet = datasets.load_dataset(
        "parquet",
        data_files={s: str(folder / "preference" / f"{s}.parquet") for s in ("train", "test")},
        cache_dir=cache,
    )
    from_disk = datasets.load_from_disk(str(folder / "hf" / "preference"))
    for split in ("train", "test"):
        rows = as_json[split].to_list()
        assert rows == as_parquet[split].to_list() == from_disk[split].to_list()
        assert rows and list(rows[0]) == list(PREFERENCE_COLUMNS)
        assert all(row["chosen"].startswith(GOOD) and row["rejected"].startswith(BAD) for row in rows)
    unpaired = datasets.load_from_disk(str(folder / "hf" / "unpaired"))
    assert unpaired["train"].features["label"].dtype == "bool"
    kto = datasets.load_dataset("json", data_files=str(folder / "unpaired" / "train.jsonl"), cache_dir=cache)["train"]
    assert kto.num_rows == 2 * as_json["train"].num_rows


def test_the_training_reader_reads_the_exported_folder_by_the_same_format(snapshot):
    exported = data.open_snapshot(snapshot.path)
    assert exported.version == str(snapshot.version)
    for split in ("train", "test"):
        assert len(data.preference_rows(exported, split)) == snapshot.counts[f"preference_{split}"]
        assert len(data.prompt_rows(exported, split)) == snapshot.counts[f"prompts_{split}"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from training.tiny import make_model, make_tokenizer

    corpus = [GOOD, BAD, "def task(values, limit):\n    '''Sorted, unique, limited.'''\n"] * 20
    tokenizer = make_tokenizer(vocab_size=300, texts=corpus)
    return make_model(tmp_path_factory.mktemp("tiny-model"), tokenizer=tokenizer, hidden=32, layers=1, heads=2)


def _common_args(out):
    return {
        "output_dir": str(out),
        "max_steps": 1,
        "per_device_train_batch_size": 4,
        "learning_rate": 1e-4,
        "use_cpu": True,
        "bf16": False,
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": 1,
        "disable_tqdm": True,
        "activation_checkpointing": False,
        "max_length": 256,
    }


def test_dpo_trainer_takes_a_step_on_the_exported_preference_files(snapshot, tiny_model, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    train = datasets.load_dataset(
        "json", data_files=str(snapshot.path / "preference" / "train.jsonl"), cache_dir=str(tmp_path / "cache")
    )["train"]
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(str(tiny_model)),
        args=DPOConfig(**_common_args(tmp_path / "dpo"), beta=0.1),
        train_dataset=train,
        processing_class=AutoTokenizer.from_pretrained(str(tiny_model)),
    )
    output = trainer.train()
    assert output.global_step == 1 and output.training_loss > 0


def test_reward_trainer_takes_a_step_on_the_saved_datasets_folder(snapshot, tiny_model, tmp_path):
    from transformers import AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    train = datasets.load_from_disk(str(snapshot.path / "hf" / "preference"))["train"]
    trainer = RewardTrainer(
        model=str(tiny_model),
        args=RewardConfig(**_common_args(tmp_path / "reward")),
        train_dataset=train,
        processing_class=AutoTokenizer.from_pretrained(str(tiny_model)),
    )
    output = trainer.train()
    assert output.global_step == 1 and output.training_loss > 0
