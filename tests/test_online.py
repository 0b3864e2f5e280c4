"""Online fine-tune of the GPT on the best architectures so far, with a tiny untrained ArchGPT (nothing mocked)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from arch_gpt.errors import UserInputError
from arch_gpt.modeling import TINY, ArchGPT
from arch_gpt.search.online import OnlineFinetuner
from arch_gpt.search.protocols import FitnessRecord
from arch_gpt.search.spaces.macro import MacroSpace
from arch_gpt.search.spaces.nasbench201 import NASBench201Space
from arch_gpt.search.spec import SearchConfig, build_search
from arch_gpt.search.records import SearchState
from arch_gpt.tokenizer import LayerTokenizer
from search_toys import nb201_toy_table


@pytest.fixture()
def model_and_space():
    space, rng = MacroSpace(), np.random.default_rng(0)
    tokenizer = LayerTokenizer.build([space.to_architecture(space.sample(rng)) for _ in range(10)])
    return ArchGPT.create(tokenizer, **TINY), space


def state_with(keys_and_fitness) -> SearchState:
    state = SearchState()
    state.cache = {k: FitnessRecord(k, f) for k, f in keys_and_fitness}
    return state


def choice_loss(finetuner: OnlineFinetuner, keys) -> float:
    contexts, allowed, targets = finetuner.examples(keys)
    with torch.no_grad():
        logits = finetuner.model.next_token_logits(contexts)
    return float(sum(-torch.log_softmax(logits[i, a], 0)[t] for i, (a, t) in enumerate(zip(allowed, targets))))


def test_steps_lower_the_loss_on_the_best_and_reset_restores(model_and_space):
    model, space = model_and_space
    tuner = OnlineFinetuner(model, space, steps=10, top_k=2, lr=1e-2)
    state = state_with([("22222222", 93.0), ("22212220", 92.9), ("00000000", 85.0)])
    before = choice_loss(tuner, ["22222222", "22212220"])
    weights = {k: v.clone() for k, v in model.model.state_dict().items()}
    tuner(state)
    assert choice_loss(tuner, ["22222222", "22212220"]) < before
    assert tuner.seconds > 0
    tuner.reset()
    assert all(torch.equal(weights[k], v) for k, v in model.model.state_dict().items())
    assert tuner.seconds == 0


def test_fit_on_given_keys_takes_the_given_number_of_steps(model_and_space):
    """``fit`` is the offline form (e.g. a prior from another table): it learns the keys it is handed."""
    model, space = model_and_space
    tuner = OnlineFinetuner(model, space, steps=1, lr=1e-2)
    keys = ["11111111", "12121212"]
    before, version = choice_loss(tuner, keys), model.version
    tuner.fit(keys, steps=15)
    assert choice_loss(tuner, keys) < 0.8 * before
    assert model.version == version + 1
    tuner.reset()
    assert choice_loss(tuner, keys) == pytest.approx(before, rel=1e-5)


def test_examples_cover_every_unit_with_a_choice(model_and_space):
    model, space = model_and_space
    contexts, allowed, targets = OnlineFinetuner(model, space).examples(["12121212"])
    assert len(contexts) == 8 and all(len(c) <= model.window for c in contexts)
    assert all(0 <= t < len(a) for a, t in zip(allowed, targets))


def test_bad_settings_are_refused(model_and_space):
    model, space = model_and_space
    with pytest.raises(UserInputError, match="finetune_steps"):
        OnlineFinetuner(model, space, steps=0)


# --- resume: the fine-tuned weights and optimizer are saved per generation -----------------------------------
class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def nb201():
    space, rng = NASBench201Space(), np.random.default_rng(0)
    tokenizer = LayerTokenizer.build([space.to_architecture(space.sample(rng)) for _ in range(20)])
    return space, ArchGPT.create(tokenizer, device="cpu", **TINY), nb201_toy_table(lambda key: float(len(set(key))))


def ft_search(nb201):
    space, model, table = nb201
    return build_search(SearchConfig(strategy="ga+gpt+ft", space="nasbench201", benchmark=table.path, budget=48,
                                     population=8, seed=0, finetune_steps=3, finetune_lr=1e-2), table=table,
                        model=model)


def run_killed(search, folder, when: str) -> None:
    """Run with the search's fine-tune as the hook, dying at generation 3 ``when`` its state is saved or not."""
    tuner = search.finetuner

    class Dying:  # the same hook, settings and saved state, killed at generation 3
        def config(self):
            return tuner.config()

        def __call__(self, state):
            tuner(state)
            if when == "before_save" and state.generation == 3:
                raise Killed

        def save_state(self, out, generation):
            tuner.save_state(out, generation)
            if when == "after_save" and generation == 3:
                raise Killed

        def load_state(self, out):
            return tuner.load_state(out)
    tuner.reset()
    try:
        with pytest.raises(Killed):
            search.strategy.run(folder, progress=False, on_generation=Dying(), label="ga+gpt+ft")
    finally:
        tuner.restore()


def comparable(out):
    result = json.loads((out / "result.json").read_text())
    result.pop("timings")
    return result, [{k: v for k, v in json.loads(line).items() if k != "cost_s"}
                    for line in (out / "history.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("when", ["before_save", "after_save"])
def test_resumed_ft_run_equals_an_uninterrupted_one(nb201, tmp_path, when):
    """Killed before or after the fine-tune's state is saved, the resumed run continues the same weights."""
    ft_search(nb201).run(tmp_path / "full", progress=False)
    run_killed(ft_search(nb201), tmp_path / "cut", when)
    assert {p.name for p in (tmp_path / "cut").glob("finetune*.safetensors")} == {
        "finetuned.safetensors", "finetune_optimizer.safetensors"}
    ft_search(nb201).run(tmp_path / "cut", resume=True, progress=False)
    assert comparable(tmp_path / "cut") == comparable(tmp_path / "full")


def test_resume_without_the_saved_fine_tune_is_refused(nb201, tmp_path):
    run_killed(ft_search(nb201), tmp_path, "after_save")
    (tmp_path / "finetuned.safetensors").unlink()
    with pytest.raises(UserInputError, match=r"^resume: the online fine-tune has no usable saved state in .* "
                                             r"generation 3"):
        ft_search(nb201).run(tmp_path, resume=True, progress=False)


def test_resume_with_a_corrupt_saved_fine_tune_is_refused(nb201, tmp_path):
    """A damaged weights file gives one line naming the folder, never a traceback or an unpickle."""
    run_killed(ft_search(nb201), tmp_path, "after_save")
    (tmp_path / "finetuned.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UserInputError, match=r"^resume: .*: the fine-tuned GPT's saved state is unreadable"):
        ft_search(nb201).run(tmp_path, resume=True, progress=False)
