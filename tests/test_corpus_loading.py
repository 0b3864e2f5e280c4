"""Reading corpus folders for training: held-out split choice, seeded subsampling, id re-mapping between
vocabularies (label padding kept), vocabulary extension. Real datasets and tokenizers, no mocks."""
from __future__ import annotations

import pytest
from datasets import Dataset, DatasetDict

from arch_gpt.errors import UserInputError
from arch_gpt.tokenizer import LayerTokenizer
from arch_gpt.training.corpus_loading import (
    CorpusFolderError, extend_tokenizer, heldout_split, id_map, load_blocks, remap_ids, subsample,
)

A, B, C = "other:ReLU", "other:BN", "conv:k3x3:s1x1:p1-1-1-1:d1:g1:b0:r1"


def splits(*names: str) -> DatasetDict:
    return DatasetDict({n: Dataset.from_dict({"x": [1, 2]}) for n in names})


def test_heldout_prefers_test_then_validation():
    assert heldout_split(splits("train", "validation", "test"), None) == "test"
    assert heldout_split(splits("train", "validation"), None) == "validation"


def test_requested_heldout_split_must_exist():
    with pytest.raises(CorpusFolderError, match="--heldout_split"):
        heldout_split(splits("train", "validation"), "test")


def test_corpus_without_heldout_split_is_rejected():
    with pytest.raises(CorpusFolderError, match="held-out"):
        heldout_split(splits("train"), None)


def test_subsample_is_seeded_and_bounded():
    data = Dataset.from_dict({"x": list(range(100))})
    first, again = subsample(data, 10, seed=3), subsample(data, 10, seed=3)
    assert len(first) == 10 and first["x"] == again["x"] and first["x"] != subsample(data, 10, seed=4)["x"]
    assert subsample(data, None, 0) is data and subsample(data, 500, 0) is data


def test_subsample_limit_must_be_positive():
    with pytest.raises(UserInputError, match="must be >= 1"):
        subsample(Dataset.from_dict({"x": [1, 2]}), 0, 0)


def test_ids_are_remapped_by_token_string_and_label_padding_is_kept():
    source, target = LayerTokenizer.from_tokens([A, B]), LayerTokenizer.from_tokens([B, C, A])
    table = id_map(source, target)
    ids = source.tokens_to_ids([A, B])
    data = Dataset.from_dict({"input_ids": [[source.pad_token_id, *ids]], "labels": [[-100, -100, ids[1]]]})
    out = remap_ids(data, table, ("input_ids", "labels"))[0]
    assert out["input_ids"] == [target.pad_token_id, *target.tokens_to_ids([A, B])]
    assert out["labels"] == [-100, -100, target.tokens_to_ids([B])[0]]


def test_tokens_missing_from_the_target_become_unk():
    source, target = LayerTokenizer.from_tokens([A, C]), LayerTokenizer.from_tokens([A])
    assert id_map(source, target)[source.tokens_to_ids([C])[0]] == target.unk_token_id


def test_extend_tokenizer_appends_new_tokens_keeping_ids():
    model, corpus = LayerTokenizer.from_tokens([A, B]), LayerTokenizer.from_tokens([C, A])
    grown = extend_tokenizer(model, corpus)
    assert all(grown.get_vocab()[t] == i for t, i in model.get_vocab().items())
    assert grown.in_vocab(C) and grown.vocab_size == model.vocab_size + 1
    assert extend_tokenizer(model, LayerTokenizer.from_tokens([B])) is model


def test_folder_without_blocks_is_a_user_error(tmp_path):
    with pytest.raises(CorpusFolderError, match="blocks"):
        load_blocks(tmp_path)
