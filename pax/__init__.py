"""PAX: neural-network modules for JAX that are plain pytrees.

Modules create their parameters eagerly in ``__init__`` from explicit sizes and
rng keys; there is no transform step. See README.md and DESIGN.md.
"""

from . import checkpoint as checkpoint
from . import distributed as distributed
from . import initializers as initializers
from . import nets as nets
from . import nn as nn
from . import optim as optim
from . import sharding as sharding
from . import utils as utils
from ._checkpoint import CheckpointError as CheckpointError
from ._checkpoint import load as load
from ._checkpoint import save as save
from ._core.autograd import grad as grad
from ._core.autograd import value_and_grad as value_and_grad
from ._core.errors import LeakedTracerError as LeakedTracerError
from ._core.errors import MutationError as MutationError
from ._core.errors import UnknownAttributeError as UnknownAttributeError
from ._core.frozen import FrozenDict as FrozenDict
from ._core.frozen import FrozenList as FrozenList
from ._core.frozen import thaw as thaw
from ._core.module import Module as Module
from ._core.module import ParameterModule as ParameterModule
from ._core.module import StateModule as StateModule
from ._core.module import is_module as is_module
from ._core.module import parameters_method as parameters_method
from ._core.pure import module_and_value as module_and_value
from ._core.pure import pure as pure
from ._core.pure import purecall as purecall
from ._core.rng import RngSeq as RngSeq
from ._core.rng import TracedRngWarning as TracedRngWarning
from ._core.rng import next_rng_key as next_rng_key
from ._core.rng import seed_rng_key as seed_rng_key
from ._core.shared import Shared as Shared
from ._core.transforms import enable_eval_mode as enable_eval_mode
from ._core.transforms import enable_train_mode as enable_train_mode
from ._core.transforms import freeze_parameters as freeze_parameters
from ._core.transforms import select_parameters as select_parameters
from ._core.transforms import unfreeze_parameters as unfreeze_parameters
from ._export import export_inference as export_inference
from ._mixed_precision import apply_mp_policy as apply_mp_policy
from ._mixed_precision import unwrap_mp_policy as unwrap_mp_policy
from ._safetensors import load_safetensors as load_safetensors
from ._safetensors import save_safetensors as save_safetensors
from ._tabulate import tabulate as tabulate
from .nn import *  # noqa: F403 - every pax.nn layer is also pax.<Name>
from .optim import apply_updates as apply_updates

__version__ = "0.1.0.dev0"

__all__ = [
    *nn.__all__,
    "checkpoint",
    "distributed",
    "initializers",
    "nets",
    "optim",
    "sharding",
    "utils",
    "grad",
    "value_and_grad",
    "apply_updates",
    "apply_mp_policy",
    "unwrap_mp_policy",
    "CheckpointError",
    "FrozenDict",
    "FrozenList",
    "LeakedTracerError",
    "Module",
    "MutationError",
    "ParameterModule",
    "Shared",
    "StateModule",
    "TracedRngWarning",
    "UnknownAttributeError",
    "enable_eval_mode",
    "enable_train_mode",
    "export_inference",
    "freeze_parameters",
    "is_module",
    "load",
    "load_safetensors",
    "module_and_value",
    "next_rng_key",
    "nn",
    "parameters_method",
    "pure",
    "purecall",
    "save",
    "save_safetensors",
    "seed_rng_key",
    "thaw",
    "select_parameters",
    "tabulate",
    "unfreeze_parameters",
]
