"""``pax.nets``: whole networks built from ``pax.nn`` layers, one family per file.

Networks read NHWC images, take their input size first, and use the module's
mode (``train()`` / ``eval()``) where Haiku has an ``is_training`` argument.

The architectures are described once (``ResNetBlockSpec``, ``ResNet.CONFIGS``
and the ``*_forward`` functions, which take layers as callables); ``pax.hk.nets``
builds Haiku's networks from the same descriptions with ``pax.hk`` layers.
"""

from ._arch import ResNetBlockSpec as ResNetBlockSpec
from ._arch import ResNetLayer as ResNetLayer
from ._arch import mlp_forward as mlp_forward
from ._arch import mobilenet_v1_block as mobilenet_v1_block
from ._arch import mobilenet_v1_forward as mobilenet_v1_forward
from ._arch import resnet_forward as resnet_forward
from ._mlp import MLP as MLP
from ._mobilenet import MobileNetV1 as MobileNetV1
from ._resnet import ResNet as ResNet
from ._resnet import ResNet18 as ResNet18
from ._resnet import ResNet34 as ResNet34
from ._resnet import ResNet50 as ResNet50
from ._resnet import ResNet101 as ResNet101
from ._resnet import ResNet152 as ResNet152
from ._resnet import ResNet200 as ResNet200
from ._transformer import Transformer as Transformer
from ._transformer import TransformerBlock as TransformerBlock
from ._transformer import TransformerLM as TransformerLM
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
    "ResNetBlockSpec",
    "ResNetLayer",
    "Transformer",
    "TransformerBlock",
    "TransformerLM",
    "VectorQuantizer",
    "VectorQuantizerEMA",
    "mlp_forward",
    "mobilenet_v1_block",
    "mobilenet_v1_forward",
    "resnet_forward",
]
