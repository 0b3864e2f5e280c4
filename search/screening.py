"""Pre-screening (``+rank``): propose many, evaluate only those a predictor trained online ranks best.

Each generation after the first, the loop asks the strategy for ``pool`` times its usual batch (reconstructed
as usual, one batched GPT call) and :meth:`Screener.select` keeps the batch-size candidates that a regressor
predicts fittest; only those are evaluated and count toward the budget. The regressor (scikit-learn) is fit
from scratch each generation on every (architecture, fitness) pair evaluated so far, with its seed drawn from
the search's ``Generator``, so a resumed run rebuilds it exactly from the restored history.

Features (a :class:`Featurizer`):

* :class:`GPTFeatures` (``X+gpt+rank``): the GPT's own last hidden state at each unit's signature token,
  given the ``window`` layers before it, concatenated in unit order (zero-padded where a genome has fewer units);
* :class:`OneHotFeatures` (``X+rank``, the no-GPT twin): a one-hot of each unit's choice (its signature layer
  token), with the same predictor and the same pool. It never touches a model.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction import DictVectorizer
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from arch_gpt.errors import UserInputError
from arch_gpt.search.lru import LRU
from arch_gpt.search.protocols import Genome, ParsesKeys, SearchSpace
from arch_gpt.search.records import Candidate, SearchState
from arch_gpt.search.unit_tokens import UnitTokens

PREDICTORS = ("trees", "gp")


@runtime_checkable
class EmbedsContexts(Protocol):
    """A model whose hidden state summarises a context (``ArchGPT.embed_contexts``)."""
    window: int
    version: int

    def embed_contexts(self, contexts: Sequence[Sequence[str]]) -> np.ndarray: ...


@runtime_checkable
class Featurizer(Protocol):
    """Genomes → a feature matrix (rows in order); ``name`` is recorded in the run's settings."""
    name: str

    def features(self, space: SearchSpace, keys: Sequence[str], genomes: Sequence[Genome]) -> np.ndarray: ...


class OneHotFeatures:
    """One-hot of each unit's choice: feature ``u<index>=<signature token>`` (no model involved)."""
    name = "onehot"

    def __init__(self, tokens: UnitTokens | None = None):
        self.tokens = tokens or UnitTokens()

    def features(self, space: SearchSpace, keys: Sequence[str], genomes: Sequence[Genome]) -> np.ndarray:
        rows = []
        for key, genome in zip(keys, genomes):
            tokens, units = self.tokens(space, key, genome)
            rows.append({f"u{index}": tokens[start] for index, start in units})
        return DictVectorizer(sparse=False, sort=True).fit_transform(rows).astype(np.float32)


class GPTFeatures:
    """The GPT's hidden state at each unit's signature token, units concatenated in order (zero-padded)."""
    name = "gpt"

    def __init__(self, model: EmbedsContexts, tokens: UnitTokens | None = None):
        if not isinstance(model, EmbedsContexts):
            raise UserInputError(f"model: GPT ranking features need a model with embed_contexts (an ArchGPT), "
                                 f"got {type(model).__name__}")
        self.model = model
        self.tokens = tokens or UnitTokens()
        self._rows: LRU[np.ndarray] = LRU(8192)
        self._version = model.version

    def features(self, space: SearchSpace, keys: Sequence[str], genomes: Sequence[Genome]) -> np.ndarray:
        if self.model.version != self._version:  # fine-tuned in place: every cached row is stale
            self._rows.clear()
            self._version = self.model.version
        window = int(self.model.window)
        todo = [i for i, key in enumerate(keys) if key not in self._rows]
        contexts, owners = [], []
        for i in todo:
            tokens, units = self.tokens(space, keys[i], genomes[i])
            for _, start in units:
                contexts.append(tokens[max(0, start + 1 - window):start + 1])
                owners.append(i)
        by_owner: dict[int, list[np.ndarray]] = {i: [] for i in todo}
        if contexts:
            for row, i in zip(self.model.embed_contexts(contexts), owners):
                by_owner[i].append(row)
        made = {keys[i]: np.concatenate(parts) if parts else np.zeros(0, np.float32) for i, parts in by_owner.items()}
        for key, row in made.items():
            self._rows.remember(key, row)
        rows = [made[key] if key in made else self._rows[key] for key in keys]
        width = max((len(r) for r in rows), default=0)
        out = np.zeros((len(rows), width), dtype=np.float32)
        for i, r in enumerate(rows):
            out[i, :len(r)] = r
        return out


def make_predictor(kind: str, seed: int):
    """A fresh scikit-learn regressor: extremely randomized trees, or a Gaussian process (Matern 5/2 + noise)."""
    if kind == "trees":
        return ExtraTreesRegressor(n_estimators=100, min_samples_leaf=2, max_features=0.5, random_state=seed,
                                   n_jobs=1)
    if kind == "gp":
        kernel = ConstantKernel(1.0) * Matern(length_scale=10.0, nu=2.5) + WhiteKernel(0.1)
        return make_pipeline(StandardScaler(), GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed))
    raise UserInputError(f"rank_predictor: unknown {kind!r}; choose one of: {', '.join(PREDICTORS)}")


def upper_bound(model, x: np.ndarray, explore: float) -> np.ndarray:
    """The predicted fitness plus ``explore`` standard deviations (the GP's posterior, the trees' spread): 0 ranks
    by the mean alone (pure exploitation), more favours candidates the predictor is unsure of."""
    if not explore:
        return model.predict(x)
    if isinstance(model, ExtraTreesRegressor):
        per_tree = np.stack([tree.predict(x) for tree in model.estimators_])
        return per_tree.mean(0) + explore * per_tree.std(0)
    mean, std = model.predict(x, return_std=True)
    return mean + explore * std


@dataclass
class ScreeningStats:
    """Counters and seconds summed over a run (reported by the bench)."""
    calls: int = 0
    pooled: int = 0
    seconds: float = 0.0


class Screener:
    """Keeps the ``count`` candidates of a pool that a predictor, fit on the evaluations so far, ranks best."""

    def __init__(self, featurizer: Featurizer, pool: int = 5, predictor: str = "gp", min_train: int = 6,
                 explore: float = 1.0):
        if not isinstance(pool, int) or isinstance(pool, bool) or pool < 2:
            raise UserInputError(f"rank_pool: must be an integer >= 2 (proposals per evaluated candidate), got {pool!r}")
        if min_train < 2:
            raise UserInputError(f"rank_min_train: must be at least 2, got {min_train}")
        if not (isinstance(explore, (int, float)) and 0 <= explore < float("inf")):
            raise UserInputError(f"rank_explore: must be a finite number >= 0, got {explore!r}")
        make_predictor(predictor, 0)  # checks the name
        self.featurizer, self.pool, self.predictor, self.min_train = featurizer, pool, predictor, min_train
        self.explore = float(explore)
        self.stats = ScreeningStats()

    def config(self) -> dict:
        """The settings a resumed run must share."""
        return {"features": self.featurizer.name, "pool": self.pool, "predictor": self.predictor,
                "min_train": self.min_train, **({"explore": self.explore} if self.explore else {})}

    def ready(self, state: SearchState) -> bool:
        """Whether enough candidates were evaluated to fit the predictor."""
        return len(state.cache) >= self.min_train

    def select(self, space: SearchSpace, pool: Sequence[Candidate], state: SearchState, count: int,
               rng: np.random.Generator) -> list[Candidate]:
        """The ``count`` unseen candidates of ``pool`` predicted fittest (best first); seen ones only to fill up."""
        if not isinstance(space, ParsesKeys):
            raise UserInputError(f"space {space.name!r}: +rank needs a space that parses keys (to featurize the "
                                 f"evaluated architectures)")
        unique: dict[str, Candidate] = {}
        for c in pool:
            unique.setdefault(c.key, c)
        fresh = [c for c in unique.values() if not state.seen(c.key)]
        if len(fresh) <= count:
            seen = [c for c in unique.values() if state.seen(c.key)]
            return (fresh + seen)[:count]
        records = list(state.cache.values())
        train_keys = [r.key for r in records]
        keys = train_keys + [c.key for c in fresh]
        genomes = [space.parse(k) for k in train_keys] + [c.genome for c in fresh]
        x = self.featurizer.features(space, keys, genomes)
        y = np.array([r.fitness for r in records], dtype=np.float64)
        model = make_predictor(self.predictor, int(rng.integers(2 ** 31 - 1)))
        with warnings.catch_warnings():  # a kernel bound reached on a few points is expected, not news
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x[:len(records)], y)
        score = upper_bound(model, x[len(records):], self.explore)
        order = np.argsort(-score, kind="stable")[:count]
        self.stats.calls += 1
        self.stats.pooled += len(fresh)
        return [fresh[i] for i in order]
