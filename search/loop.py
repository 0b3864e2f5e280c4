"""The search loop shared by all strategies: reconstruct, evaluate (cached), log, checkpoint, report.

An output folder holds ``result.json`` (strategy, space, seed, evaluations, best {arch, fitness, params,
test_acc}, timings {search_s, reconstruction_s, evaluation_s}), ``history.jsonl`` (one line per
evaluation), ``checkpoint.json`` (rewritten atomically after every generation), ``best.arch`` and
``convergence.png``; also ``best_genome.json`` (for ``arch-gpt export``) and, when the evaluator kept them,
the best individual's trained weights ``best.safetensors``. An evaluator that is :class:`~arch_gpt.search.protocols.KeepsRunFolder` gets the folder, one that
:class:`~arch_gpt.search.protocols.KeepsWeights` is told after each checkpoint which weights to keep. ``resume=True`` continues from the checkpoint; with the same settings the final
result equals that of an uninterrupted run (timings aside), because the RNG state, population, cache and
history are all restored. A generation hook that persists state (:class:`~arch_gpt.search.protocols.PersistsState`,
``+ft``) saves it in the folder after every generation and loads it on resume; any other hook is called once with
the restored state before the first new generation, so one that rebuilds its model from the history (``+cond``)
continues exactly. A hook's ``config()`` (:class:`~arch_gpt.search.protocols.ConfiguredHook`) is checkpointed
with the strategy's. ``search_s`` is all
time but evaluation (so it includes reconstruction and ranking).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Sequence

import numpy as np
from tqdm.auto import tqdm

from arch_gpt.errors import UserInputError
from arch_gpt.io import append_jsonl, write_json, write_jsonl
from arch_gpt.search.checkpoint import TrialJournal, load_checkpoint, save_checkpoint
from arch_gpt.search.execution import Executor, SerialExecutor
from arch_gpt.search.export import write_best_genome
from arch_gpt.search.pareto import pareto_front
from arch_gpt.search.plotting import plot_convergence, plot_pareto
from arch_gpt.search.protocols import (
    ConfiguredHook, GenerationHook, KeepsRunFolder, KeepsWeights, PersistsState, ProposesOne,
)
from arch_gpt.search.records import Candidate, FitnessRecord, HistoryEntry, Individual, SearchResult, SearchState

if TYPE_CHECKING:  # pragma: no cover  (strategies.base imports this module to offer Strategy.run)
    from arch_gpt.search.strategies.base import Strategy

RESULT, HISTORY, CHECKPOINT, BEST_ARCH, PLOT, TRIALS = "result.json", "history.jsonl", "checkpoint.json", \
    "best.arch", "convergence.png", "trials.jsonl"
PARETO, PARETO_PLOT = "pareto.json", "pareto.png"


def run_search(strategy: "Strategy", output_dir: str | Path | None = None, resume: bool = False,
               progress: bool = True, on_generation: GenerationHook | None = None,
               label: str | None = None, executor: Executor | None = None) -> SearchResult:
    """Run ``strategy`` until its budget of evaluations is spent; see the module docstring.

    ``on_generation`` is called after every generation (the online fine-tune); ``label`` names the run in
    ``result.json`` and the progress bar (default ``strategy.label``, e.g. ``ga+gpt``). ``executor`` runs
    the trials (default: serially in this process, see :mod:`arch_gpt.search.execution`).
    """
    own = executor is None
    executor = executor or SerialExecutor()
    try:
        return _run(strategy, output_dir, resume, progress, on_generation, label, executor)
    finally:
        if own:
            executor.close()


def _run(strategy: "Strategy", output_dir, resume: bool, progress: bool, on_generation: GenerationHook | None,
         label: str | None, executor: Executor) -> SearchResult:
    label = label or strategy.label
    out = Path(output_dir) if output_dir is not None else None
    ckpt = out / CHECKPOINT if out is not None else None
    config = _run_config(strategy, on_generation) if out is not None or resume else {}
    if out is not None:
        _check_output_dir(out, resume)
    if resume:
        if ckpt is None:
            raise UserInputError("resume: needs the output_dir of the run to continue")
        if not ckpt.is_file():
            raise UserInputError(f"resume: {ckpt} does not exist; nothing to resume")
        state, rng = load_checkpoint(ckpt, config, strategy.space)
    else:
        state, rng = SearchState(), np.random.default_rng(strategy.seed)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if isinstance(strategy.evaluator, KeepsRunFolder):
            strategy.evaluator.set_output_dir(out)
        unfinished = state.best is not None and state.evaluations < strategy.budget
        if resume and unfinished and isinstance(strategy.evaluator, KeepsWeights):
            trained = [i for i in (*state.population, state.best) if i.record.error is None]
            missing = strategy.evaluator.missing_weights({i.candidate.key for i in trained})
            if missing:
                raise UserInputError(f"resume: the trained weights of {len(missing)} individual(s) that later "
                                     f"children inherit from are gone from {out / 'weights'} or unreadable "
                                     f"(e.g. {missing[0]!r}); "
                                     f"the resumed run would differ from an uninterrupted one, so start a new run")
        write_jsonl(out / HISTORY, (h.to_json() for h in state.history))
    journal = TrialJournal(out / TRIALS if out is not None else None)
    if not resume:
        journal.clear()
    budget = strategy.budget
    if resume and on_generation is not None and 0 < state.evaluations < budget:
        _resume_hook(on_generation, state, out)
    steady = SteadyStateRun(strategy, executor) if isinstance(strategy, ProposesOne) and strategy.asynchronous \
        else None
    with tqdm(total=budget, initial=state.evaluations, disable=not progress, desc=label,
              unit="eval", dynamic_ncols=True) as bar:
        while state.evaluations < budget:
            if steady is not None:
                done = steady.step(state, rng, budget)
            else:
                done = _generation(strategy, state, rng, budget, executor, journal)
            if out is not None:
                append_jsonl(out / HISTORY, (h.to_json() for h in state.history[-done:]))
                save_checkpoint(ckpt, config, state, rng)
                journal.clear()
            if isinstance(strategy.evaluator, KeepsWeights):
                # after the checkpoint, so a resumed run still finds its parents' weights
                strategy.evaluator.retain({i.candidate.key for i in state.population} | {state.best.candidate.key})
            bar.update(done)
            bar.set_postfix(best=f"{state.best.fitness:.4g}", gen=state.generation)
            if on_generation is not None:
                on_generation(state)
                if out is not None and isinstance(on_generation, PersistsState):
                    on_generation.save_state(out, state.generation)
    result = _result(strategy, state, out, label)
    if out is not None:
        write_outputs(result, out)
        _write_best_for_export(strategy, result, out)
    return result


def _run_config(strategy: "Strategy", hook: GenerationHook | None) -> dict:
    """What a checkpoint records and a resume must match: the strategy's settings and a configured hook's."""
    return {**strategy.config(), **({"on_generation": hook.config()} if isinstance(hook, ConfiguredHook) else {})}


def _resume_hook(hook: GenerationHook, state: SearchState, out: Path) -> None:
    """Put the generation hook where the interrupted run left it: a hook with saved state loads it (and runs
    once more if the run died before saving after the checkpointed generation); any other hook rebuilds from
    the restored history by running once (``+cond``)."""
    if not isinstance(hook, PersistsState):
        hook(state)
        return
    saved = hook.load_state(out)
    if saved == state.generation:
        return
    if saved == state.generation - 1 or (saved is None and state.generation == 1):
        hook(state)  # the last generation's hook did not finish saving: redo it from the state it started from
        hook.save_state(out, state.generation)
        return
    found = "no usable saved state" if saved is None else f"a state saved after generation {saved}"
    raise UserInputError(f"resume: the online fine-tune has {found} in {out}, the checkpoint is at generation "
                         f"{state.generation}; the resumed run would differ from an uninterrupted one, so start a "
                         f"new run")


def _check_output_dir(out: Path, resume: bool) -> None:
    """The run folder can hold this run: not a file, not under a file, not another run's results."""
    for parent in (out, *out.parents):
        if parent.exists() and not parent.is_dir():
            raise UserInputError(f"output_dir: {parent} is a file, not a folder; choose another output folder")
    if resume or not out.is_dir():
        return
    if (out / CHECKPOINT).exists():
        raise UserInputError(f"output_dir: {out} already holds a run ({CHECKPOINT}); resume it or choose another "
                             f"folder")
    theirs = [name for name in (RESULT, HISTORY, BEST_ARCH) if (out / name).exists()]
    if theirs:
        raise UserInputError(f"output_dir: {out} holds the files of another run ({', '.join(theirs)}) and no "
                             f"checkpoint to resume; choose another folder")


def _generation(strategy: "Strategy", state: SearchState, rng: np.random.Generator, budget: int,
                executor: Executor, journal: TrialJournal) -> int:
    """Propose, reconstruct, evaluate and select once; returns the number of evaluations done."""
    start = perf_counter()
    proposals = strategy.propose(state, rng)[:budget - state.evaluations]
    if not proposals:
        raise RuntimeError(f"{type(strategy).__name__}.propose returned no candidates")
    count = len(proposals)
    screener = strategy.screener
    screening = screener is not None and screener.ready(state)
    if screening:  # +rank: a pool of `screener.pool` batches, of which only `count` are evaluated
        for _ in range(screener.pool - 1):
            proposals += strategy.propose(state, rng)
    if strategy.reconstructor is not None:
        t = perf_counter()
        proposals = list(strategy.reconstructor.reconstruct(strategy.space, proposals,
                                                            state.evaluations / budget, rng))
        state.timings.reconstruction_s += perf_counter() - t
    if screening:
        t = perf_counter()
        proposals = screener.select(strategy.space, proposals, state, count, rng)
        state.timings.screening_s += perf_counter() - t
    individuals, eval_s = _evaluate(strategy, state, proposals, executor, journal)
    strategy.update(state, individuals, rng)
    state.generation += 1
    state.timings.evaluation_s += eval_s
    state.timings.total_s += perf_counter() - start
    state.timings.search_s = state.timings.total_s - state.timings.evaluation_s
    return len(individuals)


def _evaluate(strategy: "Strategy", state: SearchState, batch: Sequence[Candidate], executor: Executor,
              journal: TrialJournal) -> tuple[list[Individual], float]:
    """Evaluate the unseen keys of ``batch`` (each persisted as it finishes; those a killed run had finished
    are taken from the journal); seen keys reuse their cached record."""
    fresh: dict[str, Candidate] = {}
    for c in batch:
        if not state.seen(c.key) and c.key not in fresh:
            fresh[c.key] = c
    start = perf_counter()
    done = journal.finished(state.generation)
    measured = {key: strategy.objectives.measure(strategy.space, c.genome) for key, c in fresh.items()} \
        if strategy.objectives.measured else {}
    for key in fresh:
        why = strategy.objectives.violation(measured[key]) if measured else None
        if why is not None and key not in done:  # over a budget: never trained
            done[key] = FitnessRecord(key, 0.0, error=why)
            journal.append(state.generation, done[key])
    todo = [c for key, c in fresh.items() if key not in done]
    new = executor.run(strategy.evaluator, todo, lambda c, r: journal.append(state.generation, r)) if todo else []
    if [r.key for r in new] != [c.key for c in todo]:
        raise RuntimeError(f"{type(strategy.evaluator).__name__} returned records for {[r.key for r in new]} "
                           f"instead of {[c.key for c in todo]}")
    done.update((r.key, r) for r in new)
    records = [with_costs(done[key], measured.get(key)) for key in fresh]
    elapsed = perf_counter() - start
    state.cache.update((r.key, r) for r in records)
    individuals = []
    for c in batch:
        cached = c.key not in fresh
        fresh.pop(c.key, None)  # a repeat inside the batch is cached too
        individuals.append(record_evaluation(state, c, state.cache[c.key], cached))
    return individuals, elapsed


def with_costs(record: FitnessRecord, measured: dict | None) -> FitnessRecord:
    """The record with the candidate's measured costs in ``extra["costs"]`` (unchanged when none were measured)."""
    if not measured:
        return record
    return replace(record, extra={**record.extra, "costs": dict(measured)})


def record_evaluation(state: SearchState, c: Candidate, record: FitnessRecord, cached: bool) -> Individual:
    """Count one evaluation: the best so far and its history line."""
    ind = Individual(c, record)
    state.evaluations += 1
    if state.best is None or ind.fitness > state.best.fitness:
        state.best = ind
    state.history.append(HistoryEntry(
        evaluation=state.evaluations, generation=state.generation, key=c.key, fitness=record.fitness,
        test_acc=record.test_acc, params=record.params, cost_s=0.0 if cached else record.cost_s,
        error=record.error, cached=cached, origin=c.origin, parents=tuple(c.parents),
        predicted_units=tuple(c.predicted_units), best_fitness=state.best.fitness,
        costs=record.extra.get("costs")))
    return ind


class SteadyStateRun:
    """Asynchronous evolution: a new child is proposed whenever a trial finishes, so no worker waits for the
    slowest trial of a generation. Each step records one finished trial (a "generation" of one) and refills the
    workers. Which child comes next depends on which trial finishes first, so with several workers the result
    depends on timing: it is not reproducible across runs or worker counts, and a resumed run re-proposes the
    trials that were in flight (finished ones are never lost: each step is checkpointed)."""

    def __init__(self, strategy: "Strategy", executor: Executor):
        self.strategy, self.executor = strategy, executor
        self.in_flight: dict[str, Candidate] = {}
        self.costs: dict[str, dict | None] = {}

    def step(self, state: SearchState, rng: np.random.Generator, budget: int) -> int:
        s = self.strategy
        while len(self.in_flight) < self.executor.slots and state.evaluations + len(self.in_flight) < budget:
            cand = s.propose_one(state, rng, list(self.in_flight.values()))
            if s.reconstructor is not None:
                cand = s.reconstructor.reconstruct(s.space, [cand], state.evaluations / budget, rng)[0]
            if cand.key in self.in_flight:  # rare (novelty retries ran out): wait for a trial instead
                break
            costs = s.objectives.measure(s.space, cand.genome) if s.objectives.measured else None
            why = s.objectives.violation(costs) if costs else None
            if why is not None and not state.seen(cand.key):  # over a budget: never trained
                state.cache[cand.key] = with_costs(FitnessRecord(cand.key, 0.0, error=why), costs)
            if state.seen(cand.key):  # a repeat counts once more, at no cost
                s.update(state, [record_evaluation(state, cand, state.cache[cand.key], True)], rng)
                state.generation += 1
                return 1
            self.in_flight[cand.key] = cand
            self.costs[cand.key] = costs
            self.executor.submit(s.evaluator, cand)
        start = perf_counter()
        cand, record = self.executor.wait_any()
        state.timings.evaluation_s += perf_counter() - start
        del self.in_flight[cand.key]
        record = with_costs(record, self.costs.pop(cand.key, None))
        state.cache[record.key] = record
        s.update(state, [record_evaluation(state, cand, record, False)], rng)
        state.generation += 1
        return 1


def _result(strategy: "Strategy", state: SearchState, out: Path | None, label: str) -> SearchResult:
    best = state.best
    arch = strategy.space.to_architecture(best.candidate.genome)
    return SearchResult(strategy=label, space=strategy.space.name,
                        seed=strategy.seed, evaluations=state.evaluations, unique_evaluations=len(state.cache),
                        generations=state.generation, best=best, best_architecture=arch,
                        history=list(state.history), timings=state.timings, output_dir=out,
                        pareto=_pareto(strategy, state) if strategy.objectives.multi else None)


def _pareto(strategy: "Strategy", state: SearchState) -> list[dict]:
    """The non-dominated feasible evaluated candidates, best fitness first."""
    names = strategy.objectives.names
    records = [r for r in state.cache.values() if r.error is None and "costs" in r.extra]
    points = [strategy.objectives.point(r) for r in records]
    front = sorted(pareto_front(points), key=lambda i: points[i])
    return [{"key": records[i].key, "val_acc": records[i].fitness, "test_acc": records[i].test_acc,
             **{n: records[i].extra["costs"][n] for n in names[1:]}} for i in front]


def write_outputs(result: SearchResult, out: Path) -> None:
    """``result.json``, ``best.arch`` and ``convergence.png`` (history and checkpoint are written per generation)."""
    write_json(out / RESULT, result.to_json(), indent=1)
    result.best_architecture.save(out / BEST_ARCH)
    plot_convergence(result.history, out / PLOT, title=f"{result.strategy} on {result.space} (seed {result.seed})")
    if result.pareto is not None:
        write_json(out / PARETO, result.pareto)
        plot_pareto(result.history, result.pareto, out / PARETO_PLOT, title=f"{result.strategy} on {result.space}")


def _write_best_for_export(strategy: "Strategy", result: SearchResult, out: Path) -> None:
    """``best_genome.json`` for ``arch-gpt export``/``retrain`` and, if kept, the best's trained weights."""
    write_best_genome(out, strategy.space, result.best.candidate.genome, fitness=result.best.fitness,
                      num_classes=strategy.space.num_classes, input_size=result.best_architecture.input_size)
    if isinstance(strategy.evaluator, KeepsWeights):
        strategy.evaluator.export_weights(result.best.candidate.key, out / "best.safetensors")
