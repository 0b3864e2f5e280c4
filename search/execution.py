"""Where trials run: one after another in this process, or as Ray tasks on a local instance or a cluster.

An executor evaluates a batch of candidates and calls ``on_result`` as each trial finishes, so the loop can
persist every finished evaluation at once (nothing is lost when a run dies mid-generation). Results come back
in the batch's order whatever the order of completion, and every trial is seeded from its candidate's key, so
the same seed gives the same search with 1, 2 or 8 workers. Evaluators that implement
:class:`~arch_gpt.search.protocols.RunsTrials` ship only what a trial needs (the parent's weights) and keep the
trained weights in the search's process; other evaluators get the whole batch in one ``evaluate`` call when
serial (they may batch on purpose), one candidate per task on Ray.

Threads: each trial sets torch's thread count to its CPU share (``threads``; default: this machine's usable
cores divided by the trials that run at once, and by the other arch-gpt searches running on this machine, see
:class:`ThreadShare`), so N workers never run more threads than cores and two searches do not thrash each other.
"""
from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
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
    threads: int | None = None  # torch threads per trial; None: the trial's CPU share (see ThreadShare)
    max_retries: int = 2  # a trial whose worker dies is retried this often elsewhere, then recorded as failed

    def __post_init__(self) -> None:
        if not isinstance(self.workers, int) or self.workers < 1:
            raise UserInputError(f"workers: must be a positive integer, got {self.workers!r}")
        for name in ("cpus_per_trial", "gpus_per_trial"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise UserInputError(f"{name}: must be a number >= 0, got {value!r}")
        if self.threads is not None and self.threads < 1:
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


class ThreadShare:
    """This machine's cores shared fairly between the arch-gpt searches running on it.

    Each search registers a file named by its pid under ``~/.cache/arch-gpt/running/`` (or
    ``$ARCH_GPT_RUNNING_DIR``) and removes it when done; a trial's torch threads are the usable cores divided by
    the live searches and by the trials this search runs at once, at least 1. Files of dead processes are
    ignored and cleaned. ``threads`` (``--threads``) overrides it.
    """

    def __init__(self, parallel: int = 1, threads: int | None = None):
        self.parallel, self.fixed = parallel, threads
        self.folder = Path(os.environ.get("ARCH_GPT_RUNNING_DIR", Path.home() / ".cache" / "arch-gpt" / "running"))
        self.me = self.folder / str(os.getpid())

    def __enter__(self) -> "ThreadShare":
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.me.write_text(str(time.time()))
        except OSError:  # a read-only home: share nothing, use the default
            pass
        return self

    def __exit__(self, *exc) -> None:
        self.me.unlink(missing_ok=True)

    def searches(self) -> int:
        """Live arch-gpt searches on this machine, this one included."""
        alive = 1
        if self.folder.is_dir():
            for path in self.folder.iterdir():
                if path.name.isdigit() and int(path.name) != os.getpid():
                    if _alive(int(path.name)):
                        alive += 1
                    else:
                        path.unlink(missing_ok=True)
        return alive

    def threads(self) -> int:
        if self.fixed is not None:
            return self.fixed
        return max(1, usable_cpus() // (self.searches() * self.parallel))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    """Trials one after another in this process, each with the search's fair share of threads."""

    slots = 1

    def __init__(self, threads: int | None = None):
        self.share = ThreadShare(1, threads).__enter__()
        self._queue: list[tuple[Evaluator, Candidate]] = []

    def submit(self, evaluator: Evaluator, candidate: Candidate) -> None:
        self._queue.append((evaluator, candidate))

    def wait_any(self) -> tuple[Candidate, FitnessRecord]:
        evaluator, candidate = self._queue.pop(0)
        with torch_threads(self.share.threads()):
            return candidate, run_one(evaluator, candidate)

    def run(self, evaluator: Evaluator, candidates: Sequence[Candidate], on_result: OnResult
            ) -> list[FitnessRecord]:
        if not isinstance(evaluator, RunsTrials):  # it may batch on purpose (a lookup, one GPU pass): one call
            with torch_threads(self.share.threads()):
                records = list(evaluator.evaluate(list(candidates)))
            for candidate, record in zip(candidates, records):
                on_result(candidate, record)
            return records
        records = []
        for candidate in candidates:
            with torch_threads(self.share.threads()):
                record = run_one(evaluator, candidate)
            on_result(candidate, record)
            records.append(record)
        return records

    def close(self) -> None:
        self.share.__exit__(None, None, None)
