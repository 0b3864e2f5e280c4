"""The search loop shared by all strategies: reconstruct, evaluate (cached), log, checkpoint, report.

An output folder holds ``result.json`` (strategy, space, seed, evaluations, best {arch, fitness, params,
test_acc}, timings {search_s, reconstruction_s, evaluation_s}), ``history.jsonl`` (one line per
evaluation), ``checkpoint.json`` (rewritten atomically after every generation), ``best.arch`` and
``convergence.png``; also ``best_genome.json`` (for ``arch-gpt export``) and, when the evaluator kept them,
the best individual's trained weights ``best.safetensors``. An evaluator may offer ``set_output_dir(out)``
and ``retain(keys)`` (called after each checkpoint with the population's and the best's keys, so that
it can drop weights no future child inherits). ``resume=True`` continues from the checkpoint; with the same settings the final
result equals that of an uninterrupted run (timings aside), because the RNG state, population, cache and
history are all restored. ``search_s`` is all time but evaluation (so it includes reconstruction).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from arch_gpt.encoding import Architecture, atomic_write_text
from arch_gpt.errors import UserInputError
from arch_gpt.search.checkpoint import load_checkpoint, save_checkpoint
from arch_gpt.search.protocols import Candidate, FitnessRecord
from arch_gpt.search.strategies.base import Individual, SearchState, Strategy, Timings

RESULT, HISTORY, CHECKPOINT, BEST_ARCH, PLOT = "result.json", "history.jsonl", "checkpoint.json", "best.arch", \
    "convergence.png"


@dataclass
class SearchResult:
    """What a search returns (and writes to ``result.json``)."""
    strategy: str
    space: str
    seed: int
    evaluations: int
    unique_evaluations: int
    generations: int
    best: Individual
    best_architecture: Architecture
    history: list[dict]
    timings: Timings
    output_dir: Path | None = None

    def to_json_dict(self) -> dict:
        rec = self.best.record
        return {
            "strategy": self.strategy, "space": self.space, "seed": self.seed, "evaluations": self.evaluations,
            "unique_evaluations": self.unique_evaluations, "generations": self.generations,
            "best": {"key": self.best.candidate.key, "arch": self.best_architecture.to_text(),
                     "fitness": rec.fitness, "params": rec.params, "test_acc": rec.test_acc},
            "timings": {k: round(v, 6) for k, v in dataclasses.asdict(self.timings).items()},
        }


def run_search(strategy: Strategy, output_dir: str | Path | None = None, resume: bool = False,
               progress: bool = True, on_generation: Callable[[SearchState], None] | None = None) -> SearchResult:
    """Run ``strategy`` until its budget of evaluations is spent; see the module docstring."""
    out = Path(output_dir) if output_dir is not None else None
    ckpt = out / CHECKPOINT if out is not None else None
    if resume:
        if ckpt is None:
            raise UserInputError("--resume: needs --output DIR of the run to continue")
        if not ckpt.is_file():
            raise UserInputError(f"--resume: {ckpt} does not exist; nothing to resume")
        state, rng = load_checkpoint(ckpt, strategy)
    else:
        if ckpt is not None and ckpt.exists():
            raise UserInputError(f"--output: {out} already holds a run ({CHECKPOINT}); pass --resume to "
                                 f"continue it or choose another folder")
        state, rng = SearchState(), np.random.default_rng(strategy.seed)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / HISTORY, "".join(json.dumps(h) + "\n" for h in state.history))
        bind = getattr(strategy.evaluator, "set_output_dir", None)
        if bind is not None:
            bind(out)
    budget = strategy.budget
    with tqdm(total=budget, initial=state.evaluations, disable=not progress, desc=strategy.label,
              unit="eval", dynamic_ncols=True) as bar:
        while state.evaluations < budget:
            done = _generation(strategy, state, rng, budget)
            if out is not None:
                with open(out / HISTORY, "a", encoding="utf-8") as fh:
                    fh.writelines(json.dumps(h) + "\n" for h in state.history[-done:])
                save_checkpoint(ckpt, strategy, state, rng)
            retain = getattr(strategy.evaluator, "retain", None)
            if retain is not None:  # after the checkpoint, so a resumed run still finds its parents' weights
                retain({i.candidate.key for i in state.population} | {state.best.candidate.key})
            bar.update(done)
            bar.set_postfix(best=f"{state.best.fitness:.4g}", gen=state.generation)
            if on_generation is not None:
                on_generation(state)
    result = _result(strategy, state, out)
    if out is not None:
        write_outputs(result, out)
        _write_best_for_export(strategy, result, out)
    return result


def _generation(strategy: Strategy, state: SearchState, rng: np.random.Generator, budget: int) -> int:
    """Propose, reconstruct, evaluate and select once; returns the number of evaluations done."""
    start = perf_counter()
    proposals = strategy.propose(state, rng)[:budget - state.evaluations]
    if not proposals:
        raise RuntimeError(f"{type(strategy).__name__}.propose returned no candidates")
    if strategy.reconstructor is not None:
        t = perf_counter()
        proposals = list(strategy.reconstructor.reconstruct(strategy.space, proposals,
                                                            state.evaluations / budget, rng))
        state.timings.reconstruction_s += perf_counter() - t
    individuals, eval_s = _evaluate(strategy, state, proposals)
    strategy.update(state, individuals, rng)
    state.generation += 1
    state.timings.evaluation_s += eval_s
    state.timings.total_s += perf_counter() - start
    state.timings.search_s = state.timings.total_s - state.timings.evaluation_s
    return len(individuals)


def _evaluate(strategy: Strategy, state: SearchState, batch: Sequence[Candidate]) -> tuple[list[Individual], float]:
    """Evaluate the unseen keys of ``batch`` in one call; seen keys reuse their cached record."""
    fresh: dict[str, Candidate] = {}
    for c in batch:
        if not state.seen(c.key) and c.key not in fresh:
            fresh[c.key] = c
    start = perf_counter()
    records: list[FitnessRecord] = list(strategy.evaluator.evaluate(list(fresh.values()))) if fresh else []
    elapsed = perf_counter() - start
    if [r.key for r in records] != list(fresh):
        raise RuntimeError(f"{type(strategy.evaluator).__name__}.evaluate returned records for "
                           f"{[r.key for r in records]} instead of {list(fresh)}")
    state.cache.update((r.key, r) for r in records)
    individuals = []
    for c in batch:
        record = state.cache[c.key]
        cached = c.key not in fresh
        fresh.pop(c.key, None)  # a repeat inside the batch is cached too
        ind = Individual(c, record)
        individuals.append(ind)
        state.evaluations += 1
        if state.best is None or ind.fitness > state.best.fitness:
            state.best = ind
        state.history.append({
            "evaluation": state.evaluations, "generation": state.generation, "key": c.key,
            "fitness": record.fitness, "test_acc": record.test_acc, "params": record.params,
            "cost_s": 0.0 if cached else record.cost_s, "error": record.error, "cached": cached,
            "origin": c.origin, "parents": list(c.parents), "predicted_units": list(c.predicted_units),
            "best_fitness": state.best.fitness,
        })
    return individuals, elapsed


def _result(strategy: Strategy, state: SearchState, out: Path | None) -> SearchResult:
    best = state.best
    arch = strategy.space.to_architecture(best.candidate.genome)
    return SearchResult(strategy=strategy.label, space=getattr(strategy.space, "name", type(strategy.space).__name__),
                        seed=strategy.seed, evaluations=state.evaluations, unique_evaluations=len(state.cache),
                        generations=state.generation, best=best, best_architecture=arch,
                        history=list(state.history), timings=state.timings, output_dir=out)


def write_outputs(result: SearchResult, out: Path) -> None:
    """``result.json``, ``best.arch`` and ``convergence.png`` (history and checkpoint are written per generation)."""
    atomic_write_text(out / RESULT, json.dumps(result.to_json_dict(), indent=1) + "\n")
    result.best_architecture.save(out / BEST_ARCH)
    plot_convergence(result.history, out / PLOT, title=f"{result.strategy} on {result.space} (seed {result.seed})")


def _write_best_for_export(strategy: Strategy, result: SearchResult, out: Path) -> None:
    """``best_genome.json`` for ``arch-gpt export``/``retrain`` and, if kept, the best's trained weights."""
    try:
        from arch_gpt.search.export import write_best_genome
    except ModuleNotFoundError as err:  # export is another module's job; the search stands without it
        if err.name != "arch_gpt.search.export":
            raise
    else:
        h, w, c = result.best_architecture.input_size
        write_best_genome(out, strategy.space, result.best.candidate.genome, fitness=result.best.fitness,
                          num_classes=getattr(strategy.space, "num_classes", None), input_size=(c, h, w))
    export = getattr(strategy.evaluator, "export_weights", None)
    if export is not None:
        export(result.best.candidate.key, out / "best.safetensors")


def plot_convergence(history: Sequence[dict], path: Path, title: str = "") -> None:
    """Fitness of every evaluation and the best so far, against evaluations (PNG, Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = [h["evaluation"] for h in history]
    ax.scatter(x, [h["fitness"] for h in history], s=8, alpha=0.4, label="evaluated")
    ax.step(x, [h["best_fitness"] for h in history], where="post", color="C3", label="best so far")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("fitness")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png")
    tmp.replace(path)
