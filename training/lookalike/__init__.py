"""Look-alike checkpoints of the seed models, built here from a config (no hub), for tests and dry runs.

- ``remote_code_model``: a Replit-Code-V1-style folder whose model and tokenizer classes live in Python files
  beside the weights (``auto_map`` in config.json and tokenizer_config.json), as Replit's do. transformers
  loads it only with ``trust_remote_code=True``.
- ``fim_model``: a StarCoder-style GPTBigCode whose tokenizer has StarCoder's fill-in-the-middle tokens.

    python -m training.lookalike --kind remote_code --out var/models/lookalike-replit
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from training import tiny

SOURCE = Path(__file__).resolve().parent / "remote_code"
MODEL_TYPE = "codepref_tiny_mpt"
FIM_TOKENS = ("<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>")


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def remote_code_model(out_dir: str | Path, *, tokenizer=None, seed: int = 0, hidden: int = 64, layers: int = 2):
    """A tiny model whose classes come from its own folder: Llama weights under an MPT-style config class
    (d_model, n_heads, n_layers, max_seq_len) that transformers does not know, so only remote code loads it."""
    out = tiny.make_model(out_dir, arch="llama", tokenizer=tokenizer, seed=seed, hidden=hidden, layers=layers)
    for name in ("configuration_tinympt.py", "modeling_tinympt.py", "tokenization_tinympt.py"):
        shutil.copyfile(SOURCE / name, out / name)
    config = json.loads((out / "config.json").read_text())
    _edit_json(
        out / "config.json",
        model_type=MODEL_TYPE,
        architectures=["TinyMptForCausalLM"],
        d_model=config["hidden_size"],
        n_heads=config["num_attention_heads"],
        n_layers=config["num_hidden_layers"],
        max_seq_len=config["max_position_embeddings"],
        auto_map={
            "AutoConfig": "configuration_tinympt.TinyMptConfig",
            "AutoModelForCausalLM": "modeling_tinympt.TinyMptForCausalLM",
            "AutoModelForSequenceClassification": "modeling_tinympt.TinyMptForSequenceClassification",
        },
    )
    _edit_json(
        out / "tokenizer_config.json",
        tokenizer_class="TinyMptTokenizer",
        auto_map={"AutoTokenizer": [None, "tokenization_tinympt.TinyMptTokenizer"]},
    )
    return out


def fim_model(out_dir: str | Path, *, seed: int = 0, hidden: int = 64, layers: int = 2, vocab_size: int = 512):
    """A tiny GPTBigCode (StarCoder's architecture) with StarCoder's FIM special tokens in its tokenizer."""
    tokenizer = tiny.make_tokenizer(vocab_size=vocab_size, max_bytes=300_000)
    tokenizer.add_special_tokens({"additional_special_tokens": list(FIM_TOKENS)})
    return tiny.make_model(out_dir, arch="gpt_bigcode", tokenizer=tokenizer, seed=seed, hidden=hidden, layers=layers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=("remote_code", "fim"), required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    print(remote_code_model(args.out) if args.kind == "remote_code" else fim_model(args.out))


if __name__ == "__main__":
    main()
