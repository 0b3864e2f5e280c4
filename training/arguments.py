"""Command-line dataclasses shared by ``pretrain``, ``finetune`` and ``block_classifier`` (via ``HfArgumentParser``).

``ArchGPTTrainingArguments`` is the stock ``TrainingArguments`` with the paper's defaults (GPT-NAS §4.3):
Adam(W) at lr 1e-4, batch 128, 300 epochs; every field stays overridable on the command line.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments


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


@dataclass
class GPTArguments:
    """Size of a new GPT (pretraining only); the window comes from the corpus."""
    n_embd: int = field(default=128, metadata={"help": "Embedding width."})
    n_layer: int = field(default=4, metadata={"help": "Transformer layers (paper: 4)."})
    n_head: int = field(default=4, metadata={"help": "Attention heads (paper: 4)."})
    dropout: float = field(default=0.1, metadata={"help": "Residual, embedding and attention dropout."})


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


@dataclass
class ArchGPTTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with the paper's defaults and settings suited to 11-token windows."""
    output_dir: str = field(default="outputs/arch-gpt", metadata={"help": "Trainer checkpoints and logs."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Adam(W) learning rate (paper: 1e-4)."})
    per_device_train_batch_size: int = field(default=128, metadata={"help": "Batch size (paper: 128)."})
    per_device_eval_batch_size: int = field(default=512, metadata={"help": "Evaluation batch size."})
    num_train_epochs: float = field(default=300.0, metadata={"help": "Epochs (paper: 300); see also max_steps."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (0 = Adam)."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate: no, steps or epoch."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to checkpoint: no, steps or epoch."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept in output_dir."})
    logging_steps: float = field(default=50, metadata={"help": "Log every this many steps."})
    prediction_loss_only: bool = field(default=True, metadata={"help": "Evaluation computes the loss only."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Columns are selected by the script."})
    resume_from_checkpoint: str | None = field(default=None, metadata={
        "help": "Trainer checkpoint folder to resume from, or 'last' for the newest in output_dir."})
    max_train_minutes: float | None = field(default=None, metadata={
        "help": "Stop training (and checkpoint) after this many minutes of this run, whatever max_steps says; "
                "for shared CPUs whose speed is unknown in advance (use with --lr_scheduler_type constant)."})
