"""Sampling completions for code prompts from a transformers model (a local folder or a hub id); an
OpenAI-compatible server is training/openai_client.py. No Django here.

    python -m training.generate --model var/models/bootstrap --prompt 'def add(a, b):\n' --n 2

Completions are cut at EOS and at the first stop sequence after the completion's own first statement
(by default a new top-level statement: the Codex / HumanEval stop set), because small code models
rarely emit EOS.

The model is prompted with the prompt's text up to its last non-blank character and writes the trimmed
whitespace first, so that the prompt ends on a token boundary as in training (training/boundary.py); the
returned completion belongs to the original prompt: prompt + completion is the program the model wrote.

Local sampling is reproducible per row: each row draws its own noise from a generator seeded by the
caller (the Gumbel-max form of sampling), so a row's text does not depend on which other rows share its
batch. That is what lets a re-run of a generation request reproduce, and so not add, its completions.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from training import boundary, loading
from training.languages import PYTHON_STOP

logger = logging.getLogger(__name__)


# Codex / HumanEval's stop set, extended the way bigcode-evaluation-harness does for code prompts; other
# languages' sets are in training/languages.py.
DEFAULT_STOP = list(PYTHON_STOP)


class GenerationError(Exception):
    """A generation that cannot be done: a model that does not load, a server that refuses."""


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """The text up to the earliest stop sequence that starts after the text's first non-blank character.

    A match before any content (a completion that opens with ``\\ndef f():``) is the completion's own
    first statement, not a new one, so it is not cut to nothing.
    """
    content = len(text) - len(text.lstrip())
    cut = len(text)
    for s in stop:
        if not s:
            continue
        at = text.find(s, content)
        if at != -1 and at < cut:
            cut = at
    return text[:cut]


def row_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (stable across processes, unlike hash())."""
    digest = hashlib.sha256("\x00".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


# --- transformers -------------------------------------------------------------------------------

_MODELS: OrderedDict[tuple, tuple] = OrderedDict()
_MODELS_LOCK = threading.Lock()
MODEL_CACHE_SIZE = int(os.environ.get("CODEPREF_MODEL_CACHE_SIZE", "2"))


def load(target: str, *, trust_remote_code: bool = False):
    """(model, tokenizer) for a local folder or a hub id, cached per process.

    The key includes the folder's config.json mtime so that a rebuilt model is loaded again, and the trust
    flag, so that a model refused without it is not served from the cache with it (or the other way round).
    """
    path = Path(target).expanduser()
    local = path.is_dir()
    if local:
        try:
            stamp = (path / "config.json").stat().st_mtime_ns
        except OSError:
            raise GenerationError(f"{target}: a folder without config.json is not a transformers model")
        key = (str(path.resolve()), stamp, bool(trust_remote_code))
    else:
        if target.startswith(("/", "./", "../", "~")):
            raise GenerationError(f"{target}: no such model folder")
        key = (target, None, bool(trust_remote_code))
    with _MODELS_LOCK:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key]
        model, tokenizer = _load_uncached(
            str(path) if local else target, local=local, trust_remote_code=trust_remote_code
        )
        _MODELS[key] = (model, tokenizer)
        while len(_MODELS) > MODEL_CACHE_SIZE:
            _MODELS.popitem(last=False)
        return model, tokenizer


def forget(target: str) -> None:
    """Drop a model from this process's cache (and its GPU memory), e.g. between the models an evaluation
    compares: two 15B policies side by side would hold ~62 GB for nothing."""
    import gc

    resolved = str(Path(target).expanduser().resolve()) if Path(target).expanduser().is_dir() else target
    with _MODELS_LOCK:
        for key in [k for k in _MODELS if k[0] == resolved]:
            del _MODELS[key]
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def _load_uncached(target: str, *, local: bool, trust_remote_code: bool = False):
    import torch

    device = torch.device(loading.default_device())
    # On a GPU the checkpoint's own dtype (usually bf16/fp16); on CPU fp32, which is what CPUs run fast.
    dtype = "auto" if device.type == "cuda" else torch.float32
    started = time.monotonic()
    try:
        tokenizer = loading.tokenizer(target, trust_remote_code=trust_remote_code)
        # Straight onto the GPU when there is one: a 15B checkpoint never passes through CPU memory whole.
        placement = {"device_map": str(device)} if device.type == "cuda" else {}
        model = loading.causal_lm(target, trust_remote_code=trust_remote_code, dtype=dtype, **placement)
    except loading.RemoteCodeRefused as exc:
        raise GenerationError(str(exc)) from exc
    except (OSError, ValueError) as exc:
        where = "folder" if local else "hub id (is the hub reachable, or the model in the local cache?)"
        raise GenerationError(f"{target}: cannot load this {where}: {exc}") from exc
    model.to(device).eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:  # common for hub code models; padding is masked anyway
        tokenizer.pad_token = tokenizer.eos_token
    logger.info("loaded %s on %s in %.1fs", target, device, time.monotonic() - started)
    return model, tokenizer


def _context_length(config) -> int | None:
    for name in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


class _RowSampler:
    """Temperature, top-p and per-row Gumbel noise: argmax of the result is a sample from the top-p
    distribution, drawn from each row's own generator."""

    def __init__(self, seeds: Sequence[int], *, temperature: float, top_p: float):
        import torch

        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.temperature = temperature
        self.top_p = top_p

    def __call__(self, input_ids, scores):
        import torch

        if self.temperature == 0:
            return scores  # greedy
        scores = scores / self.temperature
        if self.top_p < 1.0:
            sorted_scores, order = torch.sort(scores, descending=True)
            cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
            remove = cumulative - sorted_scores.softmax(dim=-1) >= self.top_p  # keep the token crossing top_p
            remove[..., 0] = False
            scores = scores.masked_fill(remove.scatter(1, order, remove), float("-inf"))
        noise = torch.stack([torch.rand(scores.shape[-1], generator=g, dtype=torch.float64) for g in self.generators])
        gumbel = -torch.log(-torch.log(noise.clamp_min(1e-300))).to(scores.device, scores.dtype)
        return scores + gumbel


class StopAtNextStatement:
    """A stopping criterion for ``model.generate``: each row stops at the first stop sequence after its first
    statement. Decodes only the tail each step, and confirms with a full decode when a stop string shows."""

    def __init__(self, tokenizer, prompt_length: int, stop: Sequence[str]):
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.stop = [s for s in stop if s]
        self.window = 2 + max((len(s) for s in self.stop), default=0)  # tokens: at least one char each

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if not self.stop:
            return done
        generated = input_ids[:, self.prompt_length :]
        for row in range(generated.shape[0]):
            tail = self.tokenizer.decode(generated[row, -self.window :], skip_special_tokens=True)
            if any(s in tail for s in self.stop):
                text = self.tokenizer.decode(generated[row], skip_special_tokens=True)
                done[row] = len(truncate_at_stop(text, self.stop)) < len(text)
        return done


def _greedy_config(model, tokenizer, max_new_tokens: int):
    from transformers import GenerationConfig

    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    # Sampling is done by _RowSampler on top of greedy selection; explicit values keep a hub model's own
    # generation_config (beams, sampling) from filling them in.
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        num_return_sequences=1,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=eos,
    )


def generate_rows(
    target: str,
    rows: Sequence[tuple[str, int]],
    *,
    temperature: float = 0.8,
    top_p: float = 0.95,
    max_new_tokens: int = 128,
    stop: Sequence[str] | None = None,
    batch_size: int = 8,
    trust_remote_code: bool = False,
) -> list[str]:
    """One completion per (prompt, seed) row, generated in batches with left padding.

    Each prompt is cut at its trailing whitespace, which the model must write first (``boundary.StartsWith``);
    the text is mapped back to a completion of the whole prompt."""
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    stop = DEFAULT_STOP if stop is None else list(stop)
    model, tokenizer = load(target, trust_remote_code=trust_remote_code)
    device = next(model.parameters()).device
    context = _context_length(model.config)
    budget = None if context is None else context - max_new_tokens
    if budget is not None and budget < 1:
        raise GenerationError(f"max_new_tokens={max_new_tokens} leaves no room for a prompt in {context} positions")
    config = _greedy_config(model, tokenizer, max_new_tokens)
    eos = config.eos_token_id
    # Long rows together: less padding in each batch. The original order is restored at the end.
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
    split = [boundary.split_prompt(prompt) for prompt, _ in rows]
    texts: list[str] = [""] * len(rows)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        encoded = [tokenizer(split[i][0], add_special_tokens=False)["input_ids"] for i in chunk]
        if budget is not None:
            encoded = [ids[-budget:] for ids in encoded]  # keep the end of an over-long prompt
        if any(not ids for ids in encoded):
            bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
            encoded = [ids or [bos] for ids in encoded]
        batch = tokenizer.pad({"input_ids": encoded}, padding=True, return_tensors="pt").to(device)
        width = batch["input_ids"].shape[1]
        with torch.no_grad():
            output = model.generate(
                **batch,
                generation_config=config,
                logits_processor=LogitsProcessorList(
                    [
                        boundary.StartsWith(tokenizer, width, [split[i][1] for i in chunk], eos_token_id=eos),
                        _RowSampler([rows[i][1] for i in chunk], temperature=temperature, top_p=top_p),
                    ]
                ),
                stopping_criteria=StoppingCriteriaList([StopAtNextStatement(tokenizer, width, stop)]),
            )
        for row, i in enumerate(chunk):
            text = tokenizer.decode(output[row, width:], skip_special_tokens=True)
            texts[i] = boundary.completion_of(split[i][1], truncate_at_stop(text, stop))
    return texts


def generate(
    model_dir_or_hub_id: str,
    prompts: Sequence[str],
    *,
    n: int = 1,
    temperature: float = 0.8,
    top_p: float = 0.95,
    max_new_tokens: int = 128,
    stop: Sequence[str] | None = None,
    seed: int = 0,
    batch_size: int = 8,
    trust_remote_code: bool = False,
) -> list[list[str]]:
    """n completions for each prompt (a list per prompt), batched; same seed and prompts: same texts."""
    rows = [(prompt, row_seed(seed, prompt, j)) for prompt in prompts for j in range(n)]
    flat = generate_rows(
        model_dir_or_hub_id,
        rows,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        stop=stop,
        batch_size=batch_size,
        trust_remote_code=trust_remote_code,
    )
    return [flat[i * n : (i + 1) * n] for i in range(len(prompts))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="A model folder or a hub id.")
    parser.add_argument("--prompt", action="append", required=True, help="A prompt (\\n for newlines); repeatable.")
    parser.add_argument("--n", type=int, default=2)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="Run the checkpoint's own modelling code (auto_map)."
    )
    args = parser.parse_args(argv)
    prompts = [p.encode().decode("unicode_escape") for p in args.prompt]
    results = generate(
        args.model,
        prompts,
        n=args.n,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        trust_remote_code=args.trust_remote_code,
    )
    for prompt, texts in zip(prompts, results, strict=True):
        for text in texts:
            print("-" * 60)
            print(prompt + text)


if __name__ == "__main__":
    main()
