"""The dataset card of a corpus folder (``DIR/README.md``), the ``DatasetInfo`` descriptions of its two
``DatasetDict`` s, and publishing a corpus on the Hugging Face Hub.

The card is written with ``huggingface_hub``'s ``DatasetCard``/``DatasetCardData`` (license, tags, size category
in its YAML header): what the corpus is, the columns of ``lm/`` and ``blocks/``, the split, the sizes, how it was
built (the ``arch-gpt corpus`` command, options and vocabulary) and how to load it.

:func:`push_corpus_to_hub` publishes a folder as a dataset repository: the card, ``tokenizer/``, ``splits.json``
and ``summary.json`` first, then ``lm`` (the default config) and ``blocks`` as two configs with
``DatasetDict.push_to_hub(repo_id, config_name=...)``, which add their ``configs``/``dataset_info`` metadata to the
card. Afterwards ``datasets.load_dataset(repo_id, "lm")`` / ``(repo_id, "blocks")`` load them back.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from huggingface_hub import DatasetCard, DatasetCardData, HfApi

LICENSE = "apache-2.0"
LM_DESCRIPTION = (
    "Next-layer windows of CNN architectures written as layer tokens (arch-gpt). One row per distinct window of a "
    "split. input_ids int32[11]: 10 context token ids, left-padded with [PAD], then the next layer's id; "
    "attention_mask int8[11]: 0 on [PAD]; labels int64[11]: -100 except the last position (the next id), so a "
    "stock GPT2LMHeadModel's loss is the next-layer cross-entropy; count int64: how often the window occurs in the "
    "split (weight of the row). Token ids index the tokenizer in the corpus folder's tokenizer/.")
BLOCKS_DESCRIPTION = (
    "Block-classifier examples of CNN architectures written as layer tokens (arch-gpt): one row per distinct "
    "(10-token context, next layer, block class of the next layer). context_ids int32[10]; next_id int64; label "
    "ClassLabel (block classes such as Bottleneck, BasicBlock, Cell, Stem); count int64: occurrences in the split.")

COLUMNS = {
    "lm": [("input_ids", "int32[11]", "10 context layer-token ids (left-padded with `[PAD]`), then the next layer's "
                                      "id; the last context token always sits at position 9"),
           ("attention_mask", "int8[11]", "0 on `[PAD]`, 1 elsewhere"),
           ("labels", "int64[11]", "-100 except position 10 (the next id): a stock `GPT2LMHeadModel` loss is the "
                                   "next-layer cross-entropy"),
           ("count", "int64", "how often this window occurs in the split (windows are deduplicated; weight rows "
                              "by it)")],
    "blocks": [("context_ids", "int32[10]", "the 10 layer-token ids before the layer"),
               ("next_id", "int64", "the layer's token id"),
               ("label", "ClassLabel", "the block class of the layer (e.g. Bottleneck, BasicBlock, Cell, Stem)"),
               ("count", "int64", "how often this example occurs in the split")],
}

TEMPLATE = """---
{{ card_data }}
---

# {{ pretty_name }}

{{ description }}

## Contents

| config | split | distinct rows | occurrences (sum of `count`) |
|---|---|---|---|
{% for row in sizes -%}
| `{{ row.config }}` | {{ row.split }} | {{ row.rows }} | {{ row.occurrences }} |
{% endfor %}
{{ split_text }}

## Columns
{% for config, columns in column_tables.items() %}
`{{ config }}/`:

| column | type | meaning |
|---|---|---|
{% for name, type_, meaning in columns -%}
| `{{ name }}` | {{ type_ }} | {{ meaning }} |
{% endfor %}{% endfor %}
Layer tokens are documented in `arch_gpt/tokenizer/layer_tokens.py` of the arch-gpt package; `tokenizer/` is a
plain `PreTrainedTokenizerFast` (`AutoTokenizer.from_pretrained`).{% if label_names %} Block classes:
{{ label_names }}.{% endif %}

## How it was built

{{ built }}

## Use

```python
from datasets import load_from_disk
lm = load_from_disk("DIR/lm")            # DatasetDict: {{ split_names }}
blocks = load_from_disk("DIR/blocks")
# published with arch_gpt.training.corpus_card.push_corpus_to_hub(DIR, "user/name"):
from datasets import load_dataset
lm = load_dataset("user/name", "lm")
```

Train on it with `python -m arch_gpt.training.pretrain --data_dir DIR --output_dir runs/pretrain`.

## License

{{ license_text }}
"""

_CORPUS_TEXT = {
    "nasbench101": ("NAS-Bench-101 networks", "Full NAS-Bench-101 networks (stem, 3 stacks of 3 cells with "
                    "downsampling, head; Ying et al., 2019) expanded from their cells and written as layer tokens, "
                    "for pre-training a GPT that predicts the next layer of a CNN (GPT-NAS, §4.2)."),
    "torchvision": ("torchvision Table-2 architectures", "The torchvision classification architectures of GPT-NAS "
                    "Table 2 (EfficientNet, GoogLeNet, RegNet, ResNet, ResNeXt, ShuffleNetV2, Wide-ResNet; "
                    "weights=None, traced at a small input) written as layer tokens, for fine-tuning (GPT-NAS, §4.2)."),
    "all-spaces": ("every built-in space", "Networks of every built-in space written as layer tokens: sampled "
                   "NAS-Bench-101 cells, all NAS-Bench-201 cells, all NAS-Bench-Macro codes, sampled block-space "
                   "genomes (plus genomes holding every block choice) and the torchvision Table-2 models, each "
                   "source held out on its own; the `space` column names each row's source. Architectures only, "
                   "no accuracies."),
}


def size_category(rows: int) -> str:
    """The Hub's size category of ``rows`` rows."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                        (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")):
        if rows < limit:
            return name
    return "100M<n<1B"


def _option_flag(key: str, value: Any) -> str | None:
    """``--key value`` for one recorded option (paths reduced to their name: no machine paths in a card)."""
    if value is None or value is False:
        return None
    flag = "--" + key.replace("_", "-")
    if value is True:
        return flag
    if isinstance(value, (list, tuple)):
        value = ",".join(map(str, value))
    if key in ("tokenizer", "nasbench_record", "cell_cache") and value:
        value = Path(str(value)).name if key != "tokenizer" else "NB101_DIR/tokenizer"
    return f"{flag} {value}"


def build_command(summary: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> str:
    """The ``arch-gpt corpus`` command of a corpus (options that differ from ``defaults``)."""
    corpus = summary.get("corpus", "")
    options = dict(summary.get("options") or {})
    defaults = dict(defaults or {})
    skip = {"workers", "vocab_models", "models"}  # the model lists go last (they can be long)
    flags = [_option_flag(k, v) for k, v in options.items()
             if k not in skip and (k not in defaults or defaults[k] != v)]
    for key in ("vocab_models", "models"):
        if key in options and key in defaults and options[key] != defaults[key]:
            flags.append(_option_flag(key, options[key]))
    return " ".join(["arch-gpt corpus", corpus, "--out DIR", *[f for f in flags if f]])


def _sizes(summary: Mapping[str, Any], data) -> list[dict]:
    rows = []
    for config, splits in (("lm", data.lm), ("blocks", data.blocks)):
        for split, dataset in splits.items():
            occurrences = int(sum(dataset["count"])) if "count" in dataset.column_names and len(dataset) else 0
            rows.append({"config": config, "split": split, "rows": f"{len(dataset):,}", "occurrences":
                         f"{occurrences:,}"})
    return rows


def _built(summary: Mapping[str, Any], command: str) -> str:
    lines = [f"`{command}` (arch-gpt)" if command else "with the arch-gpt corpus code"]
    facts = [("architectures", "architectures"), ("layers", "layers"), ("vocab_size", "vocabulary size"),
             ("vocab_counted", "counted tokens (the rest appended for the tabular spaces)"),
             ("unknown_layers", "layers outside the vocabulary ([UNK])"), ("cell_selection", "cell selection"),
             ("space_cells", "cells in the space"), ("records_kept", "cells kept by the record file"),
             ("build_seconds", "build seconds")]
    lines += [f"- {label}: {summary[key]:,}" if isinstance(summary[key], int) else f"- {label}: {summary[key]}"
              for key, label in facts if key in summary]
    if summary.get("vocab_models"):
        lines.append(f"- the vocabulary also counts the layers of {len(summary['vocab_models'])} torchvision models")
    if summary.get("vocab_spaces"):
        lines.append(f"- and gives ids to the layers of: {', '.join(summary['vocab_spaces'])}")
    return "\n".join(lines)


def corpus_card(summary: Mapping[str, Any], data, command: str = "") -> DatasetCard:
    """The dataset card of a corpus from its ``summary.json`` content and its :class:`~.data.CorpusDatasets`."""
    corpus = str(summary.get("corpus", "corpus"))
    title, text = _CORPUS_TEXT.get(corpus, (f"{corpus} architectures", "CNN architectures written as layer "
                                                                        "tokens (arch-gpt)."))
    total = sum(len(d) for d in data.lm.values())
    card_data = DatasetCardData(
        license=LICENSE, pretty_name=f"arch-gpt corpus: {title}", size_categories=[size_category(total)],
        task_categories=["other"], tags=["neural-architecture-search", "arch-gpt", "layer-tokens", corpus],
        source_datasets=["original"])
    overlap = summary.get("validation_windows_seen_in_train")
    split_text = (f"The split is by architecture ({summary.get('architectures_per_split', {})}): no architecture "
                  "contributes to two splits; an identical window may still occur in both"
                  + (f" ({overlap:.1%} of validation windows also occur in train)." if overlap is not None else "."))
    labels = summary.get("label_names") or data.blocks[next(iter(data.blocks))].features["label"].names
    return DatasetCard.from_template(
        card_data, template_str=TEMPLATE, pretty_name=card_data.pretty_name, description=text,
        sizes=_sizes(summary, data), split_text=split_text, column_tables=COLUMNS,
        label_names=", ".join(labels), built=_built(summary, command), split_names=list(data.lm),
        license_text="Apache-2.0, like arch-gpt. NAS-Bench-101 (Apache-2.0) and torchvision (BSD-3-Clause) define "
                     "the architectures; no weights or images are included.")


def push_corpus_to_hub(folder: str | Path, repo_id: str, *, token: str | None = None,
                       private: bool | None = None) -> str:
    """Publish a corpus folder as the dataset repository ``repo_id`` (created if needed): ``README.md`` (the card),
    ``tokenizer/``, ``splits.json``, ``summary.json``, then the ``lm`` (default) and ``blocks`` configs as Parquet
    with ``DatasetDict.push_to_hub(repo_id, config_name=...)``. Returns the repository URL."""
    from arch_gpt.errors import UserInputError
    from arch_gpt.training.corpus_loading import _load_dict

    folder = Path(folder)
    if not (folder / "summary.json").is_file():
        raise UserInputError(f"{folder}: not a corpus folder (no summary.json); build one with `arch-gpt corpus`")
    parts = {name: _load_dict(folder / name, name) for name in ("lm", "blocks")}
    api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=folder,
                      allow_patterns=["README.md", "summary.json", "splits.json", "tokenizer/*"],
                      commit_message="arch-gpt corpus: card, tokenizer and summary")
    for name, splits in parts.items():
        splits.push_to_hub(repo_id, config_name=name, set_default=name == "lm", token=token, private=private,
                           commit_message=f"arch-gpt corpus: the {name} config")
    return str(url)
