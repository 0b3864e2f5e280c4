"""BlockClassifier (the paper's FCN): forward/loss, saving in the checkpoint's ``block_classifier/`` subfolder,
and ``ArchGPT.classify_blocks`` with allowed labels, loading through ``AutoConfig``/``AutoModel`` after
``import arch_gpt``. Real tokenizer and tiny models, no mocks."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from arch_gpt.block_classifier import BlockClassifier, BlockClassifierConfig
from arch_gpt.errors import UserInputError
from arch_gpt.modeling import TINY, ArchGPT, ModelInputError, new_block_classifier
from arch_gpt.tokenizer import LayerTokenizer, layer_tokens
from model_fixtures import tiny_architectures, tiny_gpt

LABELS = ["BasicBlock", "Bottleneck", "Conv2dNormActivation", "Linear"]


@pytest.fixture(scope="module")
def archs():
    return tiny_architectures()[:3]


@pytest.fixture(scope="module")
def gpt():
    return tiny_gpt(LABELS, embed_dim=8, hidden_size=16)


def test_forward_gives_logits_per_label_and_loss():
    model = BlockClassifier(BlockClassifierConfig(label_names=LABELS, vocab_size=12, embed_dim=4, hidden_size=8))
    out = model(context_ids=torch.zeros((3, 10), dtype=torch.long), next_id=torch.tensor([1, 2, 3]),
                labels=torch.tensor([0, 1, 3]))
    assert out.logits.shape == (3, 4) and out.loss.ndim == 0 and out.loss > 0


def test_config_without_labels_is_rejected():
    with pytest.raises(ValueError, match="label_names"):
        BlockClassifier(BlockClassifierConfig(label_names=[], vocab_size=12))


def test_saved_in_subfolder_with_safetensors_and_reloaded_identically(gpt, archs, tmp_path):
    gpt.save_pretrained(tmp_path)
    assert sorted(p.name for p in (tmp_path / "block_classifier").iterdir()) == ["config.json", "model.safetensors"]
    loaded = ArchGPT.from_pretrained(tmp_path, device="cpu")
    assert loaded.block_classifier.config.label_names == LABELS
    ids, _ = gpt.context_ids([layer_tokens(archs[0])[:4]])
    nxt = torch.tensor(gpt.tokenizer.tokens_to_ids([layer_tokens(archs[0])[4]]))
    with torch.no_grad():
        assert torch.allclose(gpt.block_classifier(ids, nxt).logits, loaded.block_classifier(ids, nxt).logits,
                              rtol=1e-5, atol=1e-9)


def test_classify_blocks_returns_label_names(gpt, archs):
    toks = layer_tokens(archs[1])
    got = gpt.classify_blocks([toks[:3], toks[:8], []], [toks[3], toks[8], toks[0]])
    assert len(got) == 3 and set(got) <= set(LABELS)


def test_allowed_labels_one_collection_for_all_rows(gpt, archs):
    toks = layer_tokens(archs[1])
    got = gpt.classify_blocks([toks[:i] for i in range(6)], toks[:6], allowed_labels=["Linear"])
    assert got == ["Linear"] * 6


def test_allowed_labels_per_row_and_none_when_unknown(gpt, archs):
    toks = layer_tokens(archs[1])
    got = gpt.classify_blocks([toks[:2], toks[:3], toks[:4]], toks[2:5],
                              allowed_labels=[{"Bottleneck"}, {"NotABlock"}, None])
    assert got[0] == "Bottleneck" and got[1] is None and got[2] in LABELS


def test_classify_blocks_length_mismatch_is_rejected(gpt, archs):
    with pytest.raises(ModelInputError, match="predicted_tokens"):
        gpt.classify_blocks([[], []], [layer_tokens(archs[0])[0]])


def test_classify_blocks_without_classifier_is_a_user_error(archs):
    model = ArchGPT.create(LayerTokenizer.build(archs), device="cpu", **TINY)
    with pytest.raises(UserInputError, match="block_classifier"):
        model.classify_blocks([[]], [layer_tokens(archs[0])[0]])


def test_classifier_of_other_vocabulary_is_rejected(gpt):
    other = new_block_classifier(LayerTokenizer.from_tokens(["other:ReLU"]), LABELS)
    with pytest.raises(UserInputError, match="vocab_size"):
        gpt.attach_block_classifier(other)


# ----------------------------------------------------------------------------- Auto classes

def test_auto_classes_load_the_saved_classifier_with_the_same_outputs(gpt, archs, tmp_path):
    from transformers import AutoConfig, AutoModel
    gpt.save_pretrained(tmp_path)
    sub = tmp_path / "block_classifier"
    assert type(AutoConfig.from_pretrained(sub)) is BlockClassifierConfig
    model = AutoModel.from_pretrained(sub)
    assert type(model) is BlockClassifier and model.config.label_names == LABELS
    ids, _ = gpt.context_ids([layer_tokens(archs[0])[:4]])
    nxt = torch.tensor(gpt.tokenizer.tokens_to_ids([layer_tokens(archs[0])[4]]))
    with torch.no_grad():
        assert torch.allclose(gpt.block_classifier.eval()(ids, nxt).logits, model.eval()(ids, nxt).logits,
                              rtol=1e-5, atol=1e-9)
    assert "auto_map" not in (sub / "config.json").read_text()  # registered classes need no remote-code pointer


@pytest.mark.parametrize("order", ["arch_gpt first", "transformers first", "block_classifier first"])
def test_import_arch_gpt_registers_the_auto_classes_in_a_fresh_interpreter(gpt, tmp_path, order):
    """``import arch_gpt`` stays light (no torch, no transformers) and, whichever comes first, ``AutoConfig`` and
    ``AutoModel`` know the block classifier afterwards; no registration warning on the way."""
    gpt.save_pretrained(tmp_path)
    first = {"arch_gpt first": "import arch_gpt\n"
                                "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n",
             "transformers first": "import transformers\nimport arch_gpt\n",
             "block_classifier first": "import arch_gpt.block_classifier\n"}[order]
    script = ("import sys, warnings\nwarnings.simplefilter('error', RuntimeWarning)\n" + first +
              "from transformers import AutoConfig, AutoModel\n"
              f"config = AutoConfig.from_pretrained({str(tmp_path / 'block_classifier')!r})\n"
              f"model = AutoModel.from_pretrained({str(tmp_path / 'block_classifier')!r})\n"
              "print(type(config).__name__, type(model).__name__, ','.join(model.config.label_names))\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["BlockClassifierConfig", "BlockClassifier", ",".join(LABELS)]
