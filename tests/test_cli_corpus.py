"""``arch-gpt corpus nasbench101|torchvision`` end to end on tiny corpora, run in-process through ``cli.main``.

NAS-Bench-101: 300 of the 2,532 cells with at most 5 vertices (sampled without enumerating the space);
torchvision: 3 small Table-2 models. Folders are loaded back with ``datasets.load_from_disk``. The traced models'
token cache lives in a temporary ``$ARCH_GPT_CACHE`` for the module.
"""
import json

import numpy as np
import pytest
from datasets import load_from_disk

from arch_gpt.cli import main
from arch_gpt.tokenizer.tokenization import LayerTokenizer, layer_tokens
from arch_gpt.training.data import WINDOW
from arch_gpt.zoo.torchvision_models import trace_table2_model

MODELS = "resnet18,shufflenet_v2_x0_5,regnet_x_400mf"


NB_ARGS = ["--max-vertices", "5", "--max-archs", "300", "--vocab-models", MODELS, "--seed", "1", "--no-progress"]


@pytest.fixture(scope="module", autouse=True)
def token_cache(tmp_path_factory):
    """A fresh traced-model token cache for this module (so the first build traces and the later ones read)."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCH_GPT_CACHE", str(folder))
        yield folder / "table2-tokens"


@pytest.fixture(scope="module")
def nb_dir(tmp_path_factory, token_cache):
    out = tmp_path_factory.mktemp("corpora") / "nb101"
    assert not token_cache.exists()
    rc = main(["corpus", "nasbench101", "--out", str(out), *NB_ARGS])
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def tv_dir(nb_dir):
    out = nb_dir.parent / "tv"
    rc = main(["corpus", "torchvision", "--out", str(out), "--models", MODELS, "--tokenizer",
               str(nb_dir / "tokenizer"), "--validation-fraction", "0.34", "--no-progress"])
    assert rc == 0
    return out


def test_nasbench101_summary(nb_dir):
    summary = json.loads((nb_dir / "summary.json").read_text())
    assert summary["corpus"] == "nasbench101"
    assert summary["cell_selection"] == "sampled" and "enumerated_cells" not in summary
    assert summary["space_cells"] == 2532
    assert summary["cells_by_vertices"] == {"2": 1, "3": 6, "4": 84, "5": 2441}
    assert summary["architectures"] == 300
    assert summary["architectures_per_split"] == {"train": 270, "validation": 30}
    assert summary["windows"] == summary["layers"] + 300                 # n + 1 windows per architecture
    assert summary["unique_windows"] < summary["windows"]
    assert summary["vocab_size"] == LayerTokenizer.from_pretrained(nb_dir / "tokenizer").vocab_size
    assert summary["build_seconds"] > 0
    assert not [p for p in nb_dir.parent.iterdir() if p.name.startswith(".nb101")]  # no staging folder left


def test_a_rebuild_reads_the_token_cache_and_gives_the_same_corpus(nb_dir, token_cache, monkeypatch):
    """The vocabulary models are traced once (cached under $ARCH_GPT_CACHE); a rebuild traces nothing and writes the
    same tokenizer (ids) and datasets."""
    from arch_gpt.zoo import torchvision_models

    cached = sorted(p.name for p in token_cache.rglob("*.json"))
    assert cached == sorted(f"{m}-32.json" for m in MODELS.split(","))

    def refuse(*args, **kwargs):
        raise AssertionError("traced although cached")

    monkeypatch.setattr(torchvision_models, "trace_table2_model", refuse)
    again = nb_dir.parent / "nb101-again"
    assert main(["corpus", "nasbench101", "--out", str(again), *NB_ARGS]) == 0
    assert LayerTokenizer.from_pretrained(again / "tokenizer") == LayerTokenizer.from_pretrained(nb_dir / "tokenizer")
    assert json.loads((again / "splits.json").read_text()) == json.loads((nb_dir / "splits.json").read_text())
    for part in ("lm", "blocks"):
        a, b = load_from_disk(str(nb_dir / part)), load_from_disk(str(again / part))
        assert all(a[split].to_dict() == b[split].to_dict() for split in a)


def test_enumerated_cells_on_request(tmp_path):
    out = tmp_path / "nb"
    assert main(["corpus", "nasbench101", "--out", str(out), "--max-vertices", "4", "--max-archs", "20",
                 "--cells", "enumerate", "--vocab-models", "resnet18", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cell_selection"] == "enumerated" and summary["enumerated_cells"] == summary["space_cells"] == 91
    assert summary["architectures"] == 20 and "--cells enumerate" in summary["command"]


def test_nasbench101_card(nb_dir):
    """README.md is a dataset card naming the build command (no machine path) and the sizes."""
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(nb_dir / "README.md")
    summary = json.loads((nb_dir / "summary.json").read_text())
    assert summary["command"] == ("arch-gpt corpus nasbench101 --out DIR --max-archs 300 --seed 1 --max-vertices 5 "
                                  f"--vocab-models {MODELS}")
    assert f"`{summary['command']}`" in card.text and "NAS-Bench-101 networks" in card.text
    assert "- cell selection: sampled" in card.text and str(nb_dir) not in card.text


def test_nasbench101_datasets_load_back(nb_dir):
    summary = json.loads((nb_dir / "summary.json").read_text())
    splits = json.loads((nb_dir / "splits.json").read_text())
    assert len(splits["train"]) == 270 and not set(splits["train"]) & set(splits["validation"])
    lm = load_from_disk(str(nb_dir / "lm"))
    for split in ("train", "validation"):
        ids = np.array(lm[split]["input_ids"])
        assert ids.shape == (summary["unique_windows_per_split"][split], WINDOW + 1)
        assert sum(lm[split]["count"]) == summary["windows_per_split"][split]
        assert len(np.unique(ids, axis=0)) == len(ids)                    # deduplicated
    blocks = load_from_disk(str(nb_dir / "blocks"))
    assert set(blocks["train"].features["label"].names) >= {"Cell", "Stem", "Head", "Downsample", "Bottleneck"}


def test_vocabulary_covers_torchvision_models(nb_dir):
    tok = LayerTokenizer.from_pretrained(nb_dir / "tokenizer")
    for name in MODELS.split(","):
        assert all(tok.in_vocab(t) for t in layer_tokens(trace_table2_model(name)))


def test_vocabulary_covers_tabular_spaces_after_the_counted_tokens(nb_dir):
    """NB201's none/skip/avg-pool and Macro's expansion-3 layers get ids, appended so counted ids never move."""
    summary = json.loads((nb_dir / "summary.json").read_text())
    tok = LayerTokenizer.from_pretrained(nb_dir / "tokenizer")
    assert summary["vocab_spaces"] == ["nasbench201", "nasbench-macro"]
    for token in ("other:Zero", "other:Identity", "pool:Avg:k3x3:s1x1:p1-1-1-1:d1:b0",
                  "conv:k1x1:s1x1:p0-0-0-0:d1:g1:b0:r3"):
        assert tok.in_vocab(token)
    assert tok.get_vocab()["other:Zero"] >= summary["vocab_counted"]
    assert tok.layer_token_list[:summary["vocab_counted"]] == LayerTokenizer.from_counts(
        _counted_tokens(nb_dir)).layer_token_list


def _counted_tokens(nb_dir) -> dict[str, int]:
    """Token counts of the corpus's own architectures plus the vocabulary models (what the vocabulary counts)."""
    from collections import Counter
    tok = LayerTokenizer.from_pretrained(nb_dir / "tokenizer")
    lm = load_from_disk(str(nb_dir / "lm"))
    counts: Counter = Counter()
    for split in ("train", "validation"):
        for row, n in zip(lm[split]["input_ids"], lm[split]["count"]):
            counts[tok.ids_to_tokens([row[-1]])[0]] += n
    for name in MODELS.split(","):
        counts.update(layer_tokens(trace_table2_model(name)))
    return {t: n for t, n in counts.items() if t not in ("[EOS]",)}


def test_torchvision_corpus_reuses_tokenizer(nb_dir, tv_dir):
    summary = json.loads((tv_dir / "summary.json").read_text())
    assert summary["corpus"] == "torchvision" and summary["architectures"] == 3
    assert summary["families"] == {"ResNet": 1, "ShuffleNetV2": 1, "RegNet": 1}
    assert summary["unknown_layers"] == 0
    assert LayerTokenizer.from_pretrained(tv_dir / "tokenizer") == LayerTokenizer.from_pretrained(nb_dir / "tokenizer")
    splits = json.loads((tv_dir / "splits.json").read_text())
    assert sorted(splits["train"] + splits["validation"]) == sorted(MODELS.split(","))
    assert len(splits["validation"]) == 1


def test_torchvision_window_decodes_to_the_architecture(tv_dir):
    """The windows of a model are its token list, in order, behind [BOS]."""
    tok = LayerTokenizer.from_pretrained(tv_dir / "tokenizer")
    splits = json.loads((tv_dir / "splits.json").read_text())
    name = splits["validation"][0]
    tokens = layer_tokens(trace_table2_model(name))
    lm = load_from_disk(str(tv_dir / "lm"))["validation"]
    windows = {tuple(tok.ids_to_tokens(r)) for r in lm["input_ids"]}
    padded = ["[PAD]"] * WINDOW + ["[BOS]"] + tokens + ["[EOS]"]
    expected = {tuple(padded[j - WINDOW:j + 1]) for j in range(WINDOW + 1, len(padded))}
    assert windows == expected
    blocks = load_from_disk(str(tv_dir / "blocks"))["validation"]
    assert sum(blocks["count"]) == len(tokens)                            # every traced layer has a block


def test_builds_are_reproducible(tv_dir, nb_dir):
    again = tv_dir.parent / "tv-again"
    assert main(["corpus", "torchvision", "--out", str(again), "--models", MODELS, "--tokenizer",
                 str(nb_dir / "tokenizer"), "--validation-fraction", "0.34", "--no-progress"]) == 0
    for part in ("lm", "blocks"):
        a, b = load_from_disk(str(tv_dir / part)), load_from_disk(str(again / part))
        for split in ("train", "validation"):
            assert a[split].to_dict() == b[split].to_dict()


@pytest.mark.parametrize("args, needle", [
    (["nasbench101", "--max-vertices", "9"], "--max-vertices"),
    (["nasbench101", "--max-vertices", "3", "--max-archs", "0"], "--max-archs"),
    (["nasbench101", "--max-vertices", "3", "--validation-fraction", "1.5"], "validation_fraction"),
    (["nasbench101", "--max-vertices", "3", "--vocab-models", "resnet18,vgg11"], "vgg11"),
    (["nasbench101", "--max-vertices", "3", "--threshold", "1.5"], "--threshold"),
    (["nasbench101", "--max-vertices", "3", "--vocab-models", "resnet18", "--vocab-spaces", "darts"], "darts"),
    (["nasbench101", "--max-vertices", "3", "--workers", "0"], "--workers"),
    (["nasbench101", "--max-vertices", "3", "--vocab-models", "resnet18", "--cells", "sample"], "--cells sample"),
    (["nasbench101", "--max-vertices", "3", "--vocab-models", "resnet18", "--cells", "sample", "--max-archs", "8"],
     "at most 7"),
    (["nasbench101", "--max-vertices", "3", "--vocab-models", "resnet18", "--nasbench-record", "/no/such.tfrecord"],
     "such.tfrecord"),
    (["torchvision", "--models", "resnet18,resnet18"], "--models"),
    (["torchvision", "--models", "resnet18", "--input-size", "8"], "--input-size"),
    (["torchvision", "--models", "alexnet"], "alexnet"),
])
def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys, args, needle):
    rc = main(["corpus", args[0], "--out", str(tmp_path / "out"), "--no-progress", *args[1:]])
    err = capsys.readouterr().err
    assert rc == 2
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_existing_output_needs_overwrite(tmp_path, capsys):
    """A folder of other data is never replaced; an earlier corpus is, with --overwrite."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("x")
    args = ["corpus", "torchvision", "--out", str(out), "--models", "resnet18", "--no-progress"]
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err and (out / "precious.txt").exists()
    assert main([*args, "--overwrite"]) == 2
    assert "not a corpus folder" in capsys.readouterr().err and (out / "precious.txt").exists()
    (out / "precious.txt").unlink()
    assert main(args) == 0                                   # an empty folder takes the corpus
    assert main(args) == 2 and main([*args, "--overwrite"]) == 0
    assert (out / "summary.json").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_nasbench_record_filters_cells(tmp_path):
    """A small record file in the real format: only cells with mean validation accuracy >= threshold are kept."""
    from arch_gpt.zoo.nasbench101 import enumerate_table
    from arch_gpt.zoo.nasbench_records import Evaluation, NB101Record, write_records

    table = enumerate_table(max_vertices=4, progress=False)
    records = []
    for i in range(0, 40):
        cell = table[i]
        acc = 0.95 if i % 4 == 0 else 0.5
        records += [NB101Record(table.hash(i), 108, cell.matrix, cell.ops,
                                (Evaluation(current_epoch=108.0, validation_accuracy=acc + d),), 1000, 1.0)
                    for d in (-0.01, 0.01)]                    # two repeats: the mean is what counts
    path = write_records(tmp_path / "nb.tfrecord", records)
    out = tmp_path / "out"
    assert main(["corpus", "nasbench101", "--out", str(out), "--max-vertices", "4", "--nasbench-record", str(path),
                 "--threshold", "0.9", "--vocab-models", "resnet18", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    splits = json.loads((out / "splits.json").read_text())
    good = {table.hash(i) for i in range(0, 40, 4)}
    assert summary["records_kept"] == summary["cells_after_filter"] == summary["architectures"] == len(good)
    assert set(splits["train"]) | set(splits["validation"]) == good
