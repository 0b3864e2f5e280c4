"""The all-spaces corpus: next-layer windows whose targets cover every layer token a built-in search space can ask
for, so one GPT knows NAS-Bench-101, NAS-Bench-201, NAS-Bench-Macro, the block space and the torchvision models.

Sources (architectures only; no accuracy of any table is read):

``nasbench101``     ``--nasbench101-cells`` cells drawn uniformly without enumerating the space, expanded to networks;
``nasbench201``     all 15,625 cells (5 ops on 6 edges; ``--nasbench201-cells N``: a seeded sample, for quick builds),
                    expanded by ``create_space("nasbench201", num_classes=10).to_architecture``;
``nasbench-macro``  all 6,561 codes (3 choices on 8 layers; ``--macro-codes N``: a sample), expanded likewise;
``blocks``          ``--block-samples`` genomes of ``create_space("blocks", num_classes=10, input_size=(32, 32, 3))``
                    drawn with a seeded numpy Generator, plus a few genomes that hold every block choice the sample
                    missed (:mod:`.block_coverage`; added to train only);
``torchvision``     the 36 Table-2 models traced at ``--input-size``.

Each source is split by architecture on its own (``--validation-fraction``, default 10% per source; the torchvision
models exactly as ``arch-gpt corpus torchvision`` with the same seed splits them), and every row of
``lm/`` and ``blocks/`` carries its source in the string column ``space`` (windows are deduplicated per space and
split), so metrics can be taken per space. The folder is the usual corpus folder (:mod:`.data`; ``pretrain
--data_dir`` trains on it unchanged). The vocabulary: counted tokens (most frequent first), then the tabular spaces'
CIFAR-100 head tokens, then :data:`~arch_gpt.tokenizer.tokenization.FITNESS_TOKENS` (never a target).
"""
from __future__ import annotations

import itertools
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
from datasets import DatasetDict, Features, Value, concatenate_datasets

from arch_gpt.io import atomic_write_text
from arch_gpt.tokenizer.tokenization import FITNESS_TOKENS, LayerTokenizer
from arch_gpt.training.corpora import _check_models, _label_names, space_vocabulary_tokens
from arch_gpt.training.corpus_card import BLOCKS_DESCRIPTION, LM_DESCRIPTION, build_command
from arch_gpt.training.data import (
    SPLITS, WINDOW, CorpusDatasets, CorpusError, SplitWindows, blocks_dataset, check_output, lm_dataset,
    overlap_fraction, save_corpus, split_architectures, split_windows, unique_rows,
)
from arch_gpt.training.sequences import TokenSequences, tokenize_architectures, tokenize_nasbench101
from arch_gpt.zoo.torchvision_models import iter_table2_architectures, list_table2_models

SOURCES = ("nasbench101", "nasbench201", "nasbench-macro", "blocks", "torchvision")
SPACE_NOTE = (" space string: the source space of the window (nasbench101, nasbench201, nasbench-macro, blocks, "
              "torchvision); rows are deduplicated per space and split.")


@dataclass
class AllSpacesCorpusConfig:
    """Options of ``arch-gpt corpus all-spaces``."""
    out: Path
    nasbench101_cells: int = 20000
    nasbench201_cells: int | None = None       # None: all 15,625
    macro_codes: int | None = None             # None: all 6,561
    block_samples: int = 3000
    models: tuple[str, ...] = field(default_factory=lambda: tuple(list_table2_models()))
    input_size: int = 32
    seed: int = 0
    validation_fraction: float = 0.1
    overwrite: bool = False
    progress: bool = True


def _count(value, option: str, top: int | None = None, zero: bool = True) -> None:
    low = 0 if zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (top is not None and value > top):
        bound = f" and at most {top:,}" if top is not None else ""
        raise CorpusError(f"{option}: must be an integer >= {low}{bound}, got {value!r}")


def check_config(config: AllSpacesCorpusConfig) -> None:
    """Every option, before any work (one-line CorpusError naming the flag)."""
    from arch_gpt.zoo import macro, nasbench201
    from arch_gpt.zoo.nasbench101_sampling import space_size

    check_output(config.out, config.overwrite)
    if isinstance(config.validation_fraction, bool) or not isinstance(config.validation_fraction, (int, float)) \
            or not 0.0 <= config.validation_fraction < 1.0:
        raise CorpusError(f"--validation-fraction: must be in [0, 1), got {config.validation_fraction!r}")
    _count(config.seed, "--seed")
    _count(config.nasbench101_cells, "--nasbench101-cells", space_size(7))
    if config.nasbench201_cells is not None:
        _count(config.nasbench201_cells, "--nasbench201-cells", len(nasbench201.OPS) ** len(nasbench201.EDGES))
    if config.macro_codes is not None:
        _count(config.macro_codes, "--macro-codes", len(macro.CHOICES) ** macro.LENGTH)
    _count(config.block_samples, "--block-samples", 1_000_000)
    if config.models:
        _check_models(tuple(config.models), "--models", config.input_size)
    elif not isinstance(config.input_size, int) or not 16 <= config.input_size <= 1024:
        raise CorpusError(f"--input-size: must be an integer in [16, 1024], got {config.input_size!r}")


# ----------------------------------------------------------------------------- sources

def _subset(items: list[str], limit: int | None, rng: np.random.Generator) -> list[str]:
    if limit is None or limit >= len(items):
        return items
    return [items[i] for i in np.sort(rng.choice(len(items), size=limit, replace=False))]


def _tabular(name: str, limit: int | None, rng: np.random.Generator, progress: bool) -> TokenSequences:
    """Every genome of a tabular space (or a seeded sample of ``limit``), expanded to networks and tokenized."""
    from arch_gpt.search.spaces import create_space

    space = create_space(name, num_classes=10)
    genomes = _subset([space.join(c) for c in itertools.product(space.choices, repeat=space.length)], limit, rng)
    archs = (_named(space.to_architecture(g), g) for g in genomes)
    return tokenize_architectures(archs, progress=progress, desc=f"tokenizing {name}")


def _named(arch, name: str):
    """``arch`` under ``name`` (the genome key), for splits.json."""
    from dataclasses import replace

    return replace(arch, name=name)


def _block_archs(space, genomes: Iterable) -> Iterable:
    for genome in genomes:
        yield _named(space.to_architecture(genome), space.key(genome))


def _blocks(samples: int, rng: np.random.Generator, progress: bool) -> tuple[object, list]:
    """The block space and ``samples`` distinct seeded genomes."""
    from arch_gpt.search.spaces import create_space

    space = create_space("blocks", num_classes=10, input_size=(32, 32, 3))
    genomes: dict[str, tuple] = {}
    tries = 0
    while len(genomes) < samples and tries < 20 * samples + 100:
        genome = space.sample(rng)
        genomes.setdefault(space.key(genome), genome)
        tries += 1
    return space, list(genomes.values())


def _sources(config: AllSpacesCorpusConfig) -> tuple[dict[str, TokenSequences], dict]:
    """Tokenized architectures of every source (provisional ids) and the block coverage facts; each source draws
    from its own Generator (``default_rng([seed, 0, k])``)."""
    from arch_gpt.zoo.nasbench101_sampling import sample_table

    rngs = {name: np.random.default_rng([config.seed, 0, k]) for k, name in enumerate(SOURCES)}
    seqs: dict[str, TokenSequences] = {}
    table = sample_table(config.nasbench101_cells, rngs["nasbench101"])
    seqs["nasbench101"] = tokenize_nasbench101(table, np.arange(len(table)), workers=1, progress=config.progress)
    seqs["nasbench201"] = _tabular("nasbench201", config.nasbench201_cells, rngs["nasbench201"], config.progress)
    seqs["nasbench-macro"] = _tabular("nasbench-macro", config.macro_codes, rngs["nasbench-macro"], config.progress)
    space, genomes = _blocks(config.block_samples, rngs["blocks"], config.progress)
    seqs["blocks"] = tokenize_architectures(_block_archs(space, genomes), progress=config.progress,
                                            desc="tracing block-space networks")
    seqs["torchvision"] = tokenize_architectures(
        iter_table2_architectures(list(config.models), config.input_size) if config.models else iter(()),
        progress=config.progress, desc="tracing torchvision models")
    return seqs, {"space": space}


def choice_tokens(space_name: str) -> set[str]:
    """Every layer token a built-in space's GPT units may ask for (its units' allowed tokens, all genomes)."""
    from arch_gpt.search.spaces import create_space
    from arch_gpt.training.block_coverage import block_choice_tokens

    if space_name == "blocks":
        return set(block_choice_tokens(create_space("blocks", num_classes=10, input_size=(32, 32, 3))))
    space = create_space(space_name, num_classes=10)
    return {t for row in space.choice_tokens() for t in row.values()}


# ----------------------------------------------------------------------------- datasets

def _with_space(dataset, space: str, description: str):
    """``dataset`` plus the string column ``space`` (same value on every row)."""
    from datasets import Dataset, DatasetInfo
    from datasets.table import InMemoryTable

    table = dataset.data.table.append_column("space", pa.array([space] * len(dataset), type=pa.string()))
    features = Features({**dataset.features, "space": Value("string")})
    return Dataset(InMemoryTable(table), info=DatasetInfo(features=features, description=description + SPACE_NOTE,
                                                          license=dataset.info.license))


def _merge(parts: list) -> object:
    return concatenate_datasets(parts) if len(parts) > 1 else parts[0]


def _split(name: str, n: int, config: AllSpacesCorpusConfig) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices of a source's ``n`` architectures. Torchvision uses the Generator of ``arch-gpt
    corpus torchvision`` (same seed, models, fraction: same split), so fine-tuning on that corpus never sees this
    corpus's held-out models; the others ``default_rng([seed, 1, k])`` (k: the source's place in SOURCES)."""
    key = [config.seed, 1] if name == "torchvision" else [config.seed, 1, SOURCES.index(name)]
    return split_architectures(n, config.validation_fraction, np.random.default_rng(key))


def _split_all(seqs: dict[str, TokenSequences], extra_train: dict[str, np.ndarray], config: AllSpacesCorpusConfig,
               pad: int, bos: int, eos: int) -> tuple[dict, dict]:
    """Per source, split by architecture (``extra_train`` rows always train) and window; returns the windows per
    (source, split) and the split indices."""
    windows, parts = {}, {}
    for name, s in seqs.items():
        forced = extra_train.get(name, np.zeros(0, np.int64))
        pool = np.setdiff1d(np.arange(len(s)), forced)
        train, val = _split(name, len(pool), config)
        parts[name] = {"train": np.sort(np.concatenate([pool[train], forced])), "validation": pool[val]}
        for split, idx in parts[name].items():
            windows[name, split] = split_windows(s, idx, pad, bos, eos, progress=config.progress,
                                                 desc=f"{name} {split} windows")
    return windows, parts


def _datasets(windows: dict, label_names: list[str], pad: int) -> tuple[DatasetDict, DatasetDict]:
    lm, blocks = {}, {}
    for split in SPLITS:
        here = [(name, w) for (name, s), w in windows.items() if s == split]
        lm[split] = _merge([_with_space(lm_dataset(w, pad), name, LM_DESCRIPTION) for name, w in here])
        blocks[split] = _merge([_with_space(blocks_dataset(w, label_names), name, BLOCKS_DESCRIPTION)
                                for name, w in here])
    return DatasetDict(lm), DatasetDict(blocks)


def _pooled(windows: dict, split: str) -> SplitWindows:
    """One split's windows over all sources (for the overlap statistic)."""
    here = [w for (_, s), w in windows.items() if s == split]
    rows = np.concatenate([w.rows.astype(np.int64) for w in here])
    rows, counts = unique_rows(rows, np.concatenate([w.counts for w in here]).astype(np.float64))
    return SplitWindows(sum(w.architectures for w in here), rows, counts)


def _stats(windows: dict, parts: dict, seqs: dict[str, TokenSequences]) -> dict:
    per = {name: {split: {"architectures": int(len(parts[name][split])),
                          "windows": int(windows[name, split].counts.sum()),
                          "unique_windows": int(len(windows[name, split].lm_rows))} for split in SPLITS}
           for name in seqs}
    stats = {f"{key}_per_split": {split: sum(per[n][split][key] for n in per) for split in SPLITS}
             for key in ("architectures", "windows", "unique_windows")}
    stats["block_examples_per_split"] = {
        split: int(sum(w.counts[w.rows[:, WINDOW + 1] > 0].sum() for (_, s), w in windows.items() if s == split))
        for split in SPLITS}
    stats["validation_windows_seen_in_train"] = overlap_fraction(_pooled(windows, "train"),
                                                                 _pooled(windows, "validation"))
    stats["windows"] = sum(stats["windows_per_split"].values())
    stats["unique_windows"] = sum(stats["unique_windows_per_split"].values())
    stats["per_space"] = per
    return stats


def _train_targets(seqs: dict[str, TokenSequences], parts: dict) -> set[str]:
    """Token strings that are a training target (every layer of a train architecture is one)."""
    out: set[str] = set()
    for name, s in seqs.items():
        out |= set(s.token_counts(parts[name]["train"]))
    return out


def _jsonable(config: AllSpacesCorpusConfig) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()
            if k not in ("out", "progress", "overwrite")}


def build_all_spaces_corpus(config: AllSpacesCorpusConfig) -> dict:
    """Build the sources, the vocabulary, the per-source splits and windows, and write the corpus folder; returns
    the summary (also in ``summary.json``)."""
    from arch_gpt.training.block_coverage import block_choice_tokens, coverage_genomes

    started = time.perf_counter()
    check_config(config)
    seqs, facts = _sources(config)
    space = facts["space"]
    # block choices that no sampled *training* genome holds: a few genomes with them, always in train
    n_sampled = len(seqs["blocks"])
    sampled_tokens = set(seqs["blocks"].token_counts(_split("blocks", n_sampled, config)[0])) if n_sampled else set()
    required = block_choice_tokens(space)
    extra = coverage_genomes(space, {t: p for t, p in required.items() if t not in sampled_tokens})
    if extra:
        seqs["blocks"] = TokenSequences.concat([seqs["blocks"], tokenize_architectures(_block_archs(space, extra))])
    seqs = {name: s for name, s in seqs.items() if len(s)}  # a source asked for 0 architectures is left out
    if not seqs:
        raise CorpusError("every source is empty: ask for at least one architecture")
    all_seqs = TokenSequences.concat(list(seqs.values()))
    counted = LayerTokenizer.from_counts(all_seqs.token_counts()).layer_token_list
    tokenizer = LayerTokenizer.from_tokens([*counted, *space_vocabulary_tokens(), *FITNESS_TOKENS])
    vocab, unk = tokenizer.get_vocab(), tokenizer.unk_token_id
    labels = _label_names(all_seqs)
    remapped = {name: s.remap(vocab, unk, labels)[0] for name, s in seqs.items()}
    pad, bos, eos = tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id
    forced = {"blocks": np.arange(n_sampled, len(seqs["blocks"]))} if "blocks" in seqs else {}
    windows, parts = _split_all(remapped, forced, config, pad, bos, eos)
    lm, blocks = _datasets(windows, labels, pad)
    stats = _stats(windows, parts, seqs)
    targets = _train_targets(seqs, parts)
    coverage = {name: {"choice_tokens": len(tokens), "in_train_targets": len(tokens & targets)}
                for name in ("nasbench201", "nasbench-macro", "blocks") for tokens in [choice_tokens(name)]}
    split_names = {split: [f"{name}/{seqs[name].names[i]}" for name in seqs for i in parts[name][split]]
                   for split in SPLITS}
    summary = {"corpus": "all-spaces", "sources": list(SOURCES), "architectures": sum(map(len, seqs.values())),
               "layers": int(sum(int(s.lengths.sum()) for s in seqs.values())), "window": WINDOW, **stats,
               "block_coverage_genomes": len(extra), "choice_token_coverage": coverage,
               "vocab_size": tokenizer.vocab_size, "vocab_counted": len(counted),
               "fitness_tokens": list(FITNESS_TOKENS), "unknown_layers": 0, "label_names": labels,
               "accuracy_fields": "none (architectures only)", "options": _jsonable(config)}
    summary["command"] = build_command(summary, _jsonable(AllSpacesCorpusConfig(out=config.out)))
    summary["build_seconds"] = round(time.perf_counter() - started, 2)

    def write_splits(folder: Path) -> None:
        atomic_write_text(folder / "splits.json", json.dumps(split_names, indent=0) + "\n")

    data = CorpusDatasets(lm, blocks, {})
    save_corpus(config.out, data, tokenizer, summary, extra=write_splits, progress=config.progress)
    return summary
