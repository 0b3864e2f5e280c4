"""Held-out metrics of the training scripts: next-layer top-1/top-5 accuracy and perplexity of the GPT, the
most-frequent-token and previous-token bigram baselines (fit on the training split), and block-classifier accuracy.

All accuracies weight each distinct window by its ``count`` (as if evaluated on the duplicated corpus). The
target of a window is its last attended token; the model predicts it from the tokens before it.

The ``Trainer`` computes the same numbers at every evaluation through :data:`NEXT_LAYER_METRICS` and
:data:`BLOCK_METRICS` (``compute_metrics`` plus a ``preprocess_logits_for_metrics`` that keeps a few numbers per
row, not the logits); the ``count`` column reaches them as a second label (``label_names = ["labels", "count"]``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from datasets import Dataset
from scipy import sparse
from transformers import EvalPrediction

IGNORE_INDEX = -100
TOP_K = 5


@dataclass
class NextTokenArrays:
    """A windows split as arrays: ids [N, L], attention mask [N, L], target index per row, counts."""
    input_ids: np.ndarray
    attention_mask: np.ndarray
    target_pos: np.ndarray
    count: np.ndarray

    @property
    def target(self) -> np.ndarray:
        return self.input_ids[np.arange(len(self.input_ids)), self.target_pos]

    @property
    def previous(self) -> np.ndarray:
        """The token right before each target (the bigram baseline's condition)."""
        return self.input_ids[np.arange(len(self.input_ids)), self.target_pos - 1]


def _matrix(column) -> np.ndarray:
    """An int64 [N, L] array from a fixed-length sequence column (numpy or torch formatted)."""
    values = np.asarray(column)
    if values.dtype == object:
        values = np.stack([np.asarray(v) for v in values]) if len(values) else values.reshape(0, 0)
    return values.astype(np.int64)


def _fixed_matrix(dataset: Dataset, column: str) -> np.ndarray | None:
    """An int64 [N, L] array straight from a fixed-size-list arrow column (no per-row Python work); None for any
    other layout or a dataset viewed through an indices mapping (``select``)."""
    import pyarrow as pa

    if getattr(dataset, "_indices", None) is not None:
        return None
    values = dataset.data.column(column)
    if not pa.types.is_fixed_size_list(values.type) or not len(dataset):
        return None
    width = values.type.list_size
    flat = np.concatenate([np.asarray(chunk.flatten()) for chunk in values.chunks]) if values.num_chunks else []
    return np.asarray(flat, dtype=np.int64).reshape(-1, width)


def next_token_arrays(dataset: Dataset) -> NextTokenArrays:
    """Arrays of a windows split (columns input_ids, attention_mask, count); rows need >= 2 attended tokens."""
    data = dataset.with_format("numpy")
    ids = _fixed_matrix(dataset, "input_ids")
    ids = _matrix(data["input_ids"]) if ids is None else ids
    mask = _fixed_matrix(dataset, "attention_mask")
    mask = _matrix(data["attention_mask"]) if mask is None else mask
    count = np.asarray(data["count"], dtype=np.float64) if "count" in dataset.column_names else np.ones(len(ids))
    target_pos = ids.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
    keep = (mask.sum(1) >= 2) & (target_pos >= 1)
    return NextTokenArrays(ids[keep], mask[keep], target_pos[keep], count[keep])


def weighted_accuracy(predicted: np.ndarray, target: np.ndarray, count: np.ndarray) -> float:
    """Share of the (count-weighted) rows whose prediction equals the target."""
    total = count.sum()
    return float((count * (predicted == target)).sum() / total) if total > 0 else float("nan")


@dataclass
class Baselines:
    """The two reference predictors fit on the training split."""
    most_frequent: int
    bigram: np.ndarray  # previous token id -> most frequent next token id

    @classmethod
    def fit(cls, train: NextTokenArrays, vocab_size: int) -> "Baselines":
        """Count-weighted most frequent target overall and per previous token."""
        overall = np.bincount(train.target, weights=train.count, minlength=vocab_size)
        most_frequent = int(overall.argmax())
        table = sparse.coo_matrix((train.count, (train.previous, train.target)),
                                  shape=(vocab_size, vocab_size)).tocsr()
        bigram = np.asarray(table.argmax(axis=1)).ravel()
        seen = np.asarray(table.sum(axis=1)).ravel() > 0
        bigram[~seen] = most_frequent
        return cls(most_frequent, bigram)

    def metrics(self, heldout: NextTokenArrays) -> dict[str, float]:
        """Top-1 accuracy of both baselines on the held-out arrays."""
        target = heldout.target
        return {
            "most_frequent_baseline_top1": weighted_accuracy(np.full_like(target, self.most_frequent), target,
                                                             heldout.count),
            "bigram_baseline_top1": weighted_accuracy(self.bigram[heldout.previous], target, heldout.count),
        }


@torch.no_grad()
def next_layer_metrics(model: torch.nn.Module, heldout: NextTokenArrays, batch_size: int = 1024) -> dict[str, float]:
    """Count-weighted top-1/top-5 accuracy and perplexity (exp of the mean target NLL) of a causal LM."""
    model.eval()
    device = next(model.parameters()).device
    n = len(heldout.count)
    top1, top5, nll = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n)
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        ids = torch.as_tensor(heldout.input_ids[sl], device=device)
        mask = torch.as_tensor(heldout.attention_mask[sl], device=device)
        pos = torch.as_tensor(heldout.target_pos[sl], device=device)
        rows = torch.arange(len(pos), device=device)
        logits = model(input_ids=ids, attention_mask=mask).logits[rows, pos - 1].float()
        target = ids[rows, pos]
        logp = torch.log_softmax(logits, dim=-1)
        nll[sl] = (-logp[rows, target]).cpu().numpy()
        best = logits.topk(min(5, logits.shape[-1]), dim=-1).indices
        top1[sl] = (best[:, 0] == target).cpu().numpy()
        top5[sl] = (best == target[:, None]).any(dim=1).cpu().numpy()
    w = heldout.count / heldout.count.sum()
    return {"next_layer_top1": float((w * top1).sum()), "next_layer_top5": float((w * top5).sum()),
            "perplexity": float(np.exp((w * nll).sum()))}


@torch.no_grad()
def block_classifier_metrics(model: torch.nn.Module, heldout: Dataset, train_labels: np.ndarray,
                             train_count: np.ndarray, batch_size: int = 2048) -> dict[str, float]:
    """Count-weighted accuracy of the block classifier and of the majority-class baseline (fit on train)."""
    model.eval()
    device = next(model.parameters()).device
    data = heldout.with_format("numpy")
    context = _matrix(data["context_ids"])
    next_id = np.asarray(data["next_id"], dtype=np.int64)
    labels = np.asarray(data["labels"], dtype=np.int64)
    count = np.asarray(data["count"], dtype=np.float64) if "count" in heldout.column_names else np.ones(len(labels))
    predicted = np.zeros(len(labels), dtype=np.int64)
    for start in range(0, len(labels), batch_size):
        sl = slice(start, start + batch_size)
        logits = model(context_ids=torch.as_tensor(context[sl], device=device),
                       next_id=torch.as_tensor(next_id[sl], device=device)).logits
        predicted[sl] = logits.argmax(-1).cpu().numpy()
    majority = int(np.bincount(train_labels, weights=train_count).argmax()) if len(train_labels) else 0
    return {"block_accuracy": weighted_accuracy(predicted, labels, count),
            "majority_block_baseline_accuracy": weighted_accuracy(np.full_like(labels, majority), labels, count)}


# ----------------------------------------------------------------------------- inside the Trainer's evaluation

def _first(value: Any) -> Any:
    """The first tensor of a model-output or labels tuple (the value itself otherwise)."""
    return value[0] if isinstance(value, (tuple, list)) else value


def _labels_and_count(label_ids: Any) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` and per-row ``count`` from the Trainer's label_ids (``(labels, count)``, or labels alone: count 1)."""
    if isinstance(label_ids, (tuple, list)):
        labels = np.asarray(label_ids[0])
        count = np.asarray(label_ids[1], dtype=np.float64).reshape(-1) if len(label_ids) > 1 else None
    else:
        labels, count = np.asarray(label_ids), None
    return labels, (np.ones(len(labels)) if count is None else count)


def next_layer_logits_for_metrics(logits: Any, labels: Any) -> torch.Tensor:
    """``preprocess_logits_for_metrics`` of the GPT: per row, the top-5 ids predicted for the target (the last
    label that is not -100; logits at position t predict label t + 1) and the target's log-probability, as float32
    ``[B, 6]`` (ids are exact in float32), so an evaluation keeps 6 numbers per window instead of 11 x vocab."""
    logits, labels = _first(logits), _first(labels).to(_first(logits).device)
    valid = labels[:, 1:] != IGNORE_INDEX
    last = valid.shape[1] - 1 - valid.flip(1).to(torch.int32).argmax(dim=1)
    rows = torch.arange(len(labels), device=logits.device)
    scores = logits[rows, last].float()
    target = labels[rows, last + 1].clamp(min=0)
    k = min(TOP_K, scores.shape[-1])
    out = torch.full((len(labels), TOP_K + 1), -1.0, device=logits.device)
    out[:, :k] = scores.topk(k, dim=-1).indices.float()
    target_logp = torch.log_softmax(scores, dim=-1).gather(1, target[:, None]).squeeze(1)
    out[:, TOP_K] = torch.where(valid.any(dim=1), target_logp, torch.full_like(target_logp, float("nan")))
    return out


def next_layer_eval_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """``compute_metrics`` of the GPT: count-weighted top-1/top-5 and perplexity, as :func:`next_layer_metrics`."""
    kept = np.asarray(_first(prediction.predictions), dtype=np.float64)
    labels, count = _labels_and_count(prediction.label_ids)
    valid = labels[:, 1:] != IGNORE_INDEX
    last = valid.shape[1] - 1 - np.argmax(valid[:, ::-1], axis=1)
    target = labels[np.arange(len(labels)), last + 1]
    keep = valid.any(axis=1) & np.isfinite(kept[:, TOP_K])
    weights = count[keep]
    if not keep.any() or weights.sum() <= 0:
        return {"next_layer_top1": float("nan"), "next_layer_top5": float("nan"), "perplexity": float("nan")}
    weights = weights / weights.sum()
    top, target = kept[keep, :TOP_K], target[keep]
    return {"next_layer_top1": float((weights * (top[:, 0] == target)).sum()),
            "next_layer_top5": float((weights * (top == target[:, None]).any(axis=1)).sum()),
            "perplexity": float(np.exp((weights * -kept[keep, TOP_K]).sum()))}


def block_logits_for_metrics(logits: Any, labels: Any) -> torch.Tensor:
    """``preprocess_logits_for_metrics`` of the block classifier: the predicted class of each row."""
    return _first(logits).argmax(dim=-1)


def block_eval_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """``compute_metrics`` of the block classifier: count-weighted accuracy, as :func:`block_classifier_metrics`."""
    predicted = np.asarray(_first(prediction.predictions)).reshape(-1)
    labels, count = _labels_and_count(prediction.label_ids)
    return {"block_accuracy": weighted_accuracy(predicted, labels.reshape(-1), count)}


@dataclass(frozen=True)
class TrainerMetrics:
    """The pair a ``Trainer`` takes: ``compute_metrics`` and ``preprocess_logits_for_metrics``."""
    compute: Callable[[EvalPrediction], dict[str, float]]
    preprocess: Callable[[Any, Any], torch.Tensor]


NEXT_LAYER_METRICS = TrainerMetrics(next_layer_eval_metrics, next_layer_logits_for_metrics)
BLOCK_METRICS = TrainerMetrics(block_eval_metrics, block_logits_for_metrics)
