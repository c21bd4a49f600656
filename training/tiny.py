"""Tiny code models built on this machine from a config, so that nothing is downloaded from a hub.

A byte-level BPE tokenizer trained on Python source, and a causal LM of one of the architectures the
seed models use: Llama-style, StarCoder's ``GPTBigCodeForCausalLM`` and Replit Code's ``MptForCausalLM``.
Pointing a recipe at ``bigcode/starcoderbase-1b`` or ``replit/replit-code-v1-3b`` instead is a config change.

    python -m training.tiny --arch gpt_bigcode --out var/models/tiny-bigcode
"""

from __future__ import annotations

import argparse
import sysconfig
from collections.abc import Iterable, Iterator
from pathlib import Path

EOS = "<|endoftext|>"
PAD = "<|pad|>"
ARCHITECTURES = ("llama", "gpt_bigcode", "mpt")


def python_source_files(max_bytes: int | None = None) -> list[Path]:
    """The standard library's ``.py`` files (sorted, so that a build is deterministic), up to max_bytes."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files, total = [], 0
    for path in sorted(root.rglob("*.py")):
        if "site-packages" in path.parts or "test" in path.parts or "tests" in path.parts:
            continue
        size = path.stat().st_size
        if max_bytes is not None and total + size > max_bytes:
            break
        files.append(path)
        total += size
    return files


def read_texts(files: Iterable[Path]) -> Iterator[str]:
    for path in files:
        try:
            yield path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue


def make_tokenizer(
    out_dir: str | Path | None = None,
    *,
    vocab_size: int = 512,
    texts: Iterable[str] | None = None,
    max_bytes: int = 2_000_000,
):
    """Train a byte-level BPE tokenizer (on the standard library unless ``texts`` is given)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = texts if texts is not None else read_texts(python_source_files(max_bytes))
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=EOS, eos_token=EOS, pad_token=PAD, unk_token=None
    )
    wrapped.padding_side = "left"  # generation pads on the left; trainers set their own side
    if out_dir is not None:
        wrapped.save_pretrained(str(out_dir))
    return wrapped


def make_config(
    arch: str,
    tokenizer,
    *,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    max_positions: int = 1024,
):
    """A small config of the named architecture, with the tokenizer's special token ids."""
    from transformers import GPTBigCodeConfig, LlamaConfig, MptConfig

    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    vocab = len(tokenizer)
    if arch == "llama":
        return LlamaConfig(
            vocab_size=vocab,
            hidden_size=hidden,
            intermediate_size=hidden * 4,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            max_position_embeddings=max_positions,
            tie_word_embeddings=True,
            **ids,
        )
    if arch == "gpt_bigcode":
        return GPTBigCodeConfig(
            vocab_size=vocab,
            n_embd=hidden,
            n_layer=layers,
            n_head=heads,
            n_positions=max_positions,
            multi_query=True,
            **ids,
        )
    if arch == "mpt":
        return MptConfig(
            vocab_size=vocab, d_model=hidden, n_heads=heads, n_layers=layers, max_seq_len=max_positions, **ids
        )
    raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}; got {arch!r}")


def make_model(
    out_dir: str | Path,
    *,
    arch: str = "llama",
    tokenizer=None,
    seed: int = 0,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    max_positions: int = 1024,
    vocab_size: int = 512,
) -> Path:
    """Build a randomly initialised model with its tokenizer and ``save_pretrained`` both into out_dir."""
    import torch
    from transformers import AutoModelForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if tokenizer is None:
        tokenizer = make_tokenizer(vocab_size=vocab_size)
    torch.manual_seed(seed)
    config = make_config(arch, tokenizer, hidden=hidden, layers=layers, heads=heads, max_positions=max_positions)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=ARCHITECTURES, default="llama")
    parser.add_argument("--out", required=True)
    parser.add_argument("--vocab-size", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = make_model(
        args.out,
        arch=args.arch,
        seed=args.seed,
        hidden=args.hidden,
        layers=args.layers,
        heads=args.heads,
        vocab_size=args.vocab_size,
    )
    print(path)


if __name__ == "__main__":
    main()
