"""Bad-input table for the language and the model (issue 17): ``arch-gpt encode`` and the public API.

Every case is real input a careless user could give. ``encode`` cases run the real CLI (``arch_gpt.cli.main``) and
assert exit code 2, stdout empty, exactly one stderr line naming the field or file, no traceback, and that nothing
in the working folder changed. API cases assert the package's documented exception type (an ArchitectureError or
another UserInputError), that the message names the field or file, and that the inputs on disk are unchanged.
Model cases load a real tiny ArchGPT checkpoint (``arch_gpt.modeling.TINY``) with one file made wrong.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import pytest
import torch

from arch_gpt.cli import main
from arch_gpt.encoding import Architecture, ArchitectureError, ConvLayer, OtherLayer, parse_layer
from arch_gpt.errors import UserInputError
from arch_gpt.hub import CheckpointFileError, CheckpointNotFoundError
from arch_gpt.modeling import TINY, ArchGPT, ModelInputError, gpt_config, new_block_classifier
from arch_gpt.tokenizer import (
    LayerTokenizer, TokenizerFileError, layer_tokens, token_to_layer, tokens_to_architecture,
)
from model_fixtures import tiny_gpt

GOOD = (
    "id:1;in_size:32-32-3;out_size:32-32-12;kernel:3-3;stride:1-1;padding:1-1-1-1;dilation:1;groups:1;bias_used:No\n"
    "id:2;name:ReLU;in_size:32-32-12;out_size:32-32-12;value:none\n"
    "id:3;name:Add;in_size:32-32-12;out_size:32-32-12;value:1-2\n"
    "id:4;type:Max;in_size:32-32-12;out_size:16-16-12;kernel:2-2;stride:2-2;padding:0-0-0-0;dilation:1;bias_used:No\n"
    "id:5;name:AdaptiveAvgPool;in_size:16-16-12;out_size:1-1-12;value:1-1\n"
    "id:6;name:Flatten;in_size:1-1-12;out_size:1-1-12;value:none\n"
    "id:7;in_size:12;out_size:10\n"
)
CONV = GOOD.splitlines()[0]


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` with its kind, bytes and mode: equal snapshots mean nothing was touched."""
    return {str(p.relative_to(root)): (p.is_dir(), p.read_bytes() if p.is_file() else None, p.stat().st_mode)
            for p in sorted(root.rglob("*"))}


# ----------------------------------------------------------------------------- arch-gpt encode
# (id, files to create {name: text | bytes | None for a folder}, argv with {d} = the folder, texts the line names)
ENCODE_CASES = [
    ("size-1e20", {"a.arch": GOOD.replace("32-32-3;out_size:32-32-12", "1e20-32-3;out_size:32-32-12")},
     ["{d}/a.arch"], ["a.arch:1", "field 'in_size'", "1e20"]),
    ("size-over-limit", {"a.arch": GOOD.replace("in_size:32-32-3", "in_size:100000000000000000000-32-3")},
     ["{d}/a.arch"], ["a.arch:1", "field 'in_size'", "2**24"]),
    ("in_size-not-previous-out_size", {"a.arch": GOOD.replace("id:2;name:ReLU;in_size:32-32-12;out_size:32-32-12",
                                                              "id:2;name:ReLU;in_size:32-32-9;out_size:32-32-9")},
     ["{d}/a.arch"], ["a.arch:2", "layer id 2", "field 'in_size'", "32-32-9"]),
    ("flatten-12-then-fc-99", {"a.arch": GOOD.replace("id:7;in_size:12", "id:7;in_size:99")},
     ["{d}/a.arch"], ["a.arch:7", "layer id 7", "field 'in_size'"]),
    ("add-sources-not-ids", {"a.arch": GOOD.replace("value:1-2", "value:conv-relu")},
     ["{d}/a.arch"], ["a.arch:3", "field 'value'", "ids"]),
    ("add-source-missing", {"a.arch": GOOD.replace("value:1-2", "value:1-42")},
     ["{d}/a.arch"], ["a.arch:3", "field 'value'", "42"]),
    ("add-source-itself", {"a.arch": GOOD.replace("value:1-2", "value:2-3")},
     ["{d}/a.arch"], ["a.arch:3", "field 'value'", "itself"]),
    ("add-source-later", {"a.arch": GOOD.replace("value:1-2", "value:1-5")},
     ["{d}/a.arch"], ["a.arch:3", "field 'value'", "later"]),
    ("add-without-sources", {"a.arch": GOOD.replace("value:1-2", "value:none")},
     ["{d}/a.arch"], ["a.arch:3", "field 'value'"]),
    ("concat-channels-wrong", {"a.arch": GOOD.replace("name:Add;in_size:32-32-12;out_size:32-32-12",
                                                      "name:Concat;in_size:32-32-12;out_size:32-32-20")},
     ["{d}/a.arch"], ["a.arch:3", "field 'value'", "Concat"]),
    ("empty-block", {"a.arch": GOOD.replace("value:none\n", "value:none;block:\n", 1)},
     ["{d}/a.arch"], ["a.arch:2", "field 'block'", "empty"]),
    ("empty-value", {"a.arch": GOOD.replace("name:ReLU;in_size:32-32-12;out_size:32-32-12;value:none",
                                            "name:ReLU;in_size:32-32-12;out_size:32-32-12;value:")},
     ["{d}/a.arch"], ["a.arch:2", "field 'value'"]),
    ("json-layer-with-newline", {"a.json": json.dumps({"layers": [CONV, "id:2;name:ReLU\nid:3;name:BN"]})},
     ["{d}/a.json"], ["a.json", "line break"]),
    ("json-name-not-text", {"a.json": json.dumps({"name": ["x"], "layers": [CONV]})},
     ["{d}/a.json"], ["a.json", "field 'name'"]),
    ("json-not-an-object", {"a.json": "[1, 2, 3]\n"}, ["{d}/a.json"], ["a.json", "'layers'"]),
    ("binary-file", {"w.arch": bytes(range(256))}, ["{d}/w.arch"], ["w.arch", "not a text file"]),
    ("integer-with-underscore", {"a.arch": GOOD.replace("id:7;", "id:1_0;")}, ["{d}/a.arch"],
     ["a.arch:7", "field 'id'"]),
    ("output-is-a-directory", {"a.arch": GOOD, "out": None}, ["{d}/a.arch", "-o", "{d}/out"],
     ["--output", "out", "directory"]),
    ("output-exists", {"a.arch": GOOD, "old.arch": "mine\n"}, ["{d}/a.arch", "-o", "{d}/old.arch"],
     ["--output", "old.arch", "--overwrite"]),
    ("output-under-a-file", {"a.arch": GOOD, "notes.txt": "x\n"}, ["{d}/a.arch", "-o", "{d}/notes.txt/a.arch"],
     ["--output", "notes.txt", "is a file"]),
    ("output-empty-name", {"a.arch": GOOD}, ["{d}/a.arch", "-o", ""], ["--output", "empty"]),
    ("output-is-input", {"a.arch": GOOD}, ["{d}/a.arch", "-o", "{d}/a.arch"], ["--output", "a.arch", "exists"]),
    ("input-size-huge", {}, ["resnet18", "--input-size", "100000"], ["--input-size", "100000"]),
    ("input-size-negative", {}, ["resnet18", "--input-size", "-1"], ["--input-size"]),
    ("unknown-model-or-missing-file", {}, ["{d}/typo.arch"], ["typo.arch", "no such file"]),
    ("empty-target", {}, [""], ["MODEL_OR_FILE"]),
    ("target-is-a-directory", {"sub": None}, ["{d}/sub"], ["sub", "directory"]),
]


@pytest.mark.parametrize("files,argv,expect", [c[1:] for c in ENCODE_CASES], ids=[c[0] for c in ENCODE_CASES])
def test_encode_bad_input(tmp_path, capsys, files, argv, expect):
    for name, content in files.items():
        if content is None:
            (tmp_path / name).mkdir()
        elif isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        else:
            (tmp_path / name).write_text(content)
    before = snapshot(tmp_path)
    code = main(["encode", *(a.format(d=tmp_path) for a in argv)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("arch-gpt encode: error: ")
    assert "Traceback" not in err and "internal error" not in err
    for text in expect:
        assert text in err, (text, err)
    assert snapshot(tmp_path) == before


def test_encode_good_file_with_output_writes_only_the_output(tmp_path, capsys):
    """The reference for the table: the same folder with a good file and a fresh output path."""
    (tmp_path / "a.arch").write_text(GOOD)
    before = snapshot(tmp_path)
    assert main(["encode", str(tmp_path / "a.arch"), "-o", str(tmp_path / "new" / "b.arch")]) == 0
    assert capsys.readouterr().out == GOOD
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("new")} == before
    assert (tmp_path / "new" / "b.arch").read_text() == GOOD


# ----------------------------------------------------------------------------- the language's Python API
def _conv(**kw) -> ConvLayer:
    fields = dict(id=1, in_size=(32, 32, 3), out_size=(32, 32, 3), kernel=(1, 1))
    return ConvLayer(**{**fields, **kw})


def _binary(d: Path) -> Path:
    (d / "w.bin").write_bytes(bytes(range(256)))
    return d / "w.bin"


# (id, call with the test's folder, exception type, texts the message names, the error's field or None)
API_CASES: list[tuple[str, Callable[[Path], object], type, list[str], str | None]] = [
    ("from_text-None", lambda d: Architecture.from_text(None), ArchitectureError, ["from_text", "NoneType"], "text"),
    ("from_text-int", lambda d: Architecture.from_text(7), ArchitectureError, ["int"], "text"),
    ("from_text-list", lambda d: Architecture.from_text([CONV]), ArchitectureError, ["list"], "text"),
    ("from_text-bytes", lambda d: Architecture.from_text(CONV.encode()), ArchitectureError, ["bytes", "decode"],
     "text"),
    ("from_json-None", lambda d: Architecture.from_json(None), ArchitectureError, ["from_json"], "text"),
    ("from_json-list", lambda d: Architecture.from_json("[1]", source="x.json"), ArchitectureError,
     ["x.json", "'layers'"], "layers"),
    ("from_json-name-int", lambda d: Architecture.from_json(json.dumps({"name": 3, "layers": [CONV]})),
     ArchitectureError, ["name"], "name"),
    ("from_dict-layer-not-text", lambda d: Architecture.from_dict({"layers": [None]}, source="x.json"),
     ArchitectureError, ["x.json", "layer 1"], "layers"),
    ("parse_layer-None", lambda d: parse_layer(None), ArchitectureError, ["NoneType"], None),
    ("parse_layer-int", lambda d: parse_layer(12), ArchitectureError, ["int"], None),
    ("parse_layer-two-lines", lambda d: parse_layer(CONV + "\n" + CONV), ArchitectureError, ["line break"], None),
    ("load-missing-file", lambda d: Architecture.load(d / "nope.arch"), ArchitectureError,
     ["nope.arch", "not found"], None),
    ("load-directory", lambda d: Architecture.load(d), ArchitectureError, ["directory"], None),
    ("load-binary-file", lambda d: Architecture.load(_binary(d)), ArchitectureError, ["w.bin", "not a text file"],
     None),
    ("load-None", lambda d: Architecture.load(None), ArchitectureError, ["path"], "path"),
    ("Architecture-None", lambda d: Architecture(None), ArchitectureError, ["NoneType"], "layers"),
    ("Architecture-not-layers", lambda d: Architecture([CONV]), ArchitectureError, ["not a layer"], None),
    ("layer-id-text", lambda d: Architecture((_conv(id="1"),)), ArchitectureError, ["str"], "id"),
    ("layer-size-list", lambda d: Architecture((_conv(in_size=[32, 32, 3]),)), ArchitectureError, ["tuple"],
     "in_size"),
    ("layer-size-huge", lambda d: Architecture((_conv(in_size=(2 ** 40, 32, 3), out_size=(2 ** 40, 32, 3)),)),
     ArchitectureError, ["2**24"], "in_size"),
    ("layer-name-with-newline", lambda d: Architecture((OtherLayer(1, "ReLU\nid:2", (4, 4, 3), (4, 4, 3)),)),
     ArchitectureError, ["line break"], "name"),
    ("layer-value-with-semicolon", lambda d: Architecture((OtherLayer(1, "Dropout", (4, 4, 3), (4, 4, 3), "0.1;x"),)),
     ArchitectureError, ["';'"], "value"),
    ("architecture-name-with-newline", lambda d: Architecture((_conv(),), name="a\nid:9"), ArchitectureError,
     ["line break"], "name"),
    ("with_blocks-None", lambda d: Architecture((_conv(),)).with_blocks(None), ArchitectureError, ["NoneType"],
     "block"),
    ("renumbered-zero", lambda d: Architecture((_conv(),)).renumbered(0), ArchitectureError, ["positive"], "start"),
    ("check-source-missing", lambda d: Architecture((_conv(), OtherLayer(2, "Add", (32, 32, 3), (32, 32, 3), "1-5")))
     .check(), ArchitectureError, ["source 5"], "value"),
    ("save-into-directory", lambda d: Architecture((_conv(),)).save(d), ArchitectureError, ["directory"], None),
    ("save-discontinuous", lambda d: Architecture((_conv(), _conv(id=2, in_size=(9, 9, 9), out_size=(9, 9, 9))))
     .save(d / "x.arch"), ArchitectureError, ["in_size 9-9-9"], "in_size"),
    ("from_module-None", lambda d: Architecture.from_module(None), ArchitectureError, ["NoneType"], "module"),
    ("layer_tokens-of-text", lambda d: layer_tokens(GOOD), ArchitectureError, ["Architecture", "str"], "arch"),
    ("tokens_to_architecture-None", lambda d: tokens_to_architecture(None, (8, 8, 3)), ArchitectureError,
     ["NoneType"], "tokens"),
    ("tokens_to_architecture-no-input-size", lambda d: tokens_to_architecture(["other:ReLU"], None),
     ArchitectureError, ["H, W, C"], "input_size"),
    ("token-ratio-beyond-limit", lambda d: tokens_to_architecture(["fc:r100000000"], 1000), ArchitectureError,
     ["fc:r100000000", "2**24"], "out_size"),
    ("token-name-with-semicolon", lambda d: token_to_layer("other:Re;LU", (2, 2, 3), 1), ArchitectureError,
     ["';'"], "name"),
    ("decode-float-ids", lambda d: LayerTokenizer.from_tokens(["other:ReLU"]).decode([1, 5.5], (2, 2, 3)),
     ArchitectureError, ["5.5"], "ids"),
    ("tokens_to_ids-not-strings", lambda d: LayerTokenizer.from_tokens(["other:ReLU"]).tokens_to_ids([5]),
     ArchitectureError, ["int"], "tokens"),
    ("from_tokens-one-string", lambda d: LayerTokenizer.from_tokens("other:ReLU"), ArchitectureError, ["str"],
     "tokens"),
]


@pytest.mark.parametrize("call,exc,texts,field", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_language_api_bad_input(tmp_path, call, exc, texts, field):
    (tmp_path / "keep.arch").write_text(GOOD)
    before = snapshot(tmp_path)
    with pytest.raises(exc) as info:
        call(tmp_path)
    assert isinstance(info.value, UserInputError)
    message = str(info.value)
    assert "\n" not in message
    for text in texts:
        assert text in message, (text, message)
    if field is not None:
        assert info.value.field == field
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k != "w.bin"} == {k: v for k, v in before.items() if k != "w.bin"}


# ----------------------------------------------------------------------------- model checkpoints
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A real tiny ArchGPT checkpoint with a block classifier (config, safetensors, tokenizer, block_classifier/)."""
    return tiny_gpt(["BasicBlock", "Conv"]).save_pretrained(tmp_path_factory.mktemp("ckpt") / "good")


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _edit_vocab(folder: Path, add: dict) -> None:
    """Add entries to tokenizer.json's vocabulary (None: the next free id)."""
    data = json.loads((folder / "tokenizer.json").read_text())
    vocab = data["model"]["vocab"]
    for token, i in add.items():
        vocab[token] = len(vocab) if i is None else i
    (folder / "tokenizer.json").write_text(json.dumps(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _pickle_only(d: Path) -> None:
    from safetensors.torch import load_file

    torch.save(load_file(d / "model.safetensors"), d / "pytorch_model.bin")
    (d / "model.safetensors").unlink()


def _nan_weights(d: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(d / "model.safetensors")
    tensors["transformer.wpe.weight"][0, 0] = float("nan")
    save_file(tensors, d / "model.safetensors", metadata={"format": "pt"})


BC = "block_classifier"
# (id, how to break the copied checkpoint, exception type, texts the message names)
CHECKPOINT_CASES = [
    ("empty-safetensors", lambda d: (d / "model.safetensors").write_bytes(b""), CheckpointFileError,
     ["model.safetensors", "not a valid safetensors"]),
    ("truncated-safetensors", lambda d: _truncate(d / "model.safetensors"), CheckpointFileError,
     ["model.safetensors", "truncated"]),
    ("text-instead-of-safetensors", lambda d: (d / "model.safetensors").write_text("these are my weights\n" * 9),
     CheckpointFileError, ["model.safetensors"]),
    ("pickled-weights-only", _pickle_only, CheckpointFileError, ["model.safetensors", "pytorch_model.bin", "pickled"]),
    ("no-weights", lambda d: (d / "model.safetensors").unlink(), CheckpointFileError,
     ["model.safetensors", "not found"]),
    ("classifier-weights-as-gpt-weights",
     lambda d: shutil.copy(d / BC / "model.safetensors", d / "model.safetensors"), CheckpointFileError,
     ["model.safetensors", "tensor"]),
    ("nan-weights", _nan_weights, CheckpointFileError, ["model.safetensors", "transformer.wpe.weight", "NaN"]),
    ("config-other-vocab-size", lambda d: _edit_json(d / "config.json", vocab_size=99), CheckpointFileError,
     ["config.json", "'vocab_size'", "tokenizer"]),
    ("config-other-n_embd", lambda d: _edit_json(d / "config.json", n_embd=32), CheckpointFileError,
     ["model.safetensors", "transformer.wte.weight"]),
    ("config-n_embd-zero", lambda d: _edit_json(d / "config.json", n_embd=0), CheckpointFileError,
     ["config.json", "'n_embd'"]),
    ("config-n_layer-negative", lambda d: _edit_json(d / "config.json", n_layer=-1), CheckpointFileError,
     ["config.json", "'n_layer'"]),
    ("config-n_head-not-dividing", lambda d: _edit_json(d / "config.json", n_head=3), CheckpointFileError,
     ["config.json", "'n_embd'", "n_head"]),
    ("config-window-beyond-positions", lambda d: _edit_json(d / "config.json", window=50), CheckpointFileError,
     ["config.json", "'n_positions'"]),
    ("config-not-gpt2", lambda d: _edit_json(d / "config.json", model_type="bert"), CheckpointFileError,
     ["config.json", "'model_type'"]),
    ("config-not-json", lambda d: (d / "config.json").write_text("{vocab_size: 3"), UserInputError,
     ["config.json", "line 1", "JSON"]),
    ("no-config", lambda d: (d / "config.json").unlink(), CheckpointNotFoundError, ["config.json"]),
    ("no-tokenizer", lambda d: (d / "tokenizer.json").unlink(), TokenizerFileError, ["tokenizer.json", "not found"]),
    ("tokenizer-not-layer-tokens", lambda d: (d / "tokenizer.json").write_text('{"model": {"type": "BPE"}}'),
     TokenizerFileError, ["tokenizer.json", "WordLevel"]),
    ("tokenizer-ids-with-a-gap", lambda d: _edit_vocab(d, {"other:Gap": 10 ** 9}), TokenizerFileError,
     ["tokenizer.json", "each used once"]),
    ("tokenizer-word-not-a-layer-token", lambda d: _edit_vocab(d, {"hello": None}), TokenizerFileError,
     ["tokenizer.json", "'hello'"]),
    ("classifier-empty-weights", lambda d: (d / BC / "model.safetensors").write_bytes(b""), CheckpointFileError,
     ["block_classifier/model.safetensors"]),
    ("classifier-other-vocab-size", lambda d: _edit_json(d / BC / "config.json", vocab_size=99), CheckpointFileError,
     ["block_classifier/config.json", "'vocab_size'"]),
    ("classifier-no-labels", lambda d: _edit_json(d / BC / "config.json", label_names=[]), CheckpointFileError,
     ["block_classifier/config.json", "'label_names'"]),
    ("classifier-embed_dim-zero", lambda d: _edit_json(d / BC / "config.json", embed_dim=0), CheckpointFileError,
     ["block_classifier/config.json", "'embed_dim'"]),
    ("classifier-without-config", lambda d: (d / BC / "config.json").unlink(), CheckpointFileError,
     ["block_classifier/config.json", "not found"]),
]


@pytest.mark.parametrize("breaks,exc,texts", [c[1:] for c in CHECKPOINT_CASES], ids=[c[0] for c in CHECKPOINT_CASES])
def test_from_pretrained_refuses_a_broken_checkpoint(checkpoint, tmp_path, breaks, exc, texts):
    folder = tmp_path / "ckpt"
    shutil.copytree(checkpoint, folder)
    breaks(folder)
    before = snapshot(tmp_path)
    with pytest.raises(exc) as info:
        ArchGPT.from_pretrained(folder, device="cpu")
    message = str(info.value)
    assert isinstance(info.value, UserInputError) and "\n" not in message
    for text in texts:
        assert text in message, (text, message)
    assert snapshot(tmp_path) == before


def test_the_unbroken_checkpoint_loads(checkpoint):
    model = ArchGPT.from_pretrained(checkpoint, device="cpu")
    assert model.can_classify_blocks and model.config.n_embd == TINY["n_embd"]


SIZE_CASES = [
    ("n_embd-zero", lambda tok: ArchGPT.create(tok, device="cpu", **{**TINY, "n_embd": 0}), "n_embd"),
    ("n_layer-negative", lambda tok: ArchGPT.create(tok, device="cpu", **{**TINY, "n_layer": -1}), "n_layer"),
    ("n_head-not-dividing", lambda tok: gpt_config(tok, n_embd=16, n_head=3), "n_embd"),
    ("window-zero", lambda tok: gpt_config(tok, window=0), "window"),
    ("dropout-nan", lambda tok: gpt_config(tok, dropout=float("nan")), "dropout"),
    ("tokenizer-None", lambda tok: gpt_config(None), "tokenizer"),
    ("classifier-no-labels", lambda tok: new_block_classifier(tok, []), "label_names"),
    ("classifier-embed_dim-zero", lambda tok: new_block_classifier(tok, ["Conv"], embed_dim=0), "embed_dim"),
]


@pytest.mark.parametrize("call,name", [c[1:] for c in SIZE_CASES], ids=[c[0] for c in SIZE_CASES])
def test_model_sizes_are_checked_before_building(call, name):
    tokenizer = LayerTokenizer.from_tokens(["other:ReLU", "fc:r1"])
    with pytest.raises(ModelInputError) as info:
        call(tokenizer)
    assert str(info.value).startswith(f"{name}: ")


def test_argument_checks_keep_generators_lazy_and_accept_numpy_and_torch_ids():
    """The checks refuse None and strings, not iterables: a generator of architectures is still streamed."""
    import numpy as np

    from arch_gpt.tokenizer import count_tokens

    arch = Architecture.from_text(GOOD)
    seen = []

    def stream():
        for _ in range(3):
            seen.append(len(seen))
            yield arch

    counts = count_tokens(stream())
    assert seen == [0, 1, 2] and sum(counts.values()) == 3 * len(arch)
    tokenizer = LayerTokenizer.build(iter([arch]))
    ids = tokenizer.encode(arch)
    decoded = tokenizer.decode(np.array(ids), arch.input_size)
    assert decoded == tokenizer.decode(torch.tensor(ids), arch.input_size) == tokenizer.decode(ids, arch.input_size)
    assert len(decoded) == len(arch)
