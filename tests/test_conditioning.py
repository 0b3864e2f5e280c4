"""search/conditioning.py (+cond): the fitness-conditioned online fine-tune, with a tiny real ArchGPT whose
vocabulary has the fitness tokens (nothing mocked)."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch

from arch_gpt.errors import UserInputError
from arch_gpt.modeling import TINY, ArchGPT
from arch_gpt.search.checkpoint import CheckpointError
from arch_gpt.search.conditioning import ConditionedFinetuner, fitness_terciles
from arch_gpt.search.reconstruction import GPTReconstructor
from arch_gpt.search.records import FitnessRecord, SearchState
from arch_gpt.search.spaces.nasbench201 import NASBench201Space
from arch_gpt.search.spec import SearchConfig, build_search
from arch_gpt.tokenizer import LayerTokenizer
from arch_gpt.tokenizer.tokenization import FITNESS_TOKENS, layer_tokens
from arch_gpt.zoo import nasbench201
from search_toys import nb201_toy_table

GOOD = "avg_pool_3x3"  # the toy table rewards average pooling, which no convolution prior would pick


def toy_fitness(key: str) -> float:
    return 50.0 + 5.0 * sum(op == GOOD for op in nasbench201.parse_arch_str(key))


@pytest.fixture(scope="module")
def space():
    return NASBench201Space()


def tiny_gpt(space, fitness_tokens: bool = True) -> ArchGPT:
    rng = np.random.default_rng(0)
    base = LayerTokenizer.build([space.to_architecture(space.sample(rng)) for _ in range(20)])
    layer = base.ids_to_tokens(list(range(5, base.vocab_size)))
    tokenizer = LayerTokenizer.from_tokens([*layer, *(FITNESS_TOKENS if fitness_tokens else ())])
    return ArchGPT.create(tokenizer, device="cpu", **TINY)


@pytest.fixture(scope="module")
def table():
    return nb201_toy_table(toy_fitness)


def test_terciles_label_by_fitness_in_input_order():
    records = [FitnessRecord(k, f) for k, f in [("a", 1.0), ("b", 9.0), ("c", 5.0), ("d", 7.0), ("e", 3.0),
                                                 ("f", 8.0)]]
    assert fitness_terciles(records) == [FITNESS_TOKENS[2], FITNESS_TOKENS[0], FITNESS_TOKENS[1], FITNESS_TOKENS[1],
                                         FITNESS_TOKENS[2], FITNESS_TOKENS[0]]


def good_share(reconstructor: GPTReconstructor, space, contexts) -> float:
    """How often the GPT fills the first-cell edges with the toy table's favourite op, over ``contexts``."""
    allowed = [frozenset(space.choice_tokens()[i].values()) for i in range(6)]
    good = {space.choice_tokens()[i][GOOD] for i in range(6)}
    picks = Counter()
    for tokens, starts in contexts:
        ctx = [reconstructor.context(tokens, s) for s in starts]
        picked = reconstructor.model.predict_next_tokens(ctx, allowed_tokens=allowed)
        picks.update(t in good for t in picked)
    return picks[True] / sum(picks.values())


def test_conditioning_shifts_the_choice_toward_the_top_tercile(space):
    model = tiny_gpt(space)
    reconstructor = GPTReconstructor(model)
    tuner = ConditionedFinetuner(model, space, reconstructor, steps=40, lr=1e-2)
    rng = np.random.default_rng(1)
    keys = list(dict.fromkeys(space.sample(rng) for _ in range(60)))
    state = SearchState()
    state.cache = {k: FitnessRecord(k, toy_fitness(k)) for k in keys}
    probe = [(layer_tokens(space.context_architecture(k)), [u.layer_start for u in space.units(k)])
             for k in keys[:20]]
    tuner(state)
    assert reconstructor.condition == FITNESS_TOKENS[0] and tuner.seconds > 0
    top = good_share(reconstructor, space, probe)
    reconstructor.condition = FITNESS_TOKENS[2]
    bottom = good_share(reconstructor, space, probe)
    assert top > 0.6 and top > bottom + 0.3, (top, bottom)
    tuner.reset()
    assert reconstructor.condition is None


def test_each_fit_starts_from_the_pretrained_weights(space):
    """The conditioned model is a function of the evaluations so far: the same state gives the same weights."""
    model = tiny_gpt(space)
    tuner = ConditionedFinetuner(model, space, GPTReconstructor(model), steps=3)
    rng = np.random.default_rng(2)
    state = SearchState()
    state.cache = {k: FitnessRecord(k, toy_fitness(k)) for k in (space.sample(rng) for _ in range(12))}
    tuner(state)
    first = {k: v.clone() for k, v in model.model.state_dict().items()}
    tuner(state)
    assert all(torch.equal(first[k], v) for k, v in model.model.state_dict().items())


def test_too_few_records_leave_the_model_unconditioned(space):
    model = tiny_gpt(space)
    reconstructor = GPTReconstructor(model)
    tuner = ConditionedFinetuner(model, space, reconstructor)
    state = SearchState()
    state.cache = {k: FitnessRecord(k, 1.0) for k in ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"]}
    tuner(state)
    assert reconstructor.condition is None and tuner.seconds == 0


def test_a_model_without_fitness_tokens_is_refused(space):
    model = tiny_gpt(space, fitness_tokens=False)
    with pytest.raises(UserInputError, match=r"^model: \+cond needs a GPT whose vocabulary has the fitness tokens"):
        ConditionedFinetuner(model, space, GPTReconstructor(model))


@pytest.mark.parametrize("options, message", [
    ({"cond_steps": 0}, r"^cond_steps: must be at least 1"),
    ({"cond_lr": 0.0}, r"^cond_lr: must be a finite number > 0"),
])
def test_bad_cond_settings_name_the_option(table, space, options, message):
    with pytest.raises(UserInputError, match=message):
        build_search(SearchConfig(strategy="ga+gpt+cond", space="nasbench201", benchmark=table.path, budget=30,
                                  **options), table=table, model=tiny_gpt(space))


def test_cond_options_without_cond_are_refused(table, space):
    with pytest.raises(UserInputError, match=r"^cond_steps: would be ignored"):
        build_search(SearchConfig(strategy="ga+gpt", space="nasbench201", benchmark=table.path, cond_steps=5),
                     table=table, model=tiny_gpt(space))


def test_resumed_cond_run_equals_an_uninterrupted_one(table, space, tmp_path):
    """On resume the hook refits on the restored history before the next generation, as the uninterrupted run did."""
    model = tiny_gpt(space)

    def make():
        return build_search(SearchConfig(strategy="ga+gpt+cond+rank", space="nasbench201", benchmark=table.path,
                                         budget=40, population=8, seed=0, cond_steps=3), table=table, model=model)

    make().run(tmp_path / "full", progress=False)

    class Killed(Exception):
        pass
    cut = make()
    cut.finetuner.reset()

    class KilledAfterThree:  # the run's hook, with its settings (checkpointed), that dies after generation 3
        def config(self):
            return cut.finetuner.config()

        def __call__(self, state):
            cut.finetuner(state)
            if state.generation == 3:
                raise Killed
    with pytest.raises(Killed):
        cut.strategy.run(tmp_path / "cut", progress=False, on_generation=KilledAfterThree(), label="ga+gpt+cond+rank")
    cut.finetuner.restore()  # as Search.run does when a run ends, killed or not
    make().run(tmp_path / "cut", resume=True, progress=False)

    def comparable(out):
        result = json.loads((out / "result.json").read_text())
        result.pop("timings")
        return result, [{k: v for k, v in json.loads(line).items() if k != "cost_s"}
                        for line in (out / "history.jsonl").read_text().splitlines()]
    assert comparable(tmp_path / "cut") == comparable(tmp_path / "full")


@pytest.mark.parametrize("label, first, second", [
    ("ga+gpt+cond", {"cond_steps": 3}, {"cond_steps": 4}),
    ("ga+gpt+cond", {"cond_lr": 1e-3}, {"cond_lr": 2e-3}),
    ("ga+gpt+ft", {"finetune_steps": 2}, {"finetune_steps": 3}),
])
def test_resume_with_other_finetune_settings_is_refused(table, space, tmp_path, label, first, second):
    """The fine-tune's settings are checkpointed with the strategy's: another value cannot resume silently."""
    model = tiny_gpt(space)

    def make(options):
        return build_search(SearchConfig(strategy=label, space="nasbench201", benchmark=table.path, budget=16,
                                         population=8, seed=0, **options), table=table, model=model)
    make(first).run(tmp_path, progress=False)
    make(first).run(tmp_path, resume=True, progress=False)  # the same settings resume
    with pytest.raises(CheckpointError, match=r"field 'config\.on_generation' is .* but this run"):
        make(second).run(tmp_path, resume=True, progress=False)


def test_one_search_shares_one_token_cache(table, space):
    """Reconstruction, the conditioned fine-tune and ranking read a genome's tokens from one cache."""
    search = build_search(SearchConfig(strategy="ga+gpt+cond+rank", space="nasbench201", benchmark=table.path,
                                       budget=20), table=table, model=tiny_gpt(space))
    tokens = search.strategy.reconstructor.unit_tokens
    assert search.finetuner.tokens is tokens and search.strategy.screener.featurizer.tokens is tokens


def test_cond_defaults_to_the_bundled_gpt_with_fitness_tokens(table):
    search = build_search(SearchConfig(strategy="ga+gpt+cond", space="nasbench201", benchmark=table.path,
                                       budget=20), table=table)
    assert all(search.finetuner.model.tokenizer.in_vocab(t) for t in FITNESS_TOKENS)
    plain = build_search(SearchConfig(strategy="ga+gpt", space="nasbench201", benchmark=table.path, budget=20),
                         table=table)
    assert not plain.strategy.reconstructor.model.tokenizer.in_vocab(FITNESS_TOKENS[0])  # the paper's GPT
