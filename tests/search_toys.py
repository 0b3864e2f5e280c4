"""A tiny in-memory search space and evaluator shared by the search tests (not a test module).

``ChainSpace``: a genome is a tuple of ``length`` op names; the network is a stem conv, one layer per
op (each op a unit), global pooling and an FC head; it tokenizes and builds a real (tiny) module.
``ToyEvaluator`` scores a genome by a fixed op table, so the optimum is known, and fails on request.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import torch
from torch import nn

from arch_gpt.encoding import Architecture, ConvLayer, FCLayer, OtherLayer, PoolLayer
from arch_gpt.search.evaluators.tabular import TabularBenchmark
from arch_gpt.search.protocols import Candidate, FitnessRecord, Unit
from arch_gpt.zoo import nasbench201

OPS = ("conv3", "conv1", "pool", "skip")
SCORES = {"conv3": 1.0, "conv1": 0.6, "pool": 0.3, "skip": 0.0}
CH = 16


def _op_layer(op: str, i: int, size):
    if op == "conv3":
        return ConvLayer(i, size, size, (3, 3), (1, 1), (1, 1, 1, 1))
    if op == "conv1":
        return ConvLayer(i, size, size, (1, 1), (1, 1), (0, 0, 0, 0))
    if op == "pool":
        return PoolLayer(i, "Max", size, size, (3, 3), (1, 1), (1, 1, 1, 1))
    return OtherLayer(i, "Identity", size, size)


def _op_module(op: str) -> nn.Module:
    return {"conv3": lambda: nn.Conv2d(CH, CH, 3, padding=1, bias=False),
            "conv1": lambda: nn.Conv2d(CH, CH, 1, bias=False),
            "pool": lambda: nn.MaxPool2d(3, 1, 1), "skip": nn.Identity}[op]()


class ChainNet(nn.Module):
    def __init__(self, genome: Sequence[str], num_classes: int, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, CH, 3, padding=1, bias=False), nn.BatchNorm2d(CH))
        self.units = nn.ModuleList(nn.Sequential(_op_module(op), nn.BatchNorm2d(CH)) for op in genome)
        self.head = nn.Linear(CH, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for unit in self.units:
            x = torch.relu(unit(x))
        return self.head(x.mean(dim=(2, 3)))


class ChainSpace:
    """Fixed-length chains of OPS over an (H, W, 3) input."""
    name = "toy-chain"

    def __init__(self, length: int = 4, input_size=(8, 8, 3), num_classes: int = 10):
        self.length, self.input_size, self.num_classes = length, tuple(input_size), num_classes

    def sample(self, rng: np.random.Generator):
        return tuple(OPS[i] for i in rng.integers(len(OPS), size=self.length))

    def mutate(self, genome, rng: np.random.Generator):
        i = int(rng.integers(self.length))
        others = [o for o in OPS if o != genome[i]]
        return genome[:i] + (others[int(rng.integers(len(others)))],) + genome[i + 1:]

    def crossover(self, a, b, rng: np.random.Generator):
        if self.length < 2:
            return a, b
        cut = int(rng.integers(1, self.length))
        return a[:cut] + b[cut:], b[:cut] + a[cut:]

    def key(self, genome) -> str:
        return "-".join(genome)

    def to_architecture(self, genome) -> Architecture:
        h, w, c = self.input_size
        size = (h, w, CH)
        layers = [ConvLayer(1, self.input_size, size, (3, 3), (1, 1), (1, 1, 1, 1))]
        for op in genome:
            layers.append(_op_layer(op, len(layers) + 1, size))
            layers.append(OtherLayer(len(layers) + 1, "ReLU", size, size))
        layers.append(OtherLayer(len(layers) + 1, "AdaptiveAvgPool", size, (1, 1, CH), "1-1"))
        layers.append(OtherLayer(len(layers) + 1, "Flatten", (1, 1, CH), (1, 1, CH)))
        layers.append(FCLayer(len(layers) + 1, CH, self.num_classes))
        return Architecture(tuple(layers), name=self.key(genome))

    def op_tokens(self) -> dict[str, str]:
        from arch_gpt.tokenizer.tokenization import layer_tokens
        tokens = layer_tokens(self.to_architecture(OPS))
        return {op: tokens[1 + 2 * i] for i, op in enumerate(OPS)}

    def units(self, genome) -> list[Unit]:
        allowed = frozenset(self.op_tokens().values())
        return [Unit(i, 1 + 2 * i, allowed) for i in range(self.length)]

    def fill_unit(self, genome, unit: Unit, predicted, block_label, rng):
        ops = {t: op for op, t in self.op_tokens().items()}
        op = ops.get(predicted)
        if op is None:
            return genome
        return genome[:unit.index] + (op,) + genome[unit.index + 1:]

    def build_module(self, genome, num_classes: int) -> nn.Module:
        return ChainNet(genome, num_classes, self.input_size[2])


class ToyEvaluator:
    """Fitness = mean op score; keys in ``fail`` get fitness 0 with an error. Logs every batch it sees."""

    def __init__(self, fail: Sequence[str] = ()):
        self.fail = set(fail)
        self.batches: list[list[str]] = []

    def evaluate(self, candidates: Sequence[Candidate]) -> list[FitnessRecord]:
        self.batches.append([c.key for c in candidates])
        out = []
        for c in candidates:
            if c.key in self.fail:
                out.append(FitnessRecord(c.key, 0.0, error="toy failure"))
            else:
                fit = float(np.mean([SCORES[op] for op in c.genome]))
                out.append(FitnessRecord(c.key, fit, test_acc=fit / 2, params=len(c.genome), cost_s=0.001))
        return out


class TrialToyEvaluator:
    """A RunsTrials evaluator: ToyEvaluator's fitness, each trial taking ``delay`` seconds and leaving a file
    ``<log>/<key>.<pid>`` per run (so tests can count trials and find the worker running one). The "artifact"
    is the parent's payload plus one, which ``finish`` keeps: inheritance that crosses processes."""

    def __init__(self, log: str, delay: float = 0.0):
        self.log, self.delay = log, delay
        self.kept: dict[str, int] = {}

    def prepare(self, candidate: Candidate) -> int:
        return self.kept.get(candidate.parents[0], 0) if candidate.parents else 0

    def run_trial(self, candidate: Candidate, payload: int) -> tuple[FitnessRecord, int]:
        import os
        import time
        marker = os.path.join(self.log, f"{candidate.key}.{os.getpid()}")
        with open(marker, "w") as fh:
            fh.write("started")
        time.sleep(self.delay)
        fit = float(np.mean([SCORES[op] for op in candidate.genome]))
        return FitnessRecord(candidate.key, fit, test_acc=fit / 2, extra={"depth": payload + 1}), payload + 1

    def finish(self, candidate: Candidate, record: FitnessRecord, artifact: int) -> FitnessRecord:
        self.kept[candidate.key] = artifact
        return record

    def evaluate(self, candidates: Sequence[Candidate]) -> list[FitnessRecord]:
        return [self.finish(c, *self.run_trial(c, self.prepare(c))) for c in candidates]


def nb201_toy_table(fitness):
    """An in-memory NAS-Bench-201 CIFAR-10 table of all 15,625 cells scored by ``fitness(arch string)``."""
    data = {}
    for ops in itertools.product(nasbench201.OPS, repeat=6):
        key = nasbench201.arch_str(ops)
        data[key] = {"val_acc_200": fitness(key), "test_acc_200": fitness(key), "rank": 1}
    return TabularBenchmark.from_dict(data, "nasbench201_cifar10.json")
