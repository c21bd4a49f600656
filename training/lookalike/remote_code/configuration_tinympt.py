"""A look-alike of Replit Code V1's remote configuration: MPT's field names on a Llama-style model."""

from transformers import LlamaConfig

_LLAMA_NAMES = (
    "hidden_size",
    "num_attention_heads",
    "num_key_value_heads",
    "num_hidden_layers",
    "intermediate_size",
    "max_position_embeddings",
)


class TinyMptConfig(LlamaConfig):
    model_type = "codepref_tiny_mpt"

    def __init__(self, d_model=64, n_heads=4, n_layers=2, max_seq_len=1024, **kwargs):
        for name in _LLAMA_NAMES:
            kwargs.pop(name, None)
        super().__init__(
            hidden_size=d_model,
            num_attention_heads=n_heads,
            num_key_value_heads=n_heads,
            num_hidden_layers=n_layers,
            intermediate_size=4 * d_model,
            max_position_embeddings=max_seq_len,
            **kwargs,
        )
        self.d_model, self.n_heads, self.n_layers, self.max_seq_len = d_model, n_heads, n_layers, max_seq_len
