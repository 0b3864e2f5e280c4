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


# ----------------------------------------------------------------------------- transformers registration (issue 16)
# ``import arch_gpt`` must not import torch or transformers, yet ``AutoConfig``/``AutoModel`` should know the block
# classifier and ``pipeline("architecture-completion")`` should work after it. Both modules register themselves
# when imported (arch_gpt.block_classifier: AutoConfig/AutoModel; arch_gpt.pipelines: PIPELINE_REGISTRY), so they
# are imported here right away when transformers (resp. transformers.pipelines) is already imported, else right
# after it has been imported, by a one-shot sys.meta_path hook. Only stdlib is imported here.
import importlib as _importlib
import importlib.util as _importlib_util
import sys as _sys


def _register_block_classifier() -> None:
    _importlib.import_module("arch_gpt.block_classifier")


def _register_block_classifier_config() -> None:
    _importlib.import_module("arch_gpt.block_classifier_config")


def _register_pipeline() -> None:
    _importlib.import_module("arch_gpt.pipelines")


# The block classifier's config registers once transformers' Auto-config module is loaded, its model once
# transformers' Auto-model module is: AutoConfig/AutoModel users get there (and bring torch in anyway),
# while a tokenizer-only process (a corpus build) never does, so registering costs such a process no torch.
_AFTER_IMPORT = {"transformers.models.auto.configuration_auto": ("arch_gpt.block_classifier_config",
                                                                 _register_block_classifier_config),
                 "transformers.models.auto.modeling_auto": ("arch_gpt.block_classifier", _register_block_classifier),
                 "transformers.pipelines": ("arch_gpt.pipelines", _register_pipeline)}


def _register(trigger: str) -> None:
    """Import the module that registers with ``trigger``: never while it is itself being imported (it registers
    when it finishes), and a failure is a warning, so the user's import of transformers never breaks."""
    module, register = _AFTER_IMPORT[trigger]
    if module in _sys.modules:
        return
    try:
        register()
    except Exception as err:  # noqa: BLE001 - whatever it is, it must not break the import of transformers
        import warnings
        warnings.warn(f"arch_gpt: could not register {module} with transformers ({type(err).__name__}: {err}); "
                      f"import {module} to retry", RuntimeWarning, stacklevel=2)


class _ThenRegister:
    """Loader wrapper: execute the module as its own loader would, then :func:`_register`."""

    def __init__(self, loader, trigger: str):
        self.loader, self.trigger = loader, trigger

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = module.__spec__.loader = self.loader  # transparent from here on
        self.loader.exec_module(module)
        _register(self.trigger)

    def __getattr__(self, name: str):
        return getattr(self.loader, name)


class _AfterImportHook:
    """``sys.meta_path`` finder that wraps the loader of each pending trigger module once, then removes itself."""

    def __init__(self, pending: set[str]):
        self.pending = pending

    def find_spec(self, name: str, path=None, target=None):
        if name not in self.pending:
            return None
        self.pending.discard(name)
        if not self.pending and self in _sys.meta_path:
            _sys.meta_path.remove(self)
        spec = _importlib_util.find_spec(name)  # the usual finders (this one no longer answers for ``name``)
        if spec is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ThenRegister(spec.loader, name)
        return spec


def _install_registration() -> None:
    pending = set()
    for trigger in _AFTER_IMPORT:
        if trigger in _sys.modules:
            _register(trigger)
        else:
            pending.add(trigger)
    _sys.meta_path[:] = [f for f in _sys.meta_path if type(f).__name__ != "_AfterImportHook"]
    if pending:
        _sys.meta_path.insert(0, _AfterImportHook(pending))


_install_registration()
