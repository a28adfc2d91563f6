"""``pax.nn``: layers as pytree modules, one family per file.

Every public layer class here is also exported at the top level (``pax.X``).
``channel_index`` is the one parser of every ``data_format`` argument (here
and in ``pax.hk``). ``pax.nn.internal_api`` is the documented seam that
``pax.hk`` uses for the few helpers it shares with these layers.
"""

from .._core.rng import RngSeq as RngSeq
from . import pad as pad
from ._attention import KVCache as KVCache
from ._attention import MultiHeadAttention as MultiHeadAttention
from ._attention import apply_rotary as apply_rotary
from ._attention import causal_mask as causal_mask
from ._attention import combine_masks as combine_masks
from ._attention import padding_mask as padding_mask
from ._batch_apply import BatchApply as BatchApply
from ._batch_apply import expand_apply as expand_apply
from ._batch_norm import BatchNorm as BatchNorm
from ._batch_norm import BatchNorm1D as BatchNorm1D
from ._batch_norm import BatchNorm2D as BatchNorm2D
from ._containers import Identity as Identity
from ._containers import Lambda as Lambda
from ._containers import Sequential as Sequential
from ._conv import Conv1D as Conv1D
from ._conv import Conv2D as Conv2D
from ._conv import Conv3D as Conv3D
from ._conv import ConvND as ConvND
from ._conv_lstm import Conv1DLSTM as Conv1DLSTM
from ._conv_lstm import Conv2DLSTM as Conv2DLSTM
from ._conv_lstm import Conv3DLSTM as Conv3DLSTM
from ._conv_lstm import ConvNDLSTM as ConvNDLSTM
from ._conv_transpose import Conv1DTranspose as Conv1DTranspose
from ._conv_transpose import Conv2DTranspose as Conv2DTranspose
from ._conv_transpose import Conv3DTranspose as Conv3DTranspose
from ._conv_transpose import ConvNDTranspose as ConvNDTranspose
from ._data_format import channel_index as channel_index
from ._depthwise import DepthwiseConv1D as DepthwiseConv1D
from ._depthwise import DepthwiseConv2D as DepthwiseConv2D
from ._depthwise import DepthwiseConv3D as DepthwiseConv3D
from ._depthwise import DepthwiseConvND as DepthwiseConvND
from ._depthwise import SeparableDepthwiseConv2D as SeparableDepthwiseConv2D
from ._dropout import Dropout as Dropout
from ._dropout import dropout as dropout
from ._embed import Embed as Embed
from ._group_norm import GroupNorm as GroupNorm
from ._layer_norm import InstanceNorm as InstanceNorm
from ._layer_norm import LayerNorm as LayerNorm
from ._layer_norm import RMSNorm as RMSNorm
from ._layer_stack import LayerStack as LayerStack
from ._linear import Bias as Bias
from ._linear import Linear as Linear
from ._moving_averages import EMA as EMA
from ._moving_averages import EMAParamsTree as EMAParamsTree
from ._pool import AvgPool as AvgPool
from ._pool import MaxPool as MaxPool
from ._pool import avg_pool as avg_pool
from ._pool import max_pool as max_pool
from ._recurrent import GRU as GRU
from ._recurrent import LSTM as LSTM
from ._recurrent import DeepRNN as DeepRNN
from ._recurrent import IdentityCore as IdentityCore
from ._recurrent import LSTMState as LSTMState
from ._recurrent import ResetCore as ResetCore
from ._recurrent import RNNCore as RNNCore
from ._recurrent import VanillaRNN as VanillaRNN
from ._recurrent import deep_rnn_with_skip_connections as deep_rnn_with_skip_connections
from ._recurrent import dynamic_unroll as dynamic_unroll
from ._recurrent import static_unroll as static_unroll
from ._reshape import Flatten as Flatten
from ._reshape import Reshape as Reshape
from ._spectral_norm import SNParamsTree as SNParamsTree
from ._spectral_norm import SpectralNorm as SpectralNorm

__all__ = [
    "AvgPool",
    "BatchApply",
    "BatchNorm",
    "BatchNorm1D",
    "BatchNorm2D",
    "Bias",
    "Conv1D",
    "Conv1DLSTM",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DLSTM",
    "Conv2DTranspose",
    "Conv3D",
    "Conv3DLSTM",
    "Conv3DTranspose",
    "ConvND",
    "ConvNDLSTM",
    "ConvNDTranspose",
    "DeepRNN",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "DepthwiseConv3D",
    "DepthwiseConvND",
    "Dropout",
    "EMA",
    "EMAParamsTree",
    "Embed",
    "Flatten",
    "GRU",
    "GroupNorm",
    "Identity",
    "IdentityCore",
    "InstanceNorm",
    "KVCache",
    "LSTM",
    "LSTMState",
    "Lambda",
    "LayerNorm",
    "LayerStack",
    "Linear",
    "MaxPool",
    "MultiHeadAttention",
    "RMSNorm",
    "RNNCore",
    "ResetCore",
    "Reshape",
    "RngSeq",
    "SNParamsTree",
    "SeparableDepthwiseConv2D",
    "Sequential",
    "SpectralNorm",
    "VanillaRNN",
    "apply_rotary",
    "avg_pool",
    "causal_mask",
    "channel_index",
    "combine_masks",
    "deep_rnn_with_skip_connections",
    "dropout",
    "dynamic_unroll",
    "expand_apply",
    "max_pool",
    "pad",
    "padding_mask",
    "static_unroll",
]
