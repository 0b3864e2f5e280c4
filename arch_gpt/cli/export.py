"""``arch-gpt export RUN_DIR``: the best architecture of a search as a runnable PyTorch module folder.

Writes model.py, config.json, a copy of best.arch and, when the run (or a later ``arch-gpt retrain``) saved
trained weights, model.safetensors (see :mod:`arch_gpt.search.export`). Re-exporting into an earlier export
replaces those four files (a stale model.safetensors is removed) and keeps any other file there.
"""
from __future__ import annotations

import argparse
from arch_gpt.cli.help import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``arch-gpt export``."""
    p = add_command(subparsers, "export", __doc__, "write the best architecture of a search run as a PyTorch module")
    p.add_argument("run_dir", metavar="RUN_DIR", help="output folder of `arch-gpt search`")
    p.add_argument("--out", dest="out_dir", default=None,
                   help="destination folder: new, empty or an earlier export (default: RUN_DIR/export)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from arch_gpt.search.export import export_run

    out = export_run(args.run_dir, args.out_dir)
    weights = "with trained weights" if (out / "model.safetensors").exists() else "no trained weights"
    print(f"exported {args.run_dir} -> {out} (model.py, config.json; {weights})")
    return 0
