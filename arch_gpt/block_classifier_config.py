"""The block classifier's config, without torch: importing it registers the config with ``AutoConfig`` (the model
registers with ``AutoModel`` in :mod:`arch_gpt.block_classifier`). ``import arch_gpt`` imports this module once
transformers' Auto-config module is loaded, so a tokenizer-only process never loads torch for it."""
from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig

WINDOW = 10  # context layers before the predicted one (the GPT has WINDOW + 1 positions)


@strict
class BlockClassifierConfig(PreTrainedConfig):
    """Label names (block classes such as ``Bottleneck``), vocabulary size, window and MLP sizes."""
    model_type = "arch_gpt_block_classifier"
    label_names: list[str] | None = None
    vocab_size: int = 16
    window: int = WINDOW
    embed_dim: int = 32
    hidden_size: int = 256
    num_hidden_layers: int = 2
    dropout: float | int = 0.1
    pad_token_id: int | None = 0


AutoConfig.register(BlockClassifierConfig.model_type, BlockClassifierConfig, exist_ok=True)
