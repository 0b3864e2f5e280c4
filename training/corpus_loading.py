"""Reading a corpus folder for training: its window (or block) splits and tokenizer, the held-out split,
subsampling for CPU budgets, and re-mapping token ids from the corpus's vocabulary to a model's.

Folder layout (written by :mod:`arch_gpt.training.data`): the windows ``DatasetDict`` at ``DIR/lm``, the block
dataset at ``DIR/blocks``, the corpus tokenizer at ``DIR/tokenizer/``, ``DIR/summary.json``.
Two corpora may have different vocabularies; ids are mapped by token string, and :func:`extend_tokenizer` adds the
tokens a model has not seen (keeping existing ids), so a pretrained GPT can be fine-tuned on a new corpus.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from datasets import Dataset, DatasetDict, load_from_disk

from arch_gpt.errors import UserInputError
from arch_gpt.tokenizer import LayerTokenizer

WINDOW_COLUMNS = ("input_ids", "attention_mask", "labels", "count")
BLOCK_COLUMNS = ("context_ids", "next_id", "labels", "count")
HELDOUT_SPLITS = ("test", "validation")


class CorpusFolderError(UserInputError):
    """A corpus folder that lacks a part the training script needs (names the path and the part)."""


def _load_dict(path: Path, what: str) -> DatasetDict:
    if not (path / "dataset_dict.json").is_file():
        raise CorpusFolderError(f"{path}: no {what} DatasetDict here (dataset_dict.json missing); build it with "
                                "`arch-gpt corpus`")
    return load_from_disk(str(path))


def load_windows(data_dir: str | Path) -> DatasetDict:
    """The windows splits of a corpus folder."""
    return _load_dict(Path(data_dir) / "lm", "windows (lm)")


def load_blocks(data_dir: str | Path) -> DatasetDict:
    """The block-label splits (context_ids, next_id, label, count) of a corpus folder; ``label`` becomes ``labels``."""
    blocks = _load_dict(Path(data_dir) / "blocks", "blocks")
    return blocks.rename_column("label", "labels") if "label" in blocks["train"].column_names else blocks


def block_label_names(blocks: DatasetDict) -> list[str]:
    """Class names of the ``labels`` column (a ``ClassLabel``)."""
    feature = blocks["train"].features["labels"]
    names = getattr(feature, "names", None)
    if not names:
        raise CorpusFolderError("blocks/train: column 'labels' is not a ClassLabel with block class names")
    return list(names)


def load_tokenizer(data_dir: str | Path) -> LayerTokenizer:
    """The corpus tokenizer saved at ``DIR/tokenizer/``."""
    path = Path(data_dir) / "tokenizer"
    if not (path / "tokenizer.json").is_file():
        raise CorpusFolderError(f"{path}: tokenizer.json missing (not a corpus folder)")
    return LayerTokenizer.from_pretrained(path)


def corpus_summary(data_dir: str | Path) -> str:
    """One line describing the corpus from ``summary.json`` (empty when absent)."""
    path = Path(data_dir) / "summary.json"
    if not path.is_file():
        return ""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CorpusFolderError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(data, dict):
        return ""
    def show(value) -> str:
        return f"[{len(value)} items]" if isinstance(value, list) else str(value)

    parts = []
    for key, value in data.items():
        if isinstance(value, (str, int, float)):
            parts.append(f"{key}: {value}")
        elif isinstance(value, dict) and not any(isinstance(v, dict) for v in value.values()):
            parts.append(f"{key}: " + ", ".join(f"{k}={show(v)}" for k, v in value.items()))
    return "; ".join(parts)


def heldout_split(splits: DatasetDict, requested: str | None) -> str:
    """The held-out split's name: ``requested``, else 'test', else 'validation'."""
    if requested is not None:
        if requested not in splits:
            raise CorpusFolderError(f"--heldout_split: no split {requested!r} (splits: {', '.join(splits)})")
        return requested
    for name in HELDOUT_SPLITS:
        if name in splits:
            return name
    raise CorpusFolderError(f"corpus has no held-out split ('test' or 'validation'); splits: {', '.join(splits)}")


def subsample(dataset: Dataset, limit: int | None, seed: int) -> Dataset:
    """At most ``limit`` rows, drawn without replacement with ``numpy.random.default_rng(seed)``."""
    if limit is None or len(dataset) <= limit:
        return dataset
    if limit < 1:
        raise UserInputError(f"max windows: must be >= 1, got {limit}")
    rows = np.sort(np.random.default_rng(seed).choice(len(dataset), size=limit, replace=False))
    return dataset.select(rows)


def extend_tokenizer(model_tokenizer: LayerTokenizer, corpus_tokenizer: LayerTokenizer) -> LayerTokenizer:
    """The model's vocabulary plus the corpus tokens it lacks, appended (existing ids unchanged)."""
    known = model_tokenizer.layer_token_list
    new = [t for t in corpus_tokenizer.layer_token_list if not model_tokenizer.in_vocab(t)]
    return model_tokenizer if not new else LayerTokenizer.from_tokens([*known, *new])


def id_map(source: LayerTokenizer, target: LayerTokenizer) -> np.ndarray:
    """Array mapping each ``source`` id to the ``target`` id of the same token ([UNK] where absent)."""
    table = np.full(source.vocab_size, target.unk_token_id, dtype=np.int64)
    vocab = source.get_vocab()
    tokens = list(vocab)
    table[[vocab[t] for t in tokens]] = target.tokens_to_ids(tokens)
    return table


def remap_ids(dataset: Dataset, table: np.ndarray, columns: Sequence[str]) -> Dataset:
    """Replace token ids in ``columns`` through ``table`` (``-100`` label padding is kept)."""
    if np.array_equal(table, np.arange(len(table))):
        return dataset

    def apply(batch):
        out = {}
        for col in columns:
            values = np.asarray(batch[col], dtype=np.int64)
            out[col] = np.where(values < 0, values, table[np.clip(values, 0, None)]).tolist()
        return out

    return dataset.map(apply, batched=True, desc="re-mapping token ids")


def select_columns(dataset: Dataset, columns: Sequence[str]) -> Dataset:
    """Keep the training columns (``count`` optional), as torch tensors."""
    missing = [c for c in columns if c != "count" and c not in dataset.column_names]
    if missing:
        raise CorpusFolderError(f"dataset lacks column(s) {', '.join(missing)} (has {', '.join(dataset.column_names)})")
    keep = [c for c in columns if c in dataset.column_names]
    return dataset.select_columns(keep).with_format("torch")
