"""``nn.Module`` → the JSON network that :class:`arch_gpt.standalone.SearchedNetwork` rebuilds without arch-gpt.

torch.fx traces the module symbolically. Every call of a layer module (the classes of
:data:`arch_gpt.standalone.MODULES`; torchvision's ``StochasticDepth`` too) becomes a ``module`` node under the
module's own qualified name, its constructor arguments read back from its attributes, so the state_dict keys, and
with them the trained weights, stay as they are. Functional ops and tensor methods must be in the standalone
tables (``add``, ``cat``, ``chunk``, torchvision's ``channel_shuffle``, ...). Anything else (an unknown layer
class, a tensor used outside a layer, data-dependent control flow) is a :class:`NetworkExportError` naming it.
:func:`standalone_copy` checks the result: the rebuilt network, given the same weights, must compute what the
original does on a random input.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import fx, nn
from torchvision.models import shufflenetv2
from torchvision.ops import StochasticDepth as TorchvisionStochasticDepth

from arch_gpt import standalone
from arch_gpt.errors import UserInputError

LEAF_TYPES: dict[type, str] = {cls: name for name, (cls, _) in standalone.MODULES.items()}
LEAF_TYPES[TorchvisionStochasticDepth] = "StochasticDepth"
FUNCTION_NAMES: dict[Any, str] = {fn: name for name, fn in standalone.FUNCTIONS.items()}
FUNCTION_NAMES[shufflenetv2.channel_shuffle] = "channel_shuffle"


class NetworkExportError(UserInputError):
    """A module that the standalone network cannot describe (names the module, function or value)."""


class _Tracer(fx.Tracer):
    """Keeps the standalone layer classes as leaves and torchvision's channel_shuffle as one call."""

    def __init__(self):
        super().__init__(autowrap_functions=(shufflenetv2.channel_shuffle,))

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return type(m) in LEAF_TYPES or super().is_leaf_module(m, qualname)


def _json_value(value: Any, where: str) -> Any:
    """A constructor argument as JSON (tuples become lists)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, (tuple, list)):
        return [_json_value(v, where) for v in value]
    raise NetworkExportError(f"{where}: cannot describe the value {value!r} ({type(value).__name__})")


def module_spec(qualname: str, module: nn.Module) -> dict:
    """``{"type": ..., "args": {...}}`` of one layer module, its arguments read from its attributes."""
    kind = LEAF_TYPES.get(type(module))
    if kind is None:
        raise NetworkExportError(f"module {qualname!r}: a {type(module).__module__}.{type(module).__name__}, which "
                                 f"the standalone network cannot rebuild; it builds "
                                 f"{', '.join(sorted(standalone.MODULES))}")
    args = {}
    for name in standalone.MODULES[kind][1]:
        value = getattr(module, name)
        args[name] = (value is not None) if name == "bias" else _json_value(value, f"module {qualname!r}: {name}")
    return {"type": kind, "args": args}


def _argument(value: Any, where: str) -> Any:
    """An fx argument as JSON: node references, tuples, slices and plain values."""
    if isinstance(value, fx.Node):
        return {"node": value.name}
    if isinstance(value, tuple):
        return {"tuple": [_argument(v, where) for v in value]}
    if isinstance(value, list):
        return [_argument(v, where) for v in value]
    if isinstance(value, slice):
        return {"slice": [_argument(v, where) for v in (value.start, value.stop, value.step)]}
    return _json_value(value, where)


def describe(module: nn.Module) -> dict:
    """The network description (format :data:`arch_gpt.standalone.NETWORK_FORMAT`) of ``module``."""
    try:
        graph = _Tracer().trace(module)
    except (fx.proxy.TraceError, TypeError, RuntimeError, AttributeError, NotImplementedError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise NetworkExportError(f"{type(module).__name__}: torch.fx cannot trace it ({first})") from None
    modules = dict(module.named_modules())
    specs: dict[str, dict] = {}
    nodes: list[dict] = []
    for node in graph.nodes:
        where = f"{type(module).__name__}: {node.op} {node.target}"
        entry: dict[str, Any] = {"name": node.name, "op": node.op}
        if node.op == "placeholder":
            if nodes:
                raise NetworkExportError(f"{type(module).__name__}: forward takes more than one input ({node.name})")
            entry["op"] = "input"
        elif node.op == "call_module":
            if node.target not in specs:
                specs[node.target] = module_spec(node.target, modules[node.target])
            entry.update(op="module", target=node.target)
        elif node.op == "call_function":
            name = FUNCTION_NAMES.get(node.target)
            if name is None:
                raise NetworkExportError(f"{where}: the function {getattr(node.target, '__name__', node.target)!r} "
                                         f"is not one the standalone network knows")
            entry.update(op="function", target=name)
        elif node.op == "call_method":
            if node.target not in standalone.METHODS:
                raise NetworkExportError(f"{where}: the tensor method {node.target!r} is not one the standalone "
                                         f"network knows")
            entry.update(op="method", target=node.target)
        elif node.op == "get_attr":
            raise NetworkExportError(f"{where}: uses the tensor {node.target!r} outside a layer module")
        elif node.op != "output":
            raise NetworkExportError(f"{where}: unsupported graph node")
        if node.op != "placeholder":
            entry["args"] = _argument(list(node.args), where)
            if node.kwargs:
                entry["kwargs"] = {k: _argument(v, where) for k, v in node.kwargs.items()}
        nodes.append(entry)
    return {"format": standalone.NETWORK_FORMAT, "modules": specs, "graph": nodes}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def standalone_copy(module: nn.Module, input_size: Sequence[int], config: dict | None = None,
                    seed: int = 0) -> standalone.SearchedNetwork:
    """A :class:`~arch_gpt.standalone.SearchedNetwork` computing what ``module`` computes, with its weights.

    ``input_size`` is (C, H, W); ``config`` the rest of the exported config.json (its ``network`` is set here).
    The copy is checked on a random batch of two in eval mode (the module's mode and the global RNG are
    restored); NetworkExportError if the outputs differ. Parameters of layers never called are left out."""
    network = describe(module)
    try:
        copy = standalone.SearchedNetwork({**(config or {}), "network": network})
    except ValueError as err:
        raise NetworkExportError(f"{type(module).__name__}: {err}") from None
    state = module.state_dict()
    expected = copy.state_dict()
    missing = [k for k in expected if k not in state or state[k].shape != expected[k].shape]
    if missing:
        raise NetworkExportError(f"{type(module).__name__}: the rebuilt network's tensor {missing[0]!r} is not the "
                                 f"module's")
    copy.load_state_dict({k: state[k] for k in expected})
    param = next(module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    copy.to(device)
    x = torch.randn((2, *input_size), generator=torch.Generator().manual_seed(seed)).to(device)
    was_training = module.training
    module.eval()
    copy.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            want, got = module(x.clone()), copy(x.clone())
    except RuntimeError as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise NetworkExportError(f"{type(module).__name__}: does not run on an input of shape "
                                 f"{tuple(x.shape)} ({first})") from None
    finally:
        module.train(was_training)
    if not _same(want, got):
        raise NetworkExportError(f"{type(module).__name__}: the rebuilt network computes something else than the "
                                 f"module (data-dependent control flow?); it cannot be exported standalone")
    return copy
