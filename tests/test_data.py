"""Windowed datasets (arch_gpt.training.data): window layout, dedup counts, split by architecture, save/load.

Real parts on tiny data: all 91 NAS-Bench-101 cells of at most 4 vertices and a traced resnet18; the
windows are checked against a plain-Python reference built from each architecture's token list.
"""
import os
import stat
from collections import Counter

import numpy as np
import pytest
from datasets import load_from_disk
from transformers import AutoTokenizer

from arch_gpt.tokenizer.tokenization import LayerTokenizer, layer_tokens
from arch_gpt.torch_io import block_class
from arch_gpt.training.data import (
    IGNORE_INDEX, WINDOW, CorpusError, build_datasets, check_output, save_corpus, split_architectures, unique_rows,
    window_rows,
)
from arch_gpt.training.sequences import NO_BLOCK, TokenSequences, tokenize_architectures, tokenize_nasbench101
from arch_gpt.zoo.nasbench101 import cell_to_architecture, enumerate_table
from arch_gpt.zoo.torchvision_models import trace_table2_model

PAD, BOS, EOS = 0, 1, 2


@pytest.fixture(scope="module")
def archs():
    table = enumerate_table(max_vertices=4, progress=False)
    nb = [cell_to_architecture(table[i], name=table.hash(i)) for i in range(len(table))]
    return nb + [trace_table2_model("resnet18")]


@pytest.fixture(scope="module")
def corpus(archs):
    seqs = tokenize_architectures(archs)
    tok = LayerTokenizer.from_counts(seqs.token_counts())
    remapped, unknown = seqs.remap(tok.get_vocab(), tok.unk_token_id, seqs.block_names)
    assert unknown == 0
    data = build_datasets(remapped, tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, 0.25,
                          np.random.default_rng(3))
    return archs, tok, data


def _sequences(lengths, blocks=None) -> TokenSequences:
    total = sum(lengths)
    ids = np.arange(10, 10 + total, dtype=np.uint32)
    bl = np.full(total, NO_BLOCK, np.int16) if blocks is None else np.array(blocks, np.int16)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return TokenSequences([str(i) for i in range(10 + total)], ids, offsets, bl, ["A", "B"],
                          [f"a{i}" for i in range(len(lengths))])


def _reference(arch, tok):
    """Plain-Python windows of one architecture: (context ids, next id, block class or None)."""
    seq = [BOS] + tok.tokens_to_ids(layer_tokens(arch)) + [EOS]
    blocks = [None] + [block_class(b) for b in arch.blocks] + [None]
    padded, padded_blocks = [PAD] * WINDOW + seq, [None] * WINDOW + blocks
    return [(tuple(padded[j - WINDOW:j]), padded[j], padded_blocks[j]) for j in range(WINDOW + 1, len(padded))]


def test_window_rows_layout_short_and_long_architectures():
    seqs = _sequences([3, 12], blocks=[0, 1, -1] + [1] * 12)
    rows = window_rows(seqs, np.array([0, 1]), PAD, BOS, EOS)
    assert rows.shape == (3 + 1 + 12 + 1, WINDOW + 2)
    assert rows[0].tolist() == [PAD] * 9 + [BOS, 10, 1]          # first window: [BOS] -> t1 (block A = 0 + 1)
    assert rows[1].tolist() == [PAD] * 8 + [BOS, 10, 11, 2]
    assert rows[2].tolist() == [PAD] * 7 + [BOS, 10, 11, 12, 0]   # t3 has no block
    assert rows[3].tolist() == [PAD] * 6 + [BOS, 10, 11, 12, EOS, 0]
    second = rows[4:]
    assert second[9].tolist() == [BOS] + list(range(13, 22)) + [22, 2]   # full window, no padding
    assert second[-1].tolist() == list(range(15, 25)) + [EOS, 0]


def test_window_rows_subset_uses_only_given_architectures():
    seqs = _sequences([2, 4, 3])
    rows = window_rows(seqs, np.array([1]), PAD, BOS, EOS)
    assert len(rows) == 5
    assert rows[:, WINDOW].tolist() == [12, 13, 14, 15, EOS]


def test_unique_rows_counts_and_weights():
    rows = np.array([[1, 2], [3, 4], [1, 2], [1, 2]], dtype=np.uint16)
    uniq, counts = unique_rows(rows)
    assert dict(zip(map(tuple, uniq.tolist()), counts.tolist())) == {(1, 2): 3, (3, 4): 1}
    uniq, counts = unique_rows(rows, np.array([5, 1, 1, 1]))
    assert dict(zip(map(tuple, uniq.tolist()), counts.tolist())) == {(1, 2): 7, (3, 4): 1}


def test_split_is_disjoint_complete_and_seeded():
    train, val = split_architectures(50, 0.2, np.random.default_rng(7))
    assert len(val) == 10 and len(train) == 40
    assert not set(train) & set(val) and set(train) | set(val) == set(range(50))
    again = split_architectures(50, 0.2, np.random.default_rng(7))
    assert train.tolist() == again[0].tolist() and val.tolist() == again[1].tolist()
    assert split_architectures(2, 0.01, np.random.default_rng(0))[1].size == 1   # never an empty validation


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_split_rejects_bad_fraction(fraction):
    with pytest.raises(CorpusError, match="validation_fraction"):
        split_architectures(10, fraction, np.random.default_rng(0))


def test_concat_merges_token_and_block_tables(archs):
    whole = tokenize_architectures(archs)
    parts = TokenSequences.concat([tokenize_architectures(archs[:40]), tokenize_architectures(archs[40:])])
    assert parts.names == whole.names and parts.lengths.tolist() == whole.lengths.tolist()
    for i in (0, 45, len(archs) - 1):
        assert parts.token_list(i) == whole.token_list(i) == layer_tokens(archs[i])


def test_parallel_nasbench101_tokenization_equals_serial():
    table = enumerate_table(max_vertices=4, progress=False)
    idx = np.arange(0, len(table), 3)
    par = tokenize_nasbench101(table, idx, workers=2, chunk=7, progress=False)
    ser = tokenize_architectures(cell_to_architecture(table[int(i)], name=table.hash(int(i))) for i in idx)
    assert par.names == ser.names and [par.token_list(i) for i in range(len(par))] == \
        [ser.token_list(i) for i in range(len(ser))]


def test_datasets_match_plain_python_windows(corpus):
    archs, tok, data = corpus
    by_name = {a.name: a for a in archs}
    names = data.stats["split_names"]
    assert not set(names["train"]) & set(names["validation"])
    assert sorted(names["train"] + names["validation"]) == sorted(by_name)
    for split in ("train", "validation"):
        expected_lm, expected_blocks = Counter(), Counter()
        for name in names[split]:
            for ctx, nxt, blk in _reference(by_name[name], tok):
                expected_lm[ctx + (nxt,)] += 1
                if blk is not None:
                    expected_blocks[(ctx, nxt, blk)] += 1
        lm = data.lm[split]
        got = {tuple(r["input_ids"]): r["count"] for r in lm}
        assert got == dict(expected_lm)                           # alignment, dedup and counts at once
        raw = sum(len(by_name[n]) + 1 for n in names[split])
        assert sum(lm["count"]) == raw == data.stats["windows_per_split"][split]
        label_names = data.blocks[split].features["label"].names
        got_blocks = {(tuple(r["context_ids"]), r["next_id"], label_names[r["label"]]): r["count"]
                      for r in data.blocks[split]}
        assert got_blocks == dict(expected_blocks)


def test_labels_and_attention_mask_layout(corpus):
    _, tok, data = corpus
    ids = np.array(data.lm["train"]["input_ids"])
    labels = np.array(data.lm["train"]["labels"])
    mask = np.array(data.lm["train"]["attention_mask"])
    assert ids.shape[1] == labels.shape[1] == mask.shape[1] == WINDOW + 1
    assert (labels[:, :WINDOW] == IGNORE_INDEX).all() and (labels[:, WINDOW] == ids[:, WINDOW]).all()
    assert ((mask == 0) == (ids == tok.pad_token_id)).all()
    assert (ids[:, WINDOW] != tok.pad_token_id).all() and (ids[:, WINDOW] != tok.bos_token_id).all()
    starts = ids[ids[:, WINDOW - 1] == tok.bos_token_id]        # windows right after [BOS] predict a first layer
    assert len(starts) and (starts[:, :WINDOW - 1] == tok.pad_token_id).all()


def test_save_and_load_back(tmp_path, corpus):
    _, tok, data = corpus
    out = save_corpus(tmp_path / "corpus", data, tok, {"corpus": "test"}, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]  # no staging folder left
    lm = load_from_disk(str(out / "lm"))
    blocks = load_from_disk(str(out / "blocks"))
    assert set(lm) == set(blocks) == {"train", "validation"}
    assert lm["train"].column_names == ["input_ids", "attention_mask", "labels", "count"]
    assert blocks["train"].column_names == ["context_ids", "next_id", "label", "count"]
    assert lm["validation"].num_rows == data.lm["validation"].num_rows
    assert len(blocks["train"][0]["context_ids"]) == WINDOW
    assert "BasicBlock" in blocks["train"].features["label"].names
    assert AutoTokenizer.from_pretrained(str(out / "tokenizer")).get_vocab() == tok.get_vocab()
    save_corpus(out, data, tok, {"corpus": "again"}, progress=False)      # replacing keeps one complete folder
    assert (out / "summary.json").read_text().count("again") == 1


def test_save_never_touches_a_side_folder_it_did_not_make(tmp_path, corpus):
    """User folders named like a staging or backup folder (``out.tmp``, ``out.old``, ``.out.x.partial``) are
    left alone: the staging folder is a unique hidden name made for the run, and only it is ever removed."""
    _, tok, data = corpus
    out = tmp_path / "corpus"
    mine = ["corpus.tmp", "corpus.old", ".corpus.x.partial", ".corpus.x.previous"]
    for side in mine:
        (tmp_path / side).mkdir()
        (tmp_path / side / "mine.txt").write_text("keep me")
    save_corpus(out, data, tok, {"corpus": "first"}, progress=False)
    save_corpus(out, data, tok, {"corpus": "second"}, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["corpus", *mine])
    assert all((tmp_path / side / "mine.txt").read_text() == "keep me" for side in mine)
    assert "second" in (out / "summary.json").read_text()


def test_replacing_swaps_in_one_step_and_keeps_permissions(tmp_path, corpus):
    """The previous corpus is exchanged with the new one (no moment without a corpus where the system allows it);
    the new folder gets the umask's permissions, not mkdtemp's 0700."""
    from arch_gpt.training.data import _exchange

    _, tok, data = corpus
    out = save_corpus(tmp_path / "corpus", data, tok, {"corpus": "first"}, progress=False)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "x").touch()
    if _exchange(a, b):
        assert (b / "x").exists() and not (a / "x").exists()
    old = os.umask(0o022)
    try:
        save_corpus(out, data, tok, {"corpus": "second"}, progress=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755 and "second" in (out / "summary.json").read_text()


def test_a_failed_save_leaves_the_previous_corpus_and_no_staging(tmp_path, corpus):
    _, tok, data = corpus
    out = save_corpus(tmp_path / "corpus", data, tok, {"corpus": "first"}, progress=False)

    def fail(folder):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_corpus(out, data, tok, {"corpus": "second"}, extra=fail, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"] and "first" in (out / "summary.json").read_text()


def test_check_output_refuses_what_it_must_not_replace(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("keep me")
    with pytest.raises(CorpusError, match="--overwrite"):
        check_output(tmp_path / "x", overwrite=False)
    with pytest.raises(CorpusError, match="not a corpus folder"):  # --overwrite replaces a corpus, not any folder
        check_output(tmp_path / "x", overwrite=True)
    (tmp_path / "x" / "summary.json").write_text("{}")
    assert check_output(tmp_path / "x", overwrite=True) == tmp_path / "x"
    with pytest.raises(CorpusError, match="is an existing file"):
        check_output(tmp_path / "x" / "file", overwrite=True)
    with pytest.raises(CorpusError, match="which is a file"):
        check_output(tmp_path / "x" / "file" / "out", overwrite=True)
    (tmp_path / "link").symlink_to(tmp_path / "x")
    with pytest.raises(CorpusError, match="symbolic link"):
        check_output(tmp_path / "link", overwrite=True)
    assert (tmp_path / "x" / "file").read_text() == "keep me"


def test_stock_gpt2_loss_is_the_next_layer_cross_entropy(corpus):
    """Torch-formatted rows feed GPT2LMHeadModel as they are; its loss is the CE of logits[:, -2] vs labels[:, -1]."""
    import torch
    from torch.nn import functional as F
    from transformers import GPT2Config, GPT2LMHeadModel

    _, tok, data = corpus
    batch = data.lm["train"].select(range(8)).with_format("torch")[:]
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=16,
                                       n_positions=WINDOW + 1)).eval()
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    expected = F.cross_entropy(out.logits[:, -2], batch["labels"][:, -1])
    assert torch.allclose(out.loss, expected, atol=1e-5)


def test_zero_validation_fraction_gives_empty_validation_split():
    seqs = _sequences([8, 12])
    data = build_datasets(seqs, PAD, BOS, EOS, 0.0, np.random.default_rng(0))
    assert data.lm["validation"].num_rows == 0 and data.blocks["validation"].num_rows == 0
    assert sum(data.lm["train"]["count"]) == 8 + 1 + 12 + 1
    assert data.blocks["train"].num_rows == 0                  # no layer has a block label


def test_empty_split_is_saved_so_that_it_loads_back(tmp_path):
    """datasets writes no data file for an empty split unless told to, and then cannot load it."""
    from arch_gpt.training.corpus_loading import load_blocks, load_windows

    seqs = _sequences([8, 12], blocks=[0] * 20)
    tok = LayerTokenizer.from_tokens([f"conv:k1x1:s1x1:p0-0-0-0:d1:g1:b0:r{i}" for i in range(1, 21)])
    data = build_datasets(seqs, tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, 0.0, np.random.default_rng(0))
    out = save_corpus(tmp_path / "corpus", data, tok, {"corpus": "zero"}, progress=False)
    assert load_windows(out)["validation"].num_rows == 0 and load_blocks(out)["validation"].num_rows == 0
