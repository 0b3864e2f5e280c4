"""Datasets for real-training evaluation: embedded digits, CIFAR/ImageNet folders (tiny fakes, no download)."""
import numpy as np
import pytest
import torch
from PIL import Image

from arch_gpt.search.data import load_image_data
from arch_gpt.search.datasets import DatasetError, stratified_split


@pytest.fixture(scope="module")
def digits():
    return load_image_data("digits", seed=0)


def test_digits_splits_cover_all_images_once(digits):
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797
    assert abs(len(digits.train) - 1078) <= 5 and abs(len(digits.val) - 359) <= 5
    assert digits.num_classes == 10 and digits.image_size == (16, 16, 3)
    x, y = digits.train[0]
    assert x.shape == (3, 16, 16) and x.min() >= -1.0 and x.max() <= 1.0 and 0 <= int(y) < 10


def test_digits_input_size_subset_and_seed():
    small = load_image_data("digits", input_size=8, subset=0.2, seed=1)
    assert small.image_size == (8, 8, 3) and small.train[0][0].shape == (3, 8, 8)
    assert 330 < len(small.train) + len(small.val) + len(small.test) < 390
    again = load_image_data("digits", input_size=8, subset=0.2, seed=1)
    assert torch.equal(small.val.tensors[1], again.val.tensors[1])
    assert set(small.val.tensors[1].tolist()) == set(range(10))


def test_stratified_split_is_a_partition_per_class():
    labels = np.repeat(np.arange(3), 10)
    parts = stratified_split(labels, [0.6, 0.2, 0.2], seed=0)
    assert sorted(np.concatenate(parts).tolist()) == list(range(30))
    assert all(sorted(set(labels[p])) == [0, 1, 2] for p in parts)


def test_unknown_dataset():
    with pytest.raises(DatasetError, match="dataset:"):
        load_image_data("mnist")


@pytest.mark.parametrize("subset", [0.0, 1.5, -0.1])
def test_bad_subset(subset):
    with pytest.raises(DatasetError, match="subset:"):
        load_image_data("digits", subset=subset)


def test_too_small_input_size():
    with pytest.raises(DatasetError, match="input_size:"):
        load_image_data("digits", input_size=4)


def test_cifar_needs_data_dir():
    with pytest.raises(DatasetError, match="data_dir:"):
        load_image_data("cifar10")


def test_cifar_missing_folder_without_download(tmp_path):
    with pytest.raises(DatasetError, match="--download"):
        load_image_data("cifar100", data_dir=tmp_path / "nowhere")


def test_cifar_empty_folder_is_not_found(tmp_path):
    with pytest.raises(DatasetError, match="not found or corrupted"):
        load_image_data("cifar10", data_dir=tmp_path)


def _image_folder(root, classes, per_class):
    rng = np.random.default_rng(0)
    for part in ("train", "val"):
        for cls in classes:
            (root / part / cls).mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(root / part / cls / f"{i}.png")


def test_imagenet_folder_with_subset(tmp_path):
    _image_folder(tmp_path, ["a", "b"], 10)
    data = load_image_data("imagenet", data_dir=tmp_path, input_size=16, subset=0.5)
    assert data.num_classes == 2 and data.image_size == (16, 16, 3)
    assert len(data.train) + len(data.val) == 10 and len(data.test) == 10
    assert data.train[0][0].shape == (3, 16, 16)


def test_imagenet_missing_val_folder(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(DatasetError, match="val is missing"):
        load_image_data("imagenet", data_dir=tmp_path)


def test_imagenet_val_classes_must_match(tmp_path):
    _image_folder(tmp_path, ["a", "b"], 2)
    (tmp_path / "val" / "c").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "val" / "c" / "0.png")
    with pytest.raises(DatasetError, match="differ"):
        load_image_data("imagenet", data_dir=tmp_path)
