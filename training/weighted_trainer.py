"""A ``Trainer`` whose loss weights each deduplicated window by how often it occurs in the corpus.

The corpus stores each distinct window once with a ``count`` column. ``loss_weighting='count'`` makes training
equivalent to the full (duplicated) corpus, ``'sqrt'`` dampens very common windows, ``'none'`` treats every
distinct window alike. Works for the GPT (shifted causal-LM loss over the label positions) and the block
classifier (one label per row).
"""
from __future__ import annotations

import time

import torch
from torch.nn import functional as F
from transformers import Trainer, TrainerCallback

LOSS_WEIGHTINGS = ("count", "sqrt", "none")


def row_weights(count: torch.Tensor, weighting: str) -> torch.Tensor:
    """Per-row loss weights from the ``count`` column."""
    if weighting not in LOSS_WEIGHTINGS:
        raise ValueError(f"loss_weighting: expected one of {', '.join(LOSS_WEIGHTINGS)}, got {weighting!r}")
    count = count.float()
    if weighting == "count":
        return count
    if weighting == "sqrt":
        return count.sqrt()
    return torch.ones_like(count)


class WeightedLossTrainer(Trainer):
    """Trainer with a count-weighted loss; a per-batch mean, so the Trainer scales it for gradient accumulation."""
    loss_is_scaled_for_ga = False

    def __init__(self, *args, loss_weighting: str = "count", **kwargs):
        row_weights(torch.ones(1), loss_weighting)  # validates the name early
        self.loss_weighting = loss_weighting
        super().__init__(*args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        count = inputs.pop("count", None)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        logits = outputs.logits
        if logits.dim() == 3:  # causal LM: position t predicts label t + 1
            logits, labels = logits[:, :-1, :], labels[:, 1:]
            nll = F.cross_entropy(logits.transpose(1, 2).float(), labels, ignore_index=-100, reduction="none")
            valid = (labels != -100).float()
            per_row = (nll * valid).sum(1) / valid.sum(1).clamp(min=1.0)
        else:
            per_row = F.cross_entropy(logits.float(), labels, reduction="none")
        weights = row_weights(count, self.loss_weighting) if count is not None else torch.ones_like(per_row)
        weights = weights.to(per_row.device)
        loss = (per_row * weights).sum() / weights.sum().clamp(min=1e-12)
        return (loss, outputs) if return_outputs else loss


class TimeBudgetCallback(TrainerCallback):
    """Stop training once ``minutes`` of wall time have passed since training began, saving a checkpoint."""

    def __init__(self, minutes: float):
        if not minutes > 0:
            raise ValueError(f"max_train_minutes: must be > 0, got {minutes}")
        self.seconds, self.start = minutes * 60.0, None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.start is not None and time.monotonic() - self.start >= self.seconds:
            control.should_training_stop = True
            control.should_save = args.save_strategy != "no"
            control.should_evaluate = False
        return control
