"""arch-gpt corpus nasbench101|torchvision|all-spaces --out DIR: build a windowed training corpus folder;
arch-gpt corpus push DIR --repo-id USER/NAME: publish one on the Hugging Face Hub.

The folder holds ``lm/`` and ``blocks/`` (``datasets.DatasetDict``, train/validation, load with
``datasets.load_from_disk``), ``tokenizer/``, ``splits.json``, ``summary.json`` and a dataset card
(``README.md``); it is built in a hidden folder beside DIR with a unique name made for the run and swapped in
only when complete (``--overwrite`` replaces only an earlier corpus). Column layout: :mod:`arch_gpt.training.data`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from arch_gpt.cli.help import HelpFormatter, add_command

_SUMMARY_KEYS = ("corpus", "architectures", "cell_selection", "space_cells", "windows", "unique_windows",
                 "vocab_size", "build_seconds")


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output corpus folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subsample and the split (default: 0)")
    parser.add_argument("--validation-fraction", type=float, default=0.1, metavar="F",
                        help="share of architectures held out for validation (default: 0.1)")
    parser.add_argument("--input-size", type=int, default=32, metavar="N",
                        help="height/width of the input torchvision models are traced at (default: 32)")
    parser.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="hide progress bars (default: shown)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``corpus nasbench101``, ``corpus torchvision``, ``corpus all-spaces`` and ``corpus push``."""
    parser = add_command(subparsers, "corpus", __doc__, "build a windowed training corpus (NAS-Bench-101, torchvision or all spaces)")
    sub = parser.add_subparsers(dest="corpus", metavar="CORPUS", required=True)

    nb = sub.add_parser("nasbench101", formatter_class=HelpFormatter, help="NAS-Bench-101 networks (pre-training corpus)",
                        description="All enumerated NAS-Bench-101 cells (423,624), optionally filtered by the "
                                    "official records and subsampled;\nthe vocabulary also covers the torchvision "
                                    "models (traced once per machine, then cached in ~/.cache/arch-gpt).\nA small "
                                    "--max-archs sample is drawn uniformly without enumerating the space.")
    _common(nb)
    nb.add_argument("--nasbench-record", type=Path, metavar="FILE", default=None,
                    help="nasbench_only108.tfrecord / nasbench_full.tfrecord: keep cells with mean validation "
                         "accuracy at 108 epochs >= --threshold (default: the whole space, unlike the paper)")
    nb.add_argument("--threshold", type=float, default=0.90, help="validation accuracy threshold (default: 0.90)")
    nb.add_argument("--max-archs", type=int, default=None, metavar="N",
                    help="random subsample of N cells (default: all)")
    nb.add_argument("--cells", choices=("auto", "sample", "enumerate"), default="auto",
                    help="how --max-archs cells are drawn, both uniformly: 'sample' draws them directly (seconds, "
                         "little memory), 'enumerate' from the enumerated space (cached after the first run); "
                         "the two give different cells for the same --seed (default: auto = sample when "
                         "--max-archs is at most 5,000 and no --nasbench-record is given)")
    nb.add_argument("--max-vertices", type=int, default=7, metavar="V",
                    help="cells of at most V vertices (default: 7, the full space; its enumeration is cached)")
    nb.add_argument("--vocab-models", type=_names, default=None, metavar="A,B,C",
                    help="torchvision models whose layers the vocabulary also covers (default: all 36)")
    nb.add_argument("--vocab-spaces", type=_names, default=None, metavar="A,B",
                    help="tabular spaces whose layers get token ids too, appended after the counted vocabulary "
                         "(default: nasbench201,nasbench-macro; '' for none)")
    nb.add_argument("--workers", type=int, default=None, help="tokenizing processes (default: one per CPU)")
    nb.set_defaults(func=run_nasbench101)

    tv = sub.add_parser("torchvision", formatter_class=HelpFormatter, help="the 36 torchvision architectures of Table 2 (fine-tuning corpus)",
                        description="Trace Table-2 torchvision models (weights=None) into a corpus.")
    _common(tv)
    tv.add_argument("--models", type=_names, default=None, metavar="A,B,C", help="models (default: all 36)")
    tv.add_argument("--tokenizer", type=Path, default=None, metavar="DIR",
                    help="reuse this tokenizer (e.g. NB101_DIR/tokenizer, so ids match a pre-trained model)")
    tv.set_defaults(func=run_torchvision)

    al = sub.add_parser("all-spaces", formatter_class=HelpFormatter,
                        help="every built-in space: NAS-Bench-101/201/Macro, blocks, torchvision (pre-training corpus)",
                        description="Networks of every built-in space, so every layer token a space can ask for is a "
                                    "training target: sampled NAS-Bench-101 cells, all 15,625 NAS-Bench-201 cells, "
                                    "all 6,561 NAS-Bench-Macro codes, sampled block-space genomes (plus a few holding "
                                    "every block choice the sample missed) and the 36 torchvision Table-2 models. "
                                    "Each source is held out on its own; the 'space' column names a row's source. "
                                    "Architectures only (no accuracies); the vocabulary ends with the fitness tokens "
                                    "[FIT_TOP] [FIT_MID] [FIT_LOW].")
    _common(al)
    al.add_argument("--nasbench101-cells", type=int, default=20000, metavar="N",
                    help="NAS-Bench-101 cells, drawn uniformly without enumerating the space (default: 20000)")
    al.add_argument("--nasbench201-cells", type=int, default=None, metavar="N",
                    help="a seeded sample of N NAS-Bench-201 cells (default: all 15,625)")
    al.add_argument("--macro-codes", type=int, default=None, metavar="N",
                    help="a seeded sample of N NAS-Bench-Macro codes (default: all 6,561)")
    al.add_argument("--block-samples", type=int, default=3000, metavar="N",
                    help="block-space genomes sampled with the seeded generator (default: 3000)")
    al.add_argument("--models", type=_names, default=None, metavar="A,B,C",
                    help="torchvision Table-2 models (default: all 36; '' for none)")
    al.set_defaults(func=run_all_spaces)

    push = sub.add_parser("push", formatter_class=HelpFormatter, help="publish a corpus folder on the Hugging Face Hub",
                          description="Publish a corpus folder as a Hub dataset repository: its card (README.md), "
                                      "tokenizer/, splits.json, summary.json and the 'lm' (default) and 'blocks' "
                                      "configs as Parquet; load them back with datasets.load_dataset(REPO, 'lm'). "
                                      "Log in first (hf auth login) or set HF_TOKEN.")
    push.add_argument("corpus_dir", type=Path, metavar="DIR", help="the corpus folder (written by arch-gpt corpus)")
    push.add_argument("--repo-id", required=True, metavar="USER/NAME", help="dataset repository to create or update")
    push.add_argument("--private", action="store_true",
                      help="create the repository as private (default: public; an existing one keeps its setting)")
    push.set_defaults(func=run_push)


def _report(summary: dict) -> int:
    shown = {k: summary[k] for k in _SUMMARY_KEYS if k in summary}
    print(json.dumps(shown), file=sys.stdout)
    return 0


def _config(cls, args: argparse.Namespace):
    """A corpus config from the parsed flags of the same names; a flag left unset (None) keeps the config's
    default."""
    values = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(cls)}
    return cls(**{name: value for name, value in values.items() if value is not None})


def run_nasbench101(args: argparse.Namespace) -> int:
    """Build the NAS-Bench-101 corpus folder."""
    from arch_gpt.training.corpora import NasBench101CorpusConfig, build_nasbench101_corpus

    return _report(build_nasbench101_corpus(_config(NasBench101CorpusConfig, args)))


def run_torchvision(args: argparse.Namespace) -> int:
    """Build the torchvision corpus folder."""
    from arch_gpt.training.corpora import TorchvisionCorpusConfig, build_torchvision_corpus

    return _report(build_torchvision_corpus(_config(TorchvisionCorpusConfig, args)))


def run_all_spaces(args: argparse.Namespace) -> int:
    """Build the all-spaces corpus folder."""
    from arch_gpt.training.all_spaces_corpus import AllSpacesCorpusConfig, build_all_spaces_corpus

    return _report(build_all_spaces_corpus(_config(AllSpacesCorpusConfig, args)))


def run_push(args: argparse.Namespace) -> int:
    """Publish a corpus folder on the Hub."""
    from arch_gpt.training.corpus_card import push_corpus_to_hub

    url = push_corpus_to_hub(args.corpus_dir, args.repo_id, private=True if args.private else None)
    print(f"pushed {args.corpus_dir} to {url} (configs: lm, blocks)", file=sys.stdout)
    return 0
