"""``arch-gpt retrain RUN_DIR``: the final training of a search's best architecture (paper §4.3).

Schedules (SGD, momentum 0.9, step decay /10): CIFAR-10/100 350 epochs with decay every 100; ImageNet
120 epochs with decay every 30; digits 30 epochs with decay every 10 (the offline default). Every epoch
writes a checkpoint, so ``--resume`` continues a killed run with the same result. The output folder
(default RUN_DIR/retrain) gets model.safetensors and metrics.json; a folder that already holds a retrain is
refused unless ``--resume`` (continue it) or ``--overwrite`` (start over).
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from arch_gpt.cli.help import add_command


def run(args: argparse.Namespace) -> int:
    from arch_gpt.search.retrain import SCHEDULES, retrain

    base = SCHEDULES.get(args.dataset, SCHEDULES["digits"])
    overrides = {k: v for k, v in {"epochs": args.epochs, "step_size": args.step_size, "lr": args.lr,
                                   "batch_size": args.batch_size, "seed": args.seed, "workers": args.workers}.items()
                 if v is not None}
    metrics = retrain(args.run_dir, args.dataset, replace(base, **overrides), args.out_dir, args.data_dir,
                      args.download, args.subset, args.input_size, args.resume, args.device,
                      overwrite=args.overwrite)
    print(f"retrained {metrics['key']}: val_acc {metrics['val_acc']:.4f} test_acc {metrics['test_acc']:.4f} "
          f"({metrics['params']} params) -> {args.out_dir or Path(args.run_dir) / 'retrain'}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``arch-gpt retrain``."""
    p = add_command(subparsers, "retrain", __doc__, "final training of a search run's best architecture")
    p.add_argument("run_dir", metavar="RUN_DIR", help="output folder of `arch-gpt search`")
    p.add_argument("--dataset", default="digits", help="digits (default), cifar10, cifar100 or imagenet")
    p.add_argument("--data-dir", default=None, help="folder of cifar10/cifar100/imagenet data")
    p.add_argument("--download", action="store_true", help="download CIFAR if missing")
    p.add_argument("--subset", type=float, default=None, help="fraction of ImageNet per class")
    p.add_argument("--input-size", type=int, default=None, help="image side, 8 to 1024 (default: the search's)")
    p.add_argument("--epochs", type=int, default=None, help="default: 350 CIFAR, 120 ImageNet, 30 digits")
    p.add_argument("--step-size", type=int, default=None, help="lr ÷10 every N epochs (100 / 30 / 10)")
    p.add_argument("--lr", type=float, default=None, help="SGD lr (default: 0.1, 0.05 on digits)")
    p.add_argument("--batch-size", type=int, default=None, help="default: 128, 64 on digits")
    p.add_argument("--seed", type=int, default=None, help="seed of the initialization and shuffling (default: 0)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers")
    p.add_argument("--device", default=None, help="cuda / cpu (default: CUDA when present)")
    p.add_argument("--out", dest="out_dir", default=None, help="output folder (default RUN_DIR/retrain)")
    p.add_argument("--resume", action="store_true", help="continue the retrain in the output folder")
    p.add_argument("--overwrite", action="store_true", help="start over, replacing an earlier retrain there")
    p.set_defaults(func=run)
