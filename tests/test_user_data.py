"""Your own data: a real image folder written here, a real (tiny) Hugging Face dataset saved to disk, tensors."""
import json

import datasets as hf
import numpy as np
import pytest
import torch
from PIL import Image

from arch_gpt.cli import main
from arch_gpt.search.data import load_image_data
from arch_gpt.search.datasets import DatasetError
from arch_gpt.search.user_data import from_datasets, from_tensors


def write_images(folder, classes=("cat", "dog"), per_class=10, size=(20, 14), seed=0):
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (size[1], size[0], 3), dtype=np.uint8) + 120 * c
            Image.fromarray(pixels.astype(np.uint8)).save(folder / name / f"{i}.png")


def test_image_folder_is_split_and_resized(tmp_path):
    write_images(tmp_path)
    data = load_image_data("imagefolder", data_dir=tmp_path, input_size=16, seed=0)
    assert data.num_classes == 2 and data.image_size == (16, 16, 3)
    assert len(data.train) + len(data.val) + len(data.test) == 20 and data.train[0][0].shape == (3, 16, 16)


def test_image_folder_with_train_and_val(tmp_path):
    write_images(tmp_path / "train")
    write_images(tmp_path / "val", per_class=3, seed=1)
    data = load_image_data("imagefolder", data_dir=tmp_path, input_size=8, seed=0)
    assert len(data.test) == 6 and len(data.train) + len(data.val) == 20


@pytest.mark.parametrize("setup, needle", [
    (lambda p: None, "no class subfolders"),
    (lambda p: write_images(p, classes=("one",)), "a classifier needs two"),
])
def test_bad_image_folders(tmp_path, setup, needle):
    setup(tmp_path)
    with pytest.raises(DatasetError, match=needle):
        load_image_data("imagefolder", data_dir=tmp_path)


def test_image_folder_needs_a_folder(tmp_path):
    with pytest.raises(DatasetError, match="^data_dir: "):
        load_image_data("imagefolder")
    with pytest.raises(DatasetError, match="is not a folder"):
        load_image_data("imagefolder", data_dir=tmp_path / "missing")


@pytest.fixture
def hf_folder(tmp_path):
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)) for _ in range(30)]
    features = hf.Features({"img": hf.Image(), "y": hf.ClassLabel(names=["a", "b", "c"]), "note": hf.Value("string")})
    ds = hf.Dataset.from_dict({"img": images, "y": [i % 3 for i in range(30)], "note": ["x"] * 30},
                              features=features)
    hf.DatasetDict({"train": ds, "test": ds.select(range(6))}).save_to_disk(str(tmp_path / "saved"))
    return tmp_path / "saved"


def test_hf_dataset_columns_detected(hf_folder):
    data = load_image_data(f"hf:{hf_folder}", input_size=8, seed=0)
    assert data.num_classes == 3 and len(data.test) == 6 and data.train[0][0].shape == (3, 8, 8)


def test_hf_dataset_columns_named_and_missing(hf_folder):
    assert load_image_data(f"hf:{hf_folder}", image_column="img", label_column="y").num_classes == 3
    with pytest.raises(DatasetError, match="label_column: .* no label column named 'label'"):
        load_image_data(f"hf:{hf_folder}", label_column="label")


def test_hf_dataset_that_cannot_be_reached(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DatasetError, match="cannot load 'hf:no-such-user/no-such-dataset'"):
        load_image_data("hf:no-such-user/no-such-dataset")


def test_tensors_and_dataset_pairs():
    x, y = torch.randn(40, 3, 8, 8), torch.arange(40) % 4
    data = from_tensors(x, y, seed=1)
    assert data.num_classes == 4 and len(data.train) + len(data.val) + len(data.test) == 40
    assert from_datasets(data.train, data.val).test is data.val
    with pytest.raises(DatasetError, match="images, labels"):
        from_tensors(x[0], y)


def test_search_on_an_image_folder(tmp_path):
    write_images(tmp_path / "imgs", per_class=12)
    assert main(["search", "--no-progress", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "imgs"),
                 "--input-size", "16", "--strategy", "random", "--population", "2", "--generations", "1",
                 "--epochs", "1", "--output", str(tmp_path / "run")]) == 0
    best = json.loads((tmp_path / "run" / "best_genome.json").read_text())
    assert best["num_classes"] == 2 and best["input_size"] == [3, 16, 16]
