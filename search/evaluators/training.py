"""Fitness by real training (GPT-NAS §3.5, §4.3): SGD with a linear warm-up to lr 0.01, a few epochs.

Fitness is the validation accuracy; the test accuracy is reported, never selected on. The acceleration
strategies of the paper, each switchable in :class:`TrainingConfig`:

(i) ``train_predicted_only``: a child inherits its first parent's weights wherever name and shape match;
    then only the GPT-predicted units (``module.units[i]``) and the weights that could not be inherited
    are trained, the rest is frozen;
(ii) ``bn_only``: a child without predicted units that inherited weights trains only its BatchNorm layers
    (plus the weights that could not be inherited);
(iii) few epochs: ``epochs`` (6 by default, against the 350 of the final retrain).

Without inherited weights (the initial population, or ``inherit_weights=False``) a network is trained
fully. The device is CUDA when present. A candidate that fails (out of memory, a NaN/inf loss, a shape
error while building or running it) gets fitness 0 and its reason; the search goes on. Training is
seeded per candidate key, so a resumed search retrains identically; when the runner binds an output
folder, trained weights are kept as safetensors under ``weights/`` so that children of a resumed run
inherit the same parents' weights; after each generation only the population's and the best's are kept.
"""
from __future__ import annotations

import hashlib
import math
import os
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Sequence

import torch
from torch import nn
from safetensors import safe_open
from safetensors.torch import load_file, save
from torch.utils.data import DataLoader, TensorDataset

from arch_gpt.devices import resolve_device
from arch_gpt.errors import UserInputError
from arch_gpt.io import atomic_write_bytes
from arch_gpt.search.datasets import ImageData
from arch_gpt.search.evaluators.resident import batches, materialize
from arch_gpt.search.protocols import (
    Candidate, FitnessRecord, HasUnitModules, KeepsRunFolder, KeepsWeights, RunsTrials, SearchSpace,
)

@dataclass
class TrainingConfig:
    """How each candidate is trained; see the module docstring for the acceleration switches."""
    epochs: int = 6
    lr: float = 0.01
    warmup_epochs: float = 1.0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128  # per-dataset search defaults: arch_gpt.search.spec.DATASET_DEFAULTS
    max_steps_per_epoch: int | None = None  # cap for quick runs; None trains on the whole split
    train_predicted_only: bool = True  # (i)
    bn_only: bool = True  # (ii)
    inherit_weights: bool = True
    device: str | None = None  # None: cuda when available, else cpu
    num_workers: int | None = None  # None: 0 for in-memory tensors, else min(4, cpus)
    keep_in_memory: int = 64  # trained state dicts kept in RAM for inheritance
    resident_data: bool | None = None  # None: on CUDA, keep small splits on the device (evaluators/resident.py)
    bf16: bool = False  # autocast to bfloat16 for training and scoring
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 0:
            raise UserInputError(f"epochs: must be >= 0, got {self.epochs}")
        if not (self.lr > 0 and math.isfinite(self.lr)):  # NaN and inf too
            raise UserInputError(f"lr: must be > 0, got {self.lr}")
        if self.batch_size < 1:
            raise UserInputError(f"batch_size: must be at least 1, got {self.batch_size}")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise UserInputError(f"max_steps_per_epoch: must be at least 1, got {self.max_steps_per_epoch}")


def _readable(path: Path | None) -> bool:
    """Whether ``path`` is a safetensors file whose header reads (a cheap check, no tensor is loaded)."""
    if path is None or not path.is_file():
        return False
    try:
        with safe_open(str(path), framework="pt") as fh:
            fh.keys()
    except Exception:  # safetensors raises its own error types for every kind of damage
        return False
    return True


class CandidateFailure(RuntimeError):
    """A candidate that cannot be trained (the reason becomes its record's ``error``)."""


class TrainingEvaluator(KeepsRunFolder, KeepsWeights, RunsTrials):
    """Trains each candidate's ``space.build_module`` on ``data`` and scores it by validation accuracy."""

    def __init__(self, space: SearchSpace, data: ImageData, config: TrainingConfig | None = None):
        self.space, self.data, self.config = space, data, config or TrainingConfig()
        self.device = resolve_device(self.config.device)
        self.batch_size = self.config.batch_size
        self.weights_dir: Path | None = None
        self._weights: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()
        self._tensors: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __getstate__(self) -> dict:
        """Pickled for a Ray worker: everything but the kept weights (a trial gets its parent's in ``prepare``)
        and the device-resident tensors (each worker puts the data on its own device)."""
        return {**self.__dict__, "_weights": OrderedDict(), "_tensors": {}}

    @property
    def resident(self) -> bool:
        """Whether training data lives on the device (default: on CUDA only)."""
        wanted = self.config.resident_data
        return self.device.type == "cuda" if wanted is None else wanted

    def _resident(self, dataset) -> tuple[torch.Tensor, torch.Tensor]:
        """The split as device tensors, made once per evaluator (the unaugmented images for training)."""
        key = id(dataset)
        if key not in self._tensors:
            source = self.data.train_plain if dataset is self.data.train and self.data.train_plain else dataset
            self._tensors[key] = materialize(source, self.device)
        return self._tensors[key]

    # --- hooks the runner calls -----------------------------------------------------------------
    def set_output_dir(self, out: Path) -> None:
        """Keep trained weights under ``out/weights`` (safetensors), for inheritance after a resume."""
        self.weights_dir = Path(out) / "weights"

    def export_weights(self, key: str, path: Path) -> bool:
        """Write the trained weights of ``key`` to ``path`` (safetensors); False if they were not kept."""
        state = self._load_weights(key)
        if state is None:
            return False
        atomic_write_bytes(path, save(state))  # bytes, so the file gets the umask's mode (save_file makes 0600)
        return True

    def retain(self, keys: set[str]) -> None:
        """Forget the kept weights of every key but ``keys`` (the population and the best), on disk too."""
        for key in [k for k in self._weights if k not in keys]:
            del self._weights[key]
        if self.weights_dir is not None and self.weights_dir.is_dir():
            keep = {self._path(k).name for k in keys}
            for path in self.weights_dir.glob("*.safetensors"):
                if path.name not in keep:
                    path.unlink()

    def missing_weights(self, keys: set[str]) -> list[str]:
        """Keys whose weights inheritance needs but that are neither in memory nor on disk (sorted)."""
        if not self.config.inherit_weights:
            return []
        return sorted(k for k in keys if k not in self._weights and not _readable(self._path(k)))

    # --- evaluation: prepare (driver) -> run_trial (anywhere, pure) -> finish (driver) -------------
    def evaluate(self, candidates: Sequence[Candidate]) -> list[FitnessRecord]:
        """Train and score each candidate; failures get fitness 0 and their reason."""
        return [self.finish(c, *self.run_trial(c, self.prepare(c))) for c in candidates]

    def prepare(self, cand: Candidate) -> dict[str, torch.Tensor] | None:
        """What a trial needs from this process: the first parent's trained weights (inheritance), if kept."""
        if not (self.config.inherit_weights and cand.parents):
            return None
        return self._load_weights(cand.parents[0])

    def run_trial(self, cand: Candidate, parent: dict[str, torch.Tensor] | None
                  ) -> tuple[FitnessRecord, dict[str, torch.Tensor] | None]:
        """Train one candidate from ``parent``'s weights; returns its record and trained weights (None when it
        failed). Touches no state of the evaluator, so a Ray worker can run it (see search/execution.py)."""
        start = perf_counter()
        try:
            return self._train(cand, parent, start)
        except torch.OutOfMemoryError as err:
            reason = f"out of memory: {str(err).splitlines()[0]}"
        except CandidateFailure as err:
            reason = str(err)
        except (RuntimeError, ValueError, TypeError, IndexError) as err:  # shape errors and the like
            reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return FitnessRecord(cand.key, 0.0, cost_s=perf_counter() - start, error=reason[:500]), None

    def finish(self, cand: Candidate, record: FitnessRecord, weights: dict[str, torch.Tensor] | None
               ) -> FitnessRecord:
        """Keep a finished trial's weights (memory and the run folder) for its children; returns the record."""
        if weights is not None:
            self._store(cand.key, weights)
        return record

    def _train(self, cand: Candidate, parent: dict | None, start: float
               ) -> tuple[FitnessRecord, dict[str, torch.Tensor]]:
        seed = (zlib.crc32(cand.key.encode()) ^ self.config.seed) & 0x7FFFFFFF
        # The candidate's own RNG stream: seeded from its key, forked so the caller's global state is untouched.
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)
            return self._train_seeded(cand, parent, start, seed)

    def _train_seeded(self, cand: Candidate, parent: dict | None, start: float, seed: int
                      ) -> tuple[FitnessRecord, dict[str, torch.Tensor]]:
        cfg = self.config
        module = self.space.build_module(cand.genome, self.data.num_classes).to(self.device)
        inherited = _inherit(module, parent) if parent is not None else set()
        mode, trainable = self._trainable(module, cand, inherited)
        params = [p for n, p in module.named_parameters() if n in trainable]
        for name, p in module.named_parameters():
            p.requires_grad_(name in trainable)
        loader = self._loader(self.data.train, shuffle=True, seed=seed)
        steps = len(loader) if cfg.max_steps_per_epoch is None else min(len(loader), cfg.max_steps_per_epoch)
        if params and cfg.epochs > 0:
            self._fit(module, params, loader, steps)
        val_acc = self._accuracy(module, self.data.val)
        test_acc = self._accuracy(module, self.data.test)
        weights = {k: v.detach().cpu().clone().contiguous() for k, v in module.state_dict().items()}
        record = FitnessRecord(cand.key, val_acc, test_acc=test_acc,
                               params=sum(p.numel() for p in module.parameters()), cost_s=perf_counter() - start,
                               extra={"mode": mode, "inherited_tensors": len(inherited),
                                      "trained_params": sum(p.numel() for p in params), "epochs": cfg.epochs})
        return record, weights

    def _trainable(self, module: nn.Module, cand: Candidate, inherited: set[str]) -> tuple[str, set[str]]:
        """Which parameter names to train, and the mode name ('full', 'predicted' or 'bn')."""
        names = {n for n, _ in module.named_parameters()}
        if not inherited:
            return "full", names
        fresh = names - inherited
        if cand.predicted_units and self.config.train_predicted_only and isinstance(module, HasUnitModules):
            units = module.units
            picked = set()
            for i in cand.predicted_units:
                if 0 <= i < len(units):
                    picked |= {f"units.{i}.{n}" for n, _ in units[i].named_parameters()}
            return "predicted", fresh | (picked & names)
        if not cand.predicted_units and self.config.bn_only:
            bn = {f"{m}.{n}" if m else n for m, mod in module.named_modules()
                  if isinstance(mod, nn.modules.batchnorm._BatchNorm) for n, _ in mod.named_parameters(recurse=False)}
            return "bn", fresh | bn
        return "full", names

    def _fit(self, module: nn.Module, params: list, loader, steps: int) -> None:
        cfg = self.config
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        warmup = max(1, round(cfg.warmup_epochs * steps))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warmup))
        loss_fn = nn.CrossEntropyLoss()
        module.train()
        for epoch in range(cfg.epochs):
            for step, (x, y) in enumerate(loader):
                if step >= steps:
                    break
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
                with self._autocast():
                    loss = loss_fn(module(x), y)
                if not torch.isfinite(loss):
                    raise CandidateFailure(f"non-finite loss ({loss.item()}) at epoch {epoch + 1} step {step + 1}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()

    @torch.no_grad()
    def _accuracy(self, module: nn.Module, dataset) -> float:
        module.eval()
        correct = total = 0
        for x, y in self._loader(dataset, shuffle=False, seed=0):
            with self._autocast():
                pred = module(x.to(self.device)).argmax(dim=1).cpu()
            y = y.cpu()
            correct += int((pred == y).sum())
            total += len(y)
        return correct / max(total, 1)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16)

    def _loader(self, dataset, shuffle: bool, seed: int):
        """Batches of ``dataset``: device-resident tensors when enabled, else a seeded DataLoader (re-iterable)."""
        if self.resident:
            augment = self.data.augment if dataset is self.data.train else None
            x, y = self._resident(dataset)
            return _Reiterable(lambda: batches(x, y, self.batch_size, shuffle, seed, augment),
                               -(-len(x) // self.batch_size))
        workers = self.config.num_workers
        if workers is None:
            workers = 0 if isinstance(dataset, TensorDataset) else min(4, os.cpu_count() or 1)
        gen = torch.Generator().manual_seed(seed)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, generator=gen, num_workers=workers,
                          pin_memory=self.device.type == "cuda")

    # --- weights kept for inheritance ---------------------------------------------------------------
    def _path(self, key: str) -> Path | None:
        if self.weights_dir is None:
            return None
        return self.weights_dir / f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.safetensors"

    def _store(self, key: str, state: dict[str, torch.Tensor]) -> None:
        self._weights[key] = state
        if len(self._weights) > self.config.keep_in_memory:
            self._weights.popitem(last=False)
        path = self._path(key)
        if path is not None:
            atomic_write_bytes(path, save(state))

    def _load_weights(self, key: str) -> dict[str, torch.Tensor] | None:
        if key in self._weights:
            return self._weights[key]
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        return load_file(str(path))


def _inherit(module: nn.Module, parent: dict[str, torch.Tensor]) -> set[str]:
    """Copy the parent's tensors whose name and shape match; returns the inherited parameter names."""
    own = module.state_dict()
    matched = {k: v for k, v in parent.items() if k in own and own[k].shape == v.shape}
    if not matched:
        return set()
    module.load_state_dict(matched, strict=False)
    return {n for n, _ in module.named_parameters() if n in matched}


class _Reiterable:
    """An iterable that restarts its generator each epoch (what a DataLoader does)."""

    def __init__(self, make, length: int):
        self.make, self.length = make, length

    def __iter__(self):
        return self.make()

    def __len__(self) -> int:
        return self.length
