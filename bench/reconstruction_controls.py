"""Controls for the with/without-GPT study: is the GPT's gain more than a cheap prior would give?

Two stand-ins replace the GPT inside the very same ``GPTReconstructor`` (same mask rate, same units, same
allowed-token masking), and run ga and random on a table over the same seeds as ``arch-gpt bench``:

* ``bigram``: the previous-token bigram of the pre-training corpus (the baseline of the held-out metrics),
  restricted to the allowed tokens; unseen contexts fall back to corpus unigram counts, then to a uniform draw.
* ``conv``: a uniform draw among the allowed tokens that are convolutions (the "NB-101 likes convs" prior),
  uniform among all allowed tokens where no conv is allowed.

Each control's mean test accuracy is compared with ``ga+gpt`` / ``random+gpt`` of an existing bench folder
(two-sided Mann-Whitney U, scipy). With ``--rank`` the controls run with pre-screening too (``ga+conv+rank``: the
stand-in reconstructs, a one-hot predictor ranks, the bench folder's population and rank settings) and are compared
with the folder's ``ga+gpt+rank`` (run it with ``--rank-features onehot`` for a like-for-like ranking). Run by hand
(about 2 min per table on 2 cores), e.g.::

    python bench/reconstruction_controls.py --bench bench/results/tabular/nasbench201_cifar10 \
        --benchmark ../shared/benchmarks/nasbench201_cifar10.json --corpus /tmp/arch-gpt-nb101-corpus

Writes ``<bench>/controls.json`` and ``<bench>/controls.md``.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import numpy as np
from datasets import load_from_disk
from scipy import sparse

from arch_gpt.io import atomic_write_text
from arch_gpt.errors import UserInputError
from arch_gpt.search.evaluators.tabular import TabularBenchmark, TabularEvaluator
from arch_gpt.search.spaces import create_space
from arch_gpt.search.spec import SearchConfig, build_search
from arch_gpt.studies.bench import load_study
from arch_gpt.studies.report import RunRecord
from arch_gpt.studies.stats import Versus
from arch_gpt.tokenizer.tokenization import LayerTokenizer


class BigramPrior:
    """Next token = the allowed token seen most often after the context's last token in the corpus."""
    window, version = 10, 0

    def __init__(self, corpus: Path):
        self.tokenizer = LayerTokenizer.from_pretrained(corpus / "tokenizer")
        train = load_from_disk(str(corpus / "lm"))["train"].with_format("numpy")
        ids, mask, count = np.asarray(train["input_ids"]), np.asarray(train["attention_mask"]), train["count"]
        last = ids.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)   # target position of each window
        rows, vocab = np.arange(len(ids)), self.tokenizer.vocab_size
        prev, target = ids[rows, last - 1], ids[rows, last]
        self.pairs = sparse.coo_matrix((count, (prev, target)), shape=(vocab, vocab)).tocsr()
        self.unigram = np.bincount(target, weights=count, minlength=vocab)

    def predict_next_tokens(self, contexts, allowed_tokens, rng, **_):
        out = []
        for context, allowed in zip(contexts, allowed_tokens):
            names = sorted(t for t in allowed if self.tokenizer.in_vocab(t))
            ids = self.tokenizer.tokens_to_ids(names)
            prev = self.tokenizer.tokens_to_ids(context[-1:])[0] if context else None
            score = self.pairs[prev, ids].toarray().ravel() if prev is not None else np.zeros(len(ids))
            if not score.any():
                score = self.unigram[ids]
            out.append(names[int(score.argmax())] if score.any() else names[int(rng.integers(len(names)))])
        return out


class ConvPrior:
    """Next token = a uniform draw among the allowed convolutions (any allowed token where there is none)."""
    window, version = 10, 0

    def predict_next_tokens(self, contexts, allowed_tokens, rng, **_):
        out = []
        for allowed in allowed_tokens:
            names = sorted(allowed)
            convs = [t for t in names if t.startswith("conv:")] or names
            out.append(convs[int(rng.integers(len(convs)))])
        return out


def run_control(name, model, space, table, strategies, budgets, seeds, config: dict, rank: bool) -> list:
    evaluator, (_, optimum) = TabularEvaluator(table), table.optimum()
    records = []
    extra = {"rank_pool": config.get("rank_pool", 5), "rank_predictor": config.get("rank_predictor", "gp"),
             "rank_explore": config.get("rank_explore", 1.0), "rank_features": "onehot"} if rank else {}
    for strategy in strategies:
        for budget in budgets:
            for seed in range(seeds):
                space.clear_cache()
                # top_k=2 turns the reconstructor's greedy cache off (the conv prior draws every time)
                search = build_search(SearchConfig(strategy=f"{strategy}+gpt" + ("+rank" if rank else ""),
                                                   space=space.name, budget=budget, seed=seed,
                                                   mask_rate=config["mask_rate"], top_k=2, benchmark=table.path,
                                                   population=config.get("population"), **extra),
                                      table=table, space=space, evaluator=evaluator, model=model)
                result = search.run(progress=False)
                records.append(RunRecord.from_result(f"{strategy}+{name}" + ("+rank" if rank else ""), budget, seed,
                                                     result, optimum.fitness, optimum.test_acc))
    return records


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", type=Path, required=True, help="a finished `arch-gpt bench` folder (with +gpt runs)")
    p.add_argument("--benchmark", type=Path, required=True)
    p.add_argument("--corpus", type=Path, help="the NB-101 corpus folder the GPT was pre-trained on (for bigram)")
    p.add_argument("--controls", default="bigram,conv", help="which stand-ins to run (bigram needs --corpus)")
    p.add_argument("--budgets", default="100,600")
    p.add_argument("--bases", default="ga,random", help="base strategies of the controls")
    p.add_argument("--rank", action="store_true", help="controls with pre-screening, against X+gpt+rank")
    p.add_argument("--out-name", default="controls", help="writes <bench>/<out-name>.json and .md")
    args = p.parse_args()
    suffix = "+rank" if args.rank else ""
    names = args.controls.split(",")
    if not set(names) <= {"bigram", "conv"} or not names:
        raise UserInputError(f"--controls: a comma-separated subset of bigram,conv, got {args.controls!r}")
    if "bigram" in names and args.corpus is None:
        raise UserInputError("--corpus: the bigram control needs the corpus folder (or pass --controls conv)")
    bases = args.bases.split(",")
    config, gpt_runs = load_study(args.bench)
    budgets = [int(b) for b in args.budgets.split(",")]
    table = TabularBenchmark.load(args.benchmark)
    space = create_space(config["space"], num_classes=config["num_classes"])
    space.choice_tokens()
    by = defaultdict(list)
    for r in gpt_runs:
        by[r.strategy, r.budget].append(r.best_test)
    seeds = 1 + max(r.seed for r in gpt_runs)
    records = []
    for name in names:
        model = BigramPrior(args.corpus) if name == "bigram" else ConvPrior()
        records += run_control(name, model, space, table, bases, budgets, seeds, config, args.rank)
    for r in records:
        by[r.strategy, r.budget].append(r.best_test)
    lines = [f"# Reconstruction controls on {config['space']} ({args.benchmark.name})", "",
             f"Command: `python {' '.join(sys.argv)}`; seeds 0..{seeds - 1}, mask rate "
             f"{config['mask_rate']}. Test accuracy (%) of the best-by-fitness architecture; p: two-sided "
             "Mann-Whitney U against the GPT.", "",
             "| strategy | budget | mean ± std | vs | GPT mean | p |", "|---|---|---|---|---|---|"]
    rows = [Versus.of(f"{base}+{name}{suffix}", budget, by[f"{base}+{name}{suffix}", budget], f"{base}+gpt{suffix}",
                      by[f"{base}+gpt{suffix}", budget])
            for base in bases for budget in budgets if by[f"{base}+gpt{suffix}", budget]
            for name in names]
    lines += [row.markdown() for row in rows]
    atomic_write_text(args.bench / f"{args.out_name}.json", json.dumps(
        {"rows": [asdict(r) for r in rows], "runs": [r.to_json() for r in records]}, indent=1) + "\n")
    atomic_write_text(args.bench / f"{args.out_name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    try:
        main()
    except UserInputError as err:  # bad input: one clear line, no traceback
        sys.exit(f"error: {err}")
