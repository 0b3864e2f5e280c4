"""The layer tokenizer: a WordLevel vocabulary over layer tokens, saved as a stock ``PreTrainedTokenizerFast``.

Token form: see :mod:`arch_gpt.tokenizer.layer_tokens` (re-exported here). Ids 0-4 are the special
tokens ``[PAD] [BOS] [EOS] [UNK] [MASK]``; layer tokens follow by descending corpus frequency (ties in
string order), so a vocabulary is reproducible. The saved folder (``tokenizer.json`` and
``tokenizer_config.json``) loads with plain ``AutoTokenizer.from_pretrained(dir)``: it splits text on
whitespace, maps each layer token to its id (unknown ones to ``[UNK]``) and wraps a sequence in
``[BOS] ... [EOS]``, exactly as :meth:`LayerTokenizer.encode` does.
"""
from __future__ import annotations

import numbers
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from arch_gpt.encoding import Architecture, ArchitectureError, Layer, Size
from arch_gpt.errors import UserInputError
from arch_gpt.io import atomic_write_bytes, read_json
from arch_gpt.tokenizer.layer_tokens import (
    NETWORK_INPUT_ID, TokenError, check_token, layer_tokens, sequence_argument, token_to_layer, tokens_to_architecture,
)

SPECIAL_TOKENS = ("[PAD]", "[BOS]", "[EOS]", "[UNK]", "[MASK]")
PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN, MASK_TOKEN = SPECIAL_TOKENS
# Fitness-quantile conditioning prefixes (top / middle / bottom third of a search's fitness), learned by the
# search's online fine-tune. A vocabulary may hold them (the all-spaces corpus appends them after the layer tokens);
# they are never layers: never a corpus target, registered as the HF tokenizer's additional special tokens,
# left out of ``layer_token_list``, skipped by ``decode``, and listed by ``non_layer_ids`` for prediction masks.
FITNESS_TOKENS = ("[FIT_TOP]", "[FIT_MID]", "[FIT_LOW]")
NON_LAYER_TOKENS = SPECIAL_TOKENS + FITNESS_TOKENS

__all__ = [
    "SPECIAL_TOKENS", "FITNESS_TOKENS", "NON_LAYER_TOKENS", "NETWORK_INPUT_ID", "LayerTokenizer", "TokenError",
    "TokenizerFileError", "build_vocab",
    "check_token", "count_tokens", "layer_tokens", "token_to_layer", "tokens_to_architecture",
]


class TokenizerFileError(UserInputError):
    """A tokenizer folder that is missing files or lacks the special tokens."""


def count_tokens(architectures: Iterable[Architecture]) -> Counter:
    """How often each layer token occurs over ``architectures`` (mergeable across worker processes with ``+``)."""
    counts: Counter = Counter()
    for arch in sequence_argument(architectures, "architectures"):
        counts.update(layer_tokens(arch))
    return counts


def _hf_tokenizer(vocab: dict[str, int]) -> PreTrainedTokenizerFast:
    """A stock fast tokenizer: WordLevel over ``vocab``, whitespace split, ``[BOS] $A [EOS]`` template; the
    fitness tokens present in ``vocab`` become additional special tokens (same ids)."""
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A {EOS_TOKEN}", pair=f"{BOS_TOKEN} $A {EOS_TOKEN} $B:1 {EOS_TOKEN}:1",
        special_tokens=[(BOS_TOKEN, vocab[BOS_TOKEN]), (EOS_TOKEN, vocab[EOS_TOKEN])])
    fitness = [t for t in FITNESS_TOKENS if t in vocab]
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD_TOKEN, bos_token=BOS_TOKEN,
                                   eos_token=EOS_TOKEN, unk_token=UNK_TOKEN, mask_token=MASK_TOKEN,
                                   **({"additional_special_tokens": fitness} if fitness else {}))


class LayerTokenizer:
    """Architectures <-> token ids. A thin wrapper around a stock ``PreTrainedTokenizerFast`` (at ``.hf``)."""

    def __init__(self, hf: PreTrainedTokenizerFast):
        if not isinstance(hf, PreTrainedTokenizerFast):
            raise TokenizerFileError(f"hf: expected a PreTrainedTokenizerFast, got {type(hf).__name__}")
        self.hf = hf
        self._vocab: dict[str, int] = hf.get_vocab()
        _check_vocab(self._vocab)
        self._tokens: list[str | None] = [None] * (max(self._vocab.values()) + 1)
        for token, i in self._vocab.items():
            self._tokens[i] = token
        (self.pad_token_id, self.bos_token_id, self.eos_token_id, self.unk_token_id,
         self.mask_token_id) = (self._vocab[t] for t in SPECIAL_TOKENS)

    # --- construction ---------------------------------------------------------------------
    @classmethod
    def from_tokens(cls, tokens: Iterable[str]) -> "LayerTokenizer":
        """A tokenizer whose vocabulary is the special tokens then ``tokens`` in the given order (duplicates dropped).
        ``tokens`` are layer tokens or :data:`FITNESS_TOKENS`."""
        vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
        for token in sequence_argument(tokens, "tokens"):
            if token not in vocab:
                if token not in FITNESS_TOKENS:
                    check_token(token)
                vocab[token] = len(vocab)
        return cls(_hf_tokenizer(vocab))

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], min_frequency: int = 1) -> "LayerTokenizer":
        """Vocabulary of the tokens counted at least ``min_frequency`` times, most frequent first."""
        if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
            raise UserInputError(f"min_frequency: must be an integer >= 1, got {min_frequency!r}")
        if not isinstance(counts, Mapping) or not all(
                isinstance(n, int) and not isinstance(n, bool) for n in counts.values()):
            raise UserInputError(f"counts: expected a mapping of token to integer count, got {type(counts).__name__}")
        kept = sorted((t for t, n in counts.items() if n >= min_frequency), key=lambda t: (-counts[t], t))
        return cls.from_tokens(kept)

    @classmethod
    def build(cls, architectures: Iterable[Architecture], min_frequency: int = 1) -> "LayerTokenizer":
        """Build the vocabulary from any iterable of architectures (tokens rarer than ``min_frequency`` → [UNK])."""
        return cls.from_counts(count_tokens(architectures), min_frequency)

    # --- vocabulary ---------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    def __len__(self) -> int:
        return len(self._vocab)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LayerTokenizer) and self._vocab == other._vocab

    def __repr__(self) -> str:
        return f"LayerTokenizer(vocab_size={self.vocab_size})"

    def get_vocab(self) -> dict[str, int]:
        """A copy of token → id, special tokens included."""
        return dict(self._vocab)

    @property
    def layer_token_list(self) -> list[str]:
        """The layer tokens of the vocabulary (no special or fitness tokens), in id order."""
        return [t for t in self._tokens if t is not None and t not in NON_LAYER_TOKENS]

    @property
    def ordered_tokens(self) -> list[str]:
        """Every entry after the special tokens, in id order (fitness tokens included): ``from_tokens`` of this
        list, plus new tokens at the end, keeps every existing id."""
        return [t for t in self._tokens if t is not None and t not in SPECIAL_TOKENS]

    @property
    def fitness_tokens(self) -> list[str]:
        """The :data:`FITNESS_TOKENS` this vocabulary holds (empty for a vocabulary built without them)."""
        return [t for t in FITNESS_TOKENS if t in self._vocab]

    @property
    def non_layer_ids(self) -> list[int]:
        """Ids that are never a layer (special and fitness tokens present), for masking predictions."""
        return [self._vocab[t] for t in NON_LAYER_TOKENS if t in self._vocab]

    def in_vocab(self, token: str) -> bool:
        """Whether ``token`` has its own id (is not mapped to [UNK]); never for a non-string."""
        return isinstance(token, str) and token in self._vocab

    def tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        """Ids of the tokens; unknown tokens give ``unk_token_id``."""
        get, unk = self._vocab.get, self.unk_token_id
        return [get(t, unk) if t.__class__ is str else get(_as_token(t), unk)
                for t in sequence_argument(tokens, "tokens")]

    def ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        """Token strings of the ids; an id outside the vocabulary raises ArchitectureError (field 'ids')."""
        out = []
        for i in sequence_argument(ids, "ids"):
            if type(i) is not int:
                i = _as_id(i)
            token = self._tokens[i] if 0 <= i < len(self._tokens) else None
            if token is None:
                raise ArchitectureError(f"id {i} is not in the vocabulary (size {self.vocab_size})", field="ids")
            out.append(token)
        return out

    # --- architectures ------------------------------------------------------------------------
    def encode(self, arch: Architecture, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``arch``: ``[BOS] layer... [EOS]`` (only the layers without special tokens)."""
        ids = self.tokens_to_ids(layer_tokens(arch))
        return [self.bos_token_id, *ids, self.eos_token_id] if add_special_tokens else ids

    def decode(self, ids: Sequence[int], input_size: Size | int, name: str | None = None) -> Architecture:
        """Rebuild an Architecture from ids by shape inference from ``input_size`` (H, W, C, as ``arch.input_size``).

        A leading [BOS] is skipped, [PAD] and fitness prefixes (:data:`FITNESS_TOKENS`, conditioning, not layers)
        are ignored and decoding stops at [EOS]; [UNK], [MASK] or a later [BOS] cannot become a layer and raise
        ArchitectureError (field 'token').
        """
        tokens = []
        for pos, token in enumerate(self.ids_to_tokens(ids)):
            if token == EOS_TOKEN:
                break
            if token == PAD_TOKEN or token in FITNESS_TOKENS or (token == BOS_TOKEN and pos == 0):
                continue
            if token in SPECIAL_TOKENS:
                raise ArchitectureError(f"{token} at position {pos} cannot be decoded to a layer", field="token")
            tokens.append(token)
        return tokens_to_architecture(tokens, input_size, name=name)

    def token_to_layer(self, token: str, in_size: Size | int, layer_id: int, previous: Sequence[Layer] = (),
                       network_input: Size | None = None, block: str | None = None) -> Layer:
        """Same as the module function :func:`token_to_layer` (for callers holding only the tokenizer)."""
        return token_to_layer(token, in_size, layer_id, previous, network_input, block)

    # --- files ----------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``tokenizer.json`` and ``tokenizer_config.json`` into ``directory``; each file replaced atomically."""
        if not isinstance(directory, (str, os.PathLike)):
            raise TokenizerFileError(f"directory: expected a folder path, got {type(directory).__name__}")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="arch-gpt-tokenizer-") as staging:  # the library writes a folder
            self.hf.save_pretrained(staging)
            for path in sorted(Path(staging).iterdir()):
                atomic_write_bytes(directory / path.name, path.read_bytes())
        return directory

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs) -> "LayerTokenizer":
        """Load a folder written by :meth:`save_pretrained` (or a checkpoint holding those files, or a Hub id).

        ``kwargs`` (e.g. ``subfolder``, ``revision``) go to ``PreTrainedTokenizerFast.from_pretrained``.
        """
        if not isinstance(name_or_path, (str, os.PathLike)):
            raise TokenizerFileError(f"expected a tokenizer folder or Hub id, got {type(name_or_path).__name__}")
        path = Path(name_or_path)
        if not path.is_dir() and (path.is_absolute() or path.exists() or str(name_or_path).startswith(".")):
            raise TokenizerFileError(f"{path}: not a tokenizer folder")
        file = path / kwargs.get("subfolder", "") / "tokenizer.json"
        if path.is_dir():
            _check_tokenizer_files(file)
        try:
            hf = PreTrainedTokenizerFast.from_pretrained(str(name_or_path), **kwargs)
        except Exception as err:  # the Rust library raises plain Exception for a file it cannot read
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise TokenizerFileError(f"{file if path.is_dir() else name_or_path}: cannot load the tokenizer "
                                     f"({first})") from None
        try:
            return cls(hf)
        except TokenizerFileError as err:
            raise TokenizerFileError(f"{file if path.is_dir() else name_or_path}: {err}") from None


def _as_token(value: object) -> str:
    """A token string (a str subclass too); else ArchitectureError (field 'tokens')."""
    if not isinstance(value, str):
        raise ArchitectureError(f"expected token strings, got {type(value).__name__} {value!r}", field="tokens")
    return str(value)


def _as_id(value: object) -> int:
    """A token id from an int-like value (numpy or 0-d torch integers too); else ArchitectureError (field 'ids')."""
    item = value.item() if hasattr(value, "item") and getattr(value, "ndim", 0) == 0 else value
    if isinstance(item, bool) or not isinstance(item, numbers.Integral):
        raise ArchitectureError(f"expected integer token ids, got {type(value).__name__} {value!r}", field="ids")
    return int(item)


def _check_vocab(vocab: Mapping[str, int]) -> None:
    """TokenizerFileError unless the vocabulary has the special tokens, ids 0..n-1 once each, and layer tokens."""
    missing = [t for t in SPECIAL_TOKENS if t not in vocab]
    if missing:
        raise TokenizerFileError(f"tokenizer vocabulary lacks the special tokens {', '.join(missing)}")
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise TokenizerFileError(f"token ids must be 0..{len(vocab) - 1}, each used once")
    for token in vocab:
        if token not in NON_LAYER_TOKENS:
            try:
                check_token(token)
            except TokenError as err:
                raise TokenizerFileError(f"vocabulary entry {token!r} is not a layer token ({err.reason})") from None


def _check_tokenizer_files(file: Path) -> None:
    """TokenizerFileError naming the file unless ``tokenizer.json`` is a WordLevel vocabulary of layer tokens
    (and ``tokenizer_config.json``, when present, is a JSON object)."""
    if not file.is_file():
        raise TokenizerFileError(f"{file}: file not found (not a tokenizer folder)")
    data = read_json(file)
    model = data.get("model") if isinstance(data, dict) else None
    vocab = model.get("vocab") if isinstance(model, dict) else None
    if not isinstance(model, dict) or model.get("type") != "WordLevel" or not isinstance(vocab, dict):
        raise TokenizerFileError(f"{file}: key 'model': expected a WordLevel model with a 'vocab' object")
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in vocab.values()):
        raise TokenizerFileError(f"{file}: key 'model.vocab': token ids must be integers")
    try:
        _check_vocab(vocab)
    except TokenizerFileError as err:
        raise TokenizerFileError(f"{file}: key 'model.vocab': {err}") from None
    config = file.parent / "tokenizer_config.json"
    if config.is_file() and not isinstance(read_json(config), dict):
        raise TokenizerFileError(f"{config}: expected a JSON object")


def build_vocab(architectures: Iterable[Architecture], min_frequency: int = 1) -> LayerTokenizer:
    """Same as :meth:`LayerTokenizer.build`: a tokenizer whose vocabulary covers ``architectures``."""
    return LayerTokenizer.build(architectures, min_frequency)
