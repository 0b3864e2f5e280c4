"""The paper's block classifier (GPT-NAS §3.4): a fully connected network that maps the window of
layer tokens plus the GPT's predicted next token to the block class that should hold that layer.

Input: ``context_ids`` [B, window] (left-padded with the pad id, as the corpus windows are) and
``next_id`` [B]; the window + 1 token embeddings are concatenated and go through an MLP to
``len(label_names)`` logits. It is a ``PreTrainedModel`` so it saves as ``config.json`` +
``model.safetensors`` (inside ``block_classifier/`` of an ArchGPT checkpoint) and trains with ``Trainer``.
"""
from __future__ import annotations

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

BLOCK_CLASSIFIER_SUBFOLDER = "block_classifier"


@strict
class BlockClassifierConfig(PreTrainedConfig):
    """Label names (block classes such as ``Bottleneck``), vocabulary size, window and MLP sizes."""
    model_type = "arch_gpt_block_classifier"
    label_names: list[str] | None = None
    vocab_size: int = 16
    window: int = 10
    embed_dim: int = 32
    hidden_size: int = 256
    num_hidden_layers: int = 2
    dropout: float | int = 0.1
    pad_token_id: int | None = 0


class BlockClassifier(PreTrainedModel):
    """Token embeddings of the window and the predicted token → MLP → block-class logits."""
    config_class = BlockClassifierConfig
    base_model_prefix = "block_classifier"
    main_input_name = "context_ids"

    def __init__(self, config: BlockClassifierConfig):
        super().__init__(config)
        if not config.label_names:
            raise ValueError("BlockClassifierConfig.label_names must name at least one block class")
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
        layers: list[nn.Module] = []
        width = (config.window + 1) * config.embed_dim
        for _ in range(config.num_hidden_layers):
            layers += [nn.Linear(width, config.hidden_size), nn.ReLU(), nn.Dropout(config.dropout)]
            width = config.hidden_size
        layers.append(nn.Linear(width, len(config.label_names)))
        self.mlp = nn.Sequential(*layers)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def forward(self, context_ids: torch.LongTensor, next_id: torch.LongTensor,
                labels: torch.LongTensor | None = None, **kwargs) -> SequenceClassifierOutput:
        """Logits [B, n_labels]; with ``labels`` also the mean cross-entropy loss."""
        tokens = torch.cat([context_ids, next_id.view(-1, 1)], dim=1)
        logits = self.mlp(self.embed(tokens).flatten(1))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)
