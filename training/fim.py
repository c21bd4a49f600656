"""Fill-in-the-middle (FIM) prompts: code before a gap and code after it, and the model writes the middle.

StarCoder was trained for it with three special tokens, prefix-suffix-middle order ("PSM"):
``<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>`` and the model writes the middle, then EOS. Other code
models use other tokens; a model version can name its template (``ModelVersion.fim_template``), and a local
model whose tokenizer has StarCoder's tokens gets StarCoder's template without being told.

The program a FIM completion makes is ``prefix + middle + suffix``: that is what the sandbox runs and what a
volunteer reads (the suffix shown after the gap).
"""

from __future__ import annotations

STARCODER = "<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>"
TEMPLATES = {
    "starcoder": STARCODER,  # StarCoder, StarCoderBase, SantaCoder (PSM)
    "codellama": "<PRE> {prefix} <SUF>{suffix} <MID>",
    "deepseek-coder": "<｜fim▁begin｜>{prefix}<｜fim▁hole｜>{suffix}<｜fim▁end｜>",
}
STARCODER_TOKENS = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")
# A middle ends at the model's EOS (or StarCoder's file separator); code stop sequences would cut it short.
FIM_STOP = ["<file_sep>", "<|endoftext|>"]


class FimError(ValueError):
    """A template that cannot be used."""


def check_template(template: str) -> str:
    """The template itself, or a named template's text; FimError says what is wrong."""
    template = TEMPLATES.get(template, template)
    if template.count("{prefix}") != 1 or template.count("{suffix}") != 1:
        raise FimError(
            "a fill-in-the-middle template must hold {prefix} and {suffix} once each, e.g. "
            f"{STARCODER!r}, or name one of {', '.join(TEMPLATES)}"
        )
    return template


def build(prefix: str, suffix: str, template: str) -> str:
    """The model's input for a gap between ``prefix`` and ``suffix``. Plain replacement, not str.format: code
    is full of braces."""
    template = check_template(template)
    head, tail = template.split("{prefix}")
    if "{suffix}" in head:  # suffix-prefix-middle order
        before, after = head.split("{suffix}")
        return before + suffix + after + prefix + tail
    middle, end = tail.split("{suffix}")
    return head + prefix + middle + suffix + end


def template_for_tokenizer(tokenizer) -> str | None:
    """StarCoder's template when the tokenizer has its three FIM tokens as single tokens, else None."""
    vocab = tokenizer.get_vocab()
    return STARCODER if all(token in vocab for token in STARCODER_TOKENS) else None
