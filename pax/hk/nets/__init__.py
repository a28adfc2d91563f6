"""``hk.nets``: Haiku's networks: ``MLP``, ``ResNet`` (with ``ResNet.BlockV1``,
``BlockV2``, ``BlockGroup``) and ``ResNet18`` ... ``ResNet200``,
``MobileNetV1``, ``VectorQuantizer`` and ``VectorQuantizerEMA``.

Each is the ``pax.nets`` network's architecture (its configurations, block
layouts and forward functions, or for the quantizers the native module
itself) built from ``pax.hk`` layers, which compute with ``pax.nn``."""

from ._mlp import MLP as MLP
from ._mobilenet import MobileNetV1 as MobileNetV1
from ._resnet import ResNet as ResNet
from ._resnet import ResNet18 as ResNet18
from ._resnet import ResNet34 as ResNet34
from ._resnet import ResNet50 as ResNet50
from ._resnet import ResNet101 as ResNet101
from ._resnet import ResNet152 as ResNet152
from ._resnet import ResNet200 as ResNet200
from ._vqvae import VectorQuantizer as VectorQuantizer
from ._vqvae import VectorQuantizerEMA as VectorQuantizerEMA

__all__ = [
    "MLP",
    "MobileNetV1",
    "ResNet",
    "ResNet18",
    "ResNet34",
    "ResNet50",
    "ResNet101",
    "ResNet152",
    "ResNet200",
    "VectorQuantizer",
    "VectorQuantizerEMA",
]
