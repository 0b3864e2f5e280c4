"""Fitness-conditioned generation (``+cond``): the online form of the paper's "fine-tune on the specific task".

After each generation every architecture evaluated so far is labelled with its fitness tercile (top, middle,
bottom third by fitness, never test accuracy) and the GPT is fine-tuned on its unit choices with that label as a
prefix token (:data:`~arch_gpt.tokenizer.tokenization.FITNESS_TOKENS`); the reconstructor then conditions every
prediction on the top token, so masked units are filled the way the fittest third of the search fills them.

The fine-tune starts from the pre-trained weights every generation (``steps`` AdamW steps on batches of
``batch_size`` unit examples drawn by count with a generator seeded from the history's size, dropout off), so the conditioned model is a function of the evaluations so far: a resumed run rebuilds it exactly from
the restored history. The model needs the three fitness tokens in its vocabulary (``arch-gpt-all-spaces`` has them).
"""
from __future__ import annotations

from arch_gpt.errors import UserInputError
from arch_gpt.modeling import ArchGPT
from arch_gpt.search.online import ChoiceFinetuner
from arch_gpt.search.protocols import SearchSpace
from arch_gpt.search.reconstruction import GPTReconstructor
from arch_gpt.search.records import FitnessRecord, SearchState
from arch_gpt.search.unit_tokens import UnitTokens
from arch_gpt.tokenizer.tokenization import FITNESS_TOKENS


def fitness_terciles(records: list[FitnessRecord]) -> list[str]:
    """The fitness token of each record: top / middle / bottom third by fitness (ties by key), in input order."""
    order = sorted(range(len(records)), key=lambda i: (-records[i].fitness, records[i].key))
    labels = [""] * len(records)
    n = len(records)
    for rank, i in enumerate(order):
        labels[i] = FITNESS_TOKENS[min(2, 3 * rank // n)]
    return labels


class ConditionedFinetuner(ChoiceFinetuner):
    """``on_generation`` hook: refit the fitness-conditioned GPT on all evaluations, then condition on the top."""

    def __init__(self, model: ArchGPT, space: SearchSpace, reconstructor: GPTReconstructor, steps: int = 20,
                 lr: float = 3e-3, min_records: int = 6, batch_size: int = 128,
                 tokens: UnitTokens | None = None):
        missing = [t for t in FITNESS_TOKENS if not model.tokenizer.in_vocab(t)]
        if missing:
            raise UserInputError(f"model: +cond needs a GPT whose vocabulary has the fitness tokens "
                                 f"{', '.join(FITNESS_TOKENS)} (missing {', '.join(missing)}); use "
                                 f"--model arch-gpt-all-spaces or drop +cond")
        if min_records < 3:
            raise UserInputError(f"cond_min_records: must be at least 3, got {min_records}")
        self.reconstructor, self.min_records, self.batch_size = reconstructor, min_records, batch_size
        super().__init__(model, space, steps, lr, tokens)

    def config(self) -> dict:
        return {"kind": "cond", "steps": self.steps, "lr": self.lr, "min_records": self.min_records,
                "batch_size": self.batch_size}

    def reset(self) -> None:
        """Pre-trained weights, a fresh optimizer, and no conditioning until the first fit (before every run)."""
        super().reset()
        self.reconstructor.condition = None

    def restore(self) -> None:
        super().restore()
        self.reconstructor.condition = None

    def __call__(self, state: SearchState) -> None:
        """Refit from the pre-trained weights on every evaluated architecture, labelled by fitness tercile."""
        records = list(state.cache.values())
        if len(records) < self.min_records:
            return
        seconds = self.seconds
        super().reset()  # from the pre-trained weights: a function of the evaluations so far
        self.seconds = seconds
        self.fit([r.key for r in records], prefixes=fitness_terciles(records), batch_size=self.batch_size)
        self.model.model.eval()
        self.reconstructor.condition = FITNESS_TOKENS[0]
