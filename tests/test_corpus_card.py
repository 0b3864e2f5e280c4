"""A corpus folder's dataset card (README.md) and DatasetInfo descriptions, and publishing it on the Hub.

``push_corpus_to_hub`` / ``arch-gpt corpus push`` run datasets' and huggingface_hub's real upload code against an
in-memory fake of the Hub's HTTP (``fake_dataset_hub.py``): only the Hub's HTTP is mocked, Xet is switched off so
the Parquet shards take the LFS upload path (batch API + PUT); nothing leaves the machine.
"""
from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest
from datasets import load_from_disk
from huggingface_hub import DatasetCard

from arch_gpt.cli import main
from arch_gpt.errors import UserInputError
from arch_gpt.training.corpus_card import build_command, push_corpus_to_hub, size_category
from fake_dataset_hub import fake_dataset_hub  # noqa: F401 (fixture)
from model_fixtures import build_tiny_corpus, tiny_architectures

COLUMNS = ("input_ids", "attention_mask", "labels", "count", "context_ids", "next_id", "label")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_tiny_corpus(tmp_path_factory.mktemp("corpus") / "tiny", tiny_architectures())


def test_card_is_a_dataset_card_with_columns_split_sizes_and_license(corpus):
    card = DatasetCard.load(corpus / "README.md")
    assert card.data.license == "apache-2.0" and card.data.size_categories == ["n<1K"]
    assert "neural-architecture-search" in card.data.tags
    for column in COLUMNS:
        assert f"| `{column}` |" in card.text
    lm, blocks = load_from_disk(str(corpus / "lm")), load_from_disk(str(corpus / "blocks"))
    for config, splits in (("lm", lm), ("blocks", blocks)):
        for split, data in splits.items():
            assert f"| `{config}` | {split} | {len(data):,} | {sum(data['count']):,} |" in card.text
    assert "split is by architecture" in card.text and "## License" in card.text
    assert str(corpus.parent) not in str(card)                       # no machine paths


def test_datasets_carry_a_description_of_their_columns(corpus):
    lm, blocks = load_from_disk(str(corpus / "lm")), load_from_disk(str(corpus / "blocks"))
    for split in lm:
        info = lm[split].info
        assert "input_ids int32[11]" in info.description and "count int64" in info.description
        assert info.license == "apache-2.0"
        assert "context_ids int32[10]" in blocks[split].info.description


def test_size_categories_and_command():
    assert [size_category(n) for n in (0, 999, 1000, 2_000_000)] == ["n<1K", "n<1K", "1K<n<10K", "1M<n<10M"]
    summary = {"corpus": "torchvision", "options": {"seed": 0, "models": ["resnet18"], "tokenizer": "/home/me/x",
                                                    "input_size": 32}}
    assert build_command(summary, {"seed": 0, "models": ["resnet18", "resnet34"], "tokenizer": None,
                                   "input_size": 32}) == \
        "arch-gpt corpus torchvision --out DIR --tokenizer NB101_DIR/tokenizer --models resnet18"


def test_push_corpus_to_hub_publishes_two_configs_and_the_card(corpus, fake_dataset_hub):
    url = push_corpus_to_hub(corpus, "me/tiny-corpus")
    assert url.endswith("datasets/me/tiny-corpus")
    files = fake_dataset_hub.files["me/tiny-corpus"]
    assert {"README.md", "summary.json", "tokenizer/tokenizer.json"} <= set(files)
    local = {"lm": load_from_disk(str(corpus / "lm")), "blocks": load_from_disk(str(corpus / "blocks"))}
    for config, splits in local.items():
        for split, data in splits.items():
            (shard,) = [p for p in files if p.startswith(f"{config}/{split}-") and p.endswith(".parquet")]
            assert shard in fake_dataset_hub.lfs_paths["me/tiny-corpus"]         # uploaded through LFS
            table = pq.read_table(io.BytesIO(files[shard]))
            assert table.to_pydict() == data.data.table.to_pydict()
    assert any(method == "PUT" and path.startswith("/fake-lfs/") for method, path in fake_dataset_hub.requests)
    card = DatasetCard(files["README.md"].decode())
    configs = {c["config_name"]: c for c in card.data.configs}
    assert configs["lm"].get("default") is True and "default" not in configs["blocks"]
    assert {d["split"] for d in configs["blocks"]["data_files"]} == set(local["blocks"])
    assert {i["config_name"] for i in card.data.dataset_info} == {"lm", "blocks"}
    assert card.data.license == "apache-2.0" and "## Columns" in card.text          # our card, with their metadata


def test_cli_push(corpus, fake_dataset_hub, capsys):
    assert main(["corpus", "push", str(corpus), "--repo-id", "me/cli-corpus"]) == 0
    assert "me/cli-corpus" in capsys.readouterr().out
    assert "lm/train-00000-of-00001.parquet" in fake_dataset_hub.files["me/cli-corpus"]


def test_push_of_a_folder_that_is_not_a_corpus_is_a_user_error(tmp_path, fake_dataset_hub):
    with pytest.raises(UserInputError, match="not a corpus folder"):
        push_corpus_to_hub(tmp_path, "me/nothing")
    (tmp_path / "summary.json").write_text(json.dumps({"corpus": "x"}))
    with pytest.raises(UserInputError, match="lm"):
        push_corpus_to_hub(tmp_path, "me/nothing")
    assert fake_dataset_hub.requests == []
