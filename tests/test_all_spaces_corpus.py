"""``arch-gpt corpus all-spaces`` on tiny sizes: every built-in space's choice tokens are training targets, each
source is held out on its own (``space`` column), no accuracy anywhere, fitness tokens in the vocabulary but never
in a window, the folder loads for pre-training, and bad options fail with one line.

Tiny build: 12 NAS-Bench-101 cells, 30 NAS-Bench-201 cells, 30 NAS-Bench-Macro codes, 3 block genomes (plus the
coverage genomes), 2 torchvision models.
"""
import json

import numpy as np
import pytest
from datasets import load_from_disk

from arch_gpt.cli import main
from arch_gpt.tokenizer.tokenization import FITNESS_TOKENS, LayerTokenizer
from arch_gpt.training.all_spaces_corpus import SOURCES, AllSpacesCorpusConfig, build_all_spaces_corpus, choice_tokens
from arch_gpt.training.data import CorpusError, WINDOW

ARGS = ["--nasbench101-cells", "12", "--nasbench201-cells", "30", "--macro-codes", "30", "--block-samples", "3",
        "--models", "resnet18,shufflenet_v2_x0_5", "--seed", "3", "--no-progress"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpora") / "all"
    assert main(["corpus", "all-spaces", "--out", str(out), *ARGS]) == 0
    return out


@pytest.fixture(scope="module")
def lm(corpus):
    return load_from_disk(str(corpus / "lm"))


@pytest.fixture(scope="module")
def tokenizer(corpus):
    return LayerTokenizer.from_pretrained(corpus / "tokenizer")


def _targets(dataset, tokenizer) -> set[str]:
    ids = np.asarray(dataset["labels"])[:, WINDOW]
    return set(tokenizer.ids_to_tokens(sorted(set(ids.tolist()))))


@pytest.mark.parametrize("space", ["nasbench201", "nasbench-macro", "blocks"])
def test_every_choice_token_is_a_training_target(lm, tokenizer, space):
    targets = _targets(lm["train"], tokenizer)
    tokens = choice_tokens(space)
    assert tokens and tokens <= targets


def test_sampled_units_allowed_tokens_are_targets(lm, tokenizer):
    """What the reconstructor asks for on random genomes of each built-in space is in the training targets."""
    from arch_gpt.search.spaces import create_space

    targets = _targets(lm["train"], tokenizer)
    rng = np.random.default_rng(0)
    for name, kwargs in (("nasbench201", {}), ("nasbench-macro", {}), ("blocks", {"input_size": (32, 32, 3)})):
        space = create_space(name, num_classes=10, **kwargs)
        for _ in range(3):
            for unit in space.units(space.sample(rng)):
                assert unit.allowed_tokens <= targets, name


def test_each_space_is_held_out_on_its_own(corpus, lm):
    summary = json.loads((corpus / "summary.json").read_text())
    per = summary["per_space"]
    assert list(per) == list(SOURCES)
    expected = {"nasbench101": 12, "nasbench201": 30, "nasbench-macro": 30, "torchvision": 2}
    for space, n in expected.items():
        assert per[space]["train"]["architectures"] + per[space]["validation"]["architectures"] == n
        assert per[space]["validation"]["architectures"] == max(1, round(0.1 * n))
    assert per["blocks"]["validation"]["architectures"] == 1  # of the 3 samples; coverage genomes are train-only
    assert per["blocks"]["train"]["architectures"] == 2 + summary["block_coverage_genomes"]
    for split in ("train", "validation"):
        spaces = np.asarray(lm[split]["space"])
        assert set(spaces) == set(SOURCES)
        for space in SOURCES:
            counts = np.asarray(lm[split]["count"])[spaces == space]
            assert counts.sum() == per[space][split]["windows"]
    names = json.loads((corpus / "splits.json").read_text())
    assert not set(names["train"]) & set(names["validation"])
    assert {n.split("/")[0] for n in names["validation"]} == set(SOURCES)


def test_no_accuracy_and_fitness_tokens_never_in_windows(corpus, lm, tokenizer):
    summary = json.loads((corpus / "summary.json").read_text())
    text = json.dumps({k: v for k, v in summary.items() if k != "accuracy_fields"}).lower()
    assert "accuracy" not in text and "acc" not in [k.lower() for k in summary]
    assert summary["accuracy_fields"].startswith("none")
    assert lm["train"].column_names == ["input_ids", "attention_mask", "labels", "count", "space"]
    assert tokenizer.fitness_tokens == list(FITNESS_TOKENS)
    fit_ids = set(tokenizer.tokens_to_ids(FITNESS_TOKENS))
    assert fit_ids == set(range(tokenizer.vocab_size - 3, tokenizer.vocab_size))   # appended last
    assert set(tokenizer.non_layer_ids) >= fit_ids
    for split in ("train", "validation"):
        assert not fit_ids & set(np.unique(np.asarray(lm[split]["input_ids"])).tolist())
    blocks = load_from_disk(str(corpus / "blocks"))
    assert "space" in blocks["train"].column_names and len(blocks["train"])


def test_folder_loads_for_pretraining(corpus, tokenizer):
    from arch_gpt.training.corpus_loading import load_tokenizer, load_windows, window_of

    assert load_tokenizer(corpus) == tokenizer
    windows = load_windows(corpus, tokenizer.vocab_size)
    assert window_of(windows) == WINDOW            # [BOS] + 10 tokens fit n_positions 11
    assert (corpus / "README.md").read_text().count("all-spaces") >= 1


def test_seeded_build_is_reproducible(corpus, tmp_path, lm):
    out = tmp_path / "again"
    assert main(["corpus", "all-spaces", "--out", str(out), *ARGS]) == 0
    again = load_from_disk(str(out / "lm"))
    assert again["validation"].to_dict() == lm["validation"].to_dict()


@pytest.mark.parametrize("args, needle", [
    (["--nasbench101-cells", "-1"], "--nasbench101-cells"),
    (["--nasbench201-cells", "20000"], "--nasbench201-cells"),
    (["--macro-codes", "7000"], "--macro-codes"),
    (["--block-samples", "-2"], "--block-samples"),
    (["--models", "alexnet"], "alexnet"),
    (["--validation-fraction", "1.0"], "--validation-fraction"),
    (["--seed", "-1"], "--seed"),
    (["--models", "resnet18", "--input-size", "8"], "--input-size"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, capsys, args, needle):
    rc = main(["corpus", "all-spaces", "--out", str(tmp_path / "out"), "--no-progress", *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bad_config_is_a_corpus_error(tmp_path):
    with pytest.raises(CorpusError, match="--block-samples"):
        build_all_spaces_corpus(AllSpacesCorpusConfig(out=tmp_path / "x", block_samples=True))


def test_torchvision_split_matches_the_torchvision_corpus(corpus, tmp_path):
    """Fine-tuning on ``arch-gpt corpus torchvision`` (same seed and models) never sees a held-out model."""
    out = tmp_path / "tv"
    assert main(["corpus", "torchvision", "--out", str(out), "--models", "resnet18,shufflenet_v2_x0_5", "--seed", "3",
                 "--tokenizer", str(corpus / "tokenizer"), "--no-progress"]) == 0
    tv = json.loads((out / "splits.json").read_text())
    names = json.loads((corpus / "splits.json").read_text())
    for split in ("train", "validation"):
        assert [f"torchvision/{n}" for n in tv[split]] == [n for n in names[split] if n.startswith("torchvision/")]
