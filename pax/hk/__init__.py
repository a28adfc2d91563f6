"""``pax.hk``: Haiku's API on PAX, so that ``import pax.hk as hk`` runs
dm-haiku code unchanged (same parameter names, shapes and numerics).

``hk.transform(f)`` turns a function that builds and calls modules into a
pure ``init`` / ``apply`` pair; parameters and state are
``{module_name: {name: array}}`` dicts named exactly as Haiku names them.
dm-haiku itself is never imported.

How the package is built: ``pax.hk`` is an adapter over ``pax.nn`` and
``pax.nets``, not a second implementation of their numerics.

* The machinery is Haiku's own API: frames, naming and ``get_parameter`` /
  ``get_state`` / rng (``_base.py``, ``_module.py``), the transforms
  (``_transform.py``), the lifted JAX transforms and control flow
  (``_stateful.py``, ``_lift.py``, ``_layer_stack.py``), the
  ``check_jax_usage`` guardrails (``config.py``, built on
  ``jax.extend.core.get_opaque_trace_state``) and inspection
  (``_summarise.py``, ``experimental.jaxpr_info``).
* A layer (``hk.Linear``, ``hk.Conv2D``, ``hk.BatchNorm``...) takes Haiku's
  constructor arguments, asks ``_mapping.fetch`` for its arrays and calls the
  ``pax.nn`` module built around them (``_native.template``). ``_mapping.py``
  holds one record per native layer with a Haiku twin: the Haiku module name,
  and for each native leaf its Haiku name, parameter or state, and shape.
  ``to_haiku_params`` / ``from_haiku_params`` (``_convert.py``) read the same
  records, so the names a layer creates and the names the weight bridge
  writes cannot drift apart.
* ``hk.nets`` runs ``pax.nets``' blocks and configuration tables
  (``pax/nets/_arch.py``); the recurrent cores, ``ResetCore``, ``DeepRNN``
  and the unrolls adapt ``pax.nn``'s, with Haiku's argument order on top.
* It imports only what ``pax.nn`` / ``pax.nets`` / ``pax.initializers``
  export, plus ``pax.nn.internal_api`` (checked by
  ``tests/hk/test_public_seams.py``).
* dm-haiku's own test files run against it (``python -m
  tests.haiku_suite``); ``tests/haiku_suite/expectations.py`` lists what
  does not pass yet, each with its reason.
"""

from . import config as config
from . import data_structures as data_structures
from . import experimental as experimental
from . import initializers as initializers
from . import mixed_precision as mixed_precision
from . import nets as nets
from . import pad as pad
from . import testing as testing
from ._attention import MultiHeadAttention as MultiHeadAttention
from ._base import DO_NOT_STORE as DO_NOT_STORE
from ._base import GetterContext as GetterContext
from ._base import MissingRNGError as MissingRNGError
from ._base import PRNGSequence as PRNGSequence
from ._base import SetterContext as SetterContext
from ._base import current_name as current_name
from ._base import custom_creator as custom_creator
from ._base import custom_getter as custom_getter
from ._base import custom_setter as custom_setter
from ._base import get_current_state as get_current_state
from ._base import get_initial_state as get_initial_state
from ._base import get_parameter as get_parameter
from ._base import get_params as get_params
from ._base import get_state as get_state
from ._base import maybe_get_rng_sequence_state as maybe_get_rng_sequence_state
from ._base import maybe_next_rng_key as maybe_next_rng_key
from ._base import next_rng_key as next_rng_key
from ._base import next_rng_keys as next_rng_keys
from ._base import replace_rng_sequence_state as replace_rng_sequence_state
from ._base import reserve_rng_keys as reserve_rng_keys
from ._base import running_init as running_init
from ._base import set_state as set_state
from ._base import with_rng as with_rng
from ._basic import BatchApply as BatchApply
from ._basic import Bias as Bias
from ._basic import Flatten as Flatten
from ._basic import Reshape as Reshape
from ._basic import Sequential as Sequential
from ._basic import expand_apply as expand_apply
from ._bridge import HaikuModule as HaikuModule
from ._bridge import to_pax as to_pax
from ._conv import Conv1D as Conv1D
from ._conv import Conv2D as Conv2D
from ._conv import Conv3D as Conv3D
from ._conv import ConvND as ConvND
from ._conv_transpose import Conv1DTranspose as Conv1DTranspose
from ._conv_transpose import Conv2DTranspose as Conv2DTranspose
from ._conv_transpose import Conv3DTranspose as Conv3DTranspose
from ._conv_transpose import ConvNDTranspose as ConvNDTranspose
from ._conv_utils import get_channel_index as get_channel_index
from ._convert import from_haiku_params as from_haiku_params
from ._convert import to_haiku_params as to_haiku_params
from ._deferred import Deferred as Deferred
from ._depthwise import DepthwiseConv1D as DepthwiseConv1D
from ._depthwise import DepthwiseConv2D as DepthwiseConv2D
from ._depthwise import DepthwiseConv3D as DepthwiseConv3D
from ._depthwise import SeparableDepthwiseConv2D as SeparableDepthwiseConv2D
from ._embed import Embed as Embed
from ._embed import EmbedLookupStyle as EmbedLookupStyle
from ._layer_stack import LayerStackTransparencyMapping as LayerStackTransparencyMapping
from ._layer_stack import layer_stack as layer_stack
from ._lift import LiftWithStateUpdater as LiftWithStateUpdater
from ._lift import lift as lift
from ._lift import lift_with_state as lift_with_state
from ._lift import transparent_lift as transparent_lift
from ._lift import transparent_lift_with_state as transparent_lift_with_state
from ._linear import Linear as Linear
from ._module import MethodContext as MethodContext
from ._module import Module as Module
from ._module import force_name as force_name
from ._module import intercept_methods as intercept_methods
from ._module import name_like as name_like
from ._module import name_scope as name_scope
from ._module import to_module as to_module
from ._module import transparent as transparent
from ._moving_averages import EMAParamsTree as EMAParamsTree
from ._moving_averages import ExponentialMovingAverage as ExponentialMovingAverage
from ._norm import BatchNorm as BatchNorm
from ._norm import GroupNorm as GroupNorm
from ._norm import InstanceNorm as InstanceNorm
from ._norm import LayerNorm as LayerNorm
from ._norm import RMSNorm as RMSNorm
from ._pool import AvgPool as AvgPool
from ._pool import MaxPool as MaxPool
from ._pool import avg_pool as avg_pool
from ._pool import max_pool as max_pool
from ._recurrent import GRU as GRU
from ._recurrent import LSTM as LSTM
from ._recurrent import Conv1DLSTM as Conv1DLSTM
from ._recurrent import Conv2DLSTM as Conv2DLSTM
from ._recurrent import Conv3DLSTM as Conv3DLSTM
from ._recurrent import DeepRNN as DeepRNN
from ._recurrent import IdentityCore as IdentityCore
from ._recurrent import LSTMState as LSTMState
from ._recurrent import ResetCore as ResetCore
from ._recurrent import RNNCore as RNNCore
from ._recurrent import VanillaRNN as VanillaRNN
from ._recurrent import deep_rnn_with_skip_connections as deep_rnn_with_skip_connections
from ._recurrent import dynamic_unroll as dynamic_unroll
from ._recurrent import static_unroll as static_unroll
from ._spectral_norm import SNParamsTree as SNParamsTree
from ._spectral_norm import SpectralNorm as SpectralNorm
from ._stateful import cond as cond
from ._stateful import eval_shape as eval_shape
from ._stateful import fori_loop as fori_loop
from ._stateful import grad as grad
from ._stateful import map as map
from ._stateful import remat as remat
from ._stateful import scan as scan
from ._stateful import switch as switch
from ._stateful import value_and_grad as value_and_grad
from ._stateful import vmap as vmap
from ._stateful import while_loop as while_loop
from ._transform import MultiTransformed as MultiTransformed
from ._transform import MultiTransformedWithState as MultiTransformedWithState
from ._transform import Transformed as Transformed
from ._transform import TransformedWithState as TransformedWithState
from ._transform import multi_transform as multi_transform
from ._transform import multi_transform_with_state as multi_transform_with_state
from ._transform import transform as transform
from ._transform import transform_with_state as transform_with_state
from ._transform import with_empty_state as with_empty_state
from ._transform import without_apply_rng as without_apply_rng
from ._transform import without_state as without_state
from ._typing import ModuleProtocol as ModuleProtocol
from ._typing import MutableParams as MutableParams
from ._typing import MutableState as MutableState
from ._typing import Params as Params
from ._typing import State as State
from ._typing import SupportsCall as SupportsCall
from ._utils import dropout as dropout
from ._utils import multinomial as multinomial
from ._utils import one_hot as one_hot

__all__ = [
    "Deferred",
    "HaikuModule",
    "to_pax",
    "to_haiku_params",
    "from_haiku_params",
    "nets",
    "ModuleProtocol",
    "MutableParams",
    "MutableState",
    "Params",
    "State",
    "SupportsCall",
    "AvgPool",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DTranspose",
    "Conv3D",
    "Conv3DTranspose",
    "ConvND",
    "ConvNDTranspose",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "DepthwiseConv3D",
    "MaxPool",
    "SeparableDepthwiseConv2D",
    "avg_pool",
    "get_channel_index",
    "max_pool",
    "pad",
    "SNParamsTree",
    "SpectralNorm",
    "EMAParamsTree",
    "ExponentialMovingAverage",
    "BatchNorm",
    "GroupNorm",
    "InstanceNorm",
    "LayerNorm",
    "RMSNorm",
    "RNNCore",
    "Conv1DLSTM",
    "Conv2DLSTM",
    "Conv3DLSTM",
    "LSTMState",
    "LSTM",
    "VanillaRNN",
    "GRU",
    "IdentityCore",
    "ResetCore",
    "DeepRNN",
    "deep_rnn_with_skip_connections",
    "dynamic_unroll",
    "static_unroll",
    "MultiHeadAttention",
    "BatchApply",
    "Bias",
    "Flatten",
    "Reshape",
    "Sequential",
    "expand_apply",
    "Embed",
    "EmbedLookupStyle",
    "Linear",
    "initializers",
    "config",
    "mixed_precision",
    "testing",
    "dropout",
    "multinomial",
    "one_hot",
    "LiftWithStateUpdater",
    "lift",
    "lift_with_state",
    "transparent_lift",
    "transparent_lift_with_state",
    "LayerStackTransparencyMapping",
    "layer_stack",
    "cond",
    "eval_shape",
    "fori_loop",
    "grad",
    "map",
    "remat",
    "scan",
    "switch",
    "value_and_grad",
    "vmap",
    "while_loop",
    "custom_creator",
    "custom_getter",
    "custom_setter",
    "maybe_get_rng_sequence_state",
    "replace_rng_sequence_state",
    "get_params",
    "get_current_state",
    "get_initial_state",
    "MethodContext",
    "intercept_methods",
    "DO_NOT_STORE",
    "GetterContext",
    "MissingRNGError",
    "Module",
    "MultiTransformed",
    "MultiTransformedWithState",
    "PRNGSequence",
    "SetterContext",
    "Transformed",
    "TransformedWithState",
    "current_name",
    "data_structures",
    "experimental",
    "force_name",
    "get_parameter",
    "get_state",
    "maybe_next_rng_key",
    "multi_transform",
    "multi_transform_with_state",
    "name_like",
    "name_scope",
    "next_rng_key",
    "next_rng_keys",
    "reserve_rng_keys",
    "running_init",
    "set_state",
    "to_module",
    "transform",
    "transform_with_state",
    "transparent",
    "with_empty_state",
    "with_rng",
    "without_apply_rng",
    "without_state",
]
