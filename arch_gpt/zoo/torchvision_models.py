"""The 36 torchvision architectures of the paper's fine-tuning corpus (GPT-NAS Table 2), traced with block labels.

Families: EfficientNet b0-b7 (8), GoogLeNet (1), RegNet (14), ResNet 18/34/50/101/152 (5), ResNeXt (2),
ShuffleNetV2 (4), Wide-ResNet (2). The 14 RegNets are all of torchvision's RegNets except the largest,
``regnet_y_128gf`` (644M parameters, too large to trace on a small machine): regnet_x_400mf, regnet_x_800mf,
regnet_x_1_6gf, regnet_x_3_2gf, regnet_x_8gf, regnet_x_16gf, regnet_x_32gf, regnet_y_400mf, regnet_y_800mf,
regnet_y_1_6gf, regnet_y_3_2gf, regnet_y_8gf, regnet_y_16gf, regnet_y_32gf.
Models are built with ``weights=None`` (nothing is downloaded) and traced by :func:`arch_gpt.torch_io.from_module`,
whose block labels name the torchvision block classes (Conv2dNormActivation, SqueezeExcitation, Inception,
ResBottleneckBlock, SimpleStemIN, Bottleneck, BasicBlock, InvertedResidual, MBConv, and for layers outside any
block MaxPool, BN, ReLU, Conv, ...). Tracing all 36 at 32x32 takes about 50 s and 3 GB on a shared 2-core CPU,
most of it instantiating (randomly initialising) the large models; each trace itself takes well under a second.
With ``empty_weights=True`` (the corpus vocabulary's way) the models are built on the meta device: the same
layers in about 9 s and little memory.
"""
from __future__ import annotations

from typing import Iterator

from arch_gpt.encoding import Architecture
from arch_gpt.errors import UserInputError

TABLE2_MODELS: dict[str, tuple[str, ...]] = {
    "EfficientNet": tuple(f"efficientnet_b{i}" for i in range(8)),
    "GoogLeNet": ("googlenet",),
    "RegNet": (
        "regnet_x_400mf", "regnet_x_800mf", "regnet_x_1_6gf", "regnet_x_3_2gf", "regnet_x_8gf", "regnet_x_16gf",
        "regnet_x_32gf",
        "regnet_y_400mf", "regnet_y_800mf", "regnet_y_1_6gf", "regnet_y_3_2gf", "regnet_y_8gf", "regnet_y_16gf",
        "regnet_y_32gf",
    ),
    "ResNet": ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"),
    "ResNeXt": ("resnext50_32x4d", "resnext101_32x8d"),
    "ShuffleNetV2": ("shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0"),
    "Wide-ResNet": ("wide_resnet50_2", "wide_resnet101_2"),
}


MIN_INPUT_SIZE = 32  # every Table-2 model traces at 32x32 (CIFAR); 224 is the ImageNet size


class UnknownModelError(UserInputError):
    """A model name that is not one of the 36 Table-2 architectures."""


def list_table2_models() -> list[str]:
    """All 36 model names, family by family in Table-2 order."""
    return [name for names in TABLE2_MODELS.values() for name in names]


def family_of(name: str) -> str:
    """The Table-2 family of a model name."""
    for family, names in TABLE2_MODELS.items():
        if name in names:
            return family
    raise UnknownModelError(f"model {name!r}: not a Table-2 model (choose from {', '.join(list_table2_models())})")


def build_table2_model(name: str, num_classes: int = 1000, empty_weights: bool = False):
    """Instantiate one Table-2 model with random weights (``weights=None``; GoogLeNet without aux heads), or with
    ``empty_weights`` on the meta device (see :func:`build_torchvision_model`)."""
    family_of(name)
    return build_torchvision_model(name, num_classes=num_classes, empty_weights=empty_weights)


def build_torchvision_model(name: str, num_classes: int = 1000, empty_weights: bool = False):
    """Any torchvision classification model by name, with random weights; nothing is downloaded. With
    ``empty_weights`` its parameters and buffers live on the meta device: no memory and no random initialisation
    (all 36 Table-2 models in seconds instead of a minute and gigabytes), enough to trace its layers."""
    from torchvision import models

    available = models.list_models(module=models)
    if name not in available:
        raise UnknownModelError(f"model {name!r}: not a torchvision classification model "
                                f"(e.g. {', '.join(list_table2_models()[:3])}, ...)")
    kwargs: dict = {"weights": None, "num_classes": num_classes}
    if name in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, init_weights=False)
    if not empty_weights:
        return models.get_model(name, **kwargs).eval()
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False):  # parameters only: RegNet computes its widths with tensors
        model = models.get_model(name, **kwargs)
    return model.to("meta").eval()


def trace_table2_model(name: str, input_size: int = 32, empty_weights: bool = False) -> Architecture:
    """Trace one Table-2 model on a ``input_size``x``input_size`` RGB input into a block-labelled Architecture
    (``empty_weights``: built and run on the meta device; the same layers, in a fraction of the time and memory)."""
    if not isinstance(input_size, int) or input_size < MIN_INPUT_SIZE:
        raise UserInputError(f"input_size: must be an integer >= {MIN_INPUT_SIZE} (smaller inputs shrink some "
                             f"feature maps below a pooling window), got {input_size!r}")
    from arch_gpt.torch_io import from_module

    return from_module(build_table2_model(name, empty_weights=empty_weights), input_size=(3, input_size, input_size),
                       name=name)


def iter_table2_architectures(names: list[str] | None = None, input_size: int = 32) -> Iterator[Architecture]:
    """Trace the given models (all 36 by default) one at a time, so only one model is in memory."""
    for name in names if names is not None else list_table2_models():
        yield trace_table2_model(name, input_size=input_size)
