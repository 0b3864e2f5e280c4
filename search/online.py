"""Online form of the paper's "fine-tune on the specific task" (issue 6 §3).

After each generation the GPT takes a few gradient steps on the unit choices of the best architectures
evaluated so far (by fitness only, never test accuracy): for every unit of each of the ``top_k`` best,
the context is the ``window`` layer tokens before the unit's signature layer and the target is that
layer's token, with the softmax restricted to the unit's allowed tokens (the choice the reconstructor
makes). Steps run with dropout off, so a run is a deterministic function of its seed. The weights are
restored by :meth:`OnlineFinetuner.reset` before each run, so runs do not leak into each other. The weights
and the optimizer build up over the run, so with a run folder they are saved after every generation
(``finetuned.safetensors``, ``finetune_optimizer.safetensors``) and a resumed run continues from them exactly.
:class:`ChoiceFinetuner` (the fit on unit choices) is shared with ``+cond``
(:mod:`arch_gpt.search.conditioning`).
"""
from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from time import perf_counter
from typing import Sequence

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, load_model, save_file, save_model

from arch_gpt.errors import UserInputError
from arch_gpt.io import atomic_path
from arch_gpt.modeling import ArchGPT
from arch_gpt.search.lru import LRU
from arch_gpt.search.protocols import ParsesKeys, SearchSpace
from arch_gpt.search.records import SearchState
from arch_gpt.search.unit_tokens import UnitTokens


FINETUNED, FINETUNE_OPTIMIZER = "finetuned.safetensors", "finetune_optimizer.safetensors"


class ChoiceFinetuner:
    """Fine-tunes ``model`` (an ArchGPT) in place on the unit choices of architectures (see :meth:`fit`)."""

    def __init__(self, model: ArchGPT, space: SearchSpace, steps: int, lr: float, tokens: UnitTokens | None = None):
        if steps < 1:
            raise UserInputError(f"finetune_steps: must be at least 1, got {steps}")
        if not lr > 0:
            raise UserInputError(f"finetune_lr: must be > 0, got {lr}")
        if not isinstance(space, ParsesKeys):
            raise UserInputError(f"space {space.name!r}: the online fine-tune needs a space that parses keys")
        self.model, self.space, self.steps, self.lr = model, space, steps, lr
        self._initial = copy.deepcopy(model.model.state_dict())
        self.tokens = tokens or UnitTokens()
        self._allowed_ids: LRU[list[int]] = LRU(4096)
        self.seconds = 0.0
        self.reset()

    def reset(self) -> None:
        """Restore the initial weights and a fresh optimizer (call before every run)."""
        self.model.model.load_state_dict(self._initial)
        self.model.model.eval()
        self.model.version += 1
        self.optimizer = torch.optim.AdamW(self.model.model.parameters(), lr=self.lr)
        self.seconds = 0.0

    def restore(self) -> None:
        """Put the initial weights back (after a run, so a model shared between runs never leaks)."""
        self.model.model.load_state_dict(self._initial)
        self.model.version += 1

    def examples(self, keys: list[str], prefixes: Sequence[str] | None = None
                 ) -> tuple[list[list[str]], list[list[int]], list[int]]:
        """Contexts, allowed-token ids and the target's position among them, for every unit of ``keys``; with
        ``prefixes`` (one token per key, ``+cond``) each context is that token then the last ``window - 1`` layers."""
        tok, window = self.model.tokenizer, self.model.window
        contexts, allowed, targets = [], [], []
        for n, key in enumerate(keys):
            genome = self.space.parse(key)
            tokens, _ = self.tokens(self.space, key, genome)
            for unit in self.space.units(genome):
                ids = self._allowed_ids.get_or_make(unit.allowed_tokens, lambda: sorted(
                    i for t in unit.allowed_tokens if tok.in_vocab(t) for i in tok.tokens_to_ids([t])))
                target = tokens[unit.layer_start]
                if len(ids) < 2 or not tok.in_vocab(target):
                    continue  # nothing to choose between, or a choice the model cannot name
                start = unit.context_stop
                contexts.append(list(tokens[max(0, start - window):start]) if prefixes is None else
                                [prefixes[n], *tokens[max(0, start - window + 1):start]])
                allowed.append(ids)
                targets.append(ids.index(tok.tokens_to_ids([target])[0]))
        return contexts, allowed, targets

    def fit(self, keys: list[str], steps: int | None = None, prefixes: Sequence[str] | None = None,
            batch_size: int | None = None) -> None:
        """``steps`` (default: the finetuner's) AdamW steps on the unit choices of the architectures ``keys``
        (contexts prefixed by ``prefixes``, see :meth:`examples`). Identical examples are merged and weighted by
        their count (the same loss, less work); with ``batch_size`` each step takes that many of them, drawn
        with a torch generator seeded by the number of keys, so a fit is a function of its inputs."""
        start = perf_counter()
        contexts, allowed, targets = self.examples(keys, prefixes)
        if contexts:
            merged = Counter((tuple(c), tuple(a), t) for c, a, t in zip(contexts, allowed, targets))
            contexts = [list(c) for c, _, _ in merged]
            allowed = [list(a) for _, a, _ in merged]
            device = self.model.device
            weight = torch.tensor(list(merged.values()), dtype=torch.float32, device=device)
            ids, mask = self.model.context_ids(contexts)
            ids, mask = ids.to(device), mask.to(device)
            width = max(len(a) for a in allowed)
            index = torch.tensor([a + [a[0]] * (width - len(a)) for a in allowed], device=device)
            valid = torch.tensor([[j < len(a) for j in range(width)] for a in allowed], device=device)
            target = torch.tensor([t for _, _, t in merged], device=device)
            draw = torch.Generator().manual_seed(len(keys))
            gpt = self.model.model
            for _ in range(self.steps if steps is None else steps):
                rows = slice(None) if batch_size is None or batch_size >= len(contexts) else \
                    torch.multinomial(weight.cpu(), batch_size, replacement=True, generator=draw).to(device)
                # the LM head on the last position and the allowed rows only: the same logits, a fraction of the work
                hidden = gpt.transformer(input_ids=ids[rows], attention_mask=mask[rows]).last_hidden_state[:, -1, :]
                choice = torch.einsum("bd,bkd->bk", hidden, gpt.lm_head.weight[index[rows]])
                losses = F.cross_entropy(choice.masked_fill(~valid[rows], float("-inf")), target[rows],
                                         reduction="none")
                loss = losses.mean() if isinstance(rows, torch.Tensor) else (losses * weight).sum() / weight.sum()
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
            self.model.version += 1
        self.seconds += perf_counter() - start



class OnlineFinetuner(ChoiceFinetuner):
    """``on_generation`` hook (``+ft``): ``steps`` AdamW steps on the ``top_k`` fittest architectures so far."""

    def __init__(self, model: ArchGPT, space: SearchSpace, steps: int = 5, top_k: int = 10, lr: float = 1e-3,
                 tokens: UnitTokens | None = None):
        if top_k < 1:
            raise UserInputError(f"finetune_top: must be at least 1, got {top_k}")
        self.top_k = top_k
        super().__init__(model, space, steps, lr, tokens)

    def config(self) -> dict:
        """The settings a resumed run must share (checkpointed with the strategy's)."""
        return {"kind": "finetune", "steps": self.steps, "top_k": self.top_k, "lr": self.lr}

    def __call__(self, state: SearchState) -> None:
        """One fine-tune after a generation: ``steps`` AdamW steps on the ``top_k`` fittest evaluated keys."""
        best = sorted(state.cache.values(), key=lambda r: (-r.fitness, r.key))[:self.top_k]
        self.fit([r.key for r in best if r.error is None])

    def save_state(self, folder: Path, generation: int) -> None:
        """The fine-tuned weights and the optimizer's moments after ``generation`` (safetensors, each atomic)."""
        meta = {"generation": str(generation)}
        with atomic_path(Path(folder) / FINETUNED) as tmp:
            save_model(self.model.model, str(tmp), metadata=meta)
        tensors = {f"{index}.{name}": value.detach().cpu().contiguous()
                   for index, slots in self.optimizer.state_dict()["state"].items() for name, value in slots.items()
                   if isinstance(value, torch.Tensor)}
        with atomic_path(Path(folder) / FINETUNE_OPTIMIZER) as tmp:
            save_file(tensors, str(tmp), metadata=meta)

    def load_state(self, folder: Path) -> int | None:
        """Load what :meth:`save_state` wrote; returns the generation it follows (None: nothing saved, or the two
        files disagree, e.g. a run killed between them). Never unpickles: safetensors only."""
        paths = [Path(folder) / FINETUNED, Path(folder) / FINETUNE_OPTIMIZER]
        if not all(p.is_file() for p in paths):
            return None
        try:
            generations = set()
            for path in paths:
                with safe_open(str(path), framework="pt") as f:
                    generations.add((f.metadata() or {}).get("generation"))
            if len(generations) != 1 or None in generations:
                return None
            load_model(self.model.model, str(paths[0]), device=str(self.model.device))
            saved = load_file(str(paths[1]), device=str(self.model.device))
        except (OSError, ValueError, RuntimeError, SafetensorError) as err:
            raise UserInputError(f"resume: {paths[0].parent}: the fine-tuned GPT's saved state is unreadable "
                                 f"({err}); start a new run") from None
        optimizer = self.optimizer.state_dict()
        slots: dict[int, dict[str, torch.Tensor]] = {}
        for name, value in saved.items():
            index, _, slot = name.partition(".")
            slots.setdefault(int(index), {})[slot] = value
        self.optimizer.load_state_dict({"state": slots, "param_groups": optimizer["param_groups"]})
        self.model.model.eval()
        self.model.version += 1
        return int(generations.pop())
