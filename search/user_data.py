"""Your own images: an image folder, a Hugging Face dataset, or Python datasets/tensors, as an ImageData.

* ``imagefolder`` (``--dataset imagefolder --data-dir DIR``): one subfolder per class; with ``train/`` and
  ``val/`` the val images are the test split and 10% of train (stratified, seeded) is the validation split, else
  every image is split 70/15/15 (stratified, seeded). Any image size, resized to ``input_size`` (default 32).
* ``hf:NAME[:CONFIG]`` through ``datasets.load_dataset`` (the local cache, or a folder saved with
  ``save_to_disk``); the image column is the one with an ``Image`` feature and the label column the one with a
  ``ClassLabel`` (or name them). ``validation``/``test`` splits are used when present, else split from train.
* :func:`from_datasets` / :func:`from_tensors` for any ``torch.utils.data.Dataset`` pair or tensors.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import datasets as hf
import numpy as np
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from arch_gpt.search.datasets import VAL_FRACTION, DatasetError, ImageData, stratified_split

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def _transforms(size: int):
    from torchvision import transforms
    return transforms.Compose([transforms.Lambda(lambda im: im.convert("RGB")), transforms.Resize((size, size)),
                               transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])


def image_folder(data_dir: str | os.PathLike | None, size: int, seed: int) -> ImageData:
    """Class subfolders under ``data_dir`` (or its ``train/`` and ``val/``); see the module docstring."""
    from torchvision import datasets as tv

    if data_dir is None:
        raise DatasetError("data_dir: imagefolder needs a folder of class subfolders (--data-dir DIR)")
    root = Path(data_dir)
    if not root.is_dir():
        raise DatasetError(f"data_dir: {root} is not a folder")
    split = (root / "train").is_dir() and (root / "val").is_dir()
    try:
        train = tv.ImageFolder(root / "train" if split else root, transform=_transforms(size),
                               is_valid_file=lambda p: p.lower().endswith(IMAGE_SUFFIXES))
        test = tv.ImageFolder(root / "val", transform=_transforms(size)) if split else None
    except (FileNotFoundError, RuntimeError) as err:
        raise DatasetError(f"data_dir: no class subfolders with images under {root} ({err})") from None
    if len(train.classes) < 2:
        raise DatasetError(f"data_dir: {root} has {len(train.classes)} class folder(s); a classifier needs two")
    if test is not None and test.classes != train.classes:
        raise DatasetError(f"data_dir: {root}/val has classes {test.classes} but {root}/train has {train.classes}")
    labels = np.asarray(train.targets)
    if test is None:
        tr, va, te = stratified_split(labels, [0.7, 0.15, 0.15], seed)
        return ImageData("imagefolder", Subset(train, tr.tolist()), Subset(train, va.tolist()),
                         Subset(train, te.tolist()), len(train.classes), (size, size, 3))
    tr, va = stratified_split(labels, [1 - VAL_FRACTION, VAL_FRACTION], seed)
    return ImageData("imagefolder", Subset(train, tr.tolist()), Subset(train, va.tolist()), test,
                     len(train.classes), (size, size, 3))


class _HFImages(Dataset):
    """A ``datasets`` split as (C x H x W tensor, label) items."""

    def __init__(self, split: hf.Dataset, image: str, label: str, size: int):
        self.split, self.image, self.label, self.tf = split, image, label, _transforms(size)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int):
        row = self.split[int(i)]
        return self.tf(row[self.image]), int(row[self.label])


def hf_dataset(spec: str, size: int, seed: int, image_column: str | None = None,
               label_column: str | None = None) -> ImageData:
    """``hf:NAME[:CONFIG]`` (a Hub name in the local cache, or a ``save_to_disk`` folder); see the module docstring."""
    name, _, config = spec.removeprefix("hf:").partition(":")
    if not name:
        raise DatasetError(f"dataset: {spec!r} names no dataset; use hf:NAME or hf:NAME:CONFIG")
    try:
        if Path(name).is_dir():
            data = hf.load_from_disk(name)
        else:
            data = hf.load_dataset(name, config or None)
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as err:
        raise DatasetError(f"dataset: cannot load {spec!r} ({str(err).splitlines()[0]}); offline, only the local "
                           f"cache or a folder saved with save_to_disk can be read") from None
    if isinstance(data, hf.Dataset):
        data = hf.DatasetDict({"train": data})
    if "train" not in data:
        raise DatasetError(f"dataset: {spec!r} has no train split (splits: {', '.join(data)})")
    features = data["train"].features
    image = image_column or next((c for c, f in features.items() if isinstance(f, hf.Image)), None)
    label = label_column or next((c for c, f in features.items() if isinstance(f, hf.ClassLabel)), None)
    for flag, column in (("image_column", image), ("label_column", label)):
        if column is None or column not in features:
            raise DatasetError(f"{flag}: {spec!r} has no {'image' if 'image' in flag else 'label'} column "
                               f"{'named ' + repr(column) if column else 'detected'}; columns: {', '.join(features)}")
    labels = np.asarray(data["train"][label])
    classes = features[label].num_classes if isinstance(features[label], hf.ClassLabel) else int(labels.max()) + 1

    def wrap(split: hf.Dataset, idx: Sequence[int] | None = None) -> Dataset:
        ds = _HFImages(split, image, label, size)
        return ds if idx is None else Subset(ds, list(idx))
    train = data["train"]
    val_name = next((s for s in ("validation", "valid", "val") if s in data), None)
    if val_name and "test" in data:
        return ImageData(f"hf:{name}", wrap(train), wrap(data[val_name]), wrap(data["test"]), classes, (size, size, 3))
    if "test" in data:
        tr, va = stratified_split(labels, [1 - VAL_FRACTION, VAL_FRACTION], seed)
        return ImageData(f"hf:{name}", wrap(train, tr), wrap(train, va), wrap(data["test"]), classes,
                         (size, size, 3))
    tr, va, te = stratified_split(labels, [0.7, 0.15, 0.15], seed)
    return ImageData(f"hf:{name}", wrap(train, tr), wrap(train, va), wrap(train, te), classes, (size, size, 3))


def from_datasets(train: Dataset, val: Dataset, test: Dataset | None = None, num_classes: int | None = None,
                  name: str = "custom") -> ImageData:
    """Any pair (or triple) of torch datasets of ``(C x H x W tensor, int label)`` items; the test split defaults to
    the validation split (then its accuracy is not an unbiased estimate: say so when you report it)."""
    if len(train) == 0 or len(val) == 0:
        raise DatasetError("train, val: both datasets need items")
    x, y = train[0]
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise DatasetError(f"train: items must be (C x H x W tensor, label), got {type(x).__name__} of shape "
                           f"{tuple(getattr(x, 'shape', ()))}")
    if num_classes is None:
        num_classes = 1 + max(int(train[i][1]) for i in range(len(train)))
    c, h, w = x.shape
    return ImageData(name, train, val, test if test is not None else val, int(num_classes), (h, w, c))


def from_tensors(images: torch.Tensor, labels: torch.Tensor, seed: int = 0, num_classes: int | None = None,
                 name: str = "tensors") -> ImageData:
    """Images (N x C x H x W) and integer labels (N), split 70/15/15 by class with a seeded shuffle."""
    if images.dim() != 4 or labels.dim() != 1 or len(images) != len(labels):
        raise DatasetError(f"images, labels: expected N x C x H x W and N, got {tuple(images.shape)} and "
                           f"{tuple(labels.shape)}")
    tr, va, te = stratified_split(labels.numpy(), [0.7, 0.15, 0.15], seed)
    part = [TensorDataset(images[torch.as_tensor(i)], labels[torch.as_tensor(i)]) for i in (tr, va, te)]
    return from_datasets(*part, num_classes=num_classes or int(labels.max()) + 1, name=name)
