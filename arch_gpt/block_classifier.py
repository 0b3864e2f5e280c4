"""The paper's block classifier (GPT-NAS §3.4): a fully connected network that maps the window of
layer tokens plus the GPT's predicted next token to the block class that should hold that layer.

Input: ``context_ids`` [B, window] (left-padded with the pad id, as the corpus windows are) and
``next_id`` [B]; the window + 1 token embeddings are concatenated and go through an MLP to
``len(label_names)`` logits. It is a ``PreTrainedModel`` so it saves as ``config.json`` +
``model.safetensors`` (inside ``block_classifier/`` of an ArchGPT checkpoint) and trains with ``Trainer``.
:func:`load_block_classifier` checks that folder (config fields, vocabulary and window, the safetensors header)
before loading any weight.

Importing this module registers the config with ``AutoConfig`` and the model with ``AutoModel``
(:func:`register_auto_classes`), and ``import arch_gpt`` imports it as soon as ``transformers`` is imported, so
``AutoModel.from_pretrained(checkpoint / "block_classifier")`` works after ``import arch_gpt``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from arch_gpt.block_classifier_config import WINDOW, BlockClassifierConfig
from arch_gpt.errors import UserInputError
from arch_gpt.hub import (
    CheckpointFileError, load_verified, read_config,
)

if TYPE_CHECKING:
    from arch_gpt.tokenizer import LayerTokenizer

BLOCK_CLASSIFIER_SUBFOLDER = "block_classifier"
_LIMITS = {"window": (1, 2 ** 16 - 1), "embed_dim": (1, 2 ** 16), "hidden_size": (1, 2 ** 16),
           "num_hidden_layers": (0, 64)}


class ModelInputError(UserInputError):
    """Bad arguments to the model APIs (sizes out of range, lengths that do not match, invalid top_k/temperature,
    ...); also exported by :mod:`arch_gpt.modeling`."""


class BlockClassifier(PreTrainedModel):
    """Token embeddings of the window and the predicted token → MLP → block-class logits."""
    config_class = BlockClassifierConfig
    base_model_prefix = "block_classifier"
    main_input_name = "context_ids"

    def __init__(self, config: BlockClassifierConfig):
        super().__init__(config)
        if not config.label_names:
            raise UserInputError("label_names: BlockClassifierConfig.label_names must name at least one block class")
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


def block_classifier_problem(values: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(field, message)`` for the first block-classifier setting (label_names, window, embed_dim, hidden_size,
    num_hidden_layers, dropout, vocab_size; those present in ``values``) out of range, else None."""
    if "label_names" in values:
        names = values["label_names"]
        if (isinstance(names, str) or not isinstance(names, (list, tuple)) or not names
                or not all(isinstance(n, str) and n for n in names)):
            return "label_names", f"must be a non-empty list of block class names, got {names!r}"
        if len(set(names)) != len(names):
            return "label_names", f"names a block class twice: {list(names)!r}"
    for key, (low, high) in {**_LIMITS, "vocab_size": (1, 2 ** 24)}.items():
        value = values.get(key, low)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return key, f"must be an integer from {low} to {high}, got {value!r}"
    dropout = values.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        return "dropout", f"must be a number in [0, 1), got {dropout!r}"
    return None


def new_block_classifier(tokenizer: "LayerTokenizer", label_names: Sequence[str], *, window: int = WINDOW,
                         embed_dim: int = 32, hidden_size: int = 256, num_hidden_layers: int = 2,
                         dropout: float = 0.1, seed: int = 0) -> BlockClassifier:
    """A freshly initialised block classifier for ``tokenizer``'s vocabulary, seeded by ``seed``; sizes out of
    range are a ModelInputError naming the parameter."""
    problem = block_classifier_problem({"label_names": label_names, "window": window, "embed_dim": embed_dim,
                                        "hidden_size": hidden_size, "num_hidden_layers": num_hidden_layers,
                                        "dropout": dropout})
    if problem is not None:
        raise ModelInputError(f"{problem[0]}: {problem[1]}")
    config = BlockClassifierConfig(
        label_names=list(label_names), vocab_size=tokenizer.vocab_size, window=window, embed_dim=embed_dim,
        hidden_size=hidden_size, num_hidden_layers=num_hidden_layers, dropout=dropout,
        pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BlockClassifier(config)


def load_block_classifier(folder: str | os.PathLike, vocab_size: int, window: int) -> BlockClassifier:
    """The block classifier saved in ``folder`` for a tokenizer of ``vocab_size`` tokens and a GPT of ``window``
    positions, after checking ``config.json`` and the ``model.safetensors`` header (CheckpointFileError naming
    the file and field otherwise); pickled weights are never read."""
    folder = Path(folder)
    path = folder / "config.json"
    data = read_config(folder, BlockClassifierConfig.model_type)
    problem = block_classifier_problem(data)
    if problem is not None:
        raise CheckpointFileError(f"{path}: field '{problem[0]}': {problem[1]}")
    for key, want, what in (("vocab_size", vocab_size, "the tokenizer's"), ("window", window, "the GPT's")):
        if data.get(key) != want:
            raise CheckpointFileError(f"{path}: field '{key}': {data.get(key)!r}, but {what} is {want}")
    try:
        config = BlockClassifierConfig.from_pretrained(str(folder))
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in BlockClassifier(config).state_dict().items()}
    except (OSError, ValueError, TypeError) as err:
        raise CheckpointFileError(f"{path}: not a usable block classifier config "
                                  f"({str(err).strip().splitlines()[0]})") from None
    return load_verified(BlockClassifier, folder, config, expected)


def register_auto_classes() -> None:
    """Register :class:`BlockClassifierConfig` with ``AutoConfig`` and :class:`BlockClassifier` with ``AutoModel``
    (again is harmless). Saved configs carry no ``auto_map``: that key points ``trust_remote_code`` at code files in
    a repository, and is not needed for classes that an installed library registers."""
    AutoConfig.register(BlockClassifierConfig.model_type, BlockClassifierConfig, exist_ok=True)
    AutoModel.register(BlockClassifierConfig, BlockClassifier, exist_ok=True)


register_auto_classes()
