"""The ``architecture-completion`` pipeline task: the next layer of a CNN after the layers given, through the stock
``transformers.pipeline`` factory, with ArchGPT's own context layout.

    import arch_gpt                      # registers the task once transformers is imported (arch_gpt/__init__.py)
    from transformers import pipeline
    completer = pipeline("architecture-completion", model=arch_gpt.pretrained_path("arch-gpt-nasbench101"))
    completer(["conv:k3x3:s1x1:p1-1-1-1:d1:g1:b0:r1", "other:BN"], top_k=3)
    # [{"token": "other:ReLU", "token_id": ..., "score": 0.9..., "layer": None}, ...]

``model`` is a checkpoint folder or a Hub id (loaded with ``AutoModelForCausalLM`` and ``AutoTokenizer``; for the
bundled checkpoint pass :func:`arch_gpt.pretrained_path`). One input is

- a list of layer tokens (``[]`` asks for the first layer),
- a list of layer strings (``id:1;in_size:...``), a list of ``Layer`` objects or an ``Architecture``,
- a string: the text of an architecture (layer strings, one per line), a path of an architecture file, or layer
  tokens separated by spaces; a ``pathlib.Path`` is always a file.

A list whose items are lists, Architectures or paths is a batch (one result per item); a list of strings is always
one input. The context is what the model was trained on: ``[BOS]`` + the layers, the last ``window`` tokens,
left-padded with ``[PAD]`` (masked), so any number of layers works. Each result is the ``top_k`` most likely layer
tokens (special tokens never; only ``allowed_tokens`` when given) with ``score`` = their probability among those
tokens, and ``layer``: the concrete next layer in text form when the input had sizes (an Architecture, layer
strings or a file) and the token fits after it, else None.
"""
from __future__ import annotations

import numbers
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from arch_gpt.encoding import Architecture, ArchitectureError, Layer, format_layer
from arch_gpt.hub import PIPELINE_TASK
from arch_gpt.modeling import ArchGPT, ModelInputError
from arch_gpt.tokenizer import LayerTokenizer, check_token, layer_tokens

__all__ = ["PIPELINE_TASK", "ArchitectureCompletionPipeline", "register_pipeline"]


@dataclass
class _Query:
    """One parsed input: its layer tokens, and the architecture when the input had sizes."""
    tokens: list[str]
    arch: Architecture | None = None


@dataclass
class _Single:
    """Marks one input that is a list, so that ``Pipeline.__call__`` does not take it for a batch."""
    value: Any


def _is_batch(inputs: Any) -> bool:
    return isinstance(inputs, (list, tuple)) and bool(inputs) and all(
        isinstance(item, (list, tuple, Architecture, os.PathLike)) for item in inputs)


def _tokens(items: list[str], vocab: LayerTokenizer) -> list[str]:
    """Layer tokens as given, each checked (one outside the vocabulary is well-formed and becomes [UNK])."""
    for i, token in enumerate(items):
        if not vocab.in_vocab(token):
            try:
                check_token(token)
            except ArchitectureError as err:
                raise ModelInputError(f"inputs[{i}]: {err} (a list of strings is one input: layer tokens or layer "
                                      "strings; pass pathlib.Path objects for files)") from None
    return list(items)


def parse_input(value: Any, vocab: LayerTokenizer) -> _Query:
    """The tokens (and the architecture, when it has sizes) of one pipeline input; see the module docstring."""
    if isinstance(value, _Query):
        return value
    if isinstance(value, Architecture):
        return _Query(layer_tokens(value), value)
    if isinstance(value, os.PathLike):
        arch = Architecture.load(value)
        return _Query(layer_tokens(arch), arch)
    if isinstance(value, str):
        text = value.strip()
        if "\n" in text or text.startswith(("id:", "#")):
            arch = Architecture.from_text(value)
        elif text and not Path(text).is_file() and all(":" in part for part in text.split()):
            return _Query(_tokens(text.split(), vocab))
        else:
            arch = Architecture.load(text)
        return _Query(layer_tokens(arch), arch)
    if isinstance(value, (list, tuple)):
        items = list(value)
        if items and all(isinstance(item, Layer) for item in items):
            arch = Architecture(tuple(items)).check()
            return _Query(layer_tokens(arch), arch)
        if all(isinstance(item, str) for item in items):
            if items and all(item.lstrip().startswith("id:") for item in items):
                arch = Architecture.from_text("\n".join(items))
                return _Query(layer_tokens(arch), arch)
            return _Query(_tokens(items, vocab))
    raise ModelInputError(f"inputs: expected layer tokens, layer strings, an Architecture or an architecture file, "
                          f"got {type(value).__name__}")


class ArchitectureCompletionPipeline(Pipeline):
    """``pipeline("architecture-completion", model=...)``: the most likely next layers after the layers given."""

    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.tokenizer is None:
            raise ModelInputError("tokenizer: the architecture-completion pipeline needs the layer tokenizer")
        self.arch_gpt = ArchGPT(self.model, LayerTokenizer(self.tokenizer), device=self.device)
        self._special_ids = self.arch_gpt.tokenizer.non_layer_ids  # special + fitness tokens: never a layer

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """Results for one input (a list of dicts) or a batch (a list of such lists); see the module docstring.
        Parameters: ``top_k`` (default 5), ``allowed_tokens`` (a collection of layer tokens, default all)."""
        if isinstance(inputs, (list, tuple)):
            return super().__call__(list(inputs) if _is_batch(inputs) else _Single(inputs), **kwargs)
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(self, top_k: int | None = None, allowed_tokens: Collection[str] | None = None,
                             **unknown: Any) -> tuple[dict, dict, dict]:
        if unknown:
            raise ModelInputError(f"{sorted(unknown)[0]}: not a parameter of the {PIPELINE_TASK} pipeline "
                                  "(top_k, allowed_tokens)")
        post: dict[str, Any] = {}
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
                raise ModelInputError(f"top_k: must be an integer >= 1, got {top_k!r}")
            post["top_k"] = int(top_k)
        if allowed_tokens is not None:
            if isinstance(allowed_tokens, str) or not isinstance(allowed_tokens, Collection) or not all(
                    isinstance(t, str) for t in allowed_tokens):
                raise ModelInputError("allowed_tokens: expected a collection of layer tokens, got "
                                      f"{type(allowed_tokens).__name__}")
            post["allowed_tokens"] = frozenset(allowed_tokens)
        return {}, {}, post

    def preprocess(self, inputs: Any) -> dict[str, Any]:
        query = parse_input(inputs.value if isinstance(inputs, _Single) else inputs, self.arch_gpt.tokenizer)
        ids, mask = self.arch_gpt.context_ids([query.tokens])
        return {"input_ids": ids, "attention_mask": mask, "query": query}

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        out = self.model(input_ids=model_inputs["input_ids"], attention_mask=model_inputs["attention_mask"])
        return {"logits": out.logits[:, -1, :], "query": model_inputs["query"]}

    def postprocess(self, model_outputs: dict[str, Any], top_k: int = 5,
                    allowed_tokens: Collection[str] | None = None) -> list[dict[str, Any]]:
        vocab = self.arch_gpt.tokenizer
        logits = model_outputs["logits"][0].float()
        keep = torch.ones_like(logits, dtype=torch.bool)
        if allowed_tokens is not None:
            keep[:] = False
            keep[[vocab.tokens_to_ids([t])[0] for t in allowed_tokens if vocab.in_vocab(t)]] = True
        keep[self._special_ids] = False
        n = min(top_k, int(keep.sum()))
        if n == 0:
            return []
        scores, ids = torch.topk(torch.softmax(logits.masked_fill(~keep, float("-inf")), dim=0), n)
        query: _Query = model_outputs["query"]
        return [{"token": token, "token_id": int(i), "score": float(score), "layer": self._layer(query.arch, token)}
                for token, i, score in zip(vocab.ids_to_tokens(ids.tolist()), ids, scores)]

    def _layer(self, arch: Architecture | None, token: str) -> str | None:
        """``token`` as the layer after ``arch`` (text form), or None without sizes or when it does not fit."""
        if arch is None or not len(arch):
            return None
        try:
            layer = self.arch_gpt.tokenizer.token_to_layer(token, arch.layers[-1].out_size, len(arch) + 1,
                                                           arch.layers, network_input=arch.input_size)
        except ArchitectureError:
            return None
        return format_layer(layer)


def register_pipeline() -> None:
    """Register :data:`PIPELINE_TASK` with ``transformers.pipelines.PIPELINE_REGISTRY`` (model: any
    ``AutoModelForCausalLM`` checkpoint of ArchGPT). Runs when this module is imported."""
    if PIPELINE_REGISTRY.supported_tasks.get(PIPELINE_TASK, {}).get("impl") is not ArchitectureCompletionPipeline:
        PIPELINE_REGISTRY.register_pipeline(PIPELINE_TASK, pipeline_class=ArchitectureCompletionPipeline,
                                            pt_model=AutoModelForCausalLM, type="text")


register_pipeline()
