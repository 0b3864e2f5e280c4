"""The final training of a search's best architecture (paper §4.3), behind ``arch-gpt retrain``.

Schedules (SGD, momentum 0.9, step decay ÷10): CIFAR-10/100 350 epochs with decay every 100; ImageNet
120 epochs with decay every 30; digits 30 epochs with decay every 10 (the offline default). The output folder
(default ``RUN_DIR/retrain``) gets ``model.safetensors`` and ``metrics.json``.

Every argument is checked before anything is read or written (finite positive lr, at least one epoch, a
device this machine has, an image side within the dataset limits). A folder that already holds a retrain
(``metrics.json`` or a checkpoint) is refused unless ``resume`` (continue it: same settings, more epochs
allowed) or ``overwrite`` (start over; the old files are replaced as the new ones are written). A loss or
weights that stop being finite stop the run with an error naming ``lr``; no metrics are written then.

Every epoch writes a checkpoint as one set: a new folder ``checkpoint/epoch-NNNN-<hex>/`` (weights as
safetensors, optimizer/scheduler/RNG state read back with ``torch.load(weights_only=True)``, ``state.json``),
then ``checkpoint/latest.json`` is atomically pointed at it, then older epoch folders are removed. A killed run
therefore always resumes from one whole epoch, and ``resume`` gives exactly the uninterrupted result.
"""
from __future__ import annotations

import math
import numbers
import pickle
import re
import secrets
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import save as safetensors_bytes
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from arch_gpt.devices import resolve_device
from arch_gpt.errors import UserInputError
from arch_gpt.io import atomic_write_bytes, write_json
from arch_gpt.search.data import check_dataset_name, load_image_data
from arch_gpt.search.datasets import MAX_INPUT_SIZE, MIN_INPUT_SIZE
from arch_gpt.search.export import (
    ModelConfig, check_out_dir, load_run_config, load_weights, make_out_dir, read_object, rebuild,
)
from arch_gpt.search.spaces.checks import check_int

CHECKPOINT, LATEST, METRICS = "checkpoint", "latest.json", "metrics.json"
MAX_SEED = 2**32 - 1
_EPOCH_DIR = re.compile(r"epoch-\d{4,}-[0-9a-f]{8}")  # the checkpoint folders retrain writes (and removes)
HISTORY_KEYS = ("epoch", "train_loss", "val_acc", "lr")


def _finite(name: str, value: object, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value < 0 or (positive and value == 0):
        raise UserInputError(f"{name}: must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")


@dataclass(frozen=True)
class RetrainConfig:
    """The final schedule: SGD with step decay (lr × gamma every ``step_size`` epochs); checked on creation."""
    epochs: int
    step_size: int
    lr: float = 0.1
    gamma: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    seed: int = 0
    workers: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "step_size", "batch_size"):
            check_int(name, getattr(self, name), 1)
        check_int("seed", self.seed, 0, MAX_SEED)
        check_int("workers", self.workers, 0)
        for name, positive in (("lr", True), ("gamma", True), ("momentum", False), ("weight_decay", False)):
            _finite(name, getattr(self, name), positive)


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


def _weights(model: nn.Module) -> bytes:
    """The model's state as safetensors bytes (written by us, so the file gets the umask's mode, not 0600)."""
    return safetensors_bytes({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})


def _save_checkpoint(root: Path, model: nn.Module, optimizer, scheduler, state: dict, dev: torch.device) -> None:
    """A new ``epoch-NNNN-<hex>`` folder, then ``latest.json`` pointed at it (the one swap), then older ones removed."""
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"epoch-{state['epoch']:04d}-{secrets.token_hex(4)}"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(_weights(model))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None}, folder / "optim.pt")
    write_json(folder / "state.json", state, indent=None)
    write_json(root / LATEST, {"epoch": state["epoch"], "folder": folder.name})
    for old in root.iterdir():
        if old.name != folder.name and old.is_dir() and _EPOCH_DIR.fullmatch(old.name):
            shutil.rmtree(old)


def _bad(path: Path, key: str, what: str) -> UserInputError:
    return UserInputError(f"{path}: key {key!r}: {what}")


def _read_state(root: Path, settings: dict, epochs: int) -> tuple[Path, int, list, float]:
    """The checkpoint folder latest.json points at, its epoch, history and training time (all checked)."""
    pointer_path = root / LATEST
    pointer = read_object(pointer_path)
    epoch, name = pointer.get("epoch"), pointer.get("folder")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        raise _bad(pointer_path, "epoch", f"missing or not a positive integer, got {epoch!r}")
    if not isinstance(name, str) or not _EPOCH_DIR.fullmatch(name) or not (root / name).is_dir():
        raise _bad(pointer_path, "folder", f"{name!r} is not a checkpoint folder in {root}")
    folder, state_path = root / name, root / name / "state.json"
    state = read_object(state_path)
    if state.get("epoch") != epoch or isinstance(state.get("epoch"), bool):
        raise _bad(state_path, "epoch", f"missing or not {epoch} (as {LATEST} says), got {state.get('epoch')!r}")
    history = state.get("history")
    if not isinstance(history, list) or len(history) != epoch or not all(
            isinstance(h, dict) and set(HISTORY_KEYS) <= set(h) for h in history):
        raise _bad(state_path, "history", f"missing or not {epoch} entries with {', '.join(HISTORY_KEYS)}")
    train_s = state.get("train_s")
    if isinstance(train_s, bool) or not isinstance(train_s, numbers.Real) or not 0 <= train_s < math.inf:
        raise _bad(state_path, "train_s", f"missing or not a duration in seconds, got {train_s!r}")
    saved = state.get("settings")
    if not isinstance(saved, dict):
        raise _bad(state_path, "settings", "missing or not an object")
    for key, value in settings.items():
        if saved.get(key) != value:
            raise UserInputError(f"{key}: the checkpoint in {root} was trained with {saved.get(key)!r}, now "
                                 f"{value!r}; resume with the same settings, or overwrite to start over")
    if epoch > epochs:
        raise UserInputError(f"epochs: the checkpoint in {root} is at epoch {epoch}, beyond {epochs}")
    return folder, epoch, history, float(train_s)


def _load_checkpoint(root: Path, model: nn.Module, optimizer, scheduler, settings: dict, epochs: int,
                     dev: torch.device) -> tuple[int, list, float]:
    """Restore the latest checkpoint; every file is checked and a bad one is named (never unpickled)."""
    folder, epoch, history, train_s = _read_state(root, settings, epochs)
    load_weights(folder / "model.safetensors", model)
    path = folder / "optim.pt"
    try:
        optim = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise UserInputError(f"{path}: file not found") from None
    except pickle.UnpicklingError:  # weights_only refused a pickled object
        raise UserInputError(f"{path}: holds pickled Python objects, which are never loaded; not a retrain "
                             f"checkpoint") from None
    except Exception as err:  # a corrupted or foreign file: zip, EOF or tensor storage errors
        raise UserInputError(f"{path}: corrupted or not a torch checkpoint ({type(err).__name__})") from None
    if not isinstance(optim, dict):
        raise UserInputError(f"{path}: expected a dict of optimizer, scheduler and rng state")
    for key in ("optimizer", "scheduler"):
        if not isinstance(optim.get(key), dict):
            raise _bad(path, key, "missing or not a state dict")
    sched = optim["scheduler"]
    expected = scheduler.state_dict()
    if not set(sched) <= set(expected) or sched.get("last_epoch") != epoch \
            or sched.get("step_size") != expected["step_size"] or sched.get("gamma") != expected["gamma"]:
        raise _bad(path, "scheduler", f"not the step schedule of this run at epoch {epoch}")
    rng = optim.get("rng")
    if not isinstance(rng, torch.Tensor) or rng.dtype != torch.uint8 or rng.shape != torch.get_rng_state().shape:
        raise _bad(path, "rng", "missing or not a CPU generator state")
    try:
        optimizer.load_state_dict(optim["optimizer"])
    except Exception as err:  # the optimizer's own parser of a foreign state: KeyError, ValueError, TypeError...
        raise _bad(path, "optimizer", f"does not fit this model's optimizer ({type(err).__name__})") from None
    for p in (p for group in optimizer.param_groups for p in group["params"]):
        buf = optimizer.state.get(p, {}).get("momentum_buffer")
        if buf is not None and (not isinstance(buf, torch.Tensor) or buf.shape != p.shape):
            raise _bad(path, "optimizer", "a momentum buffer does not match its parameter's shape")
    scheduler.load_state_dict(sched)
    for group in optimizer.param_groups:
        _finite(f"{path}: learning rate", group["lr"], True)
    torch.set_rng_state(rng)
    if dev.type == "cuda" and isinstance(optim.get("cuda_rng"), torch.Tensor):
        torch.cuda.set_rng_state(optim["cuda_rng"], dev)
    return epoch, history, train_s


def _check_previous(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to replace an earlier retrain in ``out`` unless asked to (``resume`` or ``overwrite``)."""
    if resume and overwrite:
        raise UserInputError("resume, overwrite: choose one (continue the retrain in the folder, or start over)")
    pointer, finished = out / CHECKPOINT / LATEST, out / METRICS
    if resume and not pointer.exists():
        raise UserInputError(f"resume: {pointer} does not exist; nothing to resume (run without resume)")
    if not resume and not overwrite and (finished.exists() or pointer.exists()):
        what = f"a finished retrain ({METRICS})" if finished.exists() else "an unfinished retrain (a checkpoint)"
        raise UserInputError(f"out_dir: {out} already holds {what}; resume to continue it or overwrite to "
                             f"start over")


def retrain(run_dir: str | Path, dataset: str = "digits", config: RetrainConfig | None = None,
            out_dir: str | Path | None = None, data_dir: str | None = None, download: bool = False,
            subset: float | None = None, input_size: int | None = None, resume: bool = False,
            device: str | None = None, progress: bool = True, overwrite: bool = False) -> dict:
    """Train the best architecture of ``run_dir`` from scratch on ``dataset``; returns the metrics dict.

    The run draws from its own RNG stream (seeded by ``config.seed``, forked from the caller's global state).
    UserInputError (naming the parameter, or the file and key) for any argument or file that does not fit."""
    check_dataset_name(dataset)
    config = config if config is not None else SCHEDULES[dataset]
    if not isinstance(config, RetrainConfig):
        raise UserInputError(f"config: expected a RetrainConfig, got {type(config).__name__}")
    if input_size is not None:
        check_int("input_size", input_size, MIN_INPUT_SIZE, MAX_INPUT_SIZE)
    dev = resolve_device(device)
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "retrain"
    check_out_dir(out, "out_dir")
    _check_previous(out, resume, overwrite)
    run_cfg = load_run_config(run_dir)
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        return _retrain(run_dir, run_cfg, dataset, config, out, data_dir, download, subset, input_size, resume,
                        dev, progress)


def _diverged(epoch: int, why: str) -> UserInputError:
    return UserInputError(f"lr: training diverged in epoch {epoch} ({why}); use a smaller learning rate "
                          f"(and overwrite to start over)")


def _train_epoch(model: nn.Module, loader: DataLoader, optimizer, loss_fn: nn.Module, dev: torch.device,
                 epoch: int) -> float:
    """One pass over ``loader``; the mean loss. A loss that is not finite stops the run (naming ``lr``)."""
    model.train()
    total_loss, seen = 0.0, 0
    for x, y in loader:
        x, y = x.to(dev), y.to(dev)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise _diverged(epoch, f"the loss is {value}")
        loss.backward()
        optimizer.step()
        total_loss += value * len(y)
        seen += len(y)
    return total_loss / max(seen, 1)


def _retrain(run_dir: Path, run_cfg: ModelConfig, dataset: str, config: RetrainConfig, out: Path,
             data_dir: str | None, download: bool, subset: float | None, input_size: int | None, resume: bool,
             dev: torch.device, progress: bool) -> dict:
    if input_size is None and run_cfg.input_size is not None:
        input_size = run_cfg.input_size[0]
    data = load_image_data(dataset, data_dir=data_dir, download=download, subset=subset, input_size=input_size,
                        seed=config.seed)
    settings = {"key": run_cfg.key, "dataset": dataset, "input_size": input_size, "subset": subset,
                **{k: v for k, v in asdict(config).items() if k not in ("epochs", "workers")}}
    torch.manual_seed(config.seed)
    _, _, model = rebuild(run_cfg, num_classes=data.num_classes)
    model.to(dev)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, config.gamma)
    start, history, train_s = 0, [], 0.0
    if resume:
        start, history, train_s = _load_checkpoint(out / CHECKPOINT, model, optimizer, scheduler, settings,
                                                   config.epochs, dev)
    make_out_dir(out, "out_dir")
    val_loader = DataLoader(data.val, batch_size=config.batch_size, num_workers=config.workers)
    loss_fn = nn.CrossEntropyLoss()
    began = time.perf_counter()
    with tqdm(total=config.epochs, initial=start, desc="retrain", disable=not progress) as bar:  # closed on errors
        for epoch in range(start, config.epochs):
            generator = torch.Generator().manual_seed(config.seed * 100003 + epoch)  # resumable shuffling
            loader = DataLoader(data.train, batch_size=config.batch_size, shuffle=True, generator=generator,
                                num_workers=config.workers)
            mean_loss = _train_epoch(model, loader, optimizer, loss_fn, dev, epoch + 1)
            scheduler.step()
            if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                raise _diverged(epoch + 1, "the weights are no longer finite")
            history.append({"epoch": epoch + 1, "train_loss": mean_loss,
                            "val_acc": _accuracy(model, val_loader, dev), "lr": optimizer.param_groups[0]["lr"]})
            state = {"epoch": epoch + 1, "history": history, "settings": settings,
                     "train_s": train_s + time.perf_counter() - began}
            _save_checkpoint(out / CHECKPOINT, model, optimizer, scheduler, state, dev)
            bar.update(1)
    test_loader = DataLoader(data.test, batch_size=config.batch_size, num_workers=config.workers)
    metrics = {"run_dir": str(run_dir), "space": run_cfg.space, "key": run_cfg.key, "dataset": dataset,
               "num_classes": data.num_classes,
               "config": asdict(config), "params": sum(p.numel() for p in model.parameters()),
               "val_acc": history[-1]["val_acc"], "test_acc": _accuracy(model, test_loader, dev),
               "history": history, "train_s": round(train_s + time.perf_counter() - began, 3)}
    atomic_write_bytes(out / "model.safetensors", _weights(model))
    write_json(out / METRICS, metrics)
    return metrics
