"""The two corpora of GPT-NAS (§4.2) built end to end: NAS-Bench-101 networks (pre-training) and the 36
torchvision architectures of Table 2 (fine-tuning), each written as a corpus folder (see :mod:`.data`).

The NAS-Bench-101 build's vocabulary covers both corpora (the torchvision architectures' tokens are counted too,
traced once per machine and then read from a cache, :mod:`.vocab_cache`), so a model pre-trained on it can be
fine-tuned on a torchvision corpus built with ``tokenizer=<nasbench101 corpus>/tokenizer``, which keeps the token
ids identical. A small ``max_archs`` sample (at most :data:`SAMPLE_LIMIT` cells, no record file) is drawn
uniformly without enumerating the space (:mod:`arch_gpt.zoo.nasbench101_sampling`); larger ones, the whole space
and record-filtered builds use the enumeration (``cells='enumerate'`` forces it).
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from arch_gpt.errors import UserInputError
from arch_gpt.io import atomic_write_text
from arch_gpt.tokenizer.tokenization import LayerTokenizer
from arch_gpt.torch_io import BLOCK_CLASSES
from arch_gpt.training.corpus_card import build_command
from arch_gpt.training.data import WINDOW, CorpusError, build_datasets, check_output, save_corpus
from arch_gpt.training.sequences import TokenSequences, tokenize_architectures, tokenize_nasbench101
from arch_gpt.training.vocab_cache import table2_token_counts
from arch_gpt.zoo.torchvision_models import family_of, iter_table2_architectures, list_table2_models

VOCAB_SPACES = ("nasbench201", "nasbench-macro")  # tabular spaces whose layers the vocabulary covers
CELL_MODES = ("auto", "sample", "enumerate")
SAMPLE_LIMIT = 5000  # auto: up to this many cells are sampled directly, more come from the enumeration


@dataclass
class NasBench101CorpusConfig:
    """Options of ``arch-gpt corpus nasbench101`` (defaults: the whole space, 10% of cells held out)."""
    out: Path
    nasbench_record: Path | None = None      # official .tfrecord: keep cells with mean val. acc ≥ threshold
    threshold: float = 0.90
    max_archs: int | None = None              # random subsample of this many cells (seeded)
    seed: int = 0
    max_vertices: int = 7
    validation_fraction: float = 0.1
    vocab_models: tuple[str, ...] = field(default_factory=lambda: tuple(list_table2_models()))
    vocab_spaces: tuple[str, ...] = VOCAB_SPACES  # tabular spaces whose layers get ids too (appended, untrained)
    input_size: int = 32                      # input of the traced torchvision models (vocabulary)
    cell_cache: Path | None = None            # enumeration cache (default ~/.cache/arch-gpt/)
    cells: str = "auto"                       # sample | enumerate | auto (sample when max_archs <= SAMPLE_LIMIT)
    token_cache: Path | None = None           # traced-model token counts (default ~/.cache/arch-gpt/table2-tokens)
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)   # tokenizing processes
    overwrite: bool = False
    progress: bool = True


@dataclass
class TorchvisionCorpusConfig:
    """Options of ``arch-gpt corpus torchvision`` (default: all 36 Table-2 models at 32×32)."""
    out: Path
    input_size: int = 32
    models: tuple[str, ...] = field(default_factory=lambda: tuple(list_table2_models()))
    seed: int = 0
    validation_fraction: float = 0.1
    tokenizer: Path | None = None             # reuse this vocabulary (e.g. the NAS-Bench-101 corpus's)
    overwrite: bool = False
    progress: bool = True


def space_vocabulary_tokens(spaces: tuple[str, ...] = VOCAB_SPACES) -> list[str]:
    """Every layer token of the tabular spaces (each choice repeated over all units, CIFAR-10 and -100 heads),
    in first-seen order. Appended after the counted vocabulary, so existing ids never move and a model
    pre-trained on NAS-Bench-101 can still choose, and learn online, the ops NAS-Bench-101 lacks (none, skip, avg)."""
    from arch_gpt.tokenizer.tokenization import layer_tokens
    from arch_gpt.zoo import macro, nasbench201

    builders = {"nasbench201": lambda c, n: nasbench201.expand([c] * len(nasbench201.EDGES), num_classes=n),
                "nasbench-macro": lambda c, n: macro.expand(c * macro.LENGTH, num_classes=n)}
    choices = {"nasbench201": nasbench201.OPS, "nasbench-macro": macro.CHOICES}
    unknown = sorted(set(spaces) - set(builders))
    if unknown:
        raise CorpusError(f"--vocab-spaces: unknown space(s) {unknown}; choose from {sorted(builders)}")
    tokens: dict[str, None] = {}
    for space in spaces:
        for choice in choices[space]:
            for num_classes in (10, 100):
                tokens.update(dict.fromkeys(layer_tokens(builders[space](choice, num_classes).architecture)))
    return list(tokens)


def _label_names(seqs: TokenSequences) -> list[str]:
    """The torchvision block classes (fixed order, so class indices agree across corpora), then any others."""
    return list(BLOCK_CLASSES) + sorted(set(seqs.block_names) - set(BLOCK_CLASSES))


def _jsonable(config) -> dict:
    return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
            for k, v in asdict(config).items() if k not in ("out", "progress", "overwrite", "token_cache")}


def _finish(seqs: TokenSequences, tokenizer: LayerTokenizer, config, summary: dict, started: float) -> dict:
    """Remap to tokenizer ids, window, deduplicate, write the folder; returns the summary written."""
    remapped, unknown = seqs.remap(tokenizer.get_vocab(), tokenizer.unk_token_id, _label_names(seqs))
    if unknown:
        print(f"warning: {unknown} layers are not in the tokenizer's vocabulary and became [UNK]", file=sys.stderr)
    data = build_datasets(remapped, tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id,
                          config.validation_fraction, np.random.default_rng([config.seed, 1]),
                          progress=config.progress)
    stats = dict(data.stats)
    split_names = stats.pop("split_names")
    summary.update(
        architectures=len(seqs), layers=int(seqs.lengths.sum()), window=WINDOW, **stats,
        vocab_size=tokenizer.vocab_size, unknown_layers=unknown, label_names=remapped.block_names,
        options=_jsonable(config))
    summary["command"] = build_command(summary, _jsonable(type(config)(out=config.out)))
    summary["build_seconds"] = round(time.perf_counter() - started, 2)

    def write_splits(folder: Path) -> None:
        atomic_write_text(folder / "splits.json", json.dumps(split_names, indent=0) + "\n")

    save_corpus(config.out, data, tokenizer, summary, extra=write_splits, progress=config.progress)
    return summary


MAX_INPUT_SIZE = 1024  # tracing a torchvision model at a larger input needs more memory than it is worth


def _check_models(names: tuple[str, ...], option: str, input_size: int) -> Counter:
    """Family counts of ``names``; unknown or repeated names and bad input sizes fail before any work."""
    if not names:
        raise CorpusError(f"{option}: no model given")
    repeated = sorted(n for n, k in Counter(names).items() if k > 1)
    if repeated:
        raise CorpusError(f"{option}: model(s) given twice: {', '.join(repeated)}")
    if not isinstance(input_size, int) or not 16 <= input_size <= MAX_INPUT_SIZE:
        raise CorpusError(f"--input-size: must be an integer in [16, {MAX_INPUT_SIZE}], got {input_size!r}")
    try:
        return Counter(family_of(name) for name in names)
    except UserInputError as err:
        raise CorpusError(f"{option}: {err}") from None


def _check_options(config) -> None:
    """Option errors fail before any enumeration or tracing."""
    check_output(config.out, config.overwrite)
    if not 0.0 <= config.validation_fraction < 1.0:
        raise CorpusError(f"--validation-fraction (validation_fraction): must be in [0, 1), "
                          f"got {config.validation_fraction}")
    if not isinstance(config.seed, int) or config.seed < 0:
        raise CorpusError(f"--seed: must be an integer >= 0, got {config.seed!r}")
    if getattr(config, "max_archs", None) is not None and config.max_archs < 1:
        raise CorpusError(f"--max-archs: must be a positive integer, got {config.max_archs}")
    if not 0.0 <= getattr(config, "threshold", 0.0) <= 1.0:
        raise CorpusError(f"--threshold: must be in [0, 1], got {config.threshold}")
    workers = getattr(config, "workers", 1)
    if not isinstance(workers, int) or workers < 1:
        raise CorpusError(f"--workers: must be a positive integer, got {workers!r}")
    if getattr(config, "nasbench_record", None) is not None:
        _check_record(Path(config.nasbench_record))


def _check_record(path: Path) -> None:
    """The record file exists and its first record reads (a wrong file fails now, not after the enumeration)."""
    from arch_gpt.zoo.nasbench_records import read_records

    if not path.is_file():
        raise CorpusError(f"--nasbench-record: {path}: " + ("is a folder, not a .tfrecord file" if path.is_dir()
                                                            else "no such file"))
    try:
        first = next(read_records(path), None)
    except UserInputError as err:
        raise CorpusError(f"--nasbench-record: {err}") from None
    if first is None:
        raise CorpusError(f"--nasbench-record: {path}: holds no records (an empty file)")


def load_corpus_tokenizer(path: Path) -> LayerTokenizer:
    """The tokenizer of ``--tokenizer``: a tokenizer folder, or a corpus folder holding ``tokenizer/``."""
    folder = path / "tokenizer" if (path / "tokenizer" / "tokenizer.json").is_file() else path
    if not (folder / "tokenizer.json").is_file():
        raise CorpusError(f"--tokenizer: {path}: not a tokenizer folder (no tokenizer.json; give e.g. "
                          "NB101_DIR/tokenizer)")
    try:
        return LayerTokenizer.from_pretrained(folder)
    except UserInputError as err:
        raise CorpusError(f"--tokenizer: {err}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise CorpusError(f"--tokenizer: {folder / 'tokenizer.json'}: not a layer tokenizer "
                          f"({type(err).__name__}: {' '.join(str(err).split())[:200]})") from None


def cell_mode(config: NasBench101CorpusConfig) -> str:
    """'sample' or 'enumerate': how the cells of this build are drawn (a bad combination is a CorpusError)."""
    from arch_gpt.zoo.nasbench101_sampling import space_size

    if config.cells not in CELL_MODES:
        raise CorpusError(f"--cells: must be one of {', '.join(CELL_MODES)}, got {config.cells!r}")
    space = space_size(config.max_vertices)
    if config.cells == "sample":
        if config.nasbench_record is not None:
            raise CorpusError("--cells sample: cannot be combined with --nasbench-record (the records are joined to "
                              "the enumerated cells); use --cells enumerate or auto")
        if config.max_archs is None or config.max_archs > space:
            raise CorpusError(f"--cells sample: needs --max-archs N of at most {space:,} (the cells with at most "
                              f"{config.max_vertices} vertices), got {config.max_archs}")
        return "sample"
    if (config.cells == "auto" and config.nasbench_record is None and config.max_archs is not None
            and config.max_archs <= SAMPLE_LIMIT and config.max_archs < space):
        return "sample"
    return "enumerate"


def _select_cells(table, config: NasBench101CorpusConfig, summary: dict, rng: np.random.Generator) -> np.ndarray:
    candidates = np.arange(len(table))
    if config.nasbench_record is not None:
        from arch_gpt.zoo.nasbench_records import filter_by_validation, read_records

        kept = filter_by_validation(read_records(config.nasbench_record), threshold=config.threshold)
        candidates = np.flatnonzero(np.array([h in kept for h in table.hex_hashes()], dtype=bool))
        summary.update(records_kept=len(kept), cells_after_filter=int(len(candidates)))
    if config.max_archs is not None and config.max_archs < len(candidates):
        candidates = np.sort(rng.choice(candidates, size=config.max_archs, replace=False))
    if not len(candidates):
        raise CorpusError("no NAS-Bench-101 cell is left after filtering (check --nasbench-record / --threshold)")
    return candidates


def _cells(config: NasBench101CorpusConfig, mode: str, rng: np.random.Generator) -> tuple[object, np.ndarray, dict]:
    """The cell table, the chosen rows and the summary's cell fields, sampled or from the enumeration."""
    from arch_gpt.zoo.nasbench101 import MAX_VERTICES, enumerate_table, load_cells
    from arch_gpt.zoo.nasbench101_sampling import CELLS_BY_VERTICES, sample_table, space_size

    space = {str(k): v for k, v in CELLS_BY_VERTICES.items() if k <= config.max_vertices}
    if mode == "sample":
        table = sample_table(config.max_archs, rng, max_vertices=config.max_vertices)
        summary = {"corpus": "nasbench101", "cell_selection": "sampled",
                   "space_cells": space_size(config.max_vertices), "cells_by_vertices": space}
        return table, np.arange(len(table)), summary
    if config.max_vertices == MAX_VERTICES:
        table = load_cells(config.cell_cache, progress=config.progress)
    else:
        table = enumerate_table(max_vertices=config.max_vertices, progress=config.progress)
    summary = {"corpus": "nasbench101", "cell_selection": "enumerated", "space_cells": len(table),
               "enumerated_cells": len(table),
               "cells_by_vertices": {str(k): v for k, v in table.counts_by_vertices().items()}}
    return table, _select_cells(table, config, summary, rng), summary


def build_nasbench101_corpus(config: NasBench101CorpusConfig) -> dict:
    """Sample or enumerate (or load) the cells, select, expand, tokenize, window and write the corpus; returns the
    summary. The torchvision models' token counts come from the cache (traced once per machine)."""
    from arch_gpt.zoo.nasbench101 import MAX_VERTICES

    started = time.perf_counter()
    _check_options(config)
    if not 2 <= config.max_vertices <= MAX_VERTICES:
        raise CorpusError(f"--max-vertices: must be between 2 and {MAX_VERTICES}, got {config.max_vertices}")
    _check_models(config.vocab_models, "--vocab-models", config.input_size)
    mode = cell_mode(config)
    space_tokens = space_vocabulary_tokens(tuple(config.vocab_spaces))
    vocab_counts = table2_token_counts(config.vocab_models, config.input_size, config.token_cache,
                                       progress=config.progress)
    table, chosen, summary = _cells(config, mode, np.random.default_rng([config.seed, 0]))
    seqs = tokenize_nasbench101(table, chosen, workers=config.workers, progress=config.progress)
    counts = Counter(seqs.token_counts()) + vocab_counts
    counted = LayerTokenizer.from_counts(counts).layer_token_list
    tokenizer = LayerTokenizer.from_tokens(counted + space_tokens)
    summary["vocab_models"] = list(config.vocab_models)
    summary["vocab_spaces"] = list(config.vocab_spaces)
    summary["vocab_counted"] = len(counted)
    return _finish(seqs, tokenizer, config, summary, started)


def build_torchvision_corpus(config: TorchvisionCorpusConfig) -> dict:
    """Trace the Table-2 models, tokenize, window and write the fine-tuning corpus; returns the summary."""
    started = time.perf_counter()
    _check_options(config)
    families = _check_models(config.models, "--models", config.input_size)
    tokenizer = load_corpus_tokenizer(Path(config.tokenizer)) if config.tokenizer is not None else None
    seqs = tokenize_architectures(iter_table2_architectures(list(config.models), config.input_size),
                                  progress=config.progress, desc="tracing torchvision models")
    if tokenizer is None:
        tokenizer = LayerTokenizer.from_counts(seqs.token_counts())
    summary = {"corpus": "torchvision", "models": list(config.models), "families": dict(families),
               "input_size": config.input_size,
               "tokenizer_source": str(config.tokenizer) if config.tokenizer is not None else "built"}
    return _finish(seqs, tokenizer, config, summary, started)
