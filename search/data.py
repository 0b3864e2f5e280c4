"""The one entry to image data: built-in datasets (digits, CIFAR, ImageNet folders), your own image folder, a
Hugging Face dataset (``hf:NAME[:CONFIG]``). Python datasets and tensors: :mod:`arch_gpt.search.user_data`."""
from __future__ import annotations

import os

import numpy as np

from arch_gpt.search.datasets import (
    BUILTIN, DEFAULT_INPUT_SIZE, MAX_INPUT_SIZE, MIN_INPUT_SIZE, DatasetError, ImageData, load_builtin,
)
from arch_gpt.search.user_data import hf_dataset, image_folder

DATASETS = (*BUILTIN, "imagefolder")  # and hf:NAME[:CONFIG]


def check_dataset_name(name: str) -> None:
    """DatasetError unless ``name`` is one of :data:`DATASETS` or ``hf:NAME[:CONFIG]``."""
    if not isinstance(name, str) or not (name in DATASETS or (name.startswith("hf:") and len(name) > 3)):
        raise DatasetError(f"dataset: unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}, "
                           f"or hf:NAME[:CONFIG] for a Hugging Face dataset")


def load_image_data(name: str, data_dir: str | os.PathLike | None = None, download: bool = False,
                    subset: float | None = None, input_size: int | None = None, seed: int = 0,
                    image_column: str | None = None, label_column: str | None = None) -> ImageData:
    """Train/val/test splits of ``name``: one of :data:`DATASETS` or ``hf:NAME[:CONFIG]``."""
    check_dataset_name(name)
    if name in BUILTIN:
        if image_column or label_column:
            raise DatasetError("image_column, label_column: apply to Hugging Face datasets (hf:NAME) only")
        return load_builtin(name, data_dir, download, subset, input_size, seed)
    if subset is not None:
        raise DatasetError("subset: applies to digits, CIFAR and ImageNet only")
    if input_size is not None and not MIN_INPUT_SIZE <= input_size <= MAX_INPUT_SIZE:
        raise DatasetError(f"input_size: must be {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE} pixels, got {input_size}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DatasetError(f"seed: must be a non-negative integer, got {seed!r}")
    size = input_size or DEFAULT_INPUT_SIZE.get(name, 32)
    if name == "imagefolder":
        return image_folder(data_dir, size, seed)
    return hf_dataset(name, size, seed, image_column, label_column)
