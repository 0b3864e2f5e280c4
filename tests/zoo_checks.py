"""Checks shared by the zoo-network tests (not a test module): what a module runs vs what its layers say."""
from __future__ import annotations

import torch
from torch import nn


def executed_layers(module: nn.Module, x: torch.Tensor) -> list[tuple]:
    """(kind, in channels, out channels, kernel, stride, in H, groups) of every conv/pool/linear, in execution order."""
    seen = []

    def hook(mod, inputs, _output):
        h = inputs[0].shape[2] if inputs[0].dim() == 4 else 1
        if isinstance(mod, nn.Conv2d):
            seen.append(("conv", mod.in_channels, mod.out_channels, mod.kernel_size[0], mod.stride[0], h, mod.groups))
        elif isinstance(mod, (nn.AvgPool2d, nn.MaxPool2d)):
            seen.append(("pool", inputs[0].shape[1], inputs[0].shape[1], mod.kernel_size, mod.stride, h, 1))
        elif isinstance(mod, nn.Linear):
            seen.append(("fc", mod.in_features, mod.out_features, 0, 0, h, 1))

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.AvgPool2d,
                                                                                        nn.MaxPool2d, nn.Linear))]
    with torch.no_grad():
        module.eval()(x)
    for h in handles:
        h.remove()
    return seen


def declared_layers(arch) -> list[tuple]:
    out = []
    for layer in arch.layers:
        if layer.kind == "conv":
            out.append(("conv", layer.in_size[2], layer.out_size[2], layer.kernel[0], layer.stride[0], layer.in_size[0],
                        layer.groups))
        elif layer.kind == "pool":
            out.append(("pool", layer.in_size[2], layer.out_size[2], layer.kernel[0], layer.stride[0],
                        layer.in_size[0], 1))
        elif layer.kind == "fc":
            out.append(("fc", layer.in_size, layer.out_size, 0, 0, 1, 1))
    return out
