"""Pre-train a new ArchGPT (stock GPT2, 4 layers, 4 heads) on a corpus folder's windows (GPT-NAS §4.3).

Single process (CPU, or the GPU when one is present)::

    python -m arch_gpt.training.pretrain --data_dir corpora/nasbench101 --output_dir outputs/pretrain \\
        --max_train_windows 200000 --max_steps 3000 --eval_strategy steps --eval_steps 1000 \\
        --save_strategy steps --save_steps 1000

With accelerate (configs for cpu, single_gpu and multi_gpu in training/accelerate/)::

    accelerate launch --config_file training/accelerate/cpu.yaml -m arch_gpt.training.pretrain \\
        --data_dir corpora/nasbench101 --output_dir outputs/pretrain --max_steps 3000

Paper defaults (Adam(W), lr 1e-4, batch 128, 300 epochs) apply unless overridden; every ``TrainingArguments``
flag works (``--bf16``, ``--resume_from_checkpoint last``, ``--push_to_hub --hub_model_id user/repo``,
``--metric_for_best_model next_layer_top1 --load_best_model_at_end``).

Logging is the transformers examples' (info lines on stdout; ``--log_level warning`` quietens it). Every evaluation
(``--eval_strategy steps|epoch``) logs ``eval_loss``, ``eval_next_layer_top1``, ``eval_next_layer_top5`` and
``eval_perplexity`` (count-weighted, on the held-out split). Send them to an experiment tracker with
``--report_to tensorboard`` (or ``wandb``, ``mlflow``, ``trackio``, ..., ``all`` = every installed one; the default
``none`` sends nothing anywhere; tensorboard writes under ``--logging_dir``, default ``output_dir/runs``).

``--output_dir`` receives the Trainer's checkpoints, ``train_results.json``, ``eval_results.json`` (final held-out
metrics and the most-frequent / bigram baselines), ``all_results.json`` and ``trainer_state.json``. The finished
checkpoint (with held-out metrics and baselines in its README) is written to ``--final_dir`` (default
``--output_dir``).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from arch_gpt.errors import UserInputError
from arch_gpt.modeling import ArchGPT
from arch_gpt.training.arguments import ArchGPTTrainingArguments, CheckpointArguments, DataArguments, GPTArguments
from arch_gpt.training.corpus_loading import load_tokenizer, load_windows, window_of
from arch_gpt.training.stages import (
    check_resume, gpt_stage, parse, run_module, stage_windows, take_push_target, training_logging,
)

MODULE = "arch_gpt.training.pretrain"


def main(args: Sequence[str] | None = None) -> dict[str, float]:
    """Parse ``args``, pre-train, evaluate, save; returns the held-out metrics."""
    (gpt_args, data_args, ckpt_args, training_args), args = parse(
        (GPTArguments, DataArguments, CheckpointArguments, ArchGPTTrainingArguments), args, MODULE)
    if ckpt_args.model_name_or_path:
        raise UserInputError("--model_name_or_path: pretrain starts a new GPT and would ignore it; continue a "
                             "checkpoint with python -m arch_gpt.training.finetune")
    push = take_push_target(training_args)
    tokenizer = load_tokenizer(data_args.data_dir)
    windows = load_windows(data_args.data_dir, tokenizer.vocab_size)
    window = window_of(windows)
    data = stage_windows(data_args, windows)
    gpt = ArchGPT.create(tokenizer, seed=training_args.seed, n_embd=gpt_args.n_embd, n_layer=gpt_args.n_layer,
                         n_head=gpt_args.n_head, dropout=gpt_args.dropout, window=window,
                         corpus=Path(data_args.data_dir).name, device="cpu")
    check_resume(training_args, gpt.model)
    extra = {"n_embd": gpt_args.n_embd, "n_layer": gpt_args.n_layer, "n_head": gpt_args.n_head,
             "dropout": gpt_args.dropout, "window": window}
    with training_logging(training_args):
        return gpt_stage(gpt, "pretrain", MODULE, args, data_args, ckpt_args, training_args, data, push, extra)


if __name__ == "__main__":
    sys.exit(run_module(MODULE, main))
