"""The ``architecture-completion`` pipeline, built by the stock ``transformers.pipeline`` factory from a real tiny
checkpoint saved to disk: ArchGPT's context layout and probabilities, every input form, batches, the window, bad
input, and registration by ``import arch_gpt`` alone (in a fresh interpreter). No mocks."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers
from transformers import GPT2LMHeadModel

import arch_gpt.pipelines  # noqa: F401 (registers the task)
from arch_gpt.encoding import Architecture, ArchitectureError, parse_layer
from arch_gpt.errors import UserInputError
from arch_gpt.modeling import ArchGPT, ModelInputError
from arch_gpt.pipelines import ArchitectureCompletionPipeline
from arch_gpt.tokenizer import SPECIAL_TOKENS, layer_tokens
from model_fixtures import tiny_architectures, tiny_gpt

TASK = "architecture-completion"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_gpt(["BasicBlock", "Linear"], hidden_size=8).save_pretrained(tmp_path_factory.mktemp("p") / "tiny")


@pytest.fixture(scope="module")
def pipe(folder):
    return transformers.pipeline(TASK, model=str(folder), device="cpu")


@pytest.fixture(scope="module")
def gpt(folder):
    return ArchGPT.from_pretrained(folder, device="cpu")


@pytest.fixture(scope="module")
def arch():
    return tiny_architectures()[1]


def expected(gpt, tokens, top_k, allowed=None):
    """(token, probability) pairs computed with ArchGPT directly: softmax over the allowed layer tokens."""
    logits = gpt.next_token_logits([tokens])[0]
    keep = gpt._allowed_mask([allowed] if allowed is not None else None, 1)[0]
    probs = torch.softmax(logits.masked_fill(~keep, float("-inf")), dim=0)
    values, ids = torch.topk(probs, min(top_k, int(keep.sum())))
    return list(zip(gpt.tokenizer.ids_to_tokens(ids.tolist()), values.tolist()))


def pairs(result):
    return [(r["token"], r["score"]) for r in result]


def test_the_stock_factory_builds_it_from_a_saved_folder(pipe):
    assert isinstance(pipe, ArchitectureCompletionPipeline) and pipe.task == TASK
    assert type(pipe.model) is GPT2LMHeadModel and pipe.device.type == "cpu"


def test_scores_are_archgpt_probabilities_in_its_context_layout(pipe, gpt, arch):
    tokens = layer_tokens(arch)[:7]
    got = pipe(tokens, top_k=4)
    assert [t for t, _ in pairs(got)] == [t for t, _ in expected(gpt, tokens, 4)]
    assert [s for _, s in pairs(got)] == pytest.approx([s for _, s in expected(gpt, tokens, 4)], abs=1e-6)
    assert all(set(r) == {"token", "token_id", "score", "layer"} for r in got)
    assert all(gpt.tokenizer.tokens_to_ids([r["token"]]) == [r["token_id"]] for r in got)


def test_a_long_context_keeps_the_last_window_layers(pipe, arch):
    tokens = layer_tokens(arch)
    assert len(tokens) > 2 * 11
    assert pipe(tokens, top_k=3) == pipe(tokens[-10:], top_k=3)  # [BOS] + 10 layers: [BOS] falls out of the window


def test_every_input_form_gives_the_same_prediction(pipe, arch, tmp_path):
    prefix = Architecture(arch.layers[:6])
    tokens = layer_tokens(prefix)
    text_file = prefix.save(tmp_path / "net.arch")
    json_file = prefix.save(tmp_path / "net.json")
    forms = [tokens, tuple(tokens), " ".join(tokens), prefix, list(prefix.layers), prefix.to_text(),
             prefix.to_text().splitlines(), str(text_file), text_file, json_file]
    results = [pipe(form, top_k=3) for form in forms]
    want = [t for t, _ in pairs(results[0])]
    assert all([t for t, _ in pairs(r)] == want for r in results)
    assert all(r["layer"] is None for r in results[0] + results[1] + results[2])


def test_inputs_with_sizes_get_the_concrete_next_layer(pipe, arch):
    prefix = Architecture(arch.layers[:6])
    got = [r for r in pipe(prefix, top_k=5) if r["layer"] is not None]
    assert got
    for r in got:
        layer = parse_layer(r["layer"])
        assert layer.id == 7
        if "@" not in r["token"]:  # (a token with @-k reads an earlier layer, which the text form does not name)
            assert layer_tokens(Architecture((*prefix.layers, layer)))[-1] == r["token"]


def test_a_batch_gives_one_result_per_input_and_batching_changes_nothing(pipe, arch):
    tokens = layer_tokens(arch)
    inputs = [tokens[:3], tokens[:8], Architecture(arch.layers[:5]), []]
    one_by_one = [pipe(x, top_k=2) for x in inputs]
    assert pipe(inputs, top_k=2) == one_by_one
    batched = pipe(inputs, top_k=2, batch_size=3)
    assert len(batched) == len(inputs)
    for got, alone in zip(batched, one_by_one):
        assert [r["token"] for r in got] == [r["token"] for r in alone]
        assert [r["score"] for r in got] == pytest.approx([r["score"] for r in alone], abs=1e-5)


def test_allowed_tokens_restrict_the_answer_and_scores_sum_to_one(pipe, gpt, arch):
    tokens = layer_tokens(arch)[:5]
    allowed = {layer_tokens(arch)[5], layer_tokens(arch)[0], "conv:k9x9:s1x1:p4-4-4-4:d1:g1:b0:r7"}
    got = pipe(tokens, top_k=10, allowed_tokens=allowed)
    assert {r["token"] for r in got} == allowed & set(gpt.tokenizer.get_vocab())
    assert sum(r["score"] for r in got) == pytest.approx(1.0)
    assert pipe(tokens, allowed_tokens={"conv:k9x9:s1x1:p4-4-4-4:d1:g1:b0:r7"}) == []


def test_an_empty_context_asks_for_the_first_layer_and_specials_never_come_back(pipe, gpt):
    got = pipe([], top_k=len(gpt.tokenizer))
    assert len(got) == len(gpt.tokenizer) - len(SPECIAL_TOKENS)
    assert not {r["token"] for r in got} & set(SPECIAL_TOKENS)
    assert sum(r["score"] for r in got) == pytest.approx(1.0)


@pytest.mark.parametrize("call,error,text", [
    (lambda p: p(["conv:k3x3", "other:ReLU"]), ModelInputError, "inputs\\[0\\]"),
    (lambda p: p(["other:ReLU"], top_k=0), ModelInputError, "top_k"),
    (lambda p: p(["other:ReLU"], top_k=True), ModelInputError, "top_k"),
    (lambda p: p(["other:ReLU"], allowed_tokens="other:ReLU"), ModelInputError, "allowed_tokens"),
    (lambda p: p(["other:ReLU"], temperature=2.0), ModelInputError, "temperature"),
    (lambda p: p(123), ModelInputError, "inputs"),
    (lambda p: p([1, 2]), ModelInputError, "inputs"),
    (lambda p: p(Path("no-such-net.arch")), ArchitectureError, "no-such-net.arch"),
    (lambda p: p("no-such-net.arch"), ArchitectureError, "no-such-net.arch"),
    (lambda p: p("id:1;in_size:8-8-3;out_size:8-8-4"), ArchitectureError, "layer id 1, field 'in_size'"),
])
def test_bad_input_names_what_is_wrong(pipe, call, error, text):
    with pytest.raises(error, match=text):
        call(pipe)


def test_a_checkpoint_that_is_not_an_arch_gpt_is_refused(folder, tmp_path):
    from transformers import AutoTokenizer
    model = GPT2LMHeadModel(transformers.GPT2Config(vocab_size=7, n_positions=11, n_embd=8, n_layer=1, n_head=1))
    with pytest.raises(UserInputError, match="vocab_size"):
        ArchitectureCompletionPipeline(model=model, tokenizer=AutoTokenizer.from_pretrained(folder), device="cpu")


def test_import_arch_gpt_alone_registers_the_task_lazily(folder, arch):
    """Fresh interpreter: ``import arch_gpt`` imports neither torch nor transformers, and after it the stock
    factory knows the task (transformers.pipelines triggers the import of arch_gpt.pipelines)."""
    tokens = layer_tokens(arch)[:4]
    script = (
        "import sys, warnings\n"
        "warnings.simplefilter('error', RuntimeWarning)\n"
        "import arch_gpt\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'import arch_gpt is not light'\n"
        "from transformers import pipeline\n"
        f"pipe = pipeline('{TASK}', model={str(folder)!r}, device='cpu')\n"
        f"print(type(pipe).__name__, pipe({tokens!r}, top_k=2)[0]['token'])\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[0] == "ArchitectureCompletionPipeline"
