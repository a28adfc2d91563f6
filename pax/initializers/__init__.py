"""Initializers: Haiku's set and semantics, ``init(rng_key, shape, dtype)`` form.

See ``pax/initializers/_initializers.py`` for each one's documentation.
"""

from ._initializers import Constant as Constant
from ._initializers import Identity as Identity
from ._initializers import Initializer as Initializer
from ._initializers import Orthogonal as Orthogonal
from ._initializers import RandomNormal as RandomNormal
from ._initializers import RandomUniform as RandomUniform
from ._initializers import TruncatedNormal as TruncatedNormal
from ._initializers import UniformScaling as UniformScaling
from ._initializers import VarianceScaling as VarianceScaling
from ._initializers import compute_fans as compute_fans
from ._initializers import glorot_normal as glorot_normal
from ._initializers import glorot_uniform as glorot_uniform
from ._initializers import he_normal as he_normal
from ._initializers import he_uniform as he_uniform
from ._initializers import lecun_normal as lecun_normal
from ._initializers import lecun_uniform as lecun_uniform
from ._initializers import ones as ones
from ._initializers import zeros as zeros

__all__ = [
    "Initializer",
    "Constant",
    "Identity",
    "Orthogonal",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "UniformScaling",
    "VarianceScaling",
    "compute_fans",
    "zeros",
    "ones",
    "glorot_uniform",
    "glorot_normal",
    "lecun_uniform",
    "lecun_normal",
    "he_uniform",
    "he_normal",
]
