"""Where checkpoints come from and go to: bundled names → package folders, Hub/local resolution, checks of a
checkpoint's files (config fields, safetensors weights), the training record kept in each checkpoint, model-card
rendering and pushing a folder to the Hub.

Weights are only ever read from ``model.safetensors``: a pickled ``pytorch_model.bin`` (or ``.pt``/``.pth``/``.pkl``)
is never loaded, because unpickling a file can run code. A checkpoint file that is missing, corrupted, truncated
or disagrees with its ``config.json`` is a :class:`CheckpointFileError` naming the file (and field or tensor).

The card template is ``model_cards/arch_gpt.md`` at the repository root. ``pip install .`` installs it
as data under ``<prefix>/share/arch-gpt/model_cards/`` (setup.cfg ``data_files``); :func:`template_path`
looks in the source tree first, then in those installed locations. A card carries the training record's held-out
metrics as ``model-index`` eval results (:func:`eval_results`), ``datasets``/``base_model`` when the caller names
Hub ids, an example that runs offline for the bundled checkpoint, and no machine path (:func:`public_text`).
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import site
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Mapping, Sequence

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, snapshot_download

from arch_gpt.io import _UMASK, atomic_write_text, read_json  # _UMASK: the process umask, read once by arch_gpt.io
from arch_gpt.errors import UserInputError

BUNDLED_MODELS: tuple[str, ...] = ("arch-gpt-nasbench101", "arch-gpt-all-spaces")
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


def load_verified(model_class: Any, folder: Path, config: Any, expected: Mapping[str, tuple[int, ...]],
                  tied: Iterable[str] = ()) -> Any:
    """``model_class.from_pretrained(folder)`` from safetensors only, after the file's tensor shapes are checked
    against ``expected`` and before its weights are checked finite: every failure a CheckpointFileError."""
    weights = folder / WEIGHTS_FILE
    check_weight_shapes(weights, expected, tied)
    try:
        model = model_class.from_pretrained(str(folder), config=config, use_safetensors=True)
    except (OSError, ValueError, RuntimeError) as err:
        raise CheckpointFileError(f"{weights}: cannot be loaded ({str(err).strip().splitlines()[0]})") from None
    check_finite(dict(model.named_parameters()), weights)
    return model


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
    """What the model card says about one checkpoint besides its training stages. ``datasets`` (Hub dataset ids)
    and ``base_model`` (a Hub model id) go into the card's metadata; ``example_tokens`` are layer tokens of the
    vocabulary that the card's example feeds the model."""
    model_id: str
    n_layer: int
    n_head: int
    n_embd: int
    window: int
    vocab_size: int
    n_parameters: int
    corpus: str
    block_labels: list[str] = field(default_factory=list)
    example_tokens: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    base_model: str | None = None


PIPELINE_TASK = "architecture-completion"
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
# An absolute or home path: starts at a boundary ("=", space, quote...), never inside a URL or a relative path.
_MACHINE_PATH = re.compile(r"(?<![\w.:/~-])~?/[^\s'\"`,;()\[\]]+")
_GPT_METRICS = (("next_layer_top1", "accuracy", "top-1", "Next-layer top-1 accuracy"),
                ("next_layer_top5", "accuracy", "top-5", "Next-layer top-5 accuracy"),
                ("perplexity", "perplexity", None, "Next-layer perplexity"))
_BLOCK_METRICS = (("block_accuracy", "accuracy", None, "Block-class accuracy"),)
_CORPUS_NAMES = {"nasbench101": "NAS-Bench-101 networks", "torchvision": "torchvision CNNs (GPT-NAS Table 2)"}


def hub_id_problem(value: Any) -> str | None:
    """Why ``value`` is not a Hub repository id ``owner/name`` (None when it is one)."""
    if not isinstance(value, str) or not _HUB_ID.fullmatch(value) or ".." in value or value.endswith(".git"):
        return f"expected a Hub id 'owner/name', got {value!r}"
    return None


def check_card_metadata(datasets: Sequence[str], base_model: str | None) -> None:
    """UserInputError naming ``datasets`` or ``base_model`` unless they are Hub ids (the Hub refuses other values)."""
    if isinstance(datasets, str) or not isinstance(datasets, Sequence):
        raise UserInputError(f"datasets: expected a list of Hub dataset ids, got {type(datasets).__name__}")
    for name, values in (("datasets", datasets), ("base_model", [] if base_model is None else [base_model])):
        for value in values:
            if hub_id_problem(value):
                raise UserInputError(f"{name}: {hub_id_problem(value)}")


def public_text(text: str, roots: Sequence[str] = ()) -> str:
    """``text`` without machine paths, for a card: each of ``roots`` (absolute folders, e.g. corpus folders)
    becomes its last part wherever it starts a path; any other absolute or ``~/`` path becomes its last part."""
    for root in sorted({r.rstrip("/") for r in roots if r.startswith(("/", "~/")) and r.rstrip("/")},
                       key=len, reverse=True):
        text = re.sub(re.escape(root) + r"(?=/|$|[^\w.-])", Path(root).name, text)
    return _MACHINE_PATH.sub(lambda m: Path(m.group(0)).name or ".", text)


def public_stages(stages: Sequence[StageRecord]) -> list[StageRecord]:
    """The stages as a card shows them: data folders, commands and data lines without machine paths."""
    roots = [s.data_dir for s in stages] + [str(s.hyperparameters.get("start_checkpoint", "")) for s in stages]

    def clean(value: Any) -> Any:
        return public_text(value, roots) if isinstance(value, str) else value

    return [StageRecord(stage=s.stage, command=clean(s.command), data_dir=clean(s.data_dir),
                        data_summary=clean(s.data_summary),
                        hyperparameters={k: clean(v) for k, v in s.hyperparameters.items()}, metrics=dict(s.metrics))
            for s in stages]


def _corpus_and_split(stage: StageRecord) -> tuple[str, str]:
    """The corpus kind (``corpus: X`` of the data line, else the folder's name) and the held-out split's name."""
    corpus = re.search(r"(?:^|; )corpus: ([\w.+-]+)", stage.data_summary)
    split = re.search(r"\('([\w.-]+)'", stage.data_summary)
    name = corpus.group(1) if corpus else Path(stage.data_dir.rstrip("/")).name or "corpus"
    return name, split.group(1) if split else "validation"


def eval_results(stages: Sequence[StageRecord]) -> list[EvalResult]:
    """The ``model-index`` results of a card: each stage's held-out metrics from the training record (next-layer
    top-1, top-5 and perplexity of the GPT stages, accuracy of the block classifier), on that stage's corpus split.
    A metric's name says its stage: the numbers of earlier stages were measured on that stage's checkpoint."""
    results = []
    for stage in stages:
        blocks = stage.stage == "block_classifier"
        corpus, split = _corpus_and_split(stage)
        for key, metric_type, config, pretty in _BLOCK_METRICS if blocks else _GPT_METRICS:
            value = stage.metrics.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            results.append(EvalResult(
                task_type="text-classification" if blocks else "text-generation",
                task_name="Block classification" if blocks else "Next-layer prediction",
                dataset_type=f"arch-gpt-{corpus}",
                dataset_name=f"arch-gpt corpus: {_CORPUS_NAMES.get(corpus, corpus)}, held-out architectures",
                dataset_config="blocks" if blocks else "lm", dataset_split=split, metric_type=metric_type,
                metric_config=config, metric_name=f"{pretty} ({stage.stage} stage)",
                metric_value=round(float(value), 4)))
    return results


def render_model_card(info: CardInfo, stages: Sequence[StageRecord]) -> ModelCard:
    """A ``ModelCard`` from the template: license, tags, ``model-index`` eval results, ``datasets``/``base_model``
    (when given), hyperparameters, metrics vs baselines, an offline example, use and limits. No machine paths:
    folders are shown by name. ``pipeline_tag`` is left out: the stock ``text-generation`` pipeline does not handle
    the layer tokens, and the one that does (:data:`PIPELINE_TASK`) is not a Hub task."""
    check_card_metadata(info.datasets, info.base_model)
    card_data = ModelCardData(
        license="apache-2.0", library_name="transformers", model_name=info.model_id,
        tags=["arch-gpt", "gpt-nas", "neural-architecture-search", "gpt2", "safetensors", PIPELINE_TASK],
        datasets=list(info.datasets) or None, base_model=info.base_model, eval_results=eval_results(stages) or None,
    )
    shown = CardInfo(**{**asdict(info), "corpus": public_text(info.corpus)})
    return ModelCard.from_template(card_data, template_path=str(template_path()), info=shown,
                                   stages=public_stages(stages), bundled=info.model_id in BUNDLED_MODELS,
                                   task=PIPELINE_TASK)


# ----------------------------------------------------------------------------- push

def push_folder(folder: str | os.PathLike, repo_id: str, *, token: str | None = None, private: bool | None = None,
                commit_message: str = "Upload arch-gpt checkpoint") -> str:
    """Create the model repo if needed, upload the folder in one commit (standard ``HfApi`` calls); returns its URL."""
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                             commit_message=commit_message)
    return str(info.commit_url)
