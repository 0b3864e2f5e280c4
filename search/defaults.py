"""The search's named defaults, in a module that imports nothing heavy (the CLI builds its help from it)."""
from __future__ import annotations

DEFAULT_MODEL = "arch-gpt-nasbench101"  # the paper's GPT (NB-101 + torchvision): the default of +gpt and +gpt+ft
COND_MODEL = "arch-gpt-all-spaces"  # every space's cells and the fitness tokens: the default of +gpt+cond
DEFAULT_SPACE = "blocks"
DEFAULT_DATASET = "digits"
DEFAULT_STRATEGY = "ga+gpt"
GPT_DEFAULTS = {"model": DEFAULT_MODEL, "mask_rate": 0.4, "top_k": 1, "temperature": 1.0, "top_p": 1.0, "finetune_steps": 5,
                "finetune_top": 10, "finetune_lr": 1e-3, "cond_steps": 20, "cond_lr": 3e-3, "rank_pool": 5,
                "rank_predictor": "gp", "rank_explore": 1.0}
