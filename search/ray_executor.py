"""Trials as Ray tasks: a local Ray instance (the default with ``workers > 1``) or a cluster (``ray_address``).

The evaluator is shipped once per run (``ray.put``); each task gets its candidate and what ``prepare`` gave (the
parent's weights), sets its torch threads, and returns the record and the trained weights, which ``finish``
keeps in the search's process. Results are handed to ``on_result`` in order of completion and returned in the
batch's order. A task whose worker dies (killed process, lost node) is retried by Ray up to ``max_retries``
times; after that the candidate is recorded as failed, with the reason, and the search goes on.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import ray
from ray.exceptions import RayError

from arch_gpt.errors import UserInputError
from arch_gpt.search.execution import ExecutionConfig, OnResult, run_one, torch_threads, usable_cpus
from arch_gpt.search.protocols import Evaluator, RunsTrials
from arch_gpt.search.records import Candidate, FitnessRecord


def _trial(evaluator: Evaluator, candidate: Candidate, payload: Any, threads: int) -> tuple[FitnessRecord, Any]:
    """The body of one Ray task (module level, so workers import it instead of unpickling a closure)."""
    with torch_threads(threads):
        if isinstance(evaluator, RunsTrials):
            return evaluator.run_trial(candidate, payload)
        return run_one(evaluator, candidate), None


class RayExecutor:
    """Runs a batch's trials on Ray workers, ``workers`` at a time (see the module docstring)."""

    def __init__(self, config: ExecutionConfig):
        self.config = config
        self._started = False
        if not ray.is_initialized():
            try:
                if config.ray_address is not None:
                    ray.init(address=config.ray_address, log_to_driver=False)
                else:
                    cpus = config.cpus_per_trial or max(1, usable_cpus() // config.workers)
                    ray.init(num_cpus=max(usable_cpus(), math.ceil(cpus * config.workers)),
                             include_dashboard=False, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise UserInputError(f"ray_address: cannot start or join Ray ({str(err).splitlines()[0]})") from None
            self._started = True
        total = ray.cluster_resources()
        gpus = config.gpus_per_trial
        if gpus is None:
            gpus = 1.0 if total.get("GPU", 0) >= 1 else 0.0
        if gpus > total.get("GPU", 0):
            raise UserInputError(f"gpus_per_trial: {gpus} asked for, the Ray cluster has {total.get('GPU', 0)} GPU(s)")
        self.cpus = config.cpus_per_trial if config.cpus_per_trial is not None else max(
            1.0, float(int(total.get("CPU", 1)) // config.workers))
        self.gpus = gpus
        self.threads = config.threads
        self._task = ray.remote(_trial).options(num_cpus=self.cpus, num_gpus=self.gpus,
                                               max_retries=config.max_retries)
        self._shipped: tuple[int, Any] | None = None
        self._async: dict[Any, tuple[Evaluator, Candidate]] = {}

    @property
    def slots(self) -> int:
        return self.config.workers

    def submit(self, evaluator: Evaluator, candidate: Candidate) -> None:
        """Start one trial now (steady-state search)."""
        payload = evaluator.prepare(candidate) if isinstance(evaluator, RunsTrials) else None
        self._async[self._task.remote(self._evaluator_ref(evaluator), candidate, payload, self.threads)] = \
            (evaluator, candidate)

    def wait_any(self) -> tuple[Candidate, FitnessRecord]:
        """The first submitted trial to finish, with its record (kept by ``finish``)."""
        (done,), _ = ray.wait(list(self._async), num_returns=1)
        evaluator, candidate = self._async.pop(done)
        return candidate, self._collect(evaluator, candidate, done)

    def _collect(self, evaluator: Evaluator, cand: Candidate, done) -> FitnessRecord:
        try:
            record, artifact = ray.get(done)
        except RayError as err:  # the worker died more often than max_retries allows
            reason = f"worker lost after {self.config.max_retries} retries: {str(err).splitlines()[0]}"
            record, artifact = FitnessRecord(cand.key, 0.0, error=reason[:500]), None
        if isinstance(evaluator, RunsTrials):
            record = evaluator.finish(cand, record, artifact)
        return record

    def _evaluator_ref(self, evaluator: Evaluator):
        if self._shipped is None or self._shipped[0] != id(evaluator):
            self._shipped = (id(evaluator), ray.put(evaluator))
        return self._shipped[1]

    def run(self, evaluator: Evaluator, candidates: Sequence[Candidate], on_result: OnResult
            ) -> list[FitnessRecord]:
        ref = self._evaluator_ref(evaluator)
        pending: dict[Any, int] = {}
        queue = list(enumerate(candidates))
        records: list[FitnessRecord | None] = [None] * len(candidates)
        while queue or pending:
            while queue and len(pending) < self.config.workers:
                i, cand = queue.pop(0)
                payload = evaluator.prepare(cand) if isinstance(evaluator, RunsTrials) else None
                pending[self._task.remote(ref, cand, payload, self.threads)] = i
            (done,), _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(done)
            cand = candidates[i]
            record = self._collect(evaluator, cand, done)
            records[i] = record
            on_result(cand, record)
        return records  # type: ignore[return-value]

    def close(self) -> None:
        """Shut down the local Ray instance this executor started (a joined cluster keeps running)."""
        if self._started and ray.is_initialized():
            ray.shutdown()
        self._started = False
