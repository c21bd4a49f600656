"""The `ladder` bootstrap preset: its corpus mixes training-split ladder tasks into the standard library, and
no held-out template ever enters it (decontamination by template, as training/ladder.py splits)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from training import bootstrap, pretrain
from training.ladder import template_split, templates
from training.pretrain import LadderMix


def test_the_ladder_preset_corpus_holds_no_held_out_template():
    mix = bootstrap.PRESETS["ladder"].ladder
    used = set(pretrain.ladder_templates(mix))
    held_out = {
        ">".join(step.key for step in chain)
        for level in mix.levels
        for chain in templates(level)
        if template_split(">".join(step.key for step in chain)) == "heldout"
    }
    assert held_out, "the levels have held-out templates to keep out"
    assert len(used) > 100  # many training templates, so that the check below says something
    assert not used & held_out
    assert all(template_split(template) == "train" for template in used)


def test_the_ladder_documents_are_the_training_tasks_prompt_and_reference():
    mix = LadderMix(tasks=12, seed=3, levels=(1, 2))
    documents = pretrain.ladder_documents(mix)
    assert len(documents) == 12
    for document in documents:
        head, _, body = document.partition('    """\n')
        assert head.startswith("def ") and body.endswith("    return x\n")


def test_the_documents_are_spread_among_the_files_in_order():
    mixed = pretrain._interleave(["f1", "f2", "f3"], ["d1", "d2", "d3", "d4", "d5", "d6"])
    assert mixed == ["f1", "d1", "d2", "f2", "d3", "d4", "f3", "d5", "d6"]
    assert pretrain._interleave([], ["d1"]) == ["d1"]
    assert pretrain._interleave(["f1"], []) == ["f1"]


def test_a_built_ladder_model_is_found_again_by_its_identity(tmp_path):
    """The ladder's levels are a tuple in the preset and a list in training_info.json: the cache still hits."""
    identity = bootstrap._identity("ladder", 0, bootstrap.PRESETS["ladder"])
    assert identity["config"]["ladder"]["levels"] == [1, 2]
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        (tmp_path / name).write_text("{}")
    (tmp_path / bootstrap.INFO_FILE).write_text(json.dumps({**identity, "steps": 1}))
    assert bootstrap.cached_info(tmp_path, identity) is not None
    other = dataclasses.replace(bootstrap.PRESETS["ladder"], ladder=LadderMix(tasks=5))
    assert bootstrap.cached_info(tmp_path, bootstrap._identity("ladder", 0, other)) is None


@pytest.mark.parametrize("preset", ["demo", "test"])
def test_presets_without_ladder_tasks_keep_the_identity_of_their_cached_models(preset):
    assert "ladder" not in bootstrap._identity(preset, 0, bootstrap.PRESETS[preset])["config"]
