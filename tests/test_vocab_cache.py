"""The traced-model token cache of the NAS-Bench-101 vocabulary: the counts tracing gives (models built on the meta
device trace to the same layers), traced once, then read; a damaged file or another code/library version traces
again."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from arch_gpt.tokenizer.tokenization import layer_tokens
from arch_gpt.training import vocab_cache
from arch_gpt.zoo import torchvision_models
from arch_gpt.zoo.torchvision_models import trace_table2_model


@pytest.fixture(scope="module")
def traced():
    return Counter(layer_tokens(trace_table2_model("shufflenet_v2_x0_5")))


@pytest.mark.parametrize("name", ["resnet18", "regnet_x_400mf", "efficientnet_b0", "googlenet"])
def test_models_on_the_meta_device_trace_to_the_same_architecture(name):
    """RegNet computes its widths with tensors while it is built, GoogLeNet and EfficientNet have their own blocks."""
    real, empty = trace_table2_model(name), trace_table2_model(name, empty_weights=True)
    assert empty.to_json() == real.to_json()


def _no_tracing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("traced although cached")
    monkeypatch.setattr(torchvision_models, "trace_table2_model", refuse)


def test_counts_are_traced_once_then_read(tmp_path, monkeypatch, traced):
    assert vocab_cache.model_token_counts("shufflenet_v2_x0_5", 32, tmp_path) == traced
    (path,) = tmp_path.rglob("*.json")
    assert path.name == "shufflenet_v2_x0_5-32.json" and path.parent.name == vocab_cache.cache_key()
    _no_tracing(monkeypatch)
    assert vocab_cache.model_token_counts("shufflenet_v2_x0_5", 32, tmp_path) == traced
    assert vocab_cache.table2_token_counts(["shufflenet_v2_x0_5"], 32, tmp_path) == traced


def test_default_folder_follows_arch_gpt_cache(tmp_path, monkeypatch, traced):
    monkeypatch.setenv("ARCH_GPT_CACHE", str(tmp_path))
    assert vocab_cache.default_cache_dir() == tmp_path / "table2-tokens"
    vocab_cache.model_token_counts("shufflenet_v2_x0_5")
    assert (tmp_path / "table2-tokens" / vocab_cache.cache_key() / "shufflenet_v2_x0_5-32.json").is_file()


@pytest.mark.parametrize("damage", ["{", json.dumps({"model": "resnet18", "input_size": 32, "tokens": {}}),
                                    json.dumps({"model": "shufflenet_v2_x0_5", "input_size": 32,
                                                "tokens": {"conv": -1}}), "[]"])
def test_a_damaged_file_is_traced_again(tmp_path, traced, damage):
    path = tmp_path / vocab_cache.cache_key() / "shufflenet_v2_x0_5-32.json"
    path.parent.mkdir(parents=True)
    path.write_text(damage)
    assert vocab_cache.model_token_counts("shufflenet_v2_x0_5", 32, tmp_path) == traced
    assert json.loads(path.read_text())["tokens"] == dict(traced)


def test_key_changes_with_the_tracing_code(monkeypatch):
    key = vocab_cache.cache_key()
    vocab_cache.cache_key.cache_clear()
    monkeypatch.setattr(vocab_cache, "SOURCE_MODULES", (*vocab_cache.SOURCE_MODULES[:-1], "arch_gpt.io"))
    try:
        assert vocab_cache.cache_key() != key
    finally:
        vocab_cache.cache_key.cache_clear()
