"""Held-out next-layer top-1/top-5 per source space of the all-spaces corpus, for one or more GPTs, against the
bigram baseline (previous token -> most frequent next token) and the most-frequent-token baseline, both fit on the
corpus's train split (all spaces pooled, count-weighted).

Launch (one CPU thread; the corpus is the one ``arch-gpt corpus all-spaces --out DIR`` builds)::

    OMP_NUM_THREADS=1 python bench/heldout_per_space.py --corpus /work/runs/all-spaces-corpus \\
        --models arch-gpt-all-spaces,arch-gpt-nasbench101 --out bench/results/heldout_per_space \\
        --card arch_gpt/pretrained/arch-gpt-all-spaces/README.md

Every model is scored on the same held-out windows (the ``validation`` split's rows of each ``space``; windows are
count-weighted). A model with another vocabulary sees the windows through its own ids (token strings mapped; a
token it lacks becomes ``[UNK]``), and a target it lacks can never be predicted right. ``--max-windows N`` scores a
seeded sample of N distinct windows per space (default: all). Writes ``OUT.json`` and ``OUT.md``; with ``--card``
the model card gets the per-space table and ``model-index`` results (replaced on a rerun).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from datasets import load_from_disk

from arch_gpt.io import atomic_write_text
from arch_gpt.modeling import ArchGPT
from arch_gpt.tokenizer import LayerTokenizer
from arch_gpt.training.metrics import Baselines, NextTokenArrays, next_token_arrays, weighted_accuracy

SPACES = ("nasbench101", "nasbench201", "nasbench-macro", "blocks", "torchvision")
CARD_BEGIN, CARD_END = "<!-- heldout-per-space:begin -->", "<!-- heldout-per-space:end -->"


def _subset(arrays: NextTokenArrays, rows: np.ndarray) -> NextTokenArrays:
    return NextTokenArrays(arrays.input_ids[rows], arrays.attention_mask[rows], arrays.target_pos[rows],
                           arrays.count[rows])


@torch.no_grad()
def model_scores(gpt: ArchGPT, corpus_tok: LayerTokenizer, arrays: NextTokenArrays, batch: int = 2048) -> dict:
    """Count-weighted top-1/top-5 of ``gpt`` on windows written in the corpus's ids (mapped by token string)."""
    vocab = gpt.tokenizer.get_vocab()
    corpus_tokens = corpus_tok.ids_to_tokens(list(range(corpus_tok.vocab_size)))
    to_model = np.array([vocab.get(t, gpt.tokenizer.unk_token_id) for t in corpus_tokens], dtype=np.int64)
    target_model = np.array([vocab.get(t, -1) for t in corpus_tokens], dtype=np.int64)  # -1: never right
    ids = to_model[arrays.input_ids]
    target = target_model[arrays.target]
    top1, top5 = np.zeros(len(target), bool), np.zeros(len(target), bool)
    model = gpt.model.eval()
    for start in range(0, len(target), batch):
        sl = slice(start, start + batch)
        x = torch.as_tensor(ids[sl])
        m = torch.as_tensor(arrays.attention_mask[sl])
        pos = torch.as_tensor(arrays.target_pos[sl])
        rows = torch.arange(len(pos))
        logits = model(input_ids=x, attention_mask=m).logits[rows, pos - 1].float()
        best = logits.topk(5, dim=-1).indices.numpy()
        top1[sl] = best[:, 0] == target[sl]
        top5[sl] = (best == target[sl, None]).any(axis=1)
    w = arrays.count / arrays.count.sum()
    return {"top1": float((w * top1).sum()), "top5": float((w * top5).sum()),
            "targets_in_vocab": float((w * (target >= 0)).sum())}


def evaluate(corpus: Path, models: list[str], max_windows: int | None, seed: int) -> dict:
    """The per-space table: baselines and every model on the held-out windows."""
    lm = load_from_disk(str(corpus / "lm"))
    tok = LayerTokenizer.from_pretrained(corpus / "tokenizer")
    train = next_token_arrays(lm["train"])
    baselines = Baselines.fit(train, tok.vocab_size)
    spaces_col = np.asarray(lm["validation"]["space"])
    heldout = next_token_arrays(lm["validation"])  # keeps every window of this corpus (>= 2 attended tokens)
    if len(heldout.count) != len(spaces_col):
        raise SystemExit("held-out windows with fewer than 2 attended tokens: cannot align the space column")
    gpts = {}
    for spec in models:  # NAME or LABEL=PATH (a label keeps machine paths out of the results)
        label, _, where = spec.partition("=")
        gpts[label] = ArchGPT.from_pretrained(where or label, device="cpu")
    rng = np.random.default_rng(seed)
    out: dict = {"corpus": corpus.name, "spaces": {}}
    for space in SPACES:
        rows = np.flatnonzero(spaces_col == space)
        if max_windows is not None and len(rows) > max_windows:
            rows = np.sort(rng.choice(rows, size=max_windows, replace=False))
        part = _subset(heldout, rows)
        t = part.target
        entry = {"distinct_windows": int(len(rows)), "window_occurrences": int(part.count.sum()),
                 "most_frequent_top1": weighted_accuracy(np.full_like(t, baselines.most_frequent), t, part.count),
                 "bigram_top1": weighted_accuracy(baselines.bigram[part.previous], t, part.count), "models": {}}
        for name, gpt in gpts.items():
            started = time.perf_counter()
            entry["models"][name] = model_scores(gpt, tok, part)
            entry["models"][name]["seconds"] = round(time.perf_counter() - started, 2)
        out["spaces"][space] = entry
    out["models"] = {name: {"vocab_size": g.tokenizer.vocab_size, "n_embd": int(g.model.config.n_embd)}
                     for name, g in gpts.items()}
    return out


def markdown(result: dict) -> str:
    """The per-space table (held-out, count-weighted)."""
    names = list(result["models"])
    head = ["space", "held-out windows (distinct / occurrences)", "most-frequent top-1", "bigram top-1"]
    for name in names:
        head += [f"`{name}` top-1", f"`{name}` top-5"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for space, e in result["spaces"].items():
        row = [space, f"{e['distinct_windows']:,} / {e['window_occurrences']:,}", f"{e['most_frequent_top1']:.4f}",
               f"{e['bigram_top1']:.4f}"]
        for name in names:
            row += [f"{e['models'][name]['top1']:.4f}", f"{e['models'][name]['top5']:.4f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def update_card(card_path: Path, result: dict, model: str, section: str) -> None:
    """Put ``section`` (between markers) and per-space ``model-index`` results of ``model`` into the card."""
    from huggingface_hub import EvalResult, ModelCard

    card = ModelCard(card_path.read_text(encoding="utf-8"))
    results = [r for r in (card.data.eval_results or []) if not (r.metric_name or "").endswith(", held out)")]
    for space, e in result["spaces"].items():
        scores = e["models"][model]
        for k in ("top1", "top5"):
            results.append(EvalResult(
                task_type="text-generation", task_name="Next-layer prediction",
                dataset_type=f"arch-gpt-all-spaces-{space}",
                dataset_name=f"arch-gpt corpus: all spaces, held-out space {space}", dataset_config="lm",
                dataset_split="validation", metric_type="accuracy", metric_value=round(scores[k], 4),
                metric_name=f"Next-layer {k[:3]}-{k[3:]} accuracy ({space}, held out)", metric_config=k))
    card.data.eval_results = results
    text = str(card)
    block = f"{CARD_BEGIN}\n{section}{CARD_END}\n"
    if CARD_BEGIN in text:
        text = text[:text.index(CARD_BEGIN)] + block + text[text.index(CARD_END) + len(CARD_END) + 1:]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    atomic_write_text(card_path, text)


def _intro(result: dict) -> str:
    return (f"Held-out next-layer accuracy per source space of the all-spaces corpus (`validation` split, "
            f"count-weighted; baselines fit on the train split). Models: {', '.join(result['models'])}.\n\n")


def _update_card(args: argparse.Namespace, result: dict) -> None:
    extra = args.card_section.read_text(encoding="utf-8") if args.card_section else ""
    update_card(args.card, result, next(iter(result["models"])),
                extra + "\n## Held-out accuracy per space\n\n" + _intro(result) + markdown(result))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="the all-spaces corpus folder (required unless --from-json)")
    parser.add_argument("--models", default="arch-gpt-all-spaces,arch-gpt-nasbench101",
                        help="comma-separated bundled names, checkpoint folders or LABEL=FOLDER")
    parser.add_argument("--out", type=Path, default=Path("bench/results/heldout_per_space"))
    parser.add_argument("--max-windows", type=int, default=None, help="distinct windows per space (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--card", type=Path, default=None, help="model card to update (first model's numbers)")
    parser.add_argument("--card-section", type=Path, default=None,
                        help="markdown put before the table in the card (replay commands etc.)")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="skip the evaluation: update --card from the OUT.json of an earlier run")
    args = parser.parse_args(argv)
    if args.from_json is not None:
        if args.card is None:
            parser.error("--from-json needs --card")
        _update_card(args, json.loads(args.from_json.read_text(encoding="utf-8")))
        return 0
    if args.corpus is None:
        parser.error("--corpus is required (unless --from-json)")
    torch.set_num_threads(1)
    started = time.perf_counter()
    models = [m for m in args.models.split(",") if m]
    result = evaluate(args.corpus, models, args.max_windows, args.seed)
    result.update(seconds=round(time.perf_counter() - started, 1), threads=1, machine=platform.machine(),
                  processor=platform.processor() or "unknown", command="python " + " ".join(sys.argv))
    table = markdown(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(result, indent=1) + "\n")
    atomic_write_text(args.out.with_suffix(".md"),
                      "# Held-out next-layer accuracy per space\n\n" + _intro(result) + table)
    if args.card is not None:
        _update_card(args, result)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
