"""Where trials run: one after another in this process, or as Ray tasks on a local instance or a cluster.

An executor evaluates a batch of candidates and calls ``on_result`` as each trial finishes, so the loop can
persist every finished evaluation at once (nothing is lost when a run dies mid-generation). Results come back
in the batch's order whatever the order of completion, and every trial is seeded from its candidate's key, so
the same seed gives the same search with 1, 2 or 8 workers. Evaluators that implement
:class:`~arch_gpt.search.protocols.RunsTrials` ship only what a trial needs (the parent's weights) and keep the
trained weights in the search's process; other evaluators get the whole batch in one ``evaluate`` call when
serial (they may batch on purpose), one candidate per task on Ray.

Threads: each trial runs with ``threads`` intra-op torch threads, 1 by default. Torch's CPU kernels may round
differently with another thread count, so a fixed count per trial is what keeps a search identical across worker
counts and machines; it also keeps N workers (or N searches) on N cores from thrashing each other, and for the
small networks of a search one thread per trial is faster than several (bench/results/scale_out.md). Use
``--workers`` to use more cores, ``--threads`` to give each trial more.
"""
from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol, Sequence

import torch

from arch_gpt.errors import UserInputError
from arch_gpt.search.protocols import Evaluator, RunsTrials
from arch_gpt.search.records import Candidate, FitnessRecord

OnResult = Callable[[Candidate, FitnessRecord], None]


@dataclass(frozen=True)
class ExecutionConfig:
    """How trials run. ``workers`` 1 is serial (no Ray); more starts a local Ray instance, or joins
    ``ray_address`` (``auto`` or ``host:port``) when given."""
    workers: int = 1
    ray_address: str | None = None
    cpus_per_trial: float | None = None  # None: usable cores / workers (at least 1)
    gpus_per_trial: float | None = None  # None: 1 when this machine has CUDA GPUs, else 0
    threads: int = 1  # torch threads per trial (a fixed count keeps results identical across worker counts)
    max_retries: int = 2  # a trial whose worker dies is retried this often elsewhere, then recorded as failed

    def __post_init__(self) -> None:
        if not isinstance(self.workers, int) or self.workers < 1:
            raise UserInputError(f"workers: must be a positive integer, got {self.workers!r}")
        for name in ("cpus_per_trial", "gpus_per_trial"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise UserInputError(f"{name}: must be a number >= 0, got {value!r}")
        if not isinstance(self.threads, int) or self.threads < 1:
            raise UserInputError(f"threads: must be at least 1, got {self.threads}")
        if self.max_retries < 0:
            raise UserInputError(f"max_retries: must be >= 0, got {self.max_retries}")
        if self.workers == 1 and self.ray_address is not None:
            raise UserInputError("ray_address: a cluster is only used with workers > 1")


class Executor(Protocol):
    """Evaluates a batch (``run``; ``on_result`` is called in the search's process as each trial finishes), or
    trial by trial for steady-state search (``submit`` up to ``slots`` trials, ``wait_any`` for one)."""
    slots: int

    def run(self, evaluator: Evaluator, candidates: Sequence[Candidate], on_result: OnResult
            ) -> list[FitnessRecord]: ...

    def submit(self, evaluator: Evaluator, candidate: Candidate) -> None: ...

    def wait_any(self) -> tuple[Candidate, FitnessRecord]: ...

    def close(self) -> None: ...


def usable_cpus() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return os.cpu_count() or 1


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` intra-op torch threads, then restore the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_one(evaluator: Evaluator, candidate: Candidate) -> FitnessRecord:
    """One trial in this process (prepare, run, finish), whatever the evaluator's kind."""
    if isinstance(evaluator, RunsTrials):
        return evaluator.finish(candidate, *evaluator.run_trial(candidate, evaluator.prepare(candidate)))
    (record,) = evaluator.evaluate([candidate])
    return record


class SerialExecutor:
    """Trials one after another in this process, each with ``threads`` torch threads."""

    slots = 1

    def __init__(self, threads: int = 1):
        self.threads = threads
        self._queue: list[tuple[Evaluator, Candidate]] = []

    def submit(self, evaluator: Evaluator, candidate: Candidate) -> None:
        self._queue.append((evaluator, candidate))

    def wait_any(self) -> tuple[Candidate, FitnessRecord]:
        evaluator, candidate = self._queue.pop(0)
        with torch_threads(self.threads):
            return candidate, run_one(evaluator, candidate)

    def run(self, evaluator: Evaluator, candidates: Sequence[Candidate], on_result: OnResult
            ) -> list[FitnessRecord]:
        if not isinstance(evaluator, RunsTrials):  # it may batch on purpose (a lookup, one GPU pass): one call
            with torch_threads(self.threads):
                records = list(evaluator.evaluate(list(candidates)))
            for candidate, record in zip(candidates, records):
                on_result(candidate, record)
            return records
        records = []
        for candidate in candidates:
            with torch_threads(self.threads):
                record = run_one(evaluator, candidate)
            on_result(candidate, record)
            records.append(record)
        return records

    def close(self) -> None:
        """Nothing to release (the protocol's hook for executors that start workers)."""
