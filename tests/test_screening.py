"""search/screening.py (+rank): pre-screening by a predictor trained online, on tiny in-memory NB-201 tables and a
tiny real ArchGPT (nothing mocked)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from arch_gpt.errors import UserInputError
from arch_gpt.modeling import TINY, ArchGPT
from arch_gpt.search.records import Candidate, FitnessRecord, SearchState
from arch_gpt.search.screening import GPTFeatures, OneHotFeatures, Screener
from arch_gpt.search.spaces.nasbench201 import NASBench201Space
from arch_gpt.search.spec import SearchConfig, build_search
from arch_gpt.tokenizer import LayerTokenizer
from arch_gpt.zoo import nasbench201
from search_toys import nb201_toy_table

SCORE = {"nor_conv_3x3": 3.0, "nor_conv_1x1": 2.0, "skip_connect": 1.0, "avg_pool_3x3": 0.5, "none": 0.0}


def additive_fitness(key: str) -> float:
    """A toy table whose fitness is a sum over edges (so a one-hot regressor can learn it exactly)."""
    return 50.0 + sum(SCORE[op] for op in nasbench201.parse_arch_str(key))


@pytest.fixture(scope="module")
def table():
    return nb201_toy_table(additive_fitness)


@pytest.fixture(scope="module")
def space():
    return NASBench201Space()


@pytest.fixture(scope="module")
def tiny_gpt(space):
    tokens = sorted({t for row in space.choice_tokens() for t in row.values()})
    rng = np.random.default_rng(0)
    tokenizer = LayerTokenizer.build([space.to_architecture(space.sample(rng)) for _ in range(20)])
    tokenizer = LayerTokenizer.from_tokens([*tokenizer.ids_to_tokens(list(range(5, tokenizer.vocab_size))), *tokens])
    return ArchGPT.create(tokenizer, device="cpu", **TINY)


def evaluated_state(space, keys) -> SearchState:
    state = SearchState()
    state.cache = {k: FitnessRecord(k, additive_fitness(k)) for k in keys}
    return state


def sample_keys(space, n, seed):
    rng = np.random.default_rng(seed)
    return list(dict.fromkeys(space.sample(rng) for _ in range(n)))


@pytest.mark.parametrize("predictor", ["trees", "gp"])
def test_ranking_picks_the_predicted_best_candidates(space, predictor):
    state = evaluated_state(space, sample_keys(space, 60, 0))
    pool = [Candidate(k, k) for k in sample_keys(space, 80, 1) if not state.seen(k)]
    screener = Screener(OneHotFeatures(), pool=5, predictor=predictor, explore=0.0)
    chosen = screener.select(space, pool, state, 10, np.random.default_rng(0))
    assert len(chosen) == 10 and len({c.key for c in chosen}) == 10
    truth = sorted((additive_fitness(c.key) for c in pool), reverse=True)
    picked = [additive_fitness(c.key) for c in chosen]
    # the learnt ranking is far better than chance: the picks' mean is in the top fifth of the pool's fitness
    assert np.mean(picked) >= truth[len(truth) // 5]
    assert screener.stats.calls == 1 and screener.stats.pooled == len(pool)


def test_selection_follows_the_predictor(space):
    """The chosen ones are exactly the top of the predictor's own ranking (best first)."""
    state = evaluated_state(space, sample_keys(space, 40, 2))
    pool = [Candidate(k, k) for k in sample_keys(space, 50, 3) if not state.seen(k)]
    screener = Screener(OneHotFeatures(), predictor="gp", explore=0.0)
    chosen = screener.select(space, pool, state, 5, np.random.default_rng(1))
    keys = list(state.cache) + [c.key for c in pool]
    x = OneHotFeatures().features(space, keys, keys)
    from arch_gpt.search.screening import make_predictor
    model = make_predictor("gp", int(np.random.default_rng(1).integers(2 ** 31 - 1)))
    model.fit(x[:len(state.cache)], [r.fitness for r in state.cache.values()])
    order = np.argsort(-model.predict(x[len(state.cache):]), kind="stable")[:5]
    assert [c.key for c in chosen] == [pool[i].key for i in order]


@pytest.mark.parametrize("predictor", ["trees", "gp"])
def test_exploration_adds_the_predictors_spread(space, predictor):
    """explore > 0 ranks by mean + explore x std: the GP's posterior std, the trees' spread."""
    from arch_gpt.search.screening import make_predictor, upper_bound
    keys = sample_keys(space, 40, 7)
    x = OneHotFeatures().features(space, keys, keys)
    model = make_predictor(predictor, 0).fit(x[:30], [additive_fitness(k) for k in keys[:30]])
    mean = upper_bound(model, x[30:], 0.0)
    assert np.allclose(mean, model.predict(x[30:]))
    assert (upper_bound(model, x[30:], 2.0) >= mean - 1e-9).all()
    assert (upper_bound(model, x[30:], 2.0) > mean).any()


def test_seen_candidates_only_fill_up(space):
    keys = sample_keys(space, 12, 4)
    state = evaluated_state(space, keys[:10])
    pool = [Candidate(k, k) for k in keys]  # 10 seen, 2 new
    chosen = Screener(OneHotFeatures()).select(space, pool, state, 4, np.random.default_rng(0))
    assert [c.key for c in chosen[:2]] == keys[10:] and all(state.seen(c.key) for c in chosen[2:])


def test_gpt_features_are_the_hidden_states_per_unit(space, tiny_gpt):
    keys = sample_keys(space, 3, 5)
    x = GPTFeatures(tiny_gpt).features(space, keys, keys)
    assert x.shape == (3, 6 * TINY["n_embd"]) and np.isfinite(x).all()
    tokens = [space.choice_tokens()[0][op] for op in nasbench201.parse_arch_str(keys[0])[:1]]
    assert not np.allclose(x[0], x[1]) and tokens  # different cells, different features


def test_gpt_features_drop_their_cache_when_the_model_changes(space, tiny_gpt):
    keys = sample_keys(space, 2, 6)
    features = GPTFeatures(tiny_gpt)
    before = features.features(space, keys, keys)
    with __import__("torch").no_grad():
        tiny_gpt.model.transformer.wte.weight.mul_(2.0)
    tiny_gpt.version += 1
    try:
        assert not np.allclose(before, features.features(space, keys, keys))
    finally:
        with __import__("torch").no_grad():
            tiny_gpt.model.transformer.wte.weight.div_(2.0)
        tiny_gpt.version += 1


class Untouchable:
    """A stand-in GPT that fails the test on any use."""
    window, version = 10, 0

    def __getattr__(self, name):
        raise AssertionError(f"the no-GPT twin touched the GPT ({name})")


def test_the_one_hot_twin_never_touches_the_gpt(table):
    search = build_search(SearchConfig(strategy="ga+rank", space="nasbench201", benchmark=table.path, budget=60,
                                       population=10, seed=0), table=table, model=Untouchable())
    assert isinstance(search.strategy.screener.featurizer, OneHotFeatures)
    result = search.run(progress=False)
    assert result.evaluations == 60 and search.strategy.screener.stats.calls == 5
    assert search.strategy.reconstructor is None


def test_rank_finds_better_cells_than_its_base_on_an_additive_table(table):
    """With the same budget, ga+rank's best fitness beats plain ga's on average over seeds (the predictor works)."""
    def best(label):
        return np.mean([build_search(SearchConfig(strategy=label, space="nasbench201", benchmark=table.path, budget=60,
                                                  population=10, seed=s), table=table).run(progress=False).best.fitness
                        for s in range(4)])
    assert best("ga+rank") > best("ga")


def test_gpt_rank_runs_and_evaluates_only_the_budget(table, tiny_gpt):
    search = build_search(SearchConfig(strategy="ga+gpt+rank", space="nasbench201", benchmark=table.path, budget=45,
                                       population=10, seed=0), table=table, model=tiny_gpt)
    assert isinstance(search.strategy.screener.featurizer, GPTFeatures)
    result = search.run(progress=False)
    assert result.evaluations == 45 and len(result.history) == 45
    assert result.timings.screening_s > 0 and result.strategy == "ga+gpt+rank"


def test_resumed_gpt_rank_run_equals_an_uninterrupted_one(table, tiny_gpt, tmp_path):
    """The predictor is refit from the restored history, so a killed and resumed run gives the same result."""
    class Killed(Exception):
        pass

    def make():
        return build_search(SearchConfig(strategy="ga+gpt+rank", space="nasbench201", benchmark=table.path,
                                         budget=50, population=10, seed=3), table=table, model=tiny_gpt)

    make().run(tmp_path / "full", progress=False)
    cut = make()

    def kill(state):
        if state.generation == 3:
            raise Killed
    with pytest.raises(Killed):
        cut.strategy.run(tmp_path / "cut", progress=False, on_generation=kill, label="ga+gpt+rank")
    make().run(tmp_path / "cut", resume=True, progress=False)

    def comparable(out):
        result = json.loads((out / "result.json").read_text())
        result.pop("timings")
        history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
        return result, [{k: v for k, v in h.items() if k != "cost_s"} for h in history]
    assert comparable(tmp_path / "cut") == comparable(tmp_path / "full")


def test_resume_with_other_rank_settings_is_refused(table, tmp_path):
    from arch_gpt.search.checkpoint import CheckpointError

    def make(pool):
        return build_search(SearchConfig(strategy="ga+rank", space="nasbench201", benchmark=table.path, budget=30,
                                         population=10, seed=0, rank_pool=pool), table=table)

    class Killed(Exception):
        pass

    def kill(state):
        raise Killed
    with pytest.raises(Killed):
        make(5).strategy.run(tmp_path, progress=False, on_generation=kill)
    with pytest.raises(CheckpointError, match="rank"):
        make(3).run(tmp_path, resume=True, progress=False)


@pytest.mark.parametrize("options, message", [
    ({"rank_pool": 1}, r"^rank_pool: must be at least 2"),
    ({"rank_predictor": "svm"}, r"^rank_predictor: unknown 'svm'; choose one of: trees, gp"),
    ({"rank_explore": -1.0}, r"^rank_explore: must be a finite number >= 0"),
    ({"rank_features": "bert"}, r"^rank_features: unknown 'bert'; choose one of: gpt, onehot"),
    ({"rank_explore": float("nan")}, r"^rank_explore: must be a finite number >= 0"),
    ({"objectives": "val_acc,params"}, r"^objectives: \+rank ranks candidates by fitness alone"),
])
def test_bad_rank_settings_name_the_option(table, options, message):
    with pytest.raises(UserInputError, match=message):
        build_search(SearchConfig(strategy="ga+rank", space="nasbench201", benchmark=table.path, budget=30,
                                  **options), table=table)


@pytest.mark.parametrize("label, features, cls", [("ga+rank", "gpt", GPTFeatures), ("ga+gpt+rank", "onehot", OneHotFeatures),
                                                  ("ga+rank", None, OneHotFeatures), ("ga+gpt+rank", None, GPTFeatures)])
def test_rank_features_can_be_chosen_apart_from_reconstruction(table, tiny_gpt, label, features, cls):
    """The ablations: GPT features without GPT reconstruction, and GPT reconstruction with one-hot features."""
    search = build_search(SearchConfig(strategy=label, space="nasbench201", benchmark=table.path, budget=30,
                                       population=10, rank_features=features), table=table, model=tiny_gpt)
    assert isinstance(search.strategy.screener.featurizer, cls)
    assert (search.strategy.reconstructor is not None) == ("+gpt" in label)
    assert search.run(progress=False).evaluations == 30


def test_rank_options_without_rank_are_refused(table):
    with pytest.raises(UserInputError, match=r"^rank_pool: would be ignored"):
        build_search(SearchConfig(strategy="ga", space="nasbench201", benchmark=table.path, rank_pool=4), table=table)


def test_asynchronous_rank_is_refused(table):
    with pytest.raises(UserInputError, match=r"^asynchronous: \+rank"):
        build_search(SearchConfig(strategy="re+rank", space="nasbench201", benchmark=table.path, asynchronous=True),
                     table=table)
