"""A look-alike of Replit Code V1's remote tokenizer class."""

from transformers import PreTrainedTokenizerFast


class TinyMptTokenizer(PreTrainedTokenizerFast):
    pass
