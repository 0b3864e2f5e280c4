"""Device-resident training data: a small split kept on the device as tensors for the whole run, shuffled with
a ``torch.Generator`` and augmented (random crop with padding, horizontal flip) on the device, instead of a
``DataLoader`` that decodes and copies every batch every epoch. Used on CUDA for small datasets (digits,
CIFAR-10/100); the same code runs on the CPU, which is how it is tested where no GPU is at hand."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset


@dataclass(frozen=True)
class DeviceAugment:
    """The training augmentation, done on the device: pad by ``pad`` with ``fill`` (per channel, in the
    normalized space), crop back at a random offset, flip horizontally with probability 1/2."""
    pad: int = 4
    fill: tuple[float, ...] = (0.0, 0.0, 0.0)
    flip: bool = True


def materialize(dataset: Dataset, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """All items of ``dataset`` as two tensors on ``device`` (images N x C x H x W, labels N)."""
    xs, ys = [], []
    for x, y in DataLoader(dataset, batch_size=1024, shuffle=False, num_workers=0):
        xs.append(x)
        ys.append(torch.as_tensor(y))
    return torch.cat(xs).to(device), torch.cat(ys).to(device)


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool, seed: int,
            augment: DeviceAugment | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of the resident split; the order and the augmentation draw from one generator seeded ``seed``."""
    gen = torch.Generator(device=x.device).manual_seed(seed)
    n = len(x)
    order = torch.randperm(n, generator=gen, device=x.device) if shuffle else torch.arange(n, device=x.device)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        xb, yb = x[idx], y[idx]
        if augment is not None:
            xb = _crop_flip(xb, augment, gen)
        yield xb, yb


def _crop_flip(x: torch.Tensor, aug: DeviceAugment, gen: torch.Generator) -> torch.Tensor:
    """Random crops after padding (one offset per image) and random horizontal flips, all on x's device."""
    n, c, h, w = x.shape
    p = aug.pad
    if p:
        fill = torch.tensor(aug.fill[:c], dtype=x.dtype, device=x.device).view(1, c, 1, 1)
        padded = fill.expand(n, c, h + 2 * p, w + 2 * p).clone()
        padded[:, :, p:p + h, p:p + w] = x
        dy = torch.randint(0, 2 * p + 1, (n,), generator=gen, device=x.device)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=gen, device=x.device)
        rows = (dy.view(n, 1) + torch.arange(h, device=x.device).view(1, h))  # n x h
        cols = (dx.view(n, 1) + torch.arange(w, device=x.device).view(1, w))  # n x w
        x = padded[torch.arange(n, device=x.device).view(n, 1, 1, 1), torch.arange(c, device=x.device).view(1, c, 1, 1),
                   rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]
    if aug.flip:
        flip = torch.rand(n, generator=gen, device=x.device) < 0.5
        x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    return x
