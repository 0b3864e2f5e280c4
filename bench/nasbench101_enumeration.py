"""Time the full NAS-Bench-101 enumeration (423,624 cells), the cache write and the cached load.

Run: ``OMP_NUM_THREADS=1 python bench/nasbench101_enumeration.py [--workers 2]``; writes
``bench/results/nasbench101_enumeration.json`` with the machine it ran on.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from arch_gpt.io import atomic_write_text
from arch_gpt.zoo.nasbench101 import enumerate_table, load_cells

RESULT = Path(__file__).parent / "results" / "nasbench101_enumeration.json"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    table = enumerate_table(progress=False, workers=args.workers)
    enumerate_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cells.npz"
        start = time.perf_counter()
        table.save(path)
        save_s = time.perf_counter() - start
        start = time.perf_counter()
        loaded = load_cells(path)
        load_s = time.perf_counter() - start
        size = path.stat().st_size
    result = {
        "cells": len(loaded),
        "cells_by_vertices": table.counts_by_vertices(),
        "cells_by_edges": table.counts_by_edges(),
        "unique_hashes": len(set(table.hex_hashes())),
        "enumerate_seconds": round(enumerate_s, 2),
        "cache_save_seconds": round(save_s, 3),
        "cache_load_seconds": round(load_s, 3),
        "cache_bytes": size,
        "workers": args.workers,
        "machine": {"cpu": _cpu_model(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "load_average_1m_before": round(load_before, 2),
                    "note": "2 cores shared with other jobs while measured"},
    }
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
