"""The with/without-GPT study on a tabular benchmark (behind ``arch-gpt bench``).

Every strategy x budget x seed is one search built by :func:`arch_gpt.search.spec.build_search` (seed i is
the strategy's seed, so X and X+gpt start from the same samples). Each finished run is appended to
``DIR/runs.jsonl``, so an interrupted study continues where it stopped when rerun with the same settings.
At the end ``DIR/results.json``, ``DIR/results.md`` and ``DIR/convergence.png`` are written
(see :mod:`arch_gpt.studies.report`) over every finished run of the folder, this invocation's and earlier ones'
(strategies, budgets or seeds added later), with every command that made them (``DIR/commands.jsonl``). With ``keep_runs`` every run also keeps its search folder.
"""
from __future__ import annotations

import os
import platform
import shlex
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy
import torch
from tqdm.auto import tqdm

from arch_gpt.errors import UserInputError
from arch_gpt.io import append_jsonl, atomic_write_text, read_json, read_jsonl, write_json
from arch_gpt.modeling import ArchGPT
from arch_gpt.search.evaluators.tabular import TabularBenchmark, TabularEvaluator
from arch_gpt.search.spec import (
    DEFAULT_MODEL, GPT_DEFAULTS, SearchConfig, StrategySpec, build_search, build_space, load_model, validate,
)
from arch_gpt.studies.plots import plot_study_convergence
from arch_gpt.studies.report import RunRecord, compare, markdown, summarize

RUNS, RESULTS_JSON, RESULTS_MD, PLOT, CONFIG, COMMANDS = "runs.jsonl", "results.json", "results.md", \
    "convergence.png", "bench_config.json", "commands.jsonl"


NEWER_DEFAULTS = {"cond_steps": GPT_DEFAULTS["cond_steps"], "cond_lr": GPT_DEFAULTS["cond_lr"],
                  "rank_pool": GPT_DEFAULTS["rank_pool"], "rank_predictor": GPT_DEFAULTS["rank_predictor"],
                  "rank_explore": GPT_DEFAULTS["rank_explore"], "rank_features": None,
                  "population": None, "top_k": GPT_DEFAULTS["top_k"], "temperature": GPT_DEFAULTS["temperature"],
                  "top_p": GPT_DEFAULTS["top_p"]}


@dataclass
class BenchConfig:
    """The study's settings. To continue a study in the same folder, the :meth:`identity` settings must match;
    strategies, budgets and seeds may be added (finished runs are reused)."""
    space: str
    benchmark: str
    strategies: tuple[str, ...] = ("random", "random+gpt", "ga", "ga+gpt", "re")
    budgets: tuple[int, ...] = (10, 100, 600)
    seeds: int = 30
    num_classes: int | None = None  # the expanded networks' classes (None: from the table's file name)
    model: str = DEFAULT_MODEL
    mask_rate: float = 0.4
    finetune_steps: int = 5  # online fine-tune (labels X+gpt+ft): AdamW steps after each generation,
    finetune_top: int = 10  # on the units of this many fittest architectures so far,
    finetune_lr: float = 1e-3  # at this learning rate
    cond_steps: int = GPT_DEFAULTS["cond_steps"]  # +cond: fitness-conditioned fine-tune steps after each generation,
    cond_lr: float = GPT_DEFAULTS["cond_lr"]  # at this learning rate
    rank_pool: int = GPT_DEFAULTS["rank_pool"]  # +rank: proposals per evaluated candidate,
    rank_predictor: str = GPT_DEFAULTS["rank_predictor"]  # ranked by this scikit-learn predictor,
    rank_explore: float = GPT_DEFAULTS["rank_explore"]  # by its mean + this many standard deviations,
    rank_features: str | None = None  # on these features (None: the GPT's with +gpt, else one-hot)
    population: int | None = None  # of every strategy (None: the paper's 30)
    top_k: int = GPT_DEFAULTS["top_k"]  # +gpt: reconstruction's sampling (1: greedy),
    temperature: float = GPT_DEFAULTS["temperature"]
    top_p: float = GPT_DEFAULTS["top_p"]
    output: str = "bench-out"
    keep_runs: bool = False  # also keep every run's search folder under output/runs/

    def search_config(self, label: str, budget: int, seed: int) -> SearchConfig:
        """The search of one run: the GPT options only for +gpt labels, the fine-tune's only for +ft."""
        spec = StrategySpec.parse(label)
        gpt = {"model": self.model, "mask_rate": self.mask_rate, "top_k": self.top_k, "temperature": self.temperature,
               "top_p": self.top_p} if spec.gpt else {}
        ft = {"finetune_steps": self.finetune_steps, "finetune_top": self.finetune_top,
              "finetune_lr": self.finetune_lr} if spec.finetune else {}
        cond = {"cond_steps": self.cond_steps, "cond_lr": self.cond_lr} if spec.cond else {}
        rank = {"rank_pool": self.rank_pool, "rank_predictor": self.rank_predictor,
                "rank_explore": self.rank_explore, "rank_features": self.rank_features} if spec.rank else {}
        if spec.rank and self.rank_features == "gpt" and not spec.gpt:
            gpt = {"model": self.model}
        return SearchConfig(strategy=label, space=self.space, benchmark=self.benchmark, num_classes=self.num_classes,
                            budget=budget, seed=seed, population=self.population, **gpt, **ft, **cond, **rank)

    def identity(self) -> dict:
        """The settings that every run of one output folder shares (the newer options only where set away from
        their defaults, so a study written before them continues)."""
        d = asdict(self)
        for key in ("output", "strategies", "budgets", "seeds", "keep_runs"):
            d.pop(key)
        for key, default in NEWER_DEFAULTS.items():
            if d[key] == default:
                d.pop(key)
        d["benchmark"] = os.path.abspath(self.benchmark)
        return d


def _done_runs(out: Path, config: BenchConfig) -> dict[tuple[str, int, int], RunRecord]:
    """Finished runs of an earlier, interrupted study with the same settings (UserInputError if they differ)."""
    cfg_path = out / CONFIG
    if out.exists() and not out.is_dir():
        raise UserInputError(f"output: {out} is a file, not a folder")
    if not cfg_path.exists():
        if out.is_dir() and any(out.iterdir()):
            raise UserInputError(f"output: {out} is a folder with other files and no {CONFIG}; a study writes "
                                 f"into an empty or new folder (or continues its own)")
        return {}
    old = read_json(cfg_path)
    if old != config.identity():
        diff = sorted(k for k in set(old) | set(config.identity()) if old.get(k) != config.identity().get(k))
        raise UserInputError(f"output: {out} holds a study with other settings ({', '.join(diff)}); "
                             f"choose another folder")
    done = {}
    runs = out / RUNS
    if runs.exists():  # a last line cut by an interruption is dropped: that run is redone
        for number, data in read_jsonl(runs, skip_partial_last=True):
            r = RunRecord.from_json(data, f"{runs}: line {number}")
            done[(r.strategy, r.budget, r.seed)] = r
    return done


def load_study(folder: str | os.PathLike) -> tuple[dict, list[RunRecord]]:
    """A finished study's settings and run records, for follow-up scripts (UserInputError naming the file)."""
    folder = Path(folder)
    for name in (CONFIG, RUNS):
        if not (folder / name).is_file():
            raise UserInputError(f"{folder / name}: not found; pass a folder written by `arch-gpt bench`")
    config = read_json(folder / CONFIG)
    records = [RunRecord.from_json(data, f"{folder / RUNS}: line {number}")
               for number, data in read_jsonl(folder / RUNS)]
    if not records:
        raise UserInputError(f"{folder / RUNS}: no finished runs")
    return config, records


def run_study(config: BenchConfig, table: TabularBenchmark | None = None, model: ArchGPT | None = None,
              progress: bool = True) -> list[RunRecord]:
    """Run (or continue) every strategy x budget x seed and write the reports; returns the run records.

    ``table`` and ``model`` default to ``TabularBenchmark.load(config.benchmark)`` and
    ``ArchGPT.from_pretrained(config.model)`` (loaded once, only if a +gpt strategy is asked for). Every run
    starts cold: the space's layer cache is cleared and it gets its own ``GPTReconstructor``, so timings do
    not depend on the order of runs. X+gpt+ft runs fine-tune the model online; its weights are restored
    before every GPT run.
    """
    try:
        specs = [validate(config.search_config(label, max(1, min(config.budgets or (1,))), 0))
                 for label in config.strategies]
    except UserInputError as err:  # the study's option is the list of labels
        raise UserInputError(str(err).replace("strategy: ", "strategies: ", 1)) from None
    if not config.budgets or min(config.budgets) < 1:
        raise UserInputError(f"budgets: need positive numbers of evaluations, got {list(config.budgets)}")
    if config.seeds < 1:
        raise UserInputError(f"seeds: must be at least 1, got {config.seeds}")
    table = table or TabularBenchmark.load(config.benchmark)
    config = replace(config, num_classes=config.num_classes or table.num_classes)
    space = build_space(config.search_config("random", 1, 0), table=table)
    space.choice_tokens()  # the units' allowed tokens, computed once for all runs
    if model is None and any(spec.gpt or (spec.rank and config.rank_features == "gpt") for spec in specs):
        model = load_model(config.model)
    evaluator = TabularEvaluator(table)
    optimum_key, optimum = table.optimum()

    out = Path(config.output)
    done = _done_runs(out, config)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / CONFIG, config.identity())
    append_jsonl(out / COMMANDS, [{"command": _command(), "strategies": list(config.strategies),
                                   "budgets": list(config.budgets), "seeds": config.seeds}])
    jobs = [(spec.label, budget, seed) for spec in specs for budget in config.budgets for seed in range(config.seeds)]
    records = []
    with tqdm(total=len(jobs), disable=not progress, desc=f"bench {config.space}", unit="run") as bar:
        for label, budget, seed in jobs:
            rec = done.get((label, budget, seed))
            if rec is None:
                space.clear_cache()  # every run starts cold, so timings do not depend on the order of runs
                search = build_search(config.search_config(label, budget, seed), table=table, space=space,
                                      evaluator=evaluator, model=model)
                run_dir = out / "runs" / f"{label.replace('+', '-')}-b{budget}-s{seed}" if config.keep_runs else None
                resume = run_dir is not None and (run_dir / "checkpoint.json").is_file()
                result = search.run(run_dir, resume=resume, progress=False)
                rec = RunRecord.from_result(label, budget, seed, result, optimum.fitness, optimum.test_acc,
                                            search.finetune_s)
                append_jsonl(out / RUNS, [rec.to_json()])
            records.append(rec)
            bar.update(1)
            bar.set_postfix(run=f"{label}/{budget}/{seed}")
    ours = {(r.strategy, r.budget, r.seed) for r in records}
    earlier = [r for key, r in done.items() if key not in ours]  # runs of earlier invocations stay in the report
    write_reports(config, table, records + earlier, optimum_key, space, model)
    return records


def _command() -> str:
    return "arch-gpt " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "run_study(...)"


def _seed_range(records: Sequence[RunRecord]) -> str:
    seeds = sorted({r.seed for r in records})
    return f"{seeds[0]}..{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else \
        ", ".join(map(str, seeds))


def unnamed_choices(space, model: ArchGPT | None) -> list[str]:
    """The units' choice tokens that ``model`` cannot predict (not in its vocabulary), sorted."""
    if model is None:
        return []
    return sorted({t for row in space.choice_tokens() for t in row.values() if not model.tokenizer.in_vocab(t)})


def machine() -> dict:
    """Where the study ran (for the report)."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "torch_threads": torch.get_num_threads()}


def write_reports(config: BenchConfig, table: TabularBenchmark, records: Sequence[RunRecord], optimum_key: str,
                  space, model: ArchGPT | None = None) -> None:
    """results.json, results.md and convergence.png in ``config.output``."""
    out = Path(config.output)
    optimum = table.lookup(optimum_key)
    summaries = summarize(records, optimum_key)
    comparisons = compare(records, summaries)
    command = _command()
    commands = [c["command"] for _, c in read_jsonl(out / COMMANDS)] if (out / COMMANDS).is_file() else []
    commands = list(dict.fromkeys(commands or [command]))  # in order, each once
    facts = {"command" if len(commands) == 1 else "commands": "; ".join(f"`{c}`" for c in commands),
             "space": config.space, "benchmark": table.path,
             "table": f"{len(table)} architectures, {table.space} format, fitness = {table.format.fitness_field}, "
                      f"reported = {table.format.test_field}",
             "optimum": f"{optimum_key} (fitness {optimum.fitness:.3f}, test {optimum.test_acc:.3f})",
             "seeds": _seed_range(records), "machine": ", ".join(f"{k} {v}" for k, v in machine().items())}
    labels = list(dict.fromkeys(r.strategy for r in records))
    specs = [StrategySpec.parse(label) for label in labels]
    if any(spec.gpt for spec in specs):
        facts["GPT"] = f"{config.model} (mask rate {config.mask_rate})"
        missing = unnamed_choices(space, model)
        facts["choice tokens outside the GPT's vocabulary (never predicted)"] = (
            ", ".join(f"`{t}`" for t in missing) if missing else "none")
    if any(spec.finetune for spec in specs):
        facts["online fine-tune (+ft)"] = (f"{config.finetune_steps} AdamW steps (lr {config.finetune_lr}) after "
                                           f"each generation on the unit choices of the {config.finetune_top} "
                                           f"fittest architectures so far; time included in search time")
    unmatched = dict(space.unmatched_predictions)
    if unmatched:
        facts["GPT predictions outside the unit's choices (kept the unit)"] = sum(unmatched.values())
    header = {"title": f"With vs without GPT on {config.space} ({Path(table.path).name})", "facts": facts}
    atomic_write_text(out / RESULTS_MD, markdown(summaries, comparisons, header))
    payload = {"config": {**config.identity(), "strategies": labels,
                          "budgets": sorted({r.budget for r in records}), "seeds": config.seeds},
               "command": command, "commands": commands, "machine": machine(),
               "table": {"path": table.path, "space": table.space, "entries": len(table), "optimum_key": optimum_key,
                         "optimum_fitness": optimum.fitness, "optimum_test": optimum.test_acc},
               "summary": [asdict(s) for s in summaries], "comparisons": [asdict(c) for c in comparisons],
               "runs": [r.to_json() for r in records]}
    write_json(out / RESULTS_JSON, payload, indent=1)
    plot_study_convergence(records, out / PLOT, title=header["title"], optimum=optimum.test_acc)
