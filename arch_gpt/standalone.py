"""A network found by an arch-gpt search, rebuilt from ``config.json`` with torch alone: no arch-gpt needed.

``arch-gpt export`` copies this file verbatim as ``model.py`` beside ``config.json`` and ``model.safetensors``;
``SearchResult.to_module()`` returns the same class. :class:`SearchedNetwork` runs ``config["network"]``:

* ``modules``: each layer module by its qualified name in the search's own network (``blocks.0.conv1``), as a
  standard ``torch.nn`` class and its constructor arguments, so the trained weights load under their own names;
* ``graph``: the calls between them in order: the ``input``, ``module`` calls, ``function`` calls and tensor
  ``method`` calls from the fixed tables below (``add``, ``cat``, ``chunk``, ...), and the ``output``. Nothing
  in a config can name other code.

It needs torch and safetensors. With huggingface_hub installed it is a ``PyTorchModelHubMixin``:
``save_pretrained`` / ``push_to_hub`` write config.json, model.safetensors, this file and a model card saying how
the network was found; ``from_pretrained`` loads a folder or Hub repo (weights checked strictly)::

    from model import SearchedNetwork, load_model
    model = load_model()                                   # config.json + model.safetensors beside model.py
    model = SearchedNetwork.from_pretrained("user/repo")   # with huggingface_hub
    logits = model(model.example_input())
"""
from __future__ import annotations

import json
import math
import operator
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

try:  # optional: save_pretrained / push_to_hub / from_pretrained and the model card
    from huggingface_hub import ModelCard, ModelCardData, PyTorchModelHubMixin
    from huggingface_hub.repocard_data import EvalResult
except ImportError:  # pragma: no cover  (arch-gpt itself always has huggingface_hub)
    ModelCard = ModelCardData = PyTorchModelHubMixin = EvalResult = None

NETWORK_FORMAT = "arch-gpt-network/1"
CONFIG_NAME, WEIGHTS_NAME, SOURCE_NAME = "config.json", "model.safetensors", "model.py"
MAX_PARAMETERS = 2**31  # a config asking for more parameters is refused before anything is allocated
HUB_DATASETS = {"cifar10": "uoft-cs/cifar10", "cifar100": "uoft-cs/cifar100", "imagenet": "ILSVRC/imagenet-1k"}
_UMASK = os.umask(0)
os.umask(_UMASK)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNetV2's channel shuffle (as torchvision computes it)."""
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w)
    return torch.transpose(x, 1, 2).contiguous().view(n, c, h, w)


class StochasticDepth(nn.Module):
    """torchvision's StochasticDepth: in training, zero whole rows (or the batch) with probability ``p``."""

    def __init__(self, p: float, mode: str):
        super().__init__()
        if not 0.0 <= p <= 1.0 or mode not in ("batch", "row"):
            raise ValueError(f"StochasticDepth: p must be in [0, 1] and mode 'batch' or 'row', got {p!r}, {mode!r}")
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(1.0 - self.p)
        if self.p < 1.0:
            noise.div_(1.0 - self.p)
        return x * noise


_NORM = ("num_features", "eps", "momentum", "affine", "track_running_stats")
MODULES: dict[str, tuple[type, tuple[str, ...]]] = {  # class name -> (class, constructor arguments)
    "Conv2d": (nn.Conv2d, ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                           "bias", "padding_mode")),
    "Linear": (nn.Linear, ("in_features", "out_features", "bias")),
    "BatchNorm1d": (nn.BatchNorm1d, _NORM), "BatchNorm2d": (nn.BatchNorm2d, _NORM),
    "GroupNorm": (nn.GroupNorm, ("num_groups", "num_channels", "eps", "affine")),
    "MaxPool2d": (nn.MaxPool2d, ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode")),
    "AvgPool2d": (nn.AvgPool2d, ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                                 "divisor_override")),
    "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d, ("output_size",)),
    "AdaptiveMaxPool2d": (nn.AdaptiveMaxPool2d, ("output_size", "return_indices")),
    "ReLU": (nn.ReLU, ("inplace",)), "ReLU6": (nn.ReLU6, ("inplace",)), "SiLU": (nn.SiLU, ("inplace",)),
    "Hardswish": (nn.Hardswish, ("inplace",)), "Hardsigmoid": (nn.Hardsigmoid, ("inplace",)),
    "Mish": (nn.Mish, ("inplace",)), "ELU": (nn.ELU, ("alpha", "inplace")),
    "LeakyReLU": (nn.LeakyReLU, ("negative_slope", "inplace")), "GELU": (nn.GELU, ("approximate",)),
    "Sigmoid": (nn.Sigmoid, ()), "Tanh": (nn.Tanh, ()), "Identity": (nn.Identity, ()),
    "Flatten": (nn.Flatten, ("start_dim", "end_dim")),
    "Dropout": (nn.Dropout, ("p", "inplace")), "Dropout2d": (nn.Dropout2d, ("p", "inplace")),
    "StochasticDepth": (StochasticDepth, ("p", "mode")),
}
FUNCTIONS: dict[str, Callable] = {
    "add": operator.add, "iadd": operator.iadd, "sub": operator.sub, "isub": operator.isub, "mul": operator.mul,
    "imul": operator.imul, "truediv": operator.truediv, "floordiv": operator.floordiv, "neg": operator.neg,
    "getitem": operator.getitem,
    "torch.add": torch.add, "torch.mul": torch.mul, "torch.cat": torch.cat, "torch.concat": torch.concat,
    "torch.stack": torch.stack, "torch.flatten": torch.flatten, "torch.relu": torch.relu,
    "torch.sigmoid": torch.sigmoid, "torch.tanh": torch.tanh, "torch.mean": torch.mean, "torch.sum": torch.sum,
    "torch.transpose": torch.transpose, "torch.zeros_like": torch.zeros_like,
    "F.relu": F.relu, "F.relu6": F.relu6, "F.silu": F.silu, "F.gelu": F.gelu, "F.hardswish": F.hardswish,
    "F.hardsigmoid": F.hardsigmoid, "F.sigmoid": F.sigmoid, "F.adaptive_avg_pool2d": F.adaptive_avg_pool2d,
    "F.adaptive_max_pool2d": F.adaptive_max_pool2d, "F.max_pool2d": F.max_pool2d, "F.avg_pool2d": F.avg_pool2d,
    "F.dropout": F.dropout, "F.pad": F.pad,
    "channel_shuffle": channel_shuffle,
}
METHODS = frozenset({
    "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "relu", "relu_", "sigmoid", "sigmoid_", "tanh",
    "chunk", "split", "mean", "sum", "flatten", "view", "view_as", "reshape", "contiguous", "size", "transpose",
    "permute", "squeeze", "unsqueeze", "clone", "expand_as"})
_OPS = ("input", "module", "function", "method", "output")


class _Ref:
    """A reference to an earlier node's value inside a compiled argument template."""
    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


def _decode(value: Any, names: dict[str, int], where: str) -> Any:
    """JSON argument → template: ``{"node": name}`` refs, ``{"tuple": [...]}``, ``{"slice": [a, b, c]}``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: a number that is not finite")
        return value
    if isinstance(value, list):
        return [_decode(v, names, where) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        (kind, inner), = value.items()
        if kind == "node":
            if not isinstance(inner, str) or inner not in names:
                raise ValueError(f"{where}: refers to node {inner!r}, which is not an earlier node")
            return _Ref(names[inner])
        if kind == "tuple" and isinstance(inner, list):
            return tuple(_decode(v, names, where) for v in inner)
        if kind == "slice" and isinstance(inner, list) and len(inner) == 3:
            return slice(*(_decode(v, names, where) for v in inner))
    raise ValueError(f"{where}: cannot read the argument {value!r}")


def _resolve(template: Any, env: list) -> Any:
    if isinstance(template, _Ref):
        return env[template.index]
    if isinstance(template, (list, tuple)):
        items = [_resolve(v, env) for v in template]
        return items if isinstance(template, list) else tuple(items)
    if isinstance(template, dict):
        return {k: _resolve(v, env) for k, v in template.items()}
    if isinstance(template, slice):
        return slice(_resolve(template.start, env), _resolve(template.stop, env), _resolve(template.step, env))
    return template


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _parameter_count(kind: str, args: dict) -> int:
    """An upper bound of the parameters a module spec allocates (0 for modules without weights)."""
    def ints(*names: str) -> list[int]:
        out = []
        for name in names:
            v = args.get(name, 1)
            for item in (v if isinstance(v, (list, tuple)) else [v]):
                out.append(item if isinstance(item, int) and not isinstance(item, bool) else 1)
        return out
    if kind == "Conv2d":
        c_in, c_out, groups, *kernel = ints("in_channels", "out_channels", "groups", "kernel_size")
        return c_out * max(c_in // max(groups, 1), 1) * math.prod(kernel) + c_out
    if kind == "Linear":
        return math.prod(ints("in_features", "out_features")) + ints("out_features")[0]
    if kind in ("BatchNorm1d", "BatchNorm2d", "GroupNorm"):
        return 4 * max(ints("num_features", "num_channels"))
    return 0


def _module(qualname: str, spec: Any) -> nn.Module:
    """One layer module from its ``{"type": ..., "args": {...}}`` spec; ValueError naming it otherwise."""
    where = f"network: module {qualname!r}"
    if not isinstance(spec, dict) or set(spec) - {"type", "args"} or not isinstance(spec.get("type"), str) \
            or spec["type"] not in MODULES:
        kind = spec.get("type") if isinstance(spec, dict) else spec
        raise ValueError(f"{where}: unknown layer {kind!r}; this model.py builds {', '.join(sorted(MODULES))}")
    cls, allowed = MODULES[spec["type"]]
    args = spec.get("args", {})
    if not isinstance(args, dict) or set(args) - set(allowed):
        extra = sorted(set(args) - set(allowed)) if isinstance(args, dict) else [args]
        raise ValueError(f"{where}: {spec['type']} takes no argument {extra[0]!r}; allowed: {', '.join(allowed)}")
    try:
        return cls(**{k: _tuples(v) for k, v in args.items()})
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{where}: {spec['type']}({args}) fails: {err}") from None


class _Network(nn.Module):
    """The graph interpreter behind :class:`SearchedNetwork` (it holds no Hub logic)."""

    def _build(self, network: Any) -> None:
        self._nodes: list[tuple[str, Any, Any, dict]] = []
        if not isinstance(network, dict) or network.get("format") != NETWORK_FORMAT:
            found = network.get("format") if isinstance(network, dict) else type(network).__name__
            raise ValueError(f"network: expected an object of format {NETWORK_FORMAT!r}, got {found!r}; export the "
                             f"run again with this arch-gpt")
        modules, graph = network.get("modules"), network.get("graph")
        if not isinstance(modules, dict) or not isinstance(graph, list) or not graph:
            raise ValueError("network: needs 'modules' (an object) and 'graph' (a list of nodes)")
        if sum(_parameter_count(s.get("type"), s.get("args") or {}) for s in modules.values()
               if isinstance(s, dict) and isinstance(s.get("args", {}), dict)) > MAX_PARAMETERS:
            raise ValueError(f"network: its layers would hold more than {MAX_PARAMETERS:,} parameters")
        leaves: set[str] = set()
        for qualname, spec in modules.items():
            self._place(qualname, _module(qualname, spec), leaves)
        names: dict[str, int] = {}
        for i, node in enumerate(graph):
            self._nodes.append(self._compile(i, node, names, modules))
        if self._nodes[0][0] != "input" or self._nodes[-1][0] != "output":
            raise ValueError("network: graph must start with its 'input' node and end with its 'output' node")

    def _place(self, qualname: str, module: nn.Module, leaves: set[str]) -> None:
        parts = qualname.split(".") if isinstance(qualname, str) else [""]
        if not all(p.isidentifier() or p.isdigit() for p in parts):
            raise ValueError(f"network: module name {qualname!r} is not a dotted path of names")
        parent = self
        for depth, part in enumerate(parts):
            path = ".".join(parts[:depth + 1])
            last = depth == len(parts) - 1
            if path in leaves or (last and part in parent._modules):
                raise ValueError(f"network: module {qualname!r} lies inside or over the layer {path!r}")
            if part not in parent._modules and hasattr(parent, part):
                raise ValueError(f"network: module name {path!r} clashes with an attribute of {type(parent).__name__}")
            if last:
                parent.add_module(part, module)
            elif part not in parent._modules:
                parent.add_module(part, nn.Module())
            parent = parent._modules[part]
        leaves.add(qualname)

    def _compile(self, i: int, node: Any, names: dict[str, int], modules: dict) -> tuple[str, Any, Any, dict]:
        where = f"network: graph[{i}]"
        if not isinstance(node, dict) or node.get("op") not in _OPS:
            raise ValueError(f"{where}: expected a node with 'op' one of {', '.join(_OPS)}")
        op, target, name = node["op"], node.get("target"), node.get("name", f"node{i}")
        if op in ("module", "function", "method") and not isinstance(target, str):
            raise ValueError(f"{where}: 'target' must be a name, got {target!r}")
        if not isinstance(name, str) or name in names:
            raise ValueError(f"{where}: 'name' must be a string not used before, got {name!r}")
        if op == "input" and i != 0:
            raise ValueError(f"{where}: only the first node is the input")
        if op == "module" and target not in modules:
            raise ValueError(f"{where}: calls module {target!r}, which 'modules' does not define")
        if op == "function" and target not in FUNCTIONS:
            raise ValueError(f"{where}: unknown function {target!r}; this model.py knows {', '.join(FUNCTIONS)}")
        if op == "method" and target not in METHODS:
            raise ValueError(f"{where}: unknown tensor method {target!r}")
        args = _decode(node.get("args", []), names, where)
        kwargs = node.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ValueError(f"{where}: 'args' must be a list and 'kwargs' an object")
        if (op == "method" and not args) or (op == "output" and len(args) != 1):
            raise ValueError(f"{where}: a {op} node needs {'its tensor' if op == 'method' else 'one value'} in 'args'")
        names[name] = i
        fn = FUNCTIONS.get(target) if op == "function" else target
        return op, fn, args, {k: _decode(v, names, where) for k, v in kwargs.items()}

    def forward(self, x: torch.Tensor) -> Any:
        env: list = []
        for op, target, args, kwargs in self._nodes:
            if op == "input":
                env.append(x)
                continue
            a, kw = _resolve(args, env), _resolve(kwargs, env)
            if op == "module":
                env.append(self.get_submodule(target)(*a, **kw))
            elif op == "function":
                env.append(target(*a, **kw))
            elif op == "method":
                env.append(getattr(a[0], target)(*a[1:], **kw))
            else:
                return a[0]
        raise RuntimeError("network: the graph has no output node")  # unreachable: _build checks it


def _hub_options() -> dict:
    return {} if PyTorchModelHubMixin is None else {
        "library_name": "pytorch", "tags": ["arch-gpt", "neural-architecture-search", "image-classification"]}


class SearchedNetwork(_Network, *(() if PyTorchModelHubMixin is None else (PyTorchModelHubMixin,)), **_hub_options()):
    """The exported network: ``SearchedNetwork(config)`` with ``config`` as in config.json (its ``network``,
    ``input_size`` [C, H, W], ``num_classes`` and, for the card, what the search recorded)."""

    def __init__(self, config: dict):
        super().__init__()
        if not isinstance(config, dict) or "network" not in config:
            raise ValueError("config: expected the object of an exported config.json, with its 'network'")
        self.config = json.loads(json.dumps(config, allow_nan=False))  # a JSON copy, so it saves as it came
        self._build(self.config["network"])

    def example_input(self, batch: int = 1) -> torch.Tensor:
        """Zeros of the input shape the network was searched for: ``(batch, C, H, W)``."""
        size = self.config.get("input_size") or [3, 32, 32]
        param = next(self.parameters(), None)
        return torch.zeros((batch, *size), device=param.device if param is not None else "cpu")

    def save_folder(self, folder: str | os.PathLike) -> Path:
        """Write config.json, model.safetensors and model.py (this file) into ``folder``; no huggingface_hub
        needed. Files are written whole (temporary file + rename) with the usual permissions."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        _atomic_write(folder / WEIGHTS_NAME, save_safetensors(state, metadata={"format": "pt"}))
        _atomic_write(folder / CONFIG_NAME, config_text(self.config).encode())
        _atomic_write(folder / SOURCE_NAME, Path(__file__).read_bytes())
        return folder

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, device: str = "cpu") -> "SearchedNetwork":
        """The network of ``folder/config.json`` with ``folder/model.safetensors`` loaded (strictly), in eval mode."""
        folder = Path(folder)
        model = cls(read_config(folder / CONFIG_NAME))
        return load_weights(model, folder / WEIGHTS_NAME).to(device).eval()

    # --- huggingface_hub.PyTorchModelHubMixin hooks (used only when huggingface_hub is installed) ---
    def _save_pretrained(self, save_directory: Path) -> None:
        self.save_folder(save_directory)

    def generate_model_card(self, *args, **kwargs) -> "ModelCard":
        return model_card(self.config)

    @classmethod
    def _load_as_safetensor(cls, model, model_file: str, map_location: str, strict: bool):
        return load_weights(model, Path(model_file), strict=True).to(map_location).eval()


def read_config(path: Path) -> dict:
    """config.json as a dict; ValueError naming the file when it is missing, not JSON or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read the config ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def config_text(config: dict) -> str:
    """config.json's text: sorted keys, two-space indent, a final newline."""
    return json.dumps(config, indent=2, sort_keys=True, allow_nan=False) + "\n"


def load_weights(model: nn.Module, path: Path, data: bytes | None = None, strict: bool = True) -> nn.Module:
    """Load the safetensors file ``path`` (or its bytes) into ``model``; ValueError naming the file when it is not
    safetensors or, with ``strict``, holds other tensors than the model's (first ones named)."""
    try:
        state = load_safetensors(Path(path).read_bytes() if data is None else data)
    except OSError as err:
        raise ValueError(f"{path}: cannot read ({err.strerror or err})") from None
    except SafetensorError as err:
        raise ValueError(f"{path}: not a valid safetensors file ({err}); empty, truncated or another "
                         f"format?") from None
    expected = model.state_dict()
    problems = [f"missing {k!r}" for k in expected if k not in state][:2]
    problems += [f"unexpected {k!r}" for k in state if k not in expected][:2]
    problems += [f"{k!r} has shape {list(state[k].shape)}, expected {list(v.shape)}" for k, v in expected.items()
                 if k in state and state[k].shape != v.shape][:2]
    if problems and (strict or any(not p.startswith(("missing", "unexpected")) for p in problems)):
        raise ValueError(f"{path}: weights do not fit the network ({'; '.join(problems)})")
    model.load_state_dict(state, strict=strict)
    return model


def build_model(folder: str | os.PathLike | None = None) -> SearchedNetwork:
    """The untrained network of ``folder/config.json`` (default: the folder of this file)."""
    return SearchedNetwork(read_config(Path(folder or Path(__file__).parent) / CONFIG_NAME))


def load_model(folder: str | os.PathLike | None = None, device: str = "cpu") -> SearchedNetwork:
    """The network with ``model.safetensors`` loaded when the folder has it (else untrained), in eval mode."""
    folder = Path(folder or Path(__file__).parent)
    if (folder / WEIGHTS_NAME).is_file():
        return SearchedNetwork.from_folder(folder, device)
    return build_model(folder).to(device).eval()


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ----------------------------------------------------------------------------- the model card

def _number(value: Any, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"


def card_facts(config: dict) -> list[tuple[str, str]]:
    """(what, value) rows saying how the network was found, from the config's top level and its ``search``."""
    s = config.get("search") or {}
    rows = [("search space", f"`{config.get('space', '?')}`"), ("architecture key", f"`{config.get('key', '?')}`")]
    if s.get("strategy"):
        rows.append(("strategy", f"`{s['strategy']}` (seed {s.get('seed', '?')})"))
    if s.get("evaluations") is not None:
        budget = f"{s.get('budget', s['evaluations'])} evaluations"
        rows.append(("budget", f"{budget}: {s['evaluations']} done ({s.get('unique_evaluations', '?')} distinct), "
                               f"{s.get('generations', '?')} generations"))
    data = f"table `{s['benchmark']}` (scores looked up, nothing trained)" if s.get("benchmark") else s.get("dataset")
    size = config.get("input_size")
    shape = f"{size[1]}x{size[2]}x{size[0]} input, " if size else ""
    rows.append(("data", f"{data or 'not recorded'} ({shape}{config.get('num_classes', '?')} classes)"))
    rows.append(("fitness (validation accuracy, what selection used)", _number(config.get("fitness"))))
    rows.append(("test accuracy (reported, never used for selection)", _number(s.get("test_acc"))))
    if s.get("params") is not None:
        rows.append(("parameters", _number(s["params"])))
    retrain = s.get("retrain") or {}
    weights = {"search": "trained during the search (best.safetensors)",
               "retrained": f"retrained from scratch on {retrain.get('dataset', '?')} for {retrain.get('epochs', '?')} "
                            f"epochs: test accuracy {_number(retrain.get('test_acc'))}"}.get(s.get("weights"),
                                                                                           "none (untrained)")
    rows.append(("weights", weights))
    return rows


def _eval_results(config: dict) -> list:
    """model-index entries: the search's fitness on its data, the test accuracy of these weights on theirs."""
    s = config.get("search") or {}
    retrain = (s.get("retrain") or {}) if s.get("weights") == "retrained" else {}
    searched = s["benchmark"].rsplit(".", 1)[0] if s.get("benchmark") else s.get("dataset")
    test = (retrain.get("dataset"), retrain.get("test_acc")) if retrain else (searched, s.get("test_acc"))
    rows = [(searched, "validation", "validation accuracy (search fitness)", config.get("fitness")),
            (test[0], "test", "test accuracy", test[1])]
    return [EvalResult(task_type="image-classification", task_name="Image classification",
                       dataset_type=HUB_DATASETS.get(data, data), dataset_split=split, metric_type="accuracy",
                       dataset_name=f"{data} (tabular benchmark)" if data == searched and s.get("benchmark") else data,
                       metric_name=metric, metric_value=value)
            for data, split, metric, value in rows if data and value is not None]


def model_card(config: dict) -> "ModelCard":
    """The model card (huggingface_hub ModelCard): metadata with ``model-index`` where the data is known, how the
    network was found, how to load it. No machine paths: commands name the run folder RUN_DIR."""
    if ModelCard is None:  # pragma: no cover
        raise ImportError("the model card needs huggingface_hub (pip install huggingface_hub)")
    s = config.get("search") or {}
    name = f"arch-gpt-{config.get('space', 'network')}-{(s.get('strategy') or 'search').replace('+', '-')}"
    results = _eval_results(config)
    datasets = sorted({r.dataset_type for r in results if r.dataset_type in HUB_DATASETS.values()})
    tags = sorted({"arch-gpt", "neural-architecture-search", "image-classification", "model_hub_mixin",
                   "pytorch_model_hub_mixin", f"space-{config.get('space', 'unknown')}"})
    data = ModelCardData(library_name="pytorch", tags=tags, model_name=name if results else None,
                         eval_results=results or None, datasets=datasets or None)
    table = "\n".join(f"| {what} | {value} |" for what, value in card_facts(config))
    commands = [c for c in (s.get("command"), "arch-gpt export RUN_DIR --out OUT_DIR") if c]
    size = config.get("input_size") or [3, 32, 32]
    body = f"""
# {name}

A convolutional network found by neural architecture search with arch-gpt (GPT-NAS: an evolutionary search in
which a small GPT, trained on CNN architectures, reconstructs part of every new candidate). This folder needs
only `torch` and `safetensors` (and `huggingface_hub` to download, save or push it): `model.py` rebuilds the
network from `config.json` and loads `model.safetensors`.

## How it was found

| | |
|---|---|
{table}

```bash
{chr(10).join(commands)}
```

## Use

```python
import sys, torch
sys.path.insert(0, "path/to/this/folder")        # where model.py is (hf download REPO --local-dir ...)
from model import SearchedNetwork
model = SearchedNetwork.from_pretrained("path/to/this/folder")   # or load_model() from model.py
logits = model(torch.randn(1, {size[0]}, {size[1]}, {size[2]}))   # (batch, channels, height, width)
```

## Files

- `config.json`: the network (`network`: its layer modules and the calls between them) and how it was found
- `model.safetensors`: the weights, under the names of the search's own module
- `model.py`: `SearchedNetwork`, a `torch.nn.Module` (and `huggingface_hub.PyTorchModelHubMixin`)
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")
