"""GPTReconstructor (Algorithm 1) with a real tiny ArchGPT built here on the toy chain space (tests/search_toys.py)."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from arch_gpt.errors import UserInputError
from arch_gpt.search.protocols import Candidate
from arch_gpt.search.reconstruction import GPTReconstructor
from search_toys import OPS, ChainSpace

from arch_gpt import modeling
from arch_gpt.tokenizer.tokenization import LayerTokenizer, layer_tokens

SPACE = ChainSpace(length=4)


def _tokenizer(ops=OPS):
    archs = [SPACE.to_architecture((op,) * SPACE.length) for op in ops]
    return LayerTokenizer.build(archs)


def _train_towards(model, op, steps=60):
    """Teach the tiny GPT that every unit layer is ``op`` (windows of an all-``op`` chain)."""
    tokens = layer_tokens(SPACE.to_architecture((op,) * SPACE.length))
    contexts = [tokens[:i] for i in range(len(tokens))]
    ids, mask = model.context_ids(contexts)
    target = torch.tensor(model.tokenizer.tokens_to_ids(tokens))
    opt = torch.optim.Adam(model.model.parameters(), lr=0.02)
    model.model.train()
    for _ in range(steps):
        logits = model.model(input_ids=ids, attention_mask=mask).logits[:, -1]
        loss = torch.nn.functional.cross_entropy(logits, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.model.eval()
    return model


@pytest.fixture(scope="module")
def trained():
    return _train_towards(modeling.ArchGPT.create(_tokenizer(), **modeling.TINY), "conv3")


def tiny_predictor():
    """An untrained tiny ArchGPT: enough for settings that never call the model."""
    return modeling.ArchGPT.create(_tokenizer(), **modeling.TINY)


def _cands(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return [Candidate(g, SPACE.key(g)) for g in (SPACE.sample(rng) for _ in range(n))]


class Spy:
    """Wraps a real model and records the calls the reconstructor makes."""
    def __init__(self, model):
        self.model, self.window, self.calls = model, model.window, []
        self.version = 0
        self.can_classify_blocks = model.can_classify_blocks

    def predict_next_tokens(self, contexts, **kw):
        self.calls.append((list(map(list, contexts)), list(kw["allowed_tokens"])))
        return self.model.predict_next_tokens(contexts, **kw)

    def classify_blocks(self, *args, **kw):
        return self.model.classify_blocks(*args, **kw)


def test_mask_rate_decays_linearly():
    rec = GPTReconstructor(tiny_predictor(), mask_rate=0.4)
    assert [rec.rate(p) for p in (0.0, 0.25, 1.0, 2.0)] == pytest.approx([0.4, 0.3, 0.0, 0.0])


def test_trained_gpt_rewrites_all_masked_units_in_one_batched_call(trained):
    spy = Spy(trained)
    rec = GPTReconstructor(spy, mask_rate=1.0)
    out = rec.reconstruct(SPACE, _cands(), progress=0.0, rng=np.random.default_rng(0))
    assert len(spy.calls) == 1 and len(spy.calls[0][0]) == 5 * SPACE.length
    assert all(c.genome == ("conv3",) * 4 and c.key == SPACE.key(c.genome) for c in out)
    assert all(c.predicted_units == (0, 1, 2, 3) for c in out)
    assert rec.stats.predicted_units == 20 and rec.stats.total_s > 0 and rec.stats.model_s > 0


def test_contexts_are_the_window_of_tokens_before_each_unit(trained):
    spy = Spy(trained)
    cand = _cands(1)[0]
    GPTReconstructor(spy, mask_rate=1.0).reconstruct(SPACE, [cand], 0.0, np.random.default_rng(0))
    tokens = layer_tokens(SPACE.to_architecture(cand.genome))
    contexts, allowed = spy.calls[0]
    for unit, context, allow in zip(SPACE.units(cand.genome), contexts, allowed):
        assert context == tokens[max(0, unit.layer_start - trained.window):unit.layer_start]
        assert allow == unit.allowed_tokens


def test_no_masking_at_the_end_of_the_search(trained):
    spy = Spy(trained)
    cands = _cands()
    out = GPTReconstructor(spy, mask_rate=0.4).reconstruct(SPACE, cands, progress=1.0, rng=np.random.default_rng(0))
    assert out == cands and spy.calls == []


def test_mask_rate_sets_the_share_of_masked_units(trained):
    rec = GPTReconstructor(trained, mask_rate=0.5)
    rec.reconstruct(SPACE, _cands(40), progress=0.0, rng=np.random.default_rng(1))
    assert rec.stats.masked_units == pytest.approx(0.5 * 40 * 4, abs=12)


def test_only_tokens_in_the_vocabulary_are_predicted():
    model = modeling.ArchGPT.create(_tokenizer(ops=("conv1",)), **modeling.TINY)
    cands = [Candidate(("pool",) * 4, "pool-pool-pool-pool")]
    out = GPTReconstructor(model, mask_rate=1.0).reconstruct(SPACE, cands, 0.0, np.random.default_rng(0))
    assert out[0].genome == ("conv1",) * 4


class PoolOnlySpace(ChainSpace):
    """Units that allow only the pool token (which the test vocabulary lacks)."""
    def units(self, genome):
        pool = self.op_tokens()["pool"]
        return [replace(u, allowed_tokens=frozenset({pool})) for u in super().units(genome)]


def test_unit_without_allowed_token_in_vocabulary_is_kept():
    model = modeling.ArchGPT.create(_tokenizer(ops=("conv1", "conv3")), **modeling.TINY)
    cands = _cands(2)
    rec = GPTReconstructor(model, mask_rate=1.0)
    out = rec.reconstruct(PoolOnlySpace(length=4), cands, 0.0, np.random.default_rng(0))
    assert out == cands and rec.stats.masked_units == 8 and rec.stats.predicted_units == 0


def test_sampling_is_reproducible_with_the_same_rng(trained):
    def run(seed):
        rec = GPTReconstructor(trained, mask_rate=0.6, top_k=3, temperature=2.0)
        return [c.key for c in rec.reconstruct(SPACE, _cands(8), 0.0, np.random.default_rng(seed))]
    assert run(3) == run(3)


class LabelledSpace(ChainSpace):
    block_classes = ("Conv", "MaxPool")

    def __init__(self):
        super().__init__(length=4)
        self.labels = []

    def fill_unit(self, genome, unit, predicted, block_label, rng):
        self.labels.append(block_label)
        return super().fill_unit(genome, unit, predicted, block_label, rng)


def test_block_classifier_labels_reach_fill_unit():
    tokenizer = _tokenizer()
    model = modeling.ArchGPT.create(tokenizer, **modeling.TINY)
    model.attach_block_classifier(modeling.new_block_classifier(tokenizer, ["Conv", "MaxPool", "Bottleneck"]))
    space = LabelledSpace()
    GPTReconstructor(model, mask_rate=1.0).reconstruct(space, _cands(3), 0.0, np.random.default_rng(0))
    assert len(space.labels) == 12 and set(space.labels) <= {"Conv", "MaxPool"}


def test_without_classifier_labels_are_none():
    space = LabelledSpace()
    model = modeling.ArchGPT.create(_tokenizer(), **modeling.TINY)
    GPTReconstructor(model, mask_rate=1.0).reconstruct(space, _cands(2), 0.0, np.random.default_rng(0))
    assert space.labels == [None] * 8


def test_from_pretrained_folder(trained, tmp_path):
    trained.save_pretrained(tmp_path / "gpt")
    rec = GPTReconstructor.from_pretrained(str(tmp_path / "gpt"), mask_rate=1.0, device="cpu")
    out = rec.reconstruct(SPACE, _cands(2), 0.0, np.random.default_rng(0))
    assert all(c.genome == ("conv3",) * 4 for c in out)


@pytest.mark.parametrize("kwargs, field", [({"mask_rate": -0.1}, "mask_rate"), ({"mask_rate": 1.1}, "mask_rate"),
                                           ({"top_k": 0}, "top_k")])
def test_bad_settings(kwargs, field):
    with pytest.raises(UserInputError, match=field):
        GPTReconstructor(tiny_predictor(), **kwargs)


@pytest.mark.parametrize("model", [None, object(), "arch-gpt-nasbench101"])
def test_a_model_that_is_no_predictor_is_refused(model):
    with pytest.raises(UserInputError, match="model: expected a next-token predictor"):
        GPTReconstructor(model)


def test_token_lists_are_cached_per_key(trained):
    rec = GPTReconstructor(trained, mask_rate=1.0)
    cands = _cands(3)
    rec.reconstruct(SPACE, cands, 0.0, np.random.default_rng(0))
    assert {key for _, key in rec.unit_tokens._cache} == {c.key for c in cands}


def test_greedy_predictions_are_cached_until_the_model_changes(trained):
    spy = Spy(trained)
    spy.version = 0
    rec = GPTReconstructor(spy, mask_rate=1.0)
    first = rec.reconstruct(SPACE, _cands(4), 0.0, np.random.default_rng(0))
    again = rec.reconstruct(SPACE, _cands(4), 0.0, np.random.default_rng(0))
    assert len(spy.calls) == 1 and [c.genome for c in again] == [c.genome for c in first]
    spy.version = 1                                   # e.g. an online fine-tune step
    rec.reconstruct(SPACE, _cands(4), 0.0, np.random.default_rng(0))
    assert len(spy.calls) == 2


def test_sampled_predictions_are_never_cached(trained):
    spy = Spy(trained)
    rec = GPTReconstructor(spy, mask_rate=1.0, top_k=2)
    for _ in range(2):
        rec.reconstruct(SPACE, _cands(2), 0.0, np.random.default_rng(0))
    assert len(spy.calls) == 2 and len(spy.calls[1][0]) == 2 * SPACE.length
