"""The tracer behind :meth:`Architecture.from_module`: a torch.fx graph with real shapes, or forward hooks.

Leaf modules (convs, pools, BN, activations, Linear, ...) and functional ops (add, mul, cat, flatten,
mean, relu, channel_shuffle, chunk, ...) map to layers; pure views (contiguous, clone, getitem) pass
their input through. Models that torch.fx cannot trace are traced with forward hooks on leaf modules,
which sees modules only (no functional adds or concats). Works at the layer level only (it returns a list
of layers and imports :mod:`arch_gpt.layers`, never :mod:`arch_gpt.encoding`), so no import cycle closes.
"""
from __future__ import annotations

import contextlib
import io
import math
import operator
import re
from dataclasses import replace
from typing import Any, Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp
from torchvision.models import shufflenetv2
from torchvision.ops import StochasticDepth

from arch_gpt.layers import (
    MODULE_BLOCKS, ArchitectureError, ConvLayer, FCLayer, Layer, OtherLayer, PoolLayer, Size, check_layer,
)
from arch_gpt.torch_build import ChannelShuffle, Chunk, Zero


class ModuleTraceError(ArchitectureError):
    """The module does not run on the requested input (e.g. the input is too small for its strides)."""

_ACTIVATIONS = {nn.ReLU: "ReLU", nn.ReLU6: "ReLU6", nn.SiLU: "SiLU", nn.Sigmoid: "Sigmoid", nn.Hardswish: "Hardswish",
                nn.Hardsigmoid: "Hardsigmoid", nn.GELU: "GELU", nn.Tanh: "Tanh", nn.LeakyReLU: "LeakyReLU",
                nn.Identity: "Identity", nn.Flatten: "Flatten"}
_LEAF_TYPES = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.Dropout,
               nn.Dropout2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, StochasticDepth, ChannelShuffle, Chunk,
               Zero, *_ACTIVATIONS)
# functions / method names -> other-layer name (ops that only take one tensor)
_UNARY_FUNCS = {F.relu: "ReLU", torch.relu: "ReLU", F.relu6: "ReLU6", F.silu: "SiLU", torch.sigmoid: "Sigmoid",
                F.sigmoid: "Sigmoid", F.hardswish: "Hardswish", F.hardsigmoid: "Hardsigmoid", F.gelu: "GELU",
                torch.tanh: "Tanh", F.tanh: "Tanh", torch.flatten: "Flatten"}
_UNARY_METHODS = {"relu": "ReLU", "relu_": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "flatten": "Flatten"}
_MULTI_FUNCS = {operator.add: "Add", operator.iadd: "Add", torch.add: "Add", operator.mul: "Mul",
                operator.imul: "Mul", torch.mul: "Mul", torch.cat: "Concat", torch.concat: "Concat"}
_MULTI_METHODS = {"add": "Add", "add_": "Add", "mul": "Mul", "mul_": "Mul"}
_PASS_METHODS = frozenset({"contiguous", "clone", "detach", "to", "float", "type_as"})


class _Tracer(fx.Tracer):
    """Keeps known layer modules as leaves and channel_shuffle as one op."""

    def __init__(self):
        super().__init__(autowrap_functions=(shufflenetv2.channel_shuffle,))

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, _LEAF_TYPES) or super().is_leaf_module(m, qualname)


def _size(shape: Iterable[int]) -> Size:
    """A tensor shape (batch first) as (H, W, C); anything not 4-D is a flat vector (1, 1, n)."""
    dims = tuple(shape)[1:]
    if len(dims) == 3:
        return (dims[1], dims[2], dims[0])
    return (1, 1, math.prod(dims))


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _pad4(m: nn.Module, kernel, dilation) -> tuple[int, int, int, int]:
    """Padding (left, right, top, bottom) of a conv/pool module (``pad4`` of arch_gpt's padded modules wins)."""
    if getattr(m, "pad4", None) is not None:
        return tuple(m.pad4)
    if isinstance(m.padding, str):  # 'same' / 'valid', as PyTorch pads them
        if m.padding == "valid":
            return (0, 0, 0, 0)
        total = [dilation * (k - 1) for k in kernel]
        return (total[1] // 2, total[1] - total[1] // 2, total[0] // 2, total[0] - total[0] // 2)
    ph, pw = _pair(m.padding)
    return (pw, pw, ph, ph)


def module_layer(m: nn.Module, layer_id: int, in_size: Size, out_size: Size) -> Layer:
    """The layer a leaf module is, with the sizes it was seen with."""
    if isinstance(m, nn.Conv2d):
        dilation = _pair(m.dilation)[0]
        return ConvLayer(layer_id, in_size, out_size, tuple(m.kernel_size), tuple(m.stride),
                         _pad4(m, m.kernel_size, dilation), dilation, m.groups, m.bias is not None)
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        kernel = _pair(m.kernel_size)
        dilation = _pair(getattr(m, "dilation", 1))[0]
        return PoolLayer(layer_id, "Max" if isinstance(m, nn.MaxPool2d) else "Avg", in_size, out_size, kernel,
                         _pair(m.stride or m.kernel_size), _pad4(m, kernel, dilation), dilation, False)
    if isinstance(m, nn.Linear):
        return FCLayer(layer_id, m.in_features, m.out_features)
    name, value = type(m).__name__, "none"
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        name = "BN"
    elif type(m) in _ACTIVATIONS:
        name = _ACTIVATIONS[type(m)]
    elif isinstance(m, (nn.Dropout, nn.Dropout2d)):
        name, value = "Dropout", str(m.p)
    elif isinstance(m, StochasticDepth):
        name, value = "StochasticDepth", str(m.p)
    elif isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        name = "AdaptiveAvgPool" if isinstance(m, nn.AdaptiveAvgPool2d) else "AdaptiveMaxPool"
        value = f"{out_size[0]}-{out_size[1]}"
    elif isinstance(m, ChannelShuffle):
        value = str(m.groups)
    elif isinstance(m, Chunk):
        value = f"{m.index}/{m.chunks}"
    return OtherLayer(layer_id, name, in_size, out_size, value)


# ----------------------------------------------------------------------------- block labels

class _Labeler:
    """Assigns '<Class>#k' labels: the outermost enclosing block module, else the layer's own category."""

    def __init__(self, root: nn.Module):
        self.root, self.instances, self.counts = root, {}, {}

    def _new(self, cls: str) -> str:
        self.counts[cls] = self.counts.get(cls, 0) + 1
        return f"{cls}#{self.counts[cls]}"

    def label(self, enclosing: Iterable[str], layer: Layer) -> str | None:
        for qualname in enclosing:
            if qualname in self.instances:
                return self.instances[qualname]
            try:
                m = self.root.get_submodule(qualname) if qualname else self.root
            except AttributeError:
                continue
            if hasattr(m, "block_label"):  # arch_gpt.torch_build groups carry their label verbatim
                self.instances[qualname] = m.block_label
                return m.block_label
            if type(m).__name__ in MODULE_BLOCKS:
                self.instances[qualname] = self._new(type(m).__name__)
                return self.instances[qualname]
        return self._new(_layer_category(layer))


def _layer_category(layer: Layer) -> str:
    if layer.kind == "conv":
        return "Conv"
    if layer.kind == "pool":
        return "MaxPool" if layer.type == "Max" else "AvgPool"
    if layer.kind == "fc":
        return "Linear"
    return {"BN": "BN", "ReLU": "ReLU", "AdaptiveAvgPool": "AvgPool", "AdaptiveMaxPool": "MaxPool"}.get(layer.name,
                                                                                                       "Other")


# ----------------------------------------------------------------------------- fx tracing

def _tensor_args(args: Any) -> list[fx.Node]:
    out = []
    for a in args:
        if isinstance(a, fx.Node):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            out.extend(_tensor_args(a))
    return out


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[_\W]+", name) if p) or "Op"


def _node_shape(node: fx.Node):
    meta = node.meta.get("tensor_meta")
    return getattr(meta, "shape", None)


def _function_layer(node: fx.Node, new_id: int, in_size: Size, out: Size, sources: list[int],
                    size_of: dict[int, Size], chunks: dict) -> Layer | None:
    """The layer a call_function/call_method node is; None for views that pass their input through."""
    target, method = node.target, node.op == "call_method"
    multi = _MULTI_METHODS.get(target) if method else _MULTI_FUNCS.get(target)
    if multi is not None:
        in_size = out if multi != "Concat" else size_of[max(sources)]
        return OtherLayer(new_id, multi, in_size, out, "-".join(map(str, sources)))
    if target is operator.getitem and node.args[0] in chunks:
        return OtherLayer(new_id, "Chunk", in_size, out, f"{node.args[1]}/{chunks[node.args[0]][0]}")
    if target is operator.getitem or (method and target in _PASS_METHODS):
        return None
    unary = _UNARY_METHODS.get(target) if method else _UNARY_FUNCS.get(target)
    if unary is not None:
        return OtherLayer(new_id, unary, in_size, out)
    if target is shufflenetv2.channel_shuffle:
        groups = node.args[1] if len(node.args) > 1 else node.kwargs["groups"]
        return OtherLayer(new_id, "ChannelShuffle", in_size, out, str(groups))
    if target in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d) or (target == "mean" and out[:2] == (1, 1)):
        name = "AdaptiveMaxPool" if target is F.adaptive_max_pool2d else "AdaptiveAvgPool"
        return OtherLayer(new_id, name, in_size, out, f"{out[0]}-{out[1]}")
    if target in (F.max_pool2d, F.avg_pool2d):
        return _functional_pool(node, new_id, in_size, out)
    if target in (F.dropout, "dropout"):
        p = node.args[1] if len(node.args) > 1 else node.kwargs.get("p", 0.5)
        return OtherLayer(new_id, "Dropout", in_size, out, str(p))
    name = target if isinstance(target, str) else getattr(target, "__name__", "op")
    return OtherLayer(new_id, _camel(name), in_size, out)


def _functional_pool(node: fx.Node, new_id: int, in_size: Size, out: Size) -> PoolLayer:
    """A pool layer from ``F.max_pool2d``/``F.avg_pool2d`` arguments (positional or keyword)."""
    names = ("input", "kernel_size", "stride", "padding") + (
        ("dilation",) if node.target is F.max_pool2d else ())
    given = dict(zip(names, node.args), **node.kwargs)
    kernel = _pair(given["kernel_size"])
    ph, pw = _pair(given.get("padding", 0))
    dilation = _pair(given.get("dilation", 1))[0]
    return PoolLayer(new_id, "Max" if node.target is F.max_pool2d else "Avg", in_size, out, kernel,
                     _pair(given.get("stride") or kernel), (pw, pw, ph, ph), dilation, False)


def _trace_fx(module: nn.Module, x: torch.Tensor) -> list[Layer]:
    """Layers from the torch.fx graph in execution order, sized by running it (ShapeProp) on ``x``."""
    graph = _Tracer().trace(module)
    gm = fx.GraphModule(module, graph)
    with contextlib.redirect_stderr(io.StringIO()):  # ShapeProp prints a traceback before re-raising
        ShapeProp(gm).propagate(x)
    modules = dict(module.named_modules())
    labeler = _Labeler(module)
    ref: dict[fx.Node, int] = {}  # node -> id of the layer producing its tensor (0: network input)
    size_of: dict[int, Size] = {0: _size(x.shape)}
    chunks: dict[fx.Node, tuple[int, fx.Node]] = {}  # channel chunk nodes -> (number of chunks, input node)
    layers: list[Layer] = []

    for node in graph.nodes:
        if node.op == "placeholder":
            if not ref:
                ref[node] = 0
            continue
        if node.op in ("output", "get_attr"):
            continue
        target, inputs = node.target, [a for a in _tensor_args(node.args) if a in ref]
        if node.op == "call_method" and target == "chunk" and inputs:
            dim = node.args[2] if len(node.args) > 2 else node.kwargs.get("dim", 0)
            if dim in (1, -3):
                chunks[node] = (node.args[1] if len(node.args) > 1 else node.kwargs["chunks"], inputs[0])
                continue
        if target is operator.getitem and node.args[0] in chunks:
            inputs = [chunks[node.args[0]][1]]
        shape = _node_shape(node)
        if shape is None or not inputs:
            if node.op == "call_function" and target is operator.getitem and node.args[0] in ref:
                ref[node] = ref[node.args[0]]  # one tensor of a multi-output op that is not a chunk
            continue
        out = _size(shape)
        new_id = len(layers) + 1
        in_size = size_of[ref[inputs[0]]]
        if node.op == "call_module":
            layer = module_layer(modules[target], new_id, in_size, out)
        else:
            layer = _function_layer(node, new_id, in_size, out, [ref[a] for a in inputs], size_of, chunks)
            if layer is None:  # a view of its input (getitem, contiguous, ...)
                ref[node] = ref[inputs[0]]
                continue
        enclosing = [qual for qual, _ in node.meta.get("nn_module_stack", {}).values()]
        layer = _labelled(layer, labeler.label(enclosing, layer))
        layers.append(layer)
        ref[node] = new_id
        size_of[new_id] = out
    return layers


def _labelled(layer: Layer, label: str | None) -> Layer:
    layer = replace(layer, block=label)
    check_layer(layer)
    return layer


# ----------------------------------------------------------------------------- hooks fallback

def _trace_hooks(module: nn.Module, x: torch.Tensor) -> list[Layer]:
    """Leaf-module calls in execution order (no functional ops), for models that torch.fx cannot trace."""
    seen: list[tuple[str, nn.Module, Size, Size]] = []
    handles = []

    def hook_for(qualname: str) -> Callable:
        def hook(m, args, output):
            if args and isinstance(args[0], torch.Tensor) and isinstance(output, torch.Tensor):
                seen.append((qualname, m, _size(args[0].shape), _size(output.shape)))
        return hook

    for qualname, m in module.named_modules():
        if isinstance(m, _LEAF_TYPES) or (qualname and not list(m.children())):
            handles.append(m.register_forward_hook(hook_for(qualname)))
    try:
        module(x)
    finally:
        for h in handles:
            h.remove()
    labeler, layers = _Labeler(module), []
    for qualname, m, in_size, out_size in seen:
        layer = module_layer(m, len(layers) + 1, in_size, out_size)
        parts = qualname.split(".")
        enclosing = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        layers.append(_labelled(layer, labeler.label(enclosing, layer)))
    return layers


def trace_layers(module: nn.Module, input_size: Sequence[int]) -> list[Layer]:
    """Layers (ids 1..n, block-labelled) of ``module`` run in eval mode on a zero input ``(1, *input_size)`` (C, H, W;
    on the module's device and dtype); the module's training mode is restored afterwards."""
    input_size = tuple(input_size)
    if len(input_size) != 3 or not all(isinstance(v, int) and v > 0 for v in input_size):
        raise ArchitectureError(f"expected (channels, height, width) of positive integers, got {input_size!r}",
                                field="input_size")
    param = next(module.parameters(), None)
    x = torch.zeros((1, *input_size), device=param.device if param is not None else "cpu",
                    dtype=param.dtype if param is not None and param.is_floating_point() else torch.float32)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            try:
                return _trace_fx(module, x)
            except (fx.proxy.TraceError, TypeError, RuntimeError, AssertionError):  # fx cannot trace it
                try:
                    return _trace_hooks(module, x)
                except (RuntimeError, AssertionError, ValueError) as err:
                    if isinstance(err, ArchitectureError):
                        raise
                    text = str(err).strip().splitlines()
                    raise ModuleTraceError(f"cannot run {type(module).__name__} on an input of shape "
                                           f"{tuple(x.shape)}: {text[0] if text else type(err).__name__}",
                                           field="input_size") from None
    finally:
        module.train(was_training)
