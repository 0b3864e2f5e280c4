"""Training throughput (tokens/s) of the ArchGPT GPT2 with the stock ``Trainer``, on the CPU and on a GPU if present.

Run: ``python bench/train_throughput.py [--steps 20] [--n_embd 64 128] [--device cpu cuda]`` (about 2 min on 2 cores).
The windows are random ids (content does not change the cost) in the corpus format: 11 tokens per row, batch 128,
the same ``WeightedLossTrainer`` the training scripts use. Tokens/s counts all 11 positions of each window, after
``--warmup`` untimed steps. Writes ``bench/results/train_throughput_<device>.json`` with the machine, its load
average (the CPU is shared) and torch's thread count.
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
import torch
from datasets import Dataset
from transformers import TrainerCallback, default_data_collator

from arch_gpt.io import atomic_write_text
from arch_gpt.modeling import ArchGPT
from arch_gpt.tokenizer import LayerTokenizer
from arch_gpt.training.arguments import ArchGPTTrainingArguments
from arch_gpt.training.weighted_trainer import WeightedLossTrainer

RESULTS = Path(__file__).parent / "results"
SEQ = 11


class StepTimer(TrainerCallback):
    """Wall time of the steps after the warm-up."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end = warmup, None, None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def machine(device: str) -> dict:
    """What the numbers were measured on."""
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    out = {"cpu": cpu, "logical_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "load_average_1_5_15": list(os.getloadavg()), "python": platform.python_version(),
           "torch": torch.__version__, "platform": platform.platform()}
    if device == "cuda":
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def random_windows(n: int, vocab: int, rng: np.random.Generator) -> Dataset:
    """Corpus-format rows with random layer ids (labels only on the last position, as the corpus builds them)."""
    ids = rng.integers(5, vocab, size=(n, SEQ))
    labels = np.full((n, SEQ), -100)
    labels[:, -1] = ids[:, -1]
    return Dataset.from_dict({"input_ids": ids, "attention_mask": np.ones_like(ids), "labels": labels,
                              "count": np.ones(n, dtype=np.int64)}).with_format("torch")


def measure(device: str, n_embd: int, steps: int, warmup: int, batch: int, vocab: int, seed: int) -> dict:
    """Tokens/s and steps/s of ``steps`` timed Trainer steps."""
    tokenizer = LayerTokenizer.from_tokens([f"other:Op{i}" for i in range(vocab - 5)])
    gpt = ArchGPT.create(tokenizer, n_embd=n_embd, seed=seed, device="cpu")
    data = random_windows(batch * (steps + warmup), tokenizer.vocab_size, np.random.default_rng(seed))
    timer = StepTimer(warmup)
    with tempfile.TemporaryDirectory() as tmp:
        args = ArchGPTTrainingArguments(
            output_dir=tmp, max_steps=steps + warmup, per_device_train_batch_size=batch, eval_strategy="no",
            save_strategy="no", logging_strategy="no", disable_tqdm=True, use_cpu=device == "cpu",
            dataloader_pin_memory=device == "cuda", report_to="none", seed=seed)
        trainer = WeightedLossTrainer(model=gpt.model, args=args, train_dataset=data,
                                      data_collator=default_data_collator, callbacks=[timer])
        trainer.train()
    seconds = timer.end - timer.start
    return {"device": device, "n_embd": n_embd, "n_layer": 4, "n_head": 4, "parameters": gpt.model.num_parameters(),
            "vocab_size": tokenizer.vocab_size, "batch_size": batch, "tokens_per_window": SEQ, "timed_steps": steps,
            "seconds": round(seconds, 3), "steps_per_s": round(steps / seconds, 3),
            "tokens_per_s": round(steps * batch * SEQ / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--vocab_size", type=int, default=300)
    parser.add_argument("--n_embd", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--device", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()
    for device in opts.device:
        runs = [measure(device, n, opts.steps, opts.warmup, opts.batch_size, opts.vocab_size, opts.seed)
                for n in opts.n_embd]
        for run in runs:
            print(json.dumps(run))
        result = {"benchmark": "ArchGPT training throughput with transformers.Trainer",
                  "command": "python bench/train_throughput.py " + " ".join(
                      f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in vars(opts).items()
                      if k != "device") + f" --device {device}",
                  "machine": machine(device), "runs": runs}
        RESULTS.mkdir(exist_ok=True)
        atomic_write_text(RESULTS / f"train_throughput_{device}.json", json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
