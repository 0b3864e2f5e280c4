"""arch_gpt.devices: one parser for every device option, with errors that say what this machine has."""
import pytest
import torch

from arch_gpt.devices import resolve_device
from arch_gpt.errors import UserInputError


def test_default_and_cpu():
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", ["bogus", "cuda:x", "", "tpu"])
def test_names_torch_does_not_know(name):
    with pytest.raises(UserInputError, match=r"^device: "):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this case is about a machine without a GPU")
def test_cuda_without_a_gpu_names_the_option():
    with pytest.raises(UserInputError, match="retrain_device: 'cuda' asked for, but this machine has no CUDA GPU"):
        resolve_device("cuda", param="retrain_device")
