"""search/evaluators/resident.py: device-resident data (the CUDA path), run here on the CPU; bf16 autocast."""
import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from arch_gpt.search.data import load_image_data
from arch_gpt.search.evaluators.resident import DeviceAugment, batches, materialize
from arch_gpt.search.evaluators.training import TrainingConfig, TrainingEvaluator
from arch_gpt.search.protocols import Candidate
from search_toys import ChainSpace


def test_batches_cover_the_split_once_per_epoch_in_a_seeded_order():
    x = torch.arange(10, dtype=torch.float32).view(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous()
    y = torch.arange(10)
    got = torch.cat([yb for _, yb in batches(x, y, 3, shuffle=True, seed=5)])
    again = torch.cat([yb for _, yb in batches(x, y, 3, shuffle=True, seed=5)])
    assert sorted(got.tolist()) == list(range(10)) and torch.equal(got, again)
    assert torch.cat([yb for _, yb in batches(x, y, 4, shuffle=False, seed=0)]).tolist() == list(range(10))


def test_crop_and_flip_on_the_device_keep_the_size_and_use_the_fill():
    x = torch.ones(64, 3, 8, 8)
    aug = DeviceAugment(pad=2, fill=(-1.0, -2.0, -3.0), flip=True)
    (xb, _), = list(batches(x, torch.zeros(64, dtype=torch.long), 64, shuffle=False, seed=0, augment=aug))
    assert xb.shape == x.shape
    shifted = (xb != 1).any(dim=(1, 2, 3))
    assert shifted.any()  # some crops moved the image and let the fill in
    assert set(xb[:, 1].unique().tolist()) <= {1.0, -2.0}  # channel 1 is filled with its own value


def test_materialize_keeps_items_in_order():
    ds = TensorDataset(torch.randn(7, 3, 4, 4), torch.arange(7))
    x, y = materialize(ds, torch.device("cpu"))
    assert torch.equal(x, ds.tensors[0]) and torch.equal(y, ds.tensors[1])


@pytest.mark.parametrize("settings", [{"resident_data": True}, {"resident_data": True, "bf16": True},
                                      {"bf16": True}])
def test_training_on_resident_data_or_bf16_learns(settings):
    data = load_image_data("digits", input_size=8, subset=0.3, seed=0)
    space = ChainSpace(length=2)
    ev = TrainingEvaluator(space, data, TrainingConfig(epochs=8, lr=0.05, batch_size=32, seed=0, **settings))
    assert ev.resident == settings.get("resident_data", False)
    genome = ("conv3", "conv3")
    record = ev.evaluate([Candidate(genome, space.key(genome))])[0]
    assert record.error is None and record.fitness > 0.4  # well above chance (0.1)
    again = TrainingEvaluator(space, data, TrainingConfig(epochs=8, lr=0.05, batch_size=32, seed=0, **settings))
    assert again.evaluate([Candidate(genome, space.key(genome))])[0].fitness == record.fitness
