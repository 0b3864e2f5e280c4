"""Where checkpoints come from and go to: bundled names → package folders, Hub/local resolution,
the training record kept in each checkpoint, model-card rendering and pushing a folder to the Hub.

The card template is ``model_cards/arch_gpt.md`` at the repository root. ``pip install .`` installs it
as data under ``<prefix>/share/arch-gpt/model_cards/`` (setup.cfg ``data_files``); :func:`template_path`
looks in the source tree first, then in those installed locations.
"""
from __future__ import annotations

import json
import os
import site
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from huggingface_hub import HfApi, ModelCard, ModelCardData, snapshot_download

from arch_gpt.io import atomic_write_text
from arch_gpt.errors import UserInputError

BUNDLED_MODELS: tuple[str, ...] = ("arch-gpt-nasbench101",)
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
TRAINING_RECORD_FILE = "arch_gpt_training.json"
TEMPLATE_NAME = "arch_gpt.md"
_INSTALLED_CARD_DIR = Path("share") / "arch-gpt" / "model_cards"


class CheckpointNotFoundError(UserInputError):
    """A model name or path that is neither a bundled name, a local checkpoint folder nor a Hub id."""


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
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [StageRecord(**entry) for entry in data["stages"]]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
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
