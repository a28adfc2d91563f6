"""``pax.nn``: layers as pytree modules, one family per file.

Every public layer class here is also exported at the top level (``pax.X``).
"""

from .._core.rng import RngSeq as RngSeq
from ._containers import Identity as Identity
from ._containers import Lambda as Lambda
from ._containers import Sequential as Sequential
from ._dropout import Dropout as Dropout
from ._dropout import dropout as dropout
from ._embed import Embed as Embed
from ._linear import Bias as Bias
from ._linear import Linear as Linear

__all__ = [
    "Bias",
    "Dropout",
    "Embed",
    "Identity",
    "Lambda",
    "Linear",
    "RngSeq",
    "Sequential",
    "dropout",
]
