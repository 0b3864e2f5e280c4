"""Hub side of checkpoints: bundled names, local/Hub resolution, training record, model card, pushing.

The push tests run the real ``huggingface_hub`` upload code with NO network: only the Hub's HTTP is mocked, at the
transport (``huggingface_hub.set_client_factory`` with an ``httpx2.MockTransport``) that answers like the Hub and
records what would have been sent. The LFS test answers "lfs" for ``*.safetensors`` at preupload, so the weights go
through the LFS batch endpoint, the upload to storage and the verify call, and are committed as ``lfsFile``; it
turns the Xet transfer off with huggingface_hub's own ``HF_HUB_DISABLE_XET`` setting, because ``hf_xet`` moves bytes
with its own (Rust) HTTP client, which no Python transport can intercept. Card examples run in fresh interpreters
offline: the bundled one on the shipped files, a pushed one from a Hub-cache copy. The bundled-checkpoint test
loads the real shipped files offline.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys

import httpx2
import huggingface_hub
import pytest
from huggingface_hub import ModelCard

import arch_gpt
from arch_gpt import hub
from arch_gpt.errors import UserInputError
from arch_gpt.hub import CardInfo, CheckpointNotFoundError, StageRecord
from arch_gpt.modeling import ArchGPT
from model_fixtures import FakeHub, fake_hub, tiny_gpt  # noqa: F401 (fixture)

BUNDLED = hub.PRETRAINED_DIR / "arch-gpt-nasbench101"
STAGE = StageRecord(stage="pretrain", command="python -m arch_gpt.training.pretrain --data_dir c --max_steps 9",
                    data_dir="c", data_summary="12 windows", hyperparameters={"learning_rate": 1e-4},
                    metrics={"next_layer_top1": 0.61234, "bigram_baseline_top1": 0.55125, "heldout_windows": 12})


@pytest.fixture(scope="module")
def gpt():
    model = tiny_gpt(["BasicBlock", "Linear"], hidden_size=8)
    model.stages.append(STAGE)
    return model


# ----------------------------------------------------------------------------- names and paths

def test_pretrained_path_is_exported_lazily():
    assert arch_gpt.pretrained_path is hub.pretrained_path


def test_pretrained_path_unknown_name(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="not bundled|not a bundled"):
        hub.pretrained_path("arch-gpt-imagenet")


def test_pretrained_path_missing_files(monkeypatch, tmp_path):
    monkeypatch.setattr(hub, "PRETRAINED_DIR", tmp_path)
    with pytest.raises(CheckpointNotFoundError, match="missing"):
        hub.pretrained_path("arch-gpt-nasbench101")


def test_bundled_name_resolves_to_package_folder(monkeypatch, tmp_path, gpt):
    monkeypatch.setattr(hub, "PRETRAINED_DIR", tmp_path)
    gpt.save_pretrained(tmp_path / "arch-gpt-nasbench101")
    assert hub.resolve_checkpoint("arch-gpt-nasbench101") == tmp_path / "arch-gpt-nasbench101"


def test_local_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="no config.json"):
        hub.resolve_checkpoint(tmp_path)


def test_path_like_name_that_does_not_exist_is_rejected(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="no such checkpoint"):
        hub.resolve_checkpoint(tmp_path / "nope")


def test_hub_id_resolves_through_the_hf_cache_offline(monkeypatch, tmp_path, gpt):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    repo = tmp_path / "models--me--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("b" * 40)
    snapshot = gpt.save_pretrained(repo / "snapshots" / ("b" * 40))
    assert hub.resolve_checkpoint("me/tiny", cache_dir=str(tmp_path)) == snapshot


def test_uncached_hub_id_offline_fails_with_the_hf_error(monkeypatch, tmp_path):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(huggingface_hub.errors.LocalEntryNotFoundError):
        hub.resolve_checkpoint("someone/not-cached", cache_dir=str(tmp_path))


# ----------------------------------------------------------------------------- record and card

def test_training_record_round_trip(tmp_path):
    hub.save_training_record(tmp_path, [STAGE])
    assert hub.load_training_record(tmp_path) == [STAGE]


def test_corrupt_training_record_is_a_user_error(tmp_path):
    (tmp_path / hub.TRAINING_RECORD_FILE).write_text('{"stages": [{"stage": 1}]}')
    with pytest.raises(UserInputError, match="stages"):
        hub.load_training_record(tmp_path)


def test_template_is_found_in_the_source_tree():
    assert hub.template_path().parent.name == "model_cards"


def test_card_has_metadata_metrics_commands_use_and_limits():
    info = CardInfo(model_id="me/tiny", n_layer=4, n_head=4, n_embd=128, window=10, vocab_size=50,
                    n_parameters=800000, corpus="nasbench101", block_labels=["Bottleneck"])
    card = hub.render_model_card(info, [STAGE])
    text = str(card)
    assert card.data.license == "apache-2.0" and "neural-architecture-search" in card.data.tags
    assert "| next_layer_top1 | 0.6123 |" in text and "| bigram_baseline_top1 | 0.5513 |" in text
    assert "| heldout_windows | 12 |" in text and STAGE.command in text
    assert "## Intended use" in text and "## Limitations" in text and "800,000" in text
    assert card.data.pipeline_tag is None and "architecture-completion" in card.data.tags
    assert "https://github.com/)" not in text and 'pipeline("architecture-completion", model=path' in text


def test_saved_checkpoint_card_contains_metrics(gpt, tmp_path):
    gpt.save_pretrained(tmp_path, model_id="me/tiny")
    card = ModelCard.load(tmp_path / "README.md")
    assert "0.6123" in card.text and card.data.model_name == "me/tiny"
    assert ArchGPT.from_pretrained(tmp_path, device="cpu").stages == [STAGE]


BLOCK_STAGE = StageRecord(stage="block_classifier", command="python -m arch_gpt.training.block_classifier",
                          data_dir="d",
                          data_summary="9 distinct training rows, 3 held-out ('test'); corpus: torchvision",
                          metrics={"block_accuracy": 0.75, "majority_block_baseline_accuracy": 0.5})


def python_example(card_text: str) -> str:
    """The card's Python example (its first ```python block)."""
    found = re.search(r"```python\n(.*?)```", card_text, re.S)
    assert found, "the card has no Python example"
    return found.group(1)


def run_offline(code: str, cwd, **env) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1", **env}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_card_model_index_holds_each_stage_held_out_metrics():
    info = CardInfo(model_id="me/tiny", n_layer=2, n_head=2, n_embd=16, window=10, vocab_size=50, n_parameters=9,
                    corpus="c")
    card = ModelCard(str(hub.render_model_card(info, [STAGE, BLOCK_STAGE])))  # parsed back from its text
    got = {(r.task_type, r.dataset_type, r.dataset_config, r.dataset_split, r.metric_type, r.metric_config,
            r.metric_value) for r in card.data.eval_results}
    assert got == {("text-generation", "arch-gpt-c", "lm", "validation", "accuracy", "top-1", 0.6123),
                   ("text-classification", "arch-gpt-torchvision", "blocks", "test", "accuracy", None, 0.75)}
    names = [r.metric_name for r in card.data.eval_results]
    assert names == ["Next-layer top-1 accuracy (pretrain stage)", "Block-class accuracy (block_classifier stage)"]
    assert card.data.datasets is None and card.data.base_model is None  # local corpora: nothing to link to


def test_card_names_hub_datasets_and_base_model_when_given(gpt, tmp_path):
    gpt.save_pretrained(tmp_path / "ok", model_id="me/tiny", datasets=["me/nb101-corpus"], base_model="me/base")
    card = ModelCard.load(tmp_path / "ok" / "README.md")
    assert card.data.datasets == ["me/nb101-corpus"] and card.data.base_model == "me/base"
    for kwargs, name in (({"datasets": ["librispeech 960h"]}, "datasets"), ({"base_model": "runs"}, "base_model")):
        with pytest.raises(UserInputError, match=name):
            gpt.save_pretrained(tmp_path / "bad", **kwargs)
        assert not (tmp_path / "bad").exists()


def test_card_shows_no_machine_path(tmp_path):
    corpus = tmp_path / "my-corpus"
    stage = StageRecord(
        stage="finetune", data_dir=str(corpus),
        command=f"python -m arch_gpt.training.finetune --data_dir {corpus} --output_dir /root/runs/ft --model x/y",
        data_summary=f"3 windows ('validation' split); tokenizer_source: {corpus}/tokenizer; cache=~/c/cells.npz; "
                     "see https://example.org/a/b; fc:r5/256",
        hyperparameters={"start_checkpoint": str(tmp_path / "pre")}, metrics={"next_layer_top1": 0.5})
    info = CardInfo(model_id="me/tiny", n_layer=2, n_head=2, n_embd=16, window=10, vocab_size=50, n_parameters=9,
                    corpus=f"{corpus} + tv")
    text = str(hub.render_model_card(info, [stage]))
    for machine in (str(tmp_path), "/tmp", "/root", "~/", "https://github.com/)"):
        assert machine not in text, machine
    assert "--data_dir my-corpus --output_dir ft" in text and "tokenizer_source: my-corpus/tokenizer" in text
    assert "https://example.org/a/b" in text and "fc:r5/256" in text and "| start_checkpoint | pre |" in text


@pytest.mark.skipif(not (BUNDLED / "config.json").is_file(), reason="bundled checkpoint not trained yet")
def test_bundled_card_is_the_rendered_card_with_the_recorded_numbers():
    """The shipped README is exactly what the template renders from the shipped training record (regenerate it
    with ArchGPT.from_pretrained(...).save_pretrained-style rendering when the template changes)."""
    gpt = ArchGPT.from_pretrained("arch-gpt-nasbench101", device="cpu")
    text = (BUNDLED / "README.md").read_text()
    assert text == str(hub.render_model_card(gpt.card_info("arch-gpt-nasbench101"), gpt.stages))
    card = ModelCard(text)
    metrics = {r.metric_name: r.metric_value for r in card.data.eval_results}
    record = {s.stage: s.metrics for s in hub.load_training_record(BUNDLED)}
    assert metrics == {
        "Next-layer top-1 accuracy (pretrain stage)": round(record["pretrain"]["next_layer_top1"], 4),
        "Next-layer top-5 accuracy (pretrain stage)": round(record["pretrain"]["next_layer_top5"], 4),
        "Next-layer perplexity (pretrain stage)": round(record["pretrain"]["perplexity"], 4),
        "Next-layer top-1 accuracy (finetune stage)": round(record["finetune"]["next_layer_top1"], 4),
        "Next-layer top-5 accuracy (finetune stage)": round(record["finetune"]["next_layer_top5"], 4),
        "Next-layer perplexity (finetune stage)": round(record["finetune"]["perplexity"], 4),
        "Block-class accuracy (block_classifier stage)": round(record["block_classifier"]["block_accuracy"], 4)}
    assert metrics["Next-layer top-1 accuracy (pretrain stage)"] == 0.7118
    for machine in ("/tmp", "/root", "https://github.com/)"):
        assert machine not in text, machine
    assert card.data.pipeline_tag is None


@pytest.mark.skipif(not (BUNDLED / "config.json").is_file(), reason="bundled checkpoint not trained yet")
def test_bundled_card_example_runs_offline(tmp_path):
    code = python_example((BUNDLED / "README.md").read_text())
    assert 'arch_gpt.pretrained_path("arch-gpt-nasbench101")' in code
    done = run_offline(code, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "'token':" in done.stdout and "'score':" in done.stdout


def test_a_pushed_checkpoint_card_example_runs_from_the_hub_cache(gpt, tmp_path):
    """The card of a checkpoint published as ``me/tiny``, run as written, with the Hub answered by a cache copy."""
    revision = "c" * 40
    repo = tmp_path / "hub" / "models--me--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = gpt.save_pretrained(repo / "snapshots" / revision, model_id="me/tiny")
    code = python_example((snapshot / "README.md").read_text())
    assert 'path = "me/tiny"' in code
    done = run_offline(code, tmp_path, HF_HUB_CACHE=str(tmp_path / "hub"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "'token':" in done.stdout


# ----------------------------------------------------------------------------- push (HTTP intercepted)

def test_push_to_hub_uploads_the_whole_checkpoint_in_one_commit(gpt, fake_hub):
    url = gpt.push_to_hub("me/tiny", token="hf_test_token")
    assert url.endswith("a" * 40)
    assert ("POST", "/api/repos/create") in fake_hub.requests
    assert ("POST", "/api/models/me/tiny/commit/main") in fake_hub.requests
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md",
            "arch_gpt_training.json", "block_classifier/config.json",
            "block_classifier/model.safetensors"} <= set(fake_hub.committed)
    assert b"me/tiny" in fake_hub.committed["README.md"] and b"0.6123" in fake_hub.committed["README.md"]
    assert json.loads(fake_hub.committed["config.json"])["window"] == 10


class LfsFakeHub(FakeHub):
    """The Hub with its LFS side: preupload answers "lfs" for ``*.safetensors``, the LFS batch endpoint hands out a
    basic transfer (a storage URL to PUT to, then a verify URL), and the commit lists those files as ``lfsFile``."""

    STORAGE = "lfs-storage.example"

    def __init__(self):
        super().__init__()
        self.stored: dict[str, bytes] = {}
        self.verified: list[str] = []
        self.lfs_committed: dict[str, dict] = {}

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path.endswith("/preupload/main"):
            self.requests.append((request.method, path))
            files = json.loads(request.content)["files"]
            return httpx2.Response(200, json={"files": [
                {"path": f["path"], "uploadMode": "lfs" if f["path"].endswith(".safetensors") else "regular",
                 "shouldIgnore": False} for f in files]})
        if path.endswith(".git/info/lfs/objects/batch"):
            self.requests.append((request.method, path))
            body = json.loads(request.content)
            assert body["operation"] == "upload" and "basic" in body["transfers"]
            return httpx2.Response(200, json={"transfer": "basic", "objects": [{
                "oid": o["oid"], "size": o["size"], "actions": {
                    "upload": {"href": f"https://{self.STORAGE}/put/{o['oid']}", "header": {}},
                    "verify": {"href": "https://huggingface.co/me/tiny.git/info/lfs/objects/verify", "header": {}}}}
                for o in body["objects"]]})
        if request.url.host == self.STORAGE:
            self.requests.append((request.method, f"//{self.STORAGE}/put"))
            self.stored[path.rsplit("/", 1)[-1]] = request.read()
            return httpx2.Response(200)
        if path.endswith("/info/lfs/objects/verify"):
            self.requests.append((request.method, path))
            self.verified.append(json.loads(request.content)["oid"])
            return httpx2.Response(200, json={"success": True})
        if path.endswith("/commit/main"):
            for line in request.content.splitlines():
                item = json.loads(line)
                if item["key"] == "lfsFile":
                    self.lfs_committed[item["value"]["path"]] = item["value"]
        return super().__call__(request)


@pytest.fixture
def lfs_hub(monkeypatch):
    """An LfsFakeHub behind huggingface_hub's HTTP client, with the Xet transfer off (see the module docstring)."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    fake = LfsFakeHub()
    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake)))
    yield fake
    huggingface_hub.set_client_factory(huggingface_hub.utils._http.default_client_factory)


def test_push_sends_the_safetensors_through_lfs(gpt, lfs_hub, tmp_path):
    url = gpt.push_to_hub("me/tiny", token="hf_test_token")
    assert url.endswith("a" * 40)
    weights = {"model.safetensors", "block_classifier/model.safetensors"}
    assert set(lfs_hub.lfs_committed) == weights and not weights & set(lfs_hub.committed)
    local = gpt.save_pretrained(tmp_path, model_id="me/tiny")
    for name, entry in lfs_hub.lfs_committed.items():
        content = lfs_hub.stored[entry["oid"]]
        assert hashlib.sha256(content).hexdigest() == entry["oid"] and len(content) == entry["size"]
        assert content == (local / name).read_bytes()
    assert sorted(lfs_hub.verified) == sorted(e["oid"] for e in lfs_hub.lfs_committed.values())
    order = [path for _, path in lfs_hub.requests]
    batch, commit = order.index("/me/tiny.git/info/lfs/objects/batch"), order.index("/api/models/me/tiny/commit/main")
    assert order.index("/api/models/me/tiny/preupload/main") < batch < order.index(f"//{LfsFakeHub.STORAGE}/put")
    assert order.index("/me/tiny.git/info/lfs/objects/verify") < commit
    assert {"config.json", "README.md", "tokenizer.json"} <= set(lfs_hub.committed)


# ----------------------------------------------------------------------------- the bundled checkpoint

@pytest.mark.skipif(not (BUNDLED / "config.json").is_file(), reason="bundled checkpoint not trained yet")
def test_bundled_checkpoint_loads_offline_and_predicts_a_valid_resnet_layer():
    script = (
        "import arch_gpt, torch\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "from torchvision.models import resnet18\n"
        "from arch_gpt.encoding import check_layer\n"
        "from arch_gpt.modeling import ArchGPT\n"
        "from arch_gpt.torch_io import from_module\n"
        "gpt = ArchGPT.from_pretrained('arch-gpt-nasbench101', device='cpu')\n"
        "c = gpt.model.config\n"
        "assert (c.n_layer, c.n_head, c.window, gpt.window) == (4, 4, 10, 10), c\n"
        "assert gpt.block_classifier is not None\n"
        "path = arch_gpt.pretrained_path('arch-gpt-nasbench101')\n"
        "assert type(AutoModelForCausalLM.from_pretrained(path)).__name__ == 'GPT2LMHeadModel'\n"
        "AutoTokenizer.from_pretrained(path)\n"
        "arch = from_module(resnet18(weights=None).eval(), input_size=(3, 32, 32))\n"
        "(layer,) = gpt.predict_next_layers([arch], [12])\n"
        "check_layer(layer)\n"
        "assert layer.id == 13\n"
        "print('OK', layer)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "OK" in done.stdout, done.stderr[-2000:]


# ----------------------------------------------------------------------------- checkpoint files
def test_safetensors_shapes_reads_the_header_only(gpt, tmp_path):
    gpt.save_pretrained(tmp_path)
    shapes = hub.safetensors_shapes(tmp_path / "model.safetensors")
    assert shapes["transformer.wte.weight"] == (gpt.tokenizer.vocab_size, gpt.config.n_embd)


@pytest.mark.parametrize("content,text", [
    (b"", "not a valid safetensors"), (b"\x00" * 7, "not a valid safetensors"),
    (b'{"not": "weights"}', "not a valid safetensors"), (None, "file not found"),
])
def test_safetensors_shapes_of_a_bad_file_names_it(tmp_path, content, text):
    path = tmp_path / "model.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(hub.CheckpointFileError, match=text) as info:
        hub.safetensors_shapes(path)
    assert str(path) in str(info.value)


def test_pickled_weights_are_pointed_at_but_never_opened(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04 a pickle that must not be opened")
    with pytest.raises(hub.CheckpointFileError, match="pytorch_model.bin.*never loaded"):
        hub.safetensors_shapes(tmp_path / "model.safetensors")


def test_check_weight_shapes_names_the_tensor(gpt, tmp_path):
    gpt.save_pretrained(tmp_path)
    path = tmp_path / "model.safetensors"
    expected = hub.safetensors_shapes(path)
    hub.check_weight_shapes(path, expected)
    with pytest.raises(hub.CheckpointFileError, match="'transformer.wpe.weight' has shape"):
        hub.check_weight_shapes(path, {**expected, "transformer.wpe.weight": (1, 1)})
    with pytest.raises(hub.CheckpointFileError, match="'extra' is missing"):
        hub.check_weight_shapes(path, {**expected, "extra": (1,)})
    hub.check_weight_shapes(path, {**expected, "extra": (1,)}, may_be_absent={"extra"})
    with pytest.raises(hub.CheckpointFileError, match="unexpected tensor"):
        hub.check_weight_shapes(path, {k: v for k, v in expected.items() if k != "transformer.ln_f.bias"})


@pytest.mark.parametrize("config,text", [
    (None, "file not found"), ([], "JSON object"), ({"model_type": "bert"}, "'model_type'"),
])
def test_read_config_names_file_and_field(tmp_path, config, text):
    if config is not None:
        (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(hub.CheckpointFileError, match=text) as info:
        hub.read_config(tmp_path, "gpt2")
    assert "config.json" in str(info.value)


@pytest.mark.parametrize("value", [0, -1, 2 ** 30, 1.5, True, "8", None])
def test_config_int_names_the_field(value):
    with pytest.raises(hub.CheckpointFileError, match="c.json: field 'n_embd'"):
        hub.config_int({"n_embd": value}, "c.json", "n_embd")


@pytest.mark.parametrize("record", ['{"stages": {"a": 1}}', '{"stages": [1]}', '[]', '{"stages": [{"bogus": 1}]}'])
def test_training_record_of_wrong_shape_is_a_user_error(tmp_path, record):
    (tmp_path / hub.TRAINING_RECORD_FILE).write_text(record)
    with pytest.raises(UserInputError, match="stages"):
        hub.load_training_record(tmp_path)


def test_save_into_a_file_or_under_one_names_it(gpt, tmp_path):
    (tmp_path / "taken").write_text("mine")
    for target in (tmp_path / "taken", tmp_path / "taken" / "ckpt"):
        with pytest.raises(hub.CheckpointFileError, match="taken: is a file"):
            gpt.save_pretrained(target)
    assert (tmp_path / "taken").read_text() == "mine"
    with pytest.raises(hub.CheckpointFileError, match="directory"):
        gpt.save_pretrained(None)


ALL_SPACES = hub.PRETRAINED_DIR / "arch-gpt-all-spaces"


@pytest.mark.skipif(not (ALL_SPACES / "config.json").is_file(), reason="all-spaces checkpoint not bundled")
def test_all_spaces_checkpoint_is_bundled_with_the_fitness_tokens():
    """The second bundled name resolves offline; its vocabulary ends with the fitness tokens, which the GPT never
    ranks among its likely next layers (they were never a training target)."""
    import torch

    from arch_gpt.tokenizer import FITNESS_TOKENS
    from arch_gpt.zoo import nasbench201

    assert "arch-gpt-all-spaces" in hub.BUNDLED_MODELS and "arch-gpt-nasbench101" in hub.BUNDLED_MODELS
    assert hub.pretrained_path("arch-gpt-all-spaces") == ALL_SPACES
    gpt = ArchGPT.from_pretrained("arch-gpt-all-spaces", device="cpu")
    tok = gpt.tokenizer
    assert tok.fitness_tokens == list(FITNESS_TOKENS)
    assert tok.tokens_to_ids(FITNESS_TOKENS) == list(range(tok.vocab_size - 3, tok.vocab_size))
    assert (gpt.model.config.n_embd, gpt.model.config.n_positions, gpt.window) == (64, 11, 10)
    assert gpt.block_classifier is not None
    arch = nasbench201.expand(["nor_conv_3x3"] * 6, num_classes=10).architecture
    tokens = [t for t in tok.hf.convert_ids_to_tokens(tok.encode(arch))[1:-1]]
    contexts = [tokens[:k] for k in (0, 3, 10, 40)]
    logits = gpt.next_token_logits(contexts)
    top = torch.topk(logits, 5, dim=-1).indices
    assert not set(top.flatten().tolist()) & set(tok.tokens_to_ids(FITNESS_TOKENS))
    card = (ALL_SPACES / "README.md").read_text()
    assert "## Held-out accuracy per space" in card and "/work/" not in card and "/tmp" not in card
