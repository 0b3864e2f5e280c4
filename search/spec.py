"""One way to name and build a search: ``"ga+gpt+ft"`` → :class:`StrategySpec`, and :func:`build_search`.

Every entry point (``arch-gpt search``, ``arch-gpt bench``, the ablations, the Python API) describes a
search with a :class:`SearchConfig` and builds it with :func:`build_search`, so one label means the same
settings everywhere. Options left ``None`` take the per-dataset defaults of :data:`DATASET_DEFAULTS`
(tabular benchmarks use :data:`PAPER_DEFAULTS`, the paper's 30 x 20).

    from arch_gpt.search.spec import SearchConfig, build_search
    result = build_search(SearchConfig(strategy="ga+gpt", space="nasbench201",
                                       benchmark="nasbench201_cifar10.json")).run("runs/nb201")
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from transformers.utils import logging as hf_logging

from arch_gpt.devices import resolve_device
from arch_gpt.errors import UserInputError
from arch_gpt.modeling import ArchGPT
from arch_gpt.search.data import load_image_data
from arch_gpt.search.datasets import ImageData
from arch_gpt.search.defaults import (  # noqa: F401  (DEFAULT_MODEL and GPT_DEFAULTS are spec's API too)
    COND_MODEL, DEFAULT_DATASET, DEFAULT_MODEL, DEFAULT_SPACE, DEFAULT_STRATEGY, GPT_DEFAULTS,
)
from arch_gpt.search.evaluators.tabular import TabularBenchmark, TabularEvaluator, generic_format
from arch_gpt.search.evaluators.training import TrainingConfig, TrainingEvaluator
from arch_gpt.search.execution import ExecutionConfig, Executor, SerialExecutor
from arch_gpt.search.objectives import Objectives
from arch_gpt.search.conditioning import ConditionedFinetuner
from arch_gpt.search.online import OnlineFinetuner
from arch_gpt.search.protocols import Evaluator, NextTokenPredictor, ParsesKeys, SearchSpace
from arch_gpt.search.ray_executor import RayExecutor
from arch_gpt.search.reconstruction import GPTReconstructor
from arch_gpt.search.records import SearchResult
from arch_gpt.search.screening import PREDICTORS, GPTFeatures, OneHotFeatures, Screener
from arch_gpt.search.spaces import create_space
from arch_gpt.search.strategies import Strategy, create_strategy, list_strategies
from arch_gpt.search.unit_tokens import UnitTokens

MODIFIERS = ("gpt", "ft", "cond", "rank")  # in the order a label writes them
GPT_OPTIONS = ("model", "mask_rate", "top_k", "temperature", "top_p")
FINETUNE_OPTIONS = ("finetune_steps", "finetune_top", "finetune_lr")
COND_OPTIONS = ("cond_steps", "cond_lr")
RANK_OPTIONS = ("rank_pool", "rank_predictor", "rank_explore", "rank_features")
RANK_FEATURES = ("gpt", "onehot")
TRAINING_OPTIONS = ("dataset", "data_dir", "download", "subset", "input_size", "image_column", "label_column", "epochs", "lr", "batch_size",
                    "max_steps_per_epoch", "device", "widths", "min_blocks", "max_blocks", "bf16", "resident_data")


@dataclass(frozen=True)
class StrategySpec:
    """A parsed strategy label: a base strategy and its modifiers, written in this order:

    ``+gpt`` GPT reconstruction (Algorithm 1); ``+ft`` the paper's online fine-tune on the fittest, or ``+cond``
    fitness-conditioned generation (both need ``+gpt``, one at a time); ``+rank`` pre-screening by a predictor
    trained online, on the GPT's hidden states with ``+gpt``, else on a one-hot of the genome (the no-GPT twin).
    """
    base: str
    gpt: bool = False
    finetune: bool = False
    cond: bool = False
    rank: bool = False

    @classmethod
    def parse(cls, label: str) -> "StrategySpec":
        """``'ga'``, ``'ga+gpt'``, ``'ga+gpt+ft'``, ``'ga+rank'``, ``'ga+gpt+cond+rank'``, ..."""
        name, *mods = str(label).split("+")
        if name not in list_strategies():
            raise UserInputError(f"strategy: unknown {name!r} in {label!r}; choose one of: {', '.join(all_labels())}")
        unknown = [m for m in mods if m not in MODIFIERS]
        if unknown or len(set(mods)) != len(mods):
            raise UserInputError(f"strategy: {label!r}: {'+' + unknown[0] if unknown else 'a repeated modifier'} "
                                 f"is not one of the modifiers {', '.join('+' + m for m in MODIFIERS)}; choose one "
                                 f"of: {', '.join(all_labels())}")
        spec = cls(name, "gpt" in mods, "ft" in mods, "cond" in mods, "rank" in mods)
        if (spec.finetune or spec.cond) and not spec.gpt:
            raise UserInputError(f"strategy: {label!r}: +ft and +cond fine-tune the GPT, so they need +gpt "
                                 f"(e.g. {name}+gpt+{'ft' if spec.finetune else 'cond'})")
        if spec.finetune and spec.cond:
            raise UserInputError(f"strategy: {label!r}: +ft and +cond are two online fine-tunes; pick one")
        if spec.label != label:
            raise UserInputError(f"strategy: write {label!r} as {spec.label!r} (modifiers in the order "
                                 f"{', '.join('+' + m for m in MODIFIERS)})")
        return spec

    @property
    def label(self) -> str:
        return self.base + "".join(f"+{m}" for m, on in zip(MODIFIERS, (self.gpt, self.finetune, self.cond,
                                                                         self.rank)) if on)


def all_labels() -> list[str]:
    """Every valid strategy label (for help texts and choices)."""
    suffixes = ("", "+gpt", "+gpt+ft", "+gpt+cond", "+rank", "+gpt+rank", "+gpt+ft+rank", "+gpt+cond+rank")
    return [name + suffix for name in list_strategies() for suffix in suffixes]


@dataclass(frozen=True)
class DatasetDefaults:
    """Search and training defaults of one dataset (``None``: the evaluator's or the space's own)."""
    population: int
    generations: int
    epochs: int
    lr: float
    batch_size: int
    input_size: int | None
    widths: tuple[int, ...] | None = None


PAPER_DEFAULTS = DatasetDefaults(population=30, generations=20, epochs=6, lr=0.01, batch_size=128, input_size=None)
DATASET_DEFAULTS: dict[str, DatasetDefaults] = {
    # digits: minutes on 2 CPUs (native 8x8 images, small block widths)
    "digits": DatasetDefaults(population=6, generations=3, epochs=4, lr=0.05, batch_size=64, input_size=8,
                              widths=(8, 16, 24, 32)),
    "cifar10": replace(PAPER_DEFAULTS, batch_size=512),
    "cifar100": replace(PAPER_DEFAULTS, batch_size=512),
    "imagenet": PAPER_DEFAULTS,
}


@dataclass(frozen=True)
class SearchConfig:
    """Every option of a search. ``None`` takes the per-dataset default (:data:`DATASET_DEFAULTS`)."""
    strategy: str = DEFAULT_STRATEGY
    space: str = DEFAULT_SPACE
    seed: int = 0
    # what scores a candidate: a benchmark table (lookup), else training on a dataset
    benchmark: str | None = None
    fitness_field: str | None = None  # a generic table (JSON or CSV): the field selection uses,
    test_field: str | None = None  # the field only reported,
    cost_fields: tuple[str, ...] = ()  # and cost fields kept with each record (params, flops, latency, ...)
    dataset: str = DEFAULT_DATASET
    data_dir: str | None = None
    download: bool = False
    subset: float | None = None
    input_size: int | None = None
    image_column: str | None = None  # hf:NAME datasets: the image and label columns (None: detected)
    label_column: str | None = None
    num_classes: int | None = None  # None: from the dataset, or inferred from the table's file name
    # the search's size
    population: int | None = None
    generations: int | None = None
    budget: int | None = None  # evaluations; default population x generations
    # the GPT (+gpt, +gpt+ft); None: the GPT_DEFAULTS below. Set for a strategy without the GPT, it is refused.
    model: str | None = None  # DEFAULT_MODEL
    mask_rate: float | None = None  # 0.4, decaying linearly to 0
    top_k: int | None = None  # 1: greedy (cached) predictions; k > 1 samples among the k most likely
    temperature: float | None = None  # 1.0, of that sampling
    top_p: float | None = None  # 1.0: no nucleus cut; p < 1 samples among the fewest likeliest tokens with mass p
    finetune_steps: int | None = None  # +ft: 5 AdamW steps after each generation,
    finetune_top: int | None = None  # on the units of the 10 fittest architectures so far,
    finetune_lr: float | None = None  # at lr 1e-3
    cond_steps: int | None = None  # +cond: full-batch AdamW steps from the pre-trained weights after each generation,
    cond_lr: float | None = None  # at this learning rate (defaults in GPT_DEFAULTS)
    rank_pool: int | None = None  # +rank: proposals per evaluated candidate (5: evaluate the best fifth)
    rank_predictor: str | None = None  # +rank: trees (extra trees) | gp (Gaussian process), scikit-learn
    rank_explore: float | None = None  # +rank: rank by predicted mean + this many standard deviations
    rank_features: str | None = None  # +rank: gpt (hidden states) | onehot; None: gpt with +gpt, else onehot
    # training of each candidate (not used with a benchmark)
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    max_steps_per_epoch: int | None = None
    accelerate: bool = True  # weight inheritance, predicted-only and BN-only training
    device: str | None = None
    bf16: bool = False  # autocast candidate training to bfloat16
    resident_data: bool | None = None  # keep small datasets on the device (None: on CUDA)
    # where trials run (search/execution.py): serial for 1 worker, else Ray
    execution: ExecutionConfig = ExecutionConfig()
    objectives: str = "val_acc"  # or val_acc,params / val_acc,flops / val_acc,latency ...: NSGA-II in ga
    max_params: int | None = None  # budgets: a candidate over one is recorded infeasible, never trained
    max_flops: int | None = None
    max_latency_ms: float | None = None
    latency_batch: int = 1  # images per latency measurement (on the search's device)
    latency: bool = False  # measure and record every candidate's latency (in history.jsonl "costs")
    asynchronous: bool = False  # re only: steady state, a child whenever a trial finishes (order-dependent)
    # block-space options (None: the space's defaults; widths default per dataset)
    widths: tuple[int, ...] | None = None
    min_blocks: int | None = None
    max_blocks: int | None = None

    def gpt(self, name: str):
        """A GPT option's value, or its default from :data:`GPT_DEFAULTS`."""
        value = getattr(self, name)
        return GPT_DEFAULTS[name] if value is None else value

    @property
    def tabular(self) -> bool:
        return self.benchmark is not None

    def defaults(self) -> DatasetDefaults:
        """The defaults that fill this config's ``None`` options."""
        return PAPER_DEFAULTS if self.tabular else DATASET_DEFAULTS.get(self.dataset, PAPER_DEFAULTS)


@dataclass
class Search:
    """A built search: the strategy (space, evaluator, reconstructor inside) and the online fine-tune."""
    strategy: Strategy
    spec: StrategySpec
    finetuner: OnlineFinetuner | None = None
    execution: ExecutionConfig = ExecutionConfig()

    def run(self, output_dir: str | Path | None = None, resume: bool = False, progress: bool = True) -> SearchResult:
        """Run to the budget. A fine-tuned GPT is restored afterwards, so a shared model never leaks; a Ray
        instance started for the run is shut down."""
        executor = make_executor(self.execution)
        if self.finetuner is not None:
            self.finetuner.reset()
        try:
            return self.strategy.run(output_dir, resume=resume, progress=progress, on_generation=self.finetuner,
                                     label=self.spec.label, executor=executor)
        finally:
            executor.close()
            if self.finetuner is not None:
                self.finetuner.restore()

    @property
    def finetune_s(self) -> float:
        """Seconds spent fine-tuning online (0 without +ft)."""
        return 0.0 if self.finetuner is None else self.finetuner.seconds


def validate(config: SearchConfig) -> StrategySpec:
    """Check every setting before anything is loaded or written: in range, and none that this search would
    silently ignore. Returns the parsed strategy; UserInputError names the parameter."""
    spec = StrategySpec.parse(config.strategy)
    for name in ("population", "generations", "budget", "epochs", "batch_size", "max_steps_per_epoch"):
        value = getattr(config, name)
        if value is not None and value < (0 if name == "epochs" else 1):
            raise UserInputError(f"{name}: must be {'>= 0' if name == 'epochs' else 'positive'}, got {value}")
    if config.budget is not None and config.generations is not None:
        raise UserInputError("budget, generations: give one of them, not both")
    if config.seed < 0:
        raise UserInputError(f"seed: must be >= 0, got {config.seed}")
    if not 0.0 <= config.gpt("mask_rate") <= 1.0:
        raise UserInputError(f"mask_rate: must be in [0, 1], got {config.mask_rate}")
    if config.num_classes is not None and config.num_classes < 1:
        raise UserInputError(f"num_classes: must be positive, got {config.num_classes}")
    for name in ("top_k", "finetune_steps", "finetune_top", "cond_steps"):
        if config.gpt(name) < 1:
            raise UserInputError(f"{name}: must be at least 1, got {config.gpt(name)}")
    if config.gpt("rank_pool") < 2:
        raise UserInputError(f"rank_pool: must be at least 2 (proposals per evaluated candidate), "
                             f"got {config.gpt('rank_pool')}")
    if config.gpt("rank_predictor") not in PREDICTORS:
        raise UserInputError(f"rank_predictor: unknown {config.gpt('rank_predictor')!r}; choose one of: "
                             f"{', '.join(PREDICTORS)}")
    if not 0 < config.gpt("top_p") <= 1:
        raise UserInputError(f"top_p: must be in (0, 1], got {config.gpt('top_p')}")
    if not (math.isfinite(config.gpt("rank_explore")) and config.gpt("rank_explore") >= 0):
        raise UserInputError(f"rank_explore: must be a finite number >= 0, got {config.gpt('rank_explore')}")
    for name in ("temperature", "finetune_lr", "cond_lr"):
        if not (config.gpt(name) > 0 and math.isfinite(config.gpt(name))):
            raise UserInputError(f"{name}: must be a finite number > 0, got {config.gpt(name)}")
    if config.lr is not None and not (config.lr > 0 and math.isfinite(config.lr)):
        raise UserInputError(f"lr: must be a finite number > 0, got {config.lr}")
    if config.rank_features is not None and config.rank_features not in RANK_FEATURES:
        raise UserInputError(f"rank_features: unknown {config.rank_features!r}; choose one of: "
                             f"{', '.join(RANK_FEATURES)}")
    uses_model = spec.gpt or (spec.rank and config.rank_features == "gpt")
    ignored = [] if spec.gpt else [n for n in GPT_OPTIONS if getattr(config, n) is not None
                                   and not (n == "model" and uses_model)]
    ignored += [] if spec.finetune else [n for n in FINETUNE_OPTIONS if getattr(config, n) is not None]
    ignored += [] if spec.cond else [n for n in COND_OPTIONS if getattr(config, n) is not None]
    ignored += [] if spec.rank else [n for n in RANK_OPTIONS if getattr(config, n) is not None]
    if config.tabular:
        default = SearchConfig()
        ignored += [n for n in TRAINING_OPTIONS if getattr(config, n) != getattr(default, n)
                    and not (n == "device" and spec.gpt)]
    if ignored:
        why = "a tabular search trains nothing" if config.tabular and ignored[-1] in TRAINING_OPTIONS else \
            f"strategy {spec.label!r} does not use them"
        hint = "" if spec.gpt or not set(ignored) & set(GPT_OPTIONS) else " or use a +gpt strategy"
        raise UserInputError(f"{', '.join(ignored)}: would be ignored ({why}); drop them{hint}")
    if config.device is not None:
        resolve_device(config.device)
    table_fields = [n for n in ("fitness_field", "test_field") if getattr(config, n)] + \
        (["cost_fields"] if config.cost_fields else [])
    if table_fields and not config.tabular:
        raise UserInputError(f"{', '.join(table_fields)}: name fields of a --benchmark table; no table was given")
    if (config.test_field or config.cost_fields) and not config.fitness_field:
        raise UserInputError("fitness_field: a generic table needs its fitness field named too")
    objectives_of(config)
    if config.asynchronous and spec.base != "re":
        raise UserInputError(f"asynchronous: only regularized evolution (re) runs in steady state, not {spec.base!r}")
    if config.asynchronous and spec.rank:
        raise UserInputError("asynchronous: +rank screens a generation's pool at once; drop --async or +rank")
    if spec.rank and objectives_of(config).multi:
        raise UserInputError(f"objectives: +rank ranks candidates by fitness alone; use one objective "
                             f"(not {config.objectives!r}) or drop +rank")
    return spec


def objectives_of(config: SearchConfig) -> Objectives:
    """The search's objectives and budgets (UserInputError naming the parameter)."""
    return Objectives.parse(config.objectives, max_params=config.max_params, max_flops=config.max_flops,
                            max_latency_ms=config.max_latency_ms, latency_batch=config.latency_batch,
                            device=config.device, record=("latency",) if config.latency else ())


def load_model(name: str, device: str | None = None) -> ArchGPT:
    """``ArchGPT.from_pretrained(name)`` with a one-line error naming the model that could not be loaded."""
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a bar per weight tensor of a 1M-parameter model is noise
    try:
        return ArchGPT.from_pretrained(name, device=device)
    except (OSError, UserInputError) as err:
        raise UserInputError(f"model: cannot load the GPT {name!r} ({err}); pass a trained ArchGPT folder, a "
                             f"bundled name or a Hub id, or use a strategy without +gpt") from None
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def build_space(config: SearchConfig, data: ImageData | None = None, table: TabularBenchmark | None = None
                ) -> SearchSpace:
    """The space of ``config``, sized for the data (or the table's classes)."""
    if table is not None:
        space = create_space(config.space, num_classes=config.num_classes or table.num_classes)
        table.check_space(space)
        return space
    assert data is not None
    h, w, c = data.image_size
    extra: dict = {}
    if config.space == "blocks":
        widths = config.widths or config.defaults().widths
        extra = {k: v for k, v in {"widths": widths, "min_blocks": config.min_blocks,
                                   "max_blocks": config.max_blocks}.items() if v is not None}
    return create_space(config.space, num_classes=config.num_classes or data.num_classes, input_size=(h, w, c),
                        **extra)


def build_evaluator(config: SearchConfig, space: SearchSpace, data: ImageData | None = None,
                    table: TabularBenchmark | None = None) -> Evaluator:
    """A table lookup, or training on ``data`` with the config's (or the dataset's default) schedule."""
    if table is not None:
        return TabularEvaluator(table)
    assert data is not None
    d = config.defaults()
    fast = config.accelerate
    training = TrainingConfig(
        epochs=_pick(config.epochs, d.epochs), lr=_pick(config.lr, d.lr), batch_size=_pick(config.batch_size,
                                                                                           d.batch_size),
        max_steps_per_epoch=config.max_steps_per_epoch, device=config.device, seed=config.seed, bf16=config.bf16,
        resident_data=config.resident_data,
        train_predicted_only=fast, bn_only=fast, inherit_weights=fast)
    return TrainingEvaluator(space, data, training)


def build_search(config: SearchConfig, *, table: TabularBenchmark | None = None, data: ImageData | None = None,
                 space: SearchSpace | None = None, evaluator: Evaluator | None = None,
                 model: NextTokenPredictor | None = None) -> Search:
    """Build the search ``config`` describes. Parts already loaded (the table, the data, the space, an
    evaluator, the GPT or any other next-token predictor) can be passed in to share them between runs; the rest
    is loaded here."""
    spec = validate(config)
    d = config.defaults()
    if config.tabular and table is None:
        fmt = generic_format(config.fitness_field, config.test_field, config.cost_fields) \
            if config.fitness_field else None
        table = TabularBenchmark.load(config.benchmark, fmt)
    if not config.tabular and data is None and (space is None or evaluator is None):
        data = load_image_data(config.dataset, data_dir=config.data_dir, download=config.download,
                               subset=config.subset, input_size=_pick(config.input_size, d.input_size),
                               seed=config.seed, image_column=config.image_column, label_column=config.label_column)
    space = space or build_space(config, data, table)
    evaluator = evaluator or build_evaluator(config, space, data, table)
    reconstructor = finetuner = None
    tokens = UnitTokens()  # one token cache for reconstruction, the online fine-tunes and ranking features
    features = config.rank_features or ("gpt" if spec.gpt else "onehot")
    if spec.gpt or (spec.rank and features == "gpt"):
        model = model or load_model(config.model or (COND_MODEL if spec.cond else DEFAULT_MODEL), config.device)
    if spec.gpt:
        reconstructor = GPTReconstructor(model, mask_rate=config.gpt("mask_rate"), top_k=config.gpt("top_k"),
                                         temperature=config.gpt("temperature"), top_p=config.gpt("top_p"),
                                         tokens=tokens)
        if spec.finetune:
            finetuner = OnlineFinetuner(model, space, config.gpt("finetune_steps"), config.gpt("finetune_top"),
                                        config.gpt("finetune_lr"), tokens=tokens)
        elif spec.cond:
            finetuner = ConditionedFinetuner(model, space, reconstructor, config.gpt("cond_steps"),
                                             config.gpt("cond_lr"), tokens=tokens)
    screener = None
    if spec.rank:
        if not isinstance(space, ParsesKeys):
            raise UserInputError(f"strategy: +rank needs a space that rebuilds genomes from keys; {space.name!r} "
                                 f"does not")
        featurizer = GPTFeatures(model, tokens) if features == "gpt" else OneHotFeatures(tokens)
        screener = Screener(featurizer, pool=config.gpt("rank_pool"), predictor=config.gpt("rank_predictor"),
                            explore=config.gpt("rank_explore"))
    population = _pick(config.population, d.population)
    generations = _pick(config.generations, d.generations)
    budget = config.budget if config.budget is not None else population * generations
    common = {"space": space, "evaluator": evaluator, "reconstructor": reconstructor, "seed": config.seed,
              "budget": budget, "objectives": objectives_of(config), "screener": screener}
    if spec.base == "ga":
        strategy = create_strategy("ga", population=population, generations=generations, **common)
    elif spec.base == "random":
        strategy = create_strategy("random", batch_size=population, **common)
    elif spec.base == "re":
        strategy = create_strategy("re", population=population, sample_size=max(1, min(10, population // 3)),
                                   children_per_generation=min(10, population), asynchronous=config.asynchronous,
                                   **common)
    else:
        strategy = create_strategy(spec.base, **common)
    return Search(strategy, spec, finetuner, config.execution)


def make_executor(config: ExecutionConfig) -> Executor:
    """Serial trials for one worker, Ray tasks for more."""
    return SerialExecutor(config.threads) if config.workers == 1 else RayExecutor(config)


def _pick(value, default):
    return value if value is not None else default
