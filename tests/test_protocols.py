"""search/protocols.py: the built-ins declare the optional capabilities they have, and really implement them."""
import inspect

import pytest

from arch_gpt.modeling import TINY, ArchGPT
from arch_gpt.search import protocols
from arch_gpt.search.evaluators.tabular import TabularEvaluator
from arch_gpt.search.evaluators.training import TrainingEvaluator
from arch_gpt.search.spaces.blocks import BlockSpace
from arch_gpt.search.spaces.macro import MacroSpace
from arch_gpt.search.spaces.nasbench201 import NASBench201Space
from arch_gpt.tokenizer import LayerTokenizer

CAPABILITIES = (protocols.HasContextArchitecture, protocols.ParsesKeys, protocols.HasConfig, protocols.SerializesGenomes,
                protocols.KeepsRunFolder, protocols.KeepsWeights)


@pytest.mark.parametrize("cls", [BlockSpace, MacroSpace, NASBench201Space, TrainingEvaluator, TabularEvaluator])
def test_declared_capabilities_are_implemented_not_inherited_stubs(cls):
    for capability in CAPABILITIES:
        if not issubclass(cls, capability):
            continue
        for name, member in vars(capability).items():
            if inspect.isfunction(member) and not name.startswith("_"):
                impl = getattr(cls, name)
                assert impl is not member, f"{cls.__name__}.{name} is the protocol's stub"


def test_which_spaces_have_which_capabilities():
    assert issubclass(NASBench201Space, protocols.HasContextArchitecture)
    assert not issubclass(MacroSpace, protocols.HasContextArchitecture)
    assert issubclass(BlockSpace, protocols.SerializesGenomes) and issubclass(BlockSpace, protocols.ParsesKeys)
    assert issubclass(TrainingEvaluator, protocols.KeepsWeights)
    assert not isinstance(TabularEvaluator.__new__(TabularEvaluator), protocols.KeepsWeights)


def test_archgpt_is_a_next_token_predictor_and_block_labeller():
    space = MacroSpace()
    tokenizer = LayerTokenizer.build([space.to_architecture(space.parse(code)) for code in ("00000000", "12121212")])
    model = ArchGPT.create(tokenizer, **TINY)
    assert isinstance(model, protocols.NextTokenPredictor) and isinstance(model, protocols.BlockLabeller)
    assert model.can_classify_blocks is False and model.window == 10


def test_an_object_missing_a_method_is_not_a_predictor():
    class Almost:
        window, version = 10, 0
    assert not isinstance(Almost(), protocols.NextTokenPredictor)


def test_block_networks_expose_their_unit_modules():
    import numpy as np
    space = BlockSpace(num_classes=10, input_size=16, min_blocks=3, max_blocks=4, widths=(8, 16))
    genome = space.sample(np.random.default_rng(0))
    module = space.build_module(genome)
    assert isinstance(module, protocols.HasUnitModules) and len(module.units) == len(genome)
