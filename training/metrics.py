"""Held-out metrics of the training scripts: next-layer top-1/top-5 accuracy and perplexity of the GPT, the
most-frequent-token and previous-token bigram baselines (fit on the training split), and block-classifier accuracy.

All accuracies weight each distinct window by its ``count`` (as if evaluated on the duplicated corpus). The
target of a window is its last attended token; the model predicts it from the tokens before it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from datasets import Dataset
from scipy import sparse


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


def next_token_arrays(dataset: Dataset) -> NextTokenArrays:
    """Arrays of a windows split (columns input_ids, attention_mask, count); rows need >= 2 attended tokens."""
    data = dataset.with_format("numpy")
    ids = _matrix(data["input_ids"])
    mask = _matrix(data["attention_mask"])
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
