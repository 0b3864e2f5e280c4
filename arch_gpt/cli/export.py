"""``arch-gpt export RUN_DIR``: the best network of a search as a folder you can share.

Writes model.py (it needs torch and safetensors, not arch-gpt), config.json (the network and how it was found),
README.md (a model card), a copy of best.arch and, when the run (or a later ``arch-gpt retrain``) saved trained
weights, model.safetensors; --onnx adds model.onnx. Load the folder with ``load_model()`` from its model.py or
``SearchedNetwork.from_pretrained(folder)``; push it with ``push_to_hub``. Re-exporting into an earlier export
replaces its files (a stale model.safetensors or model.onnx is removed) and keeps any other file there.
"""
from __future__ import annotations

import argparse
from arch_gpt.cli.help import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``arch-gpt export``."""
    p = add_command(subparsers, "export", __doc__, "write the best network of a search run as a shareable folder")
    p.add_argument("run_dir", metavar="RUN_DIR", help="output folder of `arch-gpt search`")
    p.add_argument("--out", dest="out_dir", default=None,
                   help="destination folder: new, empty or an earlier export (default: RUN_DIR/export)")
    p.add_argument("--onnx", action="store_true",
                   help="also write model.onnx (torch.onnx.export; needs the onnx package)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from arch_gpt.search.export import export_run

    out = export_run(args.run_dir, args.out_dir, onnx=args.onnx)
    weights = "with trained weights" if (out / "model.safetensors").exists() else "no trained weights"
    onnx = ", model.onnx" if args.onnx else ""
    print(f"exported {args.run_dir} -> {out} (model.py, config.json, README.md{onnx}; {weights})")
    return 0
