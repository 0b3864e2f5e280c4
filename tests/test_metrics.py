"""Held-out metrics: target extraction from left-padded windows, count weighting, the two baselines, the
count-weighted loss weights. Hand-made windows whose right answers are known."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Dataset

from arch_gpt.training.metrics import Baselines, next_token_arrays, weighted_accuracy
from arch_gpt.training.weighted_trainer import row_weights

PAD, BOS = 0, 1


def windows(rows: list[tuple[list[int], int]]) -> Dataset:
    """Rows of (context tokens, count) padded on the left to 4 tokens (3 context + target)."""
    ids, mask, count = [], [], []
    for tokens, n in rows:
        ids.append([PAD] * (4 - len(tokens)) + tokens)
        mask.append([0] * (4 - len(tokens)) + [1] * len(tokens))
        count.append(n)
    return Dataset.from_dict({"input_ids": ids, "attention_mask": mask, "count": count})


def test_target_is_last_token_and_previous_is_the_one_before():
    arrays = next_token_arrays(windows([([BOS, 5], 1), ([BOS, 5, 6, 7], 3)]))
    assert arrays.target.tolist() == [5, 7] and arrays.previous.tolist() == [BOS, 6]
    assert arrays.count.tolist() == [1, 3]


def test_rows_without_context_are_dropped():
    arrays = next_token_arrays(windows([([BOS], 1), ([BOS, 5], 2)]))
    assert arrays.target.tolist() == [5]


def test_weighted_accuracy_counts_duplicates():
    assert weighted_accuracy(np.array([1, 2]), np.array([1, 3]), np.array([3.0, 1.0])) == pytest.approx(0.75)


def test_baselines_fit_most_frequent_and_bigram_with_counts():
    train = next_token_arrays(windows([([BOS, 5], 1), ([5, 6], 4), ([5, 7], 1), ([6, 5], 2), ([BOS, 7], 1)]))
    baselines = Baselines.fit(train, vocab_size=8)
    assert baselines.most_frequent == 6  # 6 occurs 4 times (as a target), 5 twice+once, 7 twice
    assert baselines.bigram[5] == 6 and baselines.bigram[6] == 5 and baselines.bigram[BOS] in (5, 7)
    assert baselines.bigram[2] == 6  # unseen previous token: the most frequent
    heldout = next_token_arrays(windows([([5, 6], 1), ([6, 5], 1), ([2, 7], 2)]))
    metrics = baselines.metrics(heldout)
    assert metrics["most_frequent_baseline_top1"] == pytest.approx(0.25)
    assert metrics["bigram_baseline_top1"] == pytest.approx(0.5)


def test_row_weights_modes():
    count = torch.tensor([1, 4, 9])
    assert row_weights(count, "count").tolist() == [1, 4, 9]
    assert row_weights(count, "sqrt").tolist() == [1, 2, 3]
    assert row_weights(count, "none").tolist() == [1, 1, 1]


def test_row_weights_unknown_mode():
    with pytest.raises(ValueError, match="loss_weighting"):
        row_weights(torch.tensor([1]), "log")


def test_fixed_size_list_columns_read_like_plain_lists():
    """Corpus splits store windows as fixed-size lists: read without per-row work, same arrays as plain lists (a
    ``select``ed view too)."""
    from datasets import Features, List, Value

    plain = windows([([BOS, 5], 1), ([BOS, 5, 6, 7], 3), ([BOS, 8, 9], 2)])
    features = Features({"input_ids": List(Value("int32"), length=4), "attention_mask": List(Value("int8"), length=4),
                         "count": Value("int64")})
    fixed = plain.cast(features)
    for a, b in ((plain, fixed), (plain.select([2, 0]), fixed.select([2, 0]))):
        x, y = next_token_arrays(a), next_token_arrays(b)
        assert np.array_equal(x.input_ids, y.input_ids) and np.array_equal(x.attention_mask, y.attention_mask)
        assert np.array_equal(x.target, y.target) and np.array_equal(x.count, y.count)
