"""``arch-gpt search``: find a CNN with a (GPT-helped) search; the README's main-job command.

With no arguments it searches the block space on the embedded digits dataset with ga+gpt and the bundled GPT
on a small budget that ends in minutes on 2 CPUs (population 6, 3 generations, digits at their native 8x8,
block widths 8-32, 4 epochs at lr 0.05, batch 64). Other datasets get the paper's settings (population 30,
20 generations, 6 epochs at lr 0.01); every one can be set by its option. --benchmark FILE scores a tabular
space (nasbench201, nasbench-macro) by table lookup instead of training. STRATEGY+gpt+ft also fine-tunes the
GPT online on the fittest architectures after each generation. Outputs: result.json, history.jsonl,
checkpoint.json, best.arch, best_genome.json, convergence.png in the run folder.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from arch_gpt.cli.help import add_command
from arch_gpt.search.defaults import DEFAULT_DATASET, DEFAULT_SPACE, DEFAULT_STRATEGY
from arch_gpt.search.defaults import GPT_DEFAULTS as G



def add_search_options(p: argparse.ArgumentParser) -> None:
    """The options shared by ``search`` and the studies: data, benchmark, GPT, training."""
    p.add_argument("--space", default=DEFAULT_SPACE,
                   help="search space: blocks, nasbench201, nasbench-macro, or a spec file (.yaml/.json)")
    p.add_argument("--dataset", default=DEFAULT_DATASET,
                   help="digits (embedded), cifar10, cifar100, imagenet, imagefolder (--data-dir of class "
                        "subfolders), or hf:NAME[:CONFIG] (a Hugging Face dataset in the local cache or saved folder)")
    p.add_argument("--image-column", help="hf: datasets: the image column (default: the one with an Image feature)")
    p.add_argument("--label-column", help="hf: datasets: the label column (default: the ClassLabel one)")
    p.add_argument("--data-dir", help="folder of cifar10/cifar100/imagenet data")
    p.add_argument("--download", action="store_true", help="download CIFAR into --data-dir if missing")
    p.add_argument("--subset", type=float, help="fraction of each class kept (the paper uses 0.1 on ImageNet)")
    p.add_argument("--input-size", type=int, help="image side in pixels (default: 8 on digits, else per dataset)")
    p.add_argument("--benchmark", metavar="FILE", help="tabular benchmark JSON: score by lookup, no training")
    p.add_argument("--fitness-field", help="a generic JSON/CSV table: the field selection uses")
    p.add_argument("--test-field", help="a generic table: the field only reported (never selected on)")
    p.add_argument("--cost-fields", type=lambda t: tuple(v.strip() for v in t.split(",") if v.strip()), default=(),
                   help="a generic table: comma-separated cost fields kept with each record (e.g. params,flops)")
    p.add_argument("--num-classes", type=int,
                   help="classes of the network's head (default: the dataset's, or from the table's file name)")
    p.add_argument("--model", help=f"+gpt: ArchGPT bundled name, folder or Hub id (default: {G['model']}; "
                                   "arch-gpt-all-spaces with +cond)")
    p.add_argument("--mask-rate", type=float, help=f"+gpt: initial mask rate, decays to 0 (default: {G['mask_rate']})")
    p.add_argument("--top-k", type=int, help="+gpt: 1 = greedy predictions, k > 1 samples among the k likeliest "
                                             f"(default: {G['top_k']})")
    p.add_argument("--temperature", type=float, help=f"+gpt: sampling temperature (default: {G['temperature']})")
    p.add_argument("--top-p", type=float, help="+gpt: nucleus of that sampling: the fewest likeliest tokens whose "
                                               f"probability sums to p (default: {G['top_p']}, no cut)")
    p.add_argument("--finetune-steps", type=int,
                   help=f"+gpt+ft: AdamW steps after each generation (default: {G['finetune_steps']})")
    p.add_argument("--finetune-top", type=int,
                   help=f"+gpt+ft: fine-tune on this many fittest architectures so far (default: {G['finetune_top']})")
    p.add_argument("--finetune-lr", type=float, help=f"+gpt+ft: learning rate (default: {G['finetune_lr']})")
    p.add_argument("--cond-steps", type=int, help="+gpt+cond: AdamW steps of the fitness-conditioned fine-tune after "
                                                  f"each generation (default: {G['cond_steps']})")
    p.add_argument("--cond-lr", type=float, help=f"+gpt+cond: its learning rate (default: {G['cond_lr']})")
    p.add_argument("--rank-pool", type=int, help="+rank: proposals per evaluated candidate; only the predicted best "
                                                 f"are evaluated (default: {G['rank_pool']})")
    p.add_argument("--rank-explore", type=float, help="+rank: rank by the predicted mean plus this many standard "
                                                      f"deviations (default: {G['rank_explore']})")
    p.add_argument("--rank-features", choices=("gpt", "onehot"),
                   help="+rank: the predictor's features, the GPT's hidden states or a one-hot of the genome "
                        "(default: gpt with +gpt, else onehot)")
    p.add_argument("--rank-predictor", choices=("trees", "gp"),
                   help=f"+rank: scikit-learn extra trees or Gaussian process (default: {G['rank_predictor']})")
    p.add_argument("--epochs", type=int, help="training epochs per candidate (default: 4 on digits, else 6)")
    p.add_argument("--lr", type=float, help="SGD peak lr after warm-up (default: 0.05 on digits, else 0.01)")
    p.add_argument("--batch-size", type=int, help="default: 64 on digits, 512 on CIFAR, 128 on ImageNet")
    p.add_argument("--max-steps", type=int, dest="max_steps_per_epoch", help="cap on training steps per epoch")
    p.add_argument("--no-accelerate", dest="accelerate", action="store_false",
                   help="train every candidate fully (no weight inheritance, predicted-only or BN-only training)")
    p.add_argument("--widths", type=int_list, help="block space: comma-separated channel widths (multiples of 8)")
    p.add_argument("--min-blocks", type=int, help="block space: fewest blocks")
    p.add_argument("--max-blocks", type=int, help="block space: most blocks")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--bf16", action="store_true", help="train candidates with bfloat16 autocast")
    p.add_argument("--resident-data", dest="resident_data", action=argparse.BooleanOptionalAction,
                   help="keep small datasets on the device, augmented there (default: on CUDA only)")
    o = p.add_argument_group("accuracy versus cost")
    o.add_argument("--objectives", default="val_acc",
                   help="val_acc, or val_acc plus costs to minimize: params, flops, latency (e.g. val_acc,params): "
                        "NSGA-II selection in ga, pareto.json and pareto.png in the run folder")
    o.add_argument("--max-params", type=int, help="budget: candidates with more parameters are never trained")
    o.add_argument("--max-flops", type=int, help="budget: multiply-adds per image")
    o.add_argument("--max-latency-ms", type=float, help="budget: latency measured on the search's device")
    o.add_argument("--latency", action="store_true",
                   help="measure every candidate's latency on the search's device (recorded in history.jsonl)")
    o.add_argument("--latency-batch", type=int, default=1, help="images per latency measurement")
    x = p.add_argument_group("parallel trials (Ray)")
    x.add_argument("--workers", type=int, default=1,
                   help="trials at once; 1 (default) runs them here one by one, more starts a local Ray instance")
    x.add_argument("--ray-address", help="join a running Ray cluster (auto, or host:port) instead")
    x.add_argument("--cpus-per-trial", type=float, help="CPUs a trial reserves (default: cores / workers)")
    x.add_argument("--gpus-per-trial", type=float, help="GPUs a trial reserves (default: 1 when there are GPUs)")
    x.add_argument("--threads", type=int, default=1,
                   help="torch threads per trial; a fixed count keeps results identical across worker counts")
    x.add_argument("--async", dest="asynchronous", action="store_true",
                   help="re only: steady state, a new child whenever a trial finishes (results depend on timing)")
    x.add_argument("--max-retries", type=int, default=2, help="retries of a trial whose worker died (default: 2)")


def number_list(cast: type, kind: str):
    """An argparse type: ``"8,16,24"`` → (8, 16, 24) with ``cast`` applied to each item."""
    def parse(text: str) -> tuple:
        try:
            values = tuple(cast(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind}, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError(f"expected at least one of the {kind}")
        return values
    return parse


int_list = number_list(int, "integers")


def config_from_args(args: argparse.Namespace, **overrides):
    """The :class:`~arch_gpt.search.spec.SearchConfig` of parsed options (its fields, by name)."""
    from dataclasses import fields

    from arch_gpt.search.execution import ExecutionConfig
    from arch_gpt.search.spec import SearchConfig
    values = {f.name: getattr(args, f.name) for f in fields(SearchConfig) if hasattr(args, f.name)}
    if hasattr(args, "workers"):
        values["execution"] = ExecutionConfig(**{f.name: getattr(args, f.name) for f in fields(ExecutionConfig)})
    return SearchConfig(**{**values, **overrides})


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``arch-gpt search``."""
    p = add_command(subparsers, "search", __doc__, "search an architecture (GA + GPT reconstruction by default)")
    p.add_argument("--strategy", default=DEFAULT_STRATEGY,
                   help="ga, random, re; +gpt adds GPT reconstruction, +gpt+ft the paper's online fine-tune or "
                        "+gpt+cond fitness-conditioned generation, +rank pre-screening by a predictor trained online "
                        "(on the GPT's hidden states with +gpt, else one-hot), e.g. ga+gpt+cond+rank")
    p.add_argument("--population", type=int, help="population size (default: 6 on digits, else 30)")
    p.add_argument("--generations", type=int, help="generations incl. the initial one (default: 3 on digits, else 20)")
    p.add_argument("--budget", type=int, help="evaluations (default: population x generations)")
    p.add_argument("--seed", type=int, default=0, help="seed of the search and of every candidate's training")
    add_search_options(p)
    p.add_argument("--output", metavar="DIR", help="run folder (default: arch-gpt-runs/<space>-<strategy>-...)")
    p.add_argument("--resume", action="store_true", help="continue the run in --output from its checkpoint")
    p.add_argument("--show-arch", action="store_true", help="print the best network's layers")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from arch_gpt.errors import UserInputError
    from arch_gpt.search.api import write_search_config
    from arch_gpt.search.spec import build_search

    if args.resume and args.output is None:
        raise UserInputError("resume: needs --output DIR of the run to continue")
    config = config_from_args(args)
    search = build_search(config)
    out = Path(args.output) if args.output else Path("arch-gpt-runs") / (
        f"{Path(config.space).stem}-{search.spec.label.replace('+', '-')}-seed{config.seed}-"
        f"{time.strftime('%Y%m%d-%H%M%S')}")
    result = search.run(out, resume=args.resume, progress=not args.no_progress)
    write_search_config(out, config)  # the config and its command, for the run's card and SearchResult.load
    rec = result.best.record
    if result.all_failed:
        raise UserInputError(f"every one of the {result.evaluations} candidates failed, so there is no result "
                             f"(first error: {result.history[0].error}); the run folder {out} keeps the errors")
    if args.show_arch:
        print(result.best_architecture.to_text(), end="")
    test = "n/a (no test split)" if rec.test_acc is None else f"{rec.test_acc:.4f}"
    params = "n/a" if rec.params is None else f"{rec.params:,}"
    print(f"best:        {result.best.candidate.key}")
    print(f"fitness:     {rec.fitness:.4f} (validation accuracy; selection used only this)")
    print(f"test acc:    {test}")
    print(f"params:      {params}")
    print(f"layers:      {len(result.best_architecture.layers)} (best.arch; --show-arch prints them)")
    print(f"evaluations: {result.evaluations} ({result.unique_evaluations} distinct) in {result.timings.total_s:.1f} s")
    print(f"run folder:  {out}")
    return 0
