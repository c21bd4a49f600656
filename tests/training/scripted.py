"""A model that writes a given text: a forward hook that makes one token overwhelmingly likely at each step.

What a model writes after a prompt is otherwise up to its weights; tests of what generation makes of a model's
text (how it is cut, mapped back to the prompt, stored and run) need to choose the text.
"""

from __future__ import annotations

from collections.abc import Sequence


def script(model, token_ids: Sequence[int]):
    """Make ``model`` write ``token_ids`` (the last one repeats) after any prompt; returns the hook's handle
    (``handle.remove()`` ends it). The step is the sequence's length past the prompt's; a sequence no longer
    than the last one seen is a new generation."""
    state = {"start": 0, "last": None}
    ids = list(token_ids)

    def hook(module, args, kwargs, output):
        length = _length(kwargs, args)
        if state["last"] is None or length <= state["last"]:
            state["start"] = length
        state["last"] = length
        target = ids[min(length - state["start"], len(ids) - 1)]
        output.logits[:, -1, :] = -1e4
        output.logits[:, -1, target] = 1e4
        return output

    return model.register_forward_hook(hook, with_kwargs=True)


def script_text(model, tokenizer, text: str, *, eos: bool = True):
    """``script`` with the tokens of ``text`` (joined, as a model trained on whole programs writes them)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return script(model, ids + ([tokenizer.eos_token_id] if eos else []))


def _length(kwargs, args) -> int:
    """The whole sequence's length at a forward call, with or without a cache: from the last position (Llama,
    GPTBigCode), else from the attention mask (MPT, which gets no positions), else from the input."""
    positions = kwargs.get("position_ids")
    if positions is not None:
        return int(positions[:, -1].max()) + 1
    mask = kwargs.get("attention_mask")
    if mask is not None:
        return mask.shape[1]
    return kwargs.get("input_ids", args[0] if args else None).shape[1]
