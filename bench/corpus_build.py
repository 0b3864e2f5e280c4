"""Time the NAS-Bench-101 corpus build (``arch-gpt corpus nasbench101``) and its peak memory.

Run: ``OMP_NUM_THREADS=1 nice -n 10 python bench/corpus_build.py [--out DIR] [-- extra corpus options]``.
The cell cache is made first (timed separately); the build then runs as a subprocess whose process tree's
memory (main process + tokenizing workers) is sampled every 0.5 s as summed PSS (shared pages counted once)
and summed RSS (an over-count: forked workers share the parent's pages). Writes
``bench/results/corpus_build.json`` with the machine and its load.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from arch_gpt.io import atomic_write_text
from arch_gpt.zoo.nasbench101 import DEFAULT_CACHE, load_cells

RESULT = Path(__file__).parent / "results" / "corpus_build.json"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _tree_memory(proc: psutil.Process) -> tuple[int, int]:
    """(summed RSS, summed PSS) of the process tree; PSS counts pages shared after fork only once."""
    rss = pss = 0
    for p in [proc] + proc.children(recursive=True):
        try:
            info = p.memory_full_info()
            rss, pss = rss + info.rss, pss + info.pss
        except psutil.Error:
            pass
    return rss, pss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "arch-gpt-nb101-corpus")
    parser.add_argument("--result", type=Path, default=RESULT)
    parser.add_argument("extra", nargs="*", help="extra options for `arch-gpt corpus nasbench101`")
    args = parser.parse_args()
    cache_existed = DEFAULT_CACHE.exists()
    start = time.perf_counter()
    load_cells(progress=False)
    cache_s = time.perf_counter() - start
    cmd = [sys.executable, "-m", "arch_gpt.cli", "corpus", "nasbench101", "--out", str(args.out), "--overwrite",
           "--no-progress", *args.extra]
    load_before = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watched, peak_rss, peak_pss = psutil.Process(proc.pid), 0, 0
    loads = []
    while proc.poll() is None:
        rss, pss = _tree_memory(watched)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        loads.append(os.getloadavg()[0])
        time.sleep(0.5)
    wall = time.perf_counter() - start
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"build failed (exit {proc.returncode}):\n{stderr[-4000:]}")
    summary = json.loads((args.out / "summary.json").read_text())
    keep = ("architectures", "enumerated_cells", "cells_by_vertices", "layers", "windows", "unique_windows",
            "windows_per_split", "unique_windows_per_split", "unique_block_examples_per_split",
            "validation_windows_seen_in_train", "vocab_size", "build_seconds", "options")
    disk = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    result = {
        "command": " ".join(["arch-gpt"] + cmd[3:]),
        "wall_seconds": round(wall, 1),
        "peak_pss_gb_process_tree": round(peak_pss / 2**30, 2),
        "peak_rss_gb_process_tree_summed": round(peak_rss / 2**30, 2),
        "cell_cache_existed": cache_existed, "cell_cache_seconds": round(cache_s, 1),
        "corpus_disk_mb": round(disk / 2**20, 1),
        "summary": {k: summary[k] for k in keep if k in summary},
        "machine": {"cpu": _cpu_model(), "logical_cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1min_before": round(load_before[0], 2),
                    "load_avg_1min_mean_during": round(sum(loads) / max(len(loads), 1), 2)},
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_text(args.result, json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
