"""Pre-train a new ArchGPT (stock GPT2, 4 layers, 4 heads) on a corpus folder's windows (GPT-NAS §4.3).

Single process (CPU, or the GPU when one is present)::

    python -m arch_gpt.training.pretrain --data_dir corpora/nasbench101 --output_dir outputs/pretrain \\
        --max_train_windows 200000 --max_steps 3000 --eval_strategy steps --eval_steps 1000 \\
        --save_strategy steps --save_steps 1000

With accelerate (configs for cpu, single_gpu and multi_gpu in training/accelerate/)::

    accelerate launch --config_file training/accelerate/cpu.yaml -m arch_gpt.training.pretrain \\
        --data_dir corpora/nasbench101 --output_dir outputs/pretrain --max_steps 3000

Paper defaults (Adam(W), lr 1e-4, batch 128, 300 epochs) apply unless overridden; every ``TrainingArguments``
flag works (``--bf16``, ``--report_to tensorboard``, ``--resume_from_checkpoint last``, ``--push_to_hub
--hub_model_id user/repo``). The finished checkpoint (with held-out metrics and baselines in its README) is written
to ``--final_dir`` (default ``--output_dir``).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from arch_gpt.errors import UserInputError
from arch_gpt.modeling import ArchGPT
from arch_gpt.training.arguments import ArchGPTTrainingArguments, CheckpointArguments, DataArguments, GPTArguments
from arch_gpt.training.corpus_loading import load_tokenizer, load_windows, window_of
from arch_gpt.training.stages import gpt_stage, parse, run_module

MODULE = "arch_gpt.training.pretrain"


def main(args: Sequence[str] | None = None) -> dict[str, float]:
    """Parse ``args``, pre-train, evaluate, save; returns the held-out metrics."""
    (gpt_args, data_args, ckpt_args, training_args), args = parse(
        (GPTArguments, DataArguments, CheckpointArguments, ArchGPTTrainingArguments), args, MODULE)
    if ckpt_args.model_name_or_path:
        raise UserInputError("--model_name_or_path: pretrain starts a new GPT and would ignore it; continue a "
                             "checkpoint with python -m arch_gpt.training.finetune")
    tokenizer = load_tokenizer(data_args.data_dir)
    windows = load_windows(data_args.data_dir, tokenizer.vocab_size)
    window = window_of(windows)
    gpt = ArchGPT.create(tokenizer, seed=training_args.seed, n_embd=gpt_args.n_embd, n_layer=gpt_args.n_layer,
                         n_head=gpt_args.n_head, dropout=gpt_args.dropout, window=window,
                         corpus=Path(data_args.data_dir).name, device="cpu")
    extra = {"n_embd": gpt_args.n_embd, "n_layer": gpt_args.n_layer, "n_head": gpt_args.n_head,
             "dropout": gpt_args.dropout, "window": window}
    return gpt_stage(gpt, "pretrain", MODULE, args, data_args, ckpt_args, training_args, windows, extra)


if __name__ == "__main__":
    sys.exit(run_module(MODULE, main))
