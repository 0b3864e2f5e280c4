"""Tiny real inputs for the model/hub/training tests: small block-labelled CNNs traced with ``from_module``
(torchvision building blocks at 8×8), a corpus folder built from them with the real corpus code, and a fake Hub
that intercepts huggingface_hub's HTTP at the transport (the only mock: no network in tests)."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx2
import huggingface_hub
import numpy as np
import pytest
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.ops import Conv2dNormActivation

from arch_gpt.encoding import Architecture
from arch_gpt.tokenizer import LayerTokenizer
from arch_gpt.torch_io import block_class, from_module
from arch_gpt.training.data import build_datasets, save_corpus
from arch_gpt.training.sequences import tokenize_architectures


def _downsample(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=2, bias=False), nn.BatchNorm2d(c_out))


def _net(width: int, depth: int, bottleneck: bool) -> nn.Module:
    layers: list[nn.Module] = [Conv2dNormActivation(3, width, 3)]
    c = width
    for i in range(depth):
        if bottleneck:
            layers.append(Bottleneck(c, c // 4) if c % 4 == 0 and c >= 4 else BasicBlock(c, c))
        else:
            layers.append(BasicBlock(c, c))
        if i == 0:
            layers.append(BasicBlock(c, 2 * c, stride=2, downsample=_downsample(c, 2 * c)))
            c *= 2
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10)]
    return nn.Sequential(*layers)


def tiny_architectures() -> list[Architecture]:
    """Eight small ResNet-like networks (BasicBlock/Bottleneck/Conv2dNormActivation labels), 8×8 input."""
    specs = [(4, 1, False), (4, 2, False), (8, 1, True), (8, 2, True), (4, 3, False), (8, 3, True),
             (16, 1, False), (16, 2, True)]
    return [from_module(_net(w, d, b).eval(), input_size=(3, 8, 8), name=f"tiny-{w}-{d}-{int(b)}")
            for w, d, b in specs]


def tiny_gpt(labels: list[str], **classifier_kw):
    """A TINY ArchGPT on the first three tiny architectures' vocabulary, with a block classifier for ``labels``."""
    from arch_gpt.modeling import TINY, ArchGPT, new_block_classifier
    model = ArchGPT.create(LayerTokenizer.build(tiny_architectures()[:3]), device="cpu", **TINY)
    model.attach_block_classifier(new_block_classifier(model.tokenizer, labels, **classifier_kw))
    return model


def build_tiny_corpus(out: Path, archs: list[Architecture], tokenizer: LayerTokenizer | None = None,
                      seed: int = 0) -> Path:
    """A corpus folder (lm/, blocks/, tokenizer/, summary.json) with a 25 % validation split."""
    seqs = tokenize_architectures(archs)
    tokenizer = tokenizer or LayerTokenizer.from_counts(seqs.token_counts())
    labels = sorted({block_class(b) for a in archs for b in a.blocks if b})
    remapped, _ = seqs.remap(tokenizer.get_vocab(), tokenizer.unk_token_id, labels)
    data = build_datasets(remapped, tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, 0.25,
                          np.random.default_rng(seed))
    summary = {"corpus": "tiny", "architectures": len(archs)}
    return save_corpus(out, data, tokenizer, summary)


class FakeHub:
    """Answers the Hub endpoints an upload uses and records the requests."""

    def __init__(self):
        self.requests: list[tuple[str, str]] = []
        self.committed: dict[str, bytes] = {}

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        self.requests.append((request.method, path))
        if path == "/api/repos/create":
            return httpx2.Response(200, json={"url": "https://huggingface.co/me/tiny", "name": "me/tiny"})
        if path == "/api/validate-yaml":
            return httpx2.Response(200, json={})
        if path.endswith("/preupload/main"):
            files = json.loads(request.content)["files"]
            return httpx2.Response(200, json={"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
        if path.endswith("/commit/main"):
            for line in request.content.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    self.committed[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            return httpx2.Response(200, json={"commitUrl": "https://huggingface.co/me/tiny/commit/" + "a" * 40,
                                              "commitOid": "a" * 40})
        return httpx2.Response(404, json={"error": "not part of this fake"})


@pytest.fixture
def fake_hub():
    """Route huggingface_hub's HTTP to a FakeHub for the test (no network), then restore the default client."""
    fake = FakeHub()
    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake)))
    yield fake
    huggingface_hub.set_client_factory(huggingface_hub.utils._http.default_client_factory)
