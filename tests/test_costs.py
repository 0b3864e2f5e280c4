"""arch_gpt.costs: parameters and multiply-adds from the layer language agree with torch and with NAS-Bench-Macro."""
import json
from pathlib import Path

import numpy as np
import pytest
import torchvision

from arch_gpt.costs import Costs, costs, layer_costs
from arch_gpt.encoding import Architecture
from arch_gpt.layers import ConvLayer, FCLayer, OtherLayer
from arch_gpt.search.spaces import create_space
from arch_gpt.zoo.torchvision_models import list_table2_models

MACRO_TABLE = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "nas-bench-macro_cifar10.json"


def torch_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_layer_rules():
    conv = ConvLayer(1, (8, 8, 4), (4, 4, 6), (3, 3), (2, 2), (1, 1, 1, 1), 1, 2, True)
    assert layer_costs(conv) == Costs(3 * 3 * 2 * 6 + 6, 3 * 3 * 2 * 6 * 16)
    assert layer_costs(FCLayer(2, 10, 5)) == Costs(55, 50)
    assert layer_costs(OtherLayer(3, "BN", (4, 4, 6), (4, 4, 6))) == Costs(12, 0)
    assert layer_costs(OtherLayer(4, "ReLU", (4, 4, 6), (4, 4, 6))) == Costs(0, 0)


@pytest.mark.parametrize("space", ["blocks", "nasbench201", "nasbench-macro"])
def test_parameters_equal_torch_for_every_built_in_space(space):
    s = create_space(space, num_classes=10, input_size=(32, 32, 3))
    rng = np.random.default_rng(0)
    for _ in range(5):
        genome = s.sample(rng)
        assert costs(s.to_architecture(genome)).params == torch_params(s.build_module(genome, 10)), s.key(genome)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "regnet_x_400mf"])
def test_parameters_equal_torch_for_torchvision_models(name):
    model = getattr(torchvision.models, name)(weights=None)
    arch = Architecture.from_module(model, input_size=(3, 32, 32))
    assert costs(arch).params == torch_params(model)
    assert costs(arch).params == torch_params(arch.to_module())


@pytest.mark.slow
@pytest.mark.parametrize("name", list_table2_models())
def test_parameters_equal_torch_for_all_table2_models(name):
    """GoogLeNet is built without its auxiliary heads: they only train, the traced network never runs them."""
    kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    model = getattr(torchvision.models, name)(weights=None, **kwargs)
    assert costs(Architecture.from_module(model, input_size=(3, 32, 32))).params == torch_params(model)


@pytest.mark.skipif(not MACRO_TABLE.is_file(), reason="the NAS-Bench-Macro table is in ../shared/benchmarks only")
def test_params_and_flops_equal_nas_bench_macro_for_all_6561_codes():
    table = json.loads(MACRO_TABLE.read_text())
    space = create_space("nasbench-macro")
    got = {key: costs(space.to_architecture(space.parse(key))) for key in table}
    assert all(got[k].params == row["params"] for k, row in table.items())
    assert all(got[k].macs == row["flops"] for k, row in table.items())
    assert len(got) == 6561
