"""``pax.hk``: Haiku's API on PAX, so that ``import pax.hk as hk`` runs
dm-haiku code unchanged (same parameter names, shapes and numerics).

``hk.transform(f)`` turns a function that builds and calls modules into a
pure ``init`` / ``apply`` pair; parameters and state are
``{module_name: {name: array}}`` dicts named exactly as Haiku names them.
dm-haiku itself is never imported.
"""

from . import config as config
from . import data_structures as data_structures
from . import experimental as experimental
from . import initializers as initializers
from . import mixed_precision as mixed_precision
from . import testing as testing
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
from ._utils import dropout as dropout
from ._utils import multinomial as multinomial
from ._utils import one_hot as one_hot

__all__ = [
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
