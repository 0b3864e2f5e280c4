"""ArchGPT: a stock GPT2 next-layer model + the layer tokenizer + the optional block classifier (GPT-NAS §3.3-3.4).

The GPT is a plain ``GPT2LMHeadModel`` (n_layer 4, n_head 4, ``n_positions = window + 1 = 11``), so a checkpoint
loads with ``AutoModelForCausalLM``/``AutoTokenizer`` and no custom code. Extra config attributes: ``window``,
``corpus``, ``token_format``. Context layout (training windows and inference alike): a network is
``[BOS] layer_1 ... layer_n [EOS]``; the context of a prediction is the last ``window`` tokens of ``[BOS]`` + the
previous layers, left-padded with ``[PAD]`` (attention mask 0) to exactly ``window`` positions, so positions
0..window-1 hold the context and the target sits at position ``window``.

Tiny model for tests: ``ArchGPT.create(tokenizer, **TINY)`` (or :func:`tiny_config`).

Sizes (:func:`gpt_config` arguments and a checkpoint's ``config.json`` alike): ``n_embd`` 1 to 65536 and a multiple
of ``n_head``, ``n_layer`` and ``n_head`` 1 to 1024, ``window`` 1 to 65535 (``n_positions`` at least window + 1),
dropouts in [0, 1). :meth:`ArchGPT.from_pretrained` checks config, tokenizer and the safetensors header against each
other before loading any weight (see :mod:`arch_gpt.hub`).
"""
from __future__ import annotations

import math
import numbers
import os
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from arch_gpt.devices import resolve_device
from arch_gpt.io import atomic_write_text
from arch_gpt.block_classifier import (  # noqa: F401 (new_block_classifier, ModelInputError: also exported here)
    BLOCK_CLASSIFIER_SUBFOLDER, WINDOW, BlockClassifier, ModelInputError, load_block_classifier, new_block_classifier,
)
from arch_gpt.encoding import Architecture, ArchitectureError, Layer
from arch_gpt.errors import UserInputError
from arch_gpt.hub import (
    CardInfo, CheckpointFileError, StageRecord, check_card_metadata, load_training_record, load_verified, push_folder,
    read_config, render_model_card, resolve_checkpoint, save_staged, save_training_record,
)
from arch_gpt.tokenizer import SPECIAL_TOKENS, LayerTokenizer, layer_tokens

TOKEN_FORMAT = "arch-gpt layer tokens v1 (arch_gpt.tokenizer.layer_tokens)"
TINY = {"n_embd": 16, "n_layer": 2, "n_head": 2}  # test-sized model


_GPT_LIMITS = {"vocab_size": 2 ** 24, "n_positions": 2 ** 16, "n_embd": 2 ** 16, "n_layer": 1024, "n_head": 1024,
               "window": 2 ** 16 - 1}
_GPT_RATES = ("dropout", "resid_pdrop", "embd_pdrop", "attn_pdrop")


def gpt_size_problem(values: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(field, message)`` for the first GPT size (n_embd, n_layer, n_head, window, n_positions, vocab_size,
    dropouts; those present in ``values``) that is out of range or inconsistent, else None."""
    for key, top in _GPT_LIMITS.items():
        value = values.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            return key, f"must be an integer from 1 to {top}, got {value!r}"
    for key in _GPT_RATES:
        value = values.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            return key, f"must be a number in [0, 1), got {value!r}"
    if "n_embd" in values and "n_head" in values and values["n_embd"] % values["n_head"]:
        return "n_embd", f"must be a multiple of n_head ({values['n_head']}), got {values['n_embd']}"
    if "n_positions" in values and values["n_positions"] < values.get("window", WINDOW) + 1:
        return "n_positions", (f"must be at least window + 1 = {values.get('window', WINDOW) + 1}, "
                               f"got {values['n_positions']}")
    return None


def gpt_config(tokenizer: LayerTokenizer, *, n_embd: int = 128, n_layer: int = 4, n_head: int = 4,
               window: int = WINDOW, dropout: float = 0.1, corpus: str = "") -> GPT2Config:
    """The stock GPT2 config of an ArchGPT: positions = window + 1, special ids from the tokenizer.
    Sizes out of range (see the module docstring) are a ModelInputError naming the parameter."""
    problem = gpt_size_problem({"n_embd": n_embd, "n_layer": n_layer, "n_head": n_head, "window": window,
                                "dropout": dropout})
    if problem is not None:
        raise ModelInputError(f"{problem[0]}: {problem[1]}")
    if not isinstance(tokenizer, LayerTokenizer):
        raise ModelInputError(f"tokenizer: expected a LayerTokenizer, got {type(tokenizer).__name__}")
    return GPT2Config(
        vocab_size=tokenizer.vocab_size, n_positions=window + 1, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
        resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        window=window, corpus=corpus, token_format=TOKEN_FORMAT,
    )


def tiny_config(tokenizer: LayerTokenizer) -> GPT2Config:
    """A 2-layer, 2-head, width-16 config for tests."""
    return gpt_config(tokenizer, **TINY)


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return resolve_device(None)


class ArchGPT:
    """Next-layer prediction over layer tokens, with allowed-token masking, plus block classification."""

    def __init__(self, model: GPT2LMHeadModel, tokenizer: LayerTokenizer,
                 block_classifier: BlockClassifier | None = None, stages: Sequence[StageRecord] = (),
                 device: str | torch.device | None = None):
        for name, value, kinds in (("model", model, (GPT2LMHeadModel,)), ("tokenizer", tokenizer, (LayerTokenizer,)),
                                   ("block_classifier", block_classifier, (BlockClassifier, type(None)))):
            if not isinstance(value, kinds):
                raise ModelInputError(f"{name}: expected a {kinds[0].__name__}, got {type(value).__name__}")
        if model.config.vocab_size != tokenizer.vocab_size:
            raise UserInputError(f"config.json: vocab_size: model has {model.config.vocab_size} tokens, "
                                 f"tokenizer has {tokenizer.vocab_size}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.block_classifier = block_classifier.to(self.device).eval() if block_classifier is not None else None
        self.stages = list(stages)
        self._special_ids = torch.tensor(tokenizer.non_layer_ids)
        self.version = 0  # bumped by whoever changes the weights in place, so prediction caches know to drop

    # --- construction / files ------------------------------------------------------------
    @classmethod
    def create(cls, tokenizer: LayerTokenizer, *, device: str | torch.device | None = None, seed: int = 0,
               **config_kwargs) -> "ArchGPT":
        """A freshly initialised model for ``tokenizer`` (``config_kwargs`` as :func:`gpt_config`), seeded by ``seed``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = GPT2LMHeadModel(gpt_config(tokenizer, **config_kwargs))
        return cls(model, tokenizer, device=device)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, device: str | torch.device | None = None, *,
                        revision: str | None = None, token: str | bool | None = None) -> "ArchGPT":
        """Load model, tokenizer and (if ``block_classifier/`` is there) block classifier from a bundled name, a
        folder or a Hub id. Config, tokenizer and weights are checked against each other first: a missing,
        corrupted, truncated or pickled weights file, or sizes that disagree, are a UserInputError naming the file."""
        folder = resolve_checkpoint(name_or_path, revision=revision, token=token)
        tokenizer = LayerTokenizer.from_pretrained(folder)
        model = load_gpt(folder, tokenizer)
        classifier = None
        sub = folder / BLOCK_CLASSIFIER_SUBFOLDER
        if sub.is_dir() and any(sub.iterdir()):
            classifier = load_block_classifier(sub, tokenizer.vocab_size, int(model.config.window))
        return cls(model, tokenizer, classifier, load_training_record(folder), device=device)

    @property
    def window(self) -> int:
        return int(getattr(self.model.config, "window", WINDOW))

    @property
    def can_classify_blocks(self) -> bool:
        """Whether a block classifier is attached (see :meth:`classify_blocks`)."""
        return self.block_classifier is not None

    @property
    def config(self) -> GPT2Config:
        return self.model.config

    def card_info(self, model_id: str) -> CardInfo:
        """What the model card says about this model."""
        c = self.model.config
        labels = list(self.block_classifier.config.label_names) if self.block_classifier is not None else []
        return CardInfo(model_id=model_id, n_layer=c.n_layer, n_head=c.n_head, n_embd=c.n_embd, window=self.window,
                        vocab_size=c.vocab_size, n_parameters=self.model.num_parameters(),
                        corpus=getattr(c, "corpus", "") or "unspecified", block_labels=labels,
                        example_tokens=self.tokenizer.layer_token_list[:2])

    def save_pretrained(self, directory: str | os.PathLike, model_id: str | None = None, *,
                        datasets: Sequence[str] = (), base_model: str | None = None) -> Path:
        """Write config, safetensors weights, tokenizer, ``block_classifier/``, training record and README card
        (each file replaced whole, see :func:`arch_gpt.hub.save_staged`). ``datasets`` (Hub dataset ids of the
        corpora) and ``base_model`` (the Hub id it was fine-tuned from) go into the card's metadata."""
        check_card_metadata(datasets, base_model)  # bad metadata fails before any file is written
        directory = save_staged(directory, lambda tmp: self.model.save_pretrained(tmp, safe_serialization=True))
        self.tokenizer.save_pretrained(directory)
        if self.block_classifier is not None:
            save_staged(directory / BLOCK_CLASSIFIER_SUBFOLDER,
                        lambda tmp: self.block_classifier.save_pretrained(tmp, safe_serialization=True))
        save_training_record(directory, self.stages)
        info = replace(self.card_info(model_id or directory.name), datasets=list(datasets), base_model=base_model)
        atomic_write_text(directory / "README.md", str(render_model_card(info, self.stages)))
        return directory

    def push_to_hub(self, repo_id: str, *, token: str | None = None, private: bool | None = None,
                    commit_message: str = "Upload arch-gpt checkpoint", datasets: Sequence[str] = (),
                    base_model: str | None = None) -> str:
        """Save to a temporary folder (card names ``repo_id``; ``datasets``/``base_model`` as :meth:`save_pretrained`),
        upload it with ``HfApi``; returns the commit URL."""
        with tempfile.TemporaryDirectory(prefix="arch-gpt-push-") as tmp:
            self.save_pretrained(tmp, model_id=repo_id, datasets=datasets, base_model=base_model)
            return push_folder(tmp, repo_id, token=token, private=private, commit_message=commit_message)

    # --- next-token prediction -------------------------------------------------------------
    def context_ids(self, contexts: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Ids [B, window] and attention mask: ``[BOS]`` + context, last ``window`` tokens, left-padded."""
        if isinstance(contexts, str) or any(isinstance(c, str) for c in contexts):
            raise ModelInputError("contexts: expected a sequence of token lists, got a string")
        tok, w = self.tokenizer, self.window
        ids = torch.full((len(contexts), w), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(contexts), w), dtype=torch.long)
        for row, context in enumerate(contexts):
            tokens = list(context)
            if not tokens or tokens[0] != SPECIAL_TOKENS[1]:
                tokens = [SPECIAL_TOKENS[1], *tokens]
            row_ids = tok.tokens_to_ids(tokens[-w:])
            ids[row, w - len(row_ids):] = torch.tensor(row_ids, dtype=torch.long)
            mask[row, w - len(row_ids):] = 1
        return ids, mask

    @torch.no_grad()
    def next_token_logits(self, contexts: Sequence[Sequence[str]]) -> torch.Tensor:
        """Logits [B, V] (float32, CPU) of the token after each context, from ONE batched forward pass."""
        ids, mask = self.context_ids(contexts)
        if len(contexts) == 0:
            return torch.zeros((0, self.tokenizer.vocab_size))
        return self.model.lm_head(self._last_hidden(ids, mask)).float().cpu()

    @torch.no_grad()
    def embed_contexts(self, contexts: Sequence[Sequence[str]]) -> np.ndarray:
        """The GPT's last hidden state (after the final layer norm) at each context's last token: [B, n_embd],
        float32, from ONE batched forward pass (features of the search's pre-screening predictor)."""
        if len(contexts) == 0:
            return np.zeros((0, int(self.model.config.n_embd)), dtype=np.float32)
        ids, mask = self.context_ids(contexts)
        return self._last_hidden(ids, mask).float().cpu().numpy()

    def _last_hidden(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The transformer's output (after the final layer norm) at the last position: [B, n_embd]; the LM head
        runs on this row only, a fraction of the work of the whole window."""
        out = self.model.transformer(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
        return out.last_hidden_state[:, -1, :]

    def _allowed_mask(self, allowed_tokens: Sequence[Collection[str] | None] | None, n: int) -> torch.Tensor:
        vocab = self.tokenizer.vocab_size
        mask = torch.ones((n, vocab), dtype=torch.bool)
        if allowed_tokens is not None:
            if len(allowed_tokens) != n:
                raise ModelInputError(f"allowed_tokens: {len(allowed_tokens)} entries for {n} contexts")
            for row, allowed in enumerate(allowed_tokens):
                if allowed is None:
                    continue
                if isinstance(allowed, str):
                    raise ModelInputError(f"allowed_tokens[{row}]: expected a collection of tokens, got a string")
                mask[row] = False
                ids = [i for t in allowed if self.tokenizer.in_vocab(t) for i in self.tokenizer.tokens_to_ids([t])]
                if ids:
                    mask[row, ids] = True
        mask[:, self._special_ids] = False
        return mask

    def ranked_candidates(self, contexts: Sequence[Sequence[str]],
                          allowed_tokens: Sequence[Collection[str] | None] | None = None, top_k: int = 1,
                          temperature: float = 1.0, rng: np.random.Generator | None = None,
                          top_p: float = 1.0) -> list[list[str]]:
        """For each context, its allowed layer tokens in the order a prediction tries them (one batched forward).

        ``top_k=1``: most likely first. Otherwise the ``top_k`` most likely, cut to the nucleus (the fewest whose
        probability at ``temperature`` sums to ``top_p``), are drawn without replacement with ``rng`` from the
        softmax at ``temperature`` (so the first is a plain sample), then the rest by likelihood.
        """
        if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
            raise ModelInputError(f"top_k: must be an integer >= 1, got {top_k!r}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < math.inf:
            raise ModelInputError(f"temperature: must be a finite number > 0, got {temperature!r}")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise ModelInputError(f"rng: expected a numpy Generator or None, got {type(rng).__name__}")
        if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
            raise ModelInputError(f"top_p: must be a number in (0, 1], got {top_p!r}")
        mask = self._allowed_mask(allowed_tokens, len(contexts))
        logits = self.next_token_logits(contexts).masked_fill(~mask, float("-inf"))
        rng = rng if rng is not None else np.random.default_rng(0)
        out: list[list[str]] = []
        for row in range(len(contexts)):
            n_allowed = int(mask[row].sum())
            values, ids = torch.topk(logits[row], n_allowed)
            order = np.arange(n_allowed)
            k = min(top_k, n_allowed)
            if k > 1 and top_p < 1:
                mass = torch.softmax(values.double() / temperature, dim=0).cumsum(0).numpy()
                k = min(k, int(np.searchsorted(mass, top_p - 1e-12)) + 1)
            if k > 1:
                probs = torch.softmax(values[:k].double() / temperature, dim=0).numpy()
                order[:k] = rng.choice(k, size=k, replace=False, p=probs / probs.sum())
            out.append(self.tokenizer.ids_to_tokens(ids[order].tolist()))
        return out

    def predict_next_tokens(self, contexts: Sequence[Sequence[str]],
                            allowed_tokens: Sequence[Collection[str] | None] | None = None, top_k: int = 1,
                            temperature: float = 1.0, rng: np.random.Generator | None = None,
                            top_p: float = 1.0) -> list[str | None]:
        """The next layer token of each context, restricted to its allowed tokens (None when none is in the vocabulary).

        ``top_k=1`` is greedy; otherwise a token is sampled with ``rng`` from the ``top_k`` most likely allowed
        tokens at ``temperature`` (cut to the ``top_p`` nucleus). Special tokens are never returned.
        """
        ranked = self.ranked_candidates(contexts, allowed_tokens, top_k, temperature, rng, top_p)
        return [tokens[0] if tokens else None for tokens in ranked]

    def predict_next_layers(self, archs_or_layer_lists: Sequence[Architecture | Sequence[Layer]],
                            positions: Sequence[int],
                            allowed_tokens: Sequence[Collection[str] | None] | None = None, top_k: int = 1,
                            temperature: float = 1.0, rng: np.random.Generator | None = None,
                            ) -> list[Layer | None]:
        """The layer predicted at ``positions[i]`` of each architecture from the layers before it, as a concrete layer
        (id = position + 1; sources refer to the real earlier layers). A token that does not fit there (e.g. a
        channel ratio that gives a fraction) is skipped for the next candidate; None when no allowed token fits."""
        if len(positions) != len(archs_or_layer_lists):
            raise ModelInputError(f"positions: {len(positions)} entries for {len(archs_or_layer_lists)} architectures")
        archs = [a if isinstance(a, Architecture) else Architecture(tuple(a)) for a in archs_or_layer_lists]
        contexts = []
        for i, (arch, pos) in enumerate(zip(archs, positions)):
            if not 0 <= pos <= len(arch):
                raise ModelInputError(f"positions[{i}]: {pos} is outside 0..{len(arch)}")
            if pos == 0 and arch.input_size is None:
                raise ModelInputError(f"archs_or_layer_lists[{i}]: empty architecture has no input size")
            contexts.append(layer_tokens(Architecture(arch.layers[:pos])) if pos else [])
        ranked = self.ranked_candidates(contexts, allowed_tokens, top_k, temperature, rng)
        return [self._first_fitting_layer(arch, pos, tokens) for arch, pos, tokens in zip(archs, positions, ranked)]

    def _first_fitting_layer(self, arch: Architecture, pos: int, tokens: Sequence[str]) -> Layer | None:
        previous = arch.layers[:pos]
        in_size = previous[-1].out_size if previous else arch.input_size
        for token in tokens:
            try:
                return self.tokenizer.token_to_layer(token, in_size, pos + 1, previous, network_input=arch.input_size)
            except ArchitectureError:
                continue
        return None

    # --- block classification -----------------------------------------------------------------
    @torch.no_grad()
    def classify_blocks(self, contexts: Sequence[Sequence[str]], predicted_tokens: Sequence[str],
                        allowed_labels: Sequence[Collection[str] | None] | Collection[str] | None = None,
                        ) -> list[str | None]:
        """The block class (e.g. ``Bottleneck``) for each predicted token after its context (paper's FCN).

        ``allowed_labels`` is one collection for all rows or one per row; None where no allowed label is known.
        """
        if self.block_classifier is None:
            raise UserInputError("block_classifier/config.json: this checkpoint has no block classifier")
        if len(predicted_tokens) != len(contexts):
            raise ModelInputError(f"predicted_tokens: {len(predicted_tokens)} entries for {len(contexts)} contexts")
        names = list(self.block_classifier.config.label_names)
        if allowed_labels is None:
            per_row = [None] * len(contexts)
        elif all(isinstance(a, str) for a in allowed_labels):
            per_row = [allowed_labels] * len(contexts)
        elif len(allowed_labels) != len(contexts):
            raise ModelInputError(f"allowed_labels: {len(allowed_labels)} entries for {len(contexts)} contexts")
        else:
            per_row = list(allowed_labels)
        if not contexts:
            return []
        ids, _ = self.context_ids(contexts)
        next_ids = torch.tensor(self.tokenizer.tokens_to_ids(predicted_tokens), dtype=torch.long)
        logits = self.block_classifier(context_ids=ids.to(self.device), next_id=next_ids.to(self.device)).logits
        logits = logits.float().cpu()
        out: list[str | None] = []
        for row, allowed in enumerate(per_row):
            keep = torch.tensor([allowed is None or n in allowed for n in names])
            if not keep.any():
                out.append(None)
                continue
            out.append(names[int(logits[row].masked_fill(~keep, float("-inf")).argmax())])
        return out

    def attach_block_classifier(self, classifier: BlockClassifier) -> None:
        """Use ``classifier`` (its vocabulary must be this tokenizer's, its window this model's)."""
        if not isinstance(classifier, BlockClassifier):
            raise ModelInputError(f"classifier: expected a BlockClassifier, got {type(classifier).__name__}")
        if classifier.config.vocab_size != self.tokenizer.vocab_size:
            raise UserInputError(f"block_classifier/config.json: vocab_size: {classifier.config.vocab_size} != "
                                 f"tokenizer's {self.tokenizer.vocab_size}")
        if classifier.config.window != self.window:
            raise UserInputError(f"block_classifier/config.json: window: {classifier.config.window} != "
                                 f"the model's {self.window}")
        self.block_classifier = classifier.to(self.device).eval()


def load_gpt(folder: str | os.PathLike, tokenizer: LayerTokenizer) -> GPT2LMHeadModel:
    """The GPT2 of a checkpoint folder, after checking ``config.json`` (sizes, ``vocab_size`` = the tokenizer's)
    and the ``model.safetensors`` header against it; never reads pickled weights (CheckpointFileError otherwise)."""
    folder = Path(folder)
    path = folder / "config.json"
    data = read_config(folder, "gpt2")
    values = {k: data.get(k, WINDOW if k == "window" else 0.1) for k in (*_GPT_LIMITS, *_GPT_RATES[1:])}
    problem = gpt_size_problem(values)
    if problem is not None:
        raise CheckpointFileError(f"{path}: field '{problem[0]}': {problem[1]}")
    if values["vocab_size"] != tokenizer.vocab_size:
        raise CheckpointFileError(f"{path}: field 'vocab_size': {values['vocab_size']}, but the tokenizer "
                                  f"(tokenizer.json) has {tokenizer.vocab_size} tokens")
    try:
        config = GPT2Config.from_pretrained(str(folder))
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in GPT2LMHeadModel(config).state_dict().items()}
    except (OSError, ValueError, TypeError) as err:
        raise CheckpointFileError(f"{path}: not a usable GPT2 config ({str(err).strip().splitlines()[0]})") from None
    return load_verified(GPT2LMHeadModel, folder, config, expected,
                         {"lm_head.weight"} if config.tie_word_embeddings else ())
