"""Scale-out benchmarks of issue 14: the Ray scheduler's efficiency, real trials on this machine's cores, and two
searches sharing the machine.

Run on an idle machine: ``python bench/scale_out.py [--parts scheduler trials shared]`` (about 10 min on 2 cores).

* scheduler: a synthetic evaluator that sleeps ``--sleep`` s per trial (no compute), a batch of ``--batch`` (32)
  trials with 1, 2, 4, 8, 16 workers (Ray given 16 logical CPUs: a sleeping trial uses none); efficiency =
  (serial time / workers) / parallel time, measured on a second batch after a warm-up batch started the workers.
* trials: the README's default digits search (``arch-gpt search``, serial, one thread per trial) against the
  same search with ``--workers 2`` (Ray, one thread per trial): wall time of both, and whether the results are
  identical.
* shared: two default digits searches started together against one alone (wall time ratio; aim <= 2.2).

Writes ``bench/results/scale_out.json`` and ``.md`` with the machine and its load average.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray
import torch

from arch_gpt.io import atomic_write_text, write_json
from arch_gpt.search.execution import ExecutionConfig, SerialExecutor
from arch_gpt.search.ray_executor import RayExecutor
from arch_gpt.search.records import Candidate, FitnessRecord

RESULTS = Path(__file__).parent / "results"


class SleepEvaluator:
    """Every trial sleeps ``seconds``: what is left of the parallel time is the engine's overhead."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def evaluate(self, candidates):
        out = []
        for c in candidates:
            time.sleep(self.seconds)
            out.append(FitnessRecord(c.key, 0.5))
        return out


def scheduler(batch: int, sleep: float, workers_list: list[int]) -> list[dict]:
    # Ray's CPUs are logical: 16 of them let 16 sleeping trials run at once (and keep 16 idle workers alive
    # between batches; Ray stops idle workers beyond its CPU count)
    ray.init(num_cpus=max(workers_list), include_dashboard=False, log_to_driver=False, configure_logging=False)
    rows = []
    try:
        evaluator = SleepEvaluator(sleep)
        serial = batch * sleep
        for workers in workers_list:
            executor = RayExecutor(ExecutionConfig(workers=workers, cpus_per_trial=1, threads=1))
            cands = [Candidate(i, f"w{workers}-{i}") for i in range(batch)]
            for _ in range(2):  # warm-up: Ray starts its worker processes lazily, a few per batch
                executor.run(evaluator, cands, lambda c, r: None)
            start = time.perf_counter()
            executor.run(evaluator, [Candidate(i, f"x{workers}-{i}") for i in range(batch)], lambda c, r: None)
            wall = time.perf_counter() - start
            rows.append({"workers": workers, "trials": batch, "sleep_s": sleep, "wall_s": round(wall, 3),
                         "ideal_s": round(serial / workers, 3), "efficiency": round(serial / workers / wall, 3)})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        ray.shutdown()
    return rows


def search(out: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "arch_gpt.cli", "search", "--no-progress", "--output", str(out),
                             *extra], env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def timed(*procs: subprocess.Popen) -> float:
    start = time.perf_counter()
    codes = [p.wait() for p in procs]
    assert codes == [0] * len(codes), codes
    return time.perf_counter() - start


def history(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(l).items() if k != "cost_s"} for l in (run / "history.jsonl").read_text().splitlines()]


def trials(tmp: Path) -> dict:
    serial = timed(search(tmp / "serial"))
    parallel = timed(search(tmp / "ray", "--workers", "2", "--threads", "1"))
    row = {"serial_s": round(serial, 1), "ray_2_workers_s": round(parallel, 1),
           "speedup": round(serial / parallel, 3), "same_history": history(tmp / "serial") == history(tmp / "ray")}
    print(json.dumps(row), flush=True)
    return row


def shared(tmp: Path) -> dict:
    alone = timed(search(tmp / "alone"))
    together = timed(search(tmp / "a"), search(tmp / "b"))
    row = {"one_alone_s": round(alone, 1), "two_together_s": round(together, 1),
           "ratio": round(together / alone, 3), "same_history": history(tmp / "a") == history(tmp / "alone")}
    print(json.dumps(row), flush=True)
    return row


def machine() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "")
    return {"cpu": cpu, "usable_cores": len(os.sched_getaffinity(0)), "load_average_1_5_15": list(os.getloadavg()),
            "torch": torch.__version__, "ray": ray.__version__, "gpu": torch.cuda.is_available()}


def markdown(result: dict) -> str:
    lines = ["# Scale-out benchmarks (issue 14)", "", f"Command: `{result['command']}`", "",
             f"Machine: {result['machine']}", ""]
    if "scheduler" in result:
        lines += ["## Scheduler efficiency (sleeping trials, no compute)", "",
                  "| workers | trials | wall s | ideal s | efficiency |", "|---|---|---|---|---|"]
        lines += [f"| {r['workers']} | {r['trials']} | {r['wall_s']} | {r['ideal_s']} | {r['efficiency']} |"
                  for r in result["scheduler"]]
    if "trials" in result:
        t = result["trials"]
        lines += ["", "## The default digits search on 2 cores", "",
                  f"Serial (1 thread per trial): {t['serial_s']} s; Ray, 2 workers x 1 thread: "
                  f"{t['ray_2_workers_s']} s (speed-up {t['speedup']}); identical history: "
                  f"{t['same_history']}."]
    if "shared" in result:
        s = result["shared"]
        lines += ["", "## Two searches at once", "",
                  f"One alone: {s['one_alone_s']} s; two started together: {s['two_together_s']} s "
                  f"(ratio {s['ratio']}, aim <= 2.2); the shared run's history equals the lone one's: "
                  f"{s['same_history']}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["scheduler", "trials", "shared"],
                        choices=["scheduler", "trials", "shared"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--sleep", type=float, default=1.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    opts = parser.parse_args()
    result = {"command": "python bench/scale_out.py " + " ".join(sys.argv[1:]), "machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        if "scheduler" in opts.parts:
            result["scheduler"] = scheduler(opts.batch, opts.sleep, opts.workers)
        if "trials" in opts.parts:
            result["trials"] = trials(Path(tmp))
        if "shared" in opts.parts:
            result["shared"] = shared(Path(tmp))
    result["machine_after"] = {"load_average_1_5_15": list(os.getloadavg())}
    write_json(RESULTS / "scale_out.json", result)
    atomic_write_text(RESULTS / "scale_out.md", markdown(result))


if __name__ == "__main__":
    main()
