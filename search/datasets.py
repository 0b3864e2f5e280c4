"""Image datasets for evaluating candidates by real training (paper §4.3) through torchvision.

``digits`` is the embedded offline default: scikit-learn's bundled 8x8 digit images, resized
(bilinear) to 16x16 (or any ``input_size``) and replicated to 3 channels so that the stem sees an
RGB-like input as in the GPT's corpus; split train/val/test 60/20/20, stratified, seeded.
``cifar10``/``cifar100`` come from ``torchvision.datasets`` under ``data_dir`` (downloaded only when
asked); 10% of the official training set (stratified, seeded) is held out for validation and the
official test set is the test split. ``imagenet`` is an ``ImageFolder`` tree ``data_dir/train`` +
``data_dir/val``; ``subset`` keeps that fraction of every class (the paper uses 10%), seeded.
Fitness uses the val split only; the test split is reported, never selected on.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from arch_gpt.errors import UserInputError
from arch_gpt.search.evaluators.resident import DeviceAugment

BUILTIN = ("digits", "cifar10", "cifar100", "imagenet")
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 8, 1024  # image side in pixels; larger images are refused before any allocation
DEFAULT_INPUT_SIZE = {"digits": 16, "cifar10": 32, "cifar100": 32, "imagenet": 224}
VAL_FRACTION = 0.1  # of the training set, for CIFAR and ImageNet
_CIFAR_MEAN, _CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class DatasetError(UserInputError):
    """A dataset that cannot be loaded as asked (unknown name, missing or corrupt files, bad subset)."""


@dataclass(frozen=True)
class ImageData:
    """Train/val/test splits of an image classification dataset; items are ``(CHW float tensor, int)``."""
    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    image_size: tuple[int, int, int]  # (H, W, C), the library's size convention; tensors are C x H x W
    train_plain: Dataset | None = None  # the training split without augmentation (None: ``train`` has none)
    augment: DeviceAugment | None = None  # ``train``'s augmentation, for device-resident training

    def __repr__(self) -> str:
        return (f"ImageData({self.name}, train={len(self.train)}, val={len(self.val)}, test={len(self.test)}, "
                f"classes={self.num_classes}, image={'x'.join(map(str, self.image_size))})")


def load_builtin(name: str, data_dir: str | os.PathLike | None = None, download: bool = False,
                 subset: float | None = None, input_size: int | None = None, seed: int = 0) -> ImageData:
    """Load ``name`` (one of :data:`BUILTIN`) as train/val/test splits; see the module docstring. Use
    :func:`arch_gpt.search.data.load_image_data`, which also reads image folders and Hugging Face datasets."""
    if name not in BUILTIN:
        raise DatasetError(f"dataset: unknown dataset {name!r}; choose one of: {', '.join(BUILTIN)}")
    if subset is not None and not 0.0 < subset <= 1.0:
        raise DatasetError(f"subset: must be a fraction in (0, 1], got {subset}")
    if input_size is not None and not MIN_INPUT_SIZE <= input_size <= MAX_INPUT_SIZE:
        raise DatasetError(f"input_size: must be {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE} pixels, got {input_size}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DatasetError(f"seed: must be a non-negative integer, got {seed!r}")
    size = input_size or DEFAULT_INPUT_SIZE[name]
    if name == "digits":
        return _digits(size, subset, seed)
    if name == "imagenet":
        return _imagenet(data_dir, size, subset, seed)
    return _cifar(name, data_dir, download, size, subset, seed)


def stratified_split(labels: Sequence[int], fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Split indices into parts of the given fractions, class by class, with a seeded shuffle.

    The last part takes the remainder, so every index lands in exactly one part.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        start = 0
        for p, frac in enumerate(fractions):
            count = int(round(frac * len(idx)))
            if frac > 0 and len(idx) >= len(fractions):
                count = max(count, 1)  # every part sees every class when the class is big enough
            stop = len(idx) if p == len(fractions) - 1 else min(start + count, len(idx))
            parts[p].append(idx[start:stop])
            start = stop
    return [np.sort(np.concatenate(p)) for p in parts]


def _keep(labels: Sequence[int], subset: float | None, seed: int) -> np.ndarray:
    """Indices of a stratified ``subset`` fraction (all indices when subset is None or 1)."""
    if subset is None or subset >= 1.0:
        return np.arange(len(labels))
    return stratified_split(labels, [subset, 1.0 - subset], seed)[0]


# ----------------------------------------------------------------------------- digits

def _digits(size: int, subset: float | None, seed: int) -> ImageData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # N,1,8,8 in [0,1]
    images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    images = ((images - 0.5) / 0.5).expand(-1, 3, -1, -1).contiguous()
    labels = torch.tensor(bunch.target, dtype=torch.long)
    keep = _keep(bunch.target, subset, seed)
    train, val, test = stratified_split(bunch.target[keep], [0.6, 0.2, 0.2], seed)
    train, val, test = keep[train], keep[val], keep[test]

    def part(idx: np.ndarray) -> TensorDataset:
        idx = torch.as_tensor(idx)
        return TensorDataset(images[idx], labels[idx])

    return ImageData("digits", part(train), part(val), part(test), 10, (size, size, 3))


# ----------------------------------------------------------------------------- CIFAR

def _cifar(name: str, data_dir, download: bool, size: int, subset: float | None, seed: int) -> ImageData:
    from torchvision import datasets, transforms

    if data_dir is None:
        raise DatasetError(f"data_dir: {name} needs a data folder; pass data_dir (--data-dir DIR) "
                           f"(and --download to fetch it there)")
    root = Path(data_dir)
    if not root.is_dir() and not download:
        raise DatasetError(f"data_dir: folder {root} does not exist; pass download=True (--download) "
                           f"to fetch {name} there")
    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    resize = [transforms.Resize(size)] if size != 32 else []
    norm = [transforms.ToTensor(), transforms.Normalize(_CIFAR_MEAN, _CIFAR_STD)]
    train_tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()]
                                  + resize + norm)
    eval_tf = transforms.Compose(resize + norm)
    try:  # torchvision checks each batch file's md5 against the official one before unpickling it
        train_aug = cls(root, train=True, transform=train_tf, download=download)
        train_plain = cls(root, train=True, transform=eval_tf, download=False)
        test = cls(root, train=False, transform=eval_tf, download=False)
    except RuntimeError as err:
        raise DatasetError(f"data_dir: {name} not found or corrupted under {root} ({err}); "
                           f"pass download=True (--download) to fetch it, or point --data-dir at the folder holding "
                           f"{cls.base_folder}/") from None
    keep = _keep(train_aug.targets, subset, seed)
    tr, va = stratified_split(np.asarray(train_aug.targets)[keep], [1.0 - VAL_FRACTION, VAL_FRACTION], seed)
    test_keep = _keep(test.targets, subset, seed)
    fill = tuple(-m / s for m, s in zip(_CIFAR_MEAN, _CIFAR_STD))  # black, normalized: what RandomCrop pads with
    return ImageData(name, Subset(train_aug, keep[tr].tolist()), Subset(train_plain, keep[va].tolist()),
                     Subset(test, test_keep.tolist()), len(train_aug.classes), (size, size, 3),
                     train_plain=Subset(train_plain, keep[tr].tolist()),
                     augment=DeviceAugment(4, fill, True) if size == 32 else None)


# ----------------------------------------------------------------------------- ImageNet folders

def _imagenet(data_dir, size: int, subset: float | None, seed: int) -> ImageData:
    from torchvision import datasets, transforms

    if data_dir is None:
        raise DatasetError("data_dir: imagenet needs a folder with train/ and val/ class subfolders")
    root = Path(data_dir)
    for part in ("train", "val"):
        if not (root / part).is_dir():
            raise DatasetError(f"data_dir: {root / part} is missing; imagenet expects "
                               f"{root}/train/<class>/*.JPEG and {root}/val/<class>/*.JPEG")
    norm = [transforms.ToTensor(), transforms.Normalize(_IMAGENET_MEAN, _IMAGENET_STD)]
    train_tf = transforms.Compose([transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip()] + norm)
    eval_tf = transforms.Compose([transforms.Resize(int(round(size * 256 / 224))), transforms.CenterCrop(size)]
                                 + norm)
    try:
        train_aug = datasets.ImageFolder(root / "train", transform=train_tf)
        train_plain = datasets.ImageFolder(root / "train", transform=eval_tf)
        test = datasets.ImageFolder(root / "val", transform=eval_tf)
    except (FileNotFoundError, RuntimeError) as err:
        raise DatasetError(f"data_dir: cannot read image folders under {root}: {err}") from None
    if test.classes != train_aug.classes:
        raise DatasetError(f"data_dir: {root}/val has classes {test.classes[:5]}... that differ from "
                           f"{root}/train's {train_aug.classes[:5]}...")
    keep = _keep(train_aug.targets, subset, seed)
    tr, va = stratified_split(np.asarray(train_aug.targets)[keep], [1.0 - VAL_FRACTION, VAL_FRACTION], seed)
    test_keep = _keep(test.targets, subset, seed)
    return ImageData("imagenet", Subset(train_aug, keep[tr].tolist()), Subset(train_plain, keep[va].tolist()),
                     Subset(test, test_keep.tolist()), len(train_aug.classes), (size, size, 3))
