"""``pax.nn``: layers as pytree modules, one family per file.

Every public layer class here is also exported at the top level (``pax.X``).
"""

from .._core.rng import RngSeq as RngSeq
from ._linear import Bias as Bias
from ._linear import Linear as Linear

__all__ = [
    "Bias",
    "Linear",
    "RngSeq",
]
