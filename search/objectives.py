"""What a search optimizes: validation accuracy alone, or accuracy against costs (params, FLOPs, latency), and
the budgets a candidate must fit.

Params and FLOPs (multiply-adds) come exactly from the candidate's Architecture (:mod:`arch_gpt.costs`), before
any training; latency is measured on the search's device (``latency_batch`` images, median of a few runs) only
when asked for. A candidate over a budget is never trained: it is recorded as infeasible (fitness 0, its reason,
no cost). With several objectives the genetic algorithm selects by NSGA-II; every strategy reports the
non-dominated set of what it evaluated (``pareto.json``).
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

import torch

from arch_gpt.costs import costs
from arch_gpt.devices import resolve_device
from arch_gpt.errors import UserInputError
from arch_gpt.search.protocols import Genome, SearchSpace
from arch_gpt.search.records import FitnessRecord

COSTS = ("params", "flops", "latency")


@dataclass(frozen=True)
class Objectives:
    """``names``: ``val_acc`` first (maximized), then costs to minimize; ``max_*``: budgets (None: none)."""
    names: tuple[str, ...] = ("val_acc",)
    max_params: int | None = None
    max_flops: int | None = None
    max_latency_ms: float | None = None
    latency_batch: int = 1
    device: str | None = None
    record: tuple[str, ...] = ()  # costs measured and recorded without being optimized (e.g. ("latency",))

    def __post_init__(self) -> None:
        if not self.names or self.names[0] != "val_acc":
            raise UserInputError(f"objectives: the first objective must be val_acc, got {','.join(self.names)}")
        unknown = [n for n in self.names[1:] if n not in COSTS]
        if unknown or len(set(self.names)) != len(self.names):
            raise UserInputError(f"objectives: {','.join(self.names)}: after val_acc, name distinct costs among "
                                 f"{', '.join(COSTS)}")
        for name in ("max_params", "max_flops", "max_latency_ms"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise UserInputError(f"{name}: must be a finite number > 0, got {value!r}")
        if any(n not in COSTS for n in self.record):
            raise UserInputError(f"record: costs are {', '.join(COSTS)}, got {', '.join(self.record)}")
        if self.latency_batch < 1:
            raise UserInputError(f"latency_batch: must be at least 1, got {self.latency_batch}")

    @classmethod
    def parse(cls, text: str, **budgets) -> "Objectives":
        """``"val_acc,params"`` → Objectives(("val_acc", "params"), ...)."""
        return cls(tuple(n.strip() for n in text.split(",") if n.strip()), **budgets)

    @property
    def multi(self) -> bool:
        return len(self.names) > 1

    @property
    def measured(self) -> tuple[str, ...]:
        """The costs measured for every candidate (those optimized or budgeted)."""
        wanted = set(self.names[1:]) | set(self.record) | {n for n, b in (("params", self.max_params), ("flops", self.max_flops),
                                                        ("latency", self.max_latency_ms)) if b is not None}
        return tuple(n for n in COSTS if n in wanted)

    def config(self) -> dict:
        return {"objectives": list(self.names), "max_params": self.max_params, "max_flops": self.max_flops,
                "max_latency_ms": self.max_latency_ms}

    def measure(self, space: SearchSpace, genome: Genome) -> dict[str, float]:
        """The candidate's costs (``latency`` in ms), before training."""
        out: dict[str, float] = {}
        if {"params", "flops"} & set(self.measured):
            c = costs(space.to_architecture(genome))
            out.update({"params": c.params, "flops": c.macs})
        if "latency" in self.measured:
            out["latency"] = self.latency_ms(space, genome)
        return {k: v for k, v in out.items() if k in self.measured}

    def latency_ms(self, space: SearchSpace, genome: Genome, repeats: int = 5) -> float:
        """Median forward time of ``latency_batch`` images on the search's device, after one warm-up."""
        device = resolve_device(self.device)
        module = space.build_module(genome, space.num_classes).to(device).eval()
        h, w, c = space.to_architecture(genome).input_size
        x = torch.zeros(self.latency_batch, c, h, w, device=device)
        times = []
        with torch.no_grad():
            for i in range(repeats + 1):
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
                module(x)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if i:
                    times.append(1000 * (time.perf_counter() - start))
        return round(statistics.median(times), 4)

    def violation(self, measured: dict[str, float]) -> str | None:
        """Why a candidate breaks a budget, or None."""
        for name, budget in (("params", self.max_params), ("flops", self.max_flops),
                             ("latency", self.max_latency_ms)):
            if budget is not None and measured[name] > budget:
                return f"infeasible: {name} {measured[name]:g} > max {budget:g}"
        return None

    def point(self, record: FitnessRecord) -> tuple[float, ...]:
        """The record as a point to minimize: (-fitness, costs...); an infeasible one is worst everywhere."""
        found = record.extra.get("costs", {})
        if record.error is not None or any(n not in found for n in self.names[1:]):
            return (math.inf,) * len(self.names)
        return (-record.fitness, *(float(found[n]) for n in self.names[1:]))
