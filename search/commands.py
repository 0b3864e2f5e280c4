"""``arch-gpt search``: find a CNN with a (GPT-helped) search; the README's main-job command.

With no arguments it searches the block space on the embedded digits dataset with ``ga+gpt`` and the
bundled GPT on a small budget that ends in minutes on 2 CPUs: population 6, 3 generations, digits at
their native 8x8, block widths 8-32, 4 epochs at lr 0.05, batch 64 (:data:`QUICK`). Other datasets get
the paper's settings (:data:`PAPER`); every one of them can be set by its option.
``--benchmark FILE`` scores a tabular space (nasbench201, nasbench-macro) by table lookup instead of
training (budget then defaults to the paper's 30 x 20). Outputs: see :mod:`arch_gpt.search.runner`.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from arch_gpt.errors import UserInputError

STRATEGIES = ("ga", "ga+gpt", "random", "random+gpt", "re", "re+gpt")
DEFAULT_MODEL = "arch-gpt-nasbench101"
QUICK = {"population": 6, "generations": 3, "epochs": 4, "lr": 0.05, "batch_size": 64, "input_size": 8,
         "widths": (8, 16, 24, 32)}  # digits default: minutes on 2 CPUs
PAPER = {"population": 30, "generations": 20, "epochs": 6, "lr": 0.01, "batch_size": None, "input_size": None,
         "widths": None}


def register(subparsers) -> None:
    p = subparsers.add_parser("search", help="search an architecture (GA + GPT reconstruction by default)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="blocks", help="search space: blocks, nasbench201, nasbench-macro")
    p.add_argument("--dataset", default="digits", help="digits (embedded), cifar10, cifar100, imagenet")
    p.add_argument("--data-dir", help="folder of cifar10/cifar100/imagenet data")
    p.add_argument("--download", action="store_true", help="download CIFAR into --data-dir if missing")
    p.add_argument("--subset", type=float, help="fraction of each class kept (the paper uses 0.1 on ImageNet)")
    p.add_argument("--input-size", type=int, help="image side in pixels (default 8 for digits, else per dataset)")
    p.add_argument("--benchmark", metavar="FILE", help="tabular benchmark JSON: score by lookup, no training")
    p.add_argument("--strategy", default="ga+gpt", choices=STRATEGIES)
    p.add_argument("--model", default=DEFAULT_MODEL, help="ArchGPT: bundled name, folder or Hub id (for +gpt)")
    p.add_argument("--population", type=int, help="population size (default 6 on digits, else 30)")
    p.add_argument("--generations", type=int, help="generations incl. the initial one (default 3 on digits, else 20)")
    p.add_argument("--budget", type=int, help="evaluations (default population x generations)")
    p.add_argument("--mask-rate", type=float, default=0.4, help="initial GPT mask rate rate0 (decays to 0)")
    p.add_argument("--epochs", type=int, help="training epochs per candidate (default 4 on digits, else 6)")
    p.add_argument("--lr", type=float, help="SGD peak lr after the linear warm-up (default 0.05 on digits, else 0.01)")
    p.add_argument("--batch-size", type=int, help="default 64 on digits, 512 on CIFAR, 128 on ImageNet")
    p.add_argument("--no-accelerate", action="store_true",
                   help="train every candidate fully (no weight inheritance, predicted-only or BN-only training)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", metavar="DIR", help="run folder (default: arch-gpt-runs/<space>-<strategy>-...)")
    p.add_argument("--resume", action="store_true", help="continue the run in --output from its checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class SearchSetup:
    """The parts of a search built from the command line."""
    space: object
    evaluator: object
    reconstructor: object | None
    population: int
    generations: int
    budget: int | None


def build(args: argparse.Namespace) -> SearchSetup:
    """Space, evaluator and reconstructor for ``args`` (raises UserInputError naming the bad option)."""
    from arch_gpt.search.registry import create_space

    quick = args.benchmark is None and args.dataset == "digits"
    defaults = QUICK if quick else PAPER
    population = args.population if args.population is not None else defaults["population"]
    generations = args.generations if args.generations is not None else defaults["generations"]
    if args.budget is not None and args.generations is not None:
        raise UserInputError("--budget and --generations: give one of them, not both")
    if args.benchmark is not None:
        from arch_gpt.search.evaluators.tabular import TabularBenchmark, TabularEvaluator
        table = TabularBenchmark.load(args.benchmark)
        space = create_space(args.space)
        table.check_space(space)
        evaluator = TabularEvaluator(table)
    else:
        from arch_gpt.search.datasets import load_dataset
        from arch_gpt.search.evaluators.training import TrainingConfig, TrainingEvaluator
        data = load_dataset(args.dataset, data_dir=args.data_dir, download=args.download, subset=args.subset,
                            input_size=_pick(args.input_size, defaults["input_size"]), seed=args.seed)
        c, h, w = data.input_size
        space_kwargs = {"widths": defaults["widths"]} if args.space == "blocks" and defaults["widths"] else {}
        space = create_space(args.space, num_classes=data.num_classes, input_size=(h, w, c), **space_kwargs)
        fast = not args.no_accelerate
        config = TrainingConfig(epochs=_pick(args.epochs, defaults["epochs"]), lr=_pick(args.lr, defaults["lr"]),
                                batch_size=_pick(args.batch_size, defaults["batch_size"]), device=args.device,
                                seed=args.seed,
                                train_predicted_only=fast, bn_only=fast, inherit_weights=fast)
        evaluator = TrainingEvaluator(space, data, config)
    reconstructor = None
    if args.strategy.endswith("+gpt"):
        reconstructor = load_reconstructor(args.model, args.mask_rate, args.device)
    return SearchSetup(space, evaluator, reconstructor, population, generations, args.budget)


def _pick(value, default):
    return value if value is not None else default


def load_reconstructor(model: str, mask_rate: float, device: str | None):
    """A GPTReconstructor for ``--model``, or a one-line error naming the model that could not be loaded."""
    from arch_gpt.search.reconstruction import GPTReconstructor
    if not 0.0 <= mask_rate <= 1.0:
        raise UserInputError(f"--mask-rate: must be in [0, 1], got {mask_rate}")
    try:
        return GPTReconstructor.from_pretrained(model, mask_rate=mask_rate, device=device)
    except (OSError, UserInputError) as err:
        raise UserInputError(f"--model: cannot load the GPT {model!r} ({err}); pass --model with a trained "
                             f"ArchGPT folder or Hub id, or use a strategy without +gpt") from None


def make_strategy(name: str, setup: SearchSetup, seed: int):
    """The registered strategy for ``name`` ('ga', 'ga+gpt', ...) with the setup's sizes."""
    from arch_gpt.search.registry import create_strategy

    base = name.removesuffix("+gpt")
    budget = setup.budget if setup.budget is not None else setup.population * setup.generations
    common = {"space": setup.space, "evaluator": setup.evaluator, "reconstructor": setup.reconstructor,
              "seed": seed, "budget": budget}
    if base == "ga":
        return create_strategy("ga", population=setup.population, generations=setup.generations, **common)
    if base == "random":
        return create_strategy("random", batch_size=setup.population, **common)
    return create_strategy("re", population=setup.population, sample_size=max(1, min(10, setup.population // 3)),
                           children_per_generation=min(10, setup.population), **common)


def run(args: argparse.Namespace) -> int:
    if args.resume and args.output is None:
        raise UserInputError("--resume: needs --output DIR of the run to continue")
    for flag in ("population", "generations", "budget", "epochs"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "epochs" else 1):
            raise UserInputError(f"--{flag}: must be positive, got {value}")
    setup = build(args)
    strategy = make_strategy(args.strategy, setup, args.seed)
    out = Path(args.output) if args.output else Path("arch-gpt-runs") / (
        f"{args.space}-{args.strategy.replace('+', '-')}-seed{args.seed}-{time.strftime('%Y%m%d-%H%M%S')}")
    result = strategy.run(output_dir=out, resume=args.resume, progress=not args.no_progress)
    rec = result.best.record
    print(result.best_architecture.to_text(), end="")
    test = "n/a" if rec.test_acc is None else f"{rec.test_acc:.4f}"
    print(f"best {result.best.candidate.key}: fitness (val acc) {rec.fitness:.4f}, test acc {test}, "
          f"params {rec.params if rec.params is not None else 'n/a'}; {result.evaluations} evaluations in "
          f"{result.timings.total_s:.1f} s")
    print(f"run folder: {out}")
    return 0
