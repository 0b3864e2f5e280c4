"""Standalone exports: model.py needs torch and safetensors, not arch-gpt, and computes what the search's network does.

A real tiny search (digits, a tiny block space, 2 candidates of 2 training steps) is exported; the export is copied
elsewhere and run in a separate ``python -I -S`` process whose sys.path has site-packages but not arch-gpt (its
editable finder is not installed there, and a meta-path guard refuses the name), where model.py loads the weights and
its outputs must equal those of the search's own network on the same input. ``push_to_hub`` runs huggingface_hub's
real upload code with only the Hub's HTTP mocked (intercepted at the transport by tests/model_fixtures.FakeHub):
nothing reaches the network.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import site
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load, load_file, save_file
from torch import nn

import arch_gpt
from arch_gpt import standalone
from arch_gpt.cli import main
from arch_gpt.search.export import export_run, write_best_genome
from arch_gpt.search.run_config import load_run_config, rebuild
from arch_gpt.search.spaces import create_space
from arch_gpt.search.spaces.blocks import BlockGene, BlockSpace
from arch_gpt.torch_export import NetworkExportError, describe, standalone_copy
from model_fixtures import fake_hub  # noqa: F401 (fixture)

TINY = dict(strategy="ga", dataset="digits", seed=0, population=2, generations=1, epochs=1, batch_size=32,
            max_steps_per_epoch=2, widths=(8, 16), min_blocks=3, max_blocks=4, progress=False)
ALLOWED_IMPORTS = {"__future__", "json", "math", "operator", "os", "tempfile", "pathlib", "typing", "torch",
                   "safetensors", "huggingface_hub"}


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """(result, run folder, input, the search's own network's output on it) of a tiny real search."""
    run = tmp_path_factory.mktemp("search") / "run"
    result = arch_gpt.run_search(output_dir=run, **TINY)
    _, _, module = rebuild(load_run_config(run))
    module.load_state_dict(load_file(str(run / "best.safetensors")))
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = module.eval()(x)
    return result, run, x, ref


ISOLATED = r'''
import importlib.abc, importlib.util, json, sys
folder, saved, refused, *sites = sys.argv[1:]
natural = importlib.util.find_spec("arch_gpt")  # None: -S left out the editable install's finder


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in refused.split(","):
            raise ModuleNotFoundError(f"No module named {name!r} (not installed here)")


sys.meta_path.insert(0, Refuse())
sys.path[:0] = [folder]
sys.path.extend(sites)
try:
    import arch_gpt
    raise SystemExit("arch_gpt is importable")
except ImportError:
    pass
import torch
from safetensors.torch import load_file
import model
check = load_file(folder + "/check.safetensors")
with torch.no_grad():
    a = model.load_model()(check["x"])
    if "huggingface_hub" in refused:  # no Hub mixin: save_folder / from_folder only
        assert not hasattr(model.SearchedNetwork, "push_to_hub")
        model.load_model().save_folder(saved)
        b = c = model.SearchedNetwork.from_folder(saved)(check["x"])
    else:
        net = model.SearchedNetwork.from_pretrained(folder)
        b = net(check["x"])
        net.save_pretrained(saved)
        c = model.SearchedNetwork.from_pretrained(saved)(check["x"])
print(json.dumps({"natural": natural is not None, "equal": [torch.equal(v, check["ref"]) for v in (a, b, c)],
                  "arch_gpt_modules": sorted(m for m in sys.modules if m.split(".")[0] == "arch_gpt")}))
'''


@pytest.mark.parametrize("refused", ["arch_gpt", "arch_gpt,huggingface_hub"])
def test_export_runs_where_arch_gpt_is_not_installed(searched, tmp_path, capsys, refused):
    result, run, x, ref = searched
    assert main(["export", str(run), "--out", str(tmp_path / "exp")]) == 0
    assert "with trained weights" in capsys.readouterr().out
    shared = tmp_path / "elsewhere" / "net"
    shutil.copytree(tmp_path / "exp", shared)
    save_file({"x": x, "ref": ref}, str(shared / "check.safetensors"))
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", ISOLATED, str(shared), str(tmp_path / "saved"), refused,
                           *site.getsitepackages()], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["equal"] == [True, True, True] and report["arch_gpt_modules"] == []
    card = [] if "huggingface_hub" in refused else ["README.md"]
    assert sorted(p.name for p in (tmp_path / "saved").iterdir()) == card + ["config.json", "model.py",
                                                                           "model.safetensors"]
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert saved == json.loads((shared / "config.json").read_text())


def test_model_py_is_standalone_source_and_imports_no_arch_gpt(searched, tmp_path):
    _, run, *_ = searched
    out = export_run(run, tmp_path / "exp")
    source = (out / "model.py").read_text()
    assert source == Path(standalone.__file__).read_text()
    tree = ast.parse(source)
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= ALLOWED_IMPORTS, imported - ALLOWED_IMPORTS


def test_to_module_is_the_exported_class_with_the_trained_weights(searched, tmp_path):
    result, run, x, ref = searched
    net = result.to_module()
    assert type(net) is standalone.SearchedNetwork and not net.training
    with torch.no_grad():
        assert torch.equal(net(x), ref)
    exported = export_run(run, tmp_path / "exp")
    weights = load((exported / "model.safetensors").read_bytes())
    assert weights.keys() == net.state_dict().keys()
    assert all(torch.equal(weights[k], v) for k, v in net.state_dict().items())
    assert json.loads((exported / "config.json").read_text()) == net.config
    assert all(torch.equal(v, load_file(str(run / "best.safetensors"))[k]) for k, v in weights.items())


def test_card_says_how_the_network_was_found(searched, tmp_path):
    result, run, *_ = searched
    out = export_run(run, tmp_path / "exp")
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "pytorch" and "arch-gpt" in card.data.tags
    by_split = {r.dataset_split: r for r in card.data.eval_results}
    assert by_split["validation"].metric_value == pytest.approx(result.best.record.fitness)
    assert by_split["test"].metric_value == pytest.approx(result.best.record.test_acc)
    assert by_split["test"].dataset_name == "digits"
    text = (out / "README.md").read_text()
    for words in ("`blocks`", "`ga`", "2 evaluations", "digits", "arch-gpt search --strategy ga --space blocks",
                  "--population 2", "arch-gpt export RUN_DIR", "from_pretrained"):
        assert words in text, words
    assert str(tmp_path) not in text and str(run) not in text and "/tmp" not in text


def test_push_to_hub_uploads_a_loadable_folder(searched, fake_hub):
    result, run, x, ref = searched
    url = result.to_module().push_to_hub("me/tiny", token="hf_test_token")
    assert url.endswith("a" * 40)
    assert ("POST", "/api/models/me/tiny/commit/main") in fake_hub.requests
    assert {"config.json", "model.py", "README.md"} <= set(fake_hub.committed)
    assert fake_hub.committed["model.py"] == Path(standalone.__file__).read_bytes()
    assert b"model-index" in fake_hub.committed["README.md"]
    if "model.safetensors" in fake_hub.committed:  # a mock answering "lfs" uploads it elsewhere
        state = load(fake_hub.committed["model.safetensors"])
        assert all(torch.equal(state[k], v) for k, v in result.to_module().state_dict().items())


@pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="needs onnx (pip install 'arch-gpt[onnx]')")
def test_onnx_export(searched, tmp_path):
    _, run, x, ref = searched
    out = export_run(run, tmp_path / "exp", onnx=True)
    import onnx
    model = onnx.load_from_string((out / "model.onnx").read_bytes())
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["pixel_values"]
    assert [o.name for o in model.graph.output] == ["logits"]
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession((out / "model.onnx").read_bytes(), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"pixel_values": x.numpy()})[0]  # a batch of 4: the batch dimension is dynamic
    assert np.allclose(got, ref.numpy(), atol=1e-5)
    export_run(run, out)  # a re-export without --onnx removes the stale model.onnx
    assert not (out / "model.onnx").exists() and (out / "model.safetensors").exists()


@pytest.mark.skipif(importlib.util.find_spec("onnx") is not None, reason="onnx is installed")
def test_onnx_without_the_onnx_package_is_refused_before_writing(searched, tmp_path, capsys):
    _, run, *_ = searched
    assert main(["export", str(run), "--out", str(tmp_path / "exp"), "--onnx"]) == 2
    assert "--onnx" in capsys.readouterr().err and not (tmp_path / "exp").exists()


# --- every space and block kind ---------------------------------------------------------------------------------
ALL_KINDS = [("Conv", 16, 1, 3), ("Conv2dNormActivation", 16, 1, 3), ("BasicBlock", 16, 2, 0),
             ("Bottleneck", 16, 1, 0), ("InvertedResidual", 32, 2, 0), ("InvertedResidual", 32, 1, 0),
             ("MBConv", 32, 1, 4), ("SqueezeExcitation", 32, 1, 0), ("ResBottleneckBlock", 32, 1, 1),
             ("ResBottleneckBlock", 32, 1, 0), ("Inception", 32, 1, 0), ("MaxPool", 32, 1, 0), ("BN", 32, 1, 0),
             ("ReLU", 32, 1, 0)]


@pytest.mark.parametrize("name, config, genome", [
    ("blocks", dict(input_size=16, max_blocks=16), None),
    ("nasbench201", dict(input_size=16, channels=8, cells_per_stage=1),
     "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"),
    ("nasbench-macro", {}, "01201201"),
])
def test_every_space_rebuilds_exactly(tmp_path, name, config, genome):
    """The network best_genome.json records rebuilds, standalone, into the space's module: same names, outputs."""
    space = create_space(name, **config)
    if genome is None:
        genome = space.fit([BlockGene(*g) for g in ALL_KINDS])
        assert {g.kind for g in genome} == {g[0] for g in ALL_KINDS}
    module = space.build_module(genome, space.num_classes)
    write_best_genome(tmp_path, space, genome, fitness=0.5)
    recorded = json.loads((tmp_path / "best_genome.json").read_text())
    net = standalone.SearchedNetwork(recorded)
    assert net.state_dict().keys() == module.state_dict().keys()
    net.load_state_dict(module.state_dict())
    h, w, c = space.input_size
    x = torch.randn(2, c, h, w, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(net.eval()(x), module.eval()(x))
    net.train(), module.train()
    torch.manual_seed(3)
    want = module(x)
    torch.manual_seed(3)
    assert torch.equal(net(x), want)  # training mode too (batch statistics)


# --- refusals ----------------------------------------------------------------------------------------------------
class Upsampler(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.up = nn.Conv2d(3, 4, 3), nn.Upsample(scale_factor=2)

    def forward(self, x):
        return self.up(self.conv(x))


class LooseParameter(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x * self.scale


class Branching(nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x


@pytest.mark.parametrize("module, words", [
    (Upsampler(), ["'up'", "Upsample"]),
    (LooseParameter(), ["'scale'", "outside a layer"]),
    (Branching(), ["Branching", "trace"]),
])
def test_describe_names_what_it_cannot_rebuild(module, words):
    with pytest.raises(NetworkExportError) as err:
        standalone_copy(module, (3, 8, 8))
    for word in words:
        assert word in str(err.value)


def _network(**change) -> dict:
    net = describe(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
    net.update(change)
    return {"network": net}


@pytest.mark.parametrize("config, words", [
    ({"network": {"format": "other/9"}}, ["format", "other/9"]),
    (_network(modules={"0": {"type": "Eval", "args": {}}}), ["'0'", "unknown layer 'Eval'"]),
    (_network(modules={"0": {"type": "Conv2d", "args": {"exec": 1}}}), ["'0'", "'exec'"]),
    (_network(modules={"0": {"type": "Conv2d", "args": {"in_channels": 10**6, "out_channels": 10**6,
                                                        "kernel_size": 3}}}), ["parameters"]),
    (_network(graph=[{"name": "x", "op": "input"}, {"name": "y", "op": "function", "target": "os.system",
                                                    "args": [{"node": "x"}]}]), ["graph[1]", "os.system"]),
    (_network(graph=[{"name": "x", "op": "input"}, {"name": "y", "op": "method", "target": "__reduce__",
                                                    "args": [{"node": "x"}]}]), ["graph[1]", "__reduce__"]),
    (_network(graph=[{"name": "x", "op": "input"}, {"op": "output", "args": [{"node": "z"}]}]), ["'z'"]),
    (_network(graph=[{"name": "x", "op": "input"}]), ["output"]),
    (_network(modules={"config": {"type": "ReLU", "args": {}}}), ["'config'", "clashes"]),
])
def test_standalone_refuses_bad_configs_by_name(config, words):
    with pytest.raises(ValueError) as err:
        standalone.SearchedNetwork(config)
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_load_weights_names_the_file(tmp_path):
    net = standalone.SearchedNetwork(_network())
    (tmp_path / "w.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match="w.safetensors.*not a valid safetensors"):
        standalone.load_weights(net, tmp_path / "w.safetensors")
    save_file({"0.weight": torch.zeros(4, 3, 3, 3)}, str(tmp_path / "w.safetensors"))
    with pytest.raises(ValueError, match="w.safetensors.*missing '0.bias'"):
        standalone.load_weights(net, tmp_path / "w.safetensors")
