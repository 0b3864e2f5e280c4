"""arch-gpt: GPT-NAS, neural architecture search helped by a small GPT trained on CNN architectures."""
from arch_gpt.encoding import (
    Architecture, ArchitectureError, ConvLayer, FCLayer, Layer, OtherLayer, PoolLayer, format_layer, parse_layer,
)

__version__ = "0.1.0"
__all__ = [
    "Architecture", "ArchitectureError", "ConvLayer", "FCLayer", "Layer", "OtherLayer", "PoolLayer",
    "format_layer", "parse_layer", "pretrained_path", "__version__",
]


def __getattr__(name: str):
    """Lazy exports, so ``import arch_gpt`` stays light: ``arch_gpt.pretrained_path`` (see :mod:`arch_gpt.hub`)."""
    if name == "pretrained_path":
        from arch_gpt.hub import pretrained_path
        return pretrained_path
    raise AttributeError(f"module 'arch_gpt' has no attribute {name!r}")
