"""``arch-gpt export`` and ``arch-gpt retrain`` on a hand-made run folder (a tiny block genome, digits data)."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from arch_gpt.cli import main
from arch_gpt.search.export import ExportError, export_run, load_run_config, write_best_genome
from arch_gpt.search.retrain import RetrainConfig, retrain
from arch_gpt.search.spaces.blocks import BlockSpace


def make_run(tmp_path, weights: bool = True):
    space = BlockSpace(num_classes=10, input_size=16, min_blocks=3, max_blocks=4, widths=(8, 16))
    genome = space.sample(np.random.default_rng(0))
    run = tmp_path / "run"
    run.mkdir()
    write_best_genome(run, space, genome, fitness=0.5, num_classes=10, input_size=(16, 16, 3))
    model = space.build_module(genome)
    if weights:
        save_file(model.state_dict(), str(run / "best.safetensors"))
    (run / "best.arch").write_text("# not traced in this test\n")
    return run, space, genome, model


def import_model_file(path):
    spec = importlib.util.spec_from_file_location("exported_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_writes_runnable_module_with_weights(tmp_path):
    run, space, genome, model = make_run(tmp_path)
    out = export_run(run, tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "best.arch", "config.json", "model.py",
                                                     "model.safetensors"]
    assert json.loads((out / "config.json").read_text())["key"] == space.key(genome)
    loaded = import_model_file(out / "model.py").load_model().eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


LEGACY_MODEL_PY = """from pathlib import Path
HERE = Path(__file__).resolve().parent


def load_model():
    from arch_gpt.search.export import build_from_config, load_weights
    model = build_from_config(HERE / "config.json")
    load_weights(HERE / "model.safetensors", model)
    return model
"""


def test_model_py_of_an_earlier_export_still_loads_the_new_files(tmp_path):
    """arch-gpt 0.1 wrote a model.py that rebuilt the space's module through arch_gpt; it reads today's export."""
    run, space, genome, model = make_run(tmp_path)
    out = export_run(run, tmp_path / "out")
    (out / "model.py").write_text(LEGACY_MODEL_PY)
    loaded = import_model_file(out / "model.py").load_model().eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_export_without_weights_and_cli(tmp_path, capsys):
    run, *_ = make_run(tmp_path, weights=False)
    assert main(["export", str(run)]) == 0
    assert "no trained weights" in capsys.readouterr().out
    assert not (run / "export" / "model.safetensors").exists()
    assert import_model_file(run / "export" / "model.py").build_model()(torch.randn(1, 3, 16, 16)).shape == (1, 10)


def test_export_falls_back_to_result_json(tmp_path):
    space = BlockSpace(input_size=16)
    genome = space.sample(np.random.default_rng(1))
    run = tmp_path / "run"
    run.mkdir()
    (run / "result.json").write_text(json.dumps({"space": "blocks", "best": {"key": space.key(genome)}}))
    assert load_run_config(run).key == space.key(genome)
    assert (export_run(run) / "model.py").exists()


@pytest.mark.parametrize("content, match", [
    (None, "neither"),
    ("{", "not valid JSON"),
    ('{"space": "blocks"}', "'key'"),
    ('{"space": "blocks", "key": "Conv-8-s1-x3", "input_size": [16, 16]}', "input_size"),
    ('{"space": "blocks", "key": "Conv-8-s1-x3", "num_classes": 0}', "num_classes"),
    ('{"space": "blocks", "key": "Conv-8-s1-x3", "space_config": {"colour": 1}}', "space_config"),
])
def test_export_rejects_bad_run_folders(tmp_path, content, match):
    run = tmp_path / "run"
    run.mkdir()
    if content is not None:
        (run / "best_genome.json").write_text(content)
    with pytest.raises(ExportError, match=match):
        export_run(run)


def test_export_cli_error_is_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_export_rejects_weights_of_another_architecture(tmp_path):
    run, *_ = make_run(tmp_path)
    save_file({"w": torch.zeros(1)}, str(run / "best.safetensors"))
    with pytest.raises(ExportError, match="do not fit"):
        export_run(run)


def test_retrain_resume_equals_uninterrupted(tmp_path):
    """Two epochs in one go equal one epoch, a stop, and a resumed second epoch (digits, tiny net)."""
    run, *_ = make_run(tmp_path, weights=False)
    cfg = RetrainConfig(epochs=2, step_size=1, lr=0.05, batch_size=128)
    full = retrain(run, "digits", cfg, out_dir=tmp_path / "full", progress=False)
    retrain(run, "digits", RetrainConfig(epochs=1, step_size=1, lr=0.05, batch_size=128), out_dir=tmp_path / "part",
            progress=False)
    resumed = retrain(run, "digits", cfg, out_dir=tmp_path / "part", resume=True, progress=False)
    assert [h["lr"] for h in full["history"]] == pytest.approx([0.005, 0.0005])
    assert resumed["history"] == full["history"]
    a, b = load_file(str(tmp_path / "full" / "model.safetensors")), load_file(str(tmp_path / "part" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    metrics = json.loads((tmp_path / "full" / "metrics.json").read_text())
    assert 0.0 <= metrics["test_acc"] <= 1.0 and metrics["params"] > 0


def test_retrain_rejects_bad_schedule(tmp_path):
    run, *_ = make_run(tmp_path, weights=False)
    with pytest.raises(ValueError, match="epochs"):
        retrain(run, "digits", RetrainConfig(epochs=0, step_size=1), out_dir=tmp_path / "x", progress=False)


def test_search_run_exports_with_trained_weights_and_retrains(tmp_path, capsys):
    """End to end: a tiny GA run on digits, then `arch-gpt export` and `arch-gpt retrain` on its folder."""
    from arch_gpt.search.data import load_image_data
    from arch_gpt.search.spec import SearchConfig, build_evaluator
    from arch_gpt.search.strategies.genetic import GeneticSearch

    data = load_image_data("digits", seed=0)
    space = BlockSpace(num_classes=10, input_size=16, min_blocks=3, max_blocks=4, widths=(8, 16))
    evaluator = build_evaluator(SearchConfig(epochs=1, lr=0.01, batch_size=32, max_steps_per_epoch=2), space, data)
    result = GeneticSearch(space, evaluator, population=2, generations=1, seed=0).run(output_dir=tmp_path / "run",
                                                                                    progress=False)
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "exp")]) == 0
    assert "with trained weights" in capsys.readouterr().out
    model = import_model_file(tmp_path / "exp" / "model.py").load_model()
    trained = load_file(str(tmp_path / "run" / "best.safetensors"))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in trained.items())
    assert json.loads((tmp_path / "exp" / "config.json").read_text())["key"] == result.best.candidate.key
    assert main(["retrain", str(tmp_path / "run"), "--epochs", "1", "--step-size", "1"]) == 0
    metrics = json.loads((tmp_path / "run" / "retrain" / "metrics.json").read_text())
    assert metrics["key"] == result.best.candidate.key and len(metrics["history"]) == 1
    # export now prefers the retrained weights
    export_run(tmp_path / "run", tmp_path / "exp2")
    retrained = load_file(str(tmp_path / "run" / "retrain" / "model.safetensors"))
    model = import_model_file(tmp_path / "exp2" / "model.py").load_model()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in retrained.items())


@pytest.mark.parametrize("name, key", [
    ("nasbench201", "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|none~2|"),
    ("nasbench-macro", "01201201"),
])
def test_export_tabular_space_runs(tmp_path, name, key):
    """best_genome.json of a table-space search (no genome JSON, no weights) exports a runnable module."""
    from arch_gpt.search.spaces import create_space

    space = create_space(name)
    run = tmp_path / "run"
    run.mkdir()
    write_best_genome(run, space, key, fitness=91.6, input_size=(32, 32, 3))
    out = export_run(run)
    assert json.loads((out / "config.json").read_text())["fitness"] == 91.6
    model = import_model_file(out / "model.py").build_model().eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
