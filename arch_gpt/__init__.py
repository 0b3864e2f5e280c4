"""arch-gpt: GPT-NAS, neural architecture search helped by a small GPT trained on CNN architectures.

The language is imported eagerly; everything that needs torch or transformers is exported lazily (imported on
first use), so ``import arch_gpt`` stays light::

    from arch_gpt import ArchGPT, Architecture, GPTReconstructor, SearchConfig, SearchResult, build_search
    import arch_gpt
    result = arch_gpt.run_search(strategy="ga+gpt", space="blocks", dataset="digits", budget=12,
                                 output_dir="runs/demo")
    network = result.to_module()         # the trained best network: arch_gpt.SearchedNetwork

``run_search`` is not called ``search``: ``arch_gpt.search`` is the subpackage (``import arch_gpt.search.spec``
binds that name on this module), so a function of that name would be replaced by the first such import.
"""
from typing import TYPE_CHECKING

from arch_gpt.encoding import (
    Architecture, ArchitectureError, ConvLayer, FCLayer, Layer, OtherLayer, PoolLayer, format_layer, parse_layer,
)

if TYPE_CHECKING:  # pragma: no cover  (what the lazy names below are, for type checkers)
    from arch_gpt.hub import pretrained_path
    from arch_gpt.modeling import ArchGPT
    from arch_gpt.search.api import run_search
    from arch_gpt.search.reconstruction import GPTReconstructor
    from arch_gpt.search.records import SearchResult
    from arch_gpt.search.spec import SearchConfig, build_search
    from arch_gpt.standalone import SearchedNetwork

__version__ = "0.1.0"
__all__ = [
    "Architecture", "ArchitectureError", "ConvLayer", "FCLayer", "Layer", "OtherLayer", "PoolLayer",
    "format_layer", "parse_layer", "pretrained_path", "__version__",
    "ArchGPT", "GPTReconstructor", "SearchConfig", "SearchResult", "SearchedNetwork", "build_search", "run_search",
]
_LAZY = ("pretrained_path", "ArchGPT", "GPTReconstructor", "SearchConfig", "SearchResult", "SearchedNetwork",
         "build_search", "run_search")


def __getattr__(name: str):
    """The lazy exports (each imported on first use, then kept): :data:`_LAZY`."""
    if name == "pretrained_path":
        from arch_gpt.hub import pretrained_path as value
    elif name == "ArchGPT":
        from arch_gpt.modeling import ArchGPT as value
    elif name == "GPTReconstructor":
        from arch_gpt.search.reconstruction import GPTReconstructor as value
    elif name in ("SearchConfig", "build_search"):
        from arch_gpt.search import spec
        value = getattr(spec, name)
    elif name == "SearchResult":
        from arch_gpt.search.records import SearchResult as value
    elif name == "SearchedNetwork":
        from arch_gpt.standalone import SearchedNetwork as value
    elif name == "run_search":
        from arch_gpt.search.api import run_search as value
    else:
        raise AttributeError(f"module 'arch_gpt' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
