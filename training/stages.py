"""The flow shared by the three training entry points, as in the transformers example scripts: parse arguments,
configure logging (:func:`training_logging`), run the ``Trainer`` (with resume; top-1/top-5 at every evaluation
through ``compute_metrics``), ``save_metrics("train")`` + ``save_state()``, evaluate on the held-out split
(``save_metrics("eval")``), record the stage in the checkpoint, save it with its model card, push it.

``output_dir`` ends with the Trainer's ``checkpoint-*`` folders, ``train_results.json``, ``eval_results.json``,
``all_results.json`` and ``trainer_state.json`` (its ``log_history`` holds every logged loss and evaluation).
Pushing is done once, at the end, with ``ArchGPT.push_to_hub`` (model + tokenizer + block classifier + card), so the
Trainer's own per-checkpoint pushing is switched off; ``--push_to_hub --hub_model_id user/repo`` still select it.
"""
from __future__ import annotations

import logging
import shlex
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import datasets
import transformers
from datasets import DatasetDict
from transformers import HfArgumentParser, PreTrainedModel, default_data_collator

from arch_gpt.errors import UserInputError, run_entry_point
from arch_gpt.hub import StageRecord
from arch_gpt.modeling import ArchGPT
from arch_gpt.training.arguments import ArchGPTTrainingArguments, CheckpointArguments, DataArguments
from arch_gpt.training.corpus_loading import (
    WINDOW_COLUMNS, corpus_summary, heldout_split, select_columns, subsample,
)
from arch_gpt.training.metrics import NEXT_LAYER_METRICS, Baselines, TrainerMetrics, next_token_arrays
from arch_gpt.training.preflight import check_resume_matches, check_run_arguments, resume_checkpoint
from arch_gpt.training.weighted_trainer import TimeBudgetCallback, WeightedLossTrainer

logger = logging.getLogger(__name__)


def parse(types: tuple[type, ...], args: Sequence[str] | None, module: str | None = None):
    """Parse ``args`` (default ``sys.argv[1:]``) into the dataclasses, whose ``__post_init__`` checks the values,
    then check the paths (:func:`check_run_arguments`); also returns the argument list used. Unknown flags are
    argparse's usage error (exit 2); a value the dataclasses refuse is a UserInputError naming its flag."""
    args = list(sys.argv[1:] if args is None else args)
    parser = HfArgumentParser(types, prog=f"python -m {module}" if module else None,
                              usage="%(prog)s --data_dir DIR [--output_dir DIR] [options] (--help lists them)")
    try:
        *parsed, remaining = parser.parse_args_into_dataclasses(args, return_remaining_strings=True)
    except UserInputError:
        raise
    except ValueError as err:  # TrainingArguments' own checks (several lines, naming the flags)
        raise UserInputError(" ".join(str(err).split())) from None
    if remaining:
        parser.error(f"unrecognized arguments: {' '.join(remaining)}")
    check_run_arguments(tuple(parsed))
    return tuple(parsed), args


def take_debug_flag(args: Sequence[str]) -> tuple[list[str], bool]:
    """Remove a bare ``--debug`` (no value) from ``args``; ``--debug underflow_overflow`` stays the Trainer's."""
    args, debug = list(args), False
    for i, arg in reversed(list(enumerate(args))):
        if arg == "--debug" and (i + 1 == len(args) or args[i + 1].startswith("--")):
            del args[i]
            debug = True
    return args, debug


def run_module(module: str, main: Callable[[list[str]], Any], args: Sequence[str] | None = None) -> int:
    """What ``python -m <module>`` runs: ``main(args)`` through the package's one error path (a user error is one
    line and exit 2; a bug one line and exit 1, its traceback with a bare ``--debug`` or ``ARCH_GPT_DEBUG=1``)."""
    args, debug = take_debug_flag(sys.argv[1:] if args is None else args)

    def body() -> int:
        main(args)
        return 0

    return run_entry_point(f"python -m {module}", body, debug=debug)


_SECRET_OPTIONS = ("--hub_token",)
_REPLAYED_AS_MAX_STEPS = ("--max_train_minutes", "--resume_from_checkpoint")


def _without(args: Sequence[str], options: Sequence[str]) -> list[str]:
    """``args`` minus the given options and their values (``--opt value`` and ``--opt=value`` forms)."""
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg.split("=")[0] in options:
            skip = "=" not in arg
            continue
        kept.append(arg)
    return kept


def command_line(module: str, args: Sequence[str], steps_done: int | None = None) -> str:
    """The command that reproduces this run, without secrets (``--hub_token``). With ``steps_done``, a time budget
    or a resume becomes the plain ``--max_steps steps_done`` run it amounts to (exact with a constant lr schedule)."""
    args = _without(args, _SECRET_OPTIONS)
    if steps_done is not None and any(a.split("=")[0] in _REPLAYED_AS_MAX_STEPS for a in args):
        args = [*_without(args, (*_REPLAYED_AS_MAX_STEPS, "--max_steps")), "--max_steps", str(steps_done)]
    return f"python -m {module} {shlex.join(args)}".strip()


@dataclass
class PushTarget:
    """Where the finished checkpoint is pushed (taken from the Trainer arguments, which then stop pushing)."""
    repo_id: str | None
    token: str | None
    private: bool | None


def take_push_target(training_args: ArchGPTTrainingArguments) -> PushTarget:
    """Move ``--push_to_hub/--hub_model_id`` out of the Trainer arguments (we push the full checkpoint ourselves)."""
    if not training_args.push_to_hub:
        return PushTarget(None, None, None)
    if not training_args.hub_model_id:
        raise UserInputError("--hub_model_id: required with --push_to_hub (e.g. user/arch-gpt)")
    target = PushTarget(training_args.hub_model_id, training_args.hub_token, training_args.hub_private_repo)
    training_args.push_to_hub = False
    return target


@contextmanager
def training_logging(training_args: ArchGPTTrainingArguments) -> Iterator[None]:
    """Logging as in the transformers example scripts, for the block it wraps: ``logging.basicConfig`` (stdout,
    ``time - LEVEL - logger - message``), info on the main process and warnings on the others
    (``transformers.utils.logging.set_verbosity(args.get_process_log_level())``; ``--log_level`` and
    ``--log_level_replica`` change it) for this package's, ``transformers``' and ``datasets``' loggers. The
    previous levels and handlers are restored afterwards, as ``main(args)`` may be called from other code. The
    scripts enter it once every input is checked, so a user error stays one line on stderr."""
    root, package = logging.getLogger(), logging.getLogger("arch_gpt")
    handlers, package_level = list(root.handlers), package.level
    hf_level, ds_level = transformers.utils.logging.get_verbosity(), datasets.utils.logging.get_verbosity()
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%m/%d/%Y %H:%M:%S",
                        handlers=[logging.StreamHandler(sys.stdout)])
    if training_args.should_log:  # the default --log_level is 'passive': info, as in the examples
        transformers.utils.logging.set_verbosity_info()
    level = training_args.get_process_log_level()
    package.setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    logger.warning("process rank %s, device %s, n_gpu %s, distributed %s, precision %s",
                   training_args.process_index, training_args.device, training_args.n_gpu,
                   training_args.parallel_mode.value == "distributed",
                   "bf16" if training_args.bf16 else ("fp16" if training_args.fp16 else "fp32"))
    logger.info("training/evaluation parameters %s", training_args)
    try:
        yield
    finally:
        transformers.utils.logging.reset_format()
        transformers.utils.logging.set_verbosity(hf_level)
        datasets.utils.logging.set_verbosity(ds_level)
        package.setLevel(package_level)
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)


def check_resume(training_args: ArchGPTTrainingArguments, model: PreTrainedModel) -> None:
    """``--resume_from_checkpoint`` names a Trainer checkpoint of this model (user errors before any logging)."""
    checkpoint = resume_checkpoint(training_args)
    if checkpoint is not None:
        check_resume_matches(checkpoint, model)


def train(model: PreTrainedModel, training_args: ArchGPTTrainingArguments, splits: DatasetDict, train_split: str,
          eval_split: str, columns: Sequence[str], loss_weighting: str,
          metrics: TrainerMetrics | None = None) -> WeightedLossTrainer:
    """Run the count-weighted ``Trainer`` on the given splits (resuming when asked), with ``metrics`` at every
    evaluation; log and save the train metrics (``train_results.json``, ``all_results.json``) and the
    ``trainer_state.json`` in ``output_dir``; returns the trainer."""
    if training_args.eval_strategy != "no" and len(splits[eval_split]) == 0:
        training_args.eval_strategy = "no"
    if training_args.label_names is None and {"labels", "count"} <= set(columns):
        training_args.label_names = ["labels", "count"]  # the count reaches compute_metrics as a second label
    checkpoint = resume_checkpoint(training_args)
    if checkpoint is not None:
        check_resume_matches(checkpoint, model)
    callbacks = [TimeBudgetCallback(training_args.max_train_minutes)] if training_args.max_train_minutes else []
    trainer = WeightedLossTrainer(
        model=model, args=training_args, train_dataset=select_columns(splits[train_split], columns),
        eval_dataset=select_columns(splits[eval_split], columns), data_collator=default_data_collator,
        loss_weighting=loss_weighting, callbacks=callbacks,
        compute_metrics=metrics.compute if metrics else None,
        preprocess_logits_for_metrics=metrics.preprocess if metrics else None,
    )
    logger.info("training on %d distinct rows of '%s', evaluating on %d of '%s'", len(splits[train_split]),
                train_split, len(splits[eval_split]), eval_split)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    train_metrics = {**result.metrics, "train_samples": len(splits[train_split])}
    trainer.log_metrics("train", train_metrics)
    trainer.save_metrics("train", train_metrics)
    trainer.save_state()
    return trainer


def evaluate_heldout(trainer: WeightedLossTrainer, extra: dict[str, float] | None = None) -> dict[str, float]:
    """The final held-out evaluation through the Trainer's ``compute_metrics`` (every process takes part; the
    metrics are computed even with ``--prediction_loss_only``), plus ``extra`` (baselines); logged and saved as
    ``eval_results.json``. Returns the metrics with their ``eval_`` prefix."""
    loss_only = trainer.args.prediction_loss_only
    trainer.args.prediction_loss_only = False
    try:
        metrics = trainer.evaluate()
    finally:
        trainer.args.prediction_loss_only = loss_only
    metrics.update({f"eval_{k}": v for k, v in (extra or {}).items()})
    metrics["eval_samples"] = len(trainer.eval_dataset)
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)
    return metrics


def unprefixed(metrics: dict[str, float], names: Sequence[str], prefix: str = "eval_") -> dict[str, float]:
    """``metrics[prefix + name]`` under ``name``, for the model card."""
    return {name: metrics[prefix + name] for name in names if prefix + name in metrics}


def reporter_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """Held-out metrics named ``heldout_*`` for the Trainer's reporters (tensorboard, wandb, ...)."""
    return {k if k.startswith("heldout") else f"heldout_{k}": float(v) for k, v in metrics.items()}


def hyperparameters(training_args: ArchGPTTrainingArguments, trainer: WeightedLossTrainer,
                    extra: dict[str, Any]) -> dict[str, Any]:
    """The settings that define a run, for the model card."""
    a = training_args
    precision = "bf16" if a.bf16 else ("fp16" if a.fp16 else "fp32")
    return {
        "optimizer": str(getattr(a.optim, "value", a.optim)), "learning_rate": a.learning_rate,
        "lr_scheduler": str(getattr(a.lr_scheduler_type, "value", a.lr_scheduler_type)),
        "weight_decay": a.weight_decay,
        "batch_size": a.per_device_train_batch_size * max(1, a.world_size) * a.gradient_accumulation_steps,
        "epochs": a.num_train_epochs, "max_steps": a.max_steps, "steps_done": trainer.state.global_step,
        "max_train_minutes": a.max_train_minutes, "seed": a.seed, "precision": precision, **extra,
    }


@dataclass
class StageWindows:
    """The windows a GPT stage trains and evaluates on (subsampled), checked before any training."""
    windows: DatasetDict
    heldout: str
    summary: str


def stage_windows(data_args: DataArguments, windows: DatasetDict) -> StageWindows:
    """The train and held-out windows of a stage (user errors for a bad summary.json or held-out split)."""
    summary = corpus_summary(data_args.data_dir)  # a bad summary.json fails before training, not after
    heldout = heldout_split(windows, data_args.heldout_split, Path(data_args.data_dir) / "lm")
    if "train" not in windows:
        raise UserInputError(f"{data_args.data_dir}: the corpus has no 'train' split")
    return StageWindows(DatasetDict({
        "train": subsample(windows["train"], data_args.max_train_windows, data_args.subsample_seed),
        heldout: subsample(windows[heldout], data_args.max_eval_windows, data_args.subsample_seed + 1),
    }), heldout, summary)


GPT_CARD_METRICS = ("next_layer_top1", "next_layer_top5", "perplexity", "most_frequent_baseline_top1",
                    "bigram_baseline_top1")


def gpt_stage(gpt: ArchGPT, stage: str, module: str, args: Sequence[str], data_args: DataArguments,
              ckpt_args: CheckpointArguments, training_args: ArchGPTTrainingArguments, data: StageWindows,
              push: PushTarget, extra: dict[str, Any]) -> dict[str, float]:
    """Train ``gpt.model`` on the windows, evaluate vs the baselines, record the stage and save (and push)."""
    windows, heldout = data.windows, data.heldout
    trainer = train(gpt.model, training_args, windows, "train", heldout, WINDOW_COLUMNS, data_args.loss_weighting,
                    NEXT_LAYER_METRICS)
    gpt.model = trainer.model.eval()
    gpt.device = next(gpt.model.parameters()).device
    train_arrays, heldout_arrays = next_token_arrays(windows["train"]), next_token_arrays(windows[heldout])
    baselines = Baselines.fit(train_arrays, gpt.tokenizer.vocab_size).metrics(heldout_arrays)
    evaluated = evaluate_heldout(trainer, baselines)
    metrics: dict[str, float | int] = {}
    if trainer.is_world_process_zero():
        metrics = unprefixed(evaluated, GPT_CARD_METRICS)
        metrics["heldout_windows"] = int(len(heldout_arrays.count))
        metrics["heldout_window_occurrences"] = int(heldout_arrays.count.sum())
        trainer.log(reporter_metrics(metrics))
        data_line = (f"{len(windows['train'])} distinct training windows, {len(windows[heldout])} held-out "
                     f"('{heldout}' split, architectures not in train)" + (f"; {data.summary}" if data.summary
                                                                           else ""))
        params = hyperparameters(training_args, trainer, {"loss_weighting": data_args.loss_weighting, **extra})
        gpt.stages.append(StageRecord(stage=stage, command=command_line(module, args, trainer.state.global_step),
                                      data_dir=data_args.data_dir,
                                      data_summary=data_line, hyperparameters=params, metrics=metrics))
        finish(gpt, ckpt_args, training_args, push)
    return metrics


def finish(gpt: ArchGPT, ckpt_args: CheckpointArguments, training_args: ArchGPTTrainingArguments,
           push: PushTarget) -> Path:
    """Save the finished checkpoint (model card included) and push it when asked."""
    folder = Path(ckpt_args.final_dir or training_args.output_dir)
    gpt.save_pretrained(folder, model_id=ckpt_args.model_id or push.repo_id or folder.name)
    logger.info("saved ArchGPT checkpoint to %s", folder)
    if push.repo_id:
        url = gpt.push_to_hub(push.repo_id, token=push.token, private=push.private)
        logger.info("pushed to %s", url)
    return folder
