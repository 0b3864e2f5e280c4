"""Summaries of a with/without-GPT study: run records, per strategy and budget, the Mann-Whitney tests, results.md.

Inputs are :class:`RunRecord`s, one per strategy x budget x seed. Every number in the report is computed
from them: the test accuracy of the best-by-fitness architecture, the regret against the table's
optimum (its best-by-fitness architecture's test accuracy), and the search time without evaluation.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from arch_gpt.errors import UserInputError
from arch_gpt.search.records import SearchResult
from arch_gpt.studies.stats import mann_whitney_p


@dataclass
class RunRecord:
    """One search on a table. ``curve[i]`` is the test accuracy of the best-by-fitness architecture after
    i + 1 evaluations (the incumbent's, so it only changes when the fitness improves)."""
    strategy: str
    budget: int
    seed: int
    best_key: str
    best_fitness: float
    best_test: float
    regret: float
    fitness_regret: float
    evaluations: int
    unique_evaluations: int
    generations: int
    search_s: float
    reconstruction_s: float
    evaluation_s: float
    predicted_units: int = 0
    finetune_s: float = 0.0  # online fine-tune seconds (already included in search_s)
    curve: list[float] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping, where: str = "run record") -> "RunRecord":
        """A record from its JSON object; UserInputError naming ``where`` and the bad field."""
        if not isinstance(data, Mapping):
            raise UserInputError(f"{where}: expected a JSON object, got {type(data).__name__}")
        try:
            record = cls(**data)
        except TypeError as err:
            raise UserInputError(f"{where}: not a run record ({err})") from None
        for name in ("best_fitness", "best_test", "regret", "fitness_regret"):
            if not isinstance(getattr(record, name), (int, float)):
                raise UserInputError(f"{where}: field {name!r}: expected a number, got {getattr(record, name)!r}")
        return record

    @classmethod
    def from_result(cls, label: str, budget: int, seed: int, result: SearchResult, optimum_fitness: float,
                    optimum_test: float, finetune_s: float = 0.0) -> "RunRecord":
        """The record of a finished search (its history gives the incumbent curve); ``finetune_s`` is added
        to the search time."""
        best_fit, best_test, curve = float("-inf"), None, []
        for h in result.history:
            if best_test is None or h.fitness > best_fit:
                best_fit, best_test = h.fitness, h.test_acc
            curve.append(round(float(best_test), 4))
        rec = result.best.record
        t = result.timings
        return cls(
            strategy=label, budget=budget, seed=seed, best_key=result.best.candidate.key, best_fitness=rec.fitness,
            best_test=float(rec.test_acc), regret=float(optimum_test - rec.test_acc),
            fitness_regret=float(optimum_fitness - rec.fitness), evaluations=result.evaluations,
            unique_evaluations=result.unique_evaluations, generations=result.generations,
            search_s=t.search_s + finetune_s, reconstruction_s=t.reconstruction_s, evaluation_s=t.evaluation_s,
            predicted_units=sum(len(h.predicted_units) for h in result.history), finetune_s=finetune_s,
            curve=curve)


@dataclass
class Summary:
    """Aggregate of one strategy at one budget over its seeds."""
    strategy: str
    budget: int
    runs: int
    test_mean: float
    test_std: float
    regret_mean: float
    fitness_regret_mean: float
    optimum_hits: int
    search_s_mean: float
    search_s_per_generation: float
    reconstruction_s_mean: float


@dataclass
class Comparison:
    """Two-sided Mann-Whitney U of the best test accuracies of ``base`` vs ``gpt`` at one budget."""
    base: str
    gpt: str
    budget: int
    base_mean: float
    gpt_mean: float
    u: float
    p_value: float
    search_overhead: float | None  # gpt's search time without evaluation / base's, minus 1


def summarize(records: Sequence[RunRecord], optimum_key: str) -> list[Summary]:
    """One Summary per (strategy, budget), in first-seen order."""
    groups: dict[tuple[str, int], list[RunRecord]] = {}
    for r in records:
        groups.setdefault((r.strategy, r.budget), []).append(r)
    out = []
    for (strategy, budget), runs in groups.items():
        test = np.array([r.best_test for r in runs])
        gens = sum(r.generations for r in runs)
        out.append(Summary(
            strategy=strategy, budget=budget, runs=len(runs), test_mean=float(test.mean()),
            test_std=float(test.std(ddof=1)) if len(runs) > 1 else 0.0,
            regret_mean=float(np.mean([r.regret for r in runs])),
            fitness_regret_mean=float(np.mean([r.fitness_regret for r in runs])),
            optimum_hits=sum(r.best_key == optimum_key for r in runs),
            search_s_mean=float(np.mean([r.search_s for r in runs])),
            search_s_per_generation=float(sum(r.search_s for r in runs) / max(gens, 1)),
            reconstruction_s_mean=float(np.mean([r.reconstruction_s for r in runs]))))
    return out


def pairs(labels: Sequence[str]) -> list[tuple[str, str]]:
    """The comparisons among ``labels``, where both ran: each label against its base strategy and against every
    label one modifier shorter (X vs X+gpt, X+gpt vs X+gpt+ft, X+rank vs X+gpt+rank, X+gpt vs X+gpt+rank, ...)."""
    present = list(dict.fromkeys(labels))
    out = []
    for label in present:
        if "+" not in label:
            continue
        base, *mods = label.split("+")
        shorter = [base + "".join(f"+{m}" for m in mods if m != drop) for drop in mods]
        for other in dict.fromkeys([base, *shorter]):
            if other != label and other in present:
                out.append((other, label))
    return sorted(out, key=lambda p: (p[1].count("+"), present.index(p[1]), p[0].count("+")))


def compare(records: Sequence[RunRecord], summaries: Sequence[Summary]) -> list[Comparison]:
    """Mann-Whitney U (two-sided, scipy) of each pair of :func:`pairs` for every budget where both ran on at
    least 2 seeds."""
    by = {(s.strategy, s.budget): s for s in summaries}
    out = []
    for base, gpt in pairs([r.strategy for r in records]):
        for budget in sorted({r.budget for r in records}):
            a = [r.best_test for r in records if r.strategy == base and r.budget == budget]
            b = [r.best_test for r in records if r.strategy == gpt and r.budget == budget]
            if len(a) < 2 or len(b) < 2:
                continue
            statistic = float(stats.mannwhitneyu(a, b, alternative="two-sided").statistic)
            sa, sb = by[(base, budget)], by[(gpt, budget)]
            overhead = (sb.search_s_per_generation / sa.search_s_per_generation - 1.0
                        if sa.search_s_per_generation > 0 else None)
            out.append(Comparison(base, gpt, budget, float(np.mean(a)), float(np.mean(b)), statistic,
                                  mann_whitney_p(a, b), overhead))
    return out


def verdict(c: Comparison, alpha: float = 0.05) -> str:
    """One plain sentence on whether the GPT variant did better."""
    diff = c.gpt_mean - c.base_mean
    if c.p_value < alpha:
        how = "better than" if diff > 0 else "WORSE than"
        return f"{c.gpt} is significantly {how} {c.base} (p = {c.p_value:.3g}, difference {diff:+.3f} points)."
    if diff > 0:
        return (f"{c.gpt} is NOT significantly better than {c.base} (p = {c.p_value:.3g}, difference "
                f"{diff:+.3f} points).")
    return f"{c.gpt} is NOT better than {c.base} (difference {diff:+.3f} points, p = {c.p_value:.3g})."


def markdown(summaries: Sequence[Summary], comparisons: Sequence[Comparison], header: dict) -> str:
    """results.md: settings, the main table, the tests, the GPT's cost (Table 6) and plain verdicts."""
    lines = [f"# {header['title']}", ""]
    lines += [f"- **{k}:** {v}" for k, v in header["facts"].items()]
    lines += ["", "## Best-by-fitness architecture, per strategy and budget", "",
              "Test accuracy (%) of the architecture with the best fitness found (mean ± std over seeds); "
              "regret = the optimum's test accuracy minus it; fitness regret = optimum fitness minus best fitness.",
              "", "| strategy | budget | runs | test acc | mean regret | mean fitness regret | optimum found |",
              "|---|---|---|---|---|---|---|"]
    for s in summaries:
        lines.append(f"| {s.strategy} | {s.budget} | {s.runs} | {s.test_mean:.3f} ± {s.test_std:.3f} | "
                     f"{s.regret_mean:.3f} | {s.fitness_regret_mean:.3f} | {s.optimum_hits}/{s.runs} |")
    lines += ["", "## With vs without the GPT (two-sided Mann-Whitney U, scipy)", "",
              "| comparison | budget | mean test (base) | mean test (+gpt) | U | p | search-time overhead per "
              "generation |", "|---|---|---|---|---|---|---|"]
    for c in comparisons:
        over = f"{100 * c.search_overhead:+.1f}%" if c.search_overhead is not None else "n/a"
        lines.append(f"| {c.base} vs {c.gpt} | {c.budget} | {c.base_mean:.3f} | {c.gpt_mean:.3f} | {c.u:.1f} | "
                     f"{c.p_value:.3g} | {over} |")
    if not comparisons:
        lines.append("| (no strategy ran both with and without the GPT on 2+ seeds) | | | | | | |")
    lines += ["", "## Search time excluding evaluation (Table 6)", "",
              "| strategy | budget | mean search s per run | search s per generation | of which GPT reconstruction "
              "(s per run) |", "|---|---|---|---|---|"]
    for s in summaries:
        lines.append(f"| {s.strategy} | {s.budget} | {s.search_s_mean:.4f} | {s.search_s_per_generation:.5f} | "
                     f"{s.reconstruction_s_mean:.4f} |")
    if comparisons:
        lines += ["", "## Verdict", ""] + [f"- budget {c.budget}: {verdict(c)}" for c in comparisons]
    return "\n".join(lines) + "\n"
