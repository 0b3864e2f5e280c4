"""Where checkpoints come from and go to: bundled names → package folders, Hub/local resolution, checks of a
checkpoint's files (config fields, safetensors weights), the training record kept in each checkpoint, model-card
rendering and pushing a folder to the Hub.

Weights are only ever read from ``model.safetensors``: a pickled ``pytorch_model.bin`` (or ``.pt``/``.pth``/``.pkl``)
is never loaded, because unpickling a file can run code. A checkpoint file that is missing, corrupted, truncated
or disagrees with its ``config.json`` is a :class:`CheckpointFileError` naming the file (and field or tensor).

The card template is ``model_cards/arch_gpt.md`` at the repository root. ``pip install .`` installs it
as data under ``<prefix>/share/arch-gpt/model_cards/`` (setup.cfg ``data_files``); :func:`template_path`
looks in the source tree first, then in those installed locations.
"""
from __future__ import annotations

import json
import os
import shutil
import site
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Mapping, Sequence

from huggingface_hub import HfApi, ModelCard, ModelCardData, snapshot_download

from arch_gpt.io import _UMASK, atomic_write_text, read_json  # _UMASK: the process umask, read once by arch_gpt.io
from arch_gpt.errors import UserInputError

BUNDLED_MODELS: tuple[str, ...] = ("arch-gpt-nasbench101",)
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
TRAINING_RECORD_FILE = "arch_gpt_training.json"
TEMPLATE_NAME = "arch_gpt.md"
_INSTALLED_CARD_DIR = Path("share") / "arch-gpt" / "model_cards"


WEIGHTS_FILE = "model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


class CheckpointNotFoundError(UserInputError):
    """A model name or path that is neither a bundled name, a local checkpoint folder nor a Hub id."""


class CheckpointFileError(UserInputError):
    """A checkpoint file that is missing, not what it claims (corrupted, truncated, pickled) or that disagrees
    with its config or tokenizer; the message names the file and the field or tensor."""


def pretrained_path(name: str) -> Path:
    """The folder of a bundled checkpoint, e.g. ``pretrained_path("arch-gpt-nasbench101")``."""
    if name not in BUNDLED_MODELS:
        raise CheckpointNotFoundError(f"model name {name!r}: not a bundled model "
                                      f"(bundled: {', '.join(BUNDLED_MODELS)})")
    path = PRETRAINED_DIR / name
    if not (path / "config.json").is_file():
        raise CheckpointNotFoundError(f"{path}: bundled model {name!r} is missing from this installation "
                                      "(no config.json)")
    return path


def resolve_checkpoint(name_or_path: str | os.PathLike, *, revision: str | None = None,
                       token: str | bool | None = None, cache_dir: str | None = None) -> Path:
    """A local folder for a bundled name, a local path or a Hub id (``user/repo``, via ``snapshot_download``)."""
    text = str(name_or_path)
    if text in BUNDLED_MODELS:
        return pretrained_path(text)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CheckpointNotFoundError(f"{path}: not a checkpoint folder (no config.json)")
        return path
    if text.count("/") != 1 or path.exists() or text.startswith((".", "/", "~")):
        raise CheckpointNotFoundError(f"{text!r}: no such checkpoint folder, and not a Hub id 'user/repo' "
                                      f"(bundled: {', '.join(BUNDLED_MODELS)})")
    return Path(snapshot_download(text, revision=revision, token=token, cache_dir=cache_dir))


# ----------------------------------------------------------------------------- checkpoint files

def read_config(folder: str | os.PathLike, model_type: str) -> dict[str, Any]:
    """``folder/config.json`` as a dict whose ``model_type`` is ``model_type`` (else CheckpointFileError)."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise CheckpointFileError(f"{path}: file not found (not a checkpoint folder)")
    data = read_json(path)
    if not isinstance(data, dict):
        raise CheckpointFileError(f"{path}: expected a JSON object, got {type(data).__name__}")
    if data.get("model_type") != model_type:
        raise CheckpointFileError(f"{path}: field 'model_type': expected {model_type!r}, "
                                  f"got {data.get('model_type')!r}")
    return data


def config_int(config: Mapping[str, Any], path: str | os.PathLike, key: str, minimum: int = 1,
               maximum: int = 2 ** 24, default: int | None = None) -> int:
    """An integer field of a loaded config in ``minimum..maximum`` (``default`` when absent), else
    CheckpointFileError naming ``path`` and the field."""
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise CheckpointFileError(f"{path}: field '{key}': must be an integer from {minimum} to {maximum}, "
                                  f"got {value!r}")
    return value


def config_rate(config: Mapping[str, Any], path: str | os.PathLike, key: str, default: float = 0.0) -> float:
    """A probability field (dropout) of a loaded config in [0, 1), else CheckpointFileError naming the field."""
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise CheckpointFileError(f"{path}: field '{key}': must be a number in [0, 1), got {value!r}")
    return float(value)


def safetensors_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape of a safetensors file, read from its header (which also proves the file is whole).

    A missing file (with a hint when only pickled weights lie beside it), an empty, truncated or foreign file is
    a CheckpointFileError naming it; pickles are never opened."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        pickled = sorted(p.name for p in path.parent.glob("*") if p.suffix in PICKLE_SUFFIXES)
        hint = (f"; {', '.join(pickled)} holds pickled weights, which are never loaded (unpickling can run code): "
                "save the model with safetensors" if pickled else "")
        raise CheckpointFileError(f"{path}: file not found{hint}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            return {name: tuple(fh.get_slice(name).get_shape()) for name in fh.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointFileError(f"{path}: not a valid safetensors file (empty, truncated or another format: "
                                  f"{first})") from None


def check_weight_shapes(path: str | os.PathLike, expected: Mapping[str, tuple[int, ...]],
                        may_be_absent: Collection[str] = ()) -> None:
    """CheckpointFileError unless the safetensors file at ``path`` holds exactly the tensors of ``expected``
    (name → shape from the config), apart from ``may_be_absent`` (tied weights)."""
    found = safetensors_shapes(path)
    for name, shape in expected.items():
        if name not in found and name not in may_be_absent:
            raise CheckpointFileError(f"{path}: tensor '{name}' is missing: these weights are not those of the "
                                      "model config.json describes")
        if name in found and tuple(found[name]) != tuple(shape):
            raise CheckpointFileError(f"{path}: tensor '{name}' has shape {list(found[name])}, but config.json "
                                      f"gives {list(shape)} (vocab_size, n_embd, ... disagree with the weights)")
    extra = sorted(set(found) - set(expected))
    if extra:
        raise CheckpointFileError(f"{path}: unexpected tensor '{extra[0]}' ({len(extra)} in all): these weights "
                                  "belong to another model")


def check_finite(named_tensors: Mapping[str, Any] | Any, path: str | os.PathLike) -> None:
    """CheckpointFileError naming ``path`` and the tensor when a loaded weight is NaN or infinite."""
    import torch

    items = named_tensors.items() if isinstance(named_tensors, Mapping) else named_tensors
    for name, tensor in items:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointFileError(f"{path}: tensor '{name}' holds NaN or infinite values")


def save_staged(directory: str | os.PathLike, write: Callable[[str], Any]) -> Path:
    """Run ``write(folder)`` (a library's ``save_pretrained``) into a fresh staging folder inside ``directory``
    (made if missing), then rename each file it wrote over its name in ``directory``: every file is replaced whole
    (a crash never leaves half a ``model.safetensors``) with the umask's mode; the staging folder is removed.
    A ``directory`` that is not a path, or that is or lies under a file, is a CheckpointFileError."""
    if not isinstance(directory, (str, os.PathLike)):
        raise CheckpointFileError(f"directory: expected a folder path, got {type(directory).__name__}")
    directory = Path(directory)
    blocking = next((p for p in (directory, *directory.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise CheckpointFileError(f"{blocking}: is a file, not a folder, so {directory} cannot hold a checkpoint")
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=directory))
    try:
        write(str(staging))
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = directory / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o666 & ~_UMASK)  # libraries may create 0600 files; a saved file gets the usual mode
            os.replace(path, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


# ----------------------------------------------------------------------------- training record

@dataclass
class StageRecord:
    """One training stage of a checkpoint (pretrain, finetune, block_classifier): how to redo it, its results."""
    stage: str
    command: str
    data_dir: str
    data_summary: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def load_training_record(folder: str | os.PathLike) -> list[StageRecord]:
    """The stages stored in a checkpoint folder (empty when it has no record)."""
    path = Path(folder) / TRAINING_RECORD_FILE
    if not path.is_file():
        return []
    data = read_json(path)
    stages = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(stages, list) or not all(isinstance(entry, dict) for entry in stages):
        raise UserInputError(f"{path}: key 'stages': expected a list of stage objects")
    try:
        return [StageRecord(**entry) for entry in stages]
    except TypeError as err:
        raise UserInputError(f"{path}: key 'stages': not a valid training record ({err})") from None


def save_training_record(folder: str | os.PathLike, stages: Sequence[StageRecord]) -> Path:
    """Write the stages atomically as JSON beside the weights."""
    path = Path(folder) / TRAINING_RECORD_FILE
    atomic_write_text(path, json.dumps({"stages": [asdict(s) for s in stages]}, indent=1) + "\n")
    return path


# ----------------------------------------------------------------------------- model card

def template_path() -> Path:
    """The model-card template: the source tree's ``model_cards/`` first, then installed data folders."""
    candidates = [Path(__file__).resolve().parent.parent / "model_cards" / TEMPLATE_NAME]
    for prefix in (sys.prefix, sys.base_prefix, site.getuserbase()):
        candidates.append(Path(prefix) / _INSTALLED_CARD_DIR / TEMPLATE_NAME)
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"model card template {TEMPLATE_NAME} not found in: {', '.join(map(str, candidates))}")


@dataclass
class CardInfo:
    """What the model card says about one checkpoint besides its training stages."""
    model_id: str
    n_layer: int
    n_head: int
    n_embd: int
    window: int
    vocab_size: int
    n_parameters: int
    corpus: str
    block_labels: list[str] = field(default_factory=list)


def render_model_card(info: CardInfo, stages: Sequence[StageRecord]) -> ModelCard:
    """A ``ModelCard`` from the template: license, tags, data, hyperparameters, metrics vs baselines, use, limits."""
    card_data = ModelCardData(
        license="apache-2.0", library_name="transformers", pipeline_tag="text-generation", model_name=info.model_id,
        tags=["arch-gpt", "gpt-nas", "neural-architecture-search", "gpt2", "safetensors"],
    )
    return ModelCard.from_template(card_data, template_path=str(template_path()), info=info, stages=list(stages))


# ----------------------------------------------------------------------------- push

def push_folder(folder: str | os.PathLike, repo_id: str, *, token: str | None = None, private: bool | None = None,
                commit_message: str = "Upload arch-gpt checkpoint") -> str:
    """Create the model repo if needed, upload the folder in one commit (standard ``HfApi`` calls); returns its URL."""
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                             commit_message=commit_message)
    return str(info.commit_url)
