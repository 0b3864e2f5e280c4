"""``arch-gpt bench``: the with/without-GPT study on a tabular benchmark (issue 6 §2).

Every strategy x budget x seed is one search (seed i is the strategy's seed, so X and X+gpt start from
the same samples). Each finished run is appended to ``DIR/runs.jsonl``, so an interrupted study continues
where it stopped when rerun with the same settings. At the end ``DIR/results.json``, ``DIR/results.md``
and ``DIR/convergence.png`` are written (see :mod:`arch_gpt.search.bench_report`).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from arch_gpt.encoding import atomic_write_text
from arch_gpt.errors import UserInputError
from arch_gpt.search.bench_report import RunRecord, compare, markdown, plot_convergence, summarize
from arch_gpt.search.evaluators.tabular import TabularBenchmark, TabularEvaluator

RUNS, RESULTS_JSON, RESULTS_MD, PLOT, CONFIG = "runs.jsonl", "results.json", "results.md", "convergence.png", \
    "bench_config.json"
DEFAULT_MODEL = "arch-gpt-nasbench101"


@dataclass
class BenchConfig:
    """The study's settings. To continue a study in the same folder, the :meth:`identity` settings must match;
    strategies, budgets and seeds may be added (finished runs are reused)."""
    space: str
    benchmark: str
    strategies: tuple[str, ...] = ("random", "random+gpt", "ga", "ga+gpt", "re")
    budgets: tuple[int, ...] = (10, 100, 600)
    seeds: int = 30
    num_classes: int = 10  # the classifier of the expanded networks (100 for a CIFAR-100 table)
    model: str = DEFAULT_MODEL
    mask_rate: float = 0.4
    finetune_steps: int = 5  # online fine-tune (labels X+gpt+ft): AdamW steps after each generation,
    finetune_top: int = 10  # on the units of this many fittest architectures so far,
    finetune_lr: float = 1e-3  # at this learning rate
    output: str = "bench-out"

    def identity(self) -> dict:
        """The settings that every run of one output folder shares."""
        d = asdict(self)
        for key in ("output", "strategies", "budgets", "seeds"):
            d.pop(key)
        d["benchmark"] = os.path.abspath(self.benchmark)
        return d


def split_label(label: str) -> tuple[str, bool, bool]:
    """(strategy, with GPT, with online fine-tune): 'ga' -> ('ga', False, False), 'ga+gpt' -> ('ga', True,
    False), 'ga+gpt+ft' -> ('ga', True, True)."""
    name, _, suffix = label.partition("+")
    if suffix not in ("", "gpt", "gpt+ft") or not name:
        raise UserInputError(f"--strategies: {label!r} is not STRATEGY, STRATEGY+gpt or STRATEGY+gpt+ft")
    return name, bool(suffix), suffix == "gpt+ft"


def record_from_result(label: str, budget: int, seed: int, result, optimum, finetune_s: float = 0.0) -> RunRecord:
    """A RunRecord of a finished search (its history gives the incumbent curve); ``finetune_s`` is added to
    the search time."""
    best_fit, best_test, curve = float("-inf"), None, []
    for h in result.history:
        if best_test is None or h["fitness"] > best_fit:
            best_fit, best_test = h["fitness"], h["test_acc"]
        curve.append(round(float(best_test), 4))
    rec = result.best.record
    t = result.timings
    return RunRecord(
        strategy=label, budget=budget, seed=seed, best_key=result.best.candidate.key, best_fitness=rec.fitness,
        best_test=float(rec.test_acc), regret=float(optimum.test_acc - rec.test_acc),
        fitness_regret=float(optimum.fitness - rec.fitness), evaluations=result.evaluations,
        unique_evaluations=result.unique_evaluations, generations=result.generations,
        search_s=t.search_s + finetune_s, reconstruction_s=t.reconstruction_s, evaluation_s=t.evaluation_s,
        predicted_units=sum(len(h.get("predicted_units") or ()) for h in result.history), finetune_s=finetune_s,
        curve=curve)


def _done_runs(out: Path, config: BenchConfig) -> dict[tuple[str, int, int], RunRecord]:
    """Finished runs of an earlier, interrupted study with the same settings (UserInputError if they differ)."""
    cfg_path = out / CONFIG
    if not cfg_path.exists():
        return {}
    try:
        old = json.loads(cfg_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserInputError(f"{cfg_path}: line {err.lineno}: not valid JSON; remove the folder or choose "
                             f"another --output") from None
    if old != config.identity():
        diff = sorted(k for k in set(old) | set(config.identity()) if old.get(k) != config.identity().get(k))
        raise UserInputError(f"--output: {out} holds a study with other settings ({', '.join(diff)}); "
                             f"choose another folder")
    done = {}
    runs = out / RUNS
    if runs.exists():
        for line in runs.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    r = RunRecord(**json.loads(line))
                except (json.JSONDecodeError, TypeError):
                    continue  # a line cut by an interruption: that run is redone
                done[(r.strategy, r.budget, r.seed)] = r
    return done


def load_study(folder: str | os.PathLike) -> tuple[dict, list[RunRecord]]:
    """A finished study's settings and run records, for follow-up scripts (UserInputError naming the file)."""
    folder = Path(folder)
    for name in (CONFIG, RUNS):
        if not (folder / name).is_file():
            raise UserInputError(f"--bench: {folder / name} not found; pass a folder written by `arch-gpt bench`")
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserInputError(f"{folder / CONFIG}: line {err.lineno}: not valid JSON") from None
    records = []
    for number, line in enumerate((folder / RUNS).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                records.append(RunRecord(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as err:
                raise UserInputError(f"{folder / RUNS}: line {number}: not a run record ({err})") from None
    if not records:
        raise UserInputError(f"{folder / RUNS}: no finished runs")
    return config, records


def run_study(config: BenchConfig, table: TabularBenchmark | None = None, model=None,
              progress: bool = True) -> list[RunRecord]:
    """Run (or continue) every strategy x budget x seed and write the reports; returns the run records.

    ``table`` and ``model`` default to ``TabularBenchmark.load(config.benchmark)`` and
    ``ArchGPT.from_pretrained(config.model)`` (loaded once, only if a +gpt strategy is asked for). Every run
    starts cold: the space's layer cache is cleared and it gets its own ``GPTReconstructor``, so timings do
    not depend on the order of runs. X+gpt+ft runs fine-tune the model online; its weights are restored
    before every GPT run.
    """
    from arch_gpt.search.reconstruction import GPTReconstructor
    from arch_gpt.search.registry import create_space, create_strategy, list_strategies

    labels = [split_label(s) for s in config.strategies]
    unknown = sorted({name for name, _, _ in labels} - set(list_strategies()))
    if unknown:
        raise UserInputError(f"--strategies: unknown {', '.join(unknown)}; choose from {', '.join(list_strategies())}")
    if not config.budgets or min(config.budgets) < 1:
        raise UserInputError(f"--budgets: need positive numbers of evaluations, got {list(config.budgets)}")
    if config.seeds < 1:
        raise UserInputError(f"--seeds: must be at least 1, got {config.seeds}")
    table = table or TabularBenchmark.load(config.benchmark)
    space = create_space(config.space, num_classes=config.num_classes)
    table.check_space(space)
    space.choice_tokens()  # the units' allowed tokens, computed once for all runs
    if model is None and any(gpt for _, gpt, _ in labels):
        from arch_gpt.modeling import ArchGPT
        model = ArchGPT.from_pretrained(config.model)
    finetuner = None
    if any(ft for _, _, ft in labels):
        from arch_gpt.search.online_finetune import OnlineFinetuner
        finetuner = OnlineFinetuner(model, space, config.finetune_steps, config.finetune_top, config.finetune_lr)
    evaluator = TabularEvaluator(table)
    optimum_key, optimum = table.optimum()

    out = Path(config.output)
    done = _done_runs(out, config)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CONFIG, json.dumps(config.identity(), indent=2) + "\n")
    jobs = [(label, name, gpt, ft, budget, seed) for (name, gpt, ft), label in zip(labels, config.strategies)
            for budget in config.budgets for seed in range(config.seeds)]
    records = []
    with tqdm(total=len(jobs), disable=not progress, desc=f"bench {config.space}", unit="run") as bar, \
            open(out / RUNS, "a", encoding="utf-8") as log:
        for label, name, gpt, ft, budget, seed in jobs:
            rec = done.get((label, budget, seed))
            if rec is None:
                space.clear_cache()
                if gpt and finetuner is not None:
                    finetuner.reset()
                reconstructor = GPTReconstructor(model, mask_rate=config.mask_rate) if gpt else None
                strategy = create_strategy(name, space=space, evaluator=evaluator, reconstructor=reconstructor,
                                           budget=budget, seed=seed)
                result = strategy.run(output_dir=None, progress=False, on_generation=finetuner if ft else None)
                rec = record_from_result(label, budget, seed, result, optimum, finetuner.seconds if ft else 0.0)
                log.write(json.dumps(rec.to_dict()) + "\n")
                log.flush()
            records.append(rec)
            bar.update(1)
            bar.set_postfix(run=f"{label}/{budget}/{seed}")
    write_reports(config, table, records, optimum_key, space, model)
    return records


def unnamed_choices(space, model) -> list[str]:
    """The units' choice tokens that ``model`` cannot predict (not in its vocabulary), sorted."""
    if model is None:
        return []
    return sorted({t for row in space.choice_tokens() for t in row.values() if not model.tokenizer.in_vocab(t)})


def machine() -> dict:
    """Where the study ran (for the report)."""
    import numpy
    import torch
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "torch_threads": torch.get_num_threads()}


def write_reports(config: BenchConfig, table: TabularBenchmark, records: Sequence[RunRecord], optimum_key: str,
                  space, model=None) -> None:
    """results.json, results.md and convergence.png in ``config.output``."""
    out = Path(config.output)
    optimum = table.lookup(optimum_key)
    summaries = summarize(records, optimum_key)
    comparisons = compare(records, summaries)
    command = "arch-gpt " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "run_study(...)"
    facts = {"command": f"`{command}`", "space": config.space, "benchmark": table.path,
             "table": f"{len(table)} architectures, {table.space} format, fitness = {table.format.fitness_field}, "
                      f"reported = {table.format.test_field}",
             "optimum": f"{optimum_key} (fitness {optimum.fitness:.3f}, test {optimum.test_acc:.3f})",
             "seeds": f"0..{config.seeds - 1}", "machine": ", ".join(f"{k} {v}" for k, v in machine().items())}
    if any(split_label(s)[1] for s in config.strategies):
        facts["GPT"] = f"{config.model} (mask rate {config.mask_rate})"
        missing = unnamed_choices(space, model)
        facts["choice tokens outside the GPT's vocabulary (never predicted)"] = (
            ", ".join(f"`{t}`" for t in missing) if missing else "none")
    if any(split_label(s)[2] for s in config.strategies):
        facts["online fine-tune (+ft)"] = (f"{config.finetune_steps} AdamW steps (lr {config.finetune_lr}) after "
                                           f"each generation on the unit choices of the {config.finetune_top} "
                                           f"fittest architectures so far; time included in search time")
    unmatched = dict(getattr(space, "unmatched_predictions", {}) or {})
    if unmatched:
        facts["GPT predictions outside the unit's choices (kept the unit)"] = sum(unmatched.values())
    header = {"title": f"With vs without GPT on {config.space} ({Path(table.path).name})", "facts": facts}
    atomic_write_text(out / RESULTS_MD, markdown(summaries, comparisons, header))
    payload = {"config": {**config.identity(), "strategies": list(config.strategies),
                          "budgets": list(config.budgets), "seeds": config.seeds}, "command": command, "machine": machine(),
               "table": {"path": table.path, "space": table.space, "entries": len(table), "optimum_key": optimum_key,
                         "optimum_fitness": optimum.fitness, "optimum_test": optimum.test_acc},
               "summary": [asdict(s) for s in summaries], "comparisons": [asdict(c) for c in comparisons],
               "runs": [r.to_dict() for r in records]}
    atomic_write_text(out / RESULTS_JSON, json.dumps(payload, indent=1) + "\n")
    plot_convergence(records, out / PLOT, title=header["title"], optimum=optimum.test_acc)


# ----------------------------------------------------------------------------- CLI

def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _str_list(text: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    if not values:
        raise argparse.ArgumentTypeError("expected at least one name")
    return values


def register(subparsers) -> None:
    """Add ``arch-gpt bench``."""
    p = subparsers.add_parser("bench", help="with/without-GPT study on a tabular benchmark (NAS-Bench-201/Macro)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", required=True, choices=("nasbench201", "nasbench-macro"))
    p.add_argument("--benchmark", required=True, metavar="FILE", help="JSON table (NAS-Bench-201 or -Macro format)")
    p.add_argument("--strategies", type=_str_list, default=BenchConfig.strategies,
                   help="comma-separated, e.g. random,random+gpt,ga,ga+gpt,re; X+gpt+ft adds the online fine-tune")
    p.add_argument("--budgets", type=_int_list, default=BenchConfig.budgets,
                   help="evaluations per run, e.g. 10,100,600")
    p.add_argument("--seeds", type=int, default=BenchConfig.seeds, help="runs per strategy and budget (seeds 0..N-1)")
    p.add_argument("--num-classes", type=int, default=BenchConfig.num_classes,
                   help="classes of the table's dataset (100 for nasbench201_cifar100.json)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="ArchGPT for the +gpt strategies (bundled name or folder)")
    p.add_argument("--mask-rate", type=float, default=BenchConfig.mask_rate)
    p.add_argument("--finetune-steps", type=int, default=BenchConfig.finetune_steps,
                   help="+ft runs: gradient steps after each generation")
    p.add_argument("--finetune-top", type=int, default=BenchConfig.finetune_top,
                   help="+ft runs: fine-tune on this many fittest architectures so far")
    p.add_argument("--finetune-lr", type=float, default=BenchConfig.finetune_lr, help="+ft runs: learning rate")
    p.add_argument("--output", required=True, metavar="DIR")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    config = BenchConfig(space=args.space, benchmark=args.benchmark, strategies=args.strategies, budgets=args.budgets,
                         seeds=args.seeds, num_classes=args.num_classes, model=args.model, mask_rate=args.mask_rate,
                         finetune_steps=args.finetune_steps, finetune_top=args.finetune_top,
                         finetune_lr=args.finetune_lr, output=args.output)
    run_study(config, progress=not args.no_progress)
    print(f"wrote {Path(args.output) / RESULTS_MD}")
    return 0
