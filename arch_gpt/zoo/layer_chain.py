"""Writing a network's layers by hand, in execution order, with real sizes and block labels.

:class:`LayerChain` appends layers with ids 1..n and infers each layer's output size, so a zoo
network (NAS-Bench-201, NAS-Bench-Macro) is written once as the same sequence its ``nn.Module`` runs.
:class:`ExpandedNetwork` is such an Architecture plus, per searchable unit, the index of the layer
that tells its choices apart (its *signature layer*).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Sequence

from arch_gpt import shapes
from arch_gpt.encoding import Architecture, ConvLayer, FCLayer, Layer, OtherLayer, PoolLayer, Size


@dataclass(frozen=True)
class ExpandedNetwork:
    """A network as layers, and for each searchable unit the index (in ``architecture.layers``) of its
    signature layer: the first layer whose token differs between the unit's choices."""
    architecture: Architecture
    unit_layers: tuple[int, ...]


class LayerChain:
    """Appends layers with ids 1..n; ``size`` is the current feature-map size and ``block`` the label
    given to the next layers. Setting ``size`` starts a branch from an earlier output."""

    def __init__(self, in_size: Size):
        self.layers: list[Layer] = []
        self.size: Size = tuple(in_size)
        self.block: str | None = None
        self._blocks: Counter = Counter()

    def enter(self, block_class: str | None) -> str | None:
        """Label the next layers ``<block_class>#<k>`` (k counts that class from 1); None leaves them loose."""
        if block_class is None:
            self.block = None
        else:
            self._blocks[block_class] += 1
            self.block = f"{block_class}#{self._blocks[block_class]}"
        return self.block

    @property
    def next_id(self) -> int:
        return len(self.layers) + 1

    @property
    def last_id(self) -> int:
        """Id of the last layer written (0, the network input, before any)."""
        return len(self.layers)

    def _push(self, layer: Layer) -> int:
        self.layers.append(layer)
        self.size = (1, 1, layer.out_size) if isinstance(layer, FCLayer) else layer.out_size
        return layer.id

    def conv(self, out_c: int, kernel: int, stride: int = 1, groups: int = 1) -> int:
        """A bias-free square conv with 'same' padding (kernel // 2); ``groups`` as in ``nn.Conv2d``."""
        pad = (kernel // 2,) * 4
        h, w = shapes.conv_out_hw(self.size[:2], (kernel, kernel), (stride, stride), pad)
        return self._push(ConvLayer(self.next_id, self.size, (h, w, out_c), (kernel, kernel), (stride, stride),
                                    pad, 1, groups, False, self.block))

    def pool(self, type_: str, kernel: int, stride: int, pad: int) -> int:
        """A Max or Avg pooling window (channels kept)."""
        h, w = shapes.conv_out_hw(self.size[:2], (kernel, kernel), (stride, stride), (pad,) * 4)
        return self._push(PoolLayer(self.next_id, type_, self.size, (h, w, self.size[2]), (kernel, kernel),
                                    (stride, stride), (pad,) * 4, 1, False, self.block))

    def other(self, name: str, value: str = "none", out_size: Size | None = None) -> int:
        """An ``other`` layer (BN, ReLU, Identity, Zero, ...); shape-preserving unless ``out_size`` is given."""
        return self._push(OtherLayer(self.next_id, name, self.size, out_size or self.size, value, self.block))

    def add(self, sources: Sequence[int]) -> int:
        """Sum of the outputs of ``sources`` (layer ids), which share the current size."""
        return self.other("Add", "-".join(str(s) for s in sources))

    def inverted_residual(self, c_out: int, expansion: int, kernel: int, stride: int) -> None:
        """A MobileNetV2 inverted residual: 1x1 expand + BN + ReLU, depthwise kxk (stride) + BN + ReLU, 1x1
        project + BN, and the shortcut Add where stride is 1 and the channels stay."""
        block_in, c_in = self.last_id, self.size[2]
        hidden = c_in * expansion
        self.conv(hidden, 1)
        self.other("BN")
        self.other("ReLU")
        self.conv(hidden, kernel, stride, groups=hidden)
        self.other("BN")
        self.other("ReLU")
        self.conv(c_out, 1)
        project = self.other("BN")
        if stride == 1 and c_in == c_out:
            self.add([project, block_in])

    def head(self, num_classes: int) -> None:
        """Global average pool, flatten and the linear classifier."""
        c = self.size[2]
        self.other("AdaptiveAvgPool", "1-1", (1, 1, c))
        self.other("Flatten")
        self._push(FCLayer(self.next_id, c, num_classes, self.block))

    def build(self, unit_layers: Sequence[int], name: str | None = None) -> ExpandedNetwork:
        """The finished network; loose layers get their own class label (Conv#1, BN#2, Linear#1, ...)."""
        counts: Counter = Counter()
        layers = []
        for layer in self.layers:
            if layer.block is None:
                cls = _loose_class(layer)
                counts[cls] += 1
                layer = replace(layer, block=f"{cls}#{counts[cls]}")
            layers.append(layer)
        return ExpandedNetwork(Architecture(tuple(layers), name=name), tuple(unit_layers))


def _loose_class(layer: Layer) -> str:
    """The label class of a layer outside any block, as ``arch_gpt.torch_io`` names them."""
    if layer.kind == "conv":
        return "Conv"
    if layer.kind == "fc":
        return "Linear"
    if layer.kind == "pool":
        return f"{layer.type}Pool"
    return layer.name if layer.name in ("BN", "ReLU") else "Other"
