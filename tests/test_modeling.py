"""ArchGPT: stock GPT2 checkpoints, batched next-token prediction with allowed-token masking, layer decoding.

Real parts throughout: small torchvision-block CNNs traced with ``from_module``, the real tokenizer, a tiny GPT2.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2LMHeadModel

from arch_gpt.encoding import ArchitectureError, check_layer
from arch_gpt.errors import UserInputError
from arch_gpt.hub import CheckpointNotFoundError
from arch_gpt.modeling import TINY, ArchGPT, ModelInputError, gpt_config
from arch_gpt.tokenizer import SPECIAL_TOKENS, LayerTokenizer, layer_tokens, token_to_layer
from model_fixtures import tiny_architectures


@pytest.fixture(scope="module")
def archs():
    return tiny_architectures()


@pytest.fixture(scope="module")
def gpt(archs):
    return ArchGPT.create(LayerTokenizer.build(archs), device="cpu", **TINY)


@pytest.fixture(scope="module")
def saved(gpt, tmp_path_factory):
    return gpt.save_pretrained(tmp_path_factory.mktemp("ckpt") / "tiny-gpt")


def contexts_of(archs, lengths=(0, 1, 3, 9, 10, 15)):
    toks = [layer_tokens(a) for a in archs]
    return [t[:n] for t in toks for n in lengths]


def test_default_config_is_paper_sized_stock_gpt2(gpt):
    config = gpt_config(gpt.tokenizer)
    assert (config.n_layer, config.n_head, config.n_embd, config.n_positions) == (4, 4, 128, 11)
    assert (config.window, config.model_type) == (10, "gpt2")
    assert type(gpt.model) is GPT2LMHeadModel and gpt.window == 10


def test_save_then_load_gives_identical_logits(gpt, saved, archs):
    loaded = ArchGPT.from_pretrained(saved, device="cpu")
    contexts = contexts_of(archs)
    assert torch.equal(gpt.next_token_logits(contexts), loaded.next_token_logits(contexts))
    assert loaded.tokenizer == gpt.tokenizer and loaded.window == 10


def test_checkpoint_has_safetensors_and_no_pickles(saved):
    names = {p.name for p in saved.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)


def test_stock_auto_classes_load_checkpoint_without_custom_code(gpt, saved, archs):
    model = AutoModelForCausalLM.from_pretrained(saved)
    tokenizer = AutoTokenizer.from_pretrained(saved)
    assert type(model) is GPT2LMHeadModel and model.config.window == 10
    tokens = layer_tokens(archs[0])[:10]
    ids = tokenizer(" ".join(tokens), add_special_tokens=False)["input_ids"]
    assert ids == gpt.tokenizer.tokens_to_ids(tokens)
    batch = torch.tensor([[gpt.tokenizer.bos_token_id, *ids[:9]]])
    with torch.no_grad():
        assert torch.allclose(model(batch).logits[0, -1], gpt.next_token_logits([tokens[:9]])[0], atol=1e-5)


def test_next_token_logits_is_one_batched_forward_equal_to_single_calls(gpt, archs):
    contexts = contexts_of(archs[:2])
    calls = []
    handle = gpt.model.transformer.register_forward_hook(lambda *args: calls.append(1))
    try:
        batched = gpt.next_token_logits(contexts)
    finally:
        handle.remove()
    assert len(calls) == 1 and batched.shape == (len(contexts), gpt.tokenizer.vocab_size)
    singles = torch.cat([gpt.next_token_logits([c]) for c in contexts])
    assert torch.allclose(batched, singles, atol=1e-5)


def test_context_is_bos_then_last_window_tokens_left_padded(gpt, archs):
    toks = layer_tokens(archs[0])
    ids, mask = gpt.context_ids([toks[:2], toks[:12]])
    tok = gpt.tokenizer
    assert ids[0].tolist() == [tok.pad_token_id] * 7 + tok.tokens_to_ids(["[BOS]", *toks[:2]])
    assert mask[0].tolist() == [0] * 7 + [1] * 3
    assert ids[1].tolist() == tok.tokens_to_ids(toks[2:12]) and mask[1].sum() == 10


def test_allowed_tokens_are_never_violated(gpt, archs):
    contexts = contexts_of(archs)
    vocab = gpt.tokenizer.layer_token_list
    rng = np.random.default_rng(0)
    allowed = [set(rng.choice(vocab, size=int(rng.integers(1, 4)), replace=False)) for _ in contexts]
    for top_k in (1, 3, 50):
        predicted = gpt.predict_next_tokens(contexts, allowed, top_k=top_k, temperature=2.0, rng=rng)
        assert all(p in a for p, a in zip(predicted, allowed))


def test_unrestricted_prediction_never_returns_special_tokens(gpt, archs):
    predicted = gpt.predict_next_tokens(contexts_of(archs), top_k=50, temperature=5.0, rng=np.random.default_rng(1))
    assert not set(predicted) & set(SPECIAL_TOKENS)
    assert all(gpt.tokenizer.in_vocab(p) for p in predicted)


def test_none_where_no_allowed_token_is_in_the_vocabulary(gpt, archs):
    contexts = contexts_of(archs[:1], (2, 4))
    known = gpt.tokenizer.layer_token_list[0]
    got = gpt.predict_next_tokens(contexts, [{"conv:k9x9:s1x1:p0-0-0-0:d1:g1:b0:r1", "[EOS]"}, {known}])
    assert got == [None, known]


def test_greedy_prediction_is_argmax_of_logits(gpt, archs):
    contexts = contexts_of(archs[:3])
    logits = gpt.next_token_logits(contexts)
    logits[:, torch.tensor(gpt.tokenizer.tokens_to_ids(SPECIAL_TOKENS))] = float("-inf")
    expected = gpt.tokenizer.ids_to_tokens(logits.argmax(1).tolist())
    assert gpt.predict_next_tokens(contexts) == expected


def test_sampling_is_reproducible_with_the_same_generator(gpt, archs):
    contexts = contexts_of(archs)
    first = gpt.predict_next_tokens(contexts, top_k=5, temperature=3.0, rng=np.random.default_rng(7))
    second = gpt.predict_next_tokens(contexts, top_k=5, temperature=3.0, rng=np.random.default_rng(7))
    assert first == second


def test_a_tiny_nucleus_is_greedy_and_a_full_one_samples(gpt, archs):
    contexts = contexts_of(archs)
    greedy = gpt.predict_next_tokens(contexts)
    assert gpt.predict_next_tokens(contexts, top_k=50, top_p=1e-9, rng=np.random.default_rng(0)) == greedy
    draws = {tuple(gpt.predict_next_tokens(contexts, top_k=50, temperature=5.0, top_p=1.0,
                                           rng=np.random.default_rng(s))) for s in range(5)}
    assert len(draws) > 1


@pytest.mark.parametrize("top_p", [0.0, 1.5, -0.1, float("nan"), True])
def test_top_p_must_be_in_the_unit_interval(gpt, top_p):
    with pytest.raises(ModelInputError, match=r"^top_p: must be a number in \(0, 1\]"):
        gpt.predict_next_tokens([[]], top_k=2, top_p=top_p)


def test_top_k_must_be_positive(gpt):
    with pytest.raises(ModelInputError, match="top_k"):
        gpt.predict_next_tokens([[]], top_k=0)


def test_temperature_must_be_positive(gpt):
    with pytest.raises(ModelInputError, match="temperature"):
        gpt.predict_next_tokens([[]], top_k=2, temperature=0.0)


def test_allowed_tokens_length_must_match_contexts(gpt):
    with pytest.raises(ModelInputError, match="allowed_tokens"):
        gpt.predict_next_tokens([[], []], allowed_tokens=[None])


def test_allowed_tokens_entry_must_not_be_a_string(gpt):
    with pytest.raises(ModelInputError, match=r"allowed_tokens\[0\]"):
        gpt.predict_next_tokens([[]], allowed_tokens=["other:ReLU"])


def test_contexts_must_be_token_lists_not_strings(gpt):
    with pytest.raises(ModelInputError, match="contexts"):
        gpt.next_token_logits(["other:ReLU"])


def test_predicted_layers_are_valid_and_tokenize_back(gpt, archs):
    arch = archs[1]
    positions = [0, 1, 5, 12, len(arch)]
    layers = gpt.predict_next_layers([arch] * len(positions), positions)
    ranked = gpt.ranked_candidates([layer_tokens(arch)[:p] for p in positions])
    for pos, layer, candidates in zip(positions, layers, ranked):
        check_layer(layer)
        assert layer.id == pos + 1
        previous = arch.layers[:pos]
        in_size = previous[-1].out_size if previous else arch.input_size
        fitting = []
        for token in candidates:
            try:
                fitting.append(token_to_layer(token, in_size, pos + 1, previous, arch.input_size))
            except ArchitectureError:
                pass
        assert layer == fitting[0]


def test_token_that_does_not_fit_is_skipped_for_the_next_candidate(archs):
    unfit = "conv:k3x3:s1x1:p1-1-1-1:d1:g1:b0:r1/2"  # half of the 3 input channels
    fits = "conv:k3x3:s1x1:p1-1-1-1:d1:g1:b0:r2"
    model = ArchGPT.create(LayerTokenizer.from_tokens([unfit, fits]), device="cpu", **TINY)
    assert model.predict_next_layers([archs[0]], [0], [{unfit}]) == [None]
    (layer,) = model.predict_next_layers([archs[0]], [0], [{unfit, fits}])
    assert layer.out_size[2] == 6 and layer.id == 1


def test_predicted_layer_respects_allowed_token(gpt, archs):
    arch = archs[0]
    target = layer_tokens(arch)[4]
    (layer,) = gpt.predict_next_layers([list(arch.layers)], [4], [{target}])
    assert layer == replace(arch.layers[4], block=None)


def test_position_outside_architecture_is_rejected(gpt, archs):
    with pytest.raises(ModelInputError, match=r"positions\[0\]"):
        gpt.predict_next_layers([archs[0]], [len(archs[0]) + 1])


def test_positions_length_must_match(gpt, archs):
    with pytest.raises(ModelInputError, match="positions"):
        gpt.predict_next_layers([archs[0], archs[1]], [1])


def test_unknown_model_name_is_a_user_error():
    with pytest.raises(CheckpointNotFoundError, match="not-a-model"):
        ArchGPT.from_pretrained("./not-a-model")


def test_tokenizer_of_other_vocabulary_size_is_rejected(gpt, archs):
    small = LayerTokenizer.from_tokens(layer_tokens(archs[0])[:3])
    with pytest.raises(UserInputError, match="vocab_size"):
        ArchGPT(gpt.model, small, device="cpu")


# ----------------------------------------------------------------------------- checked loading and sizes
def test_load_gpt_checks_before_loading_and_gives_the_same_weights(gpt, saved):
    from arch_gpt.modeling import load_gpt

    model = load_gpt(saved, gpt.tokenizer)
    assert type(model) is GPT2LMHeadModel
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), gpt.model.state_dict().values()))


def test_loading_never_reads_a_pickle_beside_the_safetensors(gpt, saved, tmp_path):
    """A pytorch_model.bin next to model.safetensors is ignored: only safetensors are read."""
    import shutil

    folder = tmp_path / "ckpt"
    shutil.copytree(saved, folder)
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04 not a real pickle, and never unpickled")
    loaded = ArchGPT.from_pretrained(folder, device="cpu")
    assert torch.equal(loaded.model.transformer.wte.weight, gpt.model.transformer.wte.weight)


def test_tokenizer_of_other_size_than_the_checkpoint_is_named(gpt, saved, tmp_path, archs):
    import shutil

    from arch_gpt.hub import CheckpointFileError

    folder = tmp_path / "ckpt"
    shutil.copytree(saved, folder)
    LayerTokenizer.from_tokens(layer_tokens(archs[0])[:3]).save_pretrained(folder)
    with pytest.raises(CheckpointFileError) as info:
        ArchGPT.from_pretrained(folder, device="cpu")
    assert "config.json" in str(info.value) and "'vocab_size'" in str(info.value) and "tokenizer" in str(info.value)


@pytest.mark.parametrize("kwargs,name", [
    ({"n_embd": 0}, "n_embd"), ({"n_embd": -16}, "n_embd"), ({"n_layer": 0}, "n_layer"), ({"n_head": 0}, "n_head"),
    ({"n_embd": 10, "n_head": 4}, "n_embd"), ({"window": 0}, "window"), ({"dropout": 1.0}, "dropout"),
    ({"n_layer": True}, "n_layer"), ({"n_embd": 16.0}, "n_embd"),
])
def test_gpt_sizes_out_of_range_name_the_parameter(gpt, kwargs, name):
    with pytest.raises(ModelInputError) as info:
        gpt_config(gpt.tokenizer, **kwargs)
    assert str(info.value).startswith(f"{name}: ")


def test_block_classifier_of_another_window_is_refused(gpt):
    from arch_gpt.modeling import new_block_classifier

    with pytest.raises(UserInputError, match="window"):
        gpt.attach_block_classifier(new_block_classifier(gpt.tokenizer, ["Conv"], window=5))
    with pytest.raises(ModelInputError, match="classifier"):
        gpt.attach_block_classifier(None)


@pytest.mark.parametrize("kwargs,name", [
    ({"model": None}, "model"), ({"tokenizer": "tok"}, "tokenizer"), ({"block_classifier": 3}, "block_classifier"),
    ({"device": "bogus"}, "device"),
])
def test_constructor_arguments_are_checked(gpt, kwargs, name):
    args = {"model": gpt.model, "tokenizer": gpt.tokenizer, **kwargs}
    with pytest.raises(UserInputError) as info:
        ArchGPT(**args)
    assert str(info.value).startswith(f"{name}: ")


@pytest.mark.parametrize("kwargs,name", [
    ({"top_k": 1.5}, "top_k"), ({"temperature": float("nan")}, "temperature"),
    ({"temperature": float("inf")}, "temperature"), ({"top_k": 2, "rng": 7}, "rng"),
])
def test_prediction_arguments_are_checked(gpt, kwargs, name):
    with pytest.raises(ModelInputError) as info:
        gpt.predict_next_tokens([[]], **kwargs)
    assert str(info.value).startswith(f"{name}: ")


def test_saved_files_have_the_umask_mode_and_no_staging_folder_is_left(gpt, tmp_path):
    from arch_gpt.io import _UMASK

    gpt.save_pretrained(tmp_path)
    gpt.save_pretrained(tmp_path)  # saving again replaces each file whole
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"model.safetensors", "config.json", "tokenizer.json"}
    assert all(p.stat().st_mode & 0o777 == 0o666 & ~_UMASK for p in files)
    assert not [p for p in tmp_path.rglob(".staging-*")]
    assert ArchGPT.from_pretrained(tmp_path, device="cpu").tokenizer == gpt.tokenizer
