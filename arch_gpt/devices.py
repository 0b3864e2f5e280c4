"""Where tensors go: one parser for every ``device`` option (``cpu``, ``cuda``, ``cuda:1``, ``mps``; None = best)."""
from __future__ import annotations

import torch

from arch_gpt.errors import UserInputError


def resolve_device(name: str | torch.device | None, param: str = "device") -> torch.device:
    """``torch.device`` for ``name``: None picks CUDA when present, else the CPU. A name torch does not know, or
    an accelerator this machine lacks, is a UserInputError naming ``param``."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise UserInputError(f"{param}: {name!r} is not a device; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserInputError(f"{param}: {name!r} asked for, but this machine has no CUDA GPU; use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserInputError(f"{param}: {name!r} asked for, but this machine has "
                                 f"{torch.cuda.device_count()} CUDA GPU(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UserInputError(f"{param}: {name!r} asked for, but MPS is not available here; use cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UserInputError(f"{param}: {name!r} is not supported; use cpu, cuda, cuda:N or mps")
    return device
