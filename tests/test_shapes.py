"""Shape inference agrees with PyTorch's own conv/pool output sizes."""
import pytest
import torch

from arch_gpt.shapes import conv_out_hw


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
