"""Which embedding width for the 4-layer, 4-head ArchGPT? Held-out next-layer accuracy per width, same budget.

Each width is pre-trained with the bundled checkpoint's recipe (AdamW, cosine lr from 1e-3, warm-up 300, batch
128, seed 42) for the same number of steps on the same corpus, then scored on the same held-out windows
(top-1, top-5, perplexity, next to the bigram baseline). Run by hand, e.g. (about 30 min on 2 cores)::

    python bench/width_sweep.py --data_dir /tmp/arch-gpt-nb101-corpus --widths 64 128 256 --steps 2500

Writes ``bench/results/<name>.json`` and ``.md`` (``--name``, default ``width_sweep``) with the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from arch_gpt.io import atomic_write_text
from arch_gpt.training import pretrain

RESULTS = Path(__file__).parent / "results"


def run_width(data_dir: str, width: int, steps: int, eval_windows: int) -> dict:
    """Pre-train one width in a scratch folder; its held-out metrics, parameter count and wall seconds."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        metrics = pretrain.main([
            "--data_dir", data_dir, "--output_dir", out, "--n_embd", str(width), "--learning_rate", "1e-3",
            "--lr_scheduler_type", "cosine", "--warmup_steps", "300", "--max_steps", str(steps),
            "--max_eval_windows", str(eval_windows), "--eval_strategy", "no", "--save_strategy", "no",
            "--logging_steps", "500", "--disable_tqdm", "true", "--report_to", "none"])
        seconds = time.perf_counter() - start
        config = json.loads((Path(out) / "config.json").read_text())
        params = sum(t.numel() for t in load_file(str(Path(out) / "model.safetensors")).values())
    return {"n_embd": width, "n_layer": config["n_layer"], "n_head": config["n_head"], "parameters": params,
            "steps": steps, "wall_s": round(seconds, 1), **{k: round(float(v), 4) for k, v in metrics.items()}}


def markdown(summary: dict) -> str:
    rows = summary["rows"]
    lines = ["# Embedding width of the 4-layer, 4-head ArchGPT", "",
             f"Command: `{summary['command']}`  ", f"Machine: {summary['machine']}", "",
             "| n_embd | parameters | steps | wall s | top-1 | top-5 | perplexity | bigram top-1 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['n_embd']} | {r['parameters']:,} | {r['steps']} | {r['wall_s']} | "
                     f"{r.get('next_layer_top1', float('nan')):.4f} | {r.get('next_layer_top5', float('nan')):.4f} | "
                     f"{r.get('perplexity', float('nan')):.3f} | {r.get('bigram_baseline_top1', float('nan')):.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_dir", required=True, help="an `arch-gpt corpus nasbench101` folder")
    p.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--eval_windows", type=int, default=20000)
    p.add_argument("--name", default="width_sweep", help="results file stem under bench/results/")
    args = p.parse_args()
    bad = [w for w in args.widths if w < 4 or w % 4]
    if bad or args.steps < 1 or args.eval_windows < 1:
        p.error(f"--widths must be positive multiples of n_head=4 (got {bad or args.widths}); --steps and "
                f"--eval_windows must be >= 1 (got {args.steps}, {args.eval_windows})")
    rows = []
    for width in args.widths:
        rows.append(run_width(args.data_dir, width, args.steps, args.eval_windows))
        print(json.dumps(rows[-1]), flush=True)
    summary = {
        "command": "python bench/width_sweep.py --data_dir " + args.data_dir + " --widths "
                   + " ".join(map(str, args.widths))
                   + f" --steps {args.steps} --eval_windows {args.eval_windows} --name {args.name}",
        "machine": f"{platform.platform()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads, load avg {os.getloadavg()[0]:.1f} at the end",
        "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / f"{args.name}.json", json.dumps(summary, indent=1) + "\n")
    atomic_write_text(RESULTS / f"{args.name}.md", markdown(summary))
    print(markdown(summary))


if __name__ == "__main__":
    main()
