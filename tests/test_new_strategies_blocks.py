"""The new strategies on the block space with real training (sklearn's digits, tiny budget) and a tiny real
ArchGPT whose vocabulary covers the space and the fitness tokens: +rank, +cond and both together run end to end."""
from __future__ import annotations

import numpy as np
import pytest

from arch_gpt.modeling import TINY, ArchGPT
from arch_gpt.search.data import load_image_data
from arch_gpt.search.screening import GPTFeatures, OneHotFeatures
from arch_gpt.search.spec import SearchConfig, build_search, build_space
from arch_gpt.tokenizer import LayerTokenizer
from arch_gpt.tokenizer.tokenization import FITNESS_TOKENS


@pytest.fixture(scope="module")
def digits():
    return load_image_data("digits", input_size=8, subset=0.2, seed=0)


def config(label: str, **kw) -> SearchConfig:
    return SearchConfig(strategy=label, space="blocks", dataset="digits", population=3, budget=12, epochs=1,
                        max_steps_per_epoch=2, batch_size=32, device="cpu", seed=0, **kw)


@pytest.fixture(scope="module")
def tiny_gpt(digits):
    space = build_space(config("ga"), digits)
    rng = np.random.default_rng(0)
    base = LayerTokenizer.build([space.to_architecture(space.sample(rng)) for _ in range(60)])
    tokens = base.ids_to_tokens(list(range(5, base.vocab_size)))
    return ArchGPT.create(LayerTokenizer.from_tokens([*tokens, *FITNESS_TOKENS]), device="cpu", **TINY)


@pytest.mark.parametrize("label, features", [("ga+rank", OneHotFeatures), ("ga+gpt+rank", GPTFeatures),
                                             ("ga+gpt+cond", None), ("ga+gpt+cond+rank", GPTFeatures)])
def test_new_labels_run_on_the_block_space_with_real_training(digits, tiny_gpt, label, features, tmp_path):
    search = build_search(config(label, rank_pool=3) if "rank" in label else config(label), data=digits,
                          model=tiny_gpt)
    if features is not None:
        assert isinstance(search.strategy.screener.featurizer, features)
    result = search.run(tmp_path, progress=False)
    assert result.evaluations == 12 and result.strategy == label
    assert all(h.error is None for h in result.history) and 0.0 <= result.best.fitness <= 1.0
    if "rank" in label:
        assert search.strategy.screener.stats.calls >= 1
    if "cond" in label:
        assert search.finetune_s > 0
