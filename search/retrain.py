"""The final training of a search's best architecture (paper §4.3), behind ``arch-gpt retrain``.

Schedules (SGD, momentum 0.9, step decay ÷10): CIFAR-10/100 350 epochs with decay every 100; ImageNet
120 epochs with decay every 30; digits 30 epochs with decay every 10 (the offline default). Every epoch
writes a checkpoint (weights as safetensors, optimizer/scheduler state read back with
``torch.load(weights_only=True)``), so ``--resume`` continues a killed run with the same result. The
output folder (default ``RUN_DIR/retrain``) gets ``model.safetensors`` and ``metrics.json``.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from arch_gpt.errors import UserInputError
from arch_gpt.io import atomic_path, write_json
from arch_gpt.search.datasets import load_dataset
from arch_gpt.search.export import load_run_config, rebuild


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
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    with atomic_path(folder / "optim.pt") as tmp:
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp)
    write_json(folder / "state.json", {"epoch": epoch, "history": history}, indent=None)


def _load_checkpoint(folder: Path, model: nn.Module, optimizer, scheduler) -> tuple[int, list]:
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
    """Train the best architecture of ``run_dir`` from scratch on ``dataset``; returns the metrics dict.

    The run draws from its own RNG stream (seeded by ``config.seed``, forked from the caller's global state)."""
    with torch.random.fork_rng(devices=[]):
        return _retrain(run_dir, dataset, config, out_dir, data_dir, download, subset, input_size, resume,
                        device, progress)


def _retrain(run_dir, dataset, config, out_dir, data_dir, download, subset, input_size, resume, device,
             progress) -> dict:
    run_cfg = load_run_config(run_dir)
    config = config or SCHEDULES.get(dataset, SCHEDULES["digits"])
    if config.epochs <= 0 or config.step_size <= 0 or config.lr <= 0 or config.batch_size <= 0:
        raise UserInputError(f"retrain config: epochs, step_size, lr and batch_size must be positive: {config}")
    if input_size is None and run_cfg.input_size is not None:
        input_size = run_cfg.input_size[0]
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
    with atomic_path(out / "model.safetensors") as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    write_json(out / "metrics.json", metrics)
    return metrics
