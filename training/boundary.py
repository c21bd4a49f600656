"""The prompt/completion boundary: prompts end on a token boundary, in training and in generation.

HumanEval-style prompts end in a newline and their completions start with indentation. Byte-level BPE
tokenizers (the project's tiny ones, StarCoder's, GPT-2's) merge newline + indentation into one token when the
two are joined (``'\\n   '``), but the prompt alone ends in a bare ``'\\n'`` token. Trained on prompt +
completion, the model sees the bare newline only at the end of a text, right before end-of-text, and then
writes nothing after such a prompt (after one demo cycle P(end-of-text | prompt) was 0.992).

The fix, for every stage: the prompt's trailing whitespace moves to the start of the completion
(``'...docstring\\n' + '    return x'`` -> ``'...docstring' + '\\n    return x'``). A prompt that ends on a non-blank
character ends on a token boundary for byte-level BPE (its pre-tokenizer always splits between a non-blank
character and the blank after it), so the tokenized prompt is a prefix of the tokenized prompt + completion,
which is what TRL's trainers assume. The text of prompt + completion, the program, does not change.

Generation prompts the model with the trimmed prompt and makes it write the trimmed whitespace first
(``StartsWith``: the first tokens must spell it out, or end the text at once), so that what it writes maps back
to a completion of the original prompt with the same program: ``prompt + completion_of(tail, written) ==
trimmed + written``. Stored completions and sandbox programs keep their meaning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_TOKEN_TEXTS_ATTRIBUTE = "_codepref_blank_token_texts"


def split_prompt(prompt: str) -> tuple[str, str]:
    """(the prompt up to its last non-blank character, its trailing whitespace)."""
    head = prompt.rstrip()
    return head, prompt[len(head) :]


def at_token_boundary(prompt: str, *completions: str) -> tuple[str, ...]:
    """The prompt without its trailing whitespace and each completion with that whitespace in front: the same
    texts joined, split where the tokenizer splits."""
    head, tail = split_prompt(prompt)
    return (head, *(tail + completion for completion in completions))


def completion_of(tail: str, written: str) -> str:
    """The completion of the original prompt (trimmed + tail) that makes the same program as trimmed + written.

    ``written`` starts with ``tail`` whenever generation went through ``StartsWith``; if it stopped inside the
    tail (end-of-text, the token budget) nothing is left. Otherwise (a backend that cannot be steered) the part
    of the tail it did write is dropped, which is the nearest program the original prompt can express.
    """
    if written.startswith(tail):
        return written[len(tail) :]
    common = 0
    while common < min(len(tail), len(written)) and tail[common] == written[common]:
        common += 1
    return written[common:]


def is_token_prefix(tokenizer, prompt: str, completion: str) -> bool:
    """Whether the tokenized prompt is a prefix of the tokenized prompt + completion (what TRL assumes)."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    return tokenizer(prompt + completion)["input_ids"][: len(prompt_ids)] == prompt_ids


def _blank_token_texts(tokenizer) -> list[tuple[int, str]]:
    """(id, text) of every token whose text starts with whitespace, decoded once per tokenizer object."""
    cached = getattr(tokenizer, _TOKEN_TEXTS_ATTRIBUTE, None)
    if cached is None:
        ids = list(range(len(tokenizer)))
        texts = tokenizer.batch_decode([[i] for i in ids], skip_special_tokens=True)
        cached = [(i, text) for i, text in zip(ids, texts, strict=True) if text[:1].isspace()]
        setattr(tokenizer, _TOKEN_TEXTS_ATTRIBUTE, cached)
    return cached


class StartsWith:
    """A logits processor for ``model.generate``: each row's first tokens spell out that row's required text (the
    prompt's trimmed whitespace), or the row ends at once (end-of-text is allowed until the text is written).

    Stateless: what a row still owes is found from what it generated so far, so it works with any batching.
    A row whose required text no token can continue (a tokenizer without such tokens) is left unconstrained.
    """

    def __init__(self, tokenizer, prompt_length: int, required: Sequence[str], *, eos_token_id: Any = None):
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.required = list(required)
        eos = eos_token_id if eos_token_id is not None else tokenizer.eos_token_id
        self.eos = [e for e in (eos if isinstance(eos, list | tuple) else [eos]) if e is not None]
        self.longest = max((len(r) for r in self.required), default=0)
        self.tokens = _blank_token_texts(tokenizer) if self.longest else []

    def allowed(self, owed: str) -> list[int]:
        """Token ids that continue the owed text: those that start with it, and non-empty pieces of it."""
        return [i for i, text in self.tokens if text.startswith(owed) or owed.startswith(text)]

    def __call__(self, input_ids, scores):
        import torch

        generated = input_ids[:, self.prompt_length :]
        if generated.shape[1] >= self.longest:  # every token is at least one character: all rows are free
            return scores
        for row, required in enumerate(self.required):
            written = self.tokenizer.decode(generated[row], skip_special_tokens=True)
            if len(written) >= len(required) or not required.startswith(written):
                continue
            allowed = self.allowed(required[len(written) :])
            if not allowed:
                continue
            keep = torch.full_like(scores[row], float("-inf"))
            index = torch.tensor(allowed + self.eos, device=scores.device)
            keep[index] = scores[row, index]
            scores[row] = keep
        return scores
