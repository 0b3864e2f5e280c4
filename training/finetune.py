"""Fine-tune a pre-trained ArchGPT on another corpus folder, e.g. the 36 torchvision architectures (GPT-NAS §4.3).

Tokens of the new corpus that the checkpoint has never seen are appended to its vocabulary (existing ids kept,
embeddings resized); the corpus's ids are re-mapped by token string. Single process::

    python -m arch_gpt.training.finetune --model_name_or_path outputs/pretrain --data_dir corpora/torchvision \\
        --output_dir outputs/finetune --num_train_epochs 300

With accelerate::

    accelerate launch --config_file training/accelerate/cpu.yaml -m arch_gpt.training.finetune \\
        --model_name_or_path outputs/pretrain --data_dir corpora/torchvision --output_dir outputs/finetune

All ``TrainingArguments`` flags apply (paper defaults: Adam(W), lr 1e-4, batch 128, 300 epochs). The checkpoint's
training record keeps the earlier stages, so the final model card lists every command.

As in :mod:`arch_gpt.training.pretrain`: logging like the transformers examples, ``eval_next_layer_top1`` /
``eval_next_layer_top5`` / ``eval_perplexity`` at every evaluation, ``--report_to tensorboard`` (or ``wandb``,
``mlflow``, ..., ``all``; default ``none``) to send them to a tracker, and ``train_results.json``,
``eval_results.json``, ``all_results.json`` and ``trainer_state.json`` in ``--output_dir``.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Sequence

from arch_gpt.errors import UserInputError
from arch_gpt.modeling import ArchGPT
from arch_gpt.tokenizer import LayerTokenizer
from arch_gpt.training.arguments import ArchGPTTrainingArguments, CheckpointArguments, DataArguments
from arch_gpt.training.corpus_loading import (
    extend_tokenizer, id_map, load_tokenizer, load_windows, remap_ids, window_of,
)
from arch_gpt.training.preflight import load_checkpoint
from arch_gpt.training.stages import (
    check_resume, gpt_stage, parse, run_module, stage_windows, take_push_target, training_logging,
)

MODULE = "arch_gpt.training.finetune"
logger = logging.getLogger(__name__)


def with_corpus_vocabulary(gpt: ArchGPT, corpus_tokenizer: LayerTokenizer) -> ArchGPT:
    """``gpt`` with the corpus tokens it lacks added to tokenizer and embeddings (block classifier dropped if so)."""
    tokenizer = extend_tokenizer(gpt.tokenizer, corpus_tokenizer)
    if tokenizer is gpt.tokenizer:
        return gpt
    gpt.model.resize_token_embeddings(tokenizer.vocab_size)
    gpt.model.config.vocab_size = tokenizer.vocab_size
    if gpt.block_classifier is not None:
        logger.warning("the vocabulary grew: the old block classifier no longer fits and is dropped; retrain it")
    return ArchGPT(gpt.model, tokenizer, None, gpt.stages, device=gpt.device)


def main(args: Sequence[str] | None = None) -> dict[str, float]:
    """Parse ``args``, fine-tune the checkpoint, evaluate, save; returns the held-out metrics."""
    (data_args, ckpt_args, training_args), args = parse(
        (DataArguments, CheckpointArguments, ArchGPTTrainingArguments), args, MODULE)
    push = take_push_target(training_args)
    corpus_tokenizer = load_tokenizer(data_args.data_dir)
    windows = load_windows(data_args.data_dir, corpus_tokenizer.vocab_size)
    gpt = load_checkpoint(ckpt_args.model_name_or_path, "the pre-trained checkpoint to fine-tune")
    if window_of(windows) != gpt.window:
        raise UserInputError(f"--model_name_or_path: {ckpt_args.model_name_or_path} predicts from {gpt.window} "
                             f"tokens, but --data_dir {Path(data_args.data_dir) / 'lm'} has windows of "
                             f"{window_of(windows)}")
    data = stage_windows(data_args, windows)
    old_size = gpt.tokenizer.vocab_size
    gpt = with_corpus_vocabulary(gpt, corpus_tokenizer)
    check_resume(training_args, gpt.model)
    table = id_map(corpus_tokenizer, gpt.tokenizer)
    for split in list(data.windows):
        data.windows[split] = remap_ids(data.windows[split], table, ("input_ids", "labels"))
    corpus = getattr(gpt.model.config, "corpus", "") or ""
    gpt.model.config.corpus = f"{corpus} + {Path(data_args.data_dir).name}".strip(" +")
    extra = {"start_checkpoint": ckpt_args.model_name_or_path, "vocab_size": gpt.tokenizer.vocab_size}
    with training_logging(training_args):
        logger.info("the corpus added %d new tokens to the vocabulary (now %d)", gpt.tokenizer.vocab_size - old_size,
                    gpt.tokenizer.vocab_size)
        return gpt_stage(gpt, "finetune", MODULE, args, data_args, ckpt_args, training_args, data, push, extra)


if __name__ == "__main__":
    sys.exit(run_module(MODULE, main))
