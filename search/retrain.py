"""``arch-gpt retrain RUN_DIR``: the final training of a search's best architecture (paper §4.3).

Schedules (SGD, momentum 0.9, step decay ÷10): CIFAR-10/100 350 epochs with decay every 100; ImageNet
120 epochs with decay every 30; digits 30 epochs with decay every 10 (the offline default). Every epoch
writes a checkpoint (weights as safetensors, optimizer/scheduler state read back with
``torch.load(weights_only=True)``), so ``--resume`` continues a killed run with the same result. The
output folder (default ``RUN_DIR/retrain``) gets ``model.safetensors`` and ``metrics.json``.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from arch_gpt.encoding import atomic_write_text
from arch_gpt.errors import UserInputError


@dataclass(frozen=True)
class RetrainConfig:
    """The final schedule: SGD with step decay (lr × gamma every ``step_size`` epochs)."""
    epochs: int
    step_size: int
    lr: float = 0.1
    gamma: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    seed: int = 0
    workers: int = 0


SCHEDULES = {
    "cifar10": RetrainConfig(epochs=350, step_size=100),
    "cifar100": RetrainConfig(epochs=350, step_size=100),
    "imagenet": RetrainConfig(epochs=120, step_size=30, batch_size=128),
    "digits": RetrainConfig(epochs=30, step_size=10, lr=0.05, batch_size=64),
}


def _accuracy(model: nn.Module, loader: DataLoader, device: torch.device) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            pred = model(x.to(device)).argmax(1).cpu()
            correct += int((pred == y).sum())
            total += len(y)
    return correct / max(total, 1)


def _save_checkpoint(folder: Path, model: nn.Module, optimizer, scheduler, epoch: int, history: list) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors.tmp"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, folder / "optim.pt.tmp")
    (folder / "model.safetensors.tmp").replace(folder / "model.safetensors")
    (folder / "optim.pt.tmp").replace(folder / "optim.pt")
    atomic_write_text(folder / "state.json", json.dumps({"epoch": epoch, "history": history}) + "\n")


def _load_checkpoint(folder: Path, model: nn.Module, optimizer, scheduler) -> tuple[int, list]:
    from safetensors.torch import load_file

    try:
        state = json.loads((folder / "state.json").read_text())
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        optim = torch.load(folder / "optim.pt", weights_only=True)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise UserInputError(f"{folder}: cannot resume from this checkpoint: {err}") from None
    optimizer.load_state_dict(optim["optimizer"])
    scheduler.load_state_dict(optim["scheduler"])
    return int(state["epoch"]), list(state["history"])


def retrain(run_dir: str | Path, dataset: str = "digits", config: RetrainConfig | None = None,
            out_dir: str | Path | None = None, data_dir: str | None = None, download: bool = False,
            subset: float | None = None, input_size: int | None = None, resume: bool = False,
            device: str | None = None, progress: bool = True) -> dict:
    """Train the best architecture of ``run_dir`` from scratch on ``dataset``; returns the metrics dict."""
    from arch_gpt.search.datasets import load_dataset
    from arch_gpt.search.export import load_run_config, rebuild

    run_cfg = load_run_config(run_dir)
    config = config or SCHEDULES.get(dataset, SCHEDULES["digits"])
    if config.epochs <= 0 or config.step_size <= 0 or config.lr <= 0 or config.batch_size <= 0:
        raise UserInputError(f"retrain config: epochs, step_size, lr and batch_size must be positive: {config}")
    if input_size is None and run_cfg.input_size is not None:
        input_size = run_cfg.input_size[1]
    data = load_dataset(dataset, data_dir=data_dir, download=download, subset=subset, input_size=input_size,
                        seed=config.seed)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "retrain"
    torch.manual_seed(config.seed)
    _, _, model = rebuild(run_cfg, num_classes=data.num_classes)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(dev)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, config.gamma)
    start, history = 0, []
    if resume and (out / "checkpoint" / "state.json").exists():
        start, history = _load_checkpoint(out / "checkpoint", model, optimizer, scheduler)
    val_loader = DataLoader(data.val, batch_size=config.batch_size, num_workers=config.workers)
    loss_fn = nn.CrossEntropyLoss()
    began = time.perf_counter()
    for epoch in tqdm(range(start, config.epochs), desc="retrain", disable=not progress, initial=start,
                      total=config.epochs):
        generator = torch.Generator().manual_seed(config.seed * 100003 + epoch)  # resumable shuffling
        loader = DataLoader(data.train, batch_size=config.batch_size, shuffle=True, generator=generator,
                            num_workers=config.workers)
        model.train()
        total_loss, seen = 0.0, 0
        for x, y in loader:
            x, y = x.to(dev), y.to(dev)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach()) * len(y)
            seen += len(y)
        scheduler.step()
        history.append({"epoch": epoch + 1, "train_loss": total_loss / max(seen, 1),
                        "val_acc": _accuracy(model, val_loader, dev), "lr": optimizer.param_groups[0]["lr"]})
        _save_checkpoint(out / "checkpoint", model, optimizer, scheduler, epoch + 1, history)
    test_loader = DataLoader(data.test, batch_size=config.batch_size, num_workers=config.workers)
    metrics = {"run_dir": str(run_dir), "space": run_cfg.space, "key": run_cfg.key, "dataset": dataset,
               "num_classes": data.num_classes,
               "config": asdict(config), "params": sum(p.numel() for p in model.parameters()),
               "val_acc": history[-1]["val_acc"] if history else None,
               "test_acc": _accuracy(model, test_loader, dev), "history": history,
               "train_s": round(time.perf_counter() - began, 3)}
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              str(out / "model.safetensors.tmp"))
    (out / "model.safetensors.tmp").replace(out / "model.safetensors")
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics


def _run(args: argparse.Namespace) -> int:
    base = SCHEDULES.get(args.dataset, SCHEDULES["digits"])
    overrides = {k: v for k, v in {"epochs": args.epochs, "step_size": args.step_size, "lr": args.lr,
                                   "batch_size": args.batch_size, "seed": args.seed, "workers": args.workers}.items()
                 if v is not None}
    metrics = retrain(args.run_dir, args.dataset, replace(base, **overrides), args.out, args.data_dir,
                      args.download, args.subset, args.input_size, args.resume, args.device)
    print(f"retrained {metrics['key']}: val_acc {metrics['val_acc']:.4f} test_acc {metrics['test_acc']:.4f} "
          f"({metrics['params']} params) -> {args.out or Path(args.run_dir) / 'retrain'}")
    return 0


def register(subparsers) -> None:
    """Add ``arch-gpt retrain``."""
    p = subparsers.add_parser("retrain", help="final training of a search run's best architecture",
                              description=__doc__.splitlines()[0])
    p.add_argument("run_dir", metavar="RUN_DIR", help="output folder of `arch-gpt search`")
    p.add_argument("--dataset", default="digits", help="digits (default), cifar10, cifar100 or imagenet")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--download", action="store_true", help="download CIFAR if missing")
    p.add_argument("--subset", type=float, default=None, help="fraction of ImageNet per class")
    p.add_argument("--input-size", type=int, default=None, help="image side (default: the search's)")
    p.add_argument("--epochs", type=int, default=None, help="default: 350 CIFAR, 120 ImageNet, 30 digits")
    p.add_argument("--step-size", type=int, default=None, help="lr ÷10 every N epochs (100 / 30 / 10)")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers")
    p.add_argument("--device", default=None, help="cuda / cpu (default: CUDA when present)")
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/retrain)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    p.set_defaults(func=_run)
