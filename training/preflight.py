"""Checks that run after the arguments are parsed and before any work, shared by the three training scripts:
the output folders (nothing of the user's overwritten without ``--overwrite_output_dir``), the checkpoint to
resume from, and loading the start checkpoint with one clear error naming ``--model_name_or_path``.

Every failure is a :class:`~arch_gpt.errors.UserInputError` naming the flag and the path.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from transformers import PreTrainedModel
from transformers.trainer_utils import get_last_checkpoint

from arch_gpt.errors import UserInputError
from arch_gpt.hub import resolve_checkpoint
from arch_gpt.io import read_json
from arch_gpt.modeling import ArchGPT
from arch_gpt.training.arguments import ArchGPTTrainingArguments, CheckpointArguments

TRAINER_STATE = "trainer_state.json"
# Config keys that fix the shape of the weights: a resumed checkpoint must agree with the new model on them.
SHAPE_KEYS = ("vocab_size", "n_embd", "n_layer", "n_head", "n_positions", "embed_dim", "hidden_size",
              "num_hidden_layers", "window", "label_names")
# What a checkpoint that is not what it claims raises while loading (weights, configs, pickles).
_LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError, pickle.UnpicklingError,
                SafetensorError)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def check_output_folder(flag: str, folder: str | os.PathLike, overwrite: bool, resuming: bool = False) -> Path:
    """``folder`` can be written: not a file nor under one, writable, and empty (or new) unless ``overwrite`` or,
    for the Trainer's output_dir, ``resuming`` (the run's own checkpoints live there)."""
    path = Path(folder).expanduser()
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        where = "is an existing file" if existing == path else f"is under {existing}, which is a file"
        raise UserInputError(f"{flag}: {path} {where}; give a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserInputError(f"{flag}: {existing}: no permission to write there")
    if path.is_dir() and any(path.iterdir()) and not overwrite and not resuming:
        hint = (" or --resume_from_checkpoint last to continue its run"
                if flag == "--output_dir" and get_last_checkpoint(str(path)) else "")
        raise UserInputError(f"{flag}: {path} exists and is not empty; pass --overwrite_output_dir to write into "
                             f"it{hint}, or choose a new folder")
    return path


def resume_checkpoint(training_args: ArchGPTTrainingArguments) -> str | None:
    """The Trainer checkpoint to resume from (a ``checkpoint-*`` folder, or 'last' = the newest in output_dir),
    checked to be one: a folder with a readable ``trainer_state.json``."""
    value = training_args.resume_from_checkpoint
    if value is None:
        return None
    if value == "last":
        output = Path(training_args.output_dir)
        last = get_last_checkpoint(str(output)) if output.is_dir() else None
        if last is None:
            raise UserInputError(f"--resume_from_checkpoint last: no checkpoint-* folder in {output}")
        value = last
    folder = Path(value)
    if not folder.is_dir():
        raise UserInputError(f"--resume_from_checkpoint: {value}: no such checkpoint folder")
    state = read_json(folder / TRAINER_STATE) if (folder / TRAINER_STATE).is_file() else None
    if not isinstance(state, dict) or not isinstance(state.get("global_step"), int):
        raise UserInputError(f"--resume_from_checkpoint: {folder}: not a Trainer checkpoint folder "
                             f"({TRAINER_STATE} missing or without 'global_step')")
    return str(folder)


def check_resume_matches(checkpoint: str, model: PreTrainedModel) -> None:
    """The checkpoint's ``config.json`` agrees with ``model`` on every shape key (else loading its weights fails)."""
    path = Path(checkpoint) / "config.json"
    if not path.is_file():
        raise UserInputError(f"--resume_from_checkpoint: {path}: missing (not a checkpoint of this script)")
    saved = read_json(path)
    if not isinstance(saved, dict):
        raise UserInputError(f"--resume_from_checkpoint: {path}: not a JSON object")
    ours = model.config.to_dict()
    for key in SHAPE_KEYS:
        if key in ours and key in saved and saved[key] != ours[key]:
            raise UserInputError(f"--resume_from_checkpoint: {path}: key '{key}' is {saved[key]!r}, but this run's "
                                 f"model has {ours[key]!r}; resume with the arguments and corpus of that run")
    weights = Path(checkpoint) / "model.safetensors"
    if weights.is_file():
        try:
            with safe_open(str(weights), framework="pt") as handle:
                missing = set(model.state_dict()) - set(handle.keys())
        except (SafetensorError, OSError, ValueError) as err:
            raise UserInputError(f"--resume_from_checkpoint: {weights}: not readable safetensors weights "
                                 f"({_first_line(err)})") from None
        tied = {"lm_head.weight"}  # tied to the token embeddings, not stored separately
        if missing - tied:
            raise UserInputError(f"--resume_from_checkpoint: {weights}: lacks {', '.join(sorted(missing - tied)[:3])}"
                                 f" (weights of another model)")


def check_run_arguments(parsed: tuple[Any, ...]) -> None:
    """Every path check of a parsed argument tuple, before any data is read: output_dir and final_dir may be
    written, and the checkpoint to resume from exists."""
    training_args = next(a for a in parsed if isinstance(a, ArchGPTTrainingArguments))
    ckpt_args = next((a for a in parsed if isinstance(a, CheckpointArguments)), None)
    overwrite = training_args.overwrite_output_dir
    resuming = training_args.resume_from_checkpoint is not None
    output = check_output_folder("--output_dir", training_args.output_dir, overwrite, resuming)
    if ckpt_args is not None and ckpt_args.final_dir:
        final = Path(ckpt_args.final_dir).expanduser()
        if final.resolve() != output.resolve():
            check_output_folder("--final_dir", final, overwrite)
    resume_checkpoint(training_args)


def load_checkpoint(name_or_path: str, purpose: str) -> ArchGPT:
    """``ArchGPT.from_pretrained(name_or_path)`` on the CPU; any failure is one UserInputError naming
    ``--model_name_or_path`` (``purpose`` says what the checkpoint is for when it is missing)."""
    flag = "--model_name_or_path"
    if not name_or_path:
        raise UserInputError(f"{flag}: required ({purpose})")
    try:
        folder = resolve_checkpoint(name_or_path)
        config = read_json(folder / "config.json")
        if not isinstance(config, dict) or config.get("model_type") != "gpt2":
            kind = config.get("model_type") if isinstance(config, dict) else type(config).__name__
            raise UserInputError(f"{folder / 'config.json'}: key 'model_type': an ArchGPT checkpoint is 'gpt2', "
                                 f"got {kind!r}")
        return ArchGPT.from_pretrained(folder, device="cpu")
    except UserInputError as err:
        raise UserInputError(f"{flag}: {err}") from None
    except _LOAD_ERRORS as err:
        raise UserInputError(f"{flag}: {name_or_path}: not a loadable ArchGPT checkpoint ({_first_line(err)})") \
            from None
