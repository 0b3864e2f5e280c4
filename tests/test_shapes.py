"""Shape inference agrees with PyTorch's own conv/pool output sizes; continuity of whole layer sequences."""
import pytest
import torch

from arch_gpt.layers import ConvLayer, FCLayer, OtherLayer
from arch_gpt.shapes import continuity_problem, conv_out_hw


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pool_sizes_match_pytorch(ceil_mode):
    for n in range(1, 16):
        for k in (1, 2, 3):
            for s in (1, 2, 3):
                for p in range(k // 2 + 1):
                    pool = torch.nn.MaxPool2d(k, s, p, ceil_mode=ceil_mode)
                    try:
                        expect = pool(torch.zeros(1, 1, n, n)).shape[-1]
                    except RuntimeError:  # output would be empty
                        expect = 0
                    assert conv_out_hw((n, n), (k, k), (s, s), (p,) * 4, 1, ceil_mode)[0] == expect, (n, k, s, p)


def test_ceil_mode_on_tiny_input_keeps_one_window():
    """Regression: MaxPool2d(3, 2, ceil_mode=True) on 2x2 gives 1x1 in PyTorch (we used to say 0)."""
    assert conv_out_hw((2, 2), (3, 3), (2, 2), (0, 0, 0, 0), 1, ceil_mode=True) == (1, 1)


def test_conv_sizes_match_pytorch():
    for n in (5, 8, 13):
        for k, s, p, d in [(3, 1, 1, 1), (3, 2, 1, 1), (5, 2, 2, 1), (3, 1, 2, 2), (1, 2, 0, 1)]:
            conv = torch.nn.Conv2d(1, 1, k, s, p, d)
            expect = conv(torch.zeros(1, 1, n, n)).shape[-1]
            assert conv_out_hw((n, n), (k, k), (s, s), (p,) * 4, d)[0] == expect


# ----------------------------------------------------------------------------- continuity
def _relu(i, size):
    return OtherLayer(i, "ReLU", size, size)


def test_chain_branch_implicit_flatten_and_sources_are_continuous():
    layers = (
        ConvLayer(1, (8, 8, 3), (8, 8, 4), (3, 3), (1, 1), (1, 1, 1, 1)),
        _relu(2, (8, 8, 4)),
        ConvLayer(3, (8, 8, 3), (8, 8, 4), (1, 1)),  # a branch from the network input
        OtherLayer(4, "Add", (8, 8, 4), (8, 8, 4), "2-3"),
        OtherLayer(5, "AdaptiveAvgPool", (8, 8, 4), (1, 1, 4), "1-1"),
        OtherLayer(6, "Mul", (8, 8, 4), (8, 8, 4), "5-4"),  # a squeeze-excitation product broadcasts 1-1-4
        OtherLayer(7, "Concat", (8, 8, 4), (8, 8, 11), "6-0-4"),  # 0 is the network input
        FCLayer(8, 8 * 8 * 11, 10),  # an FC reads the previous output flattened
    )
    assert continuity_problem(layers) is None
    assert continuity_problem(()) is None


@pytest.mark.parametrize("position,fld,text,layers", [
    (1, "in_size", "9-9-9", (_relu(1, (8, 8, 3)), _relu(2, (9, 9, 9)))),
    (2, "in_size", "1-1-99", (_relu(1, (1, 1, 12)), OtherLayer(2, "Flatten", (1, 1, 12), (1, 1, 12)),
                              FCLayer(3, 99, 10))),
    (1, "value", "itself", (_relu(1, (8, 8, 3)), OtherLayer(2, "Add", (8, 8, 3), (8, 8, 3), "1-2"))),
    (1, "value", "later", (_relu(1, (8, 8, 3)), OtherLayer(2, "Add", (8, 8, 3), (8, 8, 3), "1-3"),
                           _relu(3, (8, 8, 3)))),
    (1, "value", "not a layer id", (_relu(1, (8, 8, 3)), OtherLayer(2, "Add", (8, 8, 3), (8, 8, 3), "1-7"))),
    (1, "value", "needs", (_relu(1, (8, 8, 3)), OtherLayer(2, "Add", (8, 8, 3), (8, 8, 3)))),
    (1, "value", "Concat", (_relu(1, (8, 8, 3)), OtherLayer(2, "Concat", (8, 8, 3), (8, 8, 7), "0-1"))),
    (2, "value", "broadcast", (_relu(1, (8, 8, 3)), ConvLayer(2, (8, 8, 3), (4, 4, 3), (2, 2), (2, 2)),
                               OtherLayer(3, "Add", (4, 4, 3), (4, 4, 3), "1-2"))),
])
def test_discontinuity_names_layer_and_field(position, fld, text, layers):
    problem = continuity_problem(layers)
    assert problem is not None and problem[:2] == (position, fld) and text in problem[2]
