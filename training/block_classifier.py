"""Train the paper's block classifier (GPT-NAS §3.4) on a corpus folder's block labels and attach it to a checkpoint.

Rows are (10-token window, next token) → block class of the next layer, from the torchvision corpus (``DIR/blocks``).
Token embeddings start from the GPT's when the widths match (``--embed_dim`` unset). Single process::

    python -m arch_gpt.training.block_classifier --model_name_or_path outputs/finetune \\
        --data_dir corpora/torchvision --output_dir outputs/blocks --final_dir outputs/arch-gpt-nasbench101

With accelerate::

    accelerate launch --config_file training/accelerate/cpu.yaml -m arch_gpt.training.block_classifier \\
        --model_name_or_path outputs/finetune --data_dir corpora/torchvision --output_dir outputs/blocks

The result is a complete ArchGPT checkpoint (GPT, tokenizer, ``block_classifier/``, card with all stages).

As in :mod:`arch_gpt.training.pretrain`: logging like the transformers examples, ``eval_block_accuracy`` at every
evaluation (count-weighted), ``--report_to tensorboard`` (or ``wandb``, ``mlflow``, ..., ``all``; default ``none``)
to send it to a tracker, and ``train_results.json``, ``eval_results.json`` (with the majority-class baseline),
``all_results.json`` and ``trainer_state.json`` in ``--output_dir``.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from datasets import Dataset, DatasetDict

from arch_gpt.errors import UserInputError
from arch_gpt.hub import StageRecord
from arch_gpt.modeling import new_block_classifier
from arch_gpt.training.arguments import (
    ArchGPTTrainingArguments, BlockClassifierArguments, CheckpointArguments, DataArguments,
)
from arch_gpt.training.corpus_loading import (
    BLOCK_COLUMNS, block_label_names, corpus_summary, heldout_split, id_map, load_blocks, load_tokenizer, remap_ids,
    subsample, window_of,
)
from arch_gpt.training.metrics import BLOCK_METRICS, weighted_accuracy
from arch_gpt.training.preflight import load_checkpoint
from arch_gpt.training.stages import (
    check_resume, command_line, evaluate_heldout, finish, hyperparameters, parse, reporter_metrics, run_module,
    take_push_target, train, training_logging, unprefixed,
)

MODULE = "arch_gpt.training.block_classifier"


def main(args: Sequence[str] | None = None) -> dict[str, float]:
    """Parse ``args``, train the classifier, evaluate, save the checkpoint with it; returns the held-out metrics."""
    (clf_args, data_args, ckpt_args, training_args), args = parse(
        (BlockClassifierArguments, DataArguments, CheckpointArguments, ArchGPTTrainingArguments), args, MODULE)
    push = take_push_target(training_args)
    corpus_tokenizer = load_tokenizer(data_args.data_dir)
    blocks = load_blocks(data_args.data_dir, corpus_tokenizer.vocab_size)
    labels = block_label_names(blocks)
    summary = corpus_summary(data_args.data_dir)
    gpt = load_checkpoint(ckpt_args.model_name_or_path, "the ArchGPT checkpoint the classifier belongs to")
    if window_of(blocks, "context_ids", 0) != gpt.window:
        raise UserInputError(f"--model_name_or_path: {ckpt_args.model_name_or_path} predicts from {gpt.window} "
                             f"tokens, but --data_dir {Path(data_args.data_dir) / 'blocks'} has contexts of "
                             f"{window_of(blocks, 'context_ids', 0)}")
    table = id_map(corpus_tokenizer, gpt.tokenizer)
    heldout = heldout_split(blocks, data_args.heldout_split, Path(data_args.data_dir) / "blocks")
    blocks = DatasetDict({
        "train": subsample(remap_ids(blocks["train"], table, ("context_ids", "next_id")),
                           data_args.max_train_windows, data_args.subsample_seed),
        heldout: subsample(remap_ids(blocks[heldout], table, ("context_ids", "next_id")),
                           data_args.max_eval_windows, data_args.subsample_seed + 1),
    })
    classifier = _new_classifier(gpt, labels, clf_args, training_args.seed)
    check_resume(training_args, classifier)
    with training_logging(training_args):
        return _train_classifier(gpt, classifier, labels, blocks, heldout, summary, clf_args, data_args, ckpt_args,
                                 training_args, push, args)


def majority_baseline(train: Dataset, heldout: Dataset) -> float:
    """Count-weighted held-out accuracy of always predicting the most frequent training class."""
    def arrays(data: Dataset) -> tuple[np.ndarray, np.ndarray]:
        data = data.with_format("numpy")
        count = (np.asarray(data["count"], dtype=np.float64) if "count" in data.column_names
                 else np.ones(len(data)))
        return np.asarray(data["labels"], dtype=np.int64), count

    (train_labels, train_count), (labels, count) = arrays(train), arrays(heldout)
    majority = int(np.bincount(train_labels, weights=train_count).argmax()) if len(train_labels) else 0
    return weighted_accuracy(np.full_like(labels, majority), labels, count)


def _new_classifier(gpt, labels: list[str], clf_args: BlockClassifierArguments, seed: int):
    """A new classifier for ``gpt``'s vocabulary; token embeddings copied from the GPT when the widths match."""
    embed_dim = clf_args.embed_dim or gpt.model.config.n_embd
    classifier = new_block_classifier(gpt.tokenizer, labels, window=gpt.window, embed_dim=embed_dim,
                                      hidden_size=clf_args.hidden_size, num_hidden_layers=clf_args.num_hidden_layers,
                                      dropout=clf_args.classifier_dropout, seed=seed)
    if embed_dim == gpt.model.config.n_embd:
        with torch.no_grad():
            classifier.embed.weight.copy_(gpt.model.get_input_embeddings().weight)
    return classifier


def _train_classifier(gpt, classifier, labels: list[str], blocks: DatasetDict, heldout: str, summary: str,
                      clf_args: BlockClassifierArguments, data_args: DataArguments, ckpt_args: CheckpointArguments,
                      training_args: ArchGPTTrainingArguments, push, args: Sequence[str]) -> dict[str, float]:
    """Train and evaluate the classifier, attach it to ``gpt``, record the stage and save."""
    n_embd = gpt.model.config.n_embd
    embed_dim = clf_args.embed_dim or n_embd
    trainer = train(classifier, training_args, blocks, "train", heldout, BLOCK_COLUMNS, data_args.loss_weighting,
                    BLOCK_METRICS)
    baseline = {"majority_block_baseline_accuracy": majority_baseline(blocks["train"], blocks[heldout])}
    evaluated = evaluate_heldout(trainer, baseline)
    metrics: dict[str, float] = {}
    if trainer.is_world_process_zero():
        metrics = unprefixed(evaluated, ("block_accuracy", "majority_block_baseline_accuracy"))
        trainer.log(reporter_metrics(metrics))
        gpt.attach_block_classifier(trainer.model.cpu())
        params = hyperparameters(training_args, trainer, {
            "loss_weighting": data_args.loss_weighting, "embed_dim": embed_dim, "hidden_size": clf_args.hidden_size,
            "num_hidden_layers": clf_args.num_hidden_layers, "dropout": clf_args.classifier_dropout,
            "embeddings_from_gpt": embed_dim == n_embd, "start_checkpoint": ckpt_args.model_name_or_path})
        gpt.stages.append(StageRecord(
            stage="block_classifier", command=command_line(MODULE, args, trainer.state.global_step),
            data_dir=data_args.data_dir,
            data_summary=(f"{len(blocks['train'])} distinct training rows, {len(blocks[heldout])} held-out "
                          f"('{heldout}'), {len(labels)} block classes" + (f"; {summary}" if summary else "")),
            hyperparameters=params, metrics=metrics))
        finish(gpt, ckpt_args, training_args, push)
    return metrics

if __name__ == "__main__":
    sys.exit(run_module(MODULE, main))
