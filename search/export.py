"""The best network of a search as a folder you can share (behind ``arch-gpt export``).

Export writes ``model.py`` (a verbatim copy of :mod:`arch_gpt.standalone`: it imports torch and safetensors,
huggingface_hub if present, never arch_gpt), ``config.json`` (the network ``model.py`` rebuilds, traced from the
space's own module, and how it was found), ``README.md`` (a model card with ``model-index`` where the data is
known), a copy of ``best.arch`` and, when the run (or a later ``arch-gpt retrain``) saved trained weights,
``model.safetensors``: the same tensors under the same names. ``onnx=True`` adds ``model.onnx``. The folder loads
with ``SearchedNetwork.from_pretrained(folder)`` (or ``load_model()`` of its model.py) and pushes with
``push_to_hub``.

Everything is read and checked before anything is written, and errors name the file and key (see
:mod:`arch_gpt.search.run_config`): weights must be safetensors of this architecture, and the rebuilt network
must compute what the space's module computes. The destination may be an earlier export (its files are
replaced, a stale ``model.safetensors``/``best.arch``/``model.onnx`` removed, any other file kept) but not a
folder whose ``config.json``/``model.py``/``README.md`` some other tool wrote, nor the run folder.
"""
from __future__ import annotations

import importlib.util
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import save as save_safetensors
from torch import nn

from arch_gpt import standalone
from arch_gpt.errors import UserInputError
from arch_gpt.io import atomic_write_bytes, read_json
from arch_gpt.search.run_config import (  # noqa: F401  (re-exported: the names export offered before)
    CONFIG_KEYS, FORMAT, ExportError, _located, ModelConfig, best_genome_record, check_fitness, config_from_dict,
    load_run_config, read_object, rebuild, space_and_genome, standalone_network, write_best_genome,
)
from arch_gpt.search.run_info import GENOME_FILE, WEIGHT_FILES, find_weights, search_info  # noqa: F401
from arch_gpt.search.spaces.checks import MAX_CLASSES, check_int

EXPORT_FILES = ("config.json", "model.py", "README.md", "best.arch", "model.safetensors", "model.onnx")
OPTIONAL_FILES = ("best.arch", "model.safetensors", "model.onnx")  # removed from an earlier export when not written
ONNX_INPUT, ONNX_OUTPUT = "pixel_values", "logits"


def build_from_config(path: str | Path) -> nn.Module:
    """The space's module described by an exported ``config.json`` (what model.py of arch-gpt 0.1 called)."""
    path = Path(path)
    data = {k: v for k, v in read_object(path).items() if k != "search"}
    return rebuild(config_from_dict(data, path))[2]


def load_weights(path: Path, module: nn.Module, data: bytes | None = None) -> bytes:
    """Load the safetensors file ``path`` (or its bytes ``data``) into ``module``; returns the bytes. ExportError
    names the file when it is unreadable, not safetensors (empty, truncated, pickled) or another architecture's."""
    try:
        data = path.read_bytes() if data is None else data
    except OSError as err:
        raise ExportError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        standalone.load_weights(module, path, data)
    except ValueError as err:  # names the file: not safetensors (empty, truncated, pickled) or other tensors
        raise ExportError(str(err)) from None
    return data


def check_out_dir(out: Path, param: str = "out_dir") -> None:
    """Refuse an output folder that is a file or lies under a file (before anything is written)."""
    if out.exists() and not out.is_dir():
        raise UserInputError(f"{param}: {out} is a file, not a folder")
    for parent in out.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise UserInputError(f"{param}: {out} lies under {parent}, which is a file")
            return


def make_out_dir(out: Path, param: str = "out_dir") -> None:
    """Create the output folder (and its parents); UserInputError naming ``param`` if that is not possible."""
    check_out_dir(out, param)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserInputError(f"{param}: cannot create {out} ({err.strerror or err})") from None


def _is_export(config_path: Path) -> bool:
    try:
        return config_path.is_file() and read_json(config_path).get("format") == FORMAT
    except (UserInputError, OSError, AttributeError):
        return False


def _check_export_dir(out: Path, run_dir: Path, weights: Path | None) -> None:
    """The destination is a new folder or an earlier export, never the run folder or where the weights are."""
    check_out_dir(out)
    target, run = out.resolve(), run_dir.resolve()
    if target == run or target in run.parents:
        raise ExportError(f"out_dir: {out} is the run folder or contains it; export into a folder of its own")
    if weights is not None and target == weights.parent.resolve():
        raise ExportError(f"out_dir: {out} holds the weights being exported ({weights.name}); choose another folder")
    existing = [name for name in EXPORT_FILES if (out / name).exists() or (out / name).is_symlink()]
    for name in existing:
        if (out / name).is_dir():
            raise ExportError(f"out_dir: {out / name} is a folder; export writes a file there")
    if existing and not _is_export(out / "config.json"):
        raise ExportError(f"out_dir: {out} holds {', '.join(existing)} not written by arch-gpt export (no config.json "
                          f"of format {FORMAT}); choose a new or empty folder")


def _retrained(config: ModelConfig, metrics_path: Path) -> ModelConfig:
    """The config for weights retrained on another dataset (``metrics.json`` records its classes)."""
    if not metrics_path.is_file():
        return config
    metrics = read_object(metrics_path)
    classes = metrics.get("num_classes")
    if classes is None:
        return config
    with _located(metrics_path, "num_classes"):
        classes = check_int("num_classes", classes, 1, MAX_CLASSES)
    if classes == config.num_classes:
        return config
    space_config = {**config.space_config, **({"num_classes": classes} if "num_classes" in config.space_config
                                              else {})}
    return replace(config, num_classes=classes, space_config=space_config)


def check_onnx() -> None:
    """ExportError naming ``onnx`` unless torch.onnx.export can write a file here (it needs the onnx package)."""
    if importlib.util.find_spec("onnx") is None:
        raise ExportError("onnx: writing model.onnx needs the onnx package, which is not installed "
                          "(pip install onnx, or pip install 'arch-gpt[onnx]')")


def onnx_bytes(model: standalone.SearchedNetwork) -> bytes:
    """``model`` as ONNX through ``torch.onnx.export`` (TorchScript exporter: it needs only the onnx package):
    input ``pixel_values`` and output ``logits``, both with a dynamic batch dimension."""
    check_onnx()
    was_training = model.training
    model.eval()
    try:
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = Path(tmp) / "model.onnx"
            torch.onnx.export(model, (model.example_input(1),), str(path), input_names=[ONNX_INPUT],
                              output_names=[ONNX_OUTPUT], dynamic_axes={ONNX_INPUT: {0: "batch"},
                                                                        ONNX_OUTPUT: {0: "batch"}},
                              dynamo=False)
            return path.read_bytes()
    finally:
        model.train(was_training)


def export_run(run_dir: str | Path, out_dir: str | Path | None = None, onnx: bool = False) -> Path:
    """Write model.py, config.json, README.md, best.arch, (if trained) model.safetensors and (``onnx``) model.onnx;
    returns the folder. Everything is checked before the first write; in an earlier export, the optional files this
    export does not write are removed, other files kept."""
    if onnx:
        check_onnx()
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    weights = find_weights(run_dir)
    if weights is not None and weights.parent.name == "retrain":
        config = _retrained(config, weights.parent / "metrics.json")
    space, _, module = rebuild(config)
    if weights is not None:
        load_weights(weights, module)
    network = standalone_network(config, space, module, search_info(run_dir, weights, ExportError))
    files: dict[str, bytes] = {
        "config.json": standalone.config_text(network.config).encode(),
        "model.py": Path(standalone.__file__).read_bytes(),
        "README.md": str(standalone.model_card(network.config)).encode(),
    }
    arch_path = run_dir / "best.arch"
    try:
        if arch_path.is_file():
            files["best.arch"] = arch_path.read_bytes()
    except OSError as err:
        raise ExportError(f"{arch_path}: cannot read ({err.strerror or err})") from None
    if onnx:
        files["model.onnx"] = onnx_bytes(network)
    if weights is not None:  # last: an interrupted export leaves config.json with its weights or none
        state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
        files["model.safetensors"] = save_safetensors(state, metadata={"format": "pt"})
    out = Path(out_dir) if out_dir is not None else run_dir / "export"
    _check_export_dir(out, run_dir, weights)
    make_out_dir(out)
    for name in OPTIONAL_FILES:  # stale files first
        if name not in files and ((out / name).exists() or (out / name).is_symlink()):
            (out / name).unlink()
    for name, data in files.items():
        atomic_write_bytes(out / name, data)
    return out

