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
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, DatasetDict

from arch_gpt.errors import UserInputError
from arch_gpt.io import read_json
from arch_gpt.tokenizer import LayerTokenizer

WINDOW_COLUMNS = ("input_ids", "attention_mask", "labels", "count")
BLOCK_COLUMNS = ("context_ids", "next_id", "labels", "count")
HELDOUT_SPLITS = ("test", "validation")
IGNORE_INDEX = -100


class CorpusFolderError(UserInputError):
    """A corpus folder that lacks a part the training script needs (names the path and the part)."""


def _split_names(path: Path, what: str) -> list[str]:
    """The split names listed in ``path/dataset_dict.json`` (checked: readable JSON, a list of existing splits)."""
    if not path.parent.is_dir():
        raise CorpusFolderError(f"{path.parent}: no such corpus folder; build one with `arch-gpt corpus`")
    index = path / "dataset_dict.json"
    if not index.is_file():
        raise CorpusFolderError(f"{path}: no {what} DatasetDict here (dataset_dict.json missing); build it with "
                                "`arch-gpt corpus`")
    data = read_json(index)
    splits = data.get("splits") if isinstance(data, dict) else None
    if not isinstance(splits, list) or not splits or not all(isinstance(n, str) and n for n in splits):
        raise CorpusFolderError(f"{index}: key 'splits': must be a non-empty list of split names, got {splits!r}")
    for name in splits:
        for part in ("state.json", "dataset_info.json"):
            if not (path / name / part).is_file():
                raise CorpusFolderError(f"{path / name / part}: missing (split {name!r} listed in {index})")
            read_json(path / name / part)
    return splits


def _load_dict(path: Path, what: str) -> DatasetDict:
    """Load a saved ``DatasetDict`` split by split; a damaged split is a CorpusFolderError naming its folder."""
    splits = {}
    for name in _split_names(path, what):
        try:
            splits[name] = Dataset.load_from_disk(str(path / name))
        except (OSError, ValueError, KeyError, TypeError, IndexError, pa.ArrowException) as err:
            raise CorpusFolderError(f"{path / name}: cannot be read as a dataset ({type(err).__name__}: "
                                    f"{' '.join(str(err).split())[:200]})") from None
    return DatasetDict(splits)


def _value_type(dataset: Dataset, column: str) -> pa.DataType:
    """The arrow type of ``column``'s values (the item type for list columns)."""
    type_ = dataset.data.schema.field(column).type
    while pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_):
        type_ = type_.value_type
    return type_


def _lengths(dataset: Dataset, column: str) -> tuple[int, int]:
    """Shortest and longest list in ``column`` ((0, 0) for an empty split)."""
    if not len(dataset):
        return 0, 0
    chunks = dataset.data.column(column)
    lengths = pc.list_value_length(chunks)
    bounds = pc.min_max(lengths)
    return int(bounds["min"].as_py() or 0), int(bounds["max"].as_py() or 0)


def check_columns(splits: DatasetDict, path: Path, lists: Sequence[str], scalars: Sequence[str]) -> int:
    """Every split has the integer list columns ``lists`` (all rows of one common length) and the integer columns
    ``scalars``; ``count`` is optional. Returns that length. Errors name the split folder and the column."""
    width = None
    for name, dataset in splits.items():
        where = path / name
        missing = [c for c in (*lists, *scalars) if c not in dataset.column_names]
        if missing:
            raise CorpusFolderError(f"{where}: column(s) {', '.join(missing)} missing (has "
                                    f"{', '.join(dataset.column_names)}); build the corpus with `arch-gpt corpus`")
        for column in (*lists, *scalars, *(["count"] if "count" in dataset.column_names else [])):
            is_list = column in lists
            type_ = dataset.data.schema.field(column).type
            if is_list == pa.types.is_integer(type_) or not pa.types.is_integer(_value_type(dataset, column)):
                kind = "a list of integers per row" if is_list else "one integer per row"
                raise CorpusFolderError(f"{where}: column '{column}': must hold {kind}, has type {type_}")
        for column in lists:
            low, high = _lengths(dataset, column)
            if len(dataset) and (low != high or (width is not None and high != width)):
                raise CorpusFolderError(f"{where}: column '{column}': rows of {low} to {high} ids; every row must "
                                        f"have the same length ({width or high})")
            width = high if len(dataset) else width
    if "train" not in splits or not len(splits["train"]):
        raise CorpusFolderError(f"{path / 'train'}: no training rows (the corpus needs a non-empty 'train' split)")
    return int(width or 0)


def check_ids(splits: DatasetDict, path: Path, columns: Sequence[str], size: int, what: str = "token") -> None:
    """Every id in ``columns`` lies in [0, size) (``-100``, the ignored label, allowed in ``labels``)."""
    for name, dataset in splits.items():
        if not len(dataset):
            continue
        for column in columns:
            values = dataset.data.column(column)
            if not pa.types.is_integer(values.type):
                values = pc.list_flatten(values)
            if column == "labels":
                values = pc.filter(values, pc.not_equal(values, IGNORE_INDEX))
            if not len(values):
                continue
            bounds = pc.min_max(values)
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
            if low < 0 or high >= size:
                raise CorpusFolderError(f"{path / name}: column '{column}': {what} ids must be in [0, {size}), "
                                        f"found {low} to {high}; the corpus and its tokenizer/ do not belong together")


def window_of(splits: DatasetDict, column: str = "input_ids", extra: int = 1) -> int:
    """The context length of checked splits: the common row length of ``column`` minus ``extra`` (the next id)."""
    return len(splits["train"][0][column]) - extra


def load_windows(data_dir: str | Path, vocab_size: int | None = None) -> DatasetDict:
    """The windows splits of a corpus folder, checked: columns, one window length, ids below ``vocab_size``."""
    path = Path(data_dir) / "lm"
    windows = _load_dict(path, "windows (lm)")
    width = check_columns(windows, path, ("input_ids", "attention_mask", "labels"), ())
    if width < 2:
        raise CorpusFolderError(f"{path}: column 'input_ids': windows of {width} ids; at least 2 are needed "
                                "(context and next token)")
    if vocab_size is not None:
        check_ids(windows, path, ("input_ids", "labels"), vocab_size)
    return windows


def load_blocks(data_dir: str | Path, vocab_size: int | None = None) -> DatasetDict:
    """The block-label splits (context_ids, next_id, label, count) of a corpus folder; ``label`` becomes
    ``labels``. Checked like :func:`load_windows`, and every label is one of the class names."""
    path = Path(data_dir) / "blocks"
    blocks = _load_dict(path, "blocks")
    if "label" in next(iter(blocks.values())).column_names:
        blocks = blocks.rename_column("label", "labels")
    check_columns(blocks, path, ("context_ids",), ("next_id", "labels"))
    if vocab_size is not None:
        check_ids(blocks, path, ("context_ids", "next_id"), vocab_size)
    check_ids(blocks, path, ("labels",), len(block_label_names(blocks, path)), what="block class")
    return blocks


def block_label_names(blocks: DatasetDict, path: str | Path = "blocks") -> list[str]:
    """Class names of the ``labels`` column (a ``ClassLabel``)."""
    feature = blocks["train"].features.get("labels")
    names = getattr(feature, "names", None)
    if not names:
        raise CorpusFolderError(f"{Path(path) / 'train'}: column 'labels' is not a ClassLabel with block class names")
    return list(names)


def load_tokenizer(data_dir: str | Path) -> LayerTokenizer:
    """The corpus tokenizer saved at ``DIR/tokenizer/``."""
    path = Path(data_dir) / "tokenizer"
    if not Path(data_dir).is_dir():
        what = "a file, not a corpus folder" if Path(data_dir).exists() else "no such corpus folder"
        raise CorpusFolderError(f"--data_dir: {data_dir}: {what}; build one with `arch-gpt corpus`")
    if not (path / "tokenizer.json").is_file():
        raise CorpusFolderError(f"{path}: tokenizer.json missing (not a corpus folder)")
    try:
        return LayerTokenizer.from_pretrained(path)
    except UserInputError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise CorpusFolderError(f"{path / 'tokenizer.json'}: not a layer tokenizer ({type(err).__name__}: "
                                f"{' '.join(str(err).split())[:200]})") from None


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


def heldout_split(splits: DatasetDict, requested: str | None, folder: str | Path = "") -> str:
    """The held-out split's name: ``requested``, else 'test', else 'validation'; it must hold rows (held-out
    metrics of nothing would be NaN). ``folder`` (the splits' folder) is named in errors."""
    if requested is not None:
        if requested not in splits:
            raise CorpusFolderError(f"--heldout_split: no split {requested!r} in {folder or 'the corpus'} (splits: "
                                    f"{', '.join(splits)})")
        name = requested
    else:
        name = next((n for n in HELDOUT_SPLITS if n in splits), None)
        if name is None:
            raise CorpusFolderError(f"{folder or 'corpus'}: no held-out split ('test' or 'validation'); splits: "
                                    f"{', '.join(splits)}; name one with --heldout_split")
    if not len(splits[name]):
        raise CorpusFolderError(f"--heldout_split: split {name!r} of {folder or 'the corpus'} is empty (a corpus "
                                "built with --validation-fraction 0?); pass --heldout_split train to evaluate on the "
                                "training split")
    return name


def subsample(dataset: Dataset, limit: int | None, seed: int) -> Dataset:
    """At most ``limit`` rows, drawn without replacement with ``numpy.random.default_rng(seed)``."""
    if limit is None or len(dataset) <= limit:
        return dataset
    if limit < 1:
        raise UserInputError(f"max windows: must be >= 1, got {limit}")
    rows = np.sort(np.random.default_rng(seed).choice(len(dataset), size=limit, replace=False))
    return dataset.select(rows, keep_in_memory=True)


def extend_tokenizer(model_tokenizer: LayerTokenizer, corpus_tokenizer: LayerTokenizer) -> LayerTokenizer:
    """The model's vocabulary plus the corpus tokens it lacks, appended (existing ids unchanged, fitness tokens
    kept where they are)."""
    known = model_tokenizer.ordered_tokens
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

    # in memory: the corpus folder is the user's input, no cache file is written into it
    return dataset.map(apply, batched=True, desc="re-mapping token ids", keep_in_memory=True)


def select_columns(dataset: Dataset, columns: Sequence[str]) -> Dataset:
    """Keep the training columns (``count`` optional), as torch tensors."""
    missing = [c for c in columns if c != "count" and c not in dataset.column_names]
    if missing:
        raise CorpusFolderError(f"dataset lacks column(s) {', '.join(missing)} (has {', '.join(dataset.column_names)})")
    keep = [c for c in columns if c in dataset.column_names]
    return dataset.select_columns(keep).with_format("torch")
