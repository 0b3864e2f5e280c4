"""GPT reconstruction of candidates (GPT-NAS Algorithm 1, eq. 3).

For progress t/T the mask rate is ``rate_t = rate0 - (t/T) * rate0``. Each candidate's units are masked
at that rate (the count is ``rate_t * units`` rounded stochastically, the units drawn at random). For all
masked units of the whole batch, the ``window`` layer tokens before ``unit.layer_start`` are the
context of ONE batched ``model.predict_next_tokens`` call whose logits are restricted to the unit's
``allowed_tokens``; where the space has ``block_classes`` and the model a block classifier,
``model.classify_blocks`` names the block class (else the label is None and the space picks).
``space.fill_unit`` then replaces each unit by the choice matching the predicted token (shapes fitted by
the space). Greedy predictions (``top_k=1``) and block labels are cached per (context, allowed tokens), so a
converging population costs fewer forward passes; the cache drops whenever ``model.version`` changes (an
online fine-tune). Contexts are tokens of ``space.context_architecture(genome)`` where a space has it (a
prefix of the network that holds every unit: NAS-Bench-201 needs its first cell only), else of
``space.to_architecture``. Contexts come from the candidate as proposed, so the units of one candidate are predicted
independently and filled in unit order (a unit is identified by its ``index``, which a fill keeps);
predicted unit indices are recorded in ``Candidate.predicted_units``. With ``condition`` set (``+cond``, see
:mod:`arch_gpt.search.conditioning`) every context starts with that fitness-quantile token.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from time import perf_counter
from typing import Sequence

import numpy as np

from arch_gpt.errors import UserInputError
from arch_gpt.modeling import ArchGPT
from arch_gpt.search.lru import LRU
from arch_gpt.search.protocols import (
    BlockLabeller, Candidate, HasBlockClasses, NextTokenPredictor, SearchSpace, Unit,
)
from arch_gpt.search.unit_tokens import UnitTokens


@dataclass
class ReconstructionStats:
    """Counters and seconds, summed over calls (for the GPT-cost report of the bench)."""
    calls: int = 0
    candidates: int = 0
    masked_units: int = 0
    predicted_units: int = 0
    model_s: float = 0.0
    total_s: float = 0.0


class GPTReconstructor:
    """Algorithm 1 over any :class:`~arch_gpt.search.protocols.SearchSpace`, with a model such as ``ArchGPT``."""

    def __init__(self, model: NextTokenPredictor, mask_rate: float = 0.4, top_k: int = 1, temperature: float = 1.0,
                 cache_size: int = 4096, top_p: float = 1.0, tokens: UnitTokens | None = None):
        if not isinstance(model, NextTokenPredictor):
            raise UserInputError(f"model: expected a next-token predictor such as ArchGPT (window, version, "
                                 f"predict_next_tokens), got {type(model).__name__}")
        if not 0.0 <= mask_rate <= 1.0:
            raise UserInputError(f"mask_rate: must be in [0, 1], got {mask_rate}")
        if top_k < 1:
            raise UserInputError(f"top_k: must be at least 1, got {top_k}")
        if not 0 < top_p <= 1:
            raise UserInputError(f"top_p: must be in (0, 1], got {top_p}")
        self.model, self.mask_rate, self.top_k, self.temperature = model, mask_rate, top_k, temperature
        self.top_p = top_p
        self.window = int(model.window)
        self.cache_size = cache_size
        self.unit_tokens = tokens or UnitTokens(cache_size)
        self._predictions: LRU[tuple[str | None, str | None]] = LRU(cache_size * 4)
        self._version = model.version
        self.condition: str | None = None  # +cond sets the top-quantile token once the model has learned it
        self.stats = ReconstructionStats()

    @classmethod
    def from_pretrained(cls, name_or_path: str, mask_rate: float = 0.4, device: str | None = None,
                        **kwargs) -> "GPTReconstructor":
        """Load ``ArchGPT.from_pretrained(name_or_path)`` (a bundled name, a folder or a Hub id)."""
        return cls(ArchGPT.from_pretrained(name_or_path, device=device), mask_rate=mask_rate, **kwargs)

    def rate(self, progress: float) -> float:
        """The mask rate at progress t/T (clipped to [0, 1])."""
        return self.mask_rate * (1.0 - min(max(progress, 0.0), 1.0))

    def tokens(self, space: SearchSpace, candidate: Candidate) -> list[str]:
        """Layer tokens of the candidate's network (cached per key)."""
        return self.unit_tokens(space, candidate.key, candidate.genome)[0]

    def context(self, tokens: Sequence[str], start: int) -> list[str]:
        """The layer tokens before ``start`` the GPT sees; with a ``condition`` (``+cond``: a fitness-quantile
        token), that token then the last ``window - 1`` layers."""
        if self.condition is None:
            return list(tokens[max(0, start - self.window):start])
        return [self.condition, *tokens[max(0, start - self.window + 1):start]]

    def predict(self, space: SearchSpace, contexts: list[list[str]], allowed: list[frozenset[str]],
                rng: np.random.Generator) -> tuple[list[str | None], list[str | None]]:
        """Predicted token and block label (None: the space picks) per context: ONE batched call for the misses."""
        version = self.model.version
        if version != self._version:
            self._predictions.clear()
            self._version = version
        block_classes = list(space.block_classes) if isinstance(space, HasBlockClasses) else []
        labelled = bool(block_classes) and isinstance(self.model, BlockLabeller) and self.model.can_classify_blocks
        keys = [(tuple(c), a, space.name) for c, a in zip(contexts, allowed)]
        cached = self.top_k == 1  # sampling must draw every time
        todo = [i for i, k in enumerate(keys) if not (cached and k in self._predictions)]
        fresh: dict[int, tuple[str | None, str | None]] = {}
        if todo:
            tokens = list(self.model.predict_next_tokens([contexts[i] for i in todo],
                                                         allowed_tokens=[allowed[i] for i in todo], top_k=self.top_k,
                                                         temperature=self.temperature, rng=rng,
                                                         **({"top_p": self.top_p} if self.top_p < 1 else {})))
            labels: list[str | None] = [None] * len(todo)
            asked = [j for j, t in enumerate(tokens) if t is not None]
            if labelled and asked:
                got = self.model.classify_blocks([contexts[todo[j]] for j in asked], [tokens[j] for j in asked],
                                                 allowed_labels=block_classes)
                for j, label in zip(asked, got):
                    labels[j] = label
            for j, i in enumerate(todo):
                fresh[i] = (tokens[j], labels[j])
                if cached:
                    self._predictions.remember(keys[i], fresh[i])
        out = [fresh[i] if i in fresh else self._predictions[keys[i]] for i in range(len(keys))]
        return [t for t, _ in out], [label for _, label in out]

    def choose_units(self, units: Sequence[Unit], rate: float, rng: np.random.Generator) -> list[Unit]:
        """``rate * len(units)`` units (stochastic rounding), drawn without replacement, in unit order."""
        if not units or rate <= 0.0:
            return []
        expected = rate * len(units)
        count = min(len(units), int(np.floor(expected + rng.random())))
        picked = sorted(rng.choice(len(units), size=count, replace=False).tolist()) if count else []
        return [units[i] for i in picked]

    def reconstruct(self, space: SearchSpace, candidates: Sequence[Candidate], progress: float,
                    rng: np.random.Generator) -> list[Candidate]:
        """Rewrite the masked units of every candidate with one batched GPT call (see module docstring)."""
        if not isinstance(rng, np.random.Generator):
            raise UserInputError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
        if not (isinstance(progress, (int, float)) and 0.0 <= progress <= 1.0):  # NaN fails too
            raise UserInputError(f"progress: expected t/T in [0, 1], got {progress!r}")
        start = perf_counter()
        rate = self.rate(progress)
        jobs: list[tuple[int, Unit]] = []
        contexts: list[list[str]] = []
        allowed: list[frozenset[str]] = []
        for ci, cand in enumerate(candidates):
            masked = self.choose_units(space.units(cand.genome), rate, rng)
            if not masked:
                continue
            tokens = self.tokens(space, cand)
            for unit in masked:
                jobs.append((ci, unit))
                contexts.append(self.context(tokens, unit.context_stop))
                allowed.append(unit.allowed_tokens)
        labels: list[str | None] = []
        predicted: list[str | None] = []
        if jobs:
            t = perf_counter()
            predicted, labels = self.predict(space, contexts, allowed, rng)
            self.stats.model_s += perf_counter() - t
        out = list(candidates)
        done: dict[int, list[int]] = {}
        for (ci, unit), token, label in zip(jobs, predicted, labels):
            if token is None:
                continue
            genome = space.fill_unit(out[ci].genome, unit, token, label, rng)
            out[ci] = replace(out[ci], genome=genome, key=space.key(genome))
            done.setdefault(ci, []).append(unit.index)
        for ci, indices in done.items():
            out[ci] = replace(out[ci], predicted_units=tuple(sorted(set(out[ci].predicted_units) | set(indices))))
        self.stats.calls += 1
        self.stats.candidates += len(candidates)
        self.stats.masked_units += len(jobs)
        self.stats.predicted_units += sum(len(v) for v in done.values())
        self.stats.total_s += perf_counter() - start
        return out
