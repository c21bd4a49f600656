"""A look-alike of Replit Code V1's remote modelling code (its classes live beside the weights)."""

from torch import nn
from transformers import LlamaForCausalLM, LlamaForSequenceClassification, LlamaModel, LlamaPreTrainedModel

from .configuration_tinympt import TinyMptConfig


class TinyMptForCausalLM(LlamaForCausalLM):
    config_class = TinyMptConfig


class TinyMptForSequenceClassification(LlamaForSequenceClassification):
    config_class = TinyMptConfig

    def __init__(self, config):
        # The generic head builds its body through AutoModel, which does not know this config: build it here.
        LlamaPreTrainedModel.__init__(self, config)
        self.num_labels = config.num_labels
        self.model = LlamaModel(config)
        self.score = nn.Linear(config.hidden_size, self.num_labels, bias=False)
        self.post_init()
