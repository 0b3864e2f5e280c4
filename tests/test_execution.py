"""search/execution.py and search/ray_executor.py: serial and Ray trials give the same search; a killed worker's
trial is retried; a run killed mid-generation resumes without redoing finished trials. A real local Ray
instance (2 CPUs) and real processes killed with SIGKILL; nothing is mocked."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest
import ray
import search_toys
from ray import cloudpickle

from arch_gpt.errors import UserInputError
from arch_gpt.search.execution import ExecutionConfig, SerialExecutor
from arch_gpt.search.ray_executor import RayExecutor
from arch_gpt.search.strategies.genetic import GeneticSearch
from search_toys import ChainSpace, TrialToyEvaluator

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module (executors join it and leave it running)."""
    cloudpickle.register_pickle_by_value(search_toys)  # workers need not import the tests' module
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def history(result):
    return [replace(h, cost_s=0.0) for h in result.history]


def ga(log, delay=0.0):
    return GeneticSearch(ChainSpace(length=3), TrialToyEvaluator(str(log), delay), population=4, generations=3, seed=2)


def test_serial_and_two_ray_workers_give_the_same_search(local_ray, tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    serial = ga(tmp_path / "a").run(progress=False, executor=SerialExecutor())
    executor = RayExecutor(ExecutionConfig(workers=2))
    parallel = ga(tmp_path / "b").run(progress=False, executor=executor)
    assert history(serial) == history(parallel) and serial.best == parallel.best
    # the trials ran in Ray workers, and what a parent's trial left reached its children there
    assert str(os.getpid()) not in {p.suffix.lstrip(".") for p in (tmp_path / "b").iterdir()}
    assert max(i.record.extra["depth"] for i in [parallel.best]) == max(i.record.extra["depth"] for i in [serial.best])


def test_a_killed_worker_has_its_trial_retried(local_ray, tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    strategy = ga(log, delay=1.5)
    executor = RayExecutor(ExecutionConfig(workers=2, max_retries=2))
    reference = ga(tmp_path, 0.0).run(progress=False, executor=SerialExecutor())

    def kill_first_worker():
        while not any(log.iterdir()):
            time.sleep(0.05)
        victim = int(next(log.iterdir()).suffix.lstrip("."))
        os.kill(victim, signal.SIGKILL)

    import threading
    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    result = strategy.run(progress=False, executor=executor)
    killer.join()
    assert history(result) == history(reference)
    assert all(h.error is None for h in result.history)


def test_ray_options_are_checked(local_ray):
    with pytest.raises(UserInputError, match="gpus_per_trial"):
        RayExecutor(ExecutionConfig(workers=2, gpus_per_trial=4))


@pytest.mark.parametrize("field, value", [("workers", 0), ("workers", -1), ("threads", 0), ("cpus_per_trial", -1.0),
                                          ("gpus_per_trial", float("nan")), ("max_retries", -1)])
def test_bad_execution_settings(field, value):
    with pytest.raises(UserInputError, match=rf"^{field}: "):
        ExecutionConfig(**{"workers": 2, field: value})


def test_trials_run_with_the_configured_threads(tmp_path):
    import torch

    class Probe(TrialToyEvaluator):
        def run_trial(self, candidate, payload):
            record, artifact = super().run_trial(candidate, payload)
            return replace(record, extra={"threads": torch.get_num_threads()}), artifact
    before = torch.get_num_threads()
    result = GeneticSearch(ChainSpace(length=2), Probe(str(tmp_path)), population=2, generations=1,
                           seed=0).run(progress=False, executor=SerialExecutor(threads=1))
    assert result.best.record.extra["threads"] == 1 and torch.get_num_threads() == before
    assert ExecutionConfig().threads == 1


DRIVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from search_toys import ChainSpace, TrialToyEvaluator
    from arch_gpt.search.strategies.genetic import GeneticSearch
    ev = TrialToyEvaluator({log!r}, delay={delay})
    GeneticSearch(ChainSpace(length=3), ev, population=4, generations=3, seed=2).run(
        {out!r}, resume={resume}, progress=False)
""")


def drive(tmp_path, out, log, delay, resume):
    script = DRIVER.format(tests=str(TESTS), log=str(log), delay=delay, out=str(out), resume=resume)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", script], env=env, cwd=tmp_path)


def test_a_driver_killed_mid_generation_resumes_without_redoing_finished_trials(tmp_path):
    out, log = tmp_path / "run", tmp_path / "log"
    log.mkdir()
    proc = drive(tmp_path, out, log, delay=0.4, resume=False)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill once the 2nd generation has finished a trial or two
        trials = out / "trials.jsonl"
        lines = trials.read_text().splitlines() if trials.exists() else []
        if (out / "checkpoint.json").exists() and len(lines) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = [json.loads(line)["record"]["key"] for line in (out / "trials.jsonl").read_text().splitlines()
                if line.strip()]
    assert finished and not (out / "result.json").exists()
    started = {p.stem for p in log.iterdir()}
    for p in log.iterdir():
        p.unlink()
    assert drive(tmp_path, out, log, delay=0.0, resume=True).wait(timeout=120) == 0
    rerun = {p.stem for p in log.iterdir()}
    assert not rerun & set(finished)  # finished trials were taken from trials.jsonl, not run again
    assert started  # (the kill did land mid-run)
    (tmp_path / "ref").mkdir()
    reference = ga(tmp_path / "ref").run(tmp_path / "ref-run", progress=False)
    resumed = json.loads((out / "result.json").read_text())
    assert resumed["best"] == json.loads((tmp_path / "ref-run" / "result.json").read_text())["best"]
    ha = [{k: v for k, v in json.loads(l).items() if k != "cost_s"} for l in (out / "history.jsonl").read_text().splitlines()]
    hb = [{k: v for k, v in json.loads(l).items() if k != "cost_s"}
          for l in (tmp_path / "ref-run" / "history.jsonl").read_text().splitlines()]
    assert ha == hb and len(ha) == reference.evaluations


def steady(log, workers_executor, budget=14):
    from arch_gpt.search.strategies.evolution import RegularizedEvolution
    return RegularizedEvolution(ChainSpace(length=3), TrialToyEvaluator(str(log), 0.05), population=4, sample_size=2,
                                budget=budget, seed=1, asynchronous=True).run(progress=False,
                                                                                executor=workers_executor)


def test_steady_state_evolution_serially_is_deterministic(tmp_path):
    a, b = (steady(tmp_path, SerialExecutor()) for _ in range(2))
    assert history(a) == history(b) and a.evaluations == 14 and a.generations == 14
    assert {h.origin for h in a.history[4:]} <= {"mutation"} and {h.origin for h in a.history[:4]} == {"sample"}


def test_steady_state_evolution_on_two_ray_workers(local_ray, tmp_path):
    result = steady(tmp_path, RayExecutor(ExecutionConfig(workers=2)))
    assert result.evaluations == 14 and len({h.key for h in result.history}) >= 10
    assert result.best.fitness == max(h.fitness for h in result.history)


def test_steady_state_checkpoints_every_trial_and_resumes(tmp_path, monkeypatch):
    from arch_gpt.search import loop
    real, saves = loop.save_checkpoint, []

    def save_then_die(*a, **kw):
        real(*a, **kw)
        saves.append(1)
        if len(saves) == 6:
            raise KeyboardInterrupt
    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    from arch_gpt.search.strategies.evolution import RegularizedEvolution

    def make():
        return RegularizedEvolution(ChainSpace(length=3), TrialToyEvaluator(str(tmp_path), 0.0), population=4,
                                    sample_size=2, budget=12, seed=1, asynchronous=True)
    with pytest.raises(KeyboardInterrupt):
        make().run(tmp_path / "run", progress=False)
    assert json.loads((tmp_path / "run" / "checkpoint.json").read_text())["evaluations"] == 6
    monkeypatch.setattr(loop, "save_checkpoint", real)
    resumed = make().run(tmp_path / "run", resume=True, progress=False)
    assert resumed.evaluations == 12 and [h.evaluation for h in resumed.history] == list(range(1, 13))


def test_only_regularized_evolution_runs_asynchronously():
    from arch_gpt.search.spec import SearchConfig, validate
    with pytest.raises(UserInputError, match="^asynchronous: only regularized evolution"):
        validate(SearchConfig(strategy="ga", asynchronous=True))
