"""Token sequences → windowed ``datasets`` for next-layer training (GPT-NAS eq. 1–2) and the block classifier.

Each architecture becomes ``[BOS] t1 … tn [EOS]`` (one token per layer). Every position after BOS is a
target; its window is the 10 tokens before it, left-padded with ``[PAD]``, so an architecture of n layers
gives n + 1 windows (the first is ``[PAD]×9 [BOS] → t1``, the last ``t(n-9) … tn → [EOS]``).

Saved layout of a corpus folder ``DIR`` (see :func:`save_corpus`):

``DIR/lm`` — ``DatasetDict`` (train / validation), one row per distinct window, columns:
    ``input_ids``      int32[11]: the 10 context ids then the next id (positions 0…10 always; the last
                       context token always sits at position 9, so a position embedding means "distance
                       to the prediction point"); ``[PAD]`` on the left where the context is short;
    ``attention_mask`` int8[11]: 0 on ``[PAD]``, 1 elsewhere;
    ``labels``         int64[11] (torch's cross-entropy needs int64): -100 except ``labels[10]`` = the next
                       id. Stock ``GPT2LMHeadModel`` shifts labels by one, so its loss is exactly the
                       next-layer cross-entropy from the 10-layer window (logits at position 9), the
                       quantity the next-layer accuracy metric measures: ``argmax(logits[:, -2]) == labels[:, -1]``;
    ``count``          int64: how often this identical window occurs in the split (windows are
                       deduplicated within a split, so ``sum(count)`` = number of raw windows).
``DIR/blocks`` — ``DatasetDict`` (same split), one row per distinct (window, next layer, block) example
    where the next layer has a block label: ``context_ids`` int32[10], ``next_id`` int64, ``label``
    (``ClassLabel`` whose ``names`` are the block classes, e.g. ``Bottleneck``), ``count`` int64.
``DIR/tokenizer`` — the :class:`~arch_gpt.tokenizer.tokenization.LayerTokenizer`; ``DIR/summary.json``;
``DIR/README.md`` — the dataset card (:mod:`.corpus_card`; each split's ``dataset_info.json`` also describes its
columns, ``Dataset.info.description``).

The split is by architecture (a seeded permutation), so no architecture contributes to both splits; an
identical window may still occur in both (the summary reports how much of validation is also in train).
"""
from __future__ import annotations

import ctypes
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import datasets
import numpy as np
import pyarrow as pa
from datasets import ClassLabel, Dataset, DatasetDict, DatasetInfo, Features, List, Value
from datasets.table import InMemoryTable
from tqdm.auto import tqdm

from arch_gpt.io import atomic_write_text, write_json
from arch_gpt.errors import UserInputError
from arch_gpt.training.corpus_card import BLOCKS_DESCRIPTION, LICENSE, LM_DESCRIPTION, corpus_card
from arch_gpt.training.sequences import TokenSequences

WINDOW = 10
IGNORE_INDEX = -100
SPLITS = ("train", "validation")
LM_FEATURES = Features({
    "input_ids": List(Value("int32"), length=WINDOW + 1),
    "attention_mask": List(Value("int8"), length=WINDOW + 1),
    "labels": List(Value("int64"), length=WINDOW + 1),
    "count": Value("int64"),
})


class CorpusError(UserInputError):
    """Bad corpus-building input (output folder, split fraction, …); the message names the option."""


def block_features(label_names: Sequence[str]) -> Features:
    """Features of the block-classifier dataset for the given block class names."""
    return Features({
        "context_ids": List(Value("int32"), length=WINDOW),
        "next_id": Value("int64"),
        "label": ClassLabel(names=list(label_names)),
        "count": Value("int64"),
    })


def split_architectures(n: int, validation_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and validation indices of ``n`` architectures (disjoint; at least one of each when n ≥ 2
    and the fraction is in (0, 1))."""
    if not 0.0 <= validation_fraction < 1.0:
        raise CorpusError(f"validation_fraction: must be in [0, 1), got {validation_fraction}")
    n_val = int(round(n * validation_fraction))
    if validation_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    order = rng.permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


# ----------------------------------------------------------------------------- windows

def window_rows(seqs: TokenSequences, indices: np.ndarray, pad_id: int, bos_id: int, eos_id: int,
                window: int = WINDOW, dtype=np.uint32) -> np.ndarray:
    """All windows of architectures ``indices``: rows ``[context (window), next, block + 1]`` (block 0 = none)."""
    indices = np.asarray(indices, dtype=np.int64)
    lengths = seqs.lengths[indices]
    span = lengths + window + 2                              # [PAD]*window [BOS] t1..tn [EOS]
    starts = np.concatenate([[0], np.cumsum(span)[:-1]]).astype(np.int64)
    first_layer = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    n_layers = int(lengths.sum())
    within = np.arange(n_layers, dtype=np.int64) - np.repeat(first_layer, lengths)
    src = np.repeat(seqs.offsets[indices], lengths) + within
    dst = np.repeat(starts + window + 1, lengths) + within
    tok = np.full(int(span.sum()), pad_id, dtype=dtype)
    blk = np.zeros(len(tok), dtype=dtype)
    tok[starts + window] = bos_id
    tok[dst] = seqs.ids[src]
    blk[dst] = (seqs.blocks[src].astype(np.int64) + 1).astype(dtype)
    tok[starts + window + 1 + lengths] = eos_id
    n_win = lengths + 1
    first_win = np.concatenate([[0], np.cumsum(n_win)[:-1]]).astype(np.int64)
    ws = np.repeat(starts + 1 - first_win, n_win) + np.arange(int(n_win.sum()), dtype=np.int64)
    rows = np.empty((len(ws), window + 2), dtype=dtype)
    rows[:, :window + 1] = tok[ws[:, None] + np.arange(window + 1)]
    rows[:, window + 1] = blk[ws + window]
    return rows


def unique_rows(rows: np.ndarray, counts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows (in byte order) and how often each occurs (summing ``counts`` when given)."""
    rows = np.ascontiguousarray(rows)
    width = rows.shape[1]
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * width))).ravel()
    uniq, inverse = np.unique(keys, return_inverse=True)
    weights = np.bincount(inverse.ravel(), weights=counts, minlength=len(uniq))
    return uniq.view(rows.dtype).reshape(len(uniq), width), np.rint(weights).astype(np.int64)


class _UniqueCounter:
    """Streaming dedup: unique rows of each batch, merged whenever the pending part outgrows the merged one."""

    def __init__(self, width: int, dtype):
        self.rows = np.zeros((0, width), dtype=dtype)
        self.counts = np.zeros(0, dtype=np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_len = 0

    def add(self, rows: np.ndarray) -> None:
        u, c = unique_rows(rows)
        self._pending.append((u, c))
        self._pending_len += len(u)
        if self._pending_len > max(len(self.rows), 2_000_000):
            self._merge()

    def _merge(self) -> None:
        if self._pending:
            rows = np.concatenate([self.rows] + [u for u, _ in self._pending])
            counts = np.concatenate([self.counts] + [c for _, c in self._pending])
            self.rows, self.counts = unique_rows(rows, counts)
            self._pending, self._pending_len = [], 0

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        self._merge()
        return self.rows, self.counts


@dataclass
class SplitWindows:
    """Deduplicated windows of one split: ``rows`` = [context, next, block + 1] with ``counts``."""
    architectures: int
    rows: np.ndarray
    counts: np.ndarray
    lm_rows: np.ndarray = field(init=False)
    lm_counts: np.ndarray = field(init=False)

    def __post_init__(self):
        self.lm_rows, self.lm_counts = unique_rows(self.rows[:, :WINDOW + 1], self.counts)


def split_windows(seqs: TokenSequences, indices: np.ndarray, pad_id: int, bos_id: int, eos_id: int,
                  batch_layers: int = 2_000_000, progress: bool = False, desc: str = "windows") -> SplitWindows:
    """Windows of architectures ``indices``, built in batches of about ``batch_layers`` layers and deduplicated."""
    top = max(int(seqs.ids.max(initial=0)), pad_id, bos_id, eos_id, len(seqs.block_names) + 1)
    dtype = np.uint16 if top < np.iinfo(np.uint16).max else np.uint32
    counter = _UniqueCounter(WINDOW + 2, dtype)
    indices = np.asarray(indices, dtype=np.int64)
    cum = np.cumsum(seqs.lengths[indices] + 1)
    bounds = np.searchsorted(cum, np.arange(batch_layers, int(cum[-1]) if len(cum) else 0, batch_layers))
    bar = tqdm(total=len(indices), desc=desc, disable=not progress, unit="arch")
    for batch in np.split(indices, np.unique(bounds)):
        if len(batch):
            counter.add(window_rows(seqs, batch, pad_id, bos_id, eos_id, dtype=dtype))
            bar.update(len(batch))
    bar.close()
    rows, counts = counter.result()
    return SplitWindows(len(indices), rows, counts)


# ----------------------------------------------------------------------------- datasets

def _fixed(values: np.ndarray, type_: pa.DataType) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(values).ravel(), type=type_),
                                             values.shape[1])


def _dataset(columns: dict[str, pa.Array], features: Features, description: str) -> Dataset:
    table = pa.Table.from_arrays(list(columns.values()), names=list(columns))
    return Dataset(InMemoryTable(table), info=DatasetInfo(features=features, description=description,
                                                          license=LICENSE))


def lm_dataset(windows: SplitWindows, pad_id: int) -> Dataset:
    """The next-layer dataset of one split (columns in the module docstring)."""
    ids = windows.lm_rows.astype(np.int32)
    labels = np.full(ids.shape, IGNORE_INDEX, dtype=np.int64)
    labels[:, WINDOW] = ids[:, WINDOW]
    return _dataset({
        "input_ids": _fixed(ids, pa.int32()),
        "attention_mask": _fixed((ids != pad_id).astype(np.int8), pa.int8()),
        "labels": _fixed(labels, pa.int64()),
        "count": pa.array(windows.lm_counts, type=pa.int64()),
    }, LM_FEATURES, LM_DESCRIPTION)


def blocks_dataset(windows: SplitWindows, label_names: Sequence[str]) -> Dataset:
    """The block-classifier dataset of one split: windows whose next layer has a block label."""
    keep = windows.rows[:, WINDOW + 1] > 0
    rows = windows.rows[keep].astype(np.int64)
    return _dataset({
        "context_ids": _fixed(rows[:, :WINDOW].astype(np.int32), pa.int32()),
        "next_id": pa.array(rows[:, WINDOW], type=pa.int64()),
        "label": pa.array(rows[:, WINDOW + 1] - 1, type=pa.int64()),
        "count": pa.array(windows.counts[keep], type=pa.int64()),
    }, block_features(label_names), BLOCKS_DESCRIPTION)


def overlap_fraction(train: SplitWindows, validation: SplitWindows) -> float:
    """Share of validation windows (weighted by count) whose identical window also occurs in train."""
    if not len(validation.lm_rows) or not len(train.lm_rows):
        return 0.0
    both = np.concatenate([train.lm_rows, validation.lm_rows])
    _, inverse = np.unique(np.ascontiguousarray(both).view(
        np.dtype((np.void, both.dtype.itemsize * both.shape[1]))).ravel(), return_inverse=True)
    inverse = inverse.ravel()
    in_train = np.isin(inverse[len(train.lm_rows):], inverse[:len(train.lm_rows)])
    return float(validation.lm_counts[in_train].sum() / validation.lm_counts.sum())


@dataclass
class CorpusDatasets:
    """The two ``DatasetDict`` s of a corpus plus the numbers for ``summary.json``."""
    lm: DatasetDict
    blocks: DatasetDict
    stats: dict


def build_datasets(seqs: TokenSequences, pad_id: int, bos_id: int, eos_id: int, validation_fraction: float,
                   rng: np.random.Generator, progress: bool = False) -> CorpusDatasets:
    """Split ``seqs`` (tokenizer ids, see :meth:`TokenSequences.remap`) by architecture, window and dedup;
    the block labels are ``seqs.block_names``. ``stats['split_names']`` lists the architectures of each split."""
    label_names = seqs.block_names
    parts = dict(zip(SPLITS, split_architectures(len(seqs), validation_fraction, rng)))
    windows = {name: split_windows(seqs, idx, pad_id, bos_id, eos_id, progress=progress, desc=f"{name} windows")
               for name, idx in parts.items()}
    lm = DatasetDict({name: lm_dataset(w, pad_id) for name, w in windows.items()})
    blocks = DatasetDict({name: blocks_dataset(w, label_names) for name, w in windows.items()})
    stats = {
        "architectures_per_split": {n: int(len(i)) for n, i in parts.items()},
        "windows_per_split": {n: int(w.counts.sum()) for n, w in windows.items()},
        "unique_windows_per_split": {n: int(len(w.lm_rows)) for n, w in windows.items()},
        "block_examples_per_split": {n: int(w.counts[w.rows[:, WINDOW + 1] > 0].sum()) for n, w in windows.items()},
        "unique_block_examples_per_split": {n: int(blocks[n].num_rows) for n in windows},
        "validation_windows_seen_in_train": overlap_fraction(windows["train"], windows["validation"]),
        "split_names": {n: [seqs.names[i] for i in idx] for n, idx in parts.items()},
    }
    stats["windows"] = sum(stats["windows_per_split"].values())
    stats["unique_windows"] = sum(stats["unique_windows_per_split"].values())
    return CorpusDatasets(lm, blocks, stats)


# ----------------------------------------------------------------------------- output folder

_STAGING_SUFFIX = ".partial"  # hidden sibling ``.OUT.<random>.partial``: made by save_corpus, unique per run
_CORPUS_MARKS = ("summary.json", "lm")  # what makes an existing folder a corpus that --overwrite may replace


def _is_corpus(folder: Path) -> bool:
    return any((folder / mark).exists() for mark in _CORPUS_MARKS)


def check_output(out: str | os.PathLike, overwrite: bool) -> Path:
    """Fail early (before any work) unless ``out`` can take the corpus: it is new, an empty folder, or (with
    ``overwrite``) a corpus folder written earlier. Never a file, a path under a file, or a folder of other data."""
    out = Path(out).expanduser()
    existing = next((p for p in (out, *out.parents) if p.exists() or p.is_symlink()), Path("."))
    if existing.is_symlink() and existing == out:
        raise CorpusError(f"--out: {out} is a symbolic link; give the folder itself")
    if not existing.is_dir():
        where = "is an existing file" if existing == out else f"is under {existing}, which is a file"
        raise CorpusError(f"--out: {out} {where}; give a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CorpusError(f"--out: {existing}: no permission to write there")
    if existing == out and any(out.iterdir()):
        if not overwrite:
            raise CorpusError(f"--out {out}: exists and is not empty (pass --overwrite to replace it)")
        if not _is_corpus(out):
            raise CorpusError(f"--out {out}: exists and is not a corpus folder (no summary.json or lm/); "
                              "--overwrite only replaces a corpus, so move it away or choose another folder")
    return out


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this kernel or file system cannot exchange
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def _swap_in(staging: Path, out: Path) -> None:
    """Put the finished ``staging`` folder at ``out``. When ``out`` exists the two are exchanged atomically where
    the system allows it, so ``out`` is always the previous or the new corpus; elsewhere ``out`` is moved aside
    (to a unique name made here) just before the new one takes its place, a window of one rename."""
    if not (out.exists() or out.is_symlink()):
        os.replace(staging, out)
        return
    if not _exchange(staging, out):
        previous = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".previous"))
        os.replace(out, previous / out.name)
        try:
            os.replace(staging, out)
        except BaseException:
            os.replace(previous / out.name, out)  # put the previous corpus back
            previous.rmdir()
            raise
        staging = previous
    shutil.rmtree(staging, ignore_errors=True)  # now the previous corpus (which --overwrite replaces)


def save_corpus(out: str | os.PathLike, data: CorpusDatasets, tokenizer, summary: dict,
                extra: Callable[[Path], None] | None = None, progress: bool = True) -> Path:
    """Write ``lm/``, ``blocks/``, ``tokenizer/``, ``summary.json``, the card ``README.md`` (and ``extra(folder)``)
    into a hidden staging folder beside ``out`` with a unique name made for this run, then swap it in, so ``out``
    is always either the previous or the complete new corpus. No other folder is ever deleted; a run that fails removes its staging."""
    out = check_output(out, overwrite=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=_STAGING_SUFFIX))
    try:
        bars_were_on = datasets.is_progress_bar_enabled()
        if not progress:
            datasets.disable_progress_bars()
        try:
            for name, splits in (("lm", data.lm), ("blocks", data.blocks)):
                # an empty split still gets one (empty) data file, else datasets cannot load it back
                splits.save_to_disk(str(staging / name), num_shards={k: 1 for k, v in splits.items() if not len(v)})
        finally:
            if bars_were_on:
                datasets.enable_progress_bars()
        tokenizer.save_pretrained(staging / "tokenizer")
        if extra is not None:
            extra(staging)
        write_json(staging / "summary.json", summary, indent=1)
        atomic_write_text(staging / "README.md", str(corpus_card(summary, data, summary.get("command", ""))))
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700; the corpus gets the usual permissions
        _swap_in(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
