"""Command-line dataclasses shared by ``pretrain``, ``finetune`` and ``block_classifier`` (via ``HfArgumentParser``).

``ArchGPTTrainingArguments`` is the stock ``TrainingArguments`` with the paper's defaults (GPT-NAS §4.3):
Adam(W) at lr 1e-4, batch 128, 300 epochs; every field stays overridable on the command line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainingArguments

from arch_gpt.errors import UserInputError
from arch_gpt.training.weighted_trainer import LOSS_WEIGHTINGS

MAX_SEED = 2**32 - 1  # numpy's seed range, which the Trainer's set_seed needs


def require(ok: bool, flag: str, rule: str, value: Any) -> None:
    """Raise a UserInputError ``--flag: must be <rule>, got <value>`` unless ``ok``."""
    if not ok:
        raise UserInputError(f"{flag}: must be {rule}, got {value!r}")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def check_seed(flag: str, value: int | None) -> None:
    """A seed is an integer in numpy's range [0, 2**32 - 1] (``None`` = unset)."""
    if value is not None:
        require(isinstance(value, int) and 0 <= value <= MAX_SEED, flag, f"an integer in [0, {MAX_SEED}]", value)


def check_fraction(flag: str, value: float) -> None:
    """A dropout-like probability in [0, 1)."""
    require(_finite(value) and 0.0 <= value < 1.0, flag, "in [0, 1)", value)


@dataclass
class DataArguments:
    """Which corpus folder to train on and how much of it."""
    data_dir: str = field(metadata={"help": "Corpus folder written by `arch-gpt corpus` (windows + tokenizer/)."})
    heldout_split: str | None = field(default=None, metadata={
        "help": "Split of held-out architectures for evaluation (default: 'test', else 'validation')."})
    max_train_windows: int | None = field(default=None, metadata={
        "help": "Random subsample of at most this many distinct training windows (CPU budgets)."})
    max_eval_windows: int | None = field(default=None, metadata={
        "help": "Random subsample of at most this many distinct held-out windows."})
    subsample_seed: int = field(default=0, metadata={"help": "Seed of the subsampling."})
    loss_weighting: str = field(default="count", metadata={
        "help": "Weight of each distinct window in the loss: count (= full corpus), sqrt or none."})

    def __post_init__(self) -> None:
        require(bool(str(self.data_dir).strip()), "--data_dir", "a corpus folder", self.data_dir)
        for flag, value in (("--max_train_windows", self.max_train_windows),
                            ("--max_eval_windows", self.max_eval_windows)):
            require(value is None or value >= 1, flag, "a positive number of windows", value)
        check_seed("--subsample_seed", self.subsample_seed)
        require(self.loss_weighting in LOSS_WEIGHTINGS, "--loss_weighting", f"one of {', '.join(LOSS_WEIGHTINGS)}",
                self.loss_weighting)


@dataclass
class GPTArguments:
    """Size of a new GPT (pretraining only); the window comes from the corpus."""
    n_embd: int = field(default=128, metadata={"help": "Embedding width."})
    n_layer: int = field(default=4, metadata={"help": "Transformer layers (paper: 4)."})
    n_head: int = field(default=4, metadata={"help": "Attention heads (paper: 4)."})
    dropout: float = field(default=0.1, metadata={"help": "Residual, embedding and attention dropout."})

    def __post_init__(self) -> None:
        for flag, value in (("--n_embd", self.n_embd), ("--n_layer", self.n_layer), ("--n_head", self.n_head)):
            require(value >= 1, flag, "a positive integer", value)
        require(self.n_embd % self.n_head == 0, "--n_head", f"a divisor of --n_embd {self.n_embd}", self.n_head)
        check_fraction("--dropout", self.dropout)


@dataclass
class CheckpointArguments:
    """The checkpoint a stage starts from, and where the finished model goes."""
    model_name_or_path: str = field(default="", metadata={
        "help": "ArchGPT checkpoint to start from: bundled name, folder or Hub id (finetune / block_classifier)."})
    final_dir: str | None = field(default=None, metadata={
        "help": "Where the finished ArchGPT checkpoint is saved (default: output_dir)."})
    model_id: str | None = field(default=None, metadata={
        "help": "Name shown in the model card (default: hub_model_id, else the folder name)."})


@dataclass
class BlockClassifierArguments:
    """Size of the block classifier (paper's FCN)."""
    embed_dim: int | None = field(default=None, metadata={
        "help": "Token embedding width (default: the GPT's n_embd, initialised from its token embeddings)."})
    hidden_size: int = field(default=256, metadata={"help": "Width of the hidden layers."})
    num_hidden_layers: int = field(default=2, metadata={"help": "Number of hidden layers."})
    classifier_dropout: float = field(default=0.1, metadata={"help": "Dropout after each hidden layer."})

    def __post_init__(self) -> None:
        require(self.embed_dim is None or self.embed_dim >= 1, "--embed_dim", "a positive integer", self.embed_dim)
        require(self.hidden_size >= 1, "--hidden_size", "a positive integer", self.hidden_size)
        require(self.num_hidden_layers >= 0, "--num_hidden_layers", "an integer >= 0", self.num_hidden_layers)
        check_fraction("--classifier_dropout", self.classifier_dropout)


@dataclass
class ArchGPTTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with the paper's defaults and settings suited to 11-token windows."""
    output_dir: str = field(default="outputs/arch-gpt", metadata={"help": "Trainer checkpoints and logs."})
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "Write into an existing non-empty output_dir / final_dir (refused otherwise, unless resuming)."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Adam(W) learning rate (paper: 1e-4)."})
    per_device_train_batch_size: int = field(default=128, metadata={"help": "Batch size (paper: 128)."})
    per_device_eval_batch_size: int = field(default=512, metadata={"help": "Evaluation batch size."})
    num_train_epochs: float = field(default=300.0, metadata={"help": "Epochs (paper: 300); see also max_steps."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (0 = Adam)."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate: no, steps or epoch."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to checkpoint: no, steps or epoch."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept in output_dir."})
    logging_steps: float = field(default=50, metadata={"help": "Log every this many steps."})
    prediction_loss_only: bool = field(default=False, metadata={
        "help": "Evaluations during training compute the loss only (no top-1/top-5); the final one always has them."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Columns are selected by the script."})
    resume_from_checkpoint: str | None = field(default=None, metadata={
        "help": "Trainer checkpoint folder to resume from, or 'last' for the newest in output_dir."})
    max_train_minutes: float | None = field(default=None, metadata={
        "help": "Stop training (and checkpoint) after this many minutes of this run, whatever max_steps says; "
                "for shared CPUs whose speed is unknown in advance (use with --lr_scheduler_type constant)."})

    def __post_init__(self) -> None:
        check_training_values(self)
        super().__post_init__()


def check_training_values(a: ArchGPTTrainingArguments) -> None:
    """The numbers a Trainer run needs to make sense: finite positive rates, sizes >= 1, seeds in range, and
    at least one optimisation step (``--max_steps`` > 0, or ``--num_train_epochs`` > 0 with ``--max_steps -1``)."""
    require(bool(str(a.output_dir).strip()), "--output_dir", "a folder", a.output_dir)
    require(_finite(a.learning_rate) and a.learning_rate > 0, "--learning_rate", "a finite number > 0",
            a.learning_rate)
    check_seed("--seed", a.seed)
    check_seed("--data_seed", a.data_seed)
    require(a.max_steps == -1 or a.max_steps >= 1, "--max_steps", "a positive number of steps (or -1: use "
            "--num_train_epochs)", a.max_steps)
    require(_finite(a.num_train_epochs) and a.num_train_epochs >= 0, "--num_train_epochs", "a finite number >= 0",
            a.num_train_epochs)
    require(a.max_steps >= 1 or a.num_train_epochs > 0, "--num_train_epochs",
            "> 0 when --max_steps is not set (training needs at least one step)", a.num_train_epochs)
    for flag, value in (("--per_device_train_batch_size", a.per_device_train_batch_size),
                        ("--per_device_eval_batch_size", a.per_device_eval_batch_size),
                        ("--gradient_accumulation_steps", a.gradient_accumulation_steps)):
        require(value >= 1, flag, "a positive integer", value)
    for flag, value in (("--weight_decay", a.weight_decay), ("--max_grad_norm", a.max_grad_norm),
                        ("--warmup_steps", a.warmup_steps), ("--label_smoothing_factor", a.label_smoothing_factor)):
        require(_finite(value) and value >= 0, flag, "a finite number >= 0", value)
    require(_finite(a.adam_epsilon) and a.adam_epsilon > 0, "--adam_epsilon", "a finite number > 0", a.adam_epsilon)
    for flag, value in (("--adam_beta1", a.adam_beta1), ("--adam_beta2", a.adam_beta2)):
        check_fraction(flag, value)
    for flag, value in (("--logging_steps", a.logging_steps), ("--save_steps", a.save_steps),
                        ("--eval_steps", a.eval_steps)):
        require(value is None or (_finite(value) and value > 0), flag, "a finite number > 0", value)
    require(a.save_total_limit is None or a.save_total_limit >= 1, "--save_total_limit", "a positive integer",
            a.save_total_limit)
    require(a.dataloader_num_workers >= 0, "--dataloader_num_workers", "an integer >= 0", a.dataloader_num_workers)
    require(a.max_train_minutes is None or (_finite(a.max_train_minutes) and a.max_train_minutes > 0),
            "--max_train_minutes", "a finite number of minutes > 0", a.max_train_minutes)
