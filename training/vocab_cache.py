"""Layer-token counts of the traced Table-2 torchvision models, cached on disk once.

The NAS-Bench-101 corpus counts the layer tokens of the 36 torchvision architectures of GPT-NAS Table 2 into its
vocabulary. They are traced with the models built on the meta device (no weights: about 9 s for all 36 instead of
a minute and 3 GB; the same layers), and the counts of each model are kept in ``~/.cache/arch-gpt/table2-tokens/<key>/<model>-<input size>.json``
(``$ARCH_GPT_CACHE`` moves the folder). The key is a digest of the versions of torch, torchvision and this package
and of the source files that trace and tokenize a model: when any of them changes, the models are traced again, so
a vocabulary built from the cache is exactly the one tracing gives. A damaged cache file is traced again and
rewritten.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections import Counter
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from arch_gpt.errors import UserInputError
from arch_gpt.io import read_json, write_json

# The modules whose code decides the tokens of a traced model (a change of any of them changes the key).
SOURCE_MODULES = (
    "arch_gpt.encoding", "arch_gpt.layers", "arch_gpt.shapes", "arch_gpt.torch_io", "arch_gpt.torch_trace",
    "arch_gpt.zoo.torchvision_models", "arch_gpt.tokenizer.layer_tokens", "arch_gpt.tokenizer.tokenization",
)
CACHE_FORMAT = 1


def default_cache_dir() -> Path:
    """``~/.cache/arch-gpt/table2-tokens`` (or ``$ARCH_GPT_CACHE/table2-tokens``, read at each call)."""
    return Path(os.environ.get("ARCH_GPT_CACHE", Path.home() / ".cache" / "arch-gpt")) / "table2-tokens"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


@lru_cache(maxsize=1)
def cache_key() -> str:
    """Digest of the library versions and the tracing/tokenizing source code (16 hex digits)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"format": CACHE_FORMAT, "torch": _version("torch"),
                              "torchvision": _version("torchvision"), "arch-gpt": _version("arch-gpt")},
                             sort_keys=True).encode())
    for name in SOURCE_MODULES:
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin) if spec is not None and spec.origin else None
        digest.update(name.encode() + b"\0" + (origin.read_bytes() if origin and origin.is_file() else b"?"))
    return digest.hexdigest()[:16]


def _read(path: Path, name: str, input_size: int) -> Counter | None:
    """The cached counts of one model, or None when missing or not a valid cache file."""
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except UserInputError:
        return None
    tokens = data.get("tokens") if isinstance(data, dict) else None
    if (not isinstance(tokens, dict) or data.get("model") != name or data.get("input_size") != input_size
            or not all(isinstance(t, str) and isinstance(n, int) and n > 0 for t, n in tokens.items())):
        return None
    return Counter(tokens)


def model_token_counts(name: str, input_size: int = 32, cache_dir: Path | None = None) -> Counter:
    """How often each layer token occurs in Table-2 model ``name`` traced at ``input_size`` (cached)."""
    from arch_gpt.tokenizer.tokenization import layer_tokens
    from arch_gpt.zoo.torchvision_models import trace_table2_model

    path = Path(cache_dir or default_cache_dir()) / cache_key() / f"{name}-{input_size}.json"
    counts = _read(path, name, input_size)
    if counts is None:
        counts = Counter(layer_tokens(trace_table2_model(name, input_size=input_size, empty_weights=True)))
        write_json(path, {"model": name, "input_size": input_size, "tokens": dict(counts)}, indent=0)
    return counts


def table2_token_counts(names: Sequence[str], input_size: int = 32, cache_dir: Path | None = None,
                        progress: bool = False) -> Counter:
    """Summed layer-token counts of the given Table-2 models (each traced once per machine, then cached)."""
    total: Counter = Counter()
    for name in tqdm(list(names), desc="torchvision models (vocabulary)", disable=not progress, unit="model"):
        total.update(model_token_counts(name, input_size, cache_dir))
    return total
