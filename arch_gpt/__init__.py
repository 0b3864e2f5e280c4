"""arch-gpt: GPT-NAS, neural architecture search helped by a small GPT trained on CNN architectures."""
from arch_gpt.encoding import (
    Architecture, ArchitectureError, ConvLayer, FCLayer, Layer, OtherLayer, PoolLayer, format_layer, parse_layer,
)

__version__ = "0.1.0"
__all__ = [
    "Architecture", "ArchitectureError", "ConvLayer", "FCLayer", "Layer", "OtherLayer", "PoolLayer",
    "format_layer", "parse_layer", "__version__",
]
